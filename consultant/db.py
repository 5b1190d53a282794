"""The database: one engine per process, sessions, bulk-write helpers.

SQLite (embedded) and PostgreSQL (production) are both first-class. SQLite runs in WAL
mode with a busy timeout so the gateway, the poller and a worker process can share the
file; foreign keys are switched on there as PostgreSQL always has them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.dml import Insert
from sqlmodel import Session

from consultant import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from consultant.config import ConfigError, get_settings

SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str) -> Engine:
    """An engine for ``url``; plain ``postgresql://`` URLs use psycopg 3.

    ``hide_parameters``: a database error's message would otherwise quote the statement's
    parameters, which are cases' bodies, into every log line and stored error it reaches.
    """
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        _make_sqlite_parent(url)
        engine = create_engine(
            url, hide_parameters=True, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        )
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "begin", _begin_immediate)
        return engine
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


def _make_sqlite_parent(url: str) -> None:
    path = url.split(":///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(dbapi_connection: Any, _record: object) -> None:
    # Take transaction control from the sqlite3 module so _begin_immediate can open them.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _begin_immediate(connection: Any) -> None:
    """Take SQLite's write lock when a transaction starts, not when it first writes.

    A deferred transaction that reads and then writes fails at once with SQLITE_BUSY when
    another process wrote in between (WAL snapshots cannot be upgraded); an immediate one
    waits its turn under the busy timeout instead.
    """
    connection.exec_driver_sql("BEGIN IMMEDIATE")


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    return make_engine(get_settings().database)


def reset_engine() -> None:
    """Forget the process's engine (tests point the desk at another database)."""
    if get_engine.cache_info().currsize:
        get_engine().dispose()
    get_engine.cache_clear()


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits when the block ends normally and rolls back otherwise."""
    with Session(get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def autocommit_connection() -> Iterator[Connection]:
    """A connection on which each statement commits on its own, for a run of one-statement
    writes such as the outbox marking every email sent the moment the relay took it.

    On PostgreSQL that saves two of a one-statement transaction's three round trips
    (psycopg sends BEGIN and COMMIT as commands of their own). SQLite keeps its usual
    transactions, which cost no round trip, so callers still ``commit()`` after each
    write: on PostgreSQL that is a no-op.
    """
    engine = get_engine()
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execution_options(isolation_level="AUTOCOMMIT")
        yield connection


def check_database() -> None:
    """Connect once, so a wrong URL stops start-up with a message naming the setting."""
    try:
        with get_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        reason = str(exc.orig if getattr(exc, "orig", None) else exc).splitlines()[0]
        raise ConfigError(f"CONSULTANT_DATABASE_URL: cannot connect ({reason})") from None
    except Exception as exc:  # a malformed URL fails before any connection is tried
        raise ConfigError(f"CONSULTANT_DATABASE_URL: {exc}") from None


def insert_ignoring_duplicates(session: Session, table: Any) -> Insert:
    """``INSERT … ON CONFLICT DO NOTHING`` for the session's database.

    Used where a unique key is the guard against doing a thing twice: the second insert
    quietly does nothing, and ``rowcount`` tells the caller which one it was.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing()


def insert_rows(session: Session, table: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert plain rows, all of one shape, in one ``executemany`` on the session's
    connection (psycopg sends it as one pipeline).

    For rows that nothing in the transaction reads back as objects, such as a batch's
    events and messages: building a SQLModel object costs tens of microseconds and the
    ORM's flush as much again, several times per email. Each row names every column it
    sets, including ``created_at``, which is a Python-side default.
    """
    if rows:
        session.connection().execute(insert(table), rows)


def ids_by_unique(session: Session, column: Any, values: Iterable[Any]) -> dict[Any, int]:
    """The ids of the rows whose unique ``column`` holds these values, by value.

    How a batch finds the ids of rows it has just inserted with :func:`insert_rows`: a
    multi-row ``INSERT … RETURNING`` would give them at once, but its statement has a
    placeholder per value, too many for psycopg's query cache, which then parsed it anew
    for every batch (7 % of processing, for the acknowledgements alone).
    """
    wanted = list(values)
    if not wanted:
        return {}
    query = select(column, column.table.c.id).where(column.in_(wanted))
    return {value: row_id for value, row_id in session.connection().execute(query)}


def storable(text: str) -> str:
    """Text as a person typed it, minus NUL characters, which PostgreSQL's text cannot
    hold (and no person means): for what a form or a query brings in."""
    return text.replace("\x00", "")
