"""Which work a Celery worker takes first: what the customer waits for."""

from __future__ import annotations

import time
from pathlib import Path

from sqlmodel import col, func, select

from consultant import dispatch
from consultant.db import session_scope
from consultant.models import CodeLookup, OutboxEmail
from consultant.pipeline import process_inbound_emails
from tests.cases import case_email, store
from tests.conftest import Desk, running_celery_worker
from tests.servers.smtp_sink import SmtpSink

PREFETCHED = 4  # tasks a one-process worker holds before it runs them (workers/app.py)


def test_a_burst_is_acknowledged_before_a_backlog_of_code_lookups(
    celery_postgres_desk: Desk, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """Thirty cases wait for their codes to be looked up when eight new emails arrive:
    the eight are ticketed and answered first, and the lookups follow. Taking the queues
    in turn instead, the worker would look up a case between any two of the eight."""
    backlog = [ticket_for(f"earlier{n}@clinic.example") for n in range(30)]
    for ticket_id in backlog:
        dispatch.codes_needed([ticket_id])
    for n in range(8):
        dispatch.inbound_stored([inbound_id(f"new{n}@clinic.example")])

    with running_celery_worker(
        celery_postgres_desk.env, tmp_path / "worker.log", pool=("--concurrency", "1")
    ):
        assert len(smtp_sink.wait_for(8, timeout=30)) == 8
        wait_for_lookups(tickets=len(backlog) + 8, timeout=30)

    with session_scope() as session:
        last_ack = session.exec(select(func.max(OutboxEmail.sent_at))).one()
        first_lookups = session.exec(
            select(CodeLookup.ticket_id, func.min(CodeLookup.created_at))
            .where(col(CodeLookup.ticket_id).in_(backlog))
            .group_by(col(CodeLookup.ticket_id))
        ).all()
    assert last_ack is not None and len(first_lookups) == len(backlog)
    looked_up_earlier = [ticket for ticket, at in first_lookups if at < last_ack]
    assert len(looked_up_earlier) <= PREFETCHED, looked_up_earlier


def inbound_id(sender: str) -> int:
    stored = store(case_email(sender), envelope_from=sender)
    assert stored is not None
    return stored


def ticket_for(sender: str) -> int:
    """A case processed earlier, whose acknowledgement waits in the outbox unannounced."""
    [outcome] = process_inbound_emails([inbound_id(sender)])
    assert outcome.ticket_id is not None
    return outcome.ticket_id


def wait_for_lookups(*, tickets: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with session_scope() as session:
            query = select(func.count(func.distinct(CodeLookup.ticket_id)))
            if session.exec(query).one() >= tickets:
                return
        assert time.monotonic() < deadline, "the code lookups did not all arrive"
        time.sleep(0.1)
