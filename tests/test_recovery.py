"""Losing the broker loses no email: the sweeper finds the work in the database again."""

from __future__ import annotations

import time

import pytest
from sqlmodel import func, select

from consultant.config import get_settings
from consultant.db import session_scope
from consultant.models import Ticket
from tests.cases import case_email, store
from tests.conftest import Desk
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
