"""``consultant coders``: the people who answer cases."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from sqlmodel import Session

from consultant.cli.support import JsonOption, fail, print_json, ready
from consultant.config import get_settings
from consultant.db import session_scope
from consultant.models import utcnow

coders_app = typer.Typer(
    help="Coders: who answers cases, their specialties, capacity, hours and absences.",
    no_args_is_help=True,
)

NameOption = Annotated[str | None, typer.Option("--name", help="Their full name.")]
RoleOption = Annotated[
    str | None, typer.Option("--role", help="coder, lead (also assigns cases) or admin.")
]
SpecialtyOption = Annotated[
    list[str] | None,
    typer.Option(
        "--specialty",
        help="A specialty they take (repeat, or comma-separate); see consultant codes "
        "specialties. 'generalist' takes any.",
    ),
]
CapacityOption = Annotated[
    int | None, typer.Option("--capacity", min=0, help="Most open cases at once.")
]
TimezoneOption = Annotated[
    str | None, typer.Option("--timezone", help="Their time zone, e.g. Europe/Berlin.")
]
HoursOption = Annotated[
    str | None,
    typer.Option("--hours", help='Working hours in their zone, e.g. "Mon-Fri 08:00-17:00".'),
]
ByOption = Annotated[str, typer.Option("--by", help="Who makes the change (for the record).")]


@coders_app.command("add")
def coders_add(
    email: str,
    name: Annotated[str, typer.Option("--name", help="Their full name.")],
    role: RoleOption = None,
    specialty: SpecialtyOption = None,
    capacity: CapacityOption = None,
    timezone: TimezoneOption = None,
    hours: HoursOption = None,
    by: ByOption = "admin",
    as_json: JsonOption = False,
) -> None:
    """Add a coder: one person, one address. Prints the one-time link they open to
    choose a password and sign in to the dashboard."""
    from consultant.coders import add_coder, describe
    from consultant.sign_in_links import issue_link

    def add(session: Session) -> dict[str, Any]:
        coder = add_coder(
            session,
            email=email,
            name=name,
            actor=by,
            now=utcnow(),
            role=role or "coder",
            specialties=specialty or (),
            capacity=10 if capacity is None else capacity,
            timezone=timezone or "UTC",
            working_hours=hours or "",
        )
        link = issue_link(session, email=coder.email, by=by, now=utcnow())
        return {**describe(coder, load=0, now=utcnow()), "sign_in_link": link}

    row = _change(add)
    _show_or_json(row, as_json, f"added {row['email']} ({row['role']})")
    if not as_json:
        _print_link(row)


@coders_app.command("set")
def coders_set(
    email: str,
    name: NameOption = None,
    role: RoleOption = None,
    specialty: SpecialtyOption = None,
    capacity: CapacityOption = None,
    timezone: TimezoneOption = None,
    hours: HoursOption = None,
    active: Annotated[
        bool | None,
        typer.Option(
            "--active/--inactive",
            help="--inactive: takes no more cases; their open cases go to others. "
            "Their history stays.",
        ),
    ] = None,
    by: ByOption = "admin",
    as_json: JsonOption = False,
) -> None:
    """Change a coder. Lowering the capacity takes no case away."""
    from consultant.coders import coder_detail, update_coder

    def change(session: Session) -> dict[str, Any]:
        coder = update_coder(
            session,
            email=email,
            actor=by,
            now=utcnow(),
            name=name,
            role=role,
            specialties=specialty,
            capacity=capacity,
            timezone=timezone,
            working_hours=hours,
            active=active,
        )
        return coder_detail(session, email=coder.email, now=utcnow())

    row = _change(change)
    _show_or_json(row, as_json, f"changed {row['email']}")


@coders_app.command("list")
def coders_list(as_json: JsonOption = False) -> None:
    """Every coder, with open cases against capacity, shift and absence."""
    from consultant.coders import list_coders

    ready()
    with session_scope() as session:
        rows = list_coders(session, now=utcnow())
    if as_json:
        print_json(rows)
        return
    for row in rows:
        typer.echo(_line(row))


@coders_app.command("show")
def coders_show(email: str, as_json: JsonOption = False) -> None:
    """One coder and the cases they own."""
    from consultant.coders import coder_detail

    row = _change(lambda session: coder_detail(session, email=email, now=utcnow()))
    if as_json:
        print_json(row)
        return
    typer.echo(_line(row))
    typer.echo(f"  hours: {row['working_hours']} ({row['timezone']})")
    for case in row["cases"]:
        due = (case["due_at"] or "-")[:16].replace("T", " ")
        typer.echo(f"  {case['reference']:>8}  {case['status']:<8} due {due}  {case['subject']}")


@coders_app.command("away")
def coders_away(
    email: str,
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="When the absence starts (a date or date and time in their zone); default now.",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until", help="When they are back (a date, or date and time, in their time zone)."
        ),
    ] = None,
    by: ByOption = "admin",
) -> None:
    """Out of office: their open cases go to others as the absence starts."""
    from consultant.coders import existing, set_away

    def away(session: Session) -> dict[str, Any]:
        zone = ZoneInfo(existing(session, email).timezone)
        coder = set_away(
            session,
            email=email,
            actor=by,
            now=utcnow(),
            start=_instant(start, zone) if start else None,
            until=_instant(until, zone) if until else None,
        )
        return {"email": coder.email, "until": coder.away_until}

    row = _change(away)
    back = f" until {row['until']:%Y-%m-%d %H:%M} UTC" if row["until"] else ""
    typer.echo(f"{row['email']} is away{back}")


@coders_app.command("back")
def coders_back(email: str, by: ByOption = "admin") -> None:
    """Back at work: takes new cases again."""
    from consultant.coders import come_back

    row = _change(
        lambda session: {"email": come_back(session, email=email, actor=by, now=utcnow()).email}
    )
    typer.echo(f"{row['email']} is back")


def _instant(text: str, zone: ZoneInfo) -> datetime:
    """A date (midnight) or a date and time, in the coder's zone unless it names one."""
    from consultant.coders import CoderError

    try:
        if len(text.strip()) == 10:
            moment = datetime.combine(date.fromisoformat(text.strip()), time(), tzinfo=zone)
        else:
            moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CoderError(f"{text!r} is not a date (2026-12-24) or a date and time") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).astimezone(UTC)


def _line(row: dict[str, Any]) -> str:
    state = "inactive" if not row["active"] else ("away" if row["away"] else "")
    shift = "on shift" if row["on_shift"] else "off shift"
    return (
        f"{row['email']:<28} {row['name']:<20} {row['role']:<6} "
        f"{row['open']:>3}/{row['capacity']:<3} {shift:<9} {state:<8} "
        f"{','.join(row['specialties']) or '-'}"
    )


@coders_app.command("password")
def coders_password(
    email: str,
    stdin: Annotated[
        bool, typer.Option("--stdin", help="Read the password from standard input (scripts).")
    ] = False,
    by: ByOption = "admin",
) -> None:
    """Set the password a coder signs in to the dashboard with (asked twice, not shown).

    A new password signs the coder out of every browser.
    """
    from consultant.coders import set_password

    if stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)

    def change(session: Session) -> dict[str, Any]:
        coder = set_password(session, email=email, password=password, actor=by)
        return {"email": coder.email}

    row = _change(change)
    typer.echo(f"password set for {row['email']}; they sign in at {get_settings().web_url}/")


@coders_app.command("link")
def coders_link(email: str, by: ByOption = "admin", as_json: JsonOption = False) -> None:
    """A new one-time sign-in link for a coder (first sign-in, or a forgotten password);
    any older unused link stops working."""
    from consultant.sign_in_links import issue_link

    def issue(session: Session) -> dict[str, Any]:
        link = issue_link(session, email=email, by=by, now=utcnow())
        return {"email": email.strip().lower(), "sign_in_link": link}

    row = _change(issue)
    if as_json:
        print_json(row)
    else:
        _print_link(row)


def _print_link(row: dict[str, Any]) -> None:
    from consultant.sign_in_links import VALID_HOURS

    typer.echo(
        f"{row['email']} signs in for the first time with this link "
        f"(it works once, within {VALID_HOURS} hours):\n  {row['sign_in_link']}"
    )


@coders_app.command("reset-2fa")
def coders_reset_two_factor(email: str, by: ByOption = "admin") -> None:
    """Forget a coder's authenticator (a lost phone): they set up a new one at their next
    sign-in, and are signed out everywhere now."""
    from consultant.coders import reset_second_factor

    def reset(session: Session) -> dict[str, Any]:
        return {"email": reset_second_factor(session, email=email, actor=by).email}

    row = _change(reset)
    typer.echo(f"two-factor sign-in reset for {row['email']}: they set it up again at sign-in")


def _change(action: Callable[[Session], dict[str, Any]]) -> dict[str, Any]:
    from consultant.coders import CoderError

    ready()
    try:
        with session_scope() as session:
            return action(session)
    except CoderError as exc:
        fail(str(exc))


def _show_or_json(row: dict[str, Any], as_json: bool, line: str) -> None:
    if as_json:
        print_json(row)
    else:
        typer.echo(line)
