"""Outgoing mail against a relay that fails: sent once, retried, or failed with the reason."""

from __future__ import annotations

import json
import time
from collections import Counter
from email import message_from_bytes

import pytest
from sqlmodel import select

from consultant.config import get_settings
from consultant.db import session_scope
from consultant.inbound import due_inbound_ids
from consultant.models import Event, OutboxEmail, utcnow
from consultant.outbox import LEASE, send_outbox_emails
from consultant.pipeline import process_inbound, process_inbound_emails
from consultant.worker import drain
from tests.cases import case_email, store
from tests.conftest import Desk
from tests.servers.smtp_sink import SmtpSink


@pytest.fixture
def quick_retries(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> Desk:
    monkeypatch.setenv("CONSULTANT_SMTP_RETRY_SECONDS", "0.05")
    get_settings.cache_clear()
    desk.consultant("accounts", "add", "@clinic.example", "--plan", "unlimited")
    return desk


def drain_until_settled(rounds: int = 40) -> None:
    """Drain, letting retry delays pass, until nothing is waiting."""
    for _ in range(rounds):
        drain()
        with session_scope() as session:
            waiting = session.exec(
                select(OutboxEmail).where(OutboxEmail.status.in_(["pending", "sending"]))  # type: ignore[attr-defined]
            ).all()
        if not waiting:
            return
        time.sleep(0.1)
    raise AssertionError("outbox did not settle")


def received_ids(sink: SmtpSink) -> Counter[str]:
    return Counter(str(message_from_bytes(m.raw)["Message-ID"]) for m in sink.messages)


def outbox_rows() -> list[OutboxEmail]:
    with session_scope() as session:
        return list(session.exec(select(OutboxEmail).order_by(OutboxEmail.id)).all())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "failure",
    ["421 4.4.2 closing connection", "451 4.3.0 try again later", "drop after DATA"],
)
def test_temporary_failures_are_retried_until_each_email_is_sent_exactly_once(
    quick_retries: Desk, smtp_sink: SmtpSink, failure: str
) -> None:
    for n in range(3):
        store(case_email(f"biller{n}@clinic.example"))
    if failure == "drop after DATA":
        smtp_sink.drop_next(2)
    else:
        smtp_sink.fail_next(2, failure)

    drain_until_settled()

    rows = outbox_rows()
    assert [row.status for row in rows] == ["sent"] * 3
    assert sum(row.attempts for row in rows) == 5
    assert received_ids(smtp_sink) == Counter({row.message_id: 1 for row in rows})


def test_a_permanent_refusal_fails_the_email_with_the_relays_reason_on_the_ticket(
    quick_retries: Desk, smtp_sink: SmtpSink
) -> None:
    store(case_email("biller@clinic.example"))
    smtp_sink.fail_next(1, "550 5.1.1 mailbox unavailable")

    drain_until_settled()

    [row] = outbox_rows()
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error == "550 5.1.1 mailbox unavailable"
    with session_scope() as session:
        [event] = session.exec(select(Event).where(Event.kind == "mail.failed")).all()
    assert event.ticket_id == row.ticket_id and "550 5.1.1" in (event.detail or "")
    assert smtp_sink.messages == []


@pytest.mark.one_database("sqlite")
def test_a_failed_email_is_listed_sent_again_or_cancelled_from_the_command_line(
    desk: Desk, smtp_sink: SmtpSink
) -> None:
    for sender in ("biller@clinic.example", "coder@clinic.example"):
        store(case_email(sender))
    smtp_sink.fail_next(2, "550 5.1.1 mailbox unavailable")
    drain_until_settled()

    listed = json.loads(desk.consultant("outbox", "list", "--json").stdout)
    assert [(row["status"], row["last_error"]) for row in listed] == [
        ("failed", "550 5.1.1 mailbox unavailable")
    ] * 2
    first, second = sorted(row["id"] for row in listed)
    retried = desk.consultant("outbox", "retry", str(first))
    assert retried.returncode == 0 and "queued again" in retried.stdout
    assert desk.consultant("outbox", "cancel", str(second)).returncode == 0
    drain_until_settled()

    assert [(row.status, row.attempts) for row in outbox_rows()] == [
        ("sent", 1),
        ("cancelled", 1),
    ]
    assert len(smtp_sink.messages) == 1


def test_a_relay_that_never_recovers_fails_the_email_after_the_last_attempt(
    quick_retries: Desk, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSULTANT_MAX_SEND_ATTEMPTS", "3")
    get_settings.cache_clear()
    store(case_email("biller@clinic.example"))
    smtp_sink.fail_next(10, "451 4.3.0 still down")

    drain_until_settled()

    [row] = outbox_rows()
    assert (row.status, row.attempts) == ("failed", 3)
    assert row.last_error == "gave up: 451 4.3.0 still down"


def test_an_email_claimed_by_a_sender_that_died_is_sent_once_its_lease_runs_out(
    quick_retries: Desk, smtp_sink: SmtpSink
) -> None:
    store(case_email("biller@clinic.example"))
    drain()
    smtp_sink.clear()
    with session_scope() as session:  # as a worker killed between claim and send leaves it
        [row] = session.exec(select(OutboxEmail)).all()
        row.status, row.next_attempt_at = "sending", utcnow() + LEASE
        session.add(row)

    [result] = send_outbox_emails(outbox_ids=[row.id])  # type: ignore[list-item]
    assert result.status == "skipped"
    with session_scope() as session:
        stale = session.get(OutboxEmail, row.id)
        assert stale is not None
        stale.next_attempt_at = utcnow() - LEASE / 100
        session.add(stale)
    [result] = send_outbox_emails(outbox_ids=[row.id])  # type: ignore[list-item]
    assert result.status == "sent"
    assert received_ids(smtp_sink) == Counter({row.message_id: 1})


def test_relay_limits_defer_sending_and_never_drop(
    quick_retries: Desk, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSULTANT_SMTP_MAX_PER_MINUTE", "2")
    get_settings.cache_clear()
    for n in range(4):
        store(case_email(f"biller{n}@clinic.example"))

    drain()

    assert [row.status for row in outbox_rows()] == ["sent", "sent", "pending", "pending"]
    deferred = outbox_rows()[2]
    assert deferred.attempts == 0 and deferred.next_attempt_at > utcnow()
    assert len(smtp_sink.messages) == 2


def test_the_celery_worker_retries_a_temporary_failure_and_sends_once(
    celery_desk: Desk, smtp_sink: SmtpSink
) -> None:
    from consultant import dispatch

    smtp_sink.fail_next(1, "451 4.3.0 try again later")
    inbound_id = store(case_email("biller@elsewhere.example"))
    assert inbound_id is not None
    dispatch.inbound_stored([inbound_id])

    [message] = smtp_sink.wait_for(1, timeout=60)
    time.sleep(1)
    [row] = outbox_rows()
    assert (row.status, row.attempts) == ("sent", 2)
    assert received_ids(smtp_sink) == Counter({row.message_id: 1})
    assert message.rcpt_tos == ("biller@elsewhere.example",)


def test_each_email_is_marked_sent_before_its_connection_hands_over_the_next(
    quick_retries: Desk, smtp_sink: SmtpSink
) -> None:
    """So at most one email per relay connection is ever with the relay but not marked
    sent: the ones a crash at that moment would make the desk send again."""
    connections = get_settings().smtp_connections
    for n in range(6):
        store(case_email(f"biller{n}@clinic.example"))
    for inbound_id in due_inbound_ids():
        process_inbound(inbound_id=inbound_id)
    unmarked_at_each_handover: list[int] = []

    def count_unmarked() -> None:  # the relay has these, the desk does not know it yet
        marked = sum(row.status == "sent" for row in outbox_rows())
        unmarked_at_each_handover.append(len(smtp_sink.messages) - marked)

    smtp_sink.on_data(count_unmarked)
    send_outbox_emails(outbox_ids=[row.id for row in outbox_rows()])  # type: ignore[misc]

    assert len(unmarked_at_each_handover) == 6
    assert max(unmarked_at_each_handover) <= connections - 1, unmarked_at_each_handover
    assert [row.status for row in outbox_rows()] == ["sent"] * 6


def test_one_claim_of_several_emails_settles_each_on_its_own(
    quick_retries: Desk, smtp_sink: SmtpSink
) -> None:
    for n in range(3):
        store(case_email(f"biller{n}@clinic.example"))
    for inbound_id in due_inbound_ids():
        process_inbound(inbound_id=inbound_id)
    smtp_sink.fail_next(1, "550 5.1.1 no such mailbox")
    smtp_sink.fail_next(1, "451 4.3.0 try again later")

    results = send_outbox_emails(outbox_ids=[row.id for row in outbox_rows()])  # type: ignore[misc]

    # The three go to the relay at once: which one meets which reply is down to timing.
    by_status = {result.status: result for result in results}
    assert sorted(by_status) == ["failed", "pending", "sent"]
    assert by_status["pending"].retry_at is not None
    rows = {row.id: row for row in outbox_rows()}
    refused, deferred, accepted = (
        rows[by_status[status].outbox_id] for status in ("failed", "pending", "sent")
    )
    assert received_ids(smtp_sink) == Counter({accepted.message_id: 1})
    drain_until_settled()
    assert received_ids(smtp_sink) == Counter({accepted.message_id: 1, deferred.message_id: 1})
    statuses = {row.id: row.status for row in outbox_rows()}
    assert statuses == {refused.id: "failed", deferred.id: "sent", accepted.id: "sent"}
    assert refused.message_id not in received_ids(smtp_sink)


def test_a_slow_relay_is_given_several_emails_at_once(
    quick_retries: Desk, smtp_sink: SmtpSink
) -> None:
    """A relay that takes 0.3 s over each email: nine emails over three connections
    take the time of three, not nine, and each is sent once."""
    assert get_settings().smtp_connections == 3
    for n in range(9):
        store(case_email(f"biller{n}@clinic.example"))
    outcomes = process_inbound_emails(due_inbound_ids())
    outbox_ids = [row_id for outcome in outcomes for row_id in outcome.outbox_ids]
    smtp_sink.answer_slowly(0.3)

    started = time.monotonic()
    results = send_outbox_emails(outbox_ids=outbox_ids)
    elapsed = time.monotonic() - started

    assert [result.status for result in results] == ["sent"] * 9
    assert received_ids(smtp_sink) == Counter({row.message_id: 1 for row in outbox_rows()})
    assert 0.9 <= elapsed < 1.8, elapsed  # one at a time: 2.7 s
