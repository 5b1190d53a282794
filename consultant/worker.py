"""The embedded engine: the same work as the Celery tasks, done in this process.

:func:`drain` processes every stored email and sends every queued email until nothing is
left; ``consultant run --once`` is a poll followed by one drain. :class:`LocalWorker`
drains in a thread whenever the gateway or the poller announces new work.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from consultant import dispatch
from consultant.codes.lookup import look_up_codes
from consultant.codes.store import warm_catalog
from consultant.config import get_settings
from consultant.escalation import sweep
from consultant.inbound import due_inbound_ids
from consultant.models import InboundStatus, OutboxStatus
from consultant.outbox import due_outbox_ids, send_outbox_emails
from consultant.pipeline import process_inbound_emails
from consultant.routing.assign import route

log = logging.getLogger(__name__)


@dataclass
class DrainReport:
    processed: int = 0
    failed: int = 0
    sent: int = 0
    send_failures: int = 0


def drain() -> DrainReport:
    """Do all due work once; an email or send that fails is recorded for a later retry."""
    report = DrainReport()
    tried_inbound: set[int] = set()
    tried_outbox: set[int] = set()
    while True:
        inbound_ids = [i for i in due_inbound_ids() if i not in tried_inbound]
        tried_inbound.update(inbound_ids)  # a failure waits for a later drain
        outbox_ids = [i for i in due_outbox_ids() if i not in tried_outbox]
        if not inbound_ids and not outbox_ids:
            return report
        for start in range(0, len(inbound_ids), dispatch.IDS_PER_TASK):
            outcomes = process_inbound_emails(inbound_ids[start : start + dispatch.IDS_PER_TASK])
            for outcome in outcomes:
                if outcome.status in (InboundStatus.FAILED, InboundStatus.QUARANTINED):
                    report.failed += 1
                else:
                    report.processed += 1
            ticketed = [o.ticket_id for o in outcomes if o.ticket_id is not None]
            look_up_codes(ticketed)
            route(ticketed)
        tried_outbox.update(outbox_ids)  # a temporary failure waits for a later drain
        for result in send_outbox_emails(outbox_ids=outbox_ids):
            if result.status == OutboxStatus.SENT:
                report.sent += 1
            elif result.status in (OutboxStatus.PENDING, OutboxStatus.FAILED):
                report.send_failures += 1


class LocalWorker(threading.Thread):
    """Drains when woken, and every ``interval`` seconds in case a wake-up was missed."""

    def __init__(self, *, interval: float) -> None:
        super().__init__(name="local-worker", daemon=True)
        self.interval = interval
        self._stopping = threading.Event()
        self._next_sweep = 0.0  # monotonic time of the next escalation sweep

    def run(self) -> None:
        try:
            warm_catalog()
        except SQLAlchemyError as exc:  # no database yet: the first lookup reads it instead
            log.warning("local worker: code catalog not read ahead: %s", exc)
        while not self._stopping.is_set():
            try:
                drain()
                self._sweep_when_due()
            except Exception:  # the database may be down for a moment; try again later
                log.exception("local worker: drain failed")
            dispatch.wait_for_local_work(min(self.interval, get_settings().escalation_seconds))

    def _sweep_when_due(self) -> None:
        """The escalation sweep, every CONSULTANT_ESCALATION_SECONDS, as beat runs it."""
        if time.monotonic() < self._next_sweep:
            return
        self._next_sweep = time.monotonic() + get_settings().escalation_seconds
        if sweep().notices:
            drain()  # the notifications it queued go out now

    def stop(self) -> None:
        self._stopping.set()
        dispatch.wake_local_worker()
