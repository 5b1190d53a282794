"""What every ``consultant`` subcommand shares: start-up checks and ``--json`` output."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from consultant.config import Settings, get_settings
from consultant.db import check_database, get_engine, session_scope
from consultant.migrate import prepare_for_start
from consultant.models import utcnow

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


def set_desk_settings(values: dict[str, str], by: str) -> None:
    """Set desk settings (consultant/desk_settings.py) in one transaction and print
    each change; a refused value ends the command naming the setting."""
    from consultant.desk_settings import DeskSettingError, change

    if not values:
        fail("nothing to set (see --help)")
    ready()
    try:
        with session_scope() as session:
            changed = change(session, values=values, actor=by, now=utcnow())
    except DeskSettingError as exc:
        fail(f"{exc.name}: {exc}")
    for name, (before, after) in changed.items():
        typer.echo(f"{name}: {before or '(none)'} → {after or '(none)'}")


def unset_desk_settings(names: tuple[str, ...], by: str) -> None:
    """Give these desk settings back to the environment, printing each change."""
    from consultant.desk_settings import unset

    ready()
    with session_scope() as session:
        changed = unset(session, names=names, actor=by, now=utcnow())
    for name, (before, after) in changed.items():
        typer.echo(f"{name}: {before or '(none)'} → {after or '(none)'} (the environment's)")
