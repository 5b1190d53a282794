"""Backups of a running desk, restores into empty databases, and what both refuse; on
SQLite and PostgreSQL."""

from __future__ import annotations

import getpass
import json
import re
import secrets
import smtplib
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from sqlalchemy import Connection, inspect, select
from sqlalchemy.engine import make_url

from consultant import config, db
from consultant.backup import libpq_connection
from consultant.mail.gateway import start_gateway
from consultant.models import Message, OutboxEmail, QuotaEntry, Ticket
from consultant.worker import LocalWorker, drain
from tests.cases import case_email, store
from tests.conftest import DESK_ADDRESS, Desk, empty_database_like
from tests.servers.ports import free_port
from tests.test_migrations import at

BACKUP_LINE = re.compile(
    r"^backup of the (SQLite|PostgreSQL) database written to (.+) \((.+), (\d+) tickets\)$"
)
RESTORE_LINE = re.compile(
    r"^.+ restored into the (SQLite|PostgreSQL) database, which now holds (\d+) tickets$"
)


class Case(NamedTuple):
    """What intake writes with a ticket, in the ticket's transaction."""

    messages: tuple[str, ...]  # Message-IDs
    charges: tuple[str, ...]  # quota entry keys
    outbox: tuple[str, ...]  # outbox keys (the acknowledgement)


def cases(url: str) -> dict[int, Case]:
    """Every ticket in the database at ``url``, with its rows.

    Only tickets seen by the first query count: on PostgreSQL each query has a snapshot
    of its own, and a ticket committed after the first would arrive without its ticket.
    """
    engine = db.make_engine(url)
    try:
        with engine.connect() as connection:
            ids = list(connection.execute(select(Ticket.id)).scalars())
            parts = [
                by_ticket(connection, Message.message_id, Message.ticket_id),
                by_ticket(connection, QuotaEntry.key, QuotaEntry.ticket_id),
                by_ticket(connection, OutboxEmail.key, OutboxEmail.ticket_id),
            ]
    finally:
        engine.dispose()
    return {ticket: Case(*(tuple(sorted(part[ticket])) for part in parts)) for ticket in ids}


def by_ticket(connection: Connection, value: Any, ticket: Any) -> dict[int, list[str]]:
    found: dict[int, list[str]] = defaultdict(list)
    for value_of, ticket_of in connection.execute(select(value, ticket)):
        found[ticket_of].append(value_of)
    return found


def table_names(url: str) -> list[str]:
    engine = db.make_engine(url)
    try:
        return inspect(engine).get_table_names()
    finally:
        engine.dispose()


class Clinic(threading.Thread):
    """A clinic emailing new cases to the gateway, one after another until stopped, each
    from an address of its own (so each is its guest account's one charged case)."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(name="clinic", daemon=True)
        self.host, self.port = host, port
        self.sent = 0
        self._stopping = threading.Event()

    def run(self) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=30) as client:
            while not self._stopping.is_set():
                sender = f"biller{self.sent}@clinic.example"
                client.sendmail(sender, [DESK_ADDRESS], case_email(sender))
                self.sent += 1
                self._stopping.wait(0.02)

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=30)


@contextmanager
def desk_taking_cases(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clinic]:
    """The gateway and the in-process worker, as ``consultant run`` starts them, with a
    clinic sending cases to it for as long as the block runs."""
    monkeypatch.setenv("CONSULTANT_GATEWAY", f"127.0.0.1:{free_port()}")
    config.get_settings.cache_clear()
    settings = config.get_settings()
    gateway = start_gateway(settings)
    worker = LocalWorker(interval=1)
    worker.start()
    clinic = Clinic(settings.gateway_host, settings.gateway_port)
    clinic.start()
    try:
        yield clinic
    finally:
        clinic.stop()
        worker.stop()
        worker.join(timeout=30)
        gateway.stop()


def wait_for_tickets(url: str, count: int, *, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(cases(url)) < count:
        assert time.monotonic() < deadline, f"fewer than {count} tickets after {timeout} s"
        time.sleep(0.1)


def test_a_backup_taken_mid_intake_restores_every_case_committed_before_it_whole(
    desk: Desk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = desk.env["CONSULTANT_DATABASE_URL"]
    backup = tmp_path / "desk.backup"
    with desk_taking_cases(monkeypatch) as clinic:
        wait_for_tickets(url, 10)
        committed = cases(url)
        sent_before = clinic.sent
        made = desk.consultant("db", "backup", str(backup))
        sent_during = clinic.sent - sent_before

    with empty_database_like(url, tmp_path) as fresh:
        restored_run = at(desk, fresh, "db", "restore", str(backup))
        listed = at(desk, fresh, "tickets", "list", "--json")
        restored = cases(fresh)

    assert made.returncode == 0, made.stderr
    assert sent_during > 0, "no case arrived while the backup ran"
    written = BACKUP_LINE.match(made.stdout.strip())
    assert written, made.stdout
    assert written[2] == str(backup)
    assert restored_run.returncode == 0, restored_run.stderr
    holds = RESTORE_LINE.match(restored_run.stdout.strip())
    assert holds, restored_run.stdout
    # The count printed is the backup's own, and the restore has exactly that.
    assert int(written[4]) == int(holds[2]) == len(restored)
    assert {ticket: restored.get(ticket) for ticket in committed} == committed
    # No case half-written: each restored ticket has its email, its charge, its answer.
    for ticket, case in restored.items():
        assert (len(case.messages), len(case.charges), len(case.outbox)) == (1, 1, 1), ticket
    assert listed.returncode == 0, listed.stderr
    assert [row["number"] for row in json.loads(listed.stdout)] == sorted(restored)


def test_restore_refuses_a_database_that_is_not_empty_and_changes_nothing(
    desk: Desk, tmp_path: Path
) -> None:
    url = desk.env["CONSULTANT_DATABASE_URL"]
    backup = tmp_path / "desk.backup"
    store(case_email("first@clinic.example"))
    drain()
    assert desk.consultant("db", "backup", str(backup)).returncode == 0
    store(case_email("second@clinic.example"))
    drain()
    before = cases(url)

    refused = desk.consultant("db", "restore", str(backup))

    assert refused.returncode == 1
    tables = len(table_names(url))
    assert refused.stderr.strip() == (
        f"the database is not empty ({tables} tables): a backup is restored into an "
        "empty database only; nothing was changed"
    )
    assert refused.stdout == ""
    assert cases(url) == before
    assert len(before) == 2


REFUSALS = {
    # (file, kind of desk): what the person reads
    ("garbage", "sqlite"): "{path} is not a backup made by consultant db backup; "
    "this desk's database is SQLite: nothing was changed",
    ("garbage", "postgresql"): "{path} is not a backup made by consultant db backup; "
    "this desk's database is PostgreSQL: nothing was changed",
    ("sqlite", "sqlite"): "{path} is not a backup of the desk (no tickets): nothing was changed",
    ("sqlite", "postgresql"): "{path} is a SQLite backup; "
    "this desk's database is PostgreSQL: nothing was changed",
    ("pg_dump", "sqlite"): "{path} is a PostgreSQL backup; "
    "this desk's database is SQLite: nothing was changed",
    ("pg_dump", "postgresql"): "pg_restore failed: error: ",  # its own words follow
}


def make_file(kind: str, path: Path) -> Path:
    """A file that is no backup of a desk: random bytes, another program's SQLite
    database, or random bytes behind the first bytes of a pg_dump file."""
    if kind == "sqlite":
        with sqlite3.connect(path) as other:
            other.execute("CREATE TABLE notes (body TEXT)")
        return path
    path.write_bytes((b"PGDMP" if kind == "pg_dump" else b"") + secrets.token_bytes(4096))
    return path


@pytest.mark.parametrize("kind", ["garbage", "sqlite", "pg_dump"])
def test_restore_refuses_a_file_that_is_not_a_backup_of_this_kind_of_database(
    desk: Desk, tmp_path: Path, kind: str
) -> None:
    url = desk.env["CONSULTANT_DATABASE_URL"]
    path = make_file(kind, tmp_path / f"{kind}.backup")
    with empty_database_like(url, tmp_path) as fresh:
        refused = at(desk, fresh, "db", "restore", str(path))
        left = table_names(fresh)

    assert refused.returncode == 1
    assert refused.stderr.startswith(
        REFUSALS[kind, make_url(url).get_backend_name()].format(path=path)
    )
    assert len(refused.stderr.strip().splitlines()) == 1
    assert left == []


def test_backup_refuses_an_existing_file_unless_forced(desk: Desk, tmp_path: Path) -> None:
    path = tmp_path / "desk.backup"
    path.write_bytes(b"last week's backup")

    refused = desk.consultant("db", "backup", str(path))
    kept = path.read_bytes()
    forced = desk.consultant("db", "backup", "--force", str(path))

    assert refused.returncode == 1
    assert refused.stderr.strip() == f"{path} exists: nothing was written (--force replaces it)"
    assert kept == b"last week's backup"
    assert forced.returncode == 0, forced.stderr
    assert path.read_bytes()[:5] in (b"SQLit", b"PGDMP")
    assert list(tmp_path.glob(".*")) == []


# SQLite is backed up and restored by the sqlite3 module itself: no client to miss.
ONLY_POSTGRESQL = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


@ONLY_POSTGRESQL
def test_without_the_postgresql_client_backup_and_restore_say_what_to_install(
    desk: Desk, tmp_path: Path
) -> None:
    store(case_email("dana@clinic.example"))
    drain()
    backup = tmp_path / "desk.backup"
    assert desk.consultant("db", "backup", str(backup)).returncode == 0
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    desk.env["PATH"] = str(empty_bin)

    missing_dump = desk.consultant("db", "backup", str(tmp_path / "again.backup"))
    with empty_database_like(desk.env["CONSULTANT_DATABASE_URL"], tmp_path) as fresh:
        missing_restore = at(desk, fresh, "db", "restore", str(backup))
        left = table_names(fresh)

    for program, run in (("pg_dump", missing_dump), ("pg_restore", missing_restore)):
        assert run.returncode == 1
        assert run.stderr.strip() == (
            f"{program} not found: install the PostgreSQL client (Debian: postgresql-client) "
            "of the server's version or newer, or put it on PATH"
        )
    assert not (tmp_path / "again.backup").exists()
    assert list(tmp_path.glob(".*")) == []  # no partial backup left behind
    assert left == []


@ONLY_POSTGRESQL
def test_pg_dump_gets_the_password_from_the_environment_and_its_failure_in_one_line(
    desk: Desk, tmp_path: Path
) -> None:
    password = f"pw-{secrets.token_hex(8)}"  # the test server trusts the socket: unused
    desk.env["CONSULTANT_DATABASE_URL"] = (
        make_url(desk.env["CONSULTANT_DATABASE_URL"])
        .set(username=getpass.getuser(), password=password)
        .render_as_string(hide_password=False)
    )
    fake = tmp_path / "bin" / "pg_dump"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        'printf "%s\\n" "$@" > "$0.args"\n'
        'printf "%s" "$PGPASSWORD" > "$0.password"\n'
        'echo "pg_dump: error: query failed: ERROR:  permission denied for table tickets" >&2\n'
        'echo "pg_dump: detail: Query was: LOCK TABLE public.tickets IN ACCESS SHARE MODE" >&2\n'
        "exit 1\n"
    )
    fake.chmod(0o755)
    desk.env["PATH"] = str(fake.parent)

    failed = desk.consultant("db", "backup", str(tmp_path / "desk.backup"))

    arguments = (tmp_path / "bin" / "pg_dump.args").read_text().splitlines()
    assert failed.returncode == 1
    assert failed.stderr.strip() == (
        "pg_dump failed: error: query failed: ERROR:  permission denied for table tickets"
    )
    assert password not in failed.stdout + failed.stderr
    assert not any(password in argument for argument in arguments)
    assert (tmp_path / "bin" / "pg_dump.password").read_text() == password
    assert "--format=custom" in arguments
    assert any(argument.startswith("--snapshot=") for argument in arguments)
    assert not (tmp_path / "desk.backup").exists()
    assert list(tmp_path.glob(".*")) == []


def test_the_client_programs_connect_by_a_libpq_url_without_the_password() -> None:
    url = make_url("postgresql+psycopg://desk:p%40ss%3Aword@db.example:5433/cases?sslmode=require")

    assert libpq_connection(url=url) == (
        "postgresql://desk@db.example:5433/cases?sslmode=require",
        {"PGPASSWORD": "p@ss:word"},
    )
