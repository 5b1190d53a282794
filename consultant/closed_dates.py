"""Days the desk is closed besides public holidays: SLA clocks stand still on them.

Adding or removing one moves the due time of every running clock at once, so a case
due on the day of an office move is due the next working day instead.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlmodel import Session, col, select

from consultant import desk_settings, sla
from consultant.hours import named_holidays
from consultant.models import ClosedDate, Event


class ClosedDateError(Exception):
    """The date cannot be added or removed; the message says why."""


def close(session: Session, *, day: date, name: str, actor: str, now: datetime) -> int:
    """Close the desk on ``day``; how many tickets' clocks were re-timed."""
    if session.exec(select(ClosedDate).where(ClosedDate.day == day)).first() is not None:
        raise ClosedDateError(f"{day} is closed already")
    session.add(ClosedDate(day=day, name=name, actor=actor, created_at=now))
    session.add(Event(actor=actor, kind="hours.closed", detail=f"{day} {name}".strip()))
    session.flush()
    return sla.recount_running(session, now=now)


def reopen(session: Session, *, day: date, actor: str, now: datetime) -> int:
    row = session.exec(select(ClosedDate).where(ClosedDate.day == day)).first()
    if row is None:
        raise ClosedDateError(f"{day} is not a closed date (consultant hours show lists them)")
    session.delete(row)
    session.add(Event(actor=actor, kind="hours.opened", detail=str(day)))
    session.flush()
    return sla.recount_running(session, now=now)


def calendar(session: Session, *, now: datetime) -> dict[str, Any]:
    """The business hours, holidays and closed dates in force, for people to read, with
    where the hours and the holidays come from (an admin, or the environment)."""
    desk = desk_settings.in_force(session)
    schedule = sla.schedule_of(session, desk)
    closed = session.exec(select(ClosedDate).order_by(col(ClosedDate.day))).all()
    years = (now.year, now.year + 1)
    holidays = [h for year in years for h in named_holidays(schedule.holidays_spec, year)]
    return {
        "business_hours": schedule.describe(),
        "business_hours_setting": desk.business_hours,
        "business_hours_from": desk.sources["business_hours"],
        "holidays": schedule.holidays_spec or None,
        "holidays_from": desk.sources["holidays"],
        "holiday_dates": [day.isoformat() for day, _ in holidays],
        "holiday_names": [{"day": day.isoformat(), "name": name} for day, name in holidays],
        "closed_dates": [{"day": c.day.isoformat(), "name": c.name} for c in closed],
    }
