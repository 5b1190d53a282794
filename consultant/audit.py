"""The audit log: who saw or did what with a case, when, and from where.

Every sign-in, failed sign-in and sign-out, every case a person opens, every attachment
downloaded, every answer, claim, assignment and status change made in the dashboard is
one row (HIPAA 45 CFR 164.312(b), audit controls). Rows are only ever added: on
PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE of the table (migration 0003),
so not even the desk's own code can rewrite what happened.

The ticket's own timeline (``events``) says what happened to a case; this log says who
looked. Both are written in the transaction of the action they record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select

from consultant.models import AuditEntry, Coder


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    address: str = "",
    coder: Coder | None = None,
    ticket_id: int | None = None,
    detail: str = "",
) -> None:
    """Add one row. ``detail`` holds ids and short words, never a case's text."""
    session.add(
        AuditEntry(
            actor=actor,
            coder_id=coder.id if coder else None,
            action=action,
            ticket_id=ticket_id,
            detail=detail,
            address=address,
        )
    )


def count_since(
    session: Session,
    *,
    action: str,
    since: datetime,
    actor: str | None = None,
    address: str | None = None,
) -> int:
    """How many ``action`` rows by this actor (or from this address) since ``since``:
    what throttling sign-ins counts."""
    query = (
        select(func.count())
        .select_from(AuditEntry)
        .where(AuditEntry.action == action, col(AuditEntry.at) >= since)
    )
    if actor is not None:
        query = query.where(AuditEntry.actor == actor)
    if address is not None:
        query = query.where(AuditEntry.address == address)
    return session.exec(query).one()


def entries(
    session: Session, *, since: datetime | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    """The newest rows first (since ``since``), as the admin page and the CLI show them."""
    query = select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(limit)
    if since is not None:
        query = query.where(col(AuditEntry.at) >= since)
    return [
        {
            "id": row.id,
            "at": row.at.isoformat(),
            "actor": row.actor,
            "action": row.action,
            "ticket": row.ticket_id,
            "detail": row.detail,
            "address": row.address,
        }
        for row in session.exec(query)
    ]
