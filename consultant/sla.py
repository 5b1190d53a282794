"""SLA clocks: how much of a ticket's promised time is used, counted in business hours.

Each ticket of a plan has a first-response clock (``Plan.sla_hours``) and, when the plan
sets one, a resolution clock (``Plan.resolution_hours``). A clock runs only while a
coder owes the customer something: it pauses while the ticket is ``pending`` (waiting on
the customer) and resumes where it stopped, so time the customer took is never counted
against the desk; a ticket leaving ``pending`` is not "breached at once". The first
response clock stops for good when a person's answer is queued (an automatic
acknowledgement is not a response); the resolution clock stops at ``solved`` and runs on
if the customer reopens the case.

Business hours and holidays are the desk settings in force (consultant/desk_settings.py:
the admin's, else ``CONSULTANT_BUSINESS_HOURS`` and ``CONSULTANT_HOLIDAYS``) with the
admin's closed dates (consultant/hours.py does the arithmetic). Each running clock keeps
its due time and the next instant the escalation sweep must look at it, worked out when
it starts or resumes, so checking clocks costs nothing per ticket that needs nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlmodel import Session, col, select

from consultant import desk_settings
from consultant.hours import Schedule, parse_schedule
from consultant.models import (
    Account,
    ClosedDate,
    Event,
    Plan,
    SlaClock,
    SlaTarget,
    Ticket,
    TicketStatus,
)

AT_RISK_SHARE = 0.75  # a clock that has used this much of its target is at risk
RUNNING_IN = frozenset({TicketStatus.NEW, TicketStatus.OPEN})
FINISHED_IN = frozenset({TicketStatus.SOLVED, TicketStatus.CLOSED})
UNFINISHED_IN = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING)


class ClockState:
    ON_TRACK = "on-track"
    AT_RISK = "at-risk"
    BREACHED = "breached"


# --- the desk's business hours -----------------------------------------------------


def desk_schedule(session: Session) -> Schedule:
    """The business hours every SLA clock counts in, with today's closed dates."""
    return schedule_of(session, desk_settings.in_force(session))


def schedule_of(session: Session, desk: desk_settings.DeskSettings) -> Schedule:
    """The schedule of these settings' hours and holidays, with today's closed dates."""
    closed = tuple(session.exec(select(ClosedDate.day).order_by(col(ClosedDate.day))).all())
    return _schedule(desk.business_hours, desk.holidays, closed)


@lru_cache(maxsize=8)
def _schedule(hours: str, holidays: str, closed: tuple[date, ...]) -> Schedule:
    return parse_schedule(hours, holidays_spec=holidays, closed=closed)


# --- starting, pausing and stopping ------------------------------------------------


def new_clocks(
    ticket_id: int, plan: Plan, *, now: datetime, schedule: Schedule
) -> list[dict[str, Any]]:
    """The clock rows of a ticket of ``plan`` opened at ``now``, running, to insert."""
    rows = []
    for target, hours in _targets(plan):
        clock = SlaClock(ticket_id=ticket_id, target=target, target_seconds=hours * 3600)
        _resume(clock, now, schedule)
        rows.append(clock.model_dump(exclude={"id"}))
    return rows


def first_due(plan: Plan, *, now: datetime, schedule: Schedule) -> datetime:
    """When the first response to a case opened at ``now`` is due."""
    return schedule.add(now, plan.sla_hours * 3600)


def start_clocks(session: Session, ticket: Ticket, *, plan: Plan, now: datetime) -> None:
    """Start the clocks of a case whose promise begins now (a held case released); a
    ticket that has its clocks already keeps them."""
    if clocks_of(session, ticket.id):  # type: ignore[arg-type]
        return
    rows = new_clocks(ticket.id, plan, now=now, schedule=desk_schedule(session))  # type: ignore[arg-type]
    for row in rows:
        session.add(SlaClock(**row))
    ticket.due_at = min(row["due_at"] for row in rows)
    session.add(ticket)


def start_missing_clocks(session: Session, *, now: datetime, limit: int = 500) -> int:
    """Clocks for unfinished cases that have none — cases from before the desk kept
    clocks, in a database brought up to date — counted from each case's arrival and set
    to its status (paused while pending). How many cases; none costs one query."""
    has_clock = select(SlaClock.id).where(SlaClock.ticket_id == Ticket.id).exists()
    query = (
        select(Ticket, Plan)
        .join(Account, col(Account.id) == col(Ticket.account_id))
        .join(Plan, col(Plan.id) == col(Account.plan_id))
        .where(col(Ticket.status).in_(UNFINISHED_IN), ~has_clock)
        .order_by(col(Ticket.id))
        .limit(limit)
    )
    found = session.exec(query).all()
    for ticket, plan in found:
        start_clocks(session, ticket, plan=plan, now=ticket.created_at)
        session.flush()
        sync(session, ticket, now=now)
    return len(found)


def sync(
    session: Session, ticket: Ticket, *, now: datetime, schedule: Schedule | None = None
) -> None:
    """Each clock of ``ticket`` running if a coder owes the customer that target, else
    paused (``pending``, held) or stopped (met, solved); ``ticket.due_at`` updated."""
    clocks = clocks_of(session, ticket.id)  # type: ignore[arg-type]
    if not clocks:
        return
    schedule = schedule or desk_schedule(session)
    for clock in clocks:
        runs = _should_run(clock, ticket)
        if clock.running_since is not None and not runs:
            _pause(clock, now, schedule)
        if not runs and clock.stopped_at is None and _is_over(clock, ticket):
            clock.stopped_at = now  # a paused clock of a case solved meanwhile stops too
        elif clock.running_since is None and runs:
            clock.stopped_at = None
            _resume(clock, now, schedule)
        session.add(clock)
    ticket.due_at = min((c.due_at for c in clocks if c.due_at is not None), default=None)
    session.add(ticket)


def retarget(session: Session, ticket: Ticket, *, plan: Plan, now: datetime) -> None:
    """The ticket's account moved to ``plan`` (or the plan's hours changed): its clocks
    keep the time used and count it against the new targets from now on; a target the
    old plan did not have starts now, and one the new plan does not have is dropped (its
    warnings and breach stay on the timeline as events)."""
    schedule = desk_schedule(session)
    targets = dict(_targets(plan))
    clocks = clocks_of(session, ticket.id)  # type: ignore[arg-type]
    for target in targets.keys() - {clock.target for clock in clocks}:  # new on this plan
        clock = SlaClock(ticket_id=ticket.id, target=target, target_seconds=targets[target] * 3600)  # type: ignore[arg-type]
        if _should_run(clock, ticket):
            _resume(clock, now, schedule)
        session.add(clock)
    for clock in clocks:
        if clock.target not in targets:
            session.delete(clock)
            continue
        running = clock.running_since is not None
        if running:
            _pause(clock, now, schedule)
        clock.target_seconds = targets[clock.target] * 3600
        if clock.used_seconds < clock.target_seconds:
            clock.breached_at = None
        if clock.used_seconds < clock.target_seconds * AT_RISK_SHARE:
            clock.warned_at = None
        if running:
            _resume(clock, now, schedule)
        session.add(clock)
    ticket.due_at = _nearest_due(session, ticket)
    session.add(ticket)
    hours = ", ".join(f"{target} {hours} h" for target, hours in targets.items())
    session.add(
        Event(
            ticket_id=ticket.id, actor="desk", kind="sla.retargeted", detail=f"{plan.name}: {hours}"
        )
    )


def retarget_tickets(
    session: Session, *, account_ids: Sequence[int], plan: Plan, now: datetime
) -> int:
    """The accounts moved to ``plan`` (or their plan's hours changed): every unfinished
    ticket of theirs is retargeted. How many tickets."""
    query = select(Ticket).where(
        col(Ticket.account_id).in_(account_ids),
        col(Ticket.status).in_(UNFINISHED_IN),
    )
    tickets = list(session.exec(query))
    for ticket in tickets:
        retarget(session, ticket, plan=plan, now=now)
    return len(tickets)


def clocks_of(session: Session, ticket_id: int) -> list[SlaClock]:
    query = select(SlaClock).where(SlaClock.ticket_id == ticket_id).order_by(col(SlaClock.id))
    return list(session.exec(query).all())


def _targets(plan: Plan) -> list[tuple[str, int]]:
    targets = [(SlaTarget.FIRST_RESPONSE.value, plan.sla_hours)]
    if plan.resolution_hours:
        targets.append((SlaTarget.RESOLUTION.value, plan.resolution_hours))
    return targets


def _should_run(clock: SlaClock, ticket: Ticket) -> bool:
    return ticket.status in RUNNING_IN and not _is_finished(clock, ticket)


def _is_finished(clock: SlaClock, ticket: Ticket) -> bool:
    if clock.target == SlaTarget.FIRST_RESPONSE:
        return ticket.first_response_at is not None
    return ticket.status in FINISHED_IN


def _is_over(clock: SlaClock, ticket: Ticket) -> bool:
    """Nothing more is owed on this target: it was met, or the case is solved."""
    return _is_finished(clock, ticket) or ticket.status in FINISHED_IN


def _pause(clock: SlaClock, now: datetime, schedule: Schedule) -> None:
    assert clock.running_since is not None
    clock.used_seconds += schedule.between(clock.running_since, now)
    clock.running_since = None
    clock.due_at = None
    clock.next_check_at = None


def _resume(clock: SlaClock, now: datetime, schedule: Schedule) -> None:
    """Run from ``now``: the due time and the next check follow from the time left."""
    clock.running_since = now
    left = max(clock.target_seconds - clock.used_seconds, 0.0)
    clock.due_at = schedule.add(now, left)
    clock.next_check_at = _next_check(clock, schedule)


def _next_check(clock: SlaClock, schedule: Schedule) -> datetime | None:
    """When the sweep must next look at a running clock: its at-risk mark until it has
    been warned, then its due time until it has breached, then never."""
    if clock.running_since is None or clock.breached_at is not None:
        return None
    if clock.warned_at is None:
        to_risk = clock.target_seconds * AT_RISK_SHARE - clock.used_seconds
        return schedule.add(clock.running_since, max(to_risk, 0.0))
    return clock.due_at


def after_step(clock: SlaClock, schedule: Schedule) -> None:
    """The sweep looked at the clock: when to look next. A look that found the at-risk
    mark not reached yet (the hours changed since it was worked out) looks again then,
    never skipping the reminder."""
    clock.next_check_at = _next_check(clock, schedule)


def recount_running(session: Session, *, now: datetime, used_under: Schedule | None = None) -> int:
    """Business hours changed (a closed date added or removed, new hours or holidays):
    every running clock keeps what it used (counted under ``used_under``, the hours
    before the change, if given) and works out its due time afresh under the hours now
    in force. How many tickets' clocks that was."""
    schedule = desk_schedule(session)
    running = session.exec(select(SlaClock).where(col(SlaClock.running_since).is_not(None)))
    touched: set[int] = set()
    for clock in running:
        _pause(clock, now, used_under or schedule)
        _resume(clock, now, schedule)
        session.add(clock)
        touched.add(clock.ticket_id)
    for ticket_id in touched:
        ticket = session.get(Ticket, ticket_id)
        if ticket is not None:
            ticket.due_at = _nearest_due(session, ticket)
            session.add(ticket)
    return len(touched)


def _nearest_due(session: Session, ticket: Ticket) -> datetime | None:
    session.flush()
    dues = [c.due_at for c in clocks_of(session, ticket.id) if c.due_at is not None]  # type: ignore[arg-type]
    return min(dues, default=None)


# --- reading a clock ---------------------------------------------------------------


@dataclass(frozen=True)
class ClockView:
    """A clock as a person reads it, at one instant."""

    target: str
    target_seconds: int
    used_seconds: float
    due_at: datetime | None
    state: str  # on-track, at-risk, breached
    paused: bool
    stopped: bool

    @property
    def left_seconds(self) -> float:
        return max(self.target_seconds - self.used_seconds, 0.0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "target_hours": self.target_seconds / 3600,
            "used_hours": round(self.used_seconds / 3600, 3),
            "left_hours": round(self.left_seconds / 3600, 3),
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "state": self.state,
            "paused": self.paused,
            "stopped": self.stopped,
        }


def view(clock: SlaClock, *, now: datetime, schedule: Schedule) -> ClockView:
    used = clock.used_seconds
    if clock.running_since is not None:
        used += schedule.between(clock.running_since, now)
    return ClockView(
        target=clock.target,
        target_seconds=clock.target_seconds,
        used_seconds=used,
        due_at=clock.due_at,
        state=state_of(used, clock.target_seconds, breached=clock.breached_at is not None),
        paused=clock.running_since is None and clock.stopped_at is None,
        stopped=clock.stopped_at is not None,
    )


def state_of(used_seconds: float, target_seconds: int, *, breached: bool = False) -> str:
    if breached or used_seconds >= target_seconds:
        return ClockState.BREACHED
    if used_seconds >= target_seconds * AT_RISK_SHARE:
        return ClockState.AT_RISK
    return ClockState.ON_TRACK


def views_of(
    session: Session, ticket_ids: Iterable[int], *, now: datetime
) -> dict[int, list[ClockView]]:
    """Every clock of these tickets, read at ``now``, by ticket id."""
    ids = list(ticket_ids)
    if not ids:
        return {}
    schedule = desk_schedule(session)
    query = select(SlaClock).where(col(SlaClock.ticket_id).in_(ids)).order_by(col(SlaClock.id))
    views: dict[int, list[ClockView]] = {}
    for clock in session.exec(query):
        views.setdefault(clock.ticket_id, []).append(view(clock, now=now, schedule=schedule))
    return views


def worst_state(views: Sequence[ClockView]) -> str | None:
    """The ticket's SLA state: the worst of its clocks that still count."""
    order = (ClockState.BREACHED, ClockState.AT_RISK, ClockState.ON_TRACK)
    states = {v.state for v in views if not v.stopped or v.state == ClockState.BREACHED}
    return next((state for state in order if state in states), None)
