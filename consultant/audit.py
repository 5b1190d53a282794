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

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_
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
    session: Session,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: str = "",
    action: str = "",
    ticket_id: int | None = None,
    before: int | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """The newest rows first, as the admin page and the CLI show them: at or after
    ``since``, before ``until``, by ``actor``, of ``action`` (and the actions under it:
    ``sign_in`` is also ``sign_in.failed``, ``case.status`` also ``case.status:open``), about
    case ``ticket_id``. ``before`` is the id of the last row of the page before: the next
    page starts after it, however many rows are added meanwhile (a keyset, no offset)."""
    query = select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(limit)
    if since is not None:
        query = query.where(col(AuditEntry.at) >= since)
    if until is not None:
        query = query.where(col(AuditEntry.at) < until)
    if actor:
        query = query.where(AuditEntry.actor == actor.strip().lower())
    if action:
        query = query.where(_of_action(action.strip()))
    if ticket_id is not None:
        query = query.where(AuditEntry.ticket_id == ticket_id)
    if before is not None:
        query = query.where(col(AuditEntry.id) < before)
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


def moment(text: str, *, until: bool = False) -> datetime:
    """A date, or a date and time, as a person types it; UTC unless it names a zone. As
    ``until``, a bare date means the end of that day. Raises ``ValueError`` with a message
    to show them."""
    given = text.strip()
    try:
        value = datetime.fromisoformat(given)
    except ValueError:
        raise ValueError(
            f"a date, or a date and time, like 2026-12-01 or 2026-12-01 14:30, not {text!r}"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if until and len(given) == len("2026-12-01"):
        value += timedelta(days=1)
    return value


def _of_action(action: str) -> ColumnElement[bool]:
    column = col(AuditEntry.action)
    return or_(
        column == action,
        column.startswith(f"{action}.", autoescape=True),
        column.startswith(f"{action}:", autoescape=True),
    )


def changes(before: dict[str, Any], after: dict[str, Any]) -> str:
    """What an admin's change did, field by field (``capacity: 10 → 12``), for the log."""
    changed = [
        f"{field}: {before.get(field)!r} → {value!r}"
        for field, value in after.items()
        if before.get(field) != value
    ]
    return "; ".join(changed) or "no change"
