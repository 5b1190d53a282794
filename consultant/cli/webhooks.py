"""``consultant webhooks``: other systems told when a case arrives, is answered or breaks
its SLA (consultant/webhooks.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from sqlmodel import Session

from consultant import webhooks
from consultant.cli.support import JsonOption, in_session, print_json
from consultant.models import utcnow

webhooks_app = typer.Typer(
    help="Webhooks: signed posts to another system when something happens to a case.",
    no_args_is_help=True,
)


@webhooks_app.command("add")
def webhooks_add(
    url: Annotated[str, typer.Argument(help="Where to post, e.g. https://crm.example/hook.")],
    event: Annotated[
        list[str], typer.Option("--event", help=f"Repeat: {', '.join(webhooks.EVENTS)}.")
    ],
    with_body: Annotated[
        bool,
        typer.Option("--with-body", help="Include the case's subject and latest message."),
    ] = False,
    by: Annotated[str, typer.Option("--by", help="Who adds it (for the record).")] = "admin",
) -> None:
    """Add a webhook and print the secret its receiver checks signatures with."""

    def add(session: Session) -> tuple[int, str]:
        hook = webhooks.add_webhook(
            session, url=url, events=event, include_body=with_body, by=by, now=utcnow()
        )
        return hook.id, hook.secret  # type: ignore[return-value]

    number, secret = _run(add)
    typer.echo(f"webhook {number} posts {', '.join(sorted(set(event)))} to {url}")
    typer.echo(f"its signing secret (give it to the receiver; not shown again):\n  {secret}")


@webhooks_app.command("list")
def webhooks_list(as_json: JsonOption = False) -> None:
    """Each webhook with its deliveries (sent, pending, failed) and the last error."""
    rows = _run(webhooks.list_webhooks)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        state = "" if row["active"] else " (removed)"
        counts = ", ".join(f"{n} {status}" for status, n in sorted(row["deliveries"].items()))
        typer.echo(f"{row['id']:>3}  {row['url']}{state}  [{','.join(row['events'])}]")
        error = f"; last error: {row['last_error']}" if row["last_error"] else ""
        typer.echo(f"     {counts or 'nothing delivered yet'}{error}")


@webhooks_app.command("remove")
def webhooks_remove(webhook_id: Annotated[int, typer.Argument(help="Its number.")]) -> None:
    """Stop posting to a webhook (its deliveries are kept)."""
    _run(lambda s: webhooks.remove_webhook(s, webhook_id=webhook_id))
    typer.echo(f"webhook {webhook_id} removed")


def _run(action: Callable[[Session], Any]) -> Any:
    return in_session(action, refusals=(webhooks.WebhookError,))
