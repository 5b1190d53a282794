"""The schema's versions: Alembic revisions in consultant/migrations/, applied in place.

Every change to the tables is a revision of its own, and a released revision is never
edited. ``consultant db upgrade`` applies what is pending, in one transaction (SQLite
and PostgreSQL both have transactional DDL), so a failed upgrade leaves the schema as
it was.

A database made before the desk had migrations (its tables, but no ``alembic_version``)
is recognised when its tables and columns are exactly the baseline's, stamped at the
baseline and upgraded from there; any other unversioned schema is refused and left
untouched, since guessing what it is could drop a column someone needs.

Who upgrades: the embedded SQLite database belongs to one desk, which upgrades it as it
starts. A PostgreSQL database is shared by the poller, the gateway, the workers and the
web processes; each of them refuses to start on a pending revision and names the one
command that applies it, so processes never race to migrate.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, inspect
from sqlmodel import SQLModel

from consultant import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from consultant.codes.search import FTS_TABLE
from consultant.search import FTS_TABLES as CASE_FTS_TABLES

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001"  # the schema as the desk made it before it had migrations
VERSION_TABLE = "alembic_version"
UPGRADE_COMMAND = "consultant db upgrade"
SQL_HEADER = """\
-- CaseConsultant schema for PostgreSQL, at the newest revision.
--
-- Generated from the migrations by `consultant db sql` (make schema.sql); do not edit.
-- The desk makes and upgrades its schema itself (`consultant db upgrade`); this file is
-- for reading, and for applying by hand where a DBA must. Times are UTC (TIMESTAMPTZ).

"""


class MigrationError(Exception):
    """The schema cannot be brought to this version's; nothing was changed."""


class UnknownSchemaError(MigrationError):
    """The database holds tables this desk did not make: it is not touched."""


class PendingMigrationsError(MigrationError):
    """A shared database needs revisions applied before the desk may use it."""


@dataclass(frozen=True)
class Revision:
    id: str
    message: str

    def __str__(self) -> str:
        return f"{self.id} ({self.message})"


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database stands against this version of the desk.

    ``state`` is ``empty`` (no tables), ``unversioned`` (tables, no migration history)
    or ``versioned``. ``unknown`` is set when the database is at a revision this
    version has never heard of: a newer release upgraded it.
    """

    state: str
    current: str | None
    head: str
    pending: tuple[Revision, ...]
    unknown: bool = False

    @property
    def up_to_date(self) -> bool:
        return self.state == "versioned" and not self.pending and not self.unknown

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "current": self.current,
            "head": self.head,
            "pending": [{"revision": r.id, "message": r.message} for r in self.pending],
            "unknown_revision": self.unknown,
            "up_to_date": self.up_to_date,
        }


@dataclass(frozen=True)
class Upgrade:
    """What an upgrade did, for the one line a person reads."""

    before: str | None
    after: str
    applied: tuple[Revision, ...]
    stamped: bool  # an unversioned baseline database was recognised

    def describe(self) -> str:
        if not self.applied and not self.stamped:
            return f"database schema is current (revision {self.after})"
        start = "an empty database" if self.before is None else f"revision {self.before}"
        if self.stamped:
            start = f"the schema of release 0.1 (recognised, stamped {BASELINE})"
        steps = ", ".join(r.id for r in self.applied) or "nothing to apply"
        return f"database upgraded from {start} to revision {self.after}: {steps}"


def include_name(name: str | None, type_: str, _parents: dict[str, str | None]) -> bool:
    """Which database objects the revisions own. SQLite's full-text index of the code
    catalog (an FTS5 table and its shadow tables) is made by the code loader itself,
    because it is SQLite's alone; PostgreSQL searches a column the models declare.
    SQLite's case search tables (revision 0006) are FTS5 tables too, which the models
    cannot declare."""
    return not (
        type_ == "table" and name is not None and name.startswith((FTS_TABLE, *CASE_FTS_TABLES))
    )


# --- reading where a database stands ----------------------------------------------


def schema_status(engine: Engine, *, script_location: Path = MIGRATIONS) -> SchemaStatus:
    with engine.connect() as connection:
        return _status(connection, _scripts(script_location))


def _status(connection: Connection, scripts: ScriptDirectory) -> SchemaStatus:
    head = _single_head(scripts)
    tables = _managed_tables(connection)
    if not tables:
        return SchemaStatus("empty", None, head, _revisions_between(scripts, None, head))
    if VERSION_TABLE not in tables:
        pending = _revisions_between(scripts, BASELINE, head)
        return SchemaStatus("unversioned", None, head, pending)
    current = _current_revision(connection)
    if current is not None and not _known(scripts, current):
        return SchemaStatus("versioned", current, head, (), unknown=True)
    return SchemaStatus("versioned", current, head, _revisions_between(scripts, current, head))


def differences_from_models(engine: Engine) -> list[str]:
    """How the live schema differs from the models, as alembic's autogenerate sees it:
    empty when a database at head is exactly what the models describe."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": include_name}
        )
        return [_describe_difference(d) for d in compare_metadata(context, SQLModel.metadata)]


def _describe_difference(diff: Any) -> str:
    if isinstance(diff, list):  # a column changed in several ways: one line for each
        return "; ".join(_describe_difference(part) for part in diff)
    operation, *subjects = diff
    names = [_object_name(subject) for subject in subjects if _object_name(subject)]
    return f"{operation} {'.'.join(names)}"


def _object_name(subject: Any) -> str:
    if isinstance(subject, str):
        return subject
    return str(getattr(subject, "name", "") or "")


# --- changing the schema ----------------------------------------------------------


def upgrade(
    engine: Engine, *, revision: str = "head", script_location: Path = MIGRATIONS
) -> Upgrade:
    """Bring the database to ``revision``; an unversioned baseline schema is stamped first.

    Refuses (:class:`UnknownSchemaError`) an unversioned schema that is not the
    baseline's, and a database at a revision this version does not know.
    """
    scripts = _scripts(script_location)
    with migration_connection(engine) as connection:
        status = _status(connection, scripts)
        if status.unknown:
            raise UnknownSchemaError(_newer_release_message(status))
        stamped = status.state == "unversioned"
        if stamped:
            _refuse_unless_baseline(connection)
        target = _resolve(scripts, revision)
        if status.current == target:
            return Upgrade(before=target, after=target, applied=(), stamped=False)
        applied = _revisions_between(scripts, BASELINE if stamped else status.current, target)
        connection.rollback()  # end the reads: each alembic command commits its own work
        if stamped:
            command.stamp(_config(connection, script_location), BASELINE)
        _run(command.upgrade, _config(connection, script_location), target)
        return Upgrade(before=status.current, after=target, applied=applied, stamped=stamped)


def downgrade(engine: Engine, *, revision: str, script_location: Path = MIGRATIONS) -> str:
    """Take the database back to ``revision`` (an id, or ``-1`` for one step); the
    revision it is at afterwards.

    Only revisions whose downgrade can keep the data go back; the baseline does not
    (it would drop every table: restore a backup instead).
    """
    scripts = _scripts(script_location)
    with migration_connection(engine) as connection:
        status = _status(connection, scripts)
        if status.state != "versioned" or status.unknown:
            raise MigrationError(f"nothing to downgrade: the database is {status.state}")
        connection.rollback()
        _run(command.downgrade, _config(connection, script_location), revision)
        return _current_revision(connection) or "base"


def prepare_for_start(engine: Engine) -> str | None:
    """What every command does before touching the database.

    SQLite: apply whatever is pending and return the line saying so. PostgreSQL: refuse
    (:class:`PendingMigrationsError`) until ``consultant db upgrade`` has run. ``None``
    when the schema was current already, which is nearly always.
    """
    status = schema_status(engine)
    if status.up_to_date:
        return None
    if status.unknown:
        raise UnknownSchemaError(_newer_release_message(status))
    if engine.dialect.name == "sqlite":
        return upgrade(engine).describe()
    if status.state == "empty":
        raise PendingMigrationsError(
            f"the database is empty; create the schema with: {UPGRADE_COMMAND}"
        )
    if status.state == "unversioned":
        with engine.connect() as connection:
            _refuse_unless_baseline(connection)
        raise PendingMigrationsError(
            "the database was made before the desk had migrations; have it recognised "
            f"(nothing is dropped) with: {UPGRADE_COMMAND}"
        )
    names = ", ".join(str(r) for r in status.pending)
    raise PendingMigrationsError(
        f"the database needs {len(status.pending)} migration(s) first ({names}); "
        f"run once, with the other processes of the desk stopped: {UPGRADE_COMMAND}"
    )


def offline_sql(*, dialect: str = "postgresql") -> str:
    """The SQL that creates the schema at head, as alembic renders it without a
    database: what ``schema.sql`` holds, for reading and for DBAs who apply SQL by hand."""
    output = io.StringIO()
    config = Config(output_buffer=output)
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", f"{dialect}://")
    command.upgrade(config, "head", sql=True)
    return SQL_HEADER + output.getvalue()


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection to change the schema on.

    On SQLite, foreign keys are off while it is held: batch mode alters a table by
    copying it and dropping the original, which with foreign keys on would delete (or
    refuse to delete) every row that refers to it. The revisions' result is checked with
    ``PRAGMA foreign_key_check`` before their transaction commits.
    """
    with engine.connect() as connection:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:  # a pragma that is a no-op inside a transaction: before alembic's begins
            connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        try:
            yield connection
        finally:
            if sqlite:
                connection.rollback()
                connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]


def check_sqlite_foreign_keys(connection: Connection) -> None:
    """Fail the migration's transaction if it left a row pointing at nothing."""
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        tables = sorted({row[0] for row in broken})
        raise MigrationError(f"migration left {len(broken)} broken references in {tables}")


# --- the baseline -----------------------------------------------------------------


def _refuse_unless_baseline(connection: Connection) -> None:
    expected, actual = _baseline_shape(), _shape(connection)
    problems = [f"table {t} is not the desk's" for t in sorted(actual.keys() - expected.keys())]
    missing = sorted(expected.keys() - actual.keys())
    if len(missing) > 3:
        problems.append(f"{len(missing)} of the desk's {len(expected)} tables are missing")
    else:
        problems += [f"table {t} is missing" for t in missing]
    for table in sorted(expected.keys() & actual.keys()):
        problems += [f"{table}.{c} is missing" for c in sorted(expected[table] - actual[table])]
        problems += [f"{table}.{c} is unknown" for c in sorted(actual[table] - expected[table])]
    if problems:
        raise UnknownSchemaError(
            "the database has tables but no migration history, and they are not the "
            f"schema the desk made before migrations ({'; '.join(problems[:8])}"
            f"{'; …' if len(problems) > 8 else ''}). Nothing was changed. Point "
            "CONSULTANT_DATABASE_URL at the desk's database, or at an empty one."
        )


@lru_cache(maxsize=1)
def _baseline_shape() -> dict[str, frozenset[str]]:
    """Tables and their columns at the baseline, read from the baseline revision itself
    applied to a throw-away in-memory database, so there is no second copy to drift."""
    engine = create_engine("sqlite://")
    try:
        with engine.connect() as connection:
            command.upgrade(_config(connection, MIGRATIONS), BASELINE)
            shape = _shape(connection)
    finally:
        engine.dispose()
    shape.pop(VERSION_TABLE, None)
    return shape


def _shape(connection: Connection) -> dict[str, frozenset[str]]:
    inspector = inspect(connection)
    return {
        table: frozenset(column["name"] for column in inspector.get_columns(table))
        for table in _managed_tables(connection)
        if table != VERSION_TABLE
    }


def _managed_tables(connection: Connection) -> set[str]:
    return {t for t in inspect(connection).get_table_names() if include_name(t, "table", {})}


# --- alembic's plumbing -----------------------------------------------------------


def _config(connection: Connection, script_location: Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=4)
def _scripts(script_location: Path) -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    return ScriptDirectory.from_config(config)


def _single_head(scripts: ScriptDirectory) -> str:
    heads = scripts.get_heads()
    if len(heads) != 1:  # two revisions written in parallel: merge them before release
        raise MigrationError(f"the migrations have {len(heads)} heads {heads}; merge them")
    return heads[0]


def _current_revision(connection: Connection) -> str | None:
    heads = MigrationContext.configure(connection).get_current_heads()
    return heads[0] if heads else None


def _known(scripts: ScriptDirectory, revision: str) -> bool:
    try:
        return scripts.get_revision(revision) is not None
    except CommandError:
        return False


def _resolve(scripts: ScriptDirectory, revision: str) -> str:
    """A revision id from what a person typed (``head``, ``base``, ``0002``, a prefix)."""
    if revision == "head":
        return _single_head(scripts)
    if revision == "base":
        return revision
    try:
        found = scripts.get_revision(revision)
    except CommandError as exc:
        raise MigrationError(f"no revision {revision!r}: {exc}") from None
    if found is None:
        raise MigrationError(f"no revision {revision!r}")
    return found.revision


def _revisions_between(
    scripts: ScriptDirectory, lower: str | None, upper: str
) -> tuple[Revision, ...]:
    """The revisions after ``lower`` up to ``upper``, oldest first."""
    found = scripts.iterate_revisions(upper, lower or "base")
    return tuple(Revision(r.revision, r.doc or "") for r in reversed(list(found)))


def _run(step: Any, config: Config, target: str) -> None:
    try:
        step(config, target)
    except NotImplementedError as exc:  # a revision that cannot go back says why
        raise MigrationError(str(exc)) from None
    except CommandError as exc:
        raise MigrationError(str(exc)) from None


def _newer_release_message(status: SchemaStatus) -> str:
    return (
        f"the database is at revision {status.current}, which this version of the desk "
        f"does not know (its newest is {status.head}): a newer release upgraded it. Run "
        "that release, or restore a backup made before the upgrade. Nothing was changed."
    )
