"""The automatic answer each new case gets: the intake stage that queues acknowledgements.

Which email a stored email gets is decided per email (an acknowledgement, the
over-quota notice, "not registered", "too large", or nothing for a machine's email);
the batch's answers are then composed (consultant/replies.py) against the recipients'
caps, read once, and inserted together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from consultant import quota, replies, sla
from consultant.config import get_settings
from consultant.db import ids_by_unique, insert_rows
from consultant.intake import Batch, Intake, record_event
from consultant.models import OutboxEmail, TicketStatus

_OUTBOX = OutboxEmail.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Answer:
    """An automatic email one stored email is to get: which template, why, with what."""

    kind: str
    key: str  # once per cause: the outbox refuses a second email with the same key
    context: dict[str, object]


def reply(batch: Batch) -> None:
    """The one automatic answer a new case gets, if any; never to a machine (RFC 3834).

    What each email gets is decided first; the recipients' caps are then read for the
    whole batch in one query and kept up to date as the batch's answers are queued.
    """
    if not batch:
        return
    session = batch[0].session
    hours_word = hours_kind(session)
    answers = [
        (i, answer) for i in batch if not i.deferred and (answer := _answer_for(i, hours_word))
    ]
    if not answers:
        return
    caps = replies.automatic_caps(
        session,
        recipients=[intake.email.sender for intake, _ in answers],
        keys=[answer.key for _, answer in answers],
    )
    queued: list[tuple[Intake, dict[str, object]]] = []
    for intake, answer in answers:
        row = replies.automatic_email(
            session,
            kind=answer.kind,
            key=answer.key,
            ticket=intake.ticket,
            answering=intake.email,
            context={"name": intake.email.sender_name, **answer.context},
            caps=caps,
        )
        if row is not None:
            queued.append((intake, row))
    rows = [row for _, row in queued]
    insert_rows(session, _OUTBOX, rows)
    outbox_ids = ids_by_unique(session, _OUTBOX.c.key, [row["key"] for row in rows])
    for intake, row in queued:
        intake.outbox_ids.append(outbox_ids[row["key"]])


def _answer_for(intake: Intake, hours_word: str) -> Answer | None:
    if intake.automatic:
        if intake.is_new_ticket:
            record_event(intake, "reply.skipped", "no person's address to answer")
        return None
    if intake.unanswerable is not None:
        if intake.is_new_ticket or intake.ticket is None:  # it would have had an answer
            record_event(intake, "reply.skipped", f"{intake.unanswerable}: no automatic email")
        return None
    if intake.rejected:
        return Answer("not_registered", f"not_registered:{intake.inbound.id}", {})
    if intake.too_large and intake.ticket is None:
        limit = human_size(get_settings().max_message_bytes)
        return Answer("too_large", f"too_large:{intake.inbound.id}", {"limit": limit})
    ticket, account = intake.ticket, intake.account
    plan = intake.plan
    if not intake.is_new_ticket or ticket is None or account is None or plan is None:
        return None
    resets_on = f"{quota.period_resets_at(account, ticket.created_at):%B %-d, %Y}"
    if ticket.status == TicketStatus.NEW:
        remaining = quota.remaining(intake.session, account)
        context = {
            "sla_hours": plan.sla_hours,
            "hours_kind": hours_word,
            "due": _local_time(ticket.due_at, account.timezone),
            "remaining": remaining,
            "resets_on": resets_on,
        }
        return Answer("ack", f"ack:{ticket.id}", context)
    if ticket.status == TicketStatus.HELD_QUOTA:
        context = {"plan": plan.name, "limit": plan.cases_per_period, "resets_on": resets_on}
        return Answer("over_quota", f"over_quota:{ticket.id}", context)
    return None  # held_unverified: the From address may be forged, so its owner hears nothing


def hours_kind(session: Session) -> str:
    """ "business hours" when the desk keeps hours (the clock stops at night), else "hours"."""
    return "hours" if sla.desk_schedule(session).always_open else "business hours"


def _local_time(moment: datetime | None, zone: str) -> str:
    """``Monday, December 7 at 11:00 EST``: a due time as the customer's clock shows it."""
    if moment is None:
        return ""
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local:%A, %B %-d at %H:%M} {local.tzname()}"


def human_size(size: int) -> str:
    """``31457280`` → ``30 MB``: what a customer reads in the too-large email."""
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.3g} KB"
    return f"{size / (1024 * 1024):.3g} MB"
