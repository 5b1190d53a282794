"""``consultant outbox``: outgoing emails that need a person, sent again or cancelled."""

from __future__ import annotations

from typing import Annotated

import typer

from consultant import dispatch
from consultant.cli.support import JsonOption, in_session, print_json, ready
from consultant.db import session_scope
from consultant.models import utcnow
from consultant.outbox import OutboxError, cancel_email, needing_attention, retry_email

outbox_app = typer.Typer(
    help="Outgoing emails that failed or wait: send again or cancel.", no_args_is_help=True
)
ById = Annotated[str, typer.Option("--by", help="Who does it (recorded on the case).")]


@outbox_app.command("list")
def outbox_list(as_json: JsonOption = False) -> None:
    """Failed emails, and pending ones held until a later attempt, newest first."""
    ready()
    with session_scope() as session:
        rows, _ = needing_attention(session, now=utcnow(), limit=500)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("no failed or held emails")
    for row in rows:
        typer.echo(
            f"{row['id']:>6}  {row['status']:<8} {row['recipient']}  "
            f"attempts {row['attempts']}: {row['last_error'] or '-'}"
        )


@outbox_app.command("retry")
def outbox_retry(outbox_id: int, by: ById = "admin") -> None:
    """Send a failed or held email again now (the same bytes and Message-ID)."""
    in_session(
        lambda session: retry_email(session, outbox_id=outbox_id, by=by, now=utcnow()),
        refusals=(OutboxError,),
    )
    dispatch.outbox_queued([outbox_id])
    typer.echo(f"outgoing email {outbox_id} queued again")


@outbox_app.command("cancel")
def outbox_cancel(outbox_id: int, by: ById = "admin") -> None:
    """Stop a failed or waiting email for good; it is kept, never sent."""
    in_session(
        lambda session: cancel_email(session, outbox_id=outbox_id, by=by, now=utcnow()),
        refusals=(OutboxError,),
    )
    typer.echo(f"outgoing email {outbox_id} cancelled")
