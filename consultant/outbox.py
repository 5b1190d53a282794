"""Send what the outbox holds, each email once.

A sender claims rows (``pending`` → ``sending``) with a conditional update in its own
committed transaction before the relay sees them, so two workers never send the same
row, hands them to the relay over several connections at once, and marks each ``sent``
right after the relay took it. The claim is a lease: it sets
``next_attempt_at`` a few minutes ahead, and a row still ``sending`` after that lost its
sender (a killed worker) and is due again. That re-send carries the same bytes and
Message-ID, so a receiver that got the first copy can tell — the only case where an email
may arrive twice.

A temporary failure (4xx, dropped connection, timeout) pushes ``next_attempt_at`` back
with exponential backoff and jitter; a permanent one (5xx), or too many attempts, marks
the row ``failed`` with the relay's reply and records it on the ticket. So does any other
error while handing an email over (a row no relay could take, a bug): it is logged, the
row is never left ``sending``, and the emails after it are still sent.

An admin sees the rows that need a person (:func:`needing_attention`: failed ones, and
pending ones held back until a later attempt) and may send one again at once
(:func:`retry_email`) or stop it for good (:func:`cancel_email`, status ``cancelled``);
the command line and the admin page call the same two.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, bindparam, insert, update
from sqlmodel import Session, col, func, select

from consultant.config import Settings, get_settings
from consultant.db import autocommit_connection, get_engine, session_scope
from consultant.mail.smtp import (
    PermanentDeliveryError,
    SmtpRelay,
    TemporaryDeliveryError,
    Transport,
    UnusableRelay,
    relay_token,
    transport_for,
)
from consultant.mail.tokens import TokenError
from consultant.mailbox_settings import current_relay
from consultant.models import Event, OutboxEmail, OutboxStatus, utcnow
from consultant.retry import backoff
from consultant.sealed import SealedError

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
EMAILS_PER_CLAIM = 10  # few enough to deliver well within one lease
MAX_BACKOFF = timedelta(hours=1)
MAX_ERROR_CHARS = 500  # an unexpected error's text may quote whole commands

_OUTBOX = OutboxEmail.__table__  # type: ignore[attr-defined]
_EVENTS = Event.__table__  # type: ignore[attr-defined]
_CLAIMED_COLUMNS = [
    _OUTBOX.c[name]
    for name in ("id", "kind", "ticket_id", "recipient", "message_id", "raw", "attempts")
]
# Built once: it runs for every email sent.
_MARK = update(_OUTBOX).where(_OUTBOX.c.id == bindparam("outbox_id"))


class OutboxError(Exception):
    """An admin's retry or cancel that cannot be done; the message says why."""


@dataclass(frozen=True)
class SendResult:
    outbox_id: int
    status: str  # the row's status afterwards; "skipped" when it was not due or not ours
    retry_at: datetime | None = None  # when a deferred or failed-for-now email is due again


def due_outbox_ids(*, limit: int = 1000, due_before: datetime | None = None) -> list[int]:
    """Emails to send now: waiting ones, and claimed ones whose sender's lease ran out."""
    with session_scope() as session:
        query = (
            select(OutboxEmail.id)
            .where(
                col(OutboxEmail.status).in_([OutboxStatus.PENDING, OutboxStatus.SENDING]),
                col(OutboxEmail.next_attempt_at) <= (due_before or utcnow()),
            )
            .order_by(col(OutboxEmail.id))
            .limit(limit)
        )
        return [row_id for row_id in session.exec(query) if row_id is not None]


def send_outbox_emails(*, outbox_ids: Sequence[int]) -> list[SendResult]:
    """Send these emails: claimed up to :data:`EMAILS_PER_CLAIM` at a time in one
    statement, then handed to the relay over ``CONSULTANT_SMTP_CONNECTIONS`` connections
    at once, each marked as soon as the relay took it. One result per id, in the order
    given.

    With a relay limit configured, each email is claimed and sent on its own, so the
    limit is checked before every email and nothing claimed has to wait for the limit.
    """
    settings = get_settings()
    transport = _transport(settings)
    if settings.smtp_max_per_minute or settings.smtp_max_per_hour:
        results = _send_one_by_one_within_limits(outbox_ids, settings, transport)
    else:
        results = _send_in_claims(outbox_ids, settings, transport)
    return [results.get(outbox_id, SendResult(outbox_id, "skipped")) for outbox_id in outbox_ids]


def _transport(settings: Settings) -> Transport:
    """The relay set up on the mailboxes page, else CONSULTANT_SMTP_URL's, else the
    outbox folder: looked up for every run of the sender, so a change needs no restart.
    A relay password no key opens, or a relay logging in as a connected mailbox that has
    no access token to give (its consent revoked, the provider unreachable), fails each
    email for now, with the reason on its row; the token is asked for once per run."""
    try:
        relay = current_relay(settings=settings)
    except SealedError as exc:
        return UnusableRelay(str(exc))
    try:
        token = relay_token(relay, settings=settings) if relay is not None else None
    except TokenError as exc:
        return UnusableRelay(f"cannot log in to the relay: {exc}")
    return transport_for(settings, relay=relay, token=token)


def _send_in_claims(
    outbox_ids: Sequence[int], settings: Settings, transport: Transport
) -> dict[int, SendResult]:
    results: dict[int, SendResult] = {}
    with autocommit_connection() as connection:  # one connection to claim them all
        for start in range(0, len(outbox_ids), EMAILS_PER_CLAIM):
            claimed = _claim(connection, outbox_ids[start : start + EMAILS_PER_CLAIM])
            results.update(_deliver_at_once(claimed, settings, transport, connection))
    return results


def _send_one_by_one_within_limits(
    outbox_ids: Sequence[int], settings: Settings, transport: Transport
) -> dict[int, SendResult]:
    results: dict[int, SendResult] = {}
    with autocommit_connection() as connection:
        for position, outbox_id in enumerate(outbox_ids):
            limited_until = _rate_limited_until(settings)
            if limited_until is not None:
                results.update({i: _defer(i, limited_until) for i in outbox_ids[position:]})
                break
            claimed = _claim(connection, [outbox_id])
            results.update(_deliver_lane(claimed, settings, transport, connection))
    return results


def _deliver_at_once(
    claimed: list[Row[Any]], settings: Settings, transport: Transport, connection: Connection
) -> dict[int, SendResult]:
    """Deliver the claimed emails over several relay connections at the same time.

    Each lane is a thread with its own SMTP connection (kept open between tasks) and its
    own database connection for the marks. A relay a network away answers each command
    after a round trip, so one connection at a time would leave the worker waiting most
    of the time; MTAs deliver in parallel for the same reason.
    """
    # Files and a relay that cannot be used take no waiting.
    count = settings.smtp_connections if isinstance(transport, SmtpRelay) else 1
    lanes = [claimed[n::count] for n in range(count)]
    others = [
        _relay_threads(os.getpid(), count).submit(_deliver_lane_alone, lane, settings, transport)
        for lane in lanes[1:]
        if lane
    ]
    results = _deliver_lane(lanes[0], settings, transport, connection)
    futures.wait(others)  # every lane finishes (or fails) before any error is raised
    for lane in others:
        results.update(lane.result())
    return results


def _deliver_lane(
    lane: list[Row[Any]], settings: Settings, transport: Transport, connection: Connection
) -> dict[int, SendResult]:
    """Deliver these emails one after another, marking each on ``connection``."""
    return {email.id: _deliver(email, settings, transport, connection) for email in lane}


def _deliver_lane_alone(
    lane: list[Row[Any]], settings: Settings, transport: Transport
) -> dict[int, SendResult]:
    """:func:`_deliver_lane` in a relay thread, on a database connection of its own."""
    with autocommit_connection() as connection:
        return _deliver_lane(lane, settings, transport, connection)


@functools.cache
def _relay_threads(pid: int, connections: int) -> futures.ThreadPoolExecutor:
    """The threads of this process that deliver beside the calling one. Keyed by the
    process id: a pool created before a fork has no threads in the child."""
    return futures.ThreadPoolExecutor(max_workers=connections - 1, thread_name_prefix="relay")


def _deliver(
    email: Row[Any], settings: Settings, transport: Transport, connection: Connection
) -> SendResult:
    """Hand one claimed email to the relay and record how that went."""
    try:
        transport.deliver(
            email.raw,
            sender=settings.desk_address,
            recipient=email.recipient,
            name=f"{email.id:06d}-{email.kind}",
        )
    except TemporaryDeliveryError as exc:
        if email.attempts >= settings.max_send_attempts:
            log.error("outbox %s: giving up after %s attempts: %s", email.id, email.attempts, exc)
            return _finish(connection, email, OutboxStatus.FAILED, error=f"gave up: {exc}")
        retry_at = utcnow() + backoff(
            email.attempts, base=settings.smtp_retry_seconds, cap=MAX_BACKOFF.total_seconds()
        )
        log.warning("outbox %s: temporary failure, retrying at %s: %s", email.id, retry_at, exc)
        return _finish(connection, email, OutboxStatus.PENDING, error=str(exc), retry_at=retry_at)
    except PermanentDeliveryError as exc:
        log.error("outbox %s: refused by the relay: %s", email.id, exc)
        return _finish(connection, email, OutboxStatus.FAILED, error=str(exc))
    except Exception as exc:  # one bad row must not stop the outbox
        # Not the relay's answer but something about this row or our code: the same
        # bytes would meet it again on every attempt, so retrying cannot help.
        # The row and the error's type only: its text may quote the recipient (PHI); the
        # whole of it goes on the row and the ticket, the traceback to the debug log.
        log.error("outbox %s: unexpected %s while sending", email.id, type(exc).__name__)
        log.debug("outbox %s: unexpected error while sending", email.id, exc_info=True)
        error = f"unexpected error: {type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        return _finish(connection, email, OutboxStatus.FAILED, error=error)
    ticket = f"CC-{email.ticket_id}" if email.ticket_id is not None else None
    log.info(  # ids only: never the recipient, subject or body (PHI)
        "sent outbox %s (%s, ticket %s)",
        email.id,
        email.kind,
        ticket or "none",
        extra={"outbox_id": email.id, "kind": email.kind, "ticket": ticket},
    )
    return _finish(connection, email, OutboxStatus.SENT, error=None)


def _rate_limited_until(settings: Settings) -> datetime | None:
    """When the relay's per-minute or per-hour allowance frees up, if it is used up now."""
    limits = (
        (timedelta(minutes=1), settings.smtp_max_per_minute),
        (timedelta(hours=1), settings.smtp_max_per_hour),
    )
    now = utcnow()
    with session_scope() as session:
        for window, limit in limits:
            if limit and _sent_since(session, now - window) >= limit:
                oldest = session.exec(
                    select(OutboxEmail.sent_at)
                    .where(col(OutboxEmail.sent_at) > now - window)
                    .order_by(col(OutboxEmail.sent_at))
                    .limit(1)
                ).one()
                assert oldest is not None
                return oldest + window
    return None


def _sent_since(session: Session, since: datetime) -> int:
    return session.exec(select(func.count()).where(col(OutboxEmail.sent_at) > since)).one()


def _defer(outbox_id: int, until: datetime) -> SendResult:
    """Leave a pending email for later: a relay limit never drops mail."""
    with session_scope() as session:
        session.exec(  # type: ignore[call-overload]
            update(OutboxEmail)
            .where(col(OutboxEmail.id) == outbox_id, OutboxEmail.status == OutboxStatus.PENDING)
            .values(next_attempt_at=until)
        )
    return SendResult(outbox_id, "deferred", retry_at=until)


def _claim(connection: Connection, outbox_ids: Sequence[int]) -> list[Row[Any]]:
    """The due rows among these, now ``sending`` under this sender's lease (by id),
    committed before the relay sees any of them."""
    now = utcnow()
    claimed = connection.execute(
        update(_OUTBOX)
        .where(
            _OUTBOX.c.id.in_(outbox_ids),
            _OUTBOX.c.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]),
            _OUTBOX.c.next_attempt_at <= now,
        )
        .values(
            status=OutboxStatus.SENDING,
            attempts=_OUTBOX.c.attempts + 1,
            next_attempt_at=now + LEASE,
        )
        .returning(*_CLAIMED_COLUMNS)
    ).all()
    connection.commit()
    return sorted(claimed, key=lambda email: email.id)


def _finish(
    connection: Connection,
    email: Row[Any],
    status: OutboxStatus,
    *,
    error: str | None,
    retry_at: datetime | None = None,
) -> SendResult:
    """Record how sending went, committed at once: a row marked ``sent`` is never sent again.

    On the tables, not through the ORM: its machinery would cost more than the send. A
    failure is recorded on the ticket too, in the same transaction.
    """
    changes: dict[str, object] = {"outbox_id": email.id, "status": status, "last_error": error}
    if retry_at is not None:
        changes["next_attempt_at"] = retry_at
    if status == OutboxStatus.SENT:
        changes["sent_at"] = utcnow()
    if status == OutboxStatus.FAILED:
        event = {"actor": "desk", "kind": "mail.failed", "detail": error, "created_at": utcnow()}
        with get_engine().begin() as transaction:
            transaction.execute(_MARK, changes)
            transaction.execute(insert(_EVENTS).values(ticket_id=email.ticket_id, **event))
    else:
        connection.execute(_MARK, changes)
        connection.commit()
    return SendResult(email.id, status, retry_at=retry_at)


# --- what an admin does --------------------------------------------------------------


def needing_attention(
    session: Session, *, now: datetime, after: int | None = None, limit: int = 50
) -> tuple[list[dict[str, Any]], int | None]:
    """Failed emails and pending ones held until a later attempt (a temporary failure's
    backoff, a relay limit), newest first, by a keyset on the id; and the ``after`` of
    the next page, when there is one."""
    query = (
        select(OutboxEmail)
        .where(
            (col(OutboxEmail.status) == OutboxStatus.FAILED)
            | (
                (col(OutboxEmail.status) == OutboxStatus.PENDING)
                & (col(OutboxEmail.next_attempt_at) > now)
            )
        )
        .order_by(col(OutboxEmail.id).desc())
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(col(OutboxEmail.id) < after)
    found = session.exec(query).all()
    rows = [{"id": email.id, **describe(email)} for email in found[:limit]]
    return rows, (rows[-1]["id"] if len(found) > limit and rows else None)


def describe(email: OutboxEmail) -> dict[str, Any]:
    """One row as the admin page, the command line and the audit row's before → after
    show it."""
    return {
        "status": str(email.status),
        "kind": email.kind,
        "ticket": email.ticket_id,
        "recipient": email.recipient,
        "subject": email.subject,
        "attempts": email.attempts,
        "last_error": email.last_error,
        "next_attempt_at": email.next_attempt_at.isoformat(),
    }


def retry_email(session: Session, *, outbox_id: int, by: str, now: datetime) -> OutboxEmail:
    """Send a failed or held email again now, with a fresh count of attempts; the same
    bytes and Message-ID as before. The caller announces it after the commit."""
    email = _for_admin(session, outbox_id, allowed=(OutboxStatus.FAILED, OutboxStatus.PENDING))
    email.status, email.attempts, email.next_attempt_at = OutboxStatus.PENDING, 0, now
    _note_on_ticket(session, email, kind="mail.retried", by=by, now=now)
    return email


def cancel_email(session: Session, *, outbox_id: int, by: str, now: datetime) -> OutboxEmail:
    """Stop a failed or waiting email for good: it is kept, ``cancelled``, never sent."""
    email = _for_admin(session, outbox_id, allowed=(OutboxStatus.FAILED, OutboxStatus.PENDING))
    email.status = OutboxStatus.CANCELLED
    _note_on_ticket(session, email, kind="mail.cancelled", by=by, now=now)
    return email


def _for_admin(
    session: Session, outbox_id: int, *, allowed: tuple[OutboxStatus, ...]
) -> OutboxEmail:
    """The row, locked against a sender claiming it meanwhile, if it is in a state the
    admin's action applies to."""
    email = session.get(OutboxEmail, outbox_id, with_for_update=True)
    if email is None:
        raise OutboxError(f"outgoing email {outbox_id}: no such email")
    if email.status not in allowed:
        why = {OutboxStatus.SENDING: "being sent right now"}.get(email.status, email.status)
        raise OutboxError(f"outgoing email {outbox_id}: {why}; only failed or waiting ones")
    return email


def _note_on_ticket(
    session: Session, email: OutboxEmail, *, kind: str, by: str, now: datetime
) -> None:
    session.add(email)
    if email.ticket_id is not None:
        detail = f"outbox {email.id} ({email.kind})"
        session.add(
            Event(ticket_id=email.ticket_id, actor=by, kind=kind, detail=detail, created_at=now)
        )
