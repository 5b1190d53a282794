"""``consultant hours``: the business hours SLA clocks count in, and closed dates."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from consultant.cli.support import JsonOption, fail, print_json, ready
from consultant.db import session_scope
from consultant.models import utcnow

hours_app = typer.Typer(
    help="Business hours (CONSULTANT_BUSINESS_HOURS, CONSULTANT_HOLIDAYS) and closed dates.",
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
    typer.echo(f"business hours: {shown['business_hours']}")
    typer.echo(f"holidays: {shown['holidays'] or 'none (set CONSULTANT_HOLIDAYS, e.g. US)'}")
    for day in shown["holiday_dates"]:
        typer.echo(f"  {day}")
    typer.echo("closed dates:" if shown["closed_dates"] else "closed dates: none")
    for closed in shown["closed_dates"]:
        typer.echo(f"  {closed['day']}  {closed['name']}")


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
