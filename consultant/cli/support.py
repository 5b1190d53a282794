"""What every ``consultant`` subcommand shares: start-up checks and ``--json`` output."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from consultant.config import Settings, get_settings
from consultant.db import check_database, get_engine, session_scope
from consultant.migrate import prepare_for_start

T = TypeVar("T")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def ready() -> Settings:
    """Settings checked, database reachable, schema current: what every command needs.

    An embedded SQLite database is upgraded here, with one line on stderr saying so
    (stdout stays clean for ``--json``); a PostgreSQL database with pending migrations
    stops the command with the one to run (:class:`consultant.migrate.MigrationError`).
    """
    settings = get_settings()
    check_database()
    upgraded = prepare_for_start(get_engine())
    if upgraded:
        typer.echo(upgraded, err=True)
    return settings


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


def fail(message: str) -> NoReturn:
    """A refusal the person can act on: one line on stderr, exit status 1."""
    typer.echo(message, err=True)
    raise typer.Exit(1)


def in_session(action: Callable[[Any], T], *, refusals: tuple[type[Exception], ...]) -> T:
    """Run ``action`` in one transaction once the desk is ready; a refusal (one of
    ``refusals``, whose message is meant for the person) ends the command with it."""
    ready()
    try:
        with session_scope() as session:
            return action(session)
    except refusals as exc:
        fail(str(exc))
