"""Send what the outbox holds, each email once.

A row is claimed (``pending`` → ``sending``) in its own committed transaction before the
relay sees it, so two workers never send the same row; it is marked ``sent`` right after.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select

from consultant.config import get_settings
from consultant.db import session_scope
from consultant.mail.smtp import PermanentDeliveryError, TemporaryDeliveryError, transport_for
from consultant.models import Event, OutboxEmail, OutboxStatus, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SendResult:
    outbox_id: int
    status: str  # the row's status afterwards; "skipped" when another sender had it


def pending_outbox_ids(*, limit: int = 1000, created_before: datetime | None = None) -> list[int]:
    """Emails waiting to be sent, oldest first; ``created_before`` skips fresh ones."""
    with session_scope() as session:
        query = (
            select(OutboxEmail.id)
            .where(OutboxEmail.status == OutboxStatus.PENDING)
            .order_by(col(OutboxEmail.id))
            .limit(limit)
        )
        if created_before is not None:
            query = query.where(col(OutboxEmail.created_at) < created_before)
        return [row_id for row_id in session.exec(query) if row_id is not None]


def send_outbox_email(*, outbox_id: int) -> SendResult:
    email = _claim(outbox_id)
    if email is None:
        return SendResult(outbox_id, "skipped")
    settings = get_settings()
    try:
        transport_for(settings).deliver(
            email.raw,
            sender=settings.desk_address,
            recipient=email.recipient,
            name=f"{email.id:06d}-{email.kind}",
        )
    except TemporaryDeliveryError as exc:
        log.warning("outbox %s: temporary failure, will retry: %s", outbox_id, exc)
        return _finish(email, OutboxStatus.PENDING, error=str(exc))
    except PermanentDeliveryError as exc:
        log.error("outbox %s: refused by the relay: %s", outbox_id, exc)
        return _finish(email, OutboxStatus.FAILED, error=str(exc))
    log.info("outbox %s: sent %s", outbox_id, email.message_id)
    return _finish(email, OutboxStatus.SENT, error=None)


def _claim(outbox_id: int) -> OutboxEmail | None:
    with session_scope() as session:
        claimed = session.exec(  # type: ignore[call-overload]
            update(OutboxEmail)
            .where(OutboxEmail.id == outbox_id, OutboxEmail.status == OutboxStatus.PENDING)
            .values(status=OutboxStatus.SENDING, attempts=OutboxEmail.attempts + 1)
        )
        if claimed.rowcount != 1:
            return None
        return session.get(OutboxEmail, outbox_id)


def _finish(email: OutboxEmail, status: OutboxStatus, *, error: str | None) -> SendResult:
    assert email.id is not None
    with session_scope() as session:
        row = session.get(OutboxEmail, email.id)
        assert row is not None
        row.status = status
        row.last_error = error
        if status == OutboxStatus.SENT:
            row.sent_at = utcnow()
        if status == OutboxStatus.FAILED:
            session.add(
                Event(ticket_id=row.ticket_id, actor="desk", kind="mail.failed", detail=error)
            )
        session.add(row)
    return SendResult(email.id, status)
