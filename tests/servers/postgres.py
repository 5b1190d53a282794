"""Throw-away PostgreSQL databases on the machine's server, for tests and benchmarks."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, text

# The machine's server, reached over its Unix socket as the current user
# (scripts/test-services makes sure that role exists).
POSTGRES_ADMIN_URL = os.environ.get(
    "CONSULTANT_TEST_POSTGRES_URL", "postgresql+psycopg:///postgres?host=/var/run/postgresql"
)


@contextmanager
def scratch_database(prefix: str = "cc_scratch", *, durable: bool = True) -> Iterator[str]:
    """The URL of a new, empty database, dropped (connections and all) afterwards.

    ``durable=False`` for tests: commits do not wait for the disk (what a crash would
    lose is the test's to redo; every transaction still commits as usual). Benchmarks
    keep the default, so their figures are a real server's."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{secrets.token_hex(4)}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
        if not durable:
            connection.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def scratch_engine(prefix: str = "cc_scratch") -> Iterator[Engine]:
    """An engine on a new, empty database, disposed of before the database is dropped."""
    with scratch_database(prefix) as url:
        engine = create_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()
