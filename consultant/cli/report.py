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


@report_app.command("coders")
def report_coders(
    since: Annotated[
        str | None, typer.Option(help=f"First day (UTC); default {DEFAULT_DAYS} days ago.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Last day (UTC), included; default today.")
    ] = None,
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


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _day(text: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(text.strip()), time(), tzinfo=UTC)
    except ValueError:
        fail(f"{text!r} is not a date (like 2026-12-01)")
