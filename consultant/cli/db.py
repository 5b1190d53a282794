"""``consultant db``: the database's schema and its versions.

These commands talk to the database directly instead of through ``ready()``: they are
how a database that is not ready yet (empty, made before migrations, a revision behind)
becomes ready.
"""

from __future__ import annotations

from typing import Annotated

import typer

from consultant import migrate
from consultant.cli.support import JsonOption, print_json
from consultant.config import get_settings
from consultant.db import check_database, get_engine

db_app = typer.Typer(help="The database: schema versions, backups.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Revision to reach.")] = "head",
) -> None:
    """Apply the pending schema migrations (a database made before migrations is
    recognised and kept). Run it once, with the desk's other processes stopped."""
    check_database()
    typer.echo(migrate.upgrade(get_engine(), revision=revision).describe())


@db_app.command("init")
def db_init() -> None:
    """Create the schema in an empty database: the same as ``db upgrade``."""
    db_upgrade()


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Revision to go back to.")],
) -> None:
    """Take the schema back to an earlier revision, where that revision allows it."""
    check_database()
    reached = migrate.downgrade(get_engine(), revision=revision)
    typer.echo(f"database downgraded to revision {reached}")


@db_app.command("status")
def db_status(as_json: JsonOption = False) -> None:
    """The database's revision, the newest this desk knows, what is pending, and whether
    the live schema is what the models describe. Exits 1 unless all is current."""
    check_database()
    engine = get_engine()
    database = get_settings().database.split("@")[-1]
    status = migrate.schema_status(engine)
    differences = migrate.differences_from_models(engine) if status.up_to_date else []
    matches = status.up_to_date and not differences
    if as_json:
        print_json(
            {
                "database": database,
                **status.as_dict(),
                "matches_models": matches,
                "differences": differences,
            }
        )
    else:
        _print_status(database, status, differences)
    if not matches:
        raise typer.Exit(1)


def _print_status(database: str, status: migrate.SchemaStatus, differences: list[str]) -> None:
    unversioned = {
        "empty": "none (the database is empty)",
        "unversioned": "none (made before migrations)",
    }
    unknown = " (unknown to this desk: a newer release upgraded it)" if status.unknown else ""
    typer.echo(f"database: {database}")
    typer.echo(f"revision: {status.current or unversioned[status.state]}{unknown}")
    typer.echo(f"head:     {status.head}")
    typer.echo(f"pending:  {len(status.pending) or 'none'}")
    for revision in status.pending:
        typer.echo(f"  {revision}")
    if status.up_to_date:
        typer.echo(f"schema matches the models: {'no' if differences else 'yes'}")
        for difference in differences:
            typer.echo(f"  {difference}")
    elif not status.unknown:
        typer.echo(f"apply with: {migrate.UPGRADE_COMMAND}")


@db_app.command("sql")
def db_sql() -> None:
    """Print the SQL that creates the schema at the newest revision, for PostgreSQL
    (``schema.sql`` is this output)."""
    typer.echo(migrate.offline_sql(), nl=False)
