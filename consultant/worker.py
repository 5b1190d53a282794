"""The embedded engine: the same work as the Celery tasks, done in this process.

:func:`drain` processes every stored email, sends every queued email and looks up the
codes of every new case until nothing is left; ``consultant run --once`` is a poll
followed by :func:`catch_up`, a drain, the escalation sweep and a refresh of the
reports. :class:`LocalWorker` drains in a thread whenever the gateway or the poller
announces new work, and runs the escalation sweep and the reports' refresh as beat would.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from consultant import dispatch, webhooks
from consultant.codes.lookup import look_up_codes, tickets_without_codes
from consultant.codes.store import warm_catalog
from consultant.config import get_settings
from consultant.escalation import sweep
from consultant.inbound import due_inbound_ids
from consultant.models import InboundStatus, OutboxStatus
from consultant.outbox import due_outbox_ids, send_outbox_emails
from consultant.pipeline import process_inbound_emails
from consultant.reports.rollups import refresh_now
from consultant.routing.assign import route

log = logging.getLogger(__name__)


@dataclass
class DrainReport:
    processed: int = 0
    failed: int = 0
    sent: int = 0
    send_failures: int = 0


def drain() -> DrainReport:
    """Do all due work once; an email or send that fails is recorded for a later retry.

    Each round processes the stored emails, sends what that queued (the customers'
    acknowledgements) and only then looks up codes and routes, as the Celery workers'
    queue order does: routing never keeps a customer waiting.
    """
    report = DrainReport()
    tried: dict[str, set[int]] = {"inbound": set(), "outbox": set(), "codes": set()}
    while True:
        inbound_ids = _untried(due_inbound_ids(), tried["inbound"])
        ticketed = _process(inbound_ids, report)
        outbox_ids = _untried(due_outbox_ids(), tried["outbox"])
        _send(outbox_ids, report)
        # The cases just written to (a follow-up may need its owner replaced), and any
        # whose lookup was never done.
        lost = _untried(tickets_without_codes(), tried["codes"])
        ticket_ids = list(dict.fromkeys([*ticketed, *lost]))
        for start in range(0, len(ticket_ids), dispatch.IDS_PER_TASK):
            batch = ticket_ids[start : start + dispatch.IDS_PER_TASK]
            look_up_codes(batch)
            route(batch)
        if not (inbound_ids or outbox_ids or ticket_ids):
            return report


def catch_up() -> DrainReport:
    """All due work, the escalation sweep and the notices it queued, then the webhooks'
    deliveries and the reports' refresh: what ``consultant run --once`` does, so a desk
    run from cron escalates and reports too."""
    report = drain()
    if sweep().notices:
        after = drain()
        report.sent += after.sent
        report.send_failures += after.send_failures
    webhooks.run_once()
    refresh_now()
    return report


def _untried(due: list[int], tried: set[int]) -> list[int]:
    """The due ids this drain has not tried yet (a failure waits for a later drain)."""
    fresh = [row_id for row_id in due if row_id not in tried]
    tried.update(fresh)
    return fresh


def _process(inbound_ids: list[int], report: DrainReport) -> list[int]:
    """Process the stored emails; the tickets they made or added to."""
    ticketed = []
    for start in range(0, len(inbound_ids), dispatch.IDS_PER_TASK):
        for outcome in process_inbound_emails(inbound_ids[start : start + dispatch.IDS_PER_TASK]):
            if outcome.status in (InboundStatus.FAILED, InboundStatus.QUARANTINED):
                report.failed += 1
            else:
                report.processed += 1
            if outcome.ticket_id is not None:
                ticketed.append(outcome.ticket_id)
    return ticketed


def _send(outbox_ids: list[int], report: DrainReport) -> None:
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
        self._next_report_refresh = 0.0

    def run(self) -> None:
        try:
            warm_catalog()
        except SQLAlchemyError as exc:  # no database yet: the first lookup reads it instead
            log.warning("local worker: code catalog not read ahead: %s", exc)
        while not self._stopping.is_set():
            try:
                drain()
                self._sweep_when_due()
                webhooks.run_once()
                self._refresh_reports_when_due()
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

    def _refresh_reports_when_due(self) -> None:
        """The reports' rollups, every CONSULTANT_REPORT_SECONDS, as beat refreshes them."""
        if time.monotonic() < self._next_report_refresh:
            return
        self._next_report_refresh = time.monotonic() + get_settings().report_seconds
        refresh_now()

    def stop(self) -> None:
        self._stopping.set()
        dispatch.wake_local_worker()
