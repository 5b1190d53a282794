"""``consultant report``: how the desk is doing."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

import typer

from consultant.cli.support import JsonOption, fail, print_json, ready
from consultant.db import session_scope
from consultant.models import utcnow

report_app = typer.Typer(
    help="Reports: how the desk and its coders are doing.", no_args_is_help=True
)
DEFAULT_DAYS = 30
SinceOption = Annotated[
    str | None, typer.Option(help=f"First day (UTC); default {DEFAULT_DAYS} days ago.")
]
UntilOption = Annotated[str | None, typer.Option(help="Last day (UTC), included; default today.")]


@report_app.command("coders")
def report_coders(
    since: SinceOption = None,
    until: UntilOption = None,
    as_json: JsonOption = False,
) -> None:
    """How each coder is doing: load, cases and first-response times.

    Per coder: open cases / capacity, assigned and answered in the period, and time to
    first response in business hours (p50 / p90)."""
    from consultant.reports import coders_report

    end = _day(until) + timedelta(days=1) if until else utcnow()
    start = _day(since) if since else end - timedelta(days=DEFAULT_DAYS)
    ready()
    with session_scope() as session:
        rows = coders_report(session, since=start, until=end)
    if as_json:
        print_json({"since": start.isoformat(), "until": end.isoformat(), "coders": rows})
        return
    typer.echo(f"{start:%Y-%m-%d} to {end:%Y-%m-%d %H:%M} UTC")
    typer.echo(
        f"{'coder':<28} {'open':>9} {'assigned':>9} {'answered':>9} {'p50 h':>7} {'p90 h':>7}"
    )
    for row in rows:
        load = f"{row['open']}/{row['capacity']}"
        p50 = _hours(row["first_response_hours_p50"])
        p90 = _hours(row["first_response_hours_p90"])
        typer.echo(
            f"{row['email']:<28} {load:>9} {row['assigned']:>9} {row['answered']:>9} "
            f"{p50:>7} {p90:>7}"
        )


@report_app.command("volume")
def report_volume(
    since: SinceOption = None,
    until: UntilOption = None,
    as_json: JsonOption = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV for a spreadsheet.")] = False,
) -> None:
    """Cases received, answers sent and cases solved, per day (UTC)."""
    from consultant.reports import volume_report

    last = _day(until) if until else _day(utcnow().date().isoformat())
    start = _day(since) if since else last - timedelta(days=DEFAULT_DAYS - 1)
    ready()
    with session_scope() as session:
        rows = volume_report(session, since=start, until=last + timedelta(days=1))
    if as_json:
        print_json(rows)
    elif as_csv:
        typer.echo("day,received,answered,solved")
        for row in rows:
            typer.echo(f"{row['day']},{row['received']},{row['answered']},{row['solved']}")
    else:
        typer.echo(f"{'day':<12} {'received':>9} {'answered':>9} {'solved':>9}")
        for row in rows:
            typer.echo(
                f"{row['day']:<12} {row['received']:>9} {row['answered']:>9} {row['solved']:>9}"
            )


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _day(text: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(text.strip()), time(), tzinfo=UTC)
    except ValueError:
        fail(f"{text!r} is not a date (like 2026-12-01)")
