"""Coders as an admin manages them from the command line, and what it does to cases:
going away or being deactivated hands cases on, coming back takes new ones; the routing
overview, closed dates and the coders' report."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlmodel import select

from consultant import sla
from consultant.db import session_scope
from consultant.escalation import sweep
from consultant.models import Assignment, Coder, Event, Plan, SlaClock, Ticket, utcnow
from consultant.reports.rollups import bucket_of
from tests.conftest import Desk
from tests.test_routing import events, make_tickets, ticket


def add(desk: Desk, email: str, *args: str) -> None:
    result = desk.consultant("coders", "add", email, "--name", email.split("@")[0], *args)
    assert result.returncode == 0, result.stderr


def owners(numbers: list[int]) -> list[int | None]:
    return [ticket(n).coder_id for n in numbers]


def coder_id(email: str) -> int:
    with session_scope() as session:
        found = session.exec(select(Coder.id).where(Coder.email == email)).one()
        assert found is not None
        return found


@pytest.mark.one_database("sqlite")
def test_a_coder_is_added_listed_and_shown(desk: Desk) -> None:
    add(
        desk,
        "Alice@Desk.example",
        "--specialty",
        "radiology,medicine",
        "--capacity",
        "4",
        "--timezone",
        "America/New_York",
        "--hours",
        "Mon-Fri 08:00-17:00",
    )

    listed = json.loads(desk.consultant("coders", "list", "--json").stdout)
    shown = json.loads(desk.consultant("coders", "show", "alice@desk.example", "--json").stdout)

    assert [c["email"] for c in listed] == ["alice@desk.example"]
    assert shown["specialties"] == ["radiology", "medicine"]
    assert (shown["capacity"], shown["open"], shown["role"]) == (4, 0, "coder")
    assert shown["working_hours"] == "Mon-Fri 08:00-17:00"
    assert "alice@desk.example" in desk.consultant("coders", "list").stdout


@pytest.mark.one_database("sqlite")
def test_bad_coder_details_are_refused_with_what_to_do(desk: Desk) -> None:
    add(desk, "alice@desk.example")
    refusals = {
        "duplicate": desk.consultant("coders", "add", "alice@desk.example", "--name", "A"),
        "specialty": desk.consultant(
            "coders", "add", "b@desk.example", "--name", "B", "--specialty", "cardiology"
        ),
        "zone": desk.consultant(
            "coders", "add", "c@desk.example", "--name", "C", "--timezone", "Mars/Base"
        ),
        "hours": desk.consultant(
            "coders", "add", "d@desk.example", "--name", "D", "--hours", "weekdays 9 to 5"
        ),
        "role": desk.consultant("coders", "add", "e@desk.example", "--name", "E", "--role", "boss"),
        "unknown": desk.consultant("coders", "set", "nobody@desk.example", "--capacity", "3"),
    }

    assert all(r.returncode == 1 for r in refusals.values())
    assert "is a coder already" in refusals["duplicate"].stderr
    assert "unknown specialty cardiology" in refusals["specialty"].stderr
    assert "radiology" in refusals["specialty"].stderr  # the names it takes
    assert "unknown time zone 'Mars/Base'" in refusals["zone"].stderr
    assert 'expected like "Mon-Fri 08:00-18:00' in refusals["hours"].stderr
    assert "unknown role 'boss'" in refusals["role"].stderr
    assert "no coder nobody@desk.example" in refusals["unknown"].stderr
    assert len(json.loads(desk.consultant("coders", "list", "--json").stdout)) == 1


def test_lowering_capacity_keeps_the_cases_a_coder_has(desk: Desk) -> None:
    add(desk, "alice@desk.example", "--specialty", "radiology", "--capacity", "5")
    numbers = make_tickets(4)
    sweep()  # routes what waits
    desk.consultant("coders", "set", "alice@desk.example", "--capacity", "2")

    shown = json.loads(desk.consultant("coders", "show", "alice@desk.example", "--json").stdout)
    assert (shown["open"], shown["capacity"]) == (4, 2)
    assert set(owners(numbers)) == {coder_id("alice@desk.example")}


def test_deactivating_hands_open_cases_on_and_keeps_the_history(desk: Desk) -> None:
    add(desk, "alice@desk.example", "--specialty", "radiology")
    numbers = make_tickets(3)
    sweep()
    add(desk, "bob@desk.example", "--specialty", "radiology")

    result = desk.consultant(
        "coders", "set", "alice@desk.example", "--inactive", "--by", "lead@desk.example"
    )

    assert result.returncode == 0, result.stderr
    assert set(owners(numbers)) == {coder_id("bob@desk.example")}
    assert all(
        events(n, "routing.unassigned") == ["alice@desk.example was deactivated"] for n in numbers
    )
    with session_scope() as session:
        alice = session.exec(select(Coder).where(Coder.email == "alice@desk.example")).one()
        kept = session.exec(select(Assignment).where(Assignment.coder_id == alice.id)).all()
    assert not alice.active
    assert [a.ended_reason for a in kept] == ["alice@desk.example was deactivated"] * 3


def test_going_away_hands_cases_on_now_or_when_the_absence_starts(desk: Desk) -> None:
    add(desk, "alice@desk.example", "--specialty", "radiology")
    add(desk, "bob@desk.example", "--specialty", "radiology")
    first = make_tickets(2)
    sweep()
    assert owners(first).count(coder_id("alice@desk.example")) == 1

    tomorrow = (utcnow() + timedelta(days=1)).isoformat(timespec="minutes")
    later = desk.consultant("coders", "away", "bob@desk.example", "--from", tomorrow)
    assert later.returncode == 0, later.stderr
    assert owners(first).count(coder_id("bob@desk.example")) == 1  # not gone yet

    sweep(now=utcnow() + timedelta(days=1, minutes=1))
    assert owners(first) == [coder_id("alice@desk.example")] * 2

    now = desk.consultant("coders", "away", "alice@desk.example", "--until", "2099-01-01")
    assert now.returncode == 0 and "away until 2099-01-01" in now.stdout
    assert owners(first) == [coder_id("bob@desk.example")] * 2  # bob is not away yet


def test_coming_back_takes_the_cases_that_waited(desk: Desk) -> None:
    add(desk, "alice@desk.example", "--specialty", "radiology")
    desk.consultant("coders", "away", "alice@desk.example")
    numbers = make_tickets(2)
    sweep()
    assert owners(numbers) == [None, None]

    back = desk.consultant("coders", "back", "alice@desk.example")

    assert back.returncode == 0, back.stderr
    assert owners(numbers) == [coder_id("alice@desk.example")] * 2


@pytest.mark.one_database("sqlite")
def test_routing_show_names_the_policy_and_who_would_get_each_specialty(desk: Desk) -> None:
    add(desk, "rad@desk.example", "--specialty", "radiology")
    add(desk, "any@desk.example", "--specialty", "generalist")

    shown = json.loads(desk.consultant("routing", "show", "--json").stdout)
    text = desk.consultant("routing", "show").stdout

    by_specialty = {row["specialty"]: row["eligible"] for row in shown["specialties"]}
    assert by_specialty["radiology"] == [
        {"email": "rad@desk.example", "tier": "specialty"},
        {"email": "any@desk.example", "tier": "generalist"},
    ]
    assert by_specialty["anesthesia"] == [{"email": "any@desk.example", "tier": "generalist"}]
    assert shown["tiers"] == ["specialty", "generalist", "family"]
    assert "tiers specialty,generalist,family  [default]" in text
    assert "specialties" in desk.consultant("codes", "specialties", "--help").stdout
    assert "generalist" in desk.consultant("codes", "specialties").stdout


@pytest.mark.one_database("sqlite")
def test_a_closed_date_moves_running_clocks_and_can_be_taken_back(desk: Desk) -> None:
    start = utcnow()
    with session_scope() as session:
        plan = Plan(name="standard", sla_hours=48)
        case = Ticket(
            subject="case", requester="pat@clinic.example", created_at=start, updated_at=start
        )
        session.add_all([plan, case])
        session.flush()
        sla.start_clocks(session, case, plan=plan, now=start)
        number = case.id

    def due() -> object:
        with session_scope() as session:
            return session.exec(select(SlaClock.due_at).where(SlaClock.ticket_id == number)).one()

    before = due()
    tomorrow = (start + timedelta(days=1)).date().isoformat()
    closed = desk.consultant("hours", "close", tomorrow, "--name", "office move")
    shown = desk.consultant("hours", "show", "--json")
    moved = due()
    opened = desk.consultant("hours", "open", tomorrow)
    twice = desk.consultant("hours", "open", tomorrow)
    garbage = desk.consultant("hours", "close", "next friday")

    assert closed.returncode == 0 and "1 open case(s) re-timed" in closed.stdout
    assert json.loads(shown.stdout)["closed_dates"] == [{"day": tomorrow, "name": "office move"}]
    assert moved > before  # type: ignore[operator]
    assert opened.returncode == 0 and abs(due() - before) < timedelta(seconds=5)  # type: ignore[operator]
    assert twice.returncode == 1 and "is not a closed date" in twice.stderr
    assert garbage.returncode == 1 and "is not a date" in garbage.stderr


@pytest.mark.one_database("sqlite")
def test_the_coders_report_counts_and_times_first_responses(desk: Desk) -> None:
    add(desk, "alice@desk.example", "--specialty", "radiology", "--capacity", "20")
    add(desk, "bob@desk.example", "--specialty", "radiology", "--capacity", "20")
    numbers = make_tickets(6)
    sweep()
    # Answer each case at a known business time: alice's three, then bob's three.
    used = {}
    with session_scope() as session:
        plan = Plan(name="standard", sla_hours=24)
        session.add(plan)
        session.flush()
        for number in numbers:
            case = session.get(Ticket, number)
            assert case is not None
            sla.start_clocks(session, case, plan=plan, now=case.created_at)
    for offset, number in enumerate(numbers):
        who = "alice@desk.example" if offset < 3 else "bob@desk.example"
        answered = desk.consultant("tickets", "answer", str(number), "--by", who, "--text", "Yes.")
        assert answered.returncode == 0, answered.stderr
        with session_scope() as session:
            clock = session.exec(select(SlaClock).where(SlaClock.ticket_id == number)).one()
            clock.used_seconds = (offset + 1) * 3600.0  # as if answered after n business hours
            session.add(clock)
            used[number] = (who, clock.used_seconds / 3600)

    people = json.loads(desk.consultant("report", "people", "--json").stdout)
    report = people["tables"]["people"]

    for row in report:
        hours = sorted(h for who, h in used.values() if who == row["coder"])
        assert row["answered"] == row["first_responses"] == 3
        # Nearest rank of three: the median is the second, the 90th percentile the third,
        # each read as the upper bound of its histogram bucket.
        shown = (row["first_response_p50_hours"], row["first_response_p90_hours"])
        assert shown == tuple(round(bucket_of(h * 3600) / 60, 2) for h in hours[1:])
        assert row["open"] == 3  # answered cases wait on the customer, still theirs
    assert {row["coder"]: row["assigned"] for row in report}["alice@desk.example"] >= 3
    with session_scope() as session:
        assert session.exec(select(Event).where(Event.kind == "coder.added")).all()
