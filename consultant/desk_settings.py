"""Desk settings an admin changes while the desk runs: the business hours and holidays
SLA clocks count in, and the routing policy.

Each starts as its environment variable says (``CONSULTANT_BUSINESS_HOURS``,
``CONSULTANT_HOLIDAYS``, ``CONSULTANT_ROUTING_TIERS``, ``CONSULTANT_ROUTING_PREFER``, or
the built-in default). Once an admin sets one (on ``/admin/hours``, ``/admin/routing``,
``consultant hours set``, ``consultant routing set``) the database's value is in force
for every process at its next read, without a restart; taking it back (``unset``)
returns to the environment's. Every reader (SLA clocks, routing, escalation, the
acknowledgement's words) goes through :func:`in_force`, one query of a few rows.

A change of the hours or the holidays re-times the running clocks, as a closed date
does: the time a clock used so far is counted under the old hours, what is left under
the new.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from consultant.config import ROUTING_PREFERENCES, ROUTING_TIERS, get_settings
from consultant.db import storable
from consultant.hours import ScheduleError, check_holidays_spec, parse_schedule
from consultant.models import DeskSetting, Event

MAX_VALUE = 1000
# name → the environment variable it starts from
VARIABLES = {
    "business_hours": "CONSULTANT_BUSINESS_HOURS",
    "holidays": "CONSULTANT_HOLIDAYS",
    "routing_tiers": "CONSULTANT_ROUTING_TIERS",
    "routing_prefer": "CONSULTANT_ROUTING_PREFER",
}
RETIMES = frozenset({"business_hours", "holidays"})  # a change moves running clocks


class DeskSettingError(ValueError):
    """A value the setting cannot take; ``name`` says which setting, the message why."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


@dataclass(frozen=True)
class DeskSettings:
    """The values in force, each as its environment variable would spell it, and where
    each comes from (``set by …``, the environment variable's name, or ``default``)."""

    business_hours: str
    holidays: str
    routing_tiers: tuple[str, ...]
    routing_prefer: tuple[str, ...]
    sources: dict[str, str]

    def value(self, name: str) -> str:
        return _spelled(getattr(self, name))


def in_force(session: Session) -> DeskSettings:
    """The settings every process uses now: the admin's where set, else the environment's."""
    stored = {row.name: row for row in session.exec(select(DeskSetting))}
    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    for name, value in environment_values().items():
        row = stored.get(name)
        values[name] = row.value if row is not None else value
        sources[name] = (
            f"set by {row.changed_by} on {row.changed_at:%Y-%m-%d %H:%M} UTC"
            if row is not None
            else _environment_source(name)
        )
    return DeskSettings(
        business_hours=values["business_hours"],
        holidays=values["holidays"],
        routing_tiers=tuple(values["routing_tiers"].split(",")),
        routing_prefer=tuple(values["routing_prefer"].split(",")),
        sources=sources,
    )


def environment_values() -> dict[str, str]:
    """What the environment (or the built-in default) says for each setting."""
    settings = get_settings()
    values = {name: _spelled(getattr(settings, name)) for name in VARIABLES}
    return {**values, "business_hours": checked("business_hours", values["business_hours"])}


def change(
    session: Session, *, name: str, value: str, actor: str, now: datetime
) -> tuple[str, str]:
    """Set ``name`` to ``value`` (checked first); the value before and after. A change of
    hours or holidays re-times the running SLA clocks."""
    after = checked(name, value)
    before_settings = in_force(session)
    before = before_settings.value(name)
    row = session.exec(select(DeskSetting).where(DeskSetting.name == name)).first()
    row = row or DeskSetting(name=name, value=after, changed_by=actor)
    row.value, row.changed_by, row.changed_at = after, actor, now
    session.add(row)
    _changed(session, name=name, before=before, after=after, actor=actor, now=now,
             was=before_settings)  # fmt: skip
    return before, after


def unset(session: Session, *, name: str, actor: str, now: datetime) -> tuple[str, str]:
    """Back to the environment's value for ``name``; the value before and after."""
    _known(name)
    before_settings = in_force(session)
    before = before_settings.value(name)
    row = session.exec(select(DeskSetting).where(DeskSetting.name == name)).first()
    if row is not None:
        session.delete(row)
    after = environment_values()[name]
    _changed(session, name=name, before=before, after=after, actor=actor, now=now,
             was=before_settings)  # fmt: skip
    return before, after


def checked(name: str, value: str) -> str:
    """``value`` as the setting keeps it, or :class:`DeskSettingError` saying what is wrong."""
    _known(name)
    text = " ".join(storable(value).split())
    if len(text) > MAX_VALUE:
        raise DeskSettingError(name, f"at most {MAX_VALUE} characters")
    try:
        if name == "business_hours":
            return parse_schedule(text).describe()  # one spelling: "" and "24x7" alike
        if name == "holidays":
            return check_holidays_spec(text)
    except ScheduleError as exc:
        raise DeskSettingError(name, str(exc)) from None
    allowed = ROUTING_TIERS if name == "routing_tiers" else ROUTING_PREFERENCES
    return _words(name, text, allowed)


def _words(name: str, text: str, allowed: tuple[str, ...]) -> str:
    words = [word.strip().lower() for word in text.split(",") if word.strip()]
    unknown = [word for word in words if word not in allowed]
    if unknown:
        raise DeskSettingError(name, f"unknown: {', '.join(unknown)} (one of {', '.join(allowed)})")
    if not words:
        raise DeskSettingError(name, f"needs at least one of {', '.join(allowed)}")
    if len(set(words)) != len(words):
        raise DeskSettingError(name, f"names one twice: {', '.join(words)}")
    return ",".join(words)


def _changed(
    session: Session,
    *,
    name: str,
    before: str,
    after: str,
    actor: str,
    now: datetime,
    was: DeskSettings,
) -> None:
    session.add(Event(actor=actor, kind="settings.changed", detail=f"{name}: {after}"))
    session.flush()
    if name in RETIMES and before != after:
        from consultant import sla  # sla reads its hours from here

        sla.recount_running(session, now=now, used_under=sla.schedule_of(session, was))


def _known(name: str) -> None:
    if name not in VARIABLES:
        raise DeskSettingError(name, f"no desk setting {name!r} ({', '.join(VARIABLES)})")


def _environment_source(name: str) -> str:
    return VARIABLES[name] if name in get_settings().model_fields_set else "default"


def _spelled(value: str | tuple[str, ...]) -> str:
    return value if isinstance(value, str) else ",".join(value)
