"""Crashes lose no email and double none: every email ends as one ticket and one answer.

The database is the work list, so a killed poller or worker leaves either nothing (its
transaction died with it) or rows that the next run, or the sweeper, finds again.
PostgreSQL row and table locks, a paused broker and a relay that holds its reply stop a
process at the exact point a test kills it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import message_from_bytes
from pathlib import Path

import pytest
from kombu import Connection
from sqlalchemy import text
from sqlmodel import SQLModel, col, func, select

from consultant import db, dispatch
from consultant.config import get_settings
from consultant.db import session_scope
from consultant.mail.imap import STORED_KEYWORD
from consultant.models import (
    CodeLookup,
    InboundEmail,
    Mailbox,
    OutboxEmail,
    OutboxStatus,
    Ticket,
)
from consultant.outbox import LEASE
from consultant.pipeline import process_inbound_emails
from tests.cases import add_coder, case_email, store
from tests.conftest import (
    MAIL_USER,
    CaseMailbox,
    Desk,
    in_process_desk,
    running_celery_worker,
)
from tests.servers.redis_server import RedisServer
from tests.servers.smtp_sink import SmtpSink
from workers.tasks import sweep

LATE_SECONDS = 1.5  # how long a test waits after the last expected email for a duplicate


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
        wait_until(lambda: sessions_waiting_for_a_lock() >= 1, "the poller never blocked")
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


@pytest.mark.parametrize("processed_folder", ["", "Done"], ids=["flag", "move"])
def test_a_poller_killed_between_commit_and_setting_aside_loses_and_doubles_nothing(
    celery_postgres_desk: Desk,
    broker: RedisServer,
    mailbox: CaseMailbox,
    smtp_sink: SmtpSink,
    tmp_path: Path,
    processed_folder: str,
) -> None:
    """The batch is committed, the cursor past it; the kill comes before the poller flags
    or moves it. The next poll trusts the cursor and fetches none of it again, but does
    flag or move what the dead poller left behind."""
    desk = celery_postgres_desk
    desk.env["CONSULTANT_IMAP_URL"] = mailbox.url
    if processed_folder:
        desk.env["CONSULTANT_IMAP_PROCESSED_FOLDER"] = mailbox.folder + processed_folder
    emails = case_emails(3)
    mailbox.append(*emails)

    with broker.paused():
        # After its commit the poller announces the batch to Celery, before it sets the
        # batch aside: a hung broker keeps it right there.
        poller = subprocess.Popen(
            [sys.executable, "-m", "consultant", "poll", "--once"],
            env={**os.environ, **desk.env},
        )
        wait_until(lambda: count(InboundEmail) == 3, "the poller never committed its batch")
        assert poller.poll() is None, "the poller should still wait for the broker"
        poller.send_signal(signal.SIGKILL)
        poller.wait()
    assert emails_in_folder(mailbox) == (3, 0)  # committed, but neither flagged nor moved
    with session_scope() as session:
        assert session.exec(select(Mailbox.last_uid)).one() == 3

    again = desk.consultant("poll", "--once")
    assert again.returncode == 0, again.stderr
    assert "0 fetched, 0 new" in again.stdout  # the cursor is past the batch
    assert emails_in_folder(mailbox) == ((0, 0) if processed_folder else (3, 3))
    with fresh_worker(desk, tmp_path / "worker.log"):
        smtp_sink.wait_for(3, timeout=20)
        time.sleep(LATE_SECONDS)
    assert_answered_once_each(emails, smtp_sink)
    assert count(InboundEmail) == 3


def test_a_worker_killed_mid_task_leaves_one_ticket_and_one_ack_per_email(
    celery_postgres_desk: Desk, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """A task killed inside its transaction leaves nothing behind: the case is written
    again, once, although its task runs again and the sweep announces it too."""
    desk = celery_postgres_desk
    emails = case_emails(3)
    inbound_ids = [inbound_id for raw in emails if (inbound_id := store(raw))]

    with db.get_engine().connect() as holder:
        # A case is written (ticket, debit, message) when its acknowledgement waits to
        # enter the outbox: the task stops there, mid-transaction.
        holder.execute(text("LOCK TABLE outbox IN SHARE MODE"))
        with running_celery_worker(desk.env, tmp_path / "killed.log") as worker:
            dispatch.inbound_stored(inbound_ids)
            wait_until(lambda: sessions_waiting_for_a_lock() >= 1, "no task reached the outbox")
            worker.kill()
        holder.rollback()
    assert count(Ticket) == 0  # the cases died with their transactions

    with fresh_worker(desk, tmp_path / "worker.log"):
        smtp_sink.wait_for(3, timeout=20)
        time.sleep(LATE_SECONDS)
    assert_answered_once_each(emails, smtp_sink)


def test_a_worker_killed_mid_send_sends_again_with_the_same_message_id(
    celery_postgres_desk: Desk, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """The relay has an acknowledgement, the killed sender never heard so: the row stays
    ``sending`` until its lease runs out and is then sent again, with the same bytes."""
    desk = celery_postgres_desk
    emails = case_emails(3)
    inbound_ids = [inbound_id for raw in emails if (inbound_id := store(raw))]

    smtp_sink.hold()  # the relay takes each acknowledgement but keeps its "250"
    with running_celery_worker(desk.env, tmp_path / "killed.log") as worker:
        dispatch.inbound_stored(inbound_ids)
        smtp_sink.wait_until_holding(1, timeout=20)
        worker.kill()
    smtp_sink.release()
    expire_leases()  # five minutes on, the killed sender's claims have run out

    with fresh_worker(desk, tmp_path / "worker.log"):
        smtp_sink.wait_for(4, timeout=20)
        time.sleep(LATE_SECONDS)
    # An acknowledgement the relay took from the killed worker arrives twice, as the same
    # email, so the receiver can tell: at least once at the SMTP boundary, never more
    # than once per lease. (The worker was delivering over several connections at once,
    # so one to all three of them may have been held when it was killed.)
    answers = answers_by_email(emails, smtp_sink)
    assert all(len(set(copies)) == 1 for copies in answers.values()), answers
    copies_per_email = {len(copies) for copies in answers.values()}
    assert 2 in copies_per_email and copies_per_email <= {1, 2}, answers
    with session_scope() as session:
        acks = session.exec(select(OutboxEmail)).all()
    assert [ack.status for ack in acks] == [OutboxStatus.SENT] * 3
    assert count(Ticket) == 3


def case_emails(number: int) -> list[bytes]:
    return [case_email(f"biller{n}@clinic.example") for n in range(number)]


@contextmanager
def fresh_worker(desk: Desk, log: Path) -> Iterator[None]:
    """What follows a killed worker: its tasks are handed out again, the sweep that celery
    beat runs announces whatever is pending, and a fresh worker does both, each once."""
    redeliver_unacknowledged(desk.env["CONSULTANT_BROKER_URL"])
    with running_celery_worker(desk.env, log):
        sweep()
        yield


def redeliver_unacknowledged(broker_url: str) -> None:
    """Put the tasks a killed worker had taken back on their queues.

    Redis does this once its visibility timeout has passed (an hour unless configured);
    a timeout of 0 does it now, so the killed worker's tasks run again alongside the
    sweep's announcements of the same rows.
    """
    with Connection(broker_url, transport_options={"visibility_timeout": 0}) as connection:
        connection.default_channel.qos.restore_visible(num=1000)


def expire_leases() -> None:
    """Move the claims of emails still being sent back by the lease: as if it had run out."""
    with session_scope() as session:
        sending = select(OutboxEmail).where(col(OutboxEmail.status) == OutboxStatus.SENDING)
        for email in session.exec(sending):
            email.next_attempt_at -= LEASE
            session.add(email)


def assert_answered_once_each(emails: list[bytes], smtp_sink: SmtpSink) -> None:
    """One acknowledgement per email, one copy of each, and one ticket per email."""
    answers = answers_by_email(emails, smtp_sink)
    assert all(len(copies) == 1 for copies in answers.values()), answers
    assert len({copies[0] for copies in answers.values()}) == len(emails)
    assert count(Ticket) == len(emails)


def answers_by_email(emails: list[bytes], smtp_sink: SmtpSink) -> dict[str, list[str]]:
    """For each email's Message-ID, the Message-IDs of the answers the relay received."""
    answers: dict[str, list[str]] = {message_id(raw): [] for raw in emails}
    for received in smtp_sink.messages:
        answer = message_from_bytes(received.raw)
        answers[str(answer["In-Reply-To"])].append(str(answer["Message-ID"]))
    return answers


def message_id(raw: bytes) -> str:
    return str(message_from_bytes(raw)["Message-ID"])


def emails_in_folder(mailbox: CaseMailbox) -> tuple[int, int]:
    """How many emails the test's folder holds, and how many carry the desk's keyword."""
    with mailbox.server.client(MAIL_USER) as client:
        client.select_folder(mailbox.folder, readonly=True)
        flags = client.get_flags(client.search())
    return len(flags), sum(STORED_KEYWORD in flagged for flagged in flags.values())


def count(model: type[SQLModel]) -> int:
    """Rows in a table, read in a transaction of its own (so it sees the latest commits)."""
    with session_scope() as session:
        return session.exec(select(func.count()).select_from(model)).one()


def sessions_waiting_for_a_lock() -> int:
    """Asked on a fresh connection each time: PostgreSQL keeps pg_stat_activity's
    snapshot for the rest of a transaction."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    with db.get_engine().connect() as connection:
        return connection.execute(query).scalar_one()


def wait_until(condition: Callable[[], bool], failure: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, failure
        time.sleep(0.05)


def test_a_case_whose_code_lookup_task_was_lost_is_looked_up_and_routed_by_the_sweep(
    celery_postgres_desk: Desk, broker: RedisServer, tmp_path: Path
) -> None:
    alice = add_coder("alice@desk.example", specialties="generalist")
    inbound_id = store(case_email("dana@clinic.example"))
    assert inbound_id is not None
    # Ticketed and acknowledged by a worker that died before it announced the lookup,
    # with a broker that then lost whatever it held.
    [outcome] = process_inbound_emails([inbound_id])
    broker.restart()

    with running_celery_worker(celery_postgres_desk.env, tmp_path / "worker.log"):
        sweep()  # what celery beat runs every CONSULTANT_SWEEP_SECONDS (0 here)
        deadline = time.monotonic() + 60
        while ticket_of(outcome.ticket_id).coder_id is None:
            assert time.monotonic() < deadline, "the case was never routed"
            time.sleep(0.2)

    routed = ticket_of(outcome.ticket_id)
    assert (routed.specialty, routed.coder_id) == ("evaluation-management", alice)
    with session_scope() as session:
        looked_up = session.exec(select(CodeLookup.code).order_by(col(CodeLookup.code))).all()
    assert looked_up == ["20610", "99213"]


def ticket_of(ticket_id: int | None) -> Ticket:
    with session_scope() as session:
        found = session.get(Ticket, ticket_id)
        assert found is not None
        return found
