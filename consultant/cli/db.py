"""``consultant db``: the database's schema."""

from __future__ import annotations

import typer

from consultant.cli.support import ready

db_app = typer.Typer(help="The database: schema, backups.", no_args_is_help=True)


@db_app.command("init")
def db_init() -> None:
    """Create every table that does not exist yet (safe to run again)."""
    settings = ready()
    typer.echo(f"database ready: {settings.database.split('@')[-1]}")
