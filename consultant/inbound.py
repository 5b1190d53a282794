"""Inbound emails as stored: the edge's one write, what is due, and what failed.

The IMAP poller and the SMTP gateway call :func:`store_arrivals` (or :func:`store_arrival`)
and nothing else: keep the exact bytes and where they came from, refusing a duplicate.
Processing them is consultant/intake.py's job; when it fails, :func:`record_failure`
decides between a retry and quarantine, :func:`retry_inbound` is an admin's replay, and
:func:`delete_inbound` an admin's giving up on one, which keeps its bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from consultant.config import get_settings
from consultant.db import insert_ignoring_duplicates, session_scope, storable
from consultant.mail.parse import identify
from consultant.models import InboundEmail, InboundStatus, utcnow
from consultant.retry import backoff

MAX_ERROR_CHARS = 2000
MAX_RETRY_SECONDS = 3600.0
MAX_REASON_CHARS = 500
SET_ASIDE = (InboundStatus.FAILED, InboundStatus.QUARANTINED)


class InboundError(Exception):
    """An admin's action on a stored email that cannot be done; the message says why."""


@dataclass(frozen=True)
class Arrival:
    """An email as the edge received it, before anything is known about it."""

    raw: bytes
    source: str  # "imap", "smtp" or "file"
    mailbox_id: int | None = None
    uidvalidity: int | None = None
    uid: int | None = None
    envelope_from: str | None = None
    envelope_to: str | None = None


def store_arrival(session: Session, arrival: Arrival) -> int | None:
    """Keep the raw email; its new id, or ``None`` when it was already stored.

    Runs in the caller's transaction: the gateway commits it before answering ``250``.
    """
    stored = store_arrivals(session, [arrival])
    return stored[0] if stored else None


def store_arrivals(session: Session, arrivals: Sequence[Arrival]) -> list[int]:
    """Keep a batch of raw emails in one statement; the ids of those not stored before,
    in the order they came. The poller commits it together with its cursor."""
    if not arrivals:
        return []
    table = InboundEmail.__table__  # type: ignore[attr-defined]
    statement = insert_ignoring_duplicates(session, table).returning(table.c.id)
    now = utcnow()
    rows = [_row(arrival, now) for arrival in arrivals]
    return sorted(session.execute(statement, rows).scalars())


def _row(arrival: Arrival, now: datetime) -> dict[str, object]:
    identity = identify(arrival.raw)
    return {
        "source": arrival.source,
        "mailbox_id": arrival.mailbox_id,
        "uidvalidity": arrival.uidvalidity,
        "uid": arrival.uid,
        "message_id": identity.message_id,
        "fingerprint": identity.fingerprint,
        "envelope_from": arrival.envelope_from,
        "envelope_to": arrival.envelope_to,
        "size": len(arrival.raw),
        "raw": arrival.raw,
        "status": InboundStatus.RECEIVED,
        "attempts": 0,
        "next_attempt_at": now,
        "received_at": now,
    }


def due_inbound_ids(*, limit: int = 1000, due_before: datetime | None = None) -> list[int]:
    """Stored emails to process now, oldest first: new ones, and failed ones due a retry."""
    with session_scope() as session:
        query = (
            select(InboundEmail.id)
            .where(
                col(InboundEmail.status).in_([InboundStatus.RECEIVED, InboundStatus.FAILED]),
                col(InboundEmail.next_attempt_at) <= (due_before or utcnow()),
            )
            .order_by(col(InboundEmail.id))
            .limit(limit)
        )
        return [row_id for row_id in session.exec(query) if row_id is not None]


def retry_inbound(session: Session, *, inbound_ids: list[int] | None) -> list[int]:
    """Give failed or quarantined emails (all of them, with ``None``) a fresh start."""
    query = select(InboundEmail).where(col(InboundEmail.status).in_(SET_ASIDE))
    if inbound_ids is not None:
        query = query.where(col(InboundEmail.id).in_(inbound_ids))
    retried = []
    for inbound in session.exec(query).all():
        inbound.status = InboundStatus.RECEIVED
        inbound.attempts = 0
        inbound.next_attempt_at = utcnow()
        session.add(inbound)
        retried.append(inbound.id)
    return [row_id for row_id in retried if row_id is not None]


def not_retried(session: Session, inbound_ids: list[int]) -> list[str]:
    """Why each of these named emails was left alone by :func:`retry_inbound`: it does
    not exist, or it is not failed or quarantined (a processed email is never processed
    twice)."""
    statuses = dict(
        session.exec(
            select(InboundEmail.id, InboundEmail.status).where(
                col(InboundEmail.id).in_(inbound_ids)
            )
        ).all()
    )
    return [
        f"email {inbound_id}: {statuses[inbound_id]}, nothing to retry"
        if inbound_id in statuses
        else f"email {inbound_id}: no such email"
        for inbound_id in inbound_ids
    ]


def delete_inbound(
    session: Session, *, inbound_id: int, by: str, reason: str, now: datetime
) -> InboundEmail:
    """Give up on a failed or quarantined email: it is never processed again, and who did
    it, when and why stay on the row. Nothing is lost: the raw bytes are kept, and the
    email can still be read and downloaded (principle 2 of DESIGN.md)."""
    reason = storable(reason).strip()
    if not reason:
        raise InboundError("say why the email is deleted: the reason is kept with it")
    if len(reason) > MAX_REASON_CHARS:
        raise InboundError(f"the reason is {len(reason)} characters; at most {MAX_REASON_CHARS}")
    inbound = session.get(InboundEmail, inbound_id, with_for_update=True)
    if inbound is None:
        raise InboundError(f"email {inbound_id}: no such email")
    if inbound.status not in SET_ASIDE:
        raise InboundError(
            f"email {inbound_id}: {inbound.status}; only a failed or quarantined one is deleted"
        )
    inbound.status = InboundStatus.DELETED
    inbound.deleted_at, inbound.deleted_by, inbound.deleted_reason = now, by, reason
    session.add(inbound)
    return inbound


def record_failure(inbound_id: int, *, stage: str, error: Exception) -> tuple[str, datetime | None]:
    """Keep the stage and the error on the email, in a fresh transaction, and decide:
    try again later with backoff, or — after ``max_process_attempts`` — set it aside as
    ``quarantined`` for an admin (Mailman's shunt queue). Never dropped, never retried
    forever, and never marked over a worker that finished it meanwhile.

    Returns the email's status afterwards and, for a retry, when it is due.
    """
    settings = get_settings()
    with session_scope() as session:
        inbound = session.get(InboundEmail, inbound_id, with_for_update=True)
        if inbound is None or inbound.status == InboundStatus.PROCESSED:
            return (inbound.status if inbound else "missing"), None
        inbound.attempts += 1
        inbound.stage = stage
        # An error may quote the email, NUL included; PostgreSQL text cannot hold NUL.
        inbound.error = f"{type(error).__name__}: {error}".replace("\x00", "")[:MAX_ERROR_CHARS]
        retry_at = None
        if inbound.attempts >= settings.max_process_attempts:
            inbound.status = InboundStatus.QUARANTINED
        else:
            inbound.status = InboundStatus.FAILED
            retry_at = utcnow() + backoff(
                inbound.attempts, base=settings.process_retry_seconds, cap=MAX_RETRY_SECONDS
            )
            inbound.next_attempt_at = retry_at
        session.add(inbound)
        return inbound.status, retry_at
