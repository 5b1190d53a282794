"""``consultant status``: is mail coming in, is it being processed, is it going out?"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, func, select

from consultant import desk_settings
from consultant.config import MailboxURL, Settings
from consultant.db import session_scope
from consultant.mail.imap import ImapError, count_waiting
from consultant.mail.oauth_access import connection_state
from consultant.mailbox_settings import mailboxes_to_poll
from consultant.models import InboundEmail, Mailbox, OutboxEmail, OutboxStatus, Ticket, utcnow

LATEST_FAILURES = 5
MAX_REASON_CHARS = 200


def desk_status(settings: Settings) -> dict[str, Any]:
    """Each mailbox polled (from the environment or set up in the dashboard), asked
    live, the queues' counts by status, and the desk settings in force with where each
    comes from.

    ``failures`` counts the poller's failed connects and polls since its last good one;
    ``outbox_failures`` are the latest emails that will not be sent, with the reason.

    No session is held while a mailbox is asked: on SQLite an open transaction holds the
    write lock that the poller's own bookkeeping needs.
    """
    mailboxes = [
        _mailbox_status(settings, mailbox) for mailbox in mailboxes_to_poll(settings=settings)
    ]
    with session_scope() as session:
        inbound = _counts(session, InboundEmail.status)
        outbox = _counts(session, OutboxEmail.status)
        failures = _latest_outbox_failures(session) if outbox.get(OutboxStatus.FAILED) else []
        desk = desk_settings.in_force(session)
    return {
        "mailboxes": mailboxes,
        "inbound": inbound,
        "outbox": outbox,
        "outbox_failures": failures,
        "settings": {
            name: {"value": desk.value(name), "from": desk.sources[name]}
            for name in desk_settings.VARIABLES
        },
    }


def _mailbox_status(settings: Settings, mailbox: MailboxURL) -> dict[str, Any]:
    try:
        waiting: int | None = count_waiting(mailbox, settings=settings)
        reachable, error = True, None
    except ImapError as exc:
        waiting, reachable, error = None, False, str(exc)
    with session_scope() as session:
        row = session.exec(select(Mailbox).where(Mailbox.name == mailbox.name)).first()
        return {
            "mailbox": mailbox.name,
            "reachable": reachable,
            "waiting": waiting,
            "uidvalidity": row.uidvalidity if row else None,
            "last_uid": row.last_uid if row else 0,
            "last_poll_at": row.last_poll_at.isoformat() if row and row.last_poll_at else None,
            "last_error": error or (row.last_error if row else None),
            "failures": row.failures if row else 0,
            # Connected with OAuth 2.0: connected, token expiring or consent revoked.
            "connection": connection_state(row, now=utcnow()) if row else None,
        }


def _counts(session: Session, column: Any) -> dict[str, int]:
    rows = session.exec(select(column, func.count()).group_by(column)).all()
    return {status: count for status, count in rows}


def _latest_outbox_failures(session: Session) -> list[dict[str, Any]]:
    """The emails that failed last: which kind, for which ticket, and why — never whom
    to or what they say, so the report can go wherever monitoring output goes.

    A failed row's ``next_attempt_at`` is the lease of its last attempt, so it orders
    them by when they failed.
    """
    rows = session.exec(
        select(OutboxEmail.id, OutboxEmail.ticket_id, OutboxEmail.kind, OutboxEmail.last_error)
        .where(OutboxEmail.status == OutboxStatus.FAILED)
        .order_by(col(OutboxEmail.next_attempt_at).desc(), col(OutboxEmail.id).desc())
        .limit(LATEST_FAILURES)
    ).all()
    return [
        {
            "outbox_id": outbox_id,
            "ticket": Ticket(id=ticket_id).reference if ticket_id is not None else None,
            "kind": kind,
            "reason": (reason or "unknown")[:MAX_REASON_CHARS],
        }
        for outbox_id, ticket_id, kind, reason in rows
    ]
