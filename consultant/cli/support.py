"""What every ``consultant`` subcommand shares: start-up checks and ``--json`` output."""

from __future__ import annotations

import json
from typing import Annotated, Any, NoReturn

import typer

from consultant.config import Settings, get_settings
from consultant.db import check_database, get_engine
from consultant.migrate import prepare_for_start

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
