"""Backups of the desk's database while the desk runs, and restoring one into an empty
database.

SQLite is copied with its online backup API: one step over a read transaction, so the
copy is the database as of one moment while the gateway, the poller and the workers go
on writing (WAL lets readers and writers pass each other). PostgreSQL is dumped by
``pg_dump --format=custom`` under a snapshot this module exports, in which it also counts
the tickets, so the count printed is the dump's own. A backup is written beside its final
name and renamed into place only when complete, so no half-written backup ever sits under
that name. It holds customers' cases: the file is readable by its owner only.

A restore goes into an empty database only (no tables at all): merging two desks' rows
would collide on every id and unique key. Everything that can refuse a restore (the
file's kind, its contents, a missing client, a database that is not empty) is checked
before anything is written.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import URL, Connection, Engine, create_engine, func, inspect, select, text
from sqlalchemy.pool import NullPool

from consultant.acknowledgements import human_size
from consultant.models import Ticket

SQLITE_MAGIC = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database
PG_DUMP_MAGIC = b"PGDMP"  # the first bytes of pg_dump's custom format
KINDS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
_TICKETS_IN_DUMP = re.compile(r"^\d+; \d+ \d+ TABLE \S+ tickets ", re.MULTILINE)


class BackupError(Exception):
    """A backup or restore that cannot be done, said for the person who asked; nothing
    under the backup's name and nothing in the database was changed."""


@dataclass(frozen=True)
class BackupReport:
    path: Path
    kind: str
    size: int
    tickets: int

    def describe(self) -> str:
        return (
            f"backup of the {self.kind} database written to {self.path} "
            f"({human_size(self.size)}, {self.tickets} tickets)"
        )


@dataclass(frozen=True)
class RestoreReport:
    path: Path
    kind: str
    tickets: int

    def describe(self) -> str:
        return (
            f"{self.path} restored into the {self.kind} database, "
            f"which now holds {self.tickets} tickets"
        )


# --- backup -------------------------------------------------------------------------


def backup_database(*, engine: Engine, path: Path, force: bool = False) -> BackupReport:
    """Write a backup of ``engine``'s database to ``path``, which must not exist unless
    ``force``; the report counts the tickets in the backup itself."""
    if path.exists() and not force:
        raise BackupError(f"{path} exists: nothing was written (--force replaces it)")
    if not path.parent.is_dir():
        raise BackupError(f"{path.parent} is not a directory: nothing was written")
    if not inspect(engine).has_table(Ticket.__tablename__):
        raise BackupError("the database has no tickets table (is it empty?): nothing to back up")
    with _written_in_place_of(path, replace=force) as partial:
        if engine.dialect.name == "sqlite":
            tickets = _backup_sqlite(engine, partial)
        else:
            tickets = _backup_postgresql(engine, partial)
        size = partial.stat().st_size
    return BackupReport(path=path, kind=KINDS[engine.dialect.name], size=size, tickets=tickets)


@contextmanager
def _written_in_place_of(path: Path, *, replace: bool) -> Iterator[Path]:
    """A new file beside ``path`` (same file system, owner-only), put under its name when
    the block ends normally and removed when it fails.

    Without ``replace`` the rename is a hard link, which fails rather than replace a
    file someone made at ``path`` while the backup was being written.
    """
    try:
        descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as exc:
        raise BackupError(f"cannot write in {path.parent}: {exc.strerror}") from None
    os.close(descriptor)
    partial = Path(name)
    try:
        yield partial
        _put_in_place(partial, path, replace=replace)
    finally:
        partial.unlink(missing_ok=True)


def _put_in_place(partial: Path, path: Path, *, replace: bool) -> None:
    try:
        if replace:
            partial.replace(path)
        else:
            os.link(partial, path)
    except FileExistsError:
        raise BackupError(f"{path} appeared while the backup was written: it is kept") from None
    except OSError as exc:
        raise BackupError(f"cannot write {path}: {exc.strerror}") from None


def _backup_sqlite(engine: Engine, partial: Path) -> int:
    # The driver's own connection: SQLAlchemy would open a BEGIN IMMEDIATE (the write
    # lock) around it, where the backup needs only a read. pages=-1 copies every page in
    # one step, so no write can land between two steps of the copy.
    source = engine.raw_connection()
    try:
        with closing(sqlite3.connect(partial)) as copy:
            source.driver_connection.backup(copy, pages=-1)  # type: ignore[union-attr]
            # The copied header says WAL; a backup is one self-contained file instead,
            # which also opens read-only (the desk switches WAL on again when it connects).
            copy.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.Error as exc:
        raise BackupError(f"cannot write the backup: {exc}") from None
    finally:
        source.close()
    copied = create_engine(f"sqlite:///{partial}", poolclass=NullPool)
    try:
        with copied.connect() as connection:
            return _tickets_in(connection)
    finally:
        copied.dispose()


def _backup_postgresql(engine: Engine, partial: Path) -> int:
    pg_dump = _client("pg_dump")
    target, env = libpq_connection(url=engine.url)
    with engine.connect() as connection:
        connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():  # held open: pg_dump reads under this transaction's snapshot
            snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            tickets = _tickets_in(connection)
            _run(
                [
                    pg_dump,
                    "--format=custom",
                    f"--snapshot={snapshot}",
                    f"--file={partial}",
                    f"--dbname={target}",
                ],
                env=env,
            )
    return tickets


# --- restore ------------------------------------------------------------------------


def restore_database(*, engine: Engine, path: Path) -> RestoreReport:
    """Restore the backup at ``path`` into ``engine``'s database, which must have no
    tables at all; the schema and its revision come from the backup."""
    kind = engine.dialect.name
    if kind == "sqlite":
        _check_sqlite_backup(path)
    else:
        _check_postgresql_backup(path)
    tables = _table_count(engine)
    if tables:
        raise BackupError(
            f"the database is not empty ({tables} tables): a backup is restored into an "
            "empty database only; nothing was changed"
        )
    if kind == "sqlite":
        _restore_sqlite(engine, path)
    else:
        _restore_postgresql(engine, path)
    with engine.connect() as connection:
        tickets = _tickets_in(connection)
    return RestoreReport(path=path, kind=KINDS[kind], tickets=tickets)


def _file_kind(path: Path) -> str | None:
    """Which database ``path`` is a backup of, by its first bytes; ``None``: neither."""
    try:
        with path.open("rb") as file:
            header = file.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror}") from None
    if header == SQLITE_MAGIC:
        return "sqlite"
    if header.startswith(PG_DUMP_MAGIC):
        return "postgresql"
    return None


def _check_kind(path: Path, expected: str) -> None:
    found = _file_kind(path)
    if found == expected:
        return
    what = f"a {KINDS[found]} backup" if found else "not a backup made by consultant db backup"
    raise BackupError(
        f"{path} is {what}; this desk's database is {KINDS[expected]}: nothing was changed"
    )


def _check_sqlite_backup(path: Path) -> None:
    _check_kind(path, "sqlite")
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as backup:
            [(check, *_)] = backup.execute("PRAGMA quick_check(1)").fetchall()
            holds_tickets = backup.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                (Ticket.__tablename__,),
            ).fetchone()
    except sqlite3.Error as exc:
        raise BackupError(f"{path} cannot be read as SQLite ({exc}): nothing was changed") from None
    if check != "ok":
        raise BackupError(f"{path} is damaged ({check}): nothing was changed")
    if not holds_tickets:
        raise BackupError(f"{path} is not a backup of the desk (no tickets): nothing was changed")


def _check_postgresql_backup(path: Path) -> None:
    _check_kind(path, "postgresql")
    listing = _run([_client("pg_restore"), "--list", str(path)], env={})
    if not _TICKETS_IN_DUMP.search(listing):
        raise BackupError(f"{path} is not a backup of the desk (no tickets): nothing was changed")


def _table_count(engine: Engine) -> int:
    """Tables in every schema of the database (SQLite: ``main``), the catalog's aside."""
    inspector = inspect(engine)
    schemas = [s for s in inspector.get_schema_names() if s != "information_schema"]
    return sum(len(inspector.get_table_names(schema=schema)) for schema in schemas)


def _restore_sqlite(engine: Engine, path: Path) -> None:
    target = engine.raw_connection()
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as backup:
            backup.backup(target.driver_connection, pages=-1)  # type: ignore[arg-type]
    except sqlite3.Error as exc:
        raise BackupError(f"cannot restore {path}: {exc}") from None
    finally:
        target.close()


def _restore_postgresql(engine: Engine, path: Path) -> None:
    # One transaction: a restore that fails leaves the database as empty as it was.
    # No owner: the tables belong to whoever the desk connects as, not the dump's roles.
    target, env = libpq_connection(url=engine.url)
    _run(
        [
            _client("pg_restore"),
            "--no-owner",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={target}",
            str(path),
        ],
        env=env,
    )


# --- shared -------------------------------------------------------------------------


def _tickets_in(connection: Connection) -> int:
    return connection.execute(select(func.count()).select_from(Ticket)).scalar_one()


def libpq_connection(*, url: URL) -> tuple[str, dict[str, str]]:
    """The connection URL the PostgreSQL client programs take for SQLAlchemy's ``url``
    (``postgresql+psycopg://…``), without its password, and the environment that
    carries the password (``PGPASSWORD``): a command line is visible to every user in
    ``ps``."""
    bare = URL.create(
        "postgresql",
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
        query=url.query,
    )
    env = {"PGPASSWORD": url.password} if url.password else {}
    return bare.render_as_string(hide_password=False), env


def _client(program: str) -> str:
    found = shutil.which(program)
    if found is None:
        raise BackupError(
            f"{program} not found: install the PostgreSQL client (Debian: postgresql-client) "
            "of the server's version or newer, or put it on PATH"
        )
    return found


def _run(command: list[str], *, env: dict[str, str]) -> str:
    """The client's standard output; its failure is the first line it wrote on stderr."""
    program = Path(command[0]).name
    done = subprocess.run(
        command,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        reason = lines[0].removeprefix(f"{program}: ") if lines else f"exit {done.returncode}"
        raise BackupError(f"{program} failed: {reason}")
    return done.stdout
