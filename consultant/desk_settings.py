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

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlmodel import Session, col, select

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
    return {**values, "business_hours": _hours_spelled(values["business_hours"])}


Changes = dict[str, tuple[str, str]]  # name → (before, after)


def change(session: Session, *, values: dict[str, str], actor: str, now: datetime) -> Changes:
    """Set each name to its value (all checked first, :class:`DeskSettingError` naming
    the first that cannot be); each one's value before and after. New hours or holidays
    re-time the running SLA clocks, once for all the values."""
    wanted = {name: checked(name, value) for name, value in values.items()}
    was = in_force(session)
    rows = {row.name: row for row in session.exec(select(DeskSetting))}
    for name, value in wanted.items():
        row = rows.get(name) or DeskSetting(name=name, value=value, changed_by=actor)
        row.value, row.changed_by, row.changed_at = value, actor, now
        session.add(row)
    return _changed(session, was=was, after=wanted, actor=actor, now=now)


def unset(session: Session, *, names: Iterable[str], actor: str, now: datetime) -> Changes:
    """Back to the environment's values for ``names``; each one's value before and after."""
    names = [_known(name) for name in names]
    was = in_force(session)
    for row in session.exec(select(DeskSetting).where(col(DeskSetting.name).in_(names))):
        session.delete(row)
    environment = environment_values()
    return _changed(
        session, was=was, after={n: environment[n] for n in names}, actor=actor, now=now
    )


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
    session: Session, *, was: DeskSettings, after: dict[str, str], actor: str, now: datetime
) -> Changes:
    changes = {name: (was.value(name), value) for name, value in after.items()}
    for name, (_, value) in changes.items():
        session.add(Event(actor=actor, kind="settings.changed", detail=f"{name}: {value}"))
    session.flush()
    if any(before != value for name, (before, value) in changes.items() if name in RETIMES):
        from consultant import sla  # sla reads its hours from here

        sla.recount_running(session, now=now, used_under=sla.schedule_of(session, was))
    return changes


def _known(name: str) -> str:
    if name not in VARIABLES:
        raise DeskSettingError(name, f"no desk setting {name!r} ({', '.join(VARIABLES)})")
    return name


@lru_cache(maxsize=8)
def _hours_spelled(text: str) -> str:
    """The environment's hours spelled as a value set here is ("" and "24x7" alike)."""
    return checked("business_hours", text)


def _environment_source(name: str) -> str:
    return VARIABLES[name] if name in get_settings().model_fields_set else "default"


def _spelled(value: str | tuple[str, ...]) -> str:
    return value if isinstance(value, str) else ",".join(value)
