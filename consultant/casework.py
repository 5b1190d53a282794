"""What a coder does to a case: answer it, solve it, move it, claim it, assign it.

The command line (``consultant tickets …``) and the dashboard both call these; each
takes the ticket's number and the person's address, checks that the person may do it,
and raises :class:`CaseError` (or a subclass) with a message meant for them when not.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from consultant import quota, states
from consultant.db import storable
from consultant.models import LEAD_ROLES, Coder, Event, Message, OutboxEmail, QuotaEntry, Ticket
from consultant.replies import Preview, preview_answer, queue_answer, queue_solved
from consultant.routing.claims import ClaimError, find_coder, lock_ticket
from consultant.states import InvalidTransition

NOTE = "ticket.note"  # an internal note's event kind


class CaseError(Exception):
    """The action cannot be done as asked; the message says why."""


class Collision(CaseError):
    """The case moved on since the person last read it: a new message from the customer
    or someone else's answer. Nothing was sent; ``newer`` are the messages to read."""

    def __init__(self, newer: list[Message]) -> None:
        self.newer = newer
        who = ", ".join(sorted({m.sender for m in newer}))
        super().__init__(f"{len(newer)} new message(s) since you opened the case ({who})")


class AlreadySent(CaseError):
    """The same answer was sent a moment ago (a form submitted twice): sent once only."""


def answer(
    session: Session,
    number: int,
    *,
    by: str,
    text: str,
    then: str,
    now: datetime,
    seen_message_id: int | None = None,
) -> OutboxEmail:
    """Queue ``by``'s answer to the customer of case ``number``.

    With ``seen_message_id`` (the newest message the person had in front of them), the
    answer is refused with :class:`Collision` when the thread has grown since — Help
    Scout's "Traffic Cop" — and with :class:`AlreadySent` when what grew it is this very
    answer, sent by a double submit.
    """
    text = storable(text)
    if not text.strip():
        raise CaseError("an answer needs some text")
    try:
        ticket = lock_ticket(session, number)
        coder = find_coder(session, by)
        if seen_message_id is not None:
            _refuse_if_thread_moved(session, ticket, coder, text, seen_message_id)
        return queue_answer(session, ticket=ticket, text=text, coder=coder, now=now, then=then)
    except (ClaimError, InvalidTransition) as exc:
        raise CaseError(str(exc)) from None


def _refuse_if_thread_moved(
    session: Session, ticket: Ticket, coder: Coder, text: str, seen_message_id: int
) -> None:
    newer = list(
        session.exec(
            select(Message)
            .where(Message.ticket_id == ticket.id, col(Message.id) > seen_message_id)
            .order_by(col(Message.id))
        )
    )
    if not newer:
        return
    if all(m.coder_id == coder.id and m.body_text == text for m in newer):
        raise AlreadySent(f"this answer to {ticket.reference} was sent already")
    raise Collision(newer)


def preview(session: Session, number: int, *, text: str) -> Preview:
    """The answer as the customer will get it (subject, recipient, body with the desk's
    footer), without sending anything."""
    ticket = _ticket(session, number)
    text = storable(text)
    if not text.strip():
        raise CaseError("an answer needs some text")
    return preview_answer(session, ticket=ticket, text=text)


def solve(session: Session, number: int, *, by: str, now: datetime) -> OutboxEmail:
    """Mark case ``number`` solved; the customer is told a reply reopens it."""
    try:
        ticket = lock_ticket(session, number)
        find_coder(session, by)
        return queue_solved(session, ticket=ticket, actor=by, now=now)
    except (ClaimError, InvalidTransition) as exc:
        raise CaseError(str(exc)) from None


def add_note(session: Session, number: int, *, by: str, text: str, now: datetime) -> Event:
    """An internal note on case ``number``: for the coders, on its timeline, never emailed
    to the customer."""
    text = storable(text)
    if not text.strip():
        raise CaseError("a note needs some text")
    try:
        ticket = lock_ticket(session, number)
        coder = find_coder(session, by)
    except ClaimError as exc:
        raise CaseError(str(exc)) from None
    note = Event(
        ticket_id=ticket.id, actor=coder.email, kind=NOTE, detail=text.strip(), created_at=now
    )
    session.add(note)
    return note


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


def refund(session: Session, number: int, *, by: str, reason: str) -> QuotaEntry:
    """Give case ``number`` back to its account's quota (a lead's or admin's call)."""
    reason = storable(reason).strip()
    if not reason:
        raise CaseError("a refund needs a reason, for the account's ledger")
    try:
        ticket = _ticket(session, number)
        _find_lead(session, by)
        return quota.refund_case(session, ticket=ticket, reason=reason, actor=by)
    except (ClaimError, quota.QuotaError) as exc:
        raise CaseError(str(exc)) from None


def release_held(
    session: Session, number: int, *, by: str, override_reason: str = ""
) -> QuotaEntry:
    """Charge case ``number``, held because its account had no cases left, and route it;
    past the limit only with ``override_reason`` (a lead's or admin's call)."""
    try:
        ticket = _ticket(session, number)  # the ledger locks the account before the case
        _find_lead(session, by)
        return quota.release_held_case(
            session,
            ticket=ticket,
            actor=by,
            override_reason=storable(override_reason).strip() or None,
        )
    except (ClaimError, quota.QuotaError) as exc:
        raise CaseError(str(exc)) from None


def _find_lead(session: Session, email: str) -> Coder:
    coder = find_coder(session, email)
    if coder.role not in LEAD_ROLES:
        raise CaseError("refunds and releases are for leads and admins")
    return coder


def _ticket(session: Session, number: int) -> Ticket:
    ticket = session.get(Ticket, number)
    if ticket is None:
        raise CaseError(f"no case CC-{number}")
    return ticket
