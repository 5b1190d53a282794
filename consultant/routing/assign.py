"""Giving cases owners in the database: routing, assigning, handing back.

Routing takes the tickets it routes with ``FOR UPDATE SKIP LOCKED`` (another worker
routing at the same moment takes others) and then every active coder's row ``FOR
UPDATE``, in id order, before it counts their loads: two routers at once are serialised
on the coders, so neither can put a coder over capacity, and a ticket is never given to
two. SQLite takes the database's write lock as each transaction begins, which serialises
the same way. Locks are always taken tickets first, coders second — by claims, by the
escalation sweep and by an admin's change to a coder too (:func:`lock_for_coder_change`)
— so nothing deadlocks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import and_, func, or_
from sqlmodel import Session, col, select

from consultant import states
from consultant.hours import Schedule, parse_schedule
from consultant.models import Assignment, Coder, CoderRole, Event, Ticket, TicketStatus
from consultant.routing.policy import Candidate, Policy, choose, current_policy

ROUTER = "routing"


@dataclass(frozen=True)
class Routed:
    ticket_id: int
    coder_id: int | None  # None: nobody eligible; the case waits


# --- reading coders ----------------------------------------------------------------


@lru_cache(maxsize=256)
def _working_hours(text: str, zone: str) -> Schedule:
    return parse_schedule(text, zone=zone)


def working_hours(coder: Coder) -> Schedule:
    """The coder's hours in their own zone; no hours set means any time."""
    return _working_hours(coder.working_hours, coder.timezone)


def is_available(coder: Coder, now: datetime) -> bool:
    """Can own cases now: active and not away (capacity aside)."""
    return coder.active and not coder.is_away(now)


def loads(session: Session, coder_ids: Iterable[int]) -> dict[int, int]:
    """Unfinished cases each coder owns, the figure capacity is measured against."""
    ids = list(coder_ids)
    if not ids:
        return {}
    query = (
        select(Ticket.coder_id, func.count())
        .where(col(Ticket.coder_id).in_(ids), col(Ticket.status).in_(states.UNFINISHED))
        .group_by(col(Ticket.coder_id))
    )
    counted = dict(session.exec(query).all())
    return {coder_id: int(counted.get(coder_id, 0)) for coder_id in ids}


def candidate(coder: Coder, load: int, now: datetime) -> Candidate:
    return Candidate(
        id=coder.id,  # type: ignore[arg-type]
        specialties=frozenset(coder.specialty_list()),
        capacity=coder.capacity,
        load=load,
        on_shift=working_hours(coder).is_open(now),
        last_assigned_at=coder.last_assigned_at,
        active=coder.active,
        away=coder.is_away(now),
    )


def leads(session: Session) -> list[Coder]:
    """Who hears of breaches and of cases nobody can take: the active leads (the admins
    when there are none)."""
    for roles in ((CoderRole.LEAD,), (CoderRole.ADMIN,)):
        found = session.exec(
            select(Coder)
            .where(col(Coder.role).in_(roles), col(Coder.active).is_(True))
            .order_by(col(Coder.id))
        ).all()
        if found:
            return list(found)
    return []


# --- routing -----------------------------------------------------------------------


def route_tickets(
    session: Session,
    ticket_ids: Sequence[int] | None = None,
    *,
    now: datetime,
    policy: Policy | None = None,
    limit: int = 500,
) -> list[Routed]:
    """Give each routable ticket (``ticket_ids``, or every waiting one) an owner.

    Routable: ``new`` with its specialty known and no owner; and an ``open`` case whose
    owner can no longer take it (away, deactivated), which is handed back first. Cases
    are routed most urgent first. One that nobody can take waits, with an event the
    first time, and the leads are told (consultant/notifications.py sends a digest).
    """
    policy = policy or current_policy(session)
    tickets = _lock_routable(session, ticket_ids, limit=limit)
    if not tickets:
        return []
    coders = _lock_coders(session)
    by_id = {coder.id: coder for coder in coders}
    for ticket in tickets:
        owner = by_id.get(ticket.coder_id) if ticket.coder_id else None
        if owner is not None and not is_available(owner, now):
            unassign(session, ticket, reason=f"{owner.email} is {_absence(owner, now)}", now=now)
    counted = loads(session, by_id)  # type: ignore[arg-type]
    pool = {c.id: candidate(c, counted[c.id], now) for c in coders}  # type: ignore[index]
    routed = []
    # The rows written for one case are never read back by the next: flushing them all
    # at the end sends one INSERT per table instead of a round of statements per case.
    with session.no_autoflush:
        for ticket in tickets:
            if ticket.coder_id is not None or ticket.status != TicketStatus.NEW:
                continue
            winner = choose(pool.values(), ticket.specialty or "", policy)
            if winner is None:
                _wait(session, ticket, now=now)
                routed.append(Routed(ticket.id, None))  # type: ignore[arg-type]
                continue
            assign(session, ticket, by_id[winner.id], reason="routed", actor=ROUTER, now=now)
            pool[winner.id] = candidate(by_id[winner.id], winner.load + 1, now)
            routed.append(Routed(ticket.id, winner.id))  # type: ignore[arg-type]
    session.flush()
    return routed


def _lock_routable(
    session: Session, ticket_ids: Sequence[int] | None, *, limit: int
) -> list[Ticket]:
    query = select(Ticket).where(col(Ticket.specialty).is_not(None))
    if ticket_ids is not None:
        query = query.where(
            col(Ticket.id).in_(ticket_ids),
            col(Ticket.status).in_((TicketStatus.NEW, TicketStatus.OPEN)),
        )
    else:  # the sweep: cases waiting for an owner
        query = query.where(Ticket.status == TicketStatus.NEW, col(Ticket.coder_id).is_(None))
    query = query.order_by(col(Ticket.due_at).asc().nulls_last(), col(Ticket.id)).limit(limit)
    return list(session.exec(query.with_for_update(skip_locked=True)).all())


def _lock_coders(session: Session) -> list[Coder]:
    query = select(Coder).where(col(Coder.active).is_(True)).order_by(col(Coder.id))
    return list(session.exec(query.with_for_update()).all())


def _wait(session: Session, ticket: Ticket, *, now: datetime) -> None:
    from consultant.notifications import notify_leads

    if ticket.waiting_since is not None:
        return  # told already
    ticket.waiting_since = now
    session.add(ticket)
    session.add(
        Event(
            ticket_id=ticket.id,
            actor=ROUTER,
            kind="routing.waiting",
            detail=f"no eligible coder for {ticket.specialty}",
        )
    )
    notify_leads(
        session, ticket=ticket, kind="routing.waiting", key=f"waiting:{ticket.id}:{now.isoformat()}"
    )


def _absence(coder: Coder, now: datetime) -> str:
    if not coder.active:
        return "deactivated"
    until = f" until {coder.away_until:%Y-%m-%d %H:%M} UTC" if coder.away_until else ""
    return f"away{until}"


# --- owning and letting go ---------------------------------------------------------


def assign(
    session: Session, ticket: Ticket, coder: Coder, *, reason: str, actor: str, now: datetime
) -> None:
    """Make ``coder`` the ticket's owner; a ``new`` ticket becomes ``open``."""
    previous = ticket.coder_id
    if previous == coder.id:
        return
    if previous is not None:  # an unowned ticket has no stretch of ownership open
        _end_assignment(session, ticket, reason=reason, now=now)
    session.add(
        Assignment(
            ticket_id=ticket.id,  # type: ignore[arg-type]
            coder_id=coder.id,  # type: ignore[arg-type]
            reason=reason,
            actor=actor,
            started_at=now,
        )
    )
    ticket.coder_id = coder.id
    ticket.waiting_since = None
    coder.last_assigned_at = now
    session.add(coder)
    kind = "routing.assigned" if previous is None else "ticket.reassigned"
    session.add(
        Event(ticket_id=ticket.id, actor=actor, kind=kind, detail=f"to {coder.email}: {reason}")
    )
    if ticket.status == TicketStatus.NEW:
        states.move(session, ticket, TicketStatus.OPEN, actor=actor, now=now, reason="assigned")
    session.add(ticket)


def unassign(
    session: Session, ticket: Ticket, *, reason: str, now: datetime, actor: str = ROUTER
) -> None:
    """The ticket has no owner any more (and no claim); an ``open`` one is ``new`` again,
    for routing to take."""
    if ticket.coder_id is None:
        return
    _end_assignment(session, ticket, reason=reason, now=now)
    ticket.coder_id = None
    ticket.claimed_by_id = None
    ticket.claim_expires_at = None
    session.add(Event(ticket_id=ticket.id, actor=actor, kind="routing.unassigned", detail=reason))
    if ticket.status == TicketStatus.OPEN:
        states.move(session, ticket, TicketStatus.NEW, actor=actor, now=now, reason="no owner")
    session.add(ticket)


def lock_for_coder_change(session: Session, coder: Coder) -> None:
    """Take, in routing's order, the locks a change to ``coder`` needs before it writes:
    their open cases first, then every active coder. An admin's change (away,
    deactivated, more capacity) and a router at work then queue behind each other
    instead of deadlocking."""
    session.exec(
        select(Ticket.id)
        .where(Ticket.coder_id == coder.id, Ticket.status == TicketStatus.OPEN)
        .order_by(col(Ticket.id))
        .with_for_update()
    ).all()
    _lock_coders(session)


def hand_back(
    session: Session, coder: Coder, *, reason: str, actor: str, now: datetime
) -> list[Routed]:
    """Give every open case ``coder`` owns back to routing, at once (the coder went away
    or was deactivated); each is routed again to someone who can take it."""
    query = (
        select(Ticket)
        .where(Ticket.coder_id == coder.id, Ticket.status == TicketStatus.OPEN)
        .order_by(col(Ticket.id))
        .with_for_update()
    )
    tickets = list(session.exec(query).all())
    for ticket in tickets:
        unassign(session, ticket, reason=reason, now=now, actor=actor)
    session.flush()
    return route_tickets(session, [t.id for t in tickets], now=now)  # type: ignore[misc]


def _end_assignment(session: Session, ticket: Ticket, *, reason: str, now: datetime) -> None:
    current = session.exec(
        select(Assignment).where(
            Assignment.ticket_id == ticket.id, col(Assignment.ended_at).is_(None)
        )
    ).all()
    for assignment in current:
        assignment.ended_at = now
        assignment.ended_reason = reason
        session.add(assignment)


def reassign_breached(session: Session, ticket: Ticket, *, now: datetime) -> bool:
    """A breached case whose owner cannot answer now (away, inactive, off shift) goes to
    an eligible coder who is on shift; with none, it stays where it is. Whether it moved."""
    owner = session.get(Coder, ticket.coder_id) if ticket.coder_id else None
    if ticket.status not in (TicketStatus.NEW, TicketStatus.OPEN):
        return False
    session.flush()  # loads below count the cases this batch has moved already
    if owner is not None and is_available(owner, now) and working_hours(owner).is_open(now):
        return False  # the owner is at work: the leads have been told
    coders = [c for c in _lock_coders(session) if c.id != ticket.coder_id]
    counted = loads(session, [c.id for c in coders])  # type: ignore[misc]
    on_shift = [candidate(c, counted[c.id], now) for c in coders]  # type: ignore[index]
    policy = current_policy(session)
    winner = choose([c for c in on_shift if c.on_shift], ticket.specialty or "", policy)
    if winner is None:
        return False
    coder = next(c for c in coders if c.id == winner.id)
    why = "away" if owner is None or not is_available(owner, now) else "off shift"
    reason = f"breached while its owner was {why}" if owner else "breached with no owner"
    assign(session, ticket, coder, reason=reason, actor=ROUTER, now=now)
    return True


def route(ticket_ids: Sequence[int]) -> list[Routed]:
    """Route these tickets in a transaction of their own: what the codes task does once
    their specialty is known, after the customer's acknowledgement has gone."""
    from consultant.db import session_scope
    from consultant.models import utcnow

    with session_scope() as session:
        return route_tickets(session, ticket_ids, now=utcnow())


def hand_back_absent(session: Session, *, now: datetime) -> int:
    """Hand back the open cases of coders whose absence has begun (an out-of-office set
    ahead of time starts on its own); how many cases. One query when there are none."""
    query = (
        select(Coder)
        .join(Ticket, col(Ticket.coder_id) == col(Coder.id))
        .where(Ticket.status == TicketStatus.OPEN)
        .where(
            or_(
                col(Coder.active).is_(False),
                and_(
                    or_(col(Coder.away_from).is_(None), col(Coder.away_from) <= now),
                    or_(col(Coder.away_until).is_(None), col(Coder.away_until) > now),
                    or_(col(Coder.away_from).is_not(None), col(Coder.away_until).is_not(None)),
                ),
            )
        )
        .distinct()
    )
    handed = 0
    for coder in session.exec(query).all():
        reason = f"{coder.email} is {_absence(coder, now)}"
        handed += len(hand_back(session, coder, reason=reason, actor=ROUTER, now=now))
    return handed
