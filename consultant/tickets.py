"""Read-only views of tickets, shaped for the CLI's ``--json`` and the dashboard."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_
from sqlmodel import Session, col, func, select

from consultant.models import (
    Account,
    Attachment,
    CodeLookup,
    Coder,
    Event,
    Message,
    OutboxEmail,
    Plan,
    SlaClock,
    Ticket,
)
from consultant.sla import ClockState, ClockView, views_of, worst_state
from consultant.states import UNFINISHED

SLA_STATES = (ClockState.AT_RISK, ClockState.BREACHED)


def ticket_summary(
    ticket: Ticket, *, owner: Coder | None = None, clocks: Sequence[ClockView] = ()
) -> dict[str, Any]:
    return {
        "number": ticket.id,
        "reference": ticket.reference,
        "subject": ticket.subject,
        "requester": ticket.requester,
        "status": ticket.status,
        "specialty": ticket.specialty,
        "owner": owner.email if owner else None,
        "due_at": ticket.due_at.isoformat() if ticket.due_at else None,
        "sla": worst_state(clocks),
        # Paused: waiting on the customer. A solved case's clocks have stopped, not paused.
        "sla_paused": any(c.paused for c in clocks) and all(c.paused or c.stopped for c in clocks),
        "created_at": ticket.created_at.isoformat(),
        "updated_at": ticket.updated_at.isoformat(),
    }


@dataclass(frozen=True)
class Cursor:
    """Where a page of the list ended: the last ticket's due time and id. The next page
    starts after it (keyset pagination: no OFFSET, so page 500 costs what page 1 does)."""

    due_at: datetime | None
    id: int

    def encode(self) -> str:
        return f"{self.due_at.isoformat() if self.due_at else '-'}~{self.id}"

    @classmethod
    def decode(cls, text: str) -> Cursor | None:
        """The cursor a page link carries; ``None`` for anything else."""
        due, _, number = text.partition("~")
        try:
            return cls(None if due == "-" else datetime.fromisoformat(due), int(number))
        except ValueError:
            return None


def list_tickets(
    session: Session,
    *,
    now: datetime,
    status: str | None = None,
    coder: str | None = None,
    unassigned: bool = False,
    sla: str | None = None,
    specialty: str | None = None,
    account: str | None = None,
    plan: str | None = None,
    after: Cursor | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Tickets most urgent first (the nearest SLA due, then the oldest), filtered;
    ``account`` is an account's address (``@clinic.example`` for a domain's)."""
    query = select(Ticket).order_by(col(Ticket.due_at).asc().nulls_last(), col(Ticket.id))
    if after is not None:
        query = query.where(_after(after))
    if specialty:
        query = query.where(Ticket.specialty == specialty)
    if account:
        query = query.where(col(Ticket.account_id).in_(_account_ids(address=account)))
    if plan:
        query = query.where(col(Ticket.account_id).in_(_account_ids(plan=plan)))
    if status:
        query = query.where(Ticket.status == status)
    if coder:
        owner = session.exec(select(Coder).where(Coder.email == coder.strip().lower())).first()
        query = query.where(Ticket.coder_id == (owner.id if owner else -1))
    if unassigned:
        query = query.where(col(Ticket.coder_id).is_(None), col(Ticket.status).in_(UNFINISHED))
    if sla:
        query = query.where(_in_sla_state(sla, now))
    if limit:
        query = query.limit(limit)
    tickets = list(session.exec(query))
    owners = _coders(session, {t.coder_id for t in tickets if t.coder_id})
    clocks = views_of(session, [t.id for t in tickets], now=now)  # type: ignore[misc]
    return [
        ticket_summary(t, owner=owners.get(t.coder_id or 0), clocks=clocks.get(t.id or 0, []))
        for t in tickets
    ]


def _account_ids(*, address: str | None = None, plan: str | None = None) -> Any:
    """The ids of the account with this address, or of the accounts on this plan."""
    query = select(Account.id)
    if address is not None:
        query = query.where(Account.address == address.strip().lower())
    if plan is not None:
        query = query.join(Plan, col(Plan.id) == col(Account.plan_id)).where(Plan.name == plan)
    return query


def _after(cursor: Cursor) -> Any:
    """Rows after ``cursor`` in the list's order (due time, nulls last, then id)."""
    due, number = col(Ticket.due_at), col(Ticket.id)
    if cursor.due_at is None:
        return and_(due.is_(None), number > cursor.id)
    return or_(
        due > cursor.due_at,
        and_(due == cursor.due_at, number > cursor.id),
        due.is_(None),
    )


def codes_of(session: Session, ticket_ids: Sequence[int]) -> dict[int, list[str]]:
    """The codes found in each ticket, as badges show them (``99213-25``), in one query."""
    if not ticket_ids:
        return {}
    query = (
        select(CodeLookup.ticket_id, CodeLookup.code, CodeLookup.modifiers)
        .where(col(CodeLookup.ticket_id).in_(ticket_ids))
        .order_by(col(CodeLookup.id))
    )
    found: dict[int, list[str]] = {}
    for ticket_id, code, modifiers in session.exec(query):
        badge = "-".join([code, *filter(None, modifiers.split(","))])
        if badge not in found.setdefault(ticket_id, []):
            found[ticket_id].append(badge)
    return found


def queue_counts(session: Session, *, coder_id: int) -> dict[str, int]:
    """The queue's two counts that matter at a glance, each one indexed count."""
    unfinished = col(Ticket.status).in_(UNFINISHED)
    count = select(func.count()).select_from(Ticket)
    mine = session.exec(count.where(Ticket.coder_id == coder_id, unfinished)).one()
    waiting = session.exec(count.where(col(Ticket.coder_id).is_(None), unfinished)).one()
    return {"mine": mine, "unassigned": waiting}


def _in_sla_state(state: str, now: datetime) -> Any:
    """Tickets whose clocks are in ``state``, as the sweep has marked them (within a
    minute): breached, or warned at 75 % and not yet breached."""
    clock = SlaClock.__table__  # type: ignore[attr-defined]
    breached = and_(
        clock.c.stopped_at.is_(None),
        or_(clock.c.breached_at.is_not(None), clock.c.due_at <= now),
    )
    if state == ClockState.BREACHED:
        condition = breached
    elif state == ClockState.AT_RISK:
        condition = and_(clock.c.warned_at.is_not(None), clock.c.stopped_at.is_(None))
    else:
        raise ValueError(f"unknown SLA state {state!r} (use {' or '.join(SLA_STATES)})")
    matching = select(clock.c.ticket_id).where(condition)
    result = col(Ticket.id).in_(matching)
    if state == ClockState.AT_RISK:
        # NOT EXISTS, not NOT IN: each row asks its own clocks by index, where NOT IN
        # read every clock of the desk on each page view.
        late = select(clock.c.ticket_id).where(clock.c.ticket_id == Ticket.id, breached)
        # A ticket's due time is its nearest running clock's, so one already due is
        # breached: read on the queue's own index, this skips the breached cases (which
        # come first in due order) without asking their clocks one by one.
        not_due_yet = or_(col(Ticket.due_at).is_(None), col(Ticket.due_at) > now)
        result = and_(result, not_due_yet, ~late.exists())
    return and_(result, col(Ticket.status).in_(UNFINISHED))


def _coders(session: Session, ids: set[int]) -> dict[int, Coder]:
    if not ids:
        return {}
    return {c.id: c for c in session.exec(select(Coder).where(col(Coder.id).in_(ids)))}  # type: ignore[misc]


def ticket_detail(session: Session, number: int, *, now: datetime) -> dict[str, Any] | None:
    """The ticket with its owner, claim, SLA clocks, thread, outgoing mail, the codes
    found in it and its events."""
    ticket = session.get(Ticket, number)
    if ticket is None:
        return None
    messages = session.exec(
        select(Message).where(Message.ticket_id == number).order_by(col(Message.id))
    ).all()
    outbox = session.exec(
        select(OutboxEmail).where(OutboxEmail.ticket_id == number).order_by(col(OutboxEmail.id))
    ).all()
    lookups = session.exec(
        select(CodeLookup).where(CodeLookup.ticket_id == number).order_by(col(CodeLookup.id))
    ).all()
    events = session.exec(
        select(Event).where(Event.ticket_id == number).order_by(col(Event.id))
    ).all()
    people = _coders(session, {i for i in (ticket.coder_id, ticket.claimed_by_id) if i})
    clocks = views_of(session, [number], now=now).get(number, [])
    holder = people.get(ticket.claimed_by_id or 0)
    leased = holder is not None and ticket.claim_expires_at is not None
    return {
        **ticket_summary(ticket, owner=people.get(ticket.coder_id or 0), clocks=clocks),
        "requester_name": ticket.requester_name,
        "claim": {
            "by": holder.email,  # type: ignore[union-attr]
            "until": ticket.claim_expires_at.isoformat(),  # type: ignore[union-attr]
            "expired": ticket.claim_expires_at <= now,  # type: ignore[operator]
        }
        if leased
        else None,
        "first_response_at": _iso(ticket.first_response_at),
        "clocks": [clock.as_dict() for clock in clocks],
        "messages": [_message(session, message) for message in messages],
        "outbox": [_outgoing(email) for email in outbox],
        "codes": [
            lookup.model_dump(exclude={"id", "ticket_id", "created_at"}) for lookup in lookups
        ],
        "events": [
            {
                "at": e.created_at.isoformat(),
                "actor": e.actor,
                "kind": e.kind,
                "detail": e.detail,
            }
            for e in events
        ],
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _message(session: Session, message: Message) -> dict[str, Any]:
    attachments = session.exec(
        select(Attachment).where(Attachment.message_id == message.id).order_by(col(Attachment.id))
    ).all()
    return {
        "id": message.id,
        "direction": message.direction,
        "message_id": message.message_id,
        "sender": message.sender,
        "subject": message.subject,
        "body_text": message.body_text,
        "has_html": bool(message.body_html),
        "is_automatic": message.is_automatic,
        "created_at": message.created_at.isoformat(),
        "attachments": [
            {
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
            }
            for a in attachments
        ],
    }


def _outgoing(email: OutboxEmail) -> dict[str, Any]:
    return {
        "id": email.id,
        "kind": email.kind,
        "message_id": email.message_id,
        "recipient": email.recipient,
        "subject": email.subject,
        "status": email.status,
        "attempts": email.attempts,
        "last_error": email.last_error,
        "sent_at": email.sent_at.isoformat() if email.sent_at else None,
    }


def earlier_cases(session: Session, ticket: Ticket, *, limit: int = 8) -> list[dict[str, Any]]:
    """The account's other cases, newest first: what this customer has asked before."""
    if ticket.account_id is None:
        return []
    query = (
        select(Ticket)
        .where(Ticket.account_id == ticket.account_id, Ticket.id != ticket.id)
        .order_by(col(Ticket.id).desc())
        .limit(limit)
    )
    return [
        {
            "number": other.id,
            "reference": other.reference,
            "subject": other.subject,
            "status": other.status,
            "created_at": other.created_at.isoformat(),
        }
        for other in session.exec(query)
    ]


def marked_text(
    text: str, codes: Sequence[dict[str, Any]]
) -> list[tuple[str, dict[str, Any] | None]]:
    """``text`` cut into parts, each with the code found there (or ``None``), so a page
    can highlight where each code was read. A span that does not fit the text (the text
    was re-read differently) or overlaps an earlier one is left unmarked."""
    parts: list[tuple[str, dict[str, Any] | None]] = []
    at = 0
    spans = sorted(
        (c for c in codes if c.get("span_start") is not None and c.get("span_end") is not None),
        key=lambda c: (c["span_start"], c["span_end"]),
    )
    for code in spans:
        start, end = code["span_start"], code["span_end"]
        if start < at or end <= start or end > len(text):
            continue
        if start > at:
            parts.append((text[at:start], None))
        parts.append((text[start:end], code))
        at = end
    if at < len(text):
        parts.append((text[at:], None))
    return parts
