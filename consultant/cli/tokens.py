"""``consultant tokens``: personal access tokens for the JSON API (``/api/v1``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from sqlmodel import Session

from consultant import api_tokens
from consultant.cli.support import JsonOption, in_session, print_json
from consultant.coders import CoderError
from consultant.models import utcnow

tokens_app = typer.Typer(
    help="Tokens programs call the JSON API with, each acting as one coder.",
    no_args_is_help=True,
)


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help='What it is for, e.g. "billing system".')],
    coder: Annotated[str, typer.Option("--for", help="The coder it acts as.")],
    scope: Annotated[
        list[str],
        typer.Option("--scope", help=f"Repeat: {', '.join(api_tokens.SCOPES)}."),
    ],
    days: Annotated[int, typer.Option("--days", help="How long it works.")] = 90,
    by: Annotated[str, typer.Option("--by", help="Who creates it (for the record).")] = "admin",
) -> None:
    """Create a token and print it: it is shown this once, and only its hash is kept."""

    def create(session: Session) -> tuple[str, dict[str, Any]]:
        token, row = api_tokens.create_token(
            session, email=coder, name=name, scopes=scope, days=days, by=by, now=utcnow()
        )
        return token, api_tokens.describe(row, coder.strip().lower())

    token, row = _run(create)
    scopes, until = ", ".join(row["scopes"]), row["expires_at"][:10]
    typer.echo(f"token {row['id']} for {row['coder']} ({scopes}), valid until {until}")
    typer.echo(f"copy it now, it is not shown again:\n  {token}")


@tokens_app.command("list")
def tokens_list(as_json: JsonOption = False) -> None:
    """Every token: whom it acts as, its scopes, expiry, last use, revocation."""
    rows = _run(api_tokens.list_tokens)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        state = "revoked" if row["revoked_at"] else f"until {row['expires_at'][:10]}"
        used = (row["last_used_at"] or "never")[:16]
        typer.echo(
            f"{row['id']:>4}  {row['name']:<24} {row['coder']:<28} "
            f"{','.join(row['scopes']):<26} {state:<17} last used {used}"
        )


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: Annotated[int, typer.Argument(help="The token's number (tokens list).")],
    by: Annotated[str, typer.Option("--by", help="Who revokes it (for the record).")] = "admin",
) -> None:
    """Stop a token working, now."""
    _run(lambda s: api_tokens.revoke_token(s, token_id=token_id, by=by, now=utcnow()))
    typer.echo(f"token {token_id} revoked")


def _run(action: Callable[[Session], Any]) -> Any:
    return in_session(action, refusals=(api_tokens.TokenError, CoderError))
