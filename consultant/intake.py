"""A stored email → a ticket, in small stages.

:func:`process_inbound` is the worker's part (storing is consultant/inbound.py's): the
stages below, run in order inside one transaction. When a stage
raises, everything it did is rolled back and the email is marked ``failed`` with the
stage's name and the error; the raw bytes stay, so nothing is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import compat32

from sqlmodel import Session, col, select

from consultant import quota, replies
from consultant.config import get_settings
from consultant.db import session_scope
from consultant.inbound import record_failure
from consultant.mail.autoreply import NORMAL, Classification
from consultant.mail.autoreply import classify as classify_sender
from consultant.mail.parse import ParsedEmail, parse_email
from consultant.models import (
    Account,
    Attachment,
    Event,
    InboundEmail,
    InboundStatus,
    Message,
    OutboxEmail,
    Plan,
    Ticket,
    TicketStatus,
    utcnow,
)
from consultant.threads import find_thread
from consultant.trust import Verdict, judge_from_address

log = logging.getLogger(__name__)


@dataclass
class Intake:
    """What the stages know about one email so far."""

    session: Session
    inbound: InboundEmail
    parsed: ParsedEmail | None = None
    classification: Classification = NORMAL  # a person, or which kind of machine
    ticket: Ticket | None = None
    is_new_ticket: bool = False
    account: Account | None = None
    # Held here, the plan stays in the session's identity map (which keeps only weak
    # references), so quota's lookups of it cost no further query.
    plan: Plan | None = None
    rejected: bool = False  # an unknown sender, and the desk takes registered ones only
    too_large: bool = False  # over CONSULTANT_MAX_MESSAGE_BYTES: kept, but not a case
    foreign_reference: int | None = None  # a ticket number in the subject not the sender's
    trust: Verdict | None = None  # None: the From address is trusted as it stands
    message: Message | None = None
    outbox: list[OutboxEmail] = field(default_factory=list)

    @property
    def email(self) -> ParsedEmail:
        assert self.parsed is not None, "the parse stage runs first"
        return self.parsed

    @property
    def automatic(self) -> Classification | None:
        """What kind of machine wrote the email, ``None`` for a person's email."""
        return self.classification if self.classification.is_automatic else None

    @property
    def is_new_case(self) -> bool:
        """A person's email that answers no ticket: it will open one (or be refused)."""
        return (
            self.ticket is None
            and not self.automatic
            and not self.too_large
            and bool(self.email.sender)
        )


@dataclass(frozen=True)
class Outcome:
    inbound_id: int
    status: str
    ticket_id: int | None = None
    outbox_ids: tuple[int, ...] = ()
    retry_at: datetime | None = None  # a failed email's next attempt


def parse(intake: Intake) -> None:
    intake.parsed = parse_email(intake.inbound.raw, headers_only=intake.too_large)


def classify(intake: Intake) -> None:
    intake.classification = classify_sender(
        intake.email.headers,
        sender=intake.email.sender,
        envelope_from=intake.inbound.envelope_from,
        own_domain=get_settings().desk_domain,
    )


def check_size(intake: Intake) -> None:
    """An email the gateway would refuse (``552``) but a mailbox delivered anyway."""
    intake.too_large = intake.inbound.size > get_settings().max_message_bytes


def thread(intake: Intake) -> None:
    """Join the ticket this email answers (consultant/threads.py says how)."""
    match = find_thread(
        intake.session,
        referenced=_referenced_ids(intake),
        subject=intake.email.subject,
        sender=intake.email.sender,
    )
    intake.foreign_reference = match.foreign_reference
    if match.ticket_id is not None:
        intake.ticket = intake.session.get(Ticket, match.ticket_id)
        if intake.too_large:  # joins its case whatever its size, so read it whole after all
            intake.parsed = parse_email(intake.inbound.raw)


def _referenced_ids(intake: Intake) -> list[str]:
    """The Message-IDs this email answers; for a bounce, also those of the email it returns."""
    email = intake.email
    wanted = [*email.references, email.in_reply_to or ""]
    if intake.automatic is not None and intake.automatic.kind == "bounce":
        wanted.extend(email.returned_message_ids)
    return wanted


def note_bounce(intake: Intake) -> None:
    """A bounce of one of our emails: no more automatic mail to that address for a while."""
    if intake.automatic is None or intake.automatic.kind != "bounce":
        return
    returned = [m for m in _referenced_ids(intake) if m]
    bounced = intake.session.exec(
        select(OutboxEmail).where(col(OutboxEmail.message_id).in_(returned))
    ).all()
    for email in bounced:
        email.bounced_at = utcnow()
        intake.session.add(email)
        _record_event(intake, "mail.bounced", f"{email.kind} to {email.recipient}")


def find_account(intake: Intake) -> None:
    """Whose case is it? Unknown senders become guests, or are refused, as configured."""
    if not intake.is_new_case:
        return
    session, sender = intake.session, intake.email.sender
    intake.account = quota.account_for_sender(session, sender)
    if intake.account is None:
        if get_settings().unknown_senders == "reject":
            intake.rejected = True
        else:
            intake.account = quota.guest_account(session, sender)
    if intake.account is not None:
        # Lock now, before anything references the account, and count under the lock.
        intake.account = quota.lock_account(session, intake.account)
        intake.plan = session.get(Plan, intake.account.plan_id)


def verify_sender(intake: Intake) -> None:
    """With CONSULTANT_AUTHSERV_ID set, charge nobody on an unauthenticated From."""
    authserv_id = get_settings().authserv_id
    if not authserv_id or not intake.is_new_case or intake.rejected:
        return
    headers = BytesHeaderParser(policy=compat32).parsebytes(intake.inbound.raw, headersonly=True)
    intake.trust = judge_from_address(
        [str(value) for value in headers.get_all("Authentication-Results", [])],
        authserv_id=authserv_id,
        from_domain=intake.email.sender.rpartition("@")[2],
    )


def open_ticket(intake: Intake) -> None:
    """A new ticket for a person's email that answers none; machine mail makes none."""
    if intake.ticket is not None:
        if not intake.automatic and intake.ticket.status == TicketStatus.SOLVED:
            intake.ticket.status = TicketStatus.OPEN  # the customer came back
        intake.ticket.updated_at = utcnow()
        return
    if intake.automatic or intake.rejected or intake.too_large:
        return
    email = intake.email
    held = intake.trust is not None and not intake.trust.trusted
    intake.ticket = Ticket(
        subject=email.subject or "(no subject)",
        requester=email.sender or (intake.inbound.envelope_from or ""),
        requester_name=email.sender_name,
        account_id=intake.account.id if intake.account else None,
        status=TicketStatus.HELD_UNVERIFIED if held else TicketStatus.NEW,
    )
    if intake.plan is not None and not held:
        # Due by the plan's SLA; charge() clears it if the case is held for quota.
        intake.ticket.due_at = intake.ticket.created_at + timedelta(hours=intake.plan.sla_hours)
    intake.is_new_ticket = True
    intake.session.add(intake.ticket)
    intake.session.flush()
    _record_event(intake, "ticket.created", intake.ticket.reference)
    if intake.foreign_reference is not None:
        _record_event(
            intake,
            "thread.foreign_reference",
            f"the subject names CC-{intake.foreign_reference}, a case this sender is not part of",
        )
    if held and intake.trust is not None:
        _record_event(intake, "sender.unverified", intake.trust.reason)


def charge(intake: Intake) -> None:
    """Debit the new case from the account's quota, or hold it when none is left."""
    ticket, account = intake.ticket, intake.account
    if not intake.is_new_ticket:
        charge_follow_up(intake)
        return
    if ticket is None or account is None:
        return
    if ticket.status != TicketStatus.NEW:
        return  # held unverified: nothing is charged
    if not quota.debit_case(intake.session, account=account, ticket=ticket):
        ticket.status = TicketStatus.HELD_QUOTA
        ticket.due_at = None  # no clock runs on a case the customer has not been charged for
        intake.session.add(ticket)
        _record_event(intake, "quota.held", f"{account.address} has no cases left this period")


def charge_follow_up(intake: Intake) -> None:
    """On plans where follow-ups count, a customer's email in an open case is a debit.

    It still joins its case when the quota is used up — a thread is never split — and
    the overrun is recorded for the admin.
    """
    ticket = intake.ticket
    if ticket is None or ticket.account_id is None or intake.automatic:
        return
    account = intake.session.get(Account, ticket.account_id)
    plan = intake.session.get(Plan, account.plan_id) if account else None
    if account is None or plan is None or not plan.followups_count:
        return
    key = f"debit:inbound:{intake.inbound.id}"
    if not quota.debit_case(intake.session, account=account, ticket=ticket, key=key):
        _record_event(intake, "quota.follow_up_over", f"{account.address} has no cases left")


def record_message(intake: Intake) -> None:
    if intake.ticket is None:
        return
    email = intake.email
    intake.message = Message(
        ticket_id=intake.ticket.id,
        inbound_id=intake.inbound.id,
        direction="in",
        message_id=email.message_id,
        sender=email.sender,
        subject=email.subject,
        body_text=email.text,
        body_html=email.html,
        is_automatic=intake.automatic is not None,
    )
    intake.session.add(intake.message)
    intake.session.flush()
    for part in email.attachments:
        intake.session.add(
            Attachment(
                message_id=intake.message.id,
                filename=part.filename,
                content_type=part.content_type,
                size=len(part.content),
                sha256=part.sha256,
                content=part.content,
            )
        )


def reply(intake: Intake) -> None:
    """The one automatic answer a new case gets, if any; never to a machine (RFC 3834)."""
    if intake.automatic or not intake.email.sender:
        if intake.is_new_ticket:
            _record_event(intake, "reply.skipped", "no person's address to answer")
        return
    if intake.rejected:
        _queue(intake, "not_registered", f"not_registered:{intake.inbound.id}", {})
        return
    if intake.too_large and intake.ticket is None:
        limit = human_size(get_settings().max_message_bytes)
        _queue(intake, "too_large", f"too_large:{intake.inbound.id}", {"limit": limit})
        return
    ticket, account = intake.ticket, intake.account
    plan = intake.plan
    if not intake.is_new_ticket or ticket is None or account is None or plan is None:
        return
    resets_on = quota.period_resets_at(account, ticket.created_at)
    if ticket.status == TicketStatus.NEW:
        context = {
            "sla_hours": plan.sla_hours,
            "remaining": quota.remaining(intake.session, account),
            "resets_on": f"{resets_on:%B %-d, %Y}",
        }
        _queue(intake, "ack", f"ack:{ticket.id}", context)
    elif ticket.status == TicketStatus.HELD_QUOTA:
        context = {
            "plan": plan.name,
            "limit": plan.cases_per_period,
            "resets_on": f"{resets_on:%B %-d, %Y}",
        }
        _queue(intake, "over_quota", f"over_quota:{ticket.id}", context)
    # held_unverified: the From address may be forged, so its owner hears nothing.


def human_size(size: int) -> str:
    """``31457280`` → ``30 MB``: what a customer reads in the too-large email."""
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.3g} KB"
    return f"{size / (1024 * 1024):.3g} MB"


def _queue(intake: Intake, kind: str, key: str, context: dict[str, object]) -> None:
    outgoing = replies.queue_automatic(
        intake.session,
        kind=kind,
        key=key,
        ticket=intake.ticket,
        answering=intake.email,
        context={"name": intake.email.sender_name, **context},
    )
    if outgoing is not None:
        intake.outbox.append(outgoing)


STAGES: tuple[Callable[[Intake], None], ...] = (
    check_size,
    parse,
    classify,
    thread,
    note_bounce,
    find_account,
    verify_sender,
    open_ticket,
    charge,
    record_message,
    reply,
)


def process_inbound(*, inbound_id: int) -> Outcome:
    """Run every stage for one stored email. Running it again changes nothing."""
    stage = "load"
    try:
        with session_scope() as session:
            inbound = session.get(InboundEmail, inbound_id, with_for_update=True)
            if inbound is None:
                return Outcome(inbound_id, "missing")
            if inbound.status not in (InboundStatus.RECEIVED, InboundStatus.FAILED):
                return Outcome(inbound_id, inbound.status, inbound.ticket_id)
            intake = Intake(session=session, inbound=inbound)
            for step in STAGES:
                stage = step.__name__
                step(intake)
            _mark_processed(intake)
            return Outcome(
                inbound_id,
                InboundStatus.PROCESSED,
                intake.ticket.id if intake.ticket else None,
                tuple(row.id for row in intake.outbox if row.id is not None),
            )
    except Exception as exc:
        log.exception("inbound %s failed at stage %s", inbound_id, stage)
        status, retry_at = record_failure(inbound_id, stage=stage, error=exc)
        return Outcome(inbound_id, status, retry_at=retry_at)


def _mark_processed(intake: Intake) -> None:
    inbound = intake.inbound
    inbound.status = InboundStatus.PROCESSED
    inbound.stage = f"automatic: {intake.automatic}" if intake.automatic else None
    inbound.ticket_id = intake.ticket.id if intake.ticket else None
    inbound.processed_at = utcnow()
    inbound.attempts += 1
    intake.session.add(inbound)


def _record_event(intake: Intake, kind: str, detail: str) -> None:
    intake.session.add(
        Event(
            ticket_id=intake.ticket.id if intake.ticket else None,
            inbound_id=intake.inbound.id,
            actor="desk",
            kind=kind,
            detail=detail,
        )
    )
