"""Coders are people: one row each, never shared, never deleted.

Adding, changing, sending away and bringing back a coder, each checked and recorded as
an event. Going away or being deactivated hands the coder's open cases back to routing
at once (consultant/routing/assign.py); coming back, or being reactivated, lets cases
that wait flow to them. Lowering a capacity takes no case away: routing just gives no
more until the load is under it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import Session, col, select

from consultant.codes.specialty import SPECIALTIES
from consultant.hours import ScheduleError, parse_schedule
from consultant.models import Coder, CoderRole, Event, Ticket
from consultant.passwords import PasswordError, hash_password
from consultant.routing.assign import (
    hand_back,
    loads,
    lock_for_coder_change,
    route_tickets,
    working_hours,
)
from consultant.routing.policy import GENERALIST
from consultant.states import UNFINISHED

SPECIALTY_NAMES = (*SPECIALTIES, GENERALIST)
ROLES = tuple(role.value for role in CoderRole)


class CoderError(Exception):
    """A coder that cannot be added or changed as asked; the message says why."""


def add_coder(
    session: Session,
    *,
    email: str,
    name: str,
    actor: str,
    now: datetime,
    role: str = CoderRole.CODER,
    specialties: Iterable[str] = (),
    capacity: int = 10,
    timezone: str = "UTC",
    working_hours: str = "",
) -> Coder:
    address = _address(email)
    if find(session, address) is not None:
        raise CoderError(f"{address} is a coder already (change them with coders set)")
    coder = Coder(
        email=address,
        name=_name(name),
        role=_role(role),
        specialties=_specialties(specialties),
        capacity=_capacity(capacity),
        timezone=_timezone(timezone),
        working_hours=_hours(working_hours, timezone),
        created_at=now,
    )
    session.add(coder)
    session.flush()
    _event(session, actor, "coder.added", f"{address} ({coder.role})")
    route_tickets(session, None, now=now)  # cases that waited may be theirs now
    return coder


def update_coder(
    session: Session,
    *,
    email: str,
    actor: str,
    now: datetime,
    name: str | None = None,
    role: str | None = None,
    specialties: Iterable[str] | None = None,
    capacity: int | None = None,
    timezone: str | None = None,
    working_hours: str | None = None,
    active: bool | None = None,
) -> Coder:
    """Change what is given; deactivating hands the coder's open cases back at once."""
    coder = existing(session, email)
    lock_for_coder_change(session, coder)
    zone = _timezone(timezone) if timezone is not None else coder.timezone
    wanted: dict[str, Any] = {
        "name": _name(name) if name is not None else None,
        "role": _role(role) if role is not None else None,
        "specialties": _specialties(specialties) if specialties is not None else None,
        "capacity": _capacity(capacity) if capacity is not None else None,
        "timezone": zone if timezone is not None else None,
        "working_hours": _hours(
            working_hours if working_hours is not None else coder.working_hours, zone
        )
        if working_hours is not None or timezone is not None
        else None,
        "active": active,
    }
    changes = []
    for field, value in wanted.items():
        if value is not None and getattr(coder, field) != value:
            changes.append(f"{field}: {getattr(coder, field)!r} → {value!r}")
            setattr(coder, field, value)
    if not changes:
        return coder
    session.add(coder)
    _event(session, actor, "coder.changed", f"{coder.email}: " + "; ".join(changes))
    if active is False:
        hand_back(session, coder, reason=f"{coder.email} was deactivated", actor=actor, now=now)
    else:
        route_tickets(session, None, now=now)  # more capacity or a new specialty
    return coder


def set_away(
    session: Session,
    *,
    email: str,
    actor: str,
    now: datetime,
    start: datetime | None = None,
    until: datetime | None = None,
) -> Coder:
    """Out of office from ``start`` (now) until ``until`` (until they come back)."""
    coder = existing(session, email)
    lock_for_coder_change(session, coder)
    begins = start or now
    if until is not None and until <= begins:
        raise CoderError(f"the absence must end after it starts ({begins:%Y-%m-%d %H:%M} UTC)")
    coder.away_from, coder.away_until = begins, until
    session.add(coder)
    ends = f" until {until:%Y-%m-%d %H:%M} UTC" if until else ""
    _event(session, actor, "coder.away", f"{coder.email} from {begins:%Y-%m-%d %H:%M} UTC{ends}")
    if coder.is_away(now):
        hand_back(session, coder, reason=f"{coder.email} is away{ends}", actor=actor, now=now)
    return coder


def set_password(session: Session, *, email: str, password: str, actor: str) -> Coder:
    """Give the coder a password to sign in to the dashboard with (a new one ends every
    session they have open)."""
    from consultant.web.sessions import end_all

    coder = existing(session, email)
    try:
        coder.password_hash = hash_password(password)
    except PasswordError as exc:
        raise CoderError(str(exc)) from None
    session.add(coder)
    _event(session, actor, "coder.password", coder.email)
    end_all(session, coder_id=coder.id, reason="password changed")  # type: ignore[arg-type]
    return coder


def reset_second_factor(session: Session, *, email: str, actor: str) -> Coder:
    """Forget a coder's authenticator (a lost phone): they enrol a new one at their next
    sign-in, and every session they have open is ended."""
    from consultant.web.sessions import end_all

    coder = existing(session, email)
    coder.totp_secret = None
    coder.totp_last_step = None
    session.add(coder)
    _event(session, actor, "coder.two_factor", f"{coder.email}: reset")
    end_all(session, coder_id=coder.id, reason="two-factor reset")  # type: ignore[arg-type]
    return coder


def come_back(session: Session, *, email: str, actor: str, now: datetime) -> Coder:
    coder = existing(session, email)
    lock_for_coder_change(session, coder)
    coder.away_from = coder.away_until = None
    session.add(coder)
    _event(session, actor, "coder.back", coder.email)
    route_tickets(session, None, now=now)
    return coder


# --- reading ------------------------------------------------------------------------


def find(session: Session, email: str) -> Coder | None:
    return session.exec(select(Coder).where(Coder.email == email.strip().lower())).first()


def existing(session: Session, email: str) -> Coder:
    coder = find(session, email)
    if coder is None:
        raise CoderError(f"no coder {email.strip().lower()} (see consultant coders list)")
    return coder


def list_coders(session: Session, *, now: datetime) -> list[dict[str, Any]]:
    coders = session.exec(select(Coder).order_by(col(Coder.id))).all()
    counted = loads(session, [c.id for c in coders])  # type: ignore[misc]
    return [describe(coder, load=counted[coder.id], now=now) for coder in coders]  # type: ignore[index]


def coder_detail(session: Session, *, email: str, now: datetime) -> dict[str, Any]:
    """The coder and the unfinished cases they own, most urgent first (no case text)."""
    coder = existing(session, email)
    owned = session.exec(
        select(Ticket)
        .where(Ticket.coder_id == coder.id, col(Ticket.status).in_(UNFINISHED))
        .order_by(col(Ticket.due_at).asc().nulls_last(), col(Ticket.id))
    ).all()
    return {
        **describe(coder, load=len(owned), now=now),
        "cases": [
            {
                "number": t.id,
                "reference": t.reference,
                "subject": t.subject,
                "status": t.status,
                "due_at": t.due_at.isoformat() if t.due_at else None,
            }
            for t in owned
        ],
    }


def describe(coder: Coder, *, load: int, now: datetime) -> dict[str, Any]:
    return {
        "email": coder.email,
        "name": coder.name,
        "role": coder.role,
        "specialties": coder.specialty_list(),
        "capacity": coder.capacity,
        "open": load,
        "timezone": coder.timezone,
        "working_hours": coder.working_hours or "any time",
        "on_shift": working_hours(coder).is_open(now),
        "active": coder.active,
        "away": coder.is_away(now),
        "away_from": coder.away_from.isoformat() if coder.away_from else None,
        "away_until": coder.away_until.isoformat() if coder.away_until else None,
        "last_assigned_at": coder.last_assigned_at.isoformat() if coder.last_assigned_at else None,
    }


# --- checking what is given -----------------------------------------------------------


def _address(email: str) -> str:
    address = email.strip().lower()
    local, at, domain = address.partition("@")
    if not (local and at and "." in domain) or " " in address:
        raise CoderError(f"{email!r} is not an email address")
    return address


def _name(name: str) -> str:
    if not name.strip():
        raise CoderError("a coder needs a name")
    return name.strip()


def _role(role: str) -> str:
    if role not in ROLES:
        raise CoderError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
    return role


def _specialties(names: Iterable[str]) -> str:
    wanted = [n.strip().lower() for name in names for n in name.split(",") if n.strip()]
    unknown = [name for name in wanted if name not in SPECIALTY_NAMES]
    if unknown:
        raise CoderError(
            f"unknown specialty {', '.join(unknown)} (known: {', '.join(SPECIALTY_NAMES)}; "
            "consultant codes specialties lists them)"
        )
    return ",".join(dict.fromkeys(wanted))


def _capacity(capacity: int) -> int:
    if capacity < 0:
        raise CoderError("capacity is how many open cases at once: 0 or more")
    return capacity


def _timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CoderError(
            f"unknown time zone {name!r} (an IANA name such as Europe/Berlin)"
        ) from None
    return name


def _hours(text: str, zone: str) -> str:
    try:
        parse_schedule(text, zone=zone)
    except ScheduleError as exc:
        raise CoderError(f"working hours: {exc}") from None
    return text.strip()


def _event(session: Session, actor: str, kind: str, detail: str) -> None:
    session.add(Event(actor=actor, kind=kind, detail=detail))
