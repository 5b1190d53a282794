"""``consultant audit``: who saw or did what, from the append-only audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from consultant import audit
from consultant.cli.support import JsonOption, fail, print_json, ready
from consultant.db import session_scope

audit_app = typer.Typer(
    help="The audit log: sign-ins, case views and actions.", no_args_is_help=True
)


@audit_app.command("list")
def audit_list(
    since: Annotated[
        str | None, typer.Option("--since", help="From this date or time (UTC), e.g. 2026-12-01.")
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Before this time (UTC); a date alone includes that day."),
    ] = None,
    actor: Annotated[str, typer.Option("--actor", help="By this person (email address).")] = "",
    action: Annotated[
        str, typer.Option("--action", help="This action and those under it, e.g. sign_in.")
    ] = "",
    ticket: Annotated[
        int | None, typer.Option("--ticket", min=1, help="About this case number.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many rows.")] = 200,
    as_json: JsonOption = False,
) -> None:
    """The newest entries first; the same filters as the dashboard's audit page."""
    start, end = _moment("--since", since), _moment("--until", until, until=True)
    ready()
    with session_scope() as session:
        rows = audit.entries(
            session,
            since=start,
            until=end,
            actor=actor,
            action=action,
            ticket_id=ticket,
            limit=limit,
        )
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("no audit entries")
    for row in rows:
        case = f" CC-{row['ticket']}" if row["ticket"] else ""
        detail = f" {row['detail']}" if row["detail"] else ""
        where = f"  [{row['address']}]" if row["address"] else ""
        typer.echo(f"{row['at'][:19]}  {row['actor']:<28} {row['action']}{case}{detail}{where}")


def _moment(option: str, given: str | None, *, until: bool = False) -> datetime | None:
    if given is None:
        return None
    try:
        return audit.moment(given, until=until)
    except ValueError as exc:
        fail(f"{option} takes {exc}")
