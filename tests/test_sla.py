"""SLA clocks in business hours and the minute sweep, with the clock under the test's
control: due times worked out by hand, pauses, plan changes, reminders and breaches
once each, reassignment, and notifications that wait for working hours."""

from __future__ import annotations

import multiprocessing
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from consultant import sla, states
from consultant.config import get_settings
from consultant.db import session_scope
from consultant.escalation import sweep
from consultant.models import (
    Account,
    Coder,
    Event,
    Notification,
    OutboxEmail,
    Plan,
    SlaClock,
    Ticket,
    TicketStatus,
    utcnow,
)
from consultant.replies import queue_answer
from consultant.routing.assign import assign
from consultant.tickets import list_tickets
from consultant.worker import drain
from tests.cases import add_coder, case_email, store
from tests.conftest import Desk, running_celery_worker
from tests.servers.smtp_sink import SmtpSink

NEW_YORK_HOURS = "Mon-Fri 08:00-18:00 America/New_York"
CASE_TEXT = "Patient Jane Roe, DOB 1960-01-01, knee injection"  # must never leave the desk


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.fixture
def business_hours(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> Desk:
    monkeypatch.setenv("CONSULTANT_BUSINESS_HOURS", NEW_YORK_HOURS)
    monkeypatch.setenv("CONSULTANT_HOLIDAYS", "US")
    desk.env.update(CONSULTANT_BUSINESS_HOURS=NEW_YORK_HOURS, CONSULTANT_HOLIDAYS="US")
    get_settings.cache_clear()
    return desk


def open_case(at: datetime, *, sla_hours: int = 4, resolution_hours: int | None = None) -> int:
    """A case of a plan with these targets, opened at ``at``, its clocks running."""
    with session_scope() as session:
        plan = Plan(
            name=f"plan-{secrets.token_hex(4)}",
            sla_hours=sla_hours,
            resolution_hours=resolution_hours,
        )
        session.add(plan)
        session.flush()
        account = Account(address=f"billing-{plan.id}@clinic.example", plan_id=plan.id)  # type: ignore[arg-type]
        session.add(account)
        session.flush()
        ticket = Ticket(
            subject="Knee injection with an E/M visit",
            requester=account.address,
            account_id=account.id,
            specialty="radiology",
            created_at=at,
            updated_at=at,
        )
        session.add(ticket)
        session.flush()
        sla.start_clocks(session, ticket, plan=plan, now=at)
        return ticket.id  # type: ignore[return-value]


def clock(number: int, target: str = "first_response") -> SlaClock:
    with session_scope() as session:
        found = session.exec(
            select(SlaClock).where(SlaClock.ticket_id == number, SlaClock.target == target)
        ).one()
        session.expunge(found)
        return found


def move(number: int, to: str, at: datetime) -> None:
    with session_scope() as session:
        ticket = session.get(Ticket, number)
        assert ticket is not None
        states.move(session, ticket, to, actor="test", now=at)


def event_details(number: int, kind: str) -> list[str]:
    with session_scope() as session:
        return [
            d or ""
            for d in session.exec(
                select(Event.detail).where(Event.ticket_id == number, Event.kind == kind)
            )
        ]


# --- due times, by hand -------------------------------------------------------------


def test_a_case_in_the_last_business_hour_of_friday_is_due_on_monday(business_hours: Desk) -> None:
    # Friday 2026-12-04 17:00 EST (22:00 UTC): one business hour left that day, three
    # more from Monday 08:00 EST, so due Monday 11:00 EST = 16:00 UTC.
    number = open_case(utc(2026, 12, 4, 22, 0), sla_hours=4)
    assert clock(number).due_at == utc(2026, 12, 7, 16, 0)


def test_thanksgiving_does_not_count(business_hours: Desk) -> None:
    # Wednesday 2026-11-25 16:00 EST: two hours that day; Thursday is Thanksgiving;
    # Friday from 08:00 EST two more: due Friday 10:00 EST = 15:00 UTC.
    number = open_case(utc(2026, 11, 25, 21, 0), sla_hours=4)
    assert clock(number).due_at == utc(2026, 11, 27, 15, 0)


def test_a_weekend_with_the_clocks_going_forward_counts_right(business_hours: Desk) -> None:
    # Friday 2026-03-06 17:00 EST (22:00 UTC); on Sunday New York moves to EDT (UTC-4).
    # One hour Friday, three Monday from 08:00 EDT: due 11:00 EDT = 15:00 UTC.
    number = open_case(utc(2026, 3, 6, 22, 0), sla_hours=4)
    assert clock(number).due_at == utc(2026, 3, 9, 15, 0)


def test_a_case_arriving_at_night_starts_its_clock_in_the_morning(business_hours: Desk) -> None:
    # Tuesday 2026-12-08 23:30 EST (04:30 UTC Wednesday): the clock starts Wednesday 08:00
    # EST, two hours: due 10:00 EST = 15:00 UTC.
    number = open_case(utc(2026, 12, 9, 4, 30), sla_hours=2)
    assert clock(number).due_at == utc(2026, 12, 9, 15, 0)


def test_unset_business_hours_count_every_hour(desk: Desk) -> None:
    number = open_case(utc(2026, 12, 5, 23, 0), sla_hours=4)  # a Saturday night
    assert clock(number).due_at == utc(2026, 12, 6, 3, 0)


# --- pausing, resuming, stopping ----------------------------------------------------


def test_waiting_on_the_customer_pauses_the_clock_and_it_resumes_where_it_stopped(
    business_hours: Desk,
) -> None:
    monday_9 = utc(2026, 12, 7, 14, 0)  # 09:00 EST
    number = open_case(monday_9, sla_hours=4, resolution_hours=8)
    add_coder("alice@desk.example", specialties="radiology")
    with session_scope() as session:
        ticket = session.get(Ticket, number)
        coder = session.exec(select(Coder)).one()
        assert ticket is not None
        assign(session, ticket, coder, reason="routed", actor="test", now=monday_9)
        queue_answer(
            session,
            ticket=ticket,
            text="Which payer?",
            coder=coder,
            now=monday_9 + timedelta(hours=1),
        )

    first, resolution = clock(number), clock(number, "resolution")
    assert (first.stopped_at, first.used_seconds) == (monday_9 + timedelta(hours=1), 3600)
    assert resolution.running_since is None and resolution.used_seconds == 3600
    assert resolution.next_check_at is None  # nothing for the sweep while paused

    wednesday_9 = utc(2026, 12, 9, 14, 0)  # two days waiting on the customer
    move(number, TicketStatus.OPEN, wednesday_9)
    resumed = clock(number, "resolution")
    # 7 business hours left from Wednesday 09:00 EST: due 16:00 EST = 21:00 UTC.
    assert resumed.due_at == utc(2026, 12, 9, 21, 0)
    assert sweep(now=wednesday_9 + timedelta(minutes=1)).breached == 0

    move(number, TicketStatus.SOLVED, wednesday_9 + timedelta(hours=2))
    solved = clock(number, "resolution")
    assert solved.stopped_at is not None and solved.used_seconds == 3 * 3600
    with session_scope() as session:
        shown = session.get(Ticket, number)
        assert shown is not None and shown.due_at is None


def test_a_new_plan_counts_the_time_used_against_its_own_target(business_hours: Desk) -> None:
    monday_9 = utc(2026, 12, 7, 14, 0)
    number = open_case(monday_9, sla_hours=8)
    with session_scope() as session:
        ticket = session.get(Ticket, number)
        assert ticket is not None
        faster = Plan(name="priority", sla_hours=2)
        session.add(faster)
        session.flush()
        sla.retarget(session, ticket, plan=faster, now=monday_9 + timedelta(hours=1))
    # One hour used of two: due an hour later, 11:00 EST.
    assert clock(number).due_at == utc(2026, 12, 7, 16, 0)
    assert clock(number).target_seconds == 7200


def test_a_closed_date_the_admin_adds_moves_running_clocks(business_hours: Desk) -> None:
    number = open_case(utc(2026, 12, 4, 22, 0), sla_hours=4)  # due Monday 11:00 EST
    with session_scope() as session:
        from consultant.models import ClosedDate

        session.add(ClosedDate(day=datetime(2026, 12, 7).date(), name="office move", actor="admin"))
        session.flush()
        assert sla.recount_running(session, now=utc(2026, 12, 4, 22, 30)) == 1
    # Friday's last hour still counts; Monday is closed now, so the other three come
    # on Tuesday from 08:00 EST: due 11:00 EST = 16:00 UTC, a day later than before.
    assert clock(number).due_at == utc(2026, 12, 8, 16, 0)


# --- the sweep ----------------------------------------------------------------------


def owned_case(at: datetime, owner: str = "alice@desk.example") -> int:
    number = open_case(at, sla_hours=4)
    with session_scope() as session:
        ticket = session.get(Ticket, number)
        coder = session.exec(select(Coder).where(Coder.email == owner)).one()
        assert ticket is not None
        assign(session, ticket, coder, reason="routed", actor="test", now=at)
    return number


def test_at_risk_is_told_once_and_a_breach_once_even_when_the_sweep_runs_again(
    desk: Desk, smtp_sink: SmtpSink
) -> None:
    add_coder("alice@desk.example", specialties="radiology")
    add_coder("lead@desk.example", role="lead", capacity=0)
    start = utc(2026, 12, 7, 14, 0)
    number = owned_case(start)

    early = sweep(now=start + timedelta(hours=2, minutes=59))
    risky = [sweep(now=start + timedelta(hours=3, minutes=m)) for m in (0, 1, 30)]
    late = [sweep(now=start + timedelta(hours=4, minutes=m)) for m in (0, 5)]

    assert (early.warned, early.breached) == (0, 0)
    assert [r.warned for r in risky] == [1, 0, 0]
    assert [r.breached for r in late] == [1, 0]
    assert event_details(number, "sla.at_risk") == ["first_response: 75 % of 4 h used"]
    assert event_details(number, "sla.breached") == ["first_response: due 2026-12-07 18:00 UTC"]
    with session_scope() as session:
        lines = session.exec(select(Notification).order_by(col(Notification.id))).all()
    assert [(n.kind, n.coder_id) for n in lines] == [
        ("sla.at_risk:first_response", 1),
        ("sla.breached:first_response", 2),
    ]
    assert clock(number).next_check_at is None  # nothing left for any later sweep


def test_the_at_risk_list_holds_a_warned_case_until_it_breaches(desk: Desk) -> None:
    add_coder("alice@desk.example", specialties="radiology")
    start = utc(2026, 12, 7, 14, 0)
    number = owned_case(start)

    def listed(state: str, at: datetime) -> list[int]:
        with session_scope() as session:
            return [row["number"] for row in list_tickets(session, now=at, sla=state)]

    warned, late = start + timedelta(hours=3), start + timedelta(hours=4, minutes=1)
    sweep(now=warned)
    at_risk = (listed("at-risk", warned), listed("breached", warned))
    sweep(now=late)

    assert at_risk == ([number], [])
    assert (listed("at-risk", late), listed("breached", late)) == ([], [number])


def test_a_case_answered_in_time_never_escalates(desk: Desk) -> None:
    add_coder("alice@desk.example", specialties="radiology")
    start = utc(2026, 12, 7, 14, 0)
    number = owned_case(start)
    with session_scope() as session:
        ticket = session.get(Ticket, number)
        coder = session.exec(select(Coder)).one()
        assert ticket is not None
        queue_answer(
            session, ticket=ticket, text="Yes.", coder=coder, now=start + timedelta(hours=1)
        )

    report = sweep(now=start + timedelta(days=3))

    assert (report.warned, report.breached) == (0, 0)
    assert event_details(number, "sla.breached") == []


def test_a_breached_case_of_an_away_owner_goes_to_someone_on_shift(desk: Desk) -> None:
    add_coder("alice@desk.example", specialties="radiology")
    add_coder("night@desk.example", specialties="radiology", working_hours="Mon-Fri 22:00-06:00")
    add_coder("bob@desk.example", specialties="radiology")
    start = utc(2026, 12, 7, 14, 0)
    number = owned_case(start)
    with session_scope() as session:
        alice = session.exec(select(Coder).where(Coder.email == "alice@desk.example")).one()
        alice.away_from = start + timedelta(hours=3, minutes=30)  # left after the reminder
        session.add(alice)

    report = sweep(now=start + timedelta(hours=4))

    assert report.breached == 1 and report.reassigned == 1
    with session_scope() as session:
        ticket = session.get(Ticket, number)
        bob = session.exec(select(Coder).where(Coder.email == "bob@desk.example")).one()
        assert ticket is not None and ticket.coder_id == bob.id
    assert event_details(number, "ticket.reassigned") == [
        "to bob@desk.example: breached while its owner was away"
    ]


def test_notifications_carry_no_case_text_and_wait_for_working_hours(
    desk: Desk, smtp_sink: SmtpSink
) -> None:
    add_coder(
        "alice@desk.example",
        specialties="radiology",
        timezone="America/New_York",
        working_hours="Mon-Fri 08:00-17:00",
    )
    start = utc(2026, 12, 7, 22, 0)  # Monday 17:00 EST: alice has just gone home
    number = owned_case(start)
    with session_scope() as session:
        from consultant.models import Message

        session.add(
            Message(
                ticket_id=number,
                direction="in",
                message_id="<c@clinic.example>",
                sender="billing@clinic.example",
                subject="Knee",
                body_text=CASE_TEXT,
            )
        )

    evening = sweep(now=start + timedelta(hours=3))
    morning = sweep(now=utc(2026, 12, 8, 13, 30))  # Tuesday 08:30 EST
    drain()

    assert (evening.warned, evening.notices) == (1, [])
    assert len(morning.notices) == 1
    [email] = [m for m in smtp_sink.messages if "alice@desk.example" in m.rcpt_tos]
    text = email.raw.decode()
    assert f"CC-{number}" in text and "first response at risk" in text
    assert f"/tickets/{number}" in text
    assert "Jane Roe" not in text and "1960" not in text
    assert "auto-generated" in text
    with session_scope() as session:
        recipients = set(
            session.exec(select(OutboxEmail.recipient).where(OutboxEmail.kind == "notice"))
        )
    assert recipients == {"alice@desk.example"}


def _sweep_at(url: str, at: str) -> None:
    os.environ["CONSULTANT_DATABASE_URL"] = url
    sweep(now=datetime.fromisoformat(at))


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_sweeps_at_once_take_each_step_once(desk: Desk) -> None:
    add_coder("alice@desk.example", specialties="radiology", capacity=500)
    start = utc(2026, 12, 7, 14, 0)
    numbers = [owned_case(start) for _ in range(40)]
    at = (start + timedelta(hours=5)).isoformat()
    context = multiprocessing.get_context("spawn")
    url = desk.env["CONSULTANT_DATABASE_URL"]
    sweeps = [context.Process(target=_sweep_at, args=(url, at)) for _ in range(2)]
    for process in sweeps:
        process.start()
    for process in sweeps:
        process.join(120)
        assert process.exitcode == 0

    for number in numbers:
        assert len(event_details(number, "sla.at_risk")) == 1
        assert len(event_details(number, "sla.breached")) == 1


# --- plans that change under open cases ---------------------------------------------


def test_changing_a_plans_hours_or_an_accounts_plan_retargets_its_open_cases(desk: Desk) -> None:
    assert desk.consultant("plans", "add", "standard", "--cases", "unlimited").returncode == 0
    desk.consultant("plans", "add", "relaxed", "--cases", "unlimited", "--sla-hours", "40")
    desk.consultant("accounts", "add", "@clinic.example", "--plan", "standard")
    store(case_email("dana@clinic.example"))
    drain()
    with session_scope() as session:
        ticket = session.exec(select(Ticket)).one()
        number, opened = ticket.id, ticket.created_at
    assert number is not None and clock(number).target_seconds == 24 * 3600

    changed = desk.consultant(
        "plans", "set", "standard", "--sla-hours", "2", "--resolution-hours", "16"
    )
    assert changed.returncode == 0, changed.stderr
    first, solve = clock(number), clock(number, "resolution")
    assert (first.target_seconds, solve.target_seconds) == (2 * 3600, 16 * 3600)
    assert first.due_at is not None and abs(
        first.due_at - (opened + timedelta(hours=2))
    ) < timedelta(minutes=1)  # the minutes already used count against the new two hours
    assert solve.running_since is not None  # a target the plan did not have starts now

    moved = desk.consultant("accounts", "set", "@clinic.example", "--plan", "relaxed")
    assert moved.returncode == 0, moved.stderr
    relaxed = clock(number)
    assert relaxed.target_seconds == 40 * 3600
    with session_scope() as session:
        shown = session.get(Ticket, number)
        targets = session.exec(select(SlaClock.target).where(SlaClock.ticket_id == number)).all()
    assert targets == ["first_response"]  # the relaxed plan promises no resolution time
    assert shown is not None and shown.due_at == relaxed.due_at
    assert event_details(number, "sla.retargeted") == [
        "standard: first_response 2 h, resolution 16 h",
        "relaxed: first_response 40 h",
    ]


# --- the real beat and worker -------------------------------------------------------


@contextmanager
def running_beat(env: dict[str, str], folder: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``celery beat`` as a deployment runs it, with its schedule file in ``folder``."""
    command = [sys.executable, "-m", "celery", "-A", "workers.app", "beat", "--loglevel", "INFO"]
    command += ["--schedule", str(folder / "beat-schedule")]
    with (folder / "beat.log").open("ab") as log:
        beat = subprocess.Popen(
            command, env={**os.environ, **env}, cwd=folder, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield beat
    finally:
        beat.terminate()
        beat.wait(timeout=20)


def wait_until(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.2)


def test_beat_and_a_worker_escalate_a_late_case_once_across_a_beat_restart(
    celery_postgres_desk: Desk, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    desk = celery_postgres_desk
    # The desk's own sweep of lost work at its usual pace; the escalation sweep twice a second.
    env = {**desk.env, "CONSULTANT_SWEEP_SECONDS": "60", "CONSULTANT_ESCALATION_SECONDS": "0.5"}
    add_coder("alice@desk.example", specialties="radiology")
    add_coder("lead@desk.example", role="lead", capacity=0)
    number = owned_case(utcnow() - timedelta(hours=5))  # four hours to answer: breached

    with running_celery_worker(env, tmp_path / "worker.log"):
        with running_beat(env, tmp_path):
            wait_until(
                lambda: bool(event_details(number, "sla.breached")), timeout=60, what="the breach"
            )
        with running_beat(env, tmp_path):  # a beat restarted, on the same schedule file
            time.sleep(3)  # six more sweeps
        notices = [m for m in smtp_sink.wait_for(2, timeout=30) if f"CC-{number}".encode() in m.raw]

    assert len(event_details(number, "sla.at_risk")) == 1
    assert len(event_details(number, "sla.breached")) == 1
    assert sorted(m.rcpt_tos for m in notices) == [("alice@desk.example",), ("lead@desk.example",)]
    assert all(b"Knee injection with an E/M visit" in m.raw for m in notices)  # the subject
    with session_scope() as session:
        ticket = session.get(Ticket, number)
    assert ticket is not None and ticket.coder_id is not None  # alice is at work: it stays


def test_run_once_escalates_so_a_desk_run_from_cron_does_too(
    desk: Desk, smtp_sink: SmtpSink
) -> None:
    add_coder("alice@desk.example", specialties="radiology")
    add_coder("lead@desk.example", role="lead", capacity=0)
    number = owned_case(utcnow() - timedelta(hours=5))  # four hours to answer: breached

    ran = desk.consultant("run", "--once")

    assert ran.returncode == 0, ran.stderr
    assert len(event_details(number, "sla.breached")) == 1
    told = {m.rcpt_tos for m in smtp_sink.wait_for(2, timeout=10)}
    assert told == {("alice@desk.example",), ("lead@desk.example",)}


def test_a_check_that_comes_early_looks_again_at_the_mark_and_never_skips_the_reminder(
    desk: Desk,
) -> None:
    add_coder("alice@desk.example", specialties="radiology")
    start = utc(2026, 12, 7, 14, 0)
    number = owned_case(start)  # 4 h: at risk at 17:00 UTC, due 18:00
    with session_scope() as session:  # worked out under other hours: an hour too soon
        early = session.get(SlaClock, clock(number).id)
        assert early is not None
        early.next_check_at = utc(2026, 12, 7, 16, 0)

    assert sweep(now=utc(2026, 12, 7, 16, 0)).warned == 0
    assert clock(number).next_check_at == utc(2026, 12, 7, 17, 0)
    assert sweep(now=utc(2026, 12, 7, 17, 0)).warned == 1


def test_a_part_of_the_sweep_that_fails_leaves_the_others_done(
    desk: Desk, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import consultant.escalation

    add_coder("alice@desk.example", specialties="radiology")
    number = owned_case(utc(2026, 12, 7, 14, 0))

    def broken(*_: object, **__: object) -> int:
        raise RuntimeError("claims table unreadable")

    monkeypatch.setattr(consultant.escalation, "expire_claims", broken)
    report = sweep(now=utc(2026, 12, 7, 19, 0))

    assert (report.warned, report.breached) == (1, 1)
    assert "escalation sweep: claims failed" in caplog.text
    assert len(event_details(number, "sla.breached")) == 1


def test_the_acknowledgement_promises_business_hours_and_the_time_in_the_customers_zone(
    business_hours: Desk, smtp_sink: SmtpSink
) -> None:
    business_hours.consultant("accounts", "add", "@clinic.example", "--timezone", "Europe/Paris")
    store(case_email("dana@clinic.example"))
    drain()

    [ack] = smtp_sink.wait_for(1, timeout=10)
    with session_scope() as session:
        due = session.exec(select(Ticket.due_at)).one()
    assert due is not None
    paris = due.astimezone(ZoneInfo("Europe/Paris"))
    promise = f"within 48 business hours, by {paris:%A, %B %-d at %H:%M} {paris.tzname()}."
    text = message_from_bytes(ack.raw, policy=policy.default).get_body(("plain",))
    assert text is not None and promise in " ".join(text.get_content().split())


def test_the_list_shows_a_waiting_case_paused_and_a_solved_one_not(desk: Desk) -> None:
    add_coder("alice@desk.example", specialties="radiology")
    number = owned_case(utcnow() - timedelta(hours=1))

    def listed_state() -> str:
        listed = desk.consultant("tickets", "list")
        [line] = [ln for ln in listed.stdout.splitlines() if f"CC-{number}" in ln]
        return line.split()[2]

    assert listed_state() == "on-track"
    move(number, "pending", utcnow())
    assert listed_state() == "paused"
    move(number, "solved", utcnow())
    assert listed_state() == "-"
