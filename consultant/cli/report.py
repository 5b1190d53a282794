"""``consultant report``: how the desk is doing, from the rollups the beat keeps.

Each report command refreshes the rollups first (only what changed since the last
refresh), so a script reads today's figures; ``report rebuild`` derives them all again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from consultant.cli.support import JsonOption, fail, print_json, ready
from consultant.db import session_scope
from consultant.models import utcnow
from consultant.reports.figures import REPORTS, Report, Table, run_report
from consultant.reports.query import DEFAULT_DAYS, read_query
from consultant.reports.rollups import rebuild, refresh

report_app = typer.Typer(
    help="Reports: volume, speed, people, quota and codes.", no_args_is_help=True
)
SinceOption = Annotated[
    str, typer.Option(help=f"First day (UTC, 2026-12-01); default {DEFAULT_DAYS} days ago.")
]
UntilOption = Annotated[str, typer.Option(help="Last day (UTC), included; default today.")]
PlanOption = Annotated[str, typer.Option(help="Only the cases of accounts on this plan.")]
SpecialtyOption = Annotated[str, typer.Option(help="Only the cases of this specialty.")]
AccountOption = Annotated[str, typer.Option(help="Only this account's cases.")]
IntervalOption = Annotated[str, typer.Option(help="Volume per day, week or month.")]
ByOption = Annotated[str, typer.Option(help="Group by plan, specialty or account.")]
CsvOption = Annotated[bool, typer.Option("--csv", help="Print the table as CSV.")]
TableOption = Annotated[str, typer.Option(help="Which table --csv prints (default the first).")]


def _command(name: str) -> Callable[..., None]:
    def command(
        since: SinceOption = "",
        until: UntilOption = "",
        plan: PlanOption = "",
        specialty: SpecialtyOption = "",
        account: AccountOption = "",
        interval: IntervalOption = "day",
        by: ByOption = "",
        as_json: JsonOption = False,
        as_csv: CsvOption = False,
        table: TableOption = "",
    ) -> None:
        ready()
        now = utcnow()
        with session_scope() as session:
            refresh(session, now=now)
            asked = read_query(
                session,
                today=now.date(),
                since=since,
                until=until,
                plan=plan,
                specialty=specialty,
                account=account,
                interval=interval,
                by=by,
            )
            if asked.problems:
                fail("; ".join(f"--{key}: {message}" for key, message in asked.problems.items()))
            report = run_report(session, name, asked.query, now=now)
        _print(report, as_json=as_json, as_csv=as_csv, table=table)

    command.__doc__ = f"{REPORTS[name]}: {_first_line(name)}"
    return command


def _first_line(name: str) -> str:
    from consultant.reports import figures

    doc = getattr(figures, name).__doc__ or ""
    return " ".join(doc.split())


for _name in REPORTS:
    report_app.command(_name)(_command(_name))


@report_app.command("rebuild")
def report_rebuild(as_json: JsonOption = False) -> None:
    """Derive every rollup again from the raw tables (after a restore, or a plan's move)."""
    ready()
    with session_scope() as session:
        done = rebuild(session)
    if as_json:
        print_json({"cases": done.cases, "days": done.days, "seconds": done.seconds})
    else:
        typer.echo(f"rebuilt: {done.cases} cases over {done.days} days in {done.seconds:.1f} s")


def _print(report: Report, *, as_json: bool, as_csv: bool, table: str) -> None:
    if as_json:
        print_json(report.as_dict())
        return
    if as_csv:
        chosen = report.table(table) if table else report.tables[0]
        if chosen is None:
            fail(f"--table is one of {', '.join(t.key for t in report.tables)}")
        typer.echo(chosen.csv(), nl=False)
        return
    typer.echo(f"{report.title}, {report.query.since} to {report.query.until} (UTC days)")
    for key, value in report.summary.items():
        typer.echo(f"  {key}: {_text(value)}")
    for each in report.tables:
        typer.echo(f"\n{each.title}")
        _print_table(each)
    for note in report.notes:
        typer.echo(f"\n{note}")


def _print_table(table: Table) -> None:
    cells = [[label for _, label in table.columns]]
    cells += [[_text(row.get(key)) for key, _ in table.columns] for row in table.rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(table.columns))]
    for line in cells:
        typer.echo(
            "  ".join(
                cell.rjust(w) if i else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(line, widths, strict=True))
            )
        )


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else ""
    return str(value)
