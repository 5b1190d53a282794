"""Losing the broker loses no email: the sweeper finds the work in the database again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import func, select

from consultant import db
from consultant.config import get_settings
from consultant.db import session_scope
from consultant.models import InboundEmail, Ticket
from tests.cases import case_email, store
from tests.conftest import CaseMailbox, Desk, in_process_desk
from tests.servers.redis_server import RedisServer
from tests.servers.smtp_sink import SmtpSink
from workers.tasks import sweep


def test_emails_whose_tasks_died_with_redis_are_swept_up_and_answered_once(
    celery_desk: Desk,
    redis_server: RedisServer,
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Stored, announced into a Redis that then lost everything it held.
    ids = [store(case_email(f"biller{n}@clinic.example")) for n in range(3)]
    redis_server.restart()
    monkeypatch.setenv("CONSULTANT_SWEEP_SECONDS", "0")
    get_settings.cache_clear()

    sweep()  # what celery beat runs every CONSULTANT_SWEEP_SECONDS
    smtp_sink.wait_for(3, timeout=60)
    sweep()  # nothing is waiting any more: nothing is done twice
    time.sleep(1.5)

    assert all(inbound_id is not None for inbound_id in ids)
    with session_scope() as session:
        assert session.exec(select(func.count()).select_from(Ticket)).one() == 3
    assert len(smtp_sink.messages) == 3


@pytest.fixture
def postgres_desk(
    postgres_database: str, smtp_sink: SmtpSink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Desk]:
    """The desk on PostgreSQL, whose row locks let a test stop a process mid-transaction."""
    yield from in_process_desk(postgres_database, tmp_path, monkeypatch, smtp_sink)


def test_a_poller_killed_between_fetch_and_commit_loses_and_doubles_nothing(
    postgres_desk: Desk, mailbox: CaseMailbox, smtp_sink: SmtpSink
) -> None:
    postgres_desk.env["CONSULTANT_IMAP_URL"] = mailbox.url
    assert postgres_desk.consultant("poll", "--once").returncode == 0  # the cursor row exists
    mailbox.append(*(case_email(f"biller{n}@clinic.example") for n in range(3)))

    with db.get_engine().connect() as holder:
        # Hold the cursor row: the poller fetches, stores, then waits to move the cursor.
        holder.execute(text("SELECT 1 FROM mailboxes FOR UPDATE"))
        poller = subprocess.Popen(
            [sys.executable, "-m", "consultant", "poll", "--once"],
            env={**os.environ, **postgres_desk.env},
        )
        wait_until_blocked_on_a_lock()
        poller.send_signal(signal.SIGKILL)
        poller.wait()
        holder.rollback()
    with session_scope() as session:  # the killed poller's batch died with its transaction
        assert session.exec(select(func.count()).select_from(InboundEmail)).one() == 0

    again = postgres_desk.consultant("run", "--once")
    assert again.returncode == 0, again.stderr
    assert "processed 3 email(s)" in again.stdout
    assert len(smtp_sink.wait_for(3, timeout=10)) == 3
    with session_scope() as session:
        assert session.exec(select(func.count()).select_from(Ticket)).one() == 3
        assert session.exec(select(func.count()).select_from(InboundEmail)).one() == 3


def wait_until_blocked_on_a_lock(timeout: float = 30) -> None:
    """Until some session waits for a lock; asked afresh each time, since PostgreSQL
    keeps pg_stat_activity's snapshot for the rest of a transaction."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    deadline = time.monotonic() + timeout
    while True:
        with db.get_engine().connect() as connection:
            if connection.execute(query).scalar_one():
                return
        assert time.monotonic() < deadline, "the poller never reached its commit"
        time.sleep(0.05)
