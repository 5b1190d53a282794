"""Running intake's stages over a batch of stored emails, in one transaction.

:func:`process_inbound_emails` is the worker's part (storing is consultant/inbound.py's):
the stages of consultant/intake.py, in order, each over every email of the batch before
the next starts. Run that way, a batch costs a handful of statements whatever its size,
where a dozen statements per email used to be most of what processing cost.

When a stage raises, everything the batch did is rolled back and each of its emails is
processed again on its own (:func:`process_inbound`), so that only the email at fault is
marked ``failed``, with the stage's name and the error; the raw bytes stay, so nothing is
lost. After a few attempts it is ``quarantined`` (Mailman's shunt queue).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from consultant.acknowledgements import reply
from consultant.charges import charge
from consultant.db import session_scope
from consultant.inbound import record_failure
from consultant.intake import (
    Batch,
    Intake,
    Stage,
    check_size,
    classify,
    defer_answers_to_batch_mates,
    find_accounts,
    finish,
    note_bounce,
    number_tickets,
    open_ticket,
    parse,
    record_message,
    start_sla_clocks,
    thread,
    verify_sender,
    write_messages,
)
from consultant.models import InboundEmail, InboundStatus

log = logging.getLogger(__name__)

# In this order; each stage runs over every email of the batch before the next starts.
STAGES: tuple[Stage, ...] = (
    check_size,
    parse,
    classify,
    defer_answers_to_batch_mates,
    thread,
    note_bounce,
    find_accounts,
    verify_sender,
    open_ticket,
    number_tickets,
    charge,
    start_sla_clocks,
    record_message,
    write_messages,
    reply,
    finish,
)


@dataclass(frozen=True)
class Outcome:
    inbound_id: int
    status: str
    ticket_id: int | None = None
    outbox_ids: tuple[int, ...] = ()
    retry_at: datetime | None = None  # a failed email's next attempt


class StageFailed(Exception):
    """A stage raised; ``stage`` is its name, the error is the cause."""

    def __init__(self, stage: str) -> None:
        super().__init__(stage)
        self.stage = stage


def process_inbound_emails(inbound_ids: Sequence[int]) -> list[Outcome]:
    """Process a batch of stored emails together; one outcome per id, in the order given.

    Should any stage fail, the batch is rolled back and its emails are processed one by
    one instead, so that the rest go through and the one at fault is recorded. An email
    that answers another of the batch is processed after the batch, on its own.
    """
    if len(inbound_ids) < 2:
        return [process_inbound(inbound_id=inbound_id) for inbound_id in inbound_ids]
    try:
        outcomes, deferred = _process_together(inbound_ids)
    except StageFailed as exc:
        log.warning("a batch of %s failed at %s; processing each alone", len(inbound_ids), exc)
        return [process_inbound(inbound_id=inbound_id) for inbound_id in inbound_ids]
    for inbound_id in deferred:
        outcomes[inbound_id] = process_inbound(inbound_id=inbound_id)
    return [outcomes[inbound_id] for inbound_id in inbound_ids]


def process_inbound(*, inbound_id: int) -> Outcome:
    """Run every stage for one stored email. Running it again changes nothing."""
    try:
        outcomes, _ = _process_together([inbound_id])
    except StageFailed as exc:
        log.exception("inbound %s failed at stage %s", inbound_id, exc.stage)
        error = exc.__cause__ if isinstance(exc.__cause__, Exception) else exc
        status, retry_at = record_failure(inbound_id, stage=exc.stage, error=error)
        return Outcome(inbound_id, status, retry_at=retry_at)
    return outcomes[inbound_id]


def _process_together(inbound_ids: Sequence[int]) -> tuple[dict[int, Outcome], list[int]]:
    """The stages over these emails, in one transaction: their outcomes, by id, and the
    ids of emails deferred until this batch is committed."""
    stage = "load"
    try:
        with session_scope() as session:
            batch, outcomes = _load(session, inbound_ids)
            for step in STAGES:
                stage = step.__name__
                if batch:
                    step(batch)
    except Exception as exc:
        raise StageFailed(stage) from exc
    for intake in batch:
        if not intake.deferred:
            outcomes[intake.inbound.id] = _outcome(intake)  # type: ignore[index]
    return outcomes, [i.inbound.id for i in batch if i.deferred]  # type: ignore[misc]


def _load(session: Session, inbound_ids: Sequence[int]) -> tuple[Batch, dict[int, Outcome]]:
    """The emails still to process, locked (in id order) so no other worker runs them
    meanwhile; the outcome of each one that is missing or already done."""
    query = (
        select(InboundEmail)
        .where(col(InboundEmail.id).in_(inbound_ids))
        .order_by(col(InboundEmail.id))
        .with_for_update()
    )
    found = {inbound.id: inbound for inbound in session.exec(query)}
    batch: Batch = []
    outcomes: dict[int, Outcome] = {}
    for inbound_id in inbound_ids:
        inbound = found.get(inbound_id)
        if inbound is None:
            outcomes[inbound_id] = Outcome(inbound_id, "missing")
        elif inbound.status not in (InboundStatus.RECEIVED, InboundStatus.FAILED):
            outcomes[inbound_id] = Outcome(inbound_id, inbound.status, inbound.ticket_id)
        else:
            batch.append(Intake(session=session, inbound=inbound))
    return batch, outcomes


def _outcome(intake: Intake) -> Outcome:
    return Outcome(
        intake.inbound.id,  # type: ignore[arg-type]
        InboundStatus.PROCESSED,
        intake.ticket.id if intake.ticket else None,
        tuple(intake.outbox_ids),
    )
