"""The Celery app: broker from the desk's settings, three queues, JSON only.

Queues scale apart: ``intake`` parses and tickets, ``codes`` looks codes up, ``mail``
talks to the relay. Tasks carry ids only and are acknowledged after they finish
(``acks_late``), so a worker killed mid-task leaves its task to another.

A worker takes its next task from the first of its queues that holds one, in the order
of :data:`QUEUES` (or of ``-Q``): a composed email goes out first, a new email is
ticketed next, and codes are looked up when neither waits. In a burst the customers hear
back before the coders' lookups are done, which nobody reads that soon; a desk that runs
at capacity for long gives the ``codes`` queue a worker of its own.
"""

from __future__ import annotations

import logging

from celery import Celery
from celery.signals import worker_process_init
from kombu import Queue
from sqlalchemy.exc import SQLAlchemyError

from consultant.codes.store import warm_catalog
from consultant.config import get_settings

log = logging.getLogger(__name__)

QUEUES = ("mail", "intake", "codes")  # most urgent first


def make_app() -> Celery:
    settings = get_settings()
    app = Celery("consultant", broker=settings.broker_url or "memory://", include=["workers.tasks"])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=4,
        task_queues=[Queue(name) for name in QUEUES],
        # kombu's Redis transport asks the queues in this order every time, instead of
        # rotating the one it last took from to the back ("round_robin").
        broker_transport_options={"queue_order_strategy": "priority"},
        task_default_queue="intake",
        task_routes={
            "workers.tasks.process_inbound": {"queue": "intake"},
            "workers.tasks.sweep": {"queue": "intake"},
            "workers.tasks.escalate": {"queue": "intake"},
            "workers.tasks.send_outbox": {"queue": "mail"},
            "workers.tasks.look_up_codes": {"queue": "codes"},
            "workers.tasks.deliver_webhooks": {"queue": "mail"},
            "workers.tasks.refresh_reports": {"queue": "codes"},
        },
        beat_schedule={
            "sweep": {"task": "workers.tasks.sweep", "schedule": settings.sweep_seconds},
            "escalate": {
                "task": "workers.tasks.escalate",
                "schedule": settings.escalation_seconds,
                "options": {"expires": settings.escalation_seconds},  # a late one is skipped
            },
            "webhooks": {
                "task": "workers.tasks.deliver_webhooks",
                "schedule": settings.webhook_seconds,
                "options": {"expires": settings.webhook_seconds},
            },
            "reports": {
                "task": "workers.tasks.refresh_reports",
                "schedule": settings.report_seconds,
                "options": {"expires": settings.report_seconds},
            },
        },
        broker_connection_retry_on_startup=True,
    )
    return app


app = make_app()


@worker_process_init.connect
def read_catalog_ahead(**_: object) -> None:
    """Each worker process reads the code catalog as it starts, not in its first task."""
    try:
        warm_catalog()
    except SQLAlchemyError as exc:  # no database yet: the first lookup reads it instead
        log.warning("code catalog not read ahead: %s", exc)
