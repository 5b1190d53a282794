"""Webhooks: telling another system that a case arrived, was answered or broke its SLA.

Deliveries are made from the events table, which every part of the desk already writes:
each run takes each webhook's events after its cursor (``last_event_id``) into delivery
rows, in the same transaction as the cursor moves, then posts what is due. So an event
is delivered once per webhook however many workers run, and a receiver that is down gets
it later: a failed post is tried again with backoff (:func:`consultant.retry.backoff`)
up to :data:`MAX_ATTEMPTS` times over about a day, then marked ``failed`` with the
reason, never retried forever.

Each post is JSON, signed as ``X-CaseConsultant-Signature: t=<unix time>,v1=<hex>``: the
HMAC-SHA256 of ``"<t>.<body>"`` with the webhook's secret, so the receiver can check
who sent it and refuse an old one replayed. The payload names the case and the event;
the customer's text is in it only for a webhook the admin made ``--with-body``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import update
from sqlmodel import Session, col, func, select

from consultant.config import get_settings
from consultant.db import session_scope
from consultant.models import Event, Message, Ticket, Webhook, WebhookDelivery, utcnow
from consultant.retry import backoff

log = logging.getLogger(__name__)

EVENTS = ("ticket.created", "ticket.answered", "sla.breached")
MAX_ATTEMPTS = 10
TIMEOUT_SECONDS = 10  # for connecting and for the answer: a slow receiver waits its turn
LEASE = timedelta(minutes=2)  # a post claimed and not finished in this long is tried again
BATCH = 50
EVENTS_PER_RUN = 5000  # a long backlog is caught up over several runs


class WebhookError(ValueError):
    """A webhook cannot be added or found as asked; the message says why."""


@dataclass
class RunReport:
    queued: int = 0
    sent: int = 0
    failed: int = 0  # tried and to be tried again, or given up on


# --- admin ------------------------------------------------------------------------------


def add_webhook(
    session: Session, *, url: str, events: list[str], include_body: bool, by: str, now: datetime
) -> Webhook:
    """A new webhook, told of events from now on (not of everything that went before)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise WebhookError(f"not a web address: {url!r} (https://…)")
    unknown = sorted(set(events) - set(EVENTS))
    if unknown or not events:
        raise WebhookError(f"events are {', '.join(EVENTS)} (got {', '.join(unknown) or 'none'})")
    newest = session.exec(select(func.max(Event.id))).one() or 0
    webhook = Webhook(
        url=url,
        secret=secrets.token_urlsafe(32),
        events=",".join(sorted(set(events))),
        include_body=include_body,
        last_event_id=newest,
        created_by=by,
        created_at=now,
    )
    session.add(webhook)
    session.flush()
    return webhook


def remove_webhook(session: Session, *, webhook_id: int) -> None:
    webhook = session.get(Webhook, webhook_id)
    if webhook is None:
        raise WebhookError(f"no webhook {webhook_id} (see consultant webhooks list)")
    webhook.active = False  # its deliveries stay as history
    session.add(webhook)


def list_webhooks(session: Session) -> list[dict[str, Any]]:
    rows = []
    for webhook in session.exec(select(Webhook).order_by(col(Webhook.id))):
        counts = dict(
            session.exec(
                select(WebhookDelivery.status, func.count())
                .where(WebhookDelivery.webhook_id == webhook.id)
                .group_by(col(WebhookDelivery.status))
            ).all()
        )
        last_error = session.exec(
            select(WebhookDelivery.last_error)
            .where(WebhookDelivery.webhook_id == webhook.id, WebhookDelivery.last_error != "")
            .order_by(col(WebhookDelivery.id).desc())
        ).first()
        rows.append(
            {
                "id": webhook.id,
                "url": webhook.url,
                "events": webhook.events.split(","),
                "include_body": webhook.include_body,
                "active": webhook.active,
                "deliveries": counts,
                "last_error": last_error or "",
            }
        )
    return rows


# --- delivering -------------------------------------------------------------------------


def run_once(*, now: datetime | None = None) -> RunReport:
    """Queue the new events' deliveries, then post every delivery that is due."""
    now = now or utcnow()
    report = RunReport(queued=_queue_new_events())
    for delivery_id in _due(now):
        if not _claim(delivery_id, now):
            continue  # another worker took it
        if _post(delivery_id, now):
            report.sent += 1
        else:
            report.failed += 1
    return report


def _queue_new_events() -> int:
    queued = 0
    with session_scope() as session:
        active = select(Webhook).where(col(Webhook.active).is_(True))
        query = active.with_for_update(skip_locked=True)  # one worker moves each cursor
        for webhook in session.exec(query):
            events = session.exec(
                select(Event.id, Event.kind, Event.created_at)
                .where(col(Event.id) > webhook.last_event_id)
                .order_by(col(Event.id))
                .limit(EVENTS_PER_RUN)
            ).all()
            wanted = set(webhook.events.split(","))
            for event_id, kind, at in events:
                if kind in wanted:
                    session.add(
                        WebhookDelivery(
                            webhook_id=webhook.id,  # type: ignore[arg-type]
                            event_id=event_id,  # type: ignore[arg-type]
                            next_attempt_at=at,
                        )
                    )
                    queued += 1
            if events:
                webhook.last_event_id = events[-1][0]  # type: ignore[assignment]
                session.add(webhook)
    return queued


def _due(now: datetime) -> list[int]:
    with session_scope() as session:
        query = (
            select(WebhookDelivery.id)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
            .order_by(col(WebhookDelivery.id))
            .limit(BATCH)
        )
        return [row for row in session.exec(query) if row is not None]


def _claim(delivery_id: int, now: datetime) -> bool:
    """Take the delivery for this worker for :data:`LEASE` (one worker posts it)."""
    with session_scope() as session:
        claimed = session.exec(
            update(WebhookDelivery)  # type: ignore[call-overload]
            .where(
                col(WebhookDelivery.id) == delivery_id,
                col(WebhookDelivery.status) == "pending",
                col(WebhookDelivery.next_attempt_at) <= now,
            )
            .values(next_attempt_at=now + LEASE, attempts=WebhookDelivery.attempts + 1)
        )
        return bool(claimed.rowcount)


def _post(delivery_id: int, now: datetime) -> bool:
    with session_scope() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        assert delivery is not None
        webhook = session.get(Webhook, delivery.webhook_id)
        event = session.get(Event, delivery.event_id)
        assert webhook is not None and event is not None
        body = json.dumps(_payload(session, delivery, event, webhook)).encode()
        url, secret = webhook.url, webhook.secret
    problem = _send(url, secret, body, delivery_id=delivery_id, kind=event.kind, now=now)
    with session_scope() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        assert delivery is not None
        if problem is None:
            delivery.status, delivery.delivered_at, delivery.last_error = "sent", now, ""
        else:
            delivery.last_error = problem[:500]
            if delivery.attempts >= MAX_ATTEMPTS:
                delivery.status = "failed"
                log.warning(
                    "webhook delivery %s: given up after %s tries", delivery_id, MAX_ATTEMPTS
                )
            else:
                delivery.next_attempt_at = now + backoff(delivery.attempts, base=30, cap=3600 * 4)
        session.add(delivery)
    return problem is None


def _payload(
    session: Session, delivery: WebhookDelivery, event: Event, webhook: Webhook
) -> dict[str, Any]:
    ticket = session.get(Ticket, event.ticket_id) if event.ticket_id else None
    payload: dict[str, Any] = {
        "delivery": delivery.id,
        "event": event.kind,
        "occurred_at": event.created_at.isoformat(),
        "ticket": None,
    }
    if ticket is not None:
        payload["ticket"] = {
            "number": ticket.id,
            "reference": ticket.reference,
            "status": ticket.status,
            "specialty": ticket.specialty,
            "url": f"{get_settings().web_url.rstrip('/')}/tickets/{ticket.id}",
        }
        if webhook.include_body:
            payload["ticket"]["subject"] = ticket.subject
            payload["ticket"]["last_message"] = _last_message(session, ticket)
    return payload


def _last_message(session: Session, ticket: Ticket) -> str:
    query = select(Message.body_text).where(Message.ticket_id == ticket.id)
    return session.exec(query.order_by(col(Message.id).desc())).first() or ""


def signature(secret: str, body: bytes, *, timestamp: int) -> str:
    """The signature header's value: what a receiver recomputes to trust the post."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _send(
    url: str, secret: str, body: bytes, *, delivery_id: int, kind: str, now: datetime
) -> str | None:
    """Post one delivery: ``None`` when the receiver took it (2xx), else why not."""
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "CaseConsultant-Webhooks",
            "X-CaseConsultant-Event": kind,
            "X-CaseConsultant-Delivery": str(delivery_id),
            "X-CaseConsultant-Signature": signature(secret, body, timestamp=int(now.timestamp())),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return None if 200 <= response.status < 300 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
