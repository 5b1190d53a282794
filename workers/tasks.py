"""Thin tasks: take ids, call the desk's function for each, announce what comes next.

Each is idempotent (the function re-reads its row and does nothing to finished work), so
a task run twice — a redelivery after a worker was killed, a sweep — changes nothing.
A task carries a batch of ids (consultant/dispatch.py says why); what it announces goes
out once the whole batch is done, every row of it already committed.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.exc import OperationalError

from consultant import dispatch, webhooks
from consultant.codes.lookup import look_up_codes, tickets_without_codes
from consultant.config import get_settings
from consultant.escalation import sweep as escalation_sweep
from consultant.inbound import due_inbound_ids
from consultant.models import utcnow
from consultant.outbox import due_outbox_ids, send_outbox_emails
from consultant.pipeline import process_inbound_emails
from consultant.reports.rollups import refresh_now
from consultant.routing.assign import route
from workers.app import app

RETRY = {
    "autoretry_for": (OperationalError,),  # the database was unreachable for a moment
    "retry_backoff": True,
    "retry_jitter": True,
    "max_retries": 8,
}


@app.task(name=dispatch.PROCESS_INBOUND, **RETRY)
def process_inbound_task(inbound_ids: list[int]) -> list[str]:
    outcomes = process_inbound_emails(inbound_ids)
    for outcome in outcomes:
        if outcome.retry_at is not None:
            dispatch.inbound_stored([outcome.inbound_id], not_before=outcome.retry_at)
    dispatch.outbox_queued([row_id for outcome in outcomes for row_id in outcome.outbox_ids])
    dispatch.codes_needed([o.ticket_id for o in outcomes if o.ticket_id is not None])
    return [outcome.status for outcome in outcomes]


@app.task(name=dispatch.SEND_OUTBOX, **RETRY)
def send_outbox_task(outbox_ids: list[int]) -> list[str]:
    results = send_outbox_emails(outbox_ids=outbox_ids)
    for result in results:
        if result.retry_at is not None:
            dispatch.outbox_queued([result.outbox_id], not_before=result.retry_at)
    return [result.status for result in results]


@app.task(name="workers.tasks.sweep")
def sweep() -> None:
    """Announce again every row that has waited a whole sweep interval: its task was lost."""
    cutoff = utcnow() - timedelta(seconds=get_settings().sweep_seconds)
    dispatch.inbound_stored(due_inbound_ids(due_before=cutoff))
    dispatch.outbox_queued(due_outbox_ids(due_before=cutoff))
    dispatch.codes_needed(tickets_without_codes(due_before=cutoff))


@app.task(name=dispatch.LOOK_UP_CODES, **RETRY)
def look_up_codes_task(ticket_ids: list[int]) -> int:
    """Look the codes up, then route: the specialty they give decides who gets the case."""
    stored = look_up_codes(ticket_ids)
    route(ticket_ids)
    return stored


@app.task(name="workers.tasks.escalate", **RETRY)
def escalate() -> dict[str, int]:
    """The minute sweep (consultant/escalation.py); the notices it queues are sent."""
    report = escalation_sweep()
    return {"warned": report.warned, "breached": report.breached, "routed": report.routed}


@app.task(name="workers.tasks.deliver_webhooks", **RETRY)
def deliver_webhooks() -> dict[str, int]:
    """New events to each webhook, and the deliveries due again (consultant/webhooks.py)."""
    report = webhooks.run_once()
    return {"queued": report.queued, "sent": report.sent, "failed": report.failed}


@app.task(name="workers.tasks.refresh_reports", **RETRY)
def refresh_reports() -> dict[str, float]:
    """The reports' rollups brought up to date (consultant/reports/rollups.py)."""
    done = refresh_now()
    return {"cases": done.cases, "days": done.days, "seconds": done.seconds}
