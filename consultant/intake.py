"""Stored emails → tickets, in small stages.

Each stage takes a batch of emails (most look at one email at a time: ``each_email`` runs
them over the batch). consultant/pipeline.py runs the stages in order inside one
transaction, each stage over every email before the next starts, so the batch's new rows
of each kind reach the database in one statement. The stage that charges quota lives in
consultant/charges.py, the one that queues the automatic answers in
consultant/acknowledgements.py. New tickets are inserted from plain rows when a stage
needs their numbers (``number_tickets``) and read back as ORM objects, which later stages
change; ledger entries, messages, events and acknowledgements are written as plain rows,
which costs a fraction of building and flushing objects.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from email.errors import HeaderParseError, NonASCIILocalPartDefect
from email.parser import BytesHeaderParser
from email.policy import SMTPUTF8, compat32

from sqlalchemy import bindparam, event, insert, update
from sqlmodel import Session, col, select

from consultant import quota, sla, states
from consultant.config import get_settings
from consultant.db import ids_by_unique, insert_rows
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
    SlaClock,
    Ticket,
    TicketStatus,
    utcnow,
)
from consultant.threads import find_thread
from consultant.trust import Verdict, judge_from_address

log = logging.getLogger(__name__)

_MESSAGES = Message.__table__  # type: ignore[attr-defined]
_ATTACHMENTS = Attachment.__table__  # type: ignore[attr-defined]
_EVENTS = Event.__table__  # type: ignore[attr-defined]
_INBOUND = InboundEmail.__table__  # type: ignore[attr-defined]
# Every email of a batch is marked in one executemany.
_MARK_PROCESSED = (
    update(_INBOUND)
    .where(_INBOUND.c.id == bindparam("inbound_id"))
    .values(
        status=InboundStatus.PROCESSED,
        stage=bindparam("new_stage"),
        ticket_id=bindparam("new_ticket_id"),
        processed_at=bindparam("done_at"),
        attempts=_INBOUND.c.attempts + 1,
    )
)


@dataclass
class Intake:
    """What the stages know about one email so far."""

    session: Session
    inbound: InboundEmail
    parsed: ParsedEmail | None = None
    classification: Classification = NORMAL  # a person, or which kind of machine
    ticket: Ticket | None = None
    account: Account | None = None
    # Held here, the plan stays in the session's identity map (which keeps only weak
    # references), so quota's lookups of it cost no further query.
    plan: Plan | None = None
    rejected: bool = False  # an unknown sender, and the desk takes registered ones only
    too_large: bool = False  # over CONSULTANT_MAX_MESSAGE_BYTES: kept, but not a case
    foreign_reference: int | None = None  # a ticket number in the subject not the sender's
    trust: Verdict | None = None  # None: the From address is trusted as it stands
    ticket_row: dict[str, object] | None = None  # the ticket this email opens, as inserted
    message_row: dict[str, object] | None = None  # inserted with the batch's others
    outbox_ids: list[int] = field(default_factory=list)  # its automatic answer, if any
    events: list[tuple[str, str]] = field(default_factory=list)  # written once all have ids
    deferred: bool = False  # answers another email of its batch: processed after it
    # Why the From field gives no address to write to (None: it does); read at parse.
    unanswerable: str | None = None

    @property
    def email(self) -> ParsedEmail:
        assert self.parsed is not None, "the parse stage runs first"
        return self.parsed

    @property
    def automatic(self) -> Classification | None:
        """What kind of machine wrote the email, ``None`` for a person's email."""
        return self.classification if self.classification.is_automatic else None

    @property
    def is_new_ticket(self) -> bool:
        """This email opened a ticket (inserted by ``number_tickets``)."""
        return self.ticket_row is not None

    @property
    def is_new_case(self) -> bool:
        """A person's email that answers no ticket: it will open one (or be refused)."""
        return (
            self.ticket is None
            and not self.automatic
            and not self.too_large
            and self.unanswerable is None
        )


Batch = list[Intake]
Stage = Callable[[Batch], None]


def each_email(step: Callable[[Intake], None]) -> Stage:
    """Most stages look at one email at a time; this runs one over the whole batch."""

    @functools.wraps(step)
    def stage(batch: Batch) -> None:
        for intake in batch:
            if not intake.deferred:
                step(intake)

    return stage


@each_email
def parse(intake: Intake) -> None:
    intake.parsed = parse_email(intake.inbound.raw, headers_only=intake.too_large)
    intake.unanswerable = unanswerable_sender(intake.parsed)


MAX_SHOWN_FROM_CHARS = 100


def unanswerable_sender(email: ParsedEmail) -> str | None:
    """Why no email can be written to this email's sender, ``None`` when one can.

    Said in words a person at the desk understands, quoting the From field: it is all
    the desk will ever know of such a sender, and nothing automatic goes to them.
    """
    if "from" not in email.headers:
        return "the email has no From field"
    shown = " ".join(email.headers["from"].split())[:MAX_SHOWN_FROM_CHARS]
    if not shown:
        return "the From field is empty"
    if not email.sender:
        return f"the From field ({shown}) holds no email address"
    if not is_mail_address(email.sender):
        return f"the From field ({shown}) holds no valid email address"
    return None


def is_mail_address(address: str) -> bool:
    """Is ``address`` one addr-spec mail can be sent to (RFC 5322 section 3.4.1), with
    UTF-8 allowed (RFC 6531: ``jörg@example.de`` is a customer's address)?

    The email package's address parser judges it, rather than a pattern of our own;
    its complaint about a non-ASCII local part is RFC 6531's point, not a fault.
    """
    if not address or "\r" in address or "\n" in address:
        return False
    try:
        field = SMTPUTF8.header_factory("To", address)
    except (HeaderParseError, LookupError, ValueError):  # the parser gives up on some
        return False
    faults = [d for d in field.defects if not isinstance(d, NonASCIILocalPartDefect)]
    if faults or len(field.addresses) != 1:
        return False
    [parsed] = field.addresses
    return bool(parsed.username) and bool(parsed.domain)


@each_email
def classify(intake: Intake) -> None:
    intake.classification = classify_sender(
        intake.email.headers,
        sender=intake.email.sender,
        envelope_from=intake.inbound.envelope_from,
        own_domain=get_settings().desk_domain,
    )


@each_email
def check_size(intake: Intake) -> None:
    """An email the gateway would refuse (``552``) but a mailbox delivered anyway."""
    intake.too_large = intake.inbound.size > get_settings().max_message_bytes


def defer_answers_to_batch_mates(batch: Batch) -> None:
    """A quick follow-up to an email of the same batch ("forgot the attachment") must join
    that email's ticket, which does not exist until the batch commits: it waits for it."""
    earlier: set[str] = set()
    for intake in batch:
        answered = {intake.email.in_reply_to or "", *intake.email.references}
        intake.deferred = not answered.isdisjoint(earlier)
        earlier.add(intake.email.message_id)


@each_email
def thread(intake: Intake) -> None:
    """Join the ticket this email answers (consultant/threads.py says how)."""
    match = find_thread(
        intake.session,
        referenced=_referenced_ids(intake),
        subject=intake.email.subject,
        sender=intake.email.sender,
    )
    intake.foreign_reference = match.foreign_reference
    if match.ticket_id is None:
        return
    ticket = intake.session.get(Ticket, match.ticket_id)
    if ticket is not None and ticket.status == TicketStatus.CLOSED and not intake.automatic:
        # A closed case is final: the customer's new question is a new case.
        record_event(intake, "thread.closed_case", f"follows up {ticket.reference}, closed")
        return
    intake.ticket = ticket
    if intake.too_large:  # joins its case whatever its size, so read it whole after all
        intake.parsed = parse_email(intake.inbound.raw)


def _referenced_ids(intake: Intake) -> list[str]:
    """The Message-IDs this email answers; for a bounce, also those of the email it returns."""
    email = intake.email
    wanted = [*email.references, email.in_reply_to or ""]
    if intake.automatic is not None and intake.automatic.kind == "bounce":
        wanted.extend(email.returned_message_ids)
    return wanted


@each_email
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
        record_event(intake, "mail.bounced", f"{email.kind} to {email.recipient}")


def find_accounts(batch: Batch) -> None:
    """Whose cases are they? Unknown senders become guests, or are refused, as configured.

    Every account a stage will charge — a new case's, a followed-up ticket's — is locked
    here (when its plan has a limit), together and in id order, before anything references
    it, so the counting that follows happens under the lock and two batches never wait for
    each other in a circle.
    """
    active = [intake for intake in batch if not intake.deferred]
    if not active:
        return
    session = active[0].session
    new_cases = [intake for intake in active if intake.is_new_case]
    known = quota.accounts_for_senders(session, [intake.email.sender for intake in new_cases])
    for intake in new_cases:
        intake.account = known[quota.normalise_address(intake.email.sender)]
        if intake.account is not None:
            continue
        if get_settings().unknown_senders == "reject":
            intake.rejected = True
        else:
            intake.account = quota.guest_account(session, intake.email.sender)
    followed_up = {i.ticket.account_id for i in active if i.ticket and not i.automatic}
    charged = [i.account for i in new_cases if i.account] + [
        account
        for account_id in followed_up
        if account_id is not None and (account := session.get(Account, account_id)) is not None
    ]
    # Held here, the plans stay in the session's identity map (which keeps only weak
    # references), so every later look-up of them costs no query.
    plans = {plan_id: session.get(Plan, plan_id) for plan_id in {a.plan_id for a in charged}}
    locked = quota.lock_accounts(session, charged)
    for intake in new_cases:
        if intake.account is not None:
            intake.account = locked[intake.account.id]  # type: ignore[index]
            intake.plan = plans[intake.account.plan_id]


@each_email
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


def reopen(intake: Intake, ticket: Ticket) -> None:
    """The customer wrote again in a case waiting on them or solved: a coder owes them an
    answer again, its owner if it has one (routing checks they can still take it)."""
    if ticket.status not in (TicketStatus.PENDING, TicketStatus.SOLVED):
        return
    to = TicketStatus.OPEN if ticket.coder_id is not None else TicketStatus.NEW
    states.move(
        intake.session,
        ticket,
        to,
        actor=intake.email.sender or "customer",
        now=utcnow(),
        reason="the customer replied",
    )


@each_email
def open_ticket(intake: Intake) -> None:
    """A new ticket for a person's email that answers none; machine mail makes none."""
    if intake.ticket is not None:
        if not intake.automatic:
            reopen(intake, intake.ticket)
        intake.ticket.updated_at = utcnow()
        return
    if intake.automatic or intake.rejected or intake.too_large:
        return
    email = intake.email
    held = intake.trust is not None and not intake.trust.trusted
    now = utcnow()
    intake.ticket_row = {
        "subject": email.subject or "(no subject)",
        "requester": email.sender or (intake.inbound.envelope_from or ""),
        "requester_name": email.sender_name,
        "account_id": intake.account.id if intake.account else None,
        "status": TicketStatus.HELD_UNVERIFIED if held else TicketStatus.NEW,
        "due_at": None,  # start_sla_clocks sets it, once charge() has not held the case
        "created_at": now,
        "updated_at": now,
    }
    if intake.foreign_reference is not None:
        record_event(
            intake,
            "thread.foreign_reference",
            f"the subject names CC-{intake.foreign_reference}, a case this sender is not part of",
        )
    if held and intake.trust is not None:
        record_event(intake, "sender.unverified", intake.trust.reason)


def number_tickets(batch: Batch) -> None:
    """Insert the batch's new tickets in one statement: the stages after need their numbers.

    The ORM reads them back from the statement's ``RETURNING`` as objects the later
    stages can change, at half the cost of building objects and flushing them.
    """
    opened = [i for i in batch if not i.deferred and i.ticket_row is not None]
    if not opened:
        return
    statement = insert(Ticket).returning(Ticket, sort_by_parameter_order=True)
    rows = [intake.ticket_row for intake in opened]
    inserted = batch[0].session.scalars(statement, rows).all()
    for intake, ticket in zip(opened, inserted, strict=True):
        intake.ticket = ticket


def start_sla_clocks(batch: Batch) -> None:
    """Each new case the customer was charged for gets its plan's SLA clocks, counted in
    business hours from now; a held case gets them when it is released."""
    started = [
        i
        for i in batch
        if not i.deferred
        and i.is_new_ticket
        and i.plan is not None
        and i.ticket is not None
        and i.ticket.status == TicketStatus.NEW
    ]
    if not started:
        return
    session = batch[0].session
    schedule = sla.desk_schedule(session)
    now = utcnow()
    rows = []
    for intake in started:
        assert intake.ticket is not None and intake.plan is not None
        clocks = sla.new_clocks(intake.ticket.id, intake.plan, now=now, schedule=schedule)  # type: ignore[arg-type]
        intake.ticket.due_at = min(clock["due_at"] for clock in clocks)
        session.add(intake.ticket)
        rows.extend(clocks)
    insert_rows(session, SlaClock.__table__, rows)  # type: ignore[attr-defined]


@each_email
def record_message(intake: Intake) -> None:
    if intake.ticket is None:
        return
    email = intake.email
    intake.message_row = {
        "ticket_id": intake.ticket.id,
        "inbound_id": intake.inbound.id,
        "direction": "in",
        "message_id": email.message_id,
        "sender": email.sender,
        "subject": email.subject,
        "body_text": email.text,
        "body_html": email.html,
        "is_automatic": intake.automatic is not None,
        "created_at": utcnow(),
    }


def write_messages(batch: Batch) -> None:
    """Insert the batch's messages as plain rows, then their attachments, which name
    their message by id: read back by the inbound email each came from (unique)."""
    session = batch[0].session
    written = [i for i in batch if not i.deferred and i.message_row is not None]
    insert_rows(session, _MESSAGES, [i.message_row for i in written if i.message_row])
    with_attachments = {i.inbound.id: i for i in written if i.email.attachments}
    if not with_attachments:
        return
    message_ids = ids_by_unique(session, _MESSAGES.c.inbound_id, with_attachments)
    rows = [
        {
            "message_id": message_id,
            "filename": part.filename,
            "content_type": part.content_type,
            "size": len(part.content),
            "sha256": part.sha256,
            "content": part.content,
        }
        for inbound_id, message_id in message_ids.items()
        for part in with_attachments[inbound_id].email.attachments
    ]
    insert_rows(session, _ATTACHMENTS, rows)


def finish(batch: Batch) -> None:
    """Record each email's events and mark it processed, now that every row has its id."""
    session = batch[0].session
    session.flush()
    done = [intake for intake in batch if not intake.deferred]
    insert_rows(session, _EVENTS, [row for intake in done for row in _event_rows(intake)])
    now = utcnow()
    session.connection().execute(
        _MARK_PROCESSED,
        [
            {
                "inbound_id": intake.inbound.id,
                "new_stage": f"automatic: {intake.automatic}" if intake.automatic else None,
                "new_ticket_id": intake.ticket.id if intake.ticket else None,
                "done_at": now,
            }
            for intake in done
        ],
    )
    received = [_received(intake) for intake in done]
    event.listen(session, "after_commit", lambda _: _log_received(received), once=True)


def _received(intake: Intake) -> tuple[str, dict[str, object]]:
    """The line that tells the console an email came in and what became of it: ids,
    size and counts only, never its sender, subject, body or attachments (PHI)."""
    inbound = intake.inbound
    ticket = intake.ticket.reference if intake.ticket else None
    if intake.is_new_ticket and intake.ticket is not None:
        held = "" if intake.ticket.status == TicketStatus.NEW else f" ({intake.ticket.status})"
        became = f"new ticket {ticket}{held}"
    elif ticket is not None:
        became = f"ticket {ticket}"
    else:
        became = f"no ticket ({_why_no_ticket(intake)})"
    if intake.automatic is not None:
        became += f", {intake.automatic.kind}" if ticket else ""
    attachments = len(intake.parsed.attachments) if intake.parsed else 0
    counted = f", {attachments} attachment{'s' if attachments != 1 else ''}" if attachments else ""
    line = f"received email {inbound.id} by {inbound.source} ({inbound.size} bytes{counted}) → "
    fields = {"inbound_id": inbound.id, "source": inbound.source, "size": inbound.size}
    return line + became, {**fields, "attachments": attachments, "ticket": ticket}


def _why_no_ticket(intake: Intake) -> str:
    if intake.automatic is not None:
        return intake.automatic.kind
    if intake.rejected:
        return "unknown sender refused"
    if intake.too_large:
        return "too large"
    return "no address to answer"


def _log_received(received: list[tuple[str, dict[str, object]]]) -> None:
    """Run once the batch is committed: only an email really taken in is announced."""
    for line, fields in received:
        log.info(line, extra=fields)


def _event_rows(intake: Intake) -> list[dict[str, object]]:
    events = intake.events
    if intake.is_new_ticket and intake.ticket is not None:
        events = [("ticket.created", intake.ticket.reference), *events]
    ticket_id = intake.ticket.id if intake.ticket else None
    now = utcnow()
    return [
        {
            "ticket_id": ticket_id,
            "inbound_id": intake.inbound.id,
            "actor": "desk",
            "kind": kind,
            "detail": detail,
            "created_at": now,
        }
        for kind, detail in events
    ]


def record_event(intake: Intake, kind: str, detail: str) -> None:
    """Note what happened to the email; written with the batch's events in :func:`finish`."""
    intake.events.append((kind, detail))
