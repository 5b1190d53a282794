"""schema.sql, the migrations and the models describe the same database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

from consultant import db, migrate
from tests.conftest import REPO, Desk, empty_database_like
from tests.servers.postgres import scratch_engine


def describe(engine: Engine) -> dict[str, Any]:
    """Everything the schema promises, in a form two databases can be compared by."""
    inspector = inspect(engine)
    tables: dict[str, Any] = {}
    for table in sorted(set(inspector.get_table_names()) - {migrate.VERSION_TABLE}):
        tables[table] = {
            "columns": {
                c["name"]: (str(c["type"].compile(engine.dialect)), c["nullable"])
                for c in inspector.get_columns(table)
            },
            "primary_key": tuple(inspector.get_pk_constraint(table)["constrained_columns"]),
            "unique": sorted(
                tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
            ),
            "foreign_keys": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                for f in inspector.get_foreign_keys(table)
            ),
        }
    return tables


def test_schema_sql_matches_the_models() -> None:
    with scratch_engine("cc_schema") as from_sql, scratch_engine("cc_schema") as from_models:
        with from_sql.connect() as connection:  # the file opens and commits its transaction
            connection.exec_driver_sql((REPO / "schema.sql").read_text())
        SQLModel.metadata.create_all(from_models)

        expected, actual = describe(from_models), describe(from_sql)

    assert expected.keys() == actual.keys()
    for table in expected:
        assert actual[table] == expected[table], f"schema.sql differs from the models in {table}"


def test_schema_sql_is_the_migrations_rendered_as_sql() -> None:
    """schema.sql is generated (`make schema.sql`): a revision that forgets it fails here."""
    rendered = subprocess.run(
        [sys.executable, "-m", "consultant", "db", "sql"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    assert (REPO / "schema.sql").read_text() == rendered


def test_db_init_creates_the_schema_and_can_run_again(desk: Desk, tmp_path: Path) -> None:
    with empty_database_like(desk.env["CONSULTANT_DATABASE_URL"], tmp_path) as url:
        desk.env["CONSULTANT_DATABASE_URL"] = url
        first, second = desk.consultant("db", "init"), desk.consultant("db", "init")
        engine = db.make_engine(url)
        tables = set(inspect(engine).get_table_names())
        engine.dispose()
    assert first.returncode == 0, first.stderr
    assert "database upgraded from an empty database" in first.stdout
    assert second.returncode == 0, second.stderr
    assert "database schema is current" in second.stdout
    # SQLite's full-text tables (FTS5, which the models cannot declare) aside.
    owned = {table for table in tables if migrate.include_name(table, "table", {})}
    assert owned == set(SQLModel.metadata.tables) | {migrate.VERSION_TABLE}
