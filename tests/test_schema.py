"""schema.sql and the models describe the same PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

from consultant import db
from tests.conftest import REPO, Desk
from tests.servers.postgres import scratch_database, scratch_engine


def describe(engine: Engine) -> dict[str, Any]:
    """Everything the schema promises, in a form two databases can be compared by."""
    inspector = inspect(engine)
    tables: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
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
        with from_sql.begin() as connection:
            connection.exec_driver_sql((REPO / "schema.sql").read_text())
        SQLModel.metadata.create_all(from_models)

        expected, actual = describe(from_models), describe(from_sql)

    assert expected.keys() == actual.keys()
    for table in expected:
        assert actual[table] == expected[table], f"schema.sql differs from the models in {table}"


def test_db_init_creates_the_schema_and_can_run_again(desk: Desk, tmp_path: Path) -> None:
    with empty_database_like(desk.env["CONSULTANT_DATABASE_URL"], tmp_path) as url:
        desk.env["CONSULTANT_DATABASE_URL"] = url
        for _ in range(2):
            result = desk.consultant("db", "init")
            assert result.returncode == 0, result.stderr
        engine = db.make_engine(url)
        tables = set(inspect(engine).get_table_names())
        engine.dispose()
    assert tables == set(SQLModel.metadata.tables)


def test_db_init_adds_a_table_the_database_lacks(desk: Desk, tmp_path: Path) -> None:
    """A database made by an older desk, one table short, gets it at the next start."""
    with empty_database_like(desk.env["CONSULTANT_DATABASE_URL"], tmp_path) as url:
        desk.env["CONSULTANT_DATABASE_URL"] = url
        assert desk.consultant("db", "init").returncode == 0
        engine = db.make_engine(url)
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE events")

        result = desk.consultant("db", "init")

        tables = set(inspect(engine).get_table_names())
        engine.dispose()
    assert result.returncode == 0, result.stderr
    assert "events" in tables


@contextmanager
def empty_database_like(url: str, tmp_path: Path) -> Iterator[str]:
    """A new, empty database of the same kind as ``url``."""
    if url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    with scratch_database("cc_schema") as url:
        yield url
