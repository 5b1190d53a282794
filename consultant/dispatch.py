"""Tell the engine that work is waiting, after the database commit that recorded it.

With a broker configured the engine is Celery: the ids become tasks on their queue, up to
:data:`IDS_PER_TASK` ids per task, because a task's own cost (publish, deliver,
acknowledge) is then paid once per batch instead of once per email. With none (the
embedded desk) it is the in-process worker, which is woken up and reads what is pending
from the database. Either way the database row is the work; a lost message only delays
it until the sweeper or the next wake-up finds the row.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache

from celery import Celery

from consultant.config import get_settings

PROCESS_INBOUND = "workers.tasks.process_inbound"
SEND_OUTBOX = "workers.tasks.send_outbox"
LOOK_UP_CODES = "workers.tasks.look_up_codes"
IDS_PER_TASK = 25  # one transaction in intake; a poller's batch of 200 still spreads widely

_local_work = threading.Event()


def inbound_stored(inbound_ids: Iterable[int], *, not_before: datetime | None = None) -> None:
    """Announce emails to process; ``not_before`` for a retry that is due later."""
    _announce(PROCESS_INBOUND, "intake", inbound_ids, eta=not_before)


def outbox_queued(outbox_ids: Iterable[int], *, not_before: datetime | None = None) -> None:
    """Announce emails to send; ``not_before`` for a retry that is due later."""
    _announce(SEND_OUTBOX, "mail", outbox_ids, eta=not_before)


def codes_needed(ticket_ids: Iterable[int]) -> None:
    _announce(LOOK_UP_CODES, "codes", ticket_ids)


def wait_for_local_work(timeout: float) -> bool:
    """Block the in-process worker until something is announced (or ``timeout`` passes)."""
    woken = _local_work.wait(timeout)
    _local_work.clear()
    return woken


def wake_local_worker() -> None:
    _local_work.set()


def _announce(
    task_name: str, queue: str, ids: Iterable[int], *, eta: datetime | None = None
) -> None:
    ids = list(ids)
    if not ids:
        return
    broker_url = get_settings().broker_url
    if not broker_url:
        wake_local_worker()
        return
    producer = _producer(broker_url)
    for start in range(0, len(ids), IDS_PER_TASK):
        producer.send_task(
            task_name, args=[ids[start : start + IDS_PER_TASK]], queue=queue, eta=eta
        )


@lru_cache(maxsize=2)
def _producer(broker_url: str) -> Celery:
    """A Celery client that only sends tasks, by name, to the configured broker.

    Keyed by the URL rather than built once at import, so the broker in force is always
    the one the settings name now; workers/app.py is the workers' side.
    """
    return Celery("consultant", broker=broker_url, set_as_current=False)
