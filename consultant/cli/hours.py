"""``consultant hours``: the business hours SLA clocks count in, and closed dates."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from consultant.cli.support import (
    JsonOption,
    fail,
    print_json,
    ready,
    set_desk_settings,
    unset_desk_settings,
)
from consultant.db import session_scope
from consultant.models import utcnow

hours_app = typer.Typer(
    help="Business hours and holidays (set here or on /admin/hours, else "
    "CONSULTANT_BUSINESS_HOURS, CONSULTANT_HOLIDAYS) and closed dates.",
    no_args_is_help=True,
)
DayArgument = Annotated[str, typer.Argument(help="The date, e.g. 2026-12-24.")]
ByOption = Annotated[str, typer.Option("--by", help="Who makes the change (for the record).")]


@hours_app.command("show")
def hours_show(as_json: JsonOption = False) -> None:
    """The hours in force, this year's and next year's holidays, and the closed dates."""
    from consultant.closed_dates import calendar

    ready()
    with session_scope() as session:
        shown = calendar(session, now=utcnow())
    if as_json:
        print_json(shown)
        return
    typer.echo(f"business hours: {shown['business_hours']}  [{shown['business_hours_from']}]")
    typer.echo(f"holidays: {shown['holidays'] or 'none'}  [{shown['holidays_from']}]")
    for day in shown["holiday_dates"]:
        typer.echo(f"  {day}")
    typer.echo("closed dates:" if shown["closed_dates"] else "closed dates: none")
    for closed in shown["closed_dates"]:
        typer.echo(f"  {closed['day']}  {closed['name']}")


@hours_app.command("set")
def hours_set(
    hours: Annotated[
        str | None,
        typer.Option("--hours", help='e.g. "Mon-Fri 08:00-18:00 America/New_York"; 24x7: always.'),
    ] = None,
    holidays: Annotated[
        str | None, typer.Option("--holidays", help="e.g. US or US-NY; empty: none.")
    ] = None,
    by: ByOption = "admin",
) -> None:
    """Set the business hours or the holidays for every process at once (instead of the
    environment's); running SLA clocks are re-timed."""
    changes = {"business_hours": hours, "holidays": holidays}
    set_desk_settings({name: value for name, value in changes.items() if value is not None}, by)


@hours_app.command("unset")
def hours_unset(by: ByOption = "admin") -> None:
    """Go back to CONSULTANT_BUSINESS_HOURS and CONSULTANT_HOLIDAYS."""
    unset_desk_settings(("business_hours", "holidays"), by)


@hours_app.command("close")
def hours_close(
    day: DayArgument,
    name: Annotated[str, typer.Option("--name", help="Why, for people reading it.")] = "",
    by: ByOption = "admin",
) -> None:
    """Close the desk on a date: SLA clocks stand still that day."""
    from consultant.closed_dates import ClosedDateError, close

    when = _date(day)
    ready()
    try:
        with session_scope() as session:
            moved = close(session, day=when, name=name, actor=by, now=utcnow())
    except ClosedDateError as exc:
        fail(str(exc))
    typer.echo(f"closed on {when}; {moved} open case(s) re-timed")


@hours_app.command("open")
def hours_open(day: DayArgument, by: ByOption = "admin") -> None:
    """Take a closed date back."""
    from consultant.closed_dates import ClosedDateError, reopen

    when = _date(day)
    ready()
    try:
        with session_scope() as session:
            moved = reopen(session, day=when, actor=by, now=utcnow())
    except ClosedDateError as exc:
        fail(str(exc))
    typer.echo(f"open on {when}; {moved} open case(s) re-timed")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        fail(f"{text!r} is not a date (like 2026-12-24)")
