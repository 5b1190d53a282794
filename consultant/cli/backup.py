"""``consultant db backup`` and ``consultant db restore``, on the ``db`` group.

Like the schema commands they check the connection only, never ``ready()``: a backup is
what a person takes before ``db upgrade`` (an embedded database would be upgraded by
``ready()`` first), and a restore goes into a database with no tables, which ``ready()``
would fill with an empty schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from consultant.cli.db import db_app
from consultant.db import check_database, get_engine


@db_app.command("backup")
def db_backup(
    path: Annotated[Path, typer.Argument(help="The backup file to write.")],
    force: Annotated[bool, typer.Option("--force", help="Replace PATH if it exists.")] = False,
) -> None:
    """Write a backup of the database to PATH, consistent while the desk runs: SQLite's
    online backup, or pg_dump's custom format for PostgreSQL."""
    from consultant.backup import backup_database

    check_database()
    with _refusals_exit_1():
        report = backup_database(engine=get_engine(), path=path, force=force)
    typer.echo(report.describe())


@db_app.command("restore")
def db_restore(
    path: Annotated[Path, typer.Argument(help="A file written by consultant db backup.")],
) -> None:
    """Restore a backup into an empty database (no tables at all); a database that is not
    empty is refused and left as it is."""
    from consultant.backup import restore_database

    check_database()
    with _refusals_exit_1():
        report = restore_database(engine=get_engine(), path=path)
    typer.echo(report.describe())


@contextmanager
def _refusals_exit_1() -> Iterator[None]:
    from consultant.backup import BackupError

    try:
        yield
    except BackupError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
