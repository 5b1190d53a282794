"""What a coder does to a case: answer it, solve it, move it, claim it, assign it.

The command line (``consultant tickets …``) and the dashboard both call these; each
takes the ticket's number and the person's address, checks that the person may do it,
and raises :class:`CaseError` (or a subclass) with a message meant for them when not.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from consultant import states
from consultant.models import OutboxEmail, Ticket
from consultant.replies import queue_answer, queue_solved
from consultant.routing.claims import ClaimError, find_coder, lock_ticket
from consultant.states import InvalidTransition


class CaseError(Exception):
    """The action cannot be done as asked; the message says why."""


def answer(
    session: Session, number: int, *, by: str, text: str, then: str, now: datetime
) -> OutboxEmail:
    """Queue ``by``'s answer to the customer of case ``number``."""
    if not text.strip():
        raise CaseError("an answer needs some text")
    try:
        ticket = lock_ticket(session, number)
        coder = find_coder(session, by)
        return queue_answer(session, ticket=ticket, text=text, coder=coder, now=now, then=then)
    except (ClaimError, InvalidTransition) as exc:
        raise CaseError(str(exc)) from None


def solve(session: Session, number: int, *, by: str, now: datetime) -> OutboxEmail:
    """Mark case ``number`` solved; the customer is told a reply reopens it."""
    try:
        ticket = lock_ticket(session, number)
        find_coder(session, by)
        return queue_solved(session, ticket=ticket, actor=by, now=now)
    except (ClaimError, InvalidTransition) as exc:
        raise CaseError(str(exc)) from None


def set_status(session: Session, number: int, *, to: str, by: str, now: datetime) -> Ticket:
    """Move case ``number`` to ``to`` without writing to the customer (``pending`` while
    waiting on them, ``open`` to take it up again); refused if the move is not allowed."""
    try:
        ticket = lock_ticket(session, number)
        find_coder(session, by)
        if to == states.SOLVED:
            raise CaseError("use solve: the customer is told their case is solved")
        if to == states.NEW and ticket.coder_id is not None:
            raise CaseError("a case with an owner is open; release or reassign it instead")
        if to == states.OPEN and ticket.coder_id is None:
            raise CaseError(f"{ticket.reference} has no owner; claim it to open it")
        states.move(session, ticket, to, actor=by, now=now)
        return ticket
    except (ClaimError, InvalidTransition) as exc:
        raise CaseError(str(exc)) from None
