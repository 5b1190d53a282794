"""Schema migrations: a release-0.1 database upgraded in place, refusals, round trips.

Every test runs on SQLite and on PostgreSQL. A "release-0.1 database" is made from the
frozen DDL that release wrote (tests/data/release-0.1/), never from today's models, so
these tests keep meaning the same thing as the models move on.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, inspect, select, text

from consultant import config, db, migrate
from consultant.worker import drain
from tests.cases import case_email, store
from tests.conftest import Desk, empty_database_like, read_email

RELEASE_01 = Path(__file__).parent / "data" / "release-0.1"


@contextmanager
def engine_for(url: str) -> Iterator[Engine]:
    engine = db.make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def make_release_01_database(url: str) -> None:
    """The tables exactly as release 0.1 created them, with no migration history."""
    with engine_for(url) as engine:
        ddl = (RELEASE_01 / f"{engine.dialect.name}.sql").read_text()
        with engine.connect() as connection:
            raw = connection.connection.dbapi_connection
            if engine.dialect.name == "sqlite":
                assert isinstance(raw, sqlite3.Connection)
                raw.executescript(ddl)
            else:
                connection.exec_driver_sql(ddl)
                connection.commit()


def fill_with_a_working_desk(desk: Desk) -> None:
    """Real rows in the desk's database: accounts and plans, tickets with messages,
    attachments and codes looked up, the quota ledger, events and sent outbox mail."""
    store(read_email("case-home-infusion.eml"))
    store(read_email("case-with-pdf-attachment.eml"))
    store(case_email("billing@ortho.example", subject="20610 with 99213-25?"))
    report = drain()
    assert (report.processed, report.sent) == (3, 3)


def copy_rows(source_url: str, target_url: str) -> dict[str, int]:
    """Copy every row of the source into the target, in the target's own columns (its
    schema may be older), keeping ids; the rows copied, by table."""
    copied: dict[str, int] = {}
    with engine_for(source_url) as source, engine_for(target_url) as target:
        tables = MetaData()
        tables.reflect(target)
        with source.connect() as reading, target.begin() as writing:
            for table in tables.sorted_tables:
                if table.name == migrate.VERSION_TABLE:
                    continue
                rows = [dict(r._mapping) for r in reading.execute(select(*table.columns))]
                if rows:
                    writing.execute(table.insert(), rows)
                copied[table.name] = len(rows)
                if target.dialect.name == "postgresql" and rows:  # as if the rows were made here
                    writing.execute(
                        text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), :n)"),
                        {"n": max(row["id"] for row in rows)},
                    )
    return copied


def row_counts(url: str) -> dict[str, int]:
    with engine_for(url) as engine, engine.connect() as connection:
        names = sorted(migrate._managed_tables(connection) - {migrate.VERSION_TABLE})
        return {
            name: connection.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
            for name in names
        }


def table_names(url: str) -> set[str]:
    with engine_for(url) as engine:
        return set(inspect(engine).get_table_names())


def at(desk: Desk, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The ``consultant`` command against another database than the desk's own."""
    desk.env["CONSULTANT_DATABASE_URL"], before = url, desk.env["CONSULTANT_DATABASE_URL"]
    try:
        return desk.consultant(*args)
    finally:
        desk.env["CONSULTANT_DATABASE_URL"] = before


def status_of(desk: Desk, url: str) -> dict[str, Any]:
    result = at(desk, url, "db", "status", "--json")
    return json.loads(result.stdout)


@pytest.fixture
def own_desk(desk: Desk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    """The desk on a database of the test's own, at head: for tests that change its
    schema or its revision, which the session's shared database must not keep."""
    with empty_database_like(desk.env["CONSULTANT_DATABASE_URL"], tmp_path) as url:
        with engine_for(url) as engine:
            migrate.upgrade(engine)
        desk.env["CONSULTANT_DATABASE_URL"] = url
        monkeypatch.setenv("CONSULTANT_DATABASE_URL", url)
        config.get_settings.cache_clear()
        db.reset_engine()
        yield desk
        db.reset_engine()


# --- the models and the migrations agree -------------------------------------------


def test_a_database_at_head_is_exactly_what_the_models_describe(desk: Desk) -> None:
    """alembic's autogenerate finds nothing to write: no model change lacks a revision."""
    url = desk.env["CONSULTANT_DATABASE_URL"]
    with engine_for(url) as engine:
        assert migrate.differences_from_models(engine) == []

    result = desk.consultant("db", "status")

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"revision: {migrate.schema_status(db.make_engine(url)).head}" in result.stdout
    assert "pending:  none" in result.stdout
    assert "schema matches the models: yes" in result.stdout


def test_a_schema_change_without_its_revision_shows_in_db_status(own_desk: Desk) -> None:
    desk = own_desk
    with engine_for(desk.env["CONSULTANT_DATABASE_URL"]) as engine, engine.begin() as connection:
        connection.exec_driver_sql("CREATE INDEX ix_by_hand ON tickets (subject)")

    result = desk.consultant("db", "status", "--json")

    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["up_to_date"] and not report["matches_models"]
    assert report["differences"] == ["remove_index ix_by_hand"]


# --- a database made by release 0.1 ------------------------------------------------


def without_sla(row: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in row.items() if not key.startswith("sla")}


def test_a_release_01_database_with_data_is_upgraded_in_place_and_keeps_every_row(
    desk: Desk, tmp_path: Path
) -> None:
    fill_with_a_working_desk(desk)
    with empty_database_like(desk.env["CONSULTANT_DATABASE_URL"], tmp_path) as old:
        make_release_01_database(old)
        copied = copy_rows(desk.env["CONSULTANT_DATABASE_URL"], old)
        assert all(copied[t] for t in ("accounts", "tickets", "messages", "attachments"))
        assert all(copied[t] for t in ("code_lookups", "quota_entries", "outbox", "events"))
        before = status_of(desk, old)

        upgraded = at(desk, old, "db", "upgrade")

        assert (before["state"], before["up_to_date"]) == ("unversioned", False)
        assert upgraded.returncode == 0, upgraded.stderr
        assert "recognised" in upgraded.stdout
        assert {k: v for k, v in row_counts(old).items() if k in copied} == copied
        after = status_of(desk, old)
        assert (after["up_to_date"], after["matches_models"]) == (True, True)
        listed = json.loads(at(desk, old, "tickets", "list", "--json").stdout)
        current = json.loads(desk.consultant("tickets", "list", "--json").stdout)
        assert [without_sla(row) for row in listed] == [without_sla(row) for row in current]
        assert len(listed) == 3 and {row["sla"] for row in listed} == {None}  # no clocks yet
        # The first sweep gives the cases of release 0.1 the clocks they would have had.
        assert at(desk, old, "run", "--once").returncode == 0
        clocked = json.loads(at(desk, old, "tickets", "list", "--json").stdout)
        assert [row["sla"] for row in clocked] == [row["sla"] for row in current]
        with engine_for(old) as engine, engine.connect() as connection:
            raws = connection.execute(text("SELECT raw FROM inbound_emails ORDER BY id"))
            assert bytes(next(iter(raws))[0]) == read_email("case-home-infusion.eml")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_embedded_desk_upgrades_its_release_01_database_as_it_starts(
    desk: Desk, tmp_path: Path
) -> None:
    old = f"sqlite:///{tmp_path / 'release-01.db'}"
    make_release_01_database(old)

    first = at(desk, old, "tickets", "list")
    second = at(desk, old, "tickets", "list")

    assert first.returncode == 0, first.stderr
    [line] = first.stderr.strip().splitlines()
    assert line.startswith("database upgraded from the schema of release 0.1 (recognised")
    assert "upgraded" not in second.stderr


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_on_postgresql_every_command_but_db_upgrade_waits_for_the_migration(
    desk: Desk, tmp_path: Path
) -> None:
    with empty_database_like(desk.env["CONSULTANT_DATABASE_URL"], tmp_path) as empty:
        for command in (("run", "--once"), ("tickets", "list"), ("status",)):
            refused = at(desk, empty, *command)
            assert refused.returncode == 3, (command, refused.stderr)
            assert "consultant db upgrade" in refused.stderr
        assert table_names(empty) == set()

        assert at(desk, empty, "db", "init").returncode == 0
        assert at(desk, empty, "tickets", "list").returncode == 0


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_upgrades_at_once_on_postgresql_apply_each_revision_once(
    desk: Desk, tmp_path: Path
) -> None:
    with empty_database_like(desk.env["CONSULTANT_DATABASE_URL"], tmp_path) as empty:
        env = {**desk.env, "CONSULTANT_DATABASE_URL": empty}
        command = [sys.executable, "-m", "consultant", "db", "upgrade"]
        runs = [
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(2)
        ]
        results = [(run.wait(timeout=120), run.stderr.read()) for run in runs if run.stderr]

        assert [code for code, _ in results] == [0, 0], results
        assert status_of(desk, empty)["up_to_date"] is True


# --- refusals ------------------------------------------------------------------------


def test_a_database_of_something_else_is_refused_and_left_untouched(
    desk: Desk, tmp_path: Path
) -> None:
    with empty_database_like(desk.env["CONSULTANT_DATABASE_URL"], tmp_path) as other:
        with engine_for(other) as engine, engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total TEXT)")
            connection.exec_driver_sql("INSERT INTO invoices VALUES (1, '12.50')")

        for command in (("db", "upgrade"), ("tickets", "list")):
            refused = at(desk, other, *command)
            assert refused.returncode == 3, refused.stderr
            assert "not the schema the desk made" in refused.stderr
            assert "table invoices is not the desk's" in refused.stderr
            assert "Nothing was changed" in refused.stderr

        assert table_names(other) == {"invoices"}


def test_a_release_01_database_missing_a_column_is_refused(desk: Desk, tmp_path: Path) -> None:
    with empty_database_like(desk.env["CONSULTANT_DATABASE_URL"], tmp_path) as damaged:
        make_release_01_database(damaged)
        with engine_for(damaged) as engine, engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE tickets DROP COLUMN due_at")
        before = table_names(damaged)

        refused = at(desk, damaged, "db", "upgrade")

        assert refused.returncode == 3
        assert "tickets.due_at is missing" in refused.stderr
        assert table_names(damaged) == before


def test_a_database_upgraded_by_a_newer_release_is_refused(own_desk: Desk) -> None:
    desk = own_desk
    url = desk.env["CONSULTANT_DATABASE_URL"]
    with engine_for(url) as engine, engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")

    status = desk.consultant("db", "status")
    started = desk.consultant("tickets", "list")

    assert status.returncode == 1
    assert "revision: 9999 (unknown to this desk: a newer release upgraded it)" in status.stdout
    assert started.returncode == 3
    assert "a newer release upgraded it" in started.stderr


def test_the_baseline_cannot_be_downgraded(desk: Desk) -> None:
    refused = desk.consultant("db", "downgrade", "base")

    assert refused.returncode == 3
    assert "Restore a backup instead" in refused.stderr
    assert status_of(desk, desk.env["CONSULTANT_DATABASE_URL"])["up_to_date"] is True


# --- a later revision goes up, down and up again with the data -----------------------

PRIORITY_REVISION = '''"""Tickets get a priority."""

import sqlalchemy as sa
from alembic import op

revision = "9001"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="3"))
        batch.create_index("ix_tickets_priority", ["priority"])


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_index("ix_tickets_priority")
        batch.drop_column("priority")
'''


@pytest.fixture
def with_a_later_revision(tmp_path: Path) -> Path:
    """The desk's migrations plus one revision that alters ``tickets``, a table many
    others refer to: on SQLite batch mode copies it, the hard case for foreign keys."""
    location = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS, location, ignore=shutil.ignore_patterns("__pycache__"))
    head = migrate._single_head(migrate._scripts(migrate.MIGRATIONS))
    (location / "versions" / "9001_ticket_priority.py").write_text(
        PRIORITY_REVISION.format(head=head)
    )
    return location


def test_a_revision_goes_up_down_and_up_again_keeping_every_row(
    own_desk: Desk, with_a_later_revision: Path
) -> None:
    desk = own_desk
    fill_with_a_working_desk(desk)
    url = desk.env["CONSULTANT_DATABASE_URL"]
    counts = row_counts(url)

    def ticket_columns() -> set[str]:
        return {c["name"] for c in inspect(db.make_engine(url)).get_columns("tickets")}

    with engine_for(url) as engine:
        up = migrate.upgrade(engine, script_location=with_a_later_revision)
        assert [r.id for r in up.applied] == ["9001"]
        assert "priority" in ticket_columns()
        with engine.connect() as connection:
            assert set(connection.execute(text("SELECT priority FROM tickets")).scalars()) == {3}

        reached = migrate.downgrade(engine, revision="-1", script_location=with_a_later_revision)
        assert reached == migrate._single_head(migrate._scripts(migrate.MIGRATIONS))
        assert "priority" not in ticket_columns()
        assert row_counts(url) == counts

        migrate.upgrade(engine, script_location=with_a_later_revision)
        assert row_counts(url) == counts
        with engine.connect() as connection:
            messages_without_ticket = connection.execute(
                text(
                    "SELECT count(*) FROM messages m "
                    "LEFT JOIN tickets t ON t.id = m.ticket_id WHERE t.id IS NULL"
                )
            ).scalar_one()
        assert messages_without_ticket == 0
        status = migrate.schema_status(engine, script_location=with_a_later_revision)
        assert (status.current, status.pending) == ("9001", ())


# --- case search (revision 0006) ----------------------------------------------------


def test_case_search_finds_the_messages_written_before_its_revision(own_desk: Desk) -> None:
    """Upgrading indexes the cases already there; later emails are indexed as they come."""
    desk = own_desk
    fill_with_a_working_desk(desk)
    url = desk.env["CONSULTANT_DATABASE_URL"]
    with engine_for(url) as engine:
        migrate.downgrade(engine, revision="0005")
        assert "search_vector" not in {c["name"] for c in inspect(engine).get_columns("messages")}
        migrate.upgrade(engine)

    searched = desk.consultant("tickets", "search", "infusion", "--json")
    store(case_email("new@clinic.example", subject="Later", body="Pegfilgrastim biosimilar?"))
    drain()
    later = desk.consultant("tickets", "search", "pegfilgrastim", "--json")

    assert searched.returncode == 0, searched.stderr
    assert [r["matched"] for r in json.loads(searched.stdout)["results"]] == ["text"]
    assert [r["subject"] for r in json.loads(later.stdout)["results"]] == ["Later"]
