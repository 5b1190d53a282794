"""Reports on how the desk is doing; ``consultant report …`` prints them.

Each report is a handful of grouped queries over the period, never one query per row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from consultant.models import Assignment, Coder, Message, SlaClock, SlaTarget, Ticket
from consultant.routing.assign import loads


def percentile(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile: a value that was really observed."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


def coders_report(session: Session, *, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Per coder: open cases against capacity, cases assigned and answered in the
    period, and their time to first response in business hours (p50, p90)."""
    coders = session.exec(select(Coder).order_by(col(Coder.id))).all()
    counted = loads(session, [c.id for c in coders])  # type: ignore[misc]
    assigned = dict(
        session.exec(
            select(Assignment.coder_id, func.count())
            .where(col(Assignment.started_at) >= since, col(Assignment.started_at) < until)
            .group_by(col(Assignment.coder_id))
        ).all()
    )
    answered = dict(
        session.exec(
            select(Message.coder_id, func.count())
            .where(*_answers(), col(Message.created_at) >= since, col(Message.created_at) < until)
            .group_by(col(Message.coder_id))
        ).all()
    )
    responses = _first_responses(session, since=since, until=until)
    rows = []
    for coder in coders:
        hours = [seconds / 3600 for seconds in responses.get(coder.id, [])]  # type: ignore[arg-type]
        rows.append(
            {
                "email": coder.email,
                "name": coder.name,
                "active": coder.active,
                "open": counted[coder.id],  # type: ignore[index]
                "capacity": coder.capacity,
                "assigned": int(assigned.get(coder.id, 0)),
                "answered": int(answered.get(coder.id, 0)),
                "first_responses": len(hours),
                "first_response_hours_p50": percentile(hours, 0.5),
                "first_response_hours_p90": percentile(hours, 0.9),
            }
        )
    return rows


def _answers() -> tuple[Any, ...]:
    return (
        Message.direction == "out",
        col(Message.is_automatic).is_(False),
        col(Message.coder_id).is_not(None),
    )


def _first_responses(
    session: Session, *, since: datetime, until: datetime
) -> dict[int, list[float]]:
    """Business seconds to the first response of each case answered in the period, by
    the coder who gave it."""
    first_answer = (
        select(Message.ticket_id, func.min(Message.id).label("message_id"))
        .where(*_answers())
        .group_by(col(Message.ticket_id))
        .subquery()
    )
    query = (
        select(Message.coder_id, SlaClock.used_seconds)
        .join(first_answer, first_answer.c.message_id == Message.id)
        .join(SlaClock, col(SlaClock.ticket_id) == col(Message.ticket_id))
        .where(
            SlaClock.target == SlaTarget.FIRST_RESPONSE,
            col(SlaClock.stopped_at) >= since,
            col(SlaClock.stopped_at) < until,
        )
    )
    by_coder: dict[int, list[float]] = {}
    for coder_id, seconds in session.exec(query):
        by_coder.setdefault(coder_id, []).append(seconds)
    return by_coder


def volume_report(session: Session, *, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Per day (UTC) of the period: cases received, answers sent by coders, cases solved;
    every day listed, the quiet ones with zeros."""
    received = _per_day(session, Ticket.created_at, since, until)
    answered = _per_day(
        session,
        Message.created_at,
        since,
        until,
        Message.direction == "out",
        col(Message.coder_id).is_not(None),
    )
    solved = _per_day(session, Ticket.solved_at, since, until)
    days = []
    day = since.date()
    while day < until.date() or (day == until.date() and until.time() != time()):
        key = day.isoformat()
        days.append(
            {
                "day": key,
                "received": received.get(key, 0),
                "answered": answered.get(key, 0),
                "solved": solved.get(key, 0),
            }
        )
        day += timedelta(days=1)
    return days


def _per_day(
    session: Session, column: Any, since: datetime, until: datetime, *conditions: Any
) -> dict[str, int]:
    if session.get_bind().dialect.name == "postgresql":
        day = func.date(func.timezone("UTC", column))  # the day in UTC, whatever the server's zone
    else:
        day = func.date(column)  # SQLite keeps UTC text
    query = (
        select(day, func.count())
        .where(col(column) >= since, col(column) < until, *conditions)
        .group_by(day)
    )
    return {str(value)[:10]: count for value, count in session.exec(query)}
