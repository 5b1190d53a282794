"""Cases reaching coders in the database: routing after the lookup, follow-ups, waiting
cases, claims with their lease, leads' reassignment, and two routers at once."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, func, select

from consultant.codes.specialty import SPECIALTIES
from consultant.db import session_scope
from consultant.escalation import sweep
from consultant.models import (
    Assignment,
    Coder,
    Event,
    Notification,
    OutboxEmail,
    Ticket,
    TicketStatus,
    utcnow,
)
from consultant.routing.assign import route_tickets
from consultant.worker import drain
from tests.cases import add_coder, case_email, store
from tests.conftest import Desk
from tests.servers.smtp_sink import SmtpSink

CASE = "We did a home infusion visit; how do we bill 99601 and 99602 for the second hour?"


def make_tickets(count: int, *, specialty: str = "radiology") -> list[int]:
    """Tickets as intake leaves them once their codes are looked up: new, no owner."""
    now = utcnow()
    with session_scope() as session:
        tickets = [
            Ticket(
                subject=f"case {n}",
                requester="pat@clinic.example",
                specialty=specialty,
                created_at=now,
                updated_at=now,
            )
            for n in range(count)
        ]
        session.add_all(tickets)
        session.flush()
        return [t.id for t in tickets]  # type: ignore[misc]


def ticket(number: int) -> Ticket:
    with session_scope() as session:
        found = session.get(Ticket, number)
        assert found is not None
        session.expunge(found)
        return found


def events(number: int, kind: str) -> list[str]:
    with session_scope() as session:
        rows = session.exec(
            select(Event.detail).where(Event.ticket_id == number, Event.kind == kind)
        ).all()
        return [row or "" for row in rows]


def test_a_case_goes_to_its_specialist_once_its_codes_are_looked_up(
    desk: Desk, smtp_sink: SmtpSink
) -> None:
    coders = {name: add_coder(f"{name}@desk.example", specialties=name) for name in SPECIALTIES}
    add_coder("any@desk.example", specialties="generalist")

    store(case_email("dana@clinic.example", subject="Home infusion, second hour", body=CASE))
    drain()

    case = ticket(1)
    assert case.specialty == "medicine-home-health"
    assert (case.status, case.coder_id) == ("open", coders["medicine-home-health"])
    assert events(1, "routing.assigned") == ["to medicine-home-health@desk.example: routed"]
    assert len(smtp_sink.messages) == 1  # the acknowledgement went out as before
    shown = desk.consultant("tickets", "show", "1")
    assert "owner: medicine-home-health@desk.example" in shown.stdout
    assert "SLA first response: on-track" in shown.stdout


def test_a_follow_up_stays_with_its_owner_unless_the_owner_is_away(desk: Desk) -> None:
    alice = add_coder("alice@desk.example", specialties="generalist")
    store(case_email("dana@clinic.example"))
    drain()
    assert ticket(1).coder_id == alice
    answered = desk.consultant(
        "tickets",
        "answer",
        "1",
        "--by",
        "alice@desk.example",
        "--text",
        "Bill 99213-25 with 20610.",
    )
    assert answered.returncode == 0, answered.stderr
    with session_scope() as session:
        [reply_to] = session.exec(
            select(OutboxEmail.message_id).where(OutboxEmail.kind == "answer")
        )
    bob = add_coder("bob@desk.example", specialties="generalist")
    assert ticket(1).status == "pending"

    store(
        case_email("dana@clinic.example", subject="Re: thanks", headers={"In-Reply-To": reply_to})
    )
    drain()
    assert (ticket(1).status, ticket(1).coder_id) == ("open", alice)  # not bob, less loaded

    desk.consultant("tickets", "status", "1", "pending", "--by", "alice@desk.example")
    with session_scope() as session:
        away = session.get(Coder, alice)
        assert away is not None
        away.away_from = utcnow() - timedelta(minutes=1)
        session.add(away)
    store(
        case_email("dana@clinic.example", subject="Re: one more", headers={"In-Reply-To": reply_to})
    )
    drain()

    assert (ticket(1).status, ticket(1).coder_id) == ("open", bob)
    assert events(1, "routing.unassigned") == ["alice@desk.example is away"]


def test_a_case_nobody_can_take_waits_and_the_leads_hear_once_in_one_digest(
    desk: Desk, smtp_sink: SmtpSink
) -> None:
    add_coder("rad@desk.example", specialties="radiology", capacity=1)
    add_coder("lead@desk.example", role="lead", specialties="radiology", capacity=0)
    numbers = make_tickets(4, specialty="anesthesia") + make_tickets(1)
    now = utcnow()

    with session_scope() as session:
        routed = route_tickets(session, numbers, now=now)
    with session_scope() as session:
        again = route_tickets(session, None, now=now + timedelta(minutes=1))
    report = sweep(now=now + timedelta(minutes=2))
    drain()

    assert [r.coder_id is None for r in routed] == [True] * 4 + [False]
    assert [r.coder_id for r in again] == [None] * 4
    assert all(len(events(n, "routing.waiting")) == 1 for n in numbers[:4])
    assert len(report.notices) == 1
    [digest] = [m for m in smtp_sink.messages if "lead@desk.example" in m.rcpt_tos]
    text = digest.raw.decode()
    assert "4 cases need you" in text
    assert all(f"CC-{n}" in text for n in numbers[:4])
    assert "waiting for an owner (anesthesia)" in text


def test_a_claim_holds_the_case_until_it_is_answered_or_its_lease_runs_out(desk: Desk) -> None:
    add_coder("alice@desk.example", specialties="radiology")
    add_coder("bob@desk.example", specialties="radiology")
    [number] = make_tickets(1)

    claimed = desk.consultant("tickets", "claim", str(number), "--by", "alice@desk.example")
    refused = desk.consultant("tickets", "claim", str(number), "--by", "bob@desk.example")
    crossing = desk.consultant(
        "tickets",
        "answer",
        str(number),
        "--by",
        "bob@desk.example",
        "--text",
        "An answer across Alice's.",
    )

    assert claimed.returncode == 0, claimed.stderr
    assert "is yours until" in claimed.stdout
    assert refused.returncode == 1
    assert f"CC-{number} is claimed by alice@desk.example until " in refused.stderr
    assert crossing.returncode == 1 and "claimed by alice@desk.example" in crossing.stderr

    later = utcnow() + timedelta(minutes=16)
    sweep(now=later)
    assert events(number, "claim.expired") == ["the lease ran out"]
    assert ticket(number).claimed_by_id is None

    taken = desk.consultant("tickets", "claim", str(number), "--by", "bob@desk.example")
    answered = desk.consultant(
        "tickets", "answer", str(number), "--by", "bob@desk.example", "--text", "Bill 71046 once."
    )
    assert taken.returncode == 0 and answered.returncode == 0, answered.stderr
    assert ticket(number).claimed_by_id is None
    assert events(number, "claim.ended") == ["answered"]
    assert "to bob@desk.example: claimed by bob@desk.example" in events(number, "ticket.reassigned")


def test_a_lead_reassigns_a_case_and_a_coder_cannot(desk: Desk) -> None:
    add_coder("alice@desk.example", specialties="radiology")
    add_coder("bob@desk.example", specialties="radiology")
    add_coder("lead@desk.example", role="lead")
    [number] = make_tickets(1)
    desk.consultant("tickets", "claim", str(number), "--by", "alice@desk.example")

    by_coder = desk.consultant(
        "tickets", "assign", str(number), "--to", "bob@desk.example", "--by", "alice@desk.example"
    )
    by_lead = desk.consultant(
        "tickets", "assign", str(number), "--to", "bob@desk.example", "--by", "lead@desk.example"
    )

    assert by_coder.returncode == 1
    assert "only a lead or an admin assigns cases" in by_coder.stderr
    assert by_lead.returncode == 0, by_lead.stderr
    assert ticket(number).claimed_by_id is None
    with session_scope() as session:
        stretches = session.exec(
            select(Assignment).where(Assignment.ticket_id == number).order_by(col(Assignment.id))
        ).all()
    assert [(a.reason, a.ended_reason) for a in stretches] == [
        ("claimed by alice@desk.example", "assigned by lead@desk.example"),
        ("assigned by lead@desk.example", None),
    ]


def test_status_moves_the_state_machine_does_not_allow_are_refused(desk: Desk) -> None:
    add_coder("alice@desk.example", specialties="radiology")
    [number] = make_tickets(1)

    unowned = desk.consultant(
        "tickets", "status", str(number), "open", "--by", "alice@desk.example"
    )
    with session_scope() as session:
        closed = session.get(Ticket, number)
        assert closed is not None
        closed.status = TicketStatus.CLOSED
        session.add(closed)
    reopened = desk.consultant(
        "tickets", "status", str(number), "pending", "--by", "alice@desk.example"
    )
    answered = desk.consultant(
        "tickets", "answer", str(number), "--by", "alice@desk.example", "--text", "Too late."
    )

    assert unowned.returncode == 1 and "has no owner; claim it" in unowned.stderr
    assert reopened.returncode == 1 and "closed, which is final" in reopened.stderr
    assert answered.returncode == 1 and "closed, which is final" in answered.stderr


def test_a_reply_to_a_closed_case_opens_a_new_case(desk: Desk) -> None:
    add_coder("alice@desk.example", specialties="generalist")
    store(case_email("dana@clinic.example"))
    drain()
    desk.consultant(
        "tickets",
        "answer",
        "1",
        "--by",
        "alice@desk.example",
        "--text",
        "Done.",
        "--then",
        "solved",
    )
    with session_scope() as session:
        [reply_to] = session.exec(
            select(OutboxEmail.message_id).where(OutboxEmail.kind == "answer")
        )
    sweep(now=utcnow() + timedelta(days=8))
    assert ticket(1).status == "closed"

    store(case_email("dana@clinic.example", subject="Re: Done", headers={"In-Reply-To": reply_to}))
    drain()

    assert ticket(1).status == "closed"
    # A new case, charged as one: the guest plan's single case is used, so it waits.
    assert (ticket(2).requester, ticket(2).status) == ("dana@clinic.example", "held_quota")
    with session_scope() as session:
        assert session.exec(
            select(Event.detail).where(Event.kind == "thread.closed_case")
        ).all() == ["follows up CC-1, closed"]


# --- two routers at once --------------------------------------------------------------


def _route_all(url: str, rounds: int) -> None:
    """A worker process: route whatever is waiting, again and again."""
    os.environ["CONSULTANT_DATABASE_URL"] = url
    for _ in range(rounds):
        with session_scope() as session:
            route_tickets(session, None, now=utcnow(), limit=20)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_workers_routing_at_once_never_overfill_a_coder_or_assign_a_case_twice(
    desk: Desk,
) -> None:
    capacities = [3, 5, 8, 13, 21, 34, 55, 61]  # 200 places for 200 cases
    ids = [
        add_coder(f"c{n}@desk.example", specialties="radiology", capacity=c)
        for n, c in enumerate(capacities)
    ]
    make_tickets(200)
    context = multiprocessing.get_context("spawn")
    url = desk.env["CONSULTANT_DATABASE_URL"]
    workers = [context.Process(target=_route_all, args=(url, 12)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0

    with session_scope() as session:
        loads = dict(
            session.exec(select(Ticket.coder_id, func.count()).group_by(col(Ticket.coder_id))).all()
        )
        open_stretches = session.exec(
            select(Assignment.ticket_id, func.count())
            .where(col(Assignment.ended_at).is_(None))
            .group_by(col(Assignment.ticket_id))
        ).all()
    assert loads == dict(zip(ids, capacities, strict=True))  # every case placed, none over
    assert len(open_stretches) == 200 and {count for _, count in open_stretches} == {1}
    assert len(events_of_kind("routing.assigned")) == 200


def events_of_kind(kind: str) -> list[Event]:
    with session_scope() as session:
        return list(session.exec(select(Event).where(Event.kind == kind)).all())


def test_notifications_are_queued_once_per_cause(desk: Desk) -> None:
    add_coder("lead@desk.example", role="lead", capacity=0)
    [number] = make_tickets(1, specialty="anesthesia")
    now = utcnow()
    for _ in range(3):
        with session_scope() as session:
            route_tickets(session, [number], now=now)
    with session_scope() as session:
        assert session.exec(select(func.count()).select_from(Notification)).one() == 1


# --- lookups that fail or are lost --------------------------------------------------


def test_a_case_whose_code_lookup_breaks_is_routed_without_its_codes(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    from consultant.codes import lookup

    alice = add_coder("alice@desk.example", specialties="generalist")
    real = lookup.extract_sources

    def breaks_on_one_case(sources: Iterable[tuple[str, str]], **kwargs: Any) -> object:
        texts = list(sources)
        if any("BREAKS-THE-LOOKUP" in text for _, text in texts):  # no extractor reads it
            raise ValueError("unreadable")
        return real(texts, **kwargs)

    monkeypatch.setattr(lookup, "extract_sources", breaks_on_one_case)
    store(case_email("dana@clinic.example", body=CASE))
    store(case_email("erin@other.example", body="BREAKS-THE-LOOKUP 99213"))
    drain()
    drain()  # nothing is tried again: the broken case has been dealt with

    with session_scope() as session:
        tickets = session.exec(select(Ticket).order_by(col(Ticket.id))).all()
    assert [(t.specialty, t.coder_id) for t in tickets] == [
        ("medicine-home-health", alice),
        ("general", alice),
    ]
    assert events(tickets[1].id, "codes.failed") == [  # type: ignore[arg-type]
        "ValueError: the case is routed without its codes"
    ]
    assert events(tickets[0].id, "codes.failed") == []  # type: ignore[arg-type]


def test_the_embedded_desk_acknowledges_before_it_looks_codes_up_and_routes(
    desk: Desk, smtp_sink: SmtpSink
) -> None:
    add_coder("alice@desk.example", specialties="generalist")
    for n in range(30):  # more than one batch
        store(case_email(f"biller{n}@clinic.example", body=CASE))
    drain()

    with session_scope() as session:
        last_ack = max(
            e.sent_at
            for e in session.exec(select(OutboxEmail).where(OutboxEmail.kind == "ack"))
            if e.sent_at is not None
        )
    first_routed = min(e.created_at for e in events_of_kind("routing.assigned"))
    assert len(smtp_sink.messages) == 30
    assert last_ack <= first_routed
