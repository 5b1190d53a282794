"""Templates → outbox rows: every email the desk sends starts here.

An outgoing email is rendered completely (headers and both bodies) and stored as an
:class:`~consultant.models.OutboxEmail` in the same transaction as the thing that caused
it. Sending happens later, from that row (consultant/outbox.py).

Automatic emails (RFC 3834) are held to stricter rules: ``Auto-Submitted``, nothing of
the customer's email but its subject, and caps per recipient, so that no sender — and
no misbehaving robot — can make the desk send an unbounded stream of mail.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import Message as Email
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from consultant import email_templates, sla, states
from consultant.config import get_settings
from consultant.mail.compose import WIRE, compose
from consultant.mail.parse import ParsedEmail
from consultant.models import (
    Coder,
    Event,
    Message,
    OutboxEmail,
    OutboxStatus,
    Ticket,
    TicketStatus,
    utcnow,
)

MAX_SUBJECT_CHARS = 200


# --- templates ----------------------------------------------------------------------


@lru_cache(maxsize=4)
def _environment(templates_dir: Path, overrides: Path | None) -> Environment:
    """Jinja2 with the admin's override folder first, then the desk's own templates."""
    folders = [overrides / "email"] if overrides else []
    loaders = [FileSystemLoader(folder) for folder in [*folders, templates_dir / "email"]]
    return Environment(
        loader=ChoiceLoader(loaders),
        autoescape=lambda name: bool(name) and name.endswith(".html.j2"),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def render(
    session: Session,
    template: str,
    context: Mapping[str, Any],
    *,
    ticket_id: int | None = None,
) -> tuple[str, str]:
    """The text and HTML bodies of ``template`` (``ack`` renders ack.txt.j2 and ack.html.j2),
    each from the admin's version in the database when there is one and it renders
    (consultant/email_templates.py), else from the files."""
    settings = get_settings()
    environment = _environment(settings.templates_dir, settings.template_overrides)
    full_context = {"desk_name": settings.desk_name, "desk_address": settings.desk_address}
    full_context.update(context)
    stored = email_templates.stored(session, template)
    bodies = []
    for part, middle in email_templates.PARTS.items():
        body = None
        if part in stored:
            body = email_templates.render_stored(
                session, kind=template, part=part, body=stored[part], context=full_context,
                ticket_id=ticket_id,
            )  # fmt: skip
        if body is None:
            body = environment.get_template(f"{template}.{middle}.j2").render(full_context)
        bodies.append(body)
    return bodies[0], bodies[1]


def one_line(subject: str) -> str:
    """A subject safe to repeat: one line (no header injection), bounded in length."""
    return " ".join(subject.split())[:MAX_SUBJECT_CHARS]


def subject_with_token(reference: str, subject: str) -> str:
    """``Re: <subject> [#CC-n]``: the token is how replies find their ticket."""
    clean = one_line(subject) or "your case"
    token = f"[#{reference}]"
    if token in clean:
        return clean if clean.lower().startswith("re:") else f"Re: {clean}"
    return f"Re: {clean} {token}"


# --- automatic emails ---------------------------------------------------------------


@dataclass
class AutomaticCaps:
    """What the outbox says about automatic mail to a batch's recipients, read once and
    kept up to date as the batch queues more (RFC 3834 section 2: answer sparingly)."""

    queued_keys: set[str]  # causes already answered: one email per cause
    bounced: set[str]  # recipients whose address bounced lately
    sent_today: Counter[str]  # automatic emails per recipient in the last 24 hours

    def refusal(self, *, recipient: str, key: str) -> str | None:
        """Why no automatic email for ``key`` may go to ``recipient`` now, or ``None``."""
        settings = get_settings()
        sent_today, holdoff = self.sent_today[recipient], settings.bounce_holdoff_days
        if key in self.queued_keys:
            return ALREADY_QUEUED
        if recipient in self.bounced:
            return f"an email to this address bounced in the last {holdoff} days"
        if sent_today >= settings.auto_replies_per_day:
            return f"{sent_today} automatic emails to this address in the last 24 hours"
        return None

    def count(self, *, recipient: str, key: str) -> None:
        self.queued_keys.add(key)
        self.sent_today[recipient] += 1


ALREADY_QUEUED = "already queued"


def automatic_caps(
    session: Session, *, recipients: Iterable[str], keys: Iterable[str]
) -> AutomaticCaps:
    """The caps of these recipients and which of these keys are taken, in one query."""
    settings = get_settings()
    now = utcnow()
    bounced_since = now - timedelta(days=settings.bounce_holdoff_days)
    day_ago = now - timedelta(days=1)
    wanted = set(recipients)
    rows = session.exec(
        select(
            OutboxEmail.key,
            OutboxEmail.recipient,
            OutboxEmail.is_automatic,
            OutboxEmail.bounced_at,
            OutboxEmail.created_at,
        ).where(
            or_(
                col(OutboxEmail.key).in_(set(keys)),
                and_(
                    col(OutboxEmail.recipient).in_(wanted),
                    or_(
                        col(OutboxEmail.bounced_at) > bounced_since,
                        and_(col(OutboxEmail.is_automatic), col(OutboxEmail.created_at) > day_ago),
                    ),
                ),
            )
        )
    ).all()
    caps = AutomaticCaps(queued_keys=set(), bounced=set(), sent_today=Counter())
    for key, recipient, is_automatic, bounced_at, created_at in rows:
        caps.queued_keys.add(key)
        if recipient not in wanted:
            continue  # found by its key only
        if bounced_at is not None and bounced_at > bounced_since:
            caps.bounced.add(recipient)
        if is_automatic and created_at > day_ago:
            caps.sent_today[recipient] += 1
    return caps


def automatic_email(
    session: Session,
    *,
    kind: str,
    key: str,
    ticket: Ticket | None,
    answering: ParsedEmail,
    context: Mapping[str, Any],
    caps: AutomaticCaps,
) -> dict[str, Any] | None:
    """The outbox row of an automatic answer to ``answering``, unless the recipient's
    caps forbid it; the caller inserts a batch's rows together (:func:`outbox_row`).

    ``key`` makes it once per cause (one acknowledgement per ticket, one over-quota
    email per thread). A suppressed email is recorded as an event, never silently dropped.
    """
    recipient = answering.sender
    reason = caps.refusal(recipient=recipient, key=key)
    if reason == ALREADY_QUEUED:
        return None
    if reason is not None:
        session.add(
            Event(
                ticket_id=ticket.id if ticket else None,
                actor="desk",
                kind=f"{kind}.suppressed",
                detail=reason,
            )
        )
        return None
    reference = ticket.reference if ticket else None
    subject = one_line(answering.subject) or "(no subject)"
    text, html = render(
        session,
        kind,
        {**context, "reference": reference, "subject": subject},
        ticket_id=ticket.id if ticket else None,
    )
    message = compose(
        ticket_id=ticket.id if ticket else None,
        recipient=recipient,
        subject=subject_with_token(reference, subject) if reference else f"Re: {subject}",
        text=text,
        html=html,
        in_reply_to=answering.message_id,
        references=[*answering.references, answering.message_id],
    )
    message["Auto-Submitted"] = "auto-replied"
    # Asks Exchange and Outlook not to answer an automatic email with another one.
    message["X-Auto-Response-Suppress"] = "All"
    row = outbox_row(ticket=ticket, kind=kind, key=key, message=message, automatic=True)
    caps.count(recipient=recipient, key=key)
    return row


def outbox_row(
    *, ticket: Ticket | None, kind: str, key: str, message: Email, automatic: bool
) -> dict[str, Any]:
    """A composed email as a row of the outbox table, waiting to be sent."""
    now = utcnow()
    return {
        "ticket_id": ticket.id if ticket else None,
        "kind": kind,
        "key": key,
        "message_id": str(message["Message-ID"]),
        "recipient": str(message["To"]),
        "subject": str(message["Subject"]),
        "raw": message.as_bytes(policy=WIRE),
        "status": OutboxStatus.PENDING,
        "is_automatic": automatic,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def store(
    session: Session,
    *,
    ticket: Ticket | None,
    kind: str,
    key: str,
    message: Email,
    automatic: bool,
) -> OutboxEmail:
    """Queue one composed email; inserted with the transaction's other rows."""
    row = OutboxEmail(
        **outbox_row(ticket=ticket, kind=kind, key=key, message=message, automatic=automatic)
    )
    session.add(row)
    return row


# --- a coder's answer and the solved notice ------------------------------------------


def queue_answer(
    session: Session,
    *,
    ticket: Ticket,
    text: str,
    coder: Coder,
    now: datetime,
    then: str = TicketStatus.PENDING,
) -> OutboxEmail:
    """Send a coder's answer into the ticket's thread.

    The answer is the ticket's first response if it has none yet (the SLA clock stops as
    it is queued), ends the coder's claim, makes the coder the owner, and moves the case
    to ``then``: ``pending`` (waiting on the customer, the default), ``solved`` or
    ``open``. Refused while another coder holds the case, and on a closed case.
    """
    from consultant.routing.assign import assign
    from consultant.routing.claims import end_claim, refuse_if_held_by_another

    states.check_move(ticket, then)
    refuse_if_held_by_another(session, ticket, coder, now)
    assign(session, ticket, coder, reason=f"answered by {coder.email}", actor=coder.email, now=now)
    outgoing = _compose_in_thread(session, ticket, "answer", {"answer": text})
    message_id = str(outgoing["Message-ID"])
    session.add(
        Message(
            ticket_id=ticket.id,  # type: ignore[arg-type]
            direction="out",
            message_id=message_id,
            sender=coder.email,
            subject=str(outgoing["Subject"]),
            body_text=text,
            coder_id=coder.id,
            created_at=now,
        )
    )
    if ticket.first_response_at is None:
        ticket.first_response_at = now
    end_claim(session, ticket, kind="claim.ended", actor=coder.email, reason="answered")
    session.add(Event(ticket_id=ticket.id, actor=coder.email, kind="ticket.answered"))
    states.move(session, ticket, then, actor=coder.email, now=now, reason="answered")
    sla.sync(session, ticket, now=now)  # the first response stops its clock, whatever ``then``
    return store(
        session,
        ticket=ticket,
        kind="answer",
        key=f"answer:{message_id}",
        message=outgoing,
        automatic=False,
    )


def queue_solved(session: Session, *, ticket: Ticket, actor: str, now: datetime) -> OutboxEmail:
    """Mark the ticket solved and tell the customer that a reply reopens it."""
    states.check_move(ticket, TicketStatus.SOLVED)
    outgoing = _compose_in_thread(session, ticket, "solved", {})
    states.move(session, ticket, TicketStatus.SOLVED, actor=actor, now=now)
    session.add(Event(ticket_id=ticket.id, actor=actor, kind="ticket.solved"))
    key = f"solved:{ticket.id}:{outgoing['Message-ID']}"
    return store(session, ticket=ticket, kind="solved", key=key, message=outgoing, automatic=False)


@dataclass(frozen=True)
class Preview:
    """An answer as its customer will read it, before it is queued."""

    recipient: str
    subject: str
    text: str


def preview_answer(session: Session, *, ticket: Ticket, text: str) -> Preview:
    body_text, _ = render(session, "answer", {"reference": ticket.reference, "answer": text})
    return Preview(
        recipient=ticket.requester,
        subject=subject_with_token(ticket.reference, ticket.subject),
        text=body_text,
    )


def _compose_in_thread(
    session: Session, ticket: Ticket, template: str, context: Mapping[str, Any]
) -> Email:
    """An email to the ticket's customer, under the latest email of its thread."""
    body_text, body_html = render(
        session, template, {"reference": ticket.reference, **context}, ticket_id=ticket.id
    )
    thread = _thread_of(session, ticket)
    return compose(
        ticket_id=ticket.id,
        recipient=ticket.requester,
        subject=subject_with_token(ticket.reference, ticket.subject),
        text=body_text,
        html=body_html,
        in_reply_to=thread[-1] if thread else None,
        references=thread,
    )


def _thread_of(session: Session, ticket: Ticket) -> list[str]:
    """The Message-IDs of the ticket's thread, oldest first, for References."""
    rows = session.exec(
        select(Message.message_id).where(Message.ticket_id == ticket.id).order_by(col(Message.id))
    ).all()
    return list(rows)
