"""A ticket's status as a small state machine: which moves exist, and what each does.

``new`` (nobody owns it) → ``open`` (a coder owns it) → ``pending`` (waiting on the
customer) → ``solved`` → ``closed``. A customer's reply moves ``pending`` and ``solved``
back to ``open``; ``closed`` is final (a reply to it opens a new case). The two held
states are intake's: a case waiting for quota or for its sender to be verified.

:func:`move` is the one place a status changes after intake, so every change is checked,
recorded as an event and told to the SLA clocks (consultant/sla.py), which pause in
``pending`` and stop in ``solved``.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from consultant import sla
from consultant.models import Event, Ticket, TicketStatus

NEW, OPEN, PENDING = TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING
SOLVED, CLOSED = TicketStatus.SOLVED, TicketStatus.CLOSED
HELD = (TicketStatus.HELD_QUOTA, TicketStatus.HELD_UNVERIFIED)

MOVES: dict[str, frozenset[str]] = {
    NEW: frozenset({OPEN, PENDING, SOLVED, TicketStatus.HELD_QUOTA}),
    OPEN: frozenset({NEW, PENDING, SOLVED}),
    PENDING: frozenset({NEW, OPEN, SOLVED}),
    SOLVED: frozenset({NEW, OPEN, CLOSED}),
    CLOSED: frozenset(),
    TicketStatus.HELD_QUOTA: frozenset({NEW}),
    TicketStatus.HELD_UNVERIFIED: frozenset({NEW, TicketStatus.HELD_QUOTA}),
}
ACTIVE = frozenset({NEW, OPEN})  # a coder owes the customer something
UNFINISHED = frozenset({NEW, OPEN, PENDING})  # what routing and capacity count


class InvalidTransition(Exception):
    """A status change the state machine does not allow; the message says why."""


def check_move(ticket: Ticket, to: str) -> None:
    if to not in MOVES:
        raise InvalidTransition(f"unknown status {to!r} (known: {', '.join(MOVES)})")
    allowed = MOVES.get(ticket.status, frozenset())
    if to == ticket.status or to in allowed:
        return
    if ticket.status == CLOSED:
        raise InvalidTransition(
            f"{ticket.reference} is closed, which is final; a reply from the customer "
            "opens a new case"
        )
    choices = ", ".join(sorted(allowed)) or "nothing"
    raise InvalidTransition(
        f"{ticket.reference} cannot go from {ticket.status} to {to} (from {ticket.status}: "
        f"{choices})"
    )


def move(
    session: Session, ticket: Ticket, to: str, *, actor: str, now: datetime, reason: str = ""
) -> None:
    """Change ``ticket``'s status to ``to``, or raise :class:`InvalidTransition`.

    Moving to the status it has already is no change and records nothing.
    """
    check_move(ticket, to)
    if to == ticket.status:
        return
    before = ticket.status
    ticket.status = to
    ticket.updated_at = now
    if to == SOLVED:
        ticket.solved_at = now
    elif before == SOLVED:
        ticket.solved_at = None
    session.add(ticket)
    detail = f"{before} → {to}" + (f": {reason}" if reason else "")
    session.add(Event(ticket_id=ticket.id, actor=actor, kind="ticket.status", detail=detail))
    sla.sync(session, ticket, now=now)
