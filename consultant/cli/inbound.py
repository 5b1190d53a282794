"""``consultant inbound``: the emails as they arrived, and the ones that could not be processed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import col, select

from consultant import dispatch
from consultant.cli.support import JsonOption, in_session, print_json, ready
from consultant.db import session_scope
from consultant.inbound import (
    Arrival,
    InboundError,
    delete_inbound,
    not_retried,
    retry_inbound,
    store_arrival,
)
from consultant.models import InboundEmail, InboundStatus, utcnow

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
                "deleted_by": e.deleted_by,
                "deleted_reason": e.deleted_reason,
            }
            for e in session.exec(query).all()
        ]
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo(f"no {status.value} emails" if status else "no emails received yet")
    for row in rows:
        where = f" at {row['stage']}: {row['error']}" if row["error"] else ""
        if row["deleted_by"]:
            where += f" (deleted by {row['deleted_by']}: {row['deleted_reason']})"
        typer.echo(f"{row['id']:>6}  {row['status']:<11} {row['message_id']}{where}")


@inbound_app.command("add")
def inbound_add(
    files: Annotated[
        list[Path], typer.Argument(help="Emails as .eml files (RFC 5322 bytes), - for stdin.")
    ],
) -> None:
    """Take emails from files, as if they had arrived by mail (a case forwarded to an
    admin, mail saved from another system). The same email twice is stored once."""
    ready()
    arrivals = [Arrival(raw=_read_email_file(path), source="file") for path in files]
    with session_scope() as session:
        stored = [store_arrival(session, arrival) for arrival in arrivals]
    dispatch.inbound_stored([inbound_id for inbound_id in stored if inbound_id is not None])
    for path, inbound_id in zip(files, stored, strict=True):
        if inbound_id is None:
            typer.echo(f"{path}: stored before (the same email), left alone")
        else:
            typer.echo(f"{path}: stored as email {inbound_id}")


def _read_email_file(path: Path) -> bytes:
    try:
        raw = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as exc:
        typer.echo(f"{path}: cannot read: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
    if not raw.strip():
        typer.echo(f"{path}: empty, not an email", err=True)
        raise typer.Exit(1)
    return raw


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
        refused = [] if all_ else not_retried(session, sorted(set(ids or []) - set(retried)))
    dispatch.inbound_stored(retried)
    typer.echo(f"{len(retried)} email(s) queued again")
    for reason in refused:
        typer.echo(reason, err=True)
    if refused:
        raise typer.Exit(1)


@inbound_app.command("delete")
def inbound_delete(
    inbound_id: Annotated[int, typer.Argument(help="A failed or quarantined email.")],
    reason: Annotated[str, typer.Option("--reason", help="Why: kept with the email.")],
    by: Annotated[str, typer.Option("--by", help="Who deletes it.")] = "admin",
) -> None:
    """Give up on a failed or quarantined email: never processed again; its bytes, who
    deleted it and why are kept (`inbound list --status deleted`)."""
    in_session(
        lambda session: delete_inbound(
            session, inbound_id=inbound_id, by=by, reason=reason, now=utcnow()
        ),
        refusals=(InboundError,),
    )
    typer.echo(f"email {inbound_id} deleted; its bytes are kept")
