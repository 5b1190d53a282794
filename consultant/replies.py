"""Templates → outbox rows: every email the desk sends starts here.

An outgoing email is rendered completely (headers and both bodies) and stored as an
:class:`~consultant.models.OutboxEmail` in the same transaction as the thing that caused
it. Sending happens later, from that row (consultant/outbox.py).

Automatic emails (RFC 3834) are held to stricter rules: ``Auto-Submitted``, nothing of
the customer's email but its subject, and caps per recipient, so that no sender — and
no misbehaving robot — can make the desk send an unbounded stream of mail.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from email.charset import QP, Charset
from email.header import Header
from email.message import Message as Email
from email.policy import Compat32
from email.utils import format_datetime, formataddr
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from consultant.config import get_settings
from consultant.mail.autoreply import LOOP_HEADER
from consultant.mail.parse import ParsedEmail
from consultant.models import (
    Event,
    Message,
    OutboxEmail,
    OutboxStatus,
    Ticket,
    TicketStatus,
    utcnow,
)

MAX_SUBJECT_CHARS = 200
MAX_REFERENCES = 20  # keep References bounded on very long threads (RFC 5322 3.6.4)
SIGNATURE_CHARS = 16
_OUR_MESSAGE_ID = re.compile(r"^<cc(\d+)\.([0-9a-f]+)\.([0-9a-f]+)@")
UTF8_QP = Charset("utf-8")
UTF8_QP.body_encoding = QP


class _Wire(Compat32):
    """compat32 with CRLF line ends, as on the wire: smtplib sends bytes as they are
    (RFC 5321 2.3.8).

    A header that is short, one line and ASCII — nearly all of ours — is written as it
    is: compat32 would pass it through the Header class's folding machinery, which then
    changes nothing, at about a third of the cost of composing an acknowledgement.
    """

    def fold_binary(self, name: str, value: Any) -> bytes:
        if isinstance(value, str):
            line = f"{name}: {value}"
            unbroken = "\r" not in line and "\n" not in line
            if len(line) <= self.max_line_length and line.isascii() and unbroken:
                return (line + self.linesep).encode("ascii")
        return super().fold_binary(name, value)


WIRE = _Wire(linesep="\r\n")


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


def render(template: str, context: Mapping[str, Any]) -> tuple[str, str]:
    """The text and HTML bodies of ``template`` (``ack`` renders ack.txt.j2 and ack.html.j2)."""
    settings = get_settings()
    environment = _environment(settings.templates_dir, settings.template_overrides)
    full_context = {"desk_name": settings.desk_name, "desk_address": settings.desk_address}
    full_context.update(context)
    text = environment.get_template(f"{template}.txt.j2").render(full_context)
    html = environment.get_template(f"{template}.html.j2").render(full_context)
    return text, html


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


# --- Message-IDs that carry a signed ticket number ------------------------------------


def new_message_id(ticket_id: int | None) -> str:
    """``<cc7.<random>.<signature>@desk-domain>``: the ticket survives a lost thread."""
    number = str(ticket_id or 0)
    nonce = secrets.token_hex(8)
    return f"<cc{number}.{nonce}.{_signature(number, nonce)}@{get_settings().desk_domain}>"


def ticket_number_in(message_id: str) -> int | None:
    """The ticket number one of our Message-IDs carries, if its signature holds."""
    match = _OUR_MESSAGE_ID.match(message_id)
    if match is None:
        return None
    number, nonce, signature = match.groups()
    if not hmac.compare_digest(signature, _signature(number, nonce)) or number == "0":
        return None
    return int(number)


def _signature(number: str, nonce: str) -> str:
    digest = hmac.new(get_settings().signing_key(), f"{number}.{nonce}".encode(), hashlib.sha256)
    return digest.hexdigest()[:SIGNATURE_CHARS]


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
    text, html = render(kind, {**context, "reference": reference, "subject": subject})
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


def compose(
    *,
    ticket_id: int | None,
    recipient: str,
    subject: str,
    text: str,
    html: str,
    in_reply_to: str | None,
    references: Sequence[str],
) -> Email:
    """An email from the desk, threaded under ``in_reply_to`` (RFC 5322 3.6.4).

    Built with the email package's classic (compat32) classes: the modern API re-parses
    every header it is given and again to fold it, which made composing the costliest
    part of acknowledging a case; these headers are ours and need neither.
    """
    settings = get_settings()
    message = Email()
    message["MIME-Version"] = "1.0"
    message["Content-Type"] = f'multipart/alternative; boundary="{_boundary()}"'
    message["From"] = formataddr((settings.desk_name, settings.desk_address))
    message["To"] = recipient
    message["Reply-To"] = settings.desk_address
    message["Subject"] = _encoded(subject, name="Subject")
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = new_message_id(ticket_id)
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = " ".join(references[-MAX_REFERENCES:])
    message[LOOP_HEADER] = settings.desk_address
    message.attach(_text_part(text, "plain"))
    message.attach(_text_part(html, "html"))
    return message


def _text_part(body: str, subtype: str) -> Email:
    """A body part in UTF-8 quoted-printable: 7-bit safe for any relay, readable raw.

    Its two headers are written as they are; the MIME classes would add the charset by
    parsing their own Content-Type again, a third of the cost of composing.
    """
    part = Email()
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(UTF8_QP.body_encode(body))
    return part


def _boundary() -> str:
    """A multipart boundary that cannot occur in the parts, so the generator need not
    search them for it: they are quoted-printable, where ``=`` is always followed by two
    hex digits or a line break (RFC 2045 6.7), so ``=_`` never appears in them."""
    return f"=_cc{secrets.token_hex(12)}"


def _encoded(value: str, *, name: str) -> str | Header:
    """ASCII as it is; anything else as RFC 2047 encoded words, folded to fit after the
    header's name (RFC 5322 2.1.1)."""
    return value if value.isascii() else Header(value, "utf-8", header_name=name)


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


def queue_answer(session: Session, *, ticket: Ticket, text: str, coder: str) -> OutboxEmail:
    """Send a coder's answer into the ticket's thread; the ticket becomes ``answered``."""
    outgoing = _compose_in_thread(session, ticket, "answer", {"answer": text})
    message_id = str(outgoing["Message-ID"])
    session.add(
        Message(
            ticket_id=ticket.id,  # type: ignore[arg-type]
            direction="out",
            message_id=message_id,
            sender=coder,
            subject=str(outgoing["Subject"]),
            body_text=text,
        )
    )
    ticket.status = TicketStatus.ANSWERED
    ticket.updated_at = utcnow()
    session.add(ticket)
    session.add(Event(ticket_id=ticket.id, actor=coder, kind="ticket.answered"))
    return store(
        session,
        ticket=ticket,
        kind="answer",
        key=f"answer:{message_id}",
        message=outgoing,
        automatic=False,
    )


def queue_solved(session: Session, *, ticket: Ticket, actor: str) -> OutboxEmail:
    """Close the ticket and tell the customer that a reply reopens it."""
    outgoing = _compose_in_thread(session, ticket, "solved", {})
    ticket.status = TicketStatus.SOLVED
    ticket.updated_at = utcnow()
    session.add(ticket)
    session.add(Event(ticket_id=ticket.id, actor=actor, kind="ticket.solved"))
    key = f"solved:{ticket.id}:{outgoing['Message-ID']}"
    return store(session, ticket=ticket, kind="solved", key=key, message=outgoing, automatic=False)


def _compose_in_thread(
    session: Session, ticket: Ticket, template: str, context: Mapping[str, Any]
) -> Email:
    """An email to the ticket's customer, under the latest email of its thread."""
    body_text, body_html = render(template, {"reference": ticket.reference, **context})
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
