"""The minute sweep: SLA steps, ended leases, auto-close, waiting cases, notifications.

Run every ``CONSULTANT_ESCALATION_SECONDS`` (60) by Celery beat, or by the embedded
worker. Each part is its own transaction, so one that fails leaves the others done.

A clock's steps — the at-risk reminder to the owner at 75 %, the breach (the leads are
told; a case whose owner is away or off shift goes to someone on shift) — each happen
once per ticket and target: the step's mark (``warned_at``, ``breached_at``) is written
in the transaction that acts on it, and the rows are taken ``FOR UPDATE SKIP LOCKED``,
so a restarted beat, or two beats at once, never repeat one.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from consultant import dispatch, sla, states
from consultant.config import get_settings
from consultant.db import session_scope
from consultant.models import Coder, Event, SlaClock, Ticket, TicketStatus, utcnow
from consultant.notifications import Notices, deliver
from consultant.routing.assign import hand_back_absent, reassign_breached, route_tickets
from consultant.routing.claims import expire_claims

log = logging.getLogger(__name__)

CLOCKS_PER_TRANSACTION = 1000
# Cases from before the desk kept clocks get theirs from the first sweeps after an
# upgrade; once a sweep finds none, this process stops looking (new cases always get
# their clocks at intake), which keeps the minute sweep free of that scan.
_MISSING_CLOCKS_STARTED = threading.Event()
ROUNDING = 0.001  # seconds: business time summed in floats may fall short by a hair
DESK = "desk"


@dataclass
class SweepReport:
    clocks_started: int = 0  # cases from before the desk kept clocks
    warned: int = 0
    breached: int = 0
    reassigned: int = 0
    claims_expired: int = 0
    closed: int = 0
    handed_back: int = 0
    routed: int = 0
    notices: list[int] = field(default_factory=list)  # outbox ids


def sweep(*, now: datetime | None = None) -> SweepReport:
    """Everything time has made due, once. Safe to run at any moment, and twice at once.

    Each part runs in its own transaction; one that fails is logged and the others still
    run (the failed one is tried again by the next sweep). A database that is away fails
    the whole sweep, for the task's retry.
    """
    now = now or utcnow()
    report = SweepReport()

    def clocks() -> None:
        if not _MISSING_CLOCKS_STARTED.is_set():
            with session_scope() as session:
                report.clocks_started = sla.start_missing_clocks(session, now=now)
            if report.clocks_started == 0:
                _MISSING_CLOCKS_STARTED.set()
        while _check_clocks(now, report) == CLOCKS_PER_TRANSACTION:
            pass

    def claims() -> None:
        with session_scope() as session:
            report.claims_expired = expire_claims(session, now=now)

    def closing() -> None:
        with session_scope() as session:
            report.closed = _auto_close(session, now=now)

    def absences() -> None:
        with session_scope() as session:
            report.handed_back = hand_back_absent(session, now=now)

    def waiting() -> None:
        with session_scope() as session:
            report.routed = sum(1 for r in route_tickets(session, None, now=now) if r.coder_id)

    def notices() -> None:
        with session_scope() as session:
            report.notices = deliver(session, now=now)

    for part in (clocks, claims, closing, absences, waiting, notices):
        try:
            part()
        except OperationalError:
            raise
        except Exception:
            log.exception("escalation sweep: %s failed", part.__name__)
    dispatch.outbox_queued(report.notices)
    return report


def _check_clocks(now: datetime, report: SweepReport) -> int:
    """One transaction's worth of clocks whose next check has come; how many it took.

    The tickets are locked before their clocks, the order every writer of a clock keeps
    (routing, answering, a status change), and ``SKIP LOCKED``: a ticket someone is
    changing at this moment is left for the next sweep, never waited on, deadlocked
    with or overwritten.
    """
    with session_scope() as session:
        due = (
            select(SlaClock.ticket_id)
            .where(col(SlaClock.next_check_at) <= now)
            .order_by(col(SlaClock.next_check_at), col(SlaClock.id))
            .limit(CLOCKS_PER_TRANSACTION)
        )
        ticket_ids = set(session.exec(due))
        if not ticket_ids:
            return 0
        locked = (
            select(Ticket)
            .where(col(Ticket.id).in_(ticket_ids))
            .order_by(col(Ticket.id))
            .with_for_update(skip_locked=True)
        )
        tickets = {t.id: t for t in session.exec(locked)}
        clocks = session.exec(
            select(SlaClock)
            .where(col(SlaClock.ticket_id).in_(tickets), col(SlaClock.next_check_at) <= now)
            .order_by(col(SlaClock.id))
            .with_for_update(skip_locked=True)
        ).all()
        owner_ids = {t.coder_id for t in tickets.values() if t.coder_id is not None}
        owners = {c.id: c for c in session.exec(select(Coder).where(col(Coder.id).in_(owner_ids)))}
        schedule = sla.desk_schedule(session)
        notices = Notices(session)
        with session.no_autoflush:  # one flush for the batch, not one per step
            for clock in clocks:
                ticket = tickets[clock.ticket_id]
                _step(
                    session,
                    clock,
                    ticket,
                    owner=owners.get(ticket.coder_id) if ticket.coder_id else None,
                    notices=notices,
                    now=now,
                    schedule_used=_used(clock, now, schedule),
                    report=report,
                )
                sla.after_step(clock, schedule)
                session.add(clock)
        notices.queue()
        return len(clocks)


def _used(clock: SlaClock, now: datetime, schedule: sla.Schedule) -> float:
    if clock.running_since is None:
        return clock.used_seconds
    return clock.used_seconds + schedule.between(clock.running_since, now)


def _step(
    session: Session,
    clock: SlaClock,
    ticket: Ticket,
    *,
    owner: Coder | None,
    notices: Notices,
    now: datetime,
    schedule_used: float,
    report: SweepReport,
) -> None:
    target = clock.target
    schedule_used += ROUNDING  # the mark's instant was worked out from this sum
    if clock.warned_at is None and schedule_used >= clock.target_seconds * sla.AT_RISK_SHARE:
        clock.warned_at = now
        report.warned += 1
        _event(
            session,
            ticket,
            "sla.at_risk",
            f"{target}: 75 % of {clock.target_seconds // 3600} h used",
        )
        if owner is not None:
            notices.add(
                coder=owner, ticket=ticket, kind=f"sla.at_risk:{target}", key=f"at_risk:{clock.id}"
            )
        else:
            notices.add_for_leads(
                ticket=ticket, kind=f"sla.at_risk:{target}", key=f"at_risk:{clock.id}"
            )
    if clock.breached_at is None and schedule_used >= clock.target_seconds:
        clock.breached_at = now
        report.breached += 1
        _event(session, ticket, "sla.breached", f"{target}: due {clock.due_at:%Y-%m-%d %H:%M} UTC")
        notices.add_for_leads(
            ticket=ticket, kind=f"sla.breached:{target}", key=f"breached:{clock.id}"
        )
        if reassign_breached(session, ticket, now=now):
            report.reassigned += 1


def _event(session: Session, ticket: Ticket, kind: str, detail: str) -> None:
    session.add(Event(ticket_id=ticket.id, actor=DESK, kind=kind, detail=detail))


def _auto_close(session: Session, *, now: datetime) -> int:
    days = get_settings().auto_close_days
    query = (
        select(Ticket)
        .where(
            Ticket.status == TicketStatus.SOLVED,
            col(Ticket.solved_at) <= now - timedelta(days=days),
        )
        .order_by(col(Ticket.id))
        .limit(CLOCKS_PER_TRANSACTION)
        .with_for_update(skip_locked=True)
    )
    tickets = list(session.exec(query).all())
    for ticket in tickets:
        states.move(
            session,
            ticket,
            TicketStatus.CLOSED,
            actor=DESK,
            now=now,
            reason=f"solved {days} days ago",
        )
    return len(tickets)
