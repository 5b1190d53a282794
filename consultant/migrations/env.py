"""Alembic runs this file for every migration command.

``consultant db …`` hands it an open connection (``config.attributes["connection"]``);
the ``alembic`` command line, which developers use to write revisions, gets the desk's
configured database instead. Offline mode renders SQL for ``schema.sql``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text
from sqlmodel import SQLModel

from consultant import db, migrate

# An advisory lock id only migrations take, so two `consultant db upgrade` runs against
# one PostgreSQL database apply each revision once: the second waits, then finds nothing
# left to do.
MIGRATION_LOCK_ID = 7_405_120_001


def run_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=SQLModel.metadata,
        literal_binds=True,
        include_name=migrate.include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        include_name=migrate.include_name,
        compare_type=True,
        # SQLite alters most things only by copying the table: alembic's batch mode.
        render_as_batch=sqlite,
        # Alembic takes SQLite's DDL for non-transactional and would commit each revision
        # on its own; it is transactional, so a run that fails part-way changes nothing.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        if not sqlite:
            connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})"))
        context.run_migrations()
        if sqlite:
            migrate.check_sqlite_foreign_keys(connection)


if context.is_offline_mode():
    run_offline()
elif (given := context.config.attributes.get("connection")) is not None:
    run_online(given)
else:
    with migrate.migration_connection(db.get_engine()) as connection:
        run_online(connection)
