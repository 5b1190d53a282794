"""Look up every code a ticket's emails mention and store what the catalog says.

Called by the ``codes`` queue's task with a batch of ticket ids. It reads each ticket's
incoming messages (subject, text body, and the text of PDF attachments), extracts and
validates the codes, stores one ``CodeLookup`` row per (message, system, code), and routes
each ticket to a specialty if nothing routed it yet. The unique key on the rows makes a
second run store nothing new.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, bindparam, func, or_, update
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from consultant.codes.analysis import UnreadablePdf, pdf_text
from consultant.codes.catalog import Catalog, pair_conflicts, units_exceeded
from consultant.codes.extract import FoundCode, extract_sources
from consultant.codes.service_date import date_of_service
from consultant.codes.specialty import GENERAL, specialty_for
from consultant.codes.store import cached_catalog
from consultant.db import insert_ignoring_duplicates, session_scope
from consultant.models import Attachment, CodeLookup, Event, Message, Ticket, TicketStatus, utcnow

log = logging.getLogger(__name__)

PDF_TYPES = {"application/pdf", "application/x-pdf"}
# Statuses in which a case still needs its codes: a solved or closed one was looked up
# long ago, or came from before lookups existed.
LOOKED_UP_IN = (
    TicketStatus.NEW,
    TicketStatus.OPEN,
    TicketStatus.PENDING,
    TicketStatus.HELD_QUOTA,
    TicketStatus.HELD_UNVERIFIED,
)
_TICKETS = Ticket.__table__  # type: ignore[attr-defined]
# A ticket's specialty, from its codes and words, unless something routed it meanwhile:
# the batch's tickets in one executemany.
_ROUTE = (
    update(_TICKETS)
    .where(_TICKETS.c.id == bindparam("ticket"), _TICKETS.c.specialty.is_(None))
    .values(specialty=bindparam("routed_to"))
)


@dataclass(slots=True)
class _MessageCodes:
    message_id: int
    found: list[FoundCode]


def attach_code_lookups(
    session: Session, *, ticket_ids: Sequence[int], as_of: date | None = None
) -> int:
    """Store the codes of these tickets; returns how many new rows were stored.

    Each case is checked by the code releases in effect on the date of service its
    emails state, else on the day it arrived; ``as_of`` fixes one day for all of them.

    A handful of statements for the whole batch (tickets, their incoming messages, the
    PDFs among their attachments, one insert), however many tickets it holds.
    """
    tickets = session.exec(
        select(Ticket.id, Ticket.subject, Ticket.specialty).where(col(Ticket.id).in_(ticket_ids))
    ).all()
    missing = set(ticket_ids) - {ticket.id for ticket in tickets}
    if missing:
        raise LookupError(f"no ticket {', '.join(map(str, sorted(missing)))}")
    catalog = cached_catalog(session)
    incoming = _incoming(session, ticket_ids)
    pdfs = _pdfs(session, [message.id for message in incoming if message.id is not None])
    rows = []
    routed: list[dict[str, object]] = []
    for ticket in tickets:
        messages = [message for message in incoming if message.ticket_id == ticket.id]
        sources = {message.id: _sources(message, pdfs) for message in messages}
        per_message = [
            _MessageCodes(
                message.id,
                extract_sources(sources[message.id], known=catalog.has, loaded=catalog.loaded),
            )
            for message in messages
            if message.id is not None
        ]
        checked_on = as_of or _case_date(messages, sources)
        case_notes = _case_notes([f for m in per_message for f in m.found], catalog, checked_on)
        rows += [
            _lookup_row(ticket.id, message.message_id, found, catalog, checked_on, case_notes)
            for message in per_message
            for found in message.found
        ]
        if ticket.specialty is None:
            codes = [(f.system, f.code) for m in per_message for f in m.found]
            bodies = " ".join(message.body_text for message in messages)
            specialty = specialty_for(codes, ticket.subject + " " + bodies)
            routed.append({"ticket": ticket.id, "routed_to": specialty})
    if routed:
        session.connection().execute(_ROUTE, routed)
    return _store(session, ticket_ids, rows)


def look_up_codes(ticket_ids: Sequence[int]) -> int:
    """:func:`attach_code_lookups` in a transaction of its own (what the workers run).

    Should a batch fail for anything but the database, each ticket is tried alone, so
    one case that breaks the lookup cannot hold back the codes of the others; a case
    that breaks it alone goes to routing without its codes (an event says so) rather
    than waiting for a lookup that will never succeed.
    """
    try:
        with session_scope() as session:
            return attach_code_lookups(session, ticket_ids=ticket_ids)
    except OperationalError:
        raise  # the database is away: the task is retried as a whole
    except Exception:
        log.exception("code lookups for tickets %s failed; trying each alone", ticket_ids)
    stored = 0
    for ticket_id in ticket_ids:
        try:
            with session_scope() as session:
                stored += attach_code_lookups(session, ticket_ids=[ticket_id])
        except OperationalError:
            raise
        except Exception as exc:
            log.exception("code lookups for ticket %s failed", ticket_id)
            _route_without_codes(ticket_id, exc)
    return stored


def _route_without_codes(ticket_id: int, error: Exception) -> None:
    with session_scope() as session:
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            return
        if ticket.specialty is None:
            ticket.specialty = GENERAL
            session.add(ticket)
        detail = f"{type(error).__name__}: the case is routed without its codes"
        session.add(Event(ticket_id=ticket_id, actor="desk", kind="codes.failed", detail=detail))


def tickets_without_codes(*, limit: int = 1000, due_before: datetime | None = None) -> list[int]:
    """Unfinished tickets whose codes were never looked up (a lookup sets the specialty),
    created before ``due_before``: the work of a codes task that was lost."""
    with session_scope() as session:
        query = (
            select(Ticket.id)
            .where(
                col(Ticket.status).in_(LOOKED_UP_IN),
                col(Ticket.specialty).is_(None),
                col(Ticket.created_at) <= (due_before or utcnow()),
            )
            .order_by(col(Ticket.id))
            .limit(limit)
        )
        return [ticket_id for ticket_id in session.exec(query) if ticket_id is not None]


def _case_date(messages: Sequence[Row[Any]], sources: dict[Any, list[tuple[str, str]]]) -> date:
    """The day whose code releases apply to a case: the date of service its emails
    state, else the day its first email arrived."""
    stated = date_of_service(text for parts in sources.values() for _, text in parts)
    if stated is not None:
        return stated
    return messages[0].created_at.date() if messages else utcnow().date()


def _incoming(session: Session, ticket_ids: Sequence[int]) -> Sequence[Row[Any]]:
    """The columns the lookups read of the tickets' incoming messages, oldest first."""
    query = (
        select(
            Message.id, Message.ticket_id, Message.subject, Message.body_text, Message.created_at
        )
        .where(col(Message.ticket_id).in_(ticket_ids), Message.direction == "in")
        .order_by(col(Message.id))
    )
    return session.exec(query).all()


def _pdfs(session: Session, message_ids: list[int]) -> dict[int, list[Attachment]]:
    """The PDF attachments of these messages, by message; other files are never loaded."""
    is_pdf = or_(
        func.lower(Attachment.content_type).in_(PDF_TYPES),
        func.lower(Attachment.filename).like("%.pdf"),
    )
    query = (
        select(Attachment)
        .where(col(Attachment.message_id).in_(message_ids), is_pdf)
        .order_by(col(Attachment.id))
    )
    by_message: dict[int, list[Attachment]] = {}
    for attachment in session.exec(query):
        by_message.setdefault(attachment.message_id, []).append(attachment)
    return by_message


def _sources(message: Row[Any], pdfs: dict[int, list[Attachment]]) -> list[tuple[str, str]]:
    return [
        ("subject", message.subject),
        ("body", message.body_text),
        *_pdf_sources(message, pdfs.get(message.id or 0, [])),
    ]


def _pdf_sources(message: Row[Any], attachments: list[Attachment]) -> Iterator[tuple[str, str]]:
    for attachment in attachments:
        try:
            yield (f"attachment:{attachment.filename}", pdf_text(attachment.content))
        except UnreadablePdf as exc:
            log.warning("attachment %s of message %s: %s", attachment.id, message.id, exc)


def _case_notes(found: list[FoundCode], catalog: Catalog, as_of: date) -> dict[str, list[str]]:
    """NCCI pair and MUE findings across the whole case, by the code they concern."""
    notes: dict[str, list[str]] = {}
    for conflict in pair_conflicts(found, catalog, as_of):
        for code in (conflict.column1, conflict.column2):
            if conflict.message not in notes.setdefault(code, []):
                notes[code].append(conflict.message)
    for exceeded in units_exceeded(found, catalog):
        if exceeded.message not in notes.setdefault(exceeded.code, []):
            notes[exceeded.code].append(exceeded.message)
    return notes


def _lookup_row(
    ticket_id: int,
    message_id: int,
    found: FoundCode,
    catalog: Catalog,
    as_of: date,
    case_notes: dict[str, list[str]],
) -> dict[str, object]:
    status = catalog.status(found.system, found.code, as_of)
    detail = "; ".join([status.detail, *case_notes.get(found.code, [])])
    return {
        "ticket_id": ticket_id,
        "message_id": message_id,
        "system": found.system,
        "code": found.code,
        "status": status.status,
        "description": status.description,
        "confidence": found.confidence,
        "reason": found.reason,
        "span_start": found.start,
        "span_end": found.end,
        "source": found.source,
        "modifiers": ",".join(found.modifiers),
        "units": found.units,
        "detail": detail,
        "alternatives": ",".join(found.alternatives),
        "created_at": utcnow(),
    }


def _store(session: Session, ticket_ids: Sequence[int], rows: list[dict[str, object]]) -> int:
    """Insert the rows an earlier run has not stored; how many that was.

    The rows are sent as one executemany (one prepared statement, one round trip in
    psycopg's pipeline) rather than as a multi-row insert, whose text differs with every
    row count and must be compiled and parsed anew each time. The unique key still
    settles a race with another worker storing the same rows.
    """
    table = CodeLookup.__table__  # type: ignore[attr-defined]
    key_columns = (table.c.ticket_id, table.c.message_id, table.c.system, table.c.code)
    stored_before = set(
        session.execute(select(*key_columns).where(table.c.ticket_id.in_(ticket_ids))).all()
    )
    new = [row for row in rows if tuple(row[c.name] for c in key_columns) not in stored_before]
    if new:
        session.execute(insert_ignoring_duplicates(session, table), new)
    return len(new)
