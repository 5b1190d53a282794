"""The admin's pages for how the desk works: business hours, holidays and closed dates
(``/admin/hours``), the routing policy (``/admin/routing``) and the wording of every
email the desk sends (``/admin/templates``).

Each change goes through the same domain function as the command line
(consultant/desk_settings.py, closed_dates.py, email_templates.py), in force for every
process at once, and is audited with what it was before and after. A form that cannot be
taken is shown again as typed, with each message beside its field.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

import holidays
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from consultant import audit, closed_dates, desk_settings, email_templates
from consultant.codes.specialty import SPECIALTIES
from consultant.config import ROUTING_PREFERENCES, ROUTING_TIERS
from consultant.db import session_scope
from consultant.hours import (
    DAY_NAMES,
    named_holidays,
    parse_schedule,
    schedule_from_week,
    week_fields,
)
from consultant.models import utcnow
from consultant.routing.overview import overview
from consultant.routing.policy import PREFERENCE_MEANING, TIER_MEANING, Policy
from consultant.web.admin import _apply
from consultant.web.pages import render
from consultant.web.security import Admin, check_csrf
from consultant.web.sessions import SignedIn

router = APIRouter(prefix="/admin")
MAX_FIELD = 200  # a day's spans, a zone, a country: anything longer is not one

Typed = dict[str, Any]
Problems = dict[str, str]


# --- business hours, holidays, closed dates ------------------------------------------


@router.get("/hours")
def hours_page(request: Request, person: Admin, done: str = "") -> Response:
    return _hours_page(request, person, notice=done)


@router.post("/hours")
def hours_submit(
    request: Request,
    person: Admin,
    csrf: Annotated[str, Form()] = "",
    day_mon: Annotated[str, Form()] = "",
    day_tue: Annotated[str, Form()] = "",
    day_wed: Annotated[str, Form()] = "",
    day_thu: Annotated[str, Form()] = "",
    day_fri: Annotated[str, Form()] = "",
    day_sat: Annotated[str, Form()] = "",
    day_sun: Annotated[str, Form()] = "",
    zone: Annotated[str, Form()] = "UTC",
    always: Annotated[str, Form()] = "",
    country: Annotated[str, Form()] = "",
    subdivision: Annotated[str, Form()] = "",
) -> Response:
    """New business hours and holidays; running SLA clocks are re-timed."""
    check_csrf(person, csrf)
    days = [day_mon, day_tue, day_wed, day_thu, day_fri, day_sat, day_sun]
    typed = {
        "days": days,
        "zone": zone,
        "always": always == "yes",
        "country": country,
        "subdivision": subdivision,
    }
    problems = _too_long(
        {
            **dict(zip(DAY_NAMES, days, strict=True)),
            "zone": zone,
            "country": country,
            "subdivision": subdivision,
        }
    )
    hours, holidays_spec = "24x7", ""
    if not problems:
        if not typed["always"]:
            hours, problems = schedule_from_week(days, zone)
        elif any(day.strip() for day in days):
            problems["always"] = "untick this to keep the hours typed below, or clear them"
        holidays_spec = _holidays_spec(country, subdivision, problems)
    if problems:
        return _hours_page(request, person, typed=typed, problems=problems, status_code=400)
    wanted = {"business_hours": hours, "holidays": holidays_spec}
    problem = _apply(
        request, person, "admin.hours_changed", lambda s: _set_settings(s, person, wanted)
    )
    if problem:
        return _hours_page(request, person, typed=typed, error=problem, status_code=400)
    return _redirect("/admin/hours", "saved the business hours and holidays")


@router.post("/hours/unset")
def hours_unset_submit(
    request: Request, person: Admin, csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(person, csrf)
    names = ("business_hours", "holidays")
    problem = _apply(request, person, "admin.hours_changed", lambda s: _unset(s, person, names))
    if problem:
        return _hours_page(request, person, error=problem, status_code=400)
    return _redirect("/admin/hours", "back to the environment's hours and holidays")


@router.post("/hours/closed")
def close_day_submit(
    request: Request,
    person: Admin,
    csrf: Annotated[str, Form()] = "",
    day: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
) -> Response:
    """Close the desk on a date: SLA clocks stand still that day."""
    check_csrf(person, csrf)
    typed = {"closed_day": day, "closed_name": name}
    when = _date(day)
    problems = _too_long({"closed_name": name})
    if when is None:
        problems["closed_day"] = f"{day[:40]!r} is not a date like 2026-12-24"
    if problems or when is None:
        return _hours_page(request, person, typed=typed, problems=problems, status_code=400)

    def close(session: Session) -> str:
        moved = closed_dates.close(
            session, day=when, name=name.strip(), actor=person.email, now=utcnow()
        )
        return f"{when} {name.strip()}: {moved} open case(s) re-timed".replace("  ", " ")

    problem = _apply(request, person, "admin.closed_date_added", close)
    if problem:
        problems = {"closed_day": problem}
        return _hours_page(request, person, typed=typed, problems=problems, status_code=400)
    return _redirect("/admin/hours", f"closed on {when}")


@router.post("/hours/open")
def open_day_submit(
    request: Request,
    person: Admin,
    csrf: Annotated[str, Form()] = "",
    day: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(person, csrf)
    when = _date(day)
    if when is None:
        return _hours_page(request, person, error=f"{day[:40]!r} is not a date", status_code=400)

    def reopen(session: Session) -> str:
        moved = closed_dates.reopen(session, day=when, actor=person.email, now=utcnow())
        return f"{when}: {moved} open case(s) re-timed"

    problem = _apply(request, person, "admin.closed_date_removed", reopen)
    if problem:
        return _hours_page(request, person, error=problem, status_code=400)
    return _redirect("/admin/hours", f"open on {when}")


def _holidays_spec(country: str, subdivision: str, problems: Problems) -> str:
    """``US-NY`` from the two fields, each checked against the holidays package; what is
    wrong goes into ``problems`` beside its field."""
    country, subdivision = country.strip().upper(), subdivision.strip().upper()
    if subdivision and not country:
        problems["country"] = "a subdivision needs its country"
        return ""
    try:
        desk_settings.checked("holidays", country)
    except desk_settings.DeskSettingError as exc:
        problems["country"] = str(exc)
        return ""
    spec = f"{country}-{subdivision}" if subdivision else country
    try:
        return desk_settings.checked("holidays", spec)
    except desk_settings.DeskSettingError as exc:
        problems["subdivision"] = str(exc)
        return ""


def _hours_page(
    request: Request,
    person: SignedIn,
    *,
    notice: str = "",
    error: str = "",
    typed: Typed | None = None,
    problems: Problems | None = None,
    status_code: int = 200,
) -> Response:
    now = utcnow()
    with session_scope() as session:
        shown = closed_dates.calendar(session, now=now)
        desk = desk_settings.in_force(session)
    schedule = parse_schedule(desk.business_hours)
    country, _, subdivision = desk.holidays.partition("-")
    in_force = {
        "days": week_fields(schedule),
        "zone": schedule.zone.key,
        "always": schedule.always_open,
        "country": country,
        "subdivision": subdivision,
    }
    return render(
        request,
        "admin_hours.html.j2",
        {
            "person": person,
            "shown": shown,
            "day_names": DAY_NAMES,
            "this_year": named_holidays(desk.holidays, now.year),
            "countries": sorted(holidays.list_supported_countries()),
            "typed": {**in_force, **(typed or {})},
            "problems": problems or {},
            "notice": notice,
            "error": error,
        },
        status_code=status_code,
    )


# --- the routing policy ---------------------------------------------------------------


@router.get("/routing")
def routing_page(request: Request, person: Admin, done: str = "") -> Response:
    return _routing_page(request, person, notice=done)


@router.post("/routing")
def routing_submit(
    request: Request,
    person: Admin,
    csrf: Annotated[str, Form()] = "",
    tier: Annotated[list[str] | None, Form()] = None,
    prefer: Annotated[list[str] | None, Form()] = None,
    preview: Annotated[str, Form()] = "",
) -> Response:
    """Save the tiers and preferences in the order chosen; with ``preview``, only show
    who the typed policy would give each specialty now."""
    check_csrf(person, csrf)
    typed = {"tiers": _chosen(tier), "prefer": _chosen(prefer)}
    problems: Problems = {}
    wanted: dict[str, str] = {}
    for name, field in (("routing_tiers", "tiers"), ("routing_prefer", "prefer")):
        try:
            wanted[name] = desk_settings.checked(name, ",".join(typed[field]))
        except desk_settings.DeskSettingError as exc:
            problems[field] = str(exc)
    if problems:
        return _routing_page(request, person, typed=typed, problems=problems, status_code=400)
    if preview:
        policy = Policy(
            tiers=tuple(wanted["routing_tiers"].split(",")),
            prefer=tuple(wanted["routing_prefer"].split(",")),
        )
        return _routing_page(request, person, typed=typed, policy=policy)
    problem = _apply(
        request, person, "admin.routing_changed", lambda s: _set_settings(s, person, wanted)
    )
    if problem:
        return _routing_page(request, person, typed=typed, error=problem, status_code=400)
    return _redirect("/admin/routing", "saved the routing policy")


@router.post("/routing/unset")
def routing_unset_submit(
    request: Request, person: Admin, csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(person, csrf)
    names = ("routing_tiers", "routing_prefer")
    problem = _apply(request, person, "admin.routing_changed", lambda s: _unset(s, person, names))
    if problem:
        return _routing_page(request, person, error=problem, status_code=400)
    return _redirect("/admin/routing", "back to the environment's routing policy")


def _routing_page(
    request: Request,
    person: SignedIn,
    *,
    notice: str = "",
    error: str = "",
    typed: Typed | None = None,
    problems: Problems | None = None,
    policy: Policy | None = None,
    status_code: int = 200,
) -> Response:
    with session_scope() as session:
        shown = overview(session, now=utcnow(), policy=policy)
    return render(
        request,
        "admin_routing.html.j2",
        {
            "person": person,
            "shown": shown,
            "previewed": policy is not None,
            "tier_words": ROUTING_TIERS,
            "prefer_words": ROUTING_PREFERENCES,
            "tier_meaning": TIER_MEANING,
            "prefer_meaning": PREFERENCE_MEANING,
            "specialties": SPECIALTIES,
            "typed": typed or {"tiers": shown["tiers"], "prefer": shown["prefer"]},
            "problems": problems or {},
            "notice": notice,
            "error": error,
        },
        status_code=status_code,
    )


# --- the desk's emails ---------------------------------------------------------------


@router.get("/templates")
def templates_page(request: Request, person: Admin, done: str = "") -> Response:
    with session_scope() as session:
        kinds = email_templates.overview(session)
        failures = email_templates.fallbacks(session)
    return render(
        request,
        "admin_templates.html.j2",
        {"person": person, "kinds": kinds, "failures": failures, "notice": done},
    )


@router.get("/templates/{kind}")
def template_page(request: Request, person: Admin, kind: str) -> Response:
    return _template_page(request, person, kind)


@router.post("/templates/{kind}")
def template_submit(
    request: Request,
    person: Admin,
    kind: str,
    csrf: Annotated[str, Form()] = "",
    text: Annotated[str, Form()] = "",
    html: Annotated[str, Form()] = "",
    preview: Annotated[str, Form()] = "",
) -> Response:
    """Save both parts of an email, each refused (with its line) unless it renders from
    the sample case; with ``preview``, only show them filled in."""
    check_csrf(person, csrf)
    if kind not in email_templates.KINDS:
        return _template_page(request, person, kind)
    bodies = {"text": text, "html": html}
    shown = email_templates.preview(kind, bodies)
    if shown.problems or preview:
        status = 400 if shown.problems else 200
        return _template_page(request, person, kind, typed=bodies, shown=shown, status_code=status)

    def save(session: Session) -> str:
        return email_templates.save(
            session, kind=kind, bodies=bodies, actor=person.email, now=utcnow()
        )

    problem = _apply(request, person, "admin.template_saved", save)
    if problem:
        return _template_page(request, person, kind, typed=bodies, error=problem, status_code=400)
    return _redirect(f"/admin/templates/{kind}", f"saved the {kind} email")


@router.post("/templates/{kind}/reset")
def template_reset_submit(
    request: Request, person: Admin, kind: str, csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(person, csrf)
    if kind not in email_templates.KINDS:
        return _template_page(request, person, kind)
    problem = _apply(
        request, person, "admin.template_reset", lambda s: email_templates.reset(s, kind=kind)
    )
    if problem:
        return _template_page(request, person, kind, error=problem, status_code=400)
    return _redirect(f"/admin/templates/{kind}", f"the {kind} email is the packaged one again")


def _template_page(
    request: Request,
    person: SignedIn,
    kind: str,
    *,
    typed: dict[str, str] | None = None,
    shown: email_templates.Preview | None = None,
    error: str = "",
    status_code: int = 200,
) -> Response:
    if kind not in email_templates.KINDS:
        return render(
            request,
            "error.html.j2",
            {"person": person, "message": f"the desk sends no email called {kind[:40]!r}"},
            status_code=404,
        )
    with session_scope() as session:
        [current] = [k for k in email_templates.overview(session) if k["kind"] == kind]
    bodies = typed or {part: current["parts"][part]["body"] for part in email_templates.PARTS}
    return render(
        request,
        "admin_template.html.j2",
        {
            "person": person,
            "kind": current,
            "typed": bodies,
            "preview": shown or email_templates.preview(kind, bodies),
            "notice": request.query_params.get("done", ""),
            "error": error,
        },
        status_code=status_code,
    )


# --- shared ---------------------------------------------------------------------------


def _set_settings(session: Session, person: SignedIn, wanted: dict[str, str]) -> str:
    """Set the desk settings that differ from the ones in force; before → after."""
    desk = desk_settings.in_force(session)
    differ = {name: value for name, value in wanted.items() if value != desk.value(name)}
    changes = desk_settings.change(session, values=differ, actor=person.email, now=utcnow())
    return _described(changes) if changes else "no change"


def _unset(session: Session, person: SignedIn, names: tuple[str, ...]) -> str:
    changes = desk_settings.unset(session, names=names, actor=person.email, now=utcnow())
    return f"{_described(changes)} (the environment's)"


def _described(changes: desk_settings.Changes) -> str:
    before = {name: pair[0] for name, pair in changes.items()}
    return audit.changes(before, {name: pair[1] for name, pair in changes.items()})


def _too_long(fields: dict[str, str]) -> Problems:
    too_long = f"at most {MAX_FIELD} characters"
    return {name: too_long for name, value in fields.items() if len(value) > MAX_FIELD}


def _chosen(slots: list[str] | None) -> list[str]:
    """The words chosen in a list of slots, in order, skipping the empty ones."""
    return [word[:MAX_FIELD] for word in slots or [] if word][:9]


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


def _redirect(path: str, done: str) -> Response:
    return RedirectResponse(f"{path}?{urlencode({'done': done})}", status_code=303)
