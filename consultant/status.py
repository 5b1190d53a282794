"""``consultant status``: is mail coming in, is it being processed, is it going out?"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, func, select

from consultant.config import MailboxURL, Settings
from consultant.db import session_scope
from consultant.mail.imap import ImapError, count_waiting
from consultant.models import InboundEmail, Mailbox, OutboxEmail


def desk_status(settings: Settings) -> dict[str, Any]:
    """Each configured mailbox, asked live, and the queues' counts by status.

    ``failures`` counts the poller's failed connects and polls since its last good one.

    No session is held while a mailbox is asked: on SQLite an open transaction holds the
    write lock that the poller's own bookkeeping needs.
    """
    mailboxes = [_mailbox_status(settings, mailbox) for mailbox in settings.imap_url]
    with session_scope() as session:
        inbound = _counts(session, InboundEmail.status)
        outbox = _counts(session, OutboxEmail.status)
    return {"mailboxes": mailboxes, "inbound": inbound, "outbox": outbox}


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
        }


def _counts(session: Session, column: Any) -> dict[str, int]:
    rows = session.exec(select(column, func.count()).group_by(column)).all()
    return {status: count for status, count in rows}
