"""``consultant inbound``: the emails as they arrived, and the ones that could not be processed."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlmodel import col, select

from consultant import dispatch
from consultant.cli_support import JsonOption, print_json, ready
from consultant.db import session_scope
from consultant.inbound import retry_inbound
from consultant.models import InboundEmail, InboundStatus

inbound_app = typer.Typer(
    help="Received emails; failed and quarantined ones can be retried.", no_args_is_help=True
)


@inbound_app.command("list")
def inbound_list(
    status: Annotated[
        InboundStatus | None, typer.Option(help="Only emails in this state (e.g. quarantined).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List received emails, newest first, with where and why processing failed."""
    ready()
    with session_scope() as session:
        query = select(InboundEmail).order_by(col(InboundEmail.id).desc()).limit(500)
        if status is not None:
            query = query.where(InboundEmail.status == status)
        rows = [
            {
                "id": e.id,
                "source": e.source,
                "message_id": e.message_id,
                "size": e.size,
                "status": e.status,
                "stage": e.stage,
                "error": e.error,
                "attempts": e.attempts,
                "ticket": e.ticket_id,
                "received_at": e.received_at.isoformat(),
            }
            for e in session.exec(query).all()
        ]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        where = f" at {row['stage']}: {row['error']}" if row["error"] else ""
        typer.echo(f"{row['id']:>6}  {row['status']:<11} {row['message_id']}{where}")


@inbound_app.command("retry")
def inbound_retry(
    ids: Annotated[list[int] | None, typer.Argument(help="Emails to process again.")] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Every failed and quarantined email.")
    ] = False,
) -> None:
    """Process failed or quarantined emails again, from the raw bytes kept."""
    if not ids and not all_:
        typer.echo("name the emails to retry, or --all", err=True)
        raise typer.Exit(1)
    ready()
    with session_scope() as session:
        retried = retry_inbound(session, inbound_ids=None if all_ else list(ids or []))
    dispatch.inbound_stored(retried)
    typer.echo(f"{len(retried)} email(s) queued again")
