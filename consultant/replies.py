"""Templates → outbox rows: every email the desk sends starts here.

An outgoing email is rendered completely (headers and both bodies) and stored as an
:class:`~consultant.models.OutboxEmail` in the same transaction as the thing that caused
it. Sending happens later, from that row (consultant/outbox.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlmodel import Session

from consultant.config import get_settings
from consultant.mail.autoreply import LOOP_HEADER
from consultant.mail.parse import ParsedEmail
from consultant.models import OutboxEmail, Ticket, utcnow

MAX_SUBJECT_CHARS = 200
MAX_REFERENCES = 20  # keep References bounded on very long threads (RFC 5322 3.6.4)


@lru_cache(maxsize=4)
def _environment(templates_dir: Path) -> Environment:
    return Environment(
        loader=FileSystemLoader(templates_dir / "email"),
        autoescape=lambda name: bool(name) and name.endswith(".html.j2"),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def render(template: str, context: Mapping[str, Any]) -> tuple[str, str]:
    """The text and HTML bodies of ``template`` (``ack`` renders ack.txt.j2 and ack.html.j2)."""
    environment = _environment(get_settings().templates_dir)
    text = environment.get_template(f"{template}.txt.j2").render(context)
    html = environment.get_template(f"{template}.html.j2").render(context)
    return text, html


def subject_with_token(ticket: Ticket, subject: str) -> str:
    """``Re: <subject> [#CC-n]``: the token is how replies find their ticket."""
    clean = " ".join(subject.split())[:MAX_SUBJECT_CHARS] or "your case"
    token = f"[#{ticket.reference}]"
    if token in clean:
        return clean if clean.lower().startswith("re:") else f"Re: {clean}"
    return f"Re: {clean} {token}"


def new_message_id(ticket: Ticket) -> str:
    domain = get_settings().desk_domain
    return f"<cc{ticket.id}.{secrets.token_hex(8)}@{domain}>"


def queue_acknowledgement(session: Session, *, ticket: Ticket, case: ParsedEmail) -> OutboxEmail:
    """Queue the automatic "we have your case" email for a new ticket.

    It quotes nothing of the case but its subject (RFC 3834 section 3.1.9 warns against
    echoing content), and its unique key allows one acknowledgement per ticket.
    """
    settings = get_settings()
    text, html = render(
        "ack",
        {
            "name": case.sender_name,
            "reference": ticket.reference,
            "subject": " ".join(case.subject.split())[:MAX_SUBJECT_CHARS] or "(no subject)",
            "desk_name": settings.desk_name,
        },
    )
    message = _compose(
        ticket=ticket,
        recipient=case.sender,
        subject=subject_with_token(ticket, case.subject),
        text=text,
        html=html,
        answering=case,
    )
    message["Auto-Submitted"] = "auto-replied"
    # Asks Exchange and Outlook not to answer an automatic email with another one.
    message["X-Auto-Response-Suppress"] = "All"
    return _store(session, ticket=ticket, kind="ack", key=f"ack:{ticket.id}", message=message)


def _compose(
    *, ticket: Ticket, recipient: str, subject: str, text: str, html: str, answering: ParsedEmail
) -> EmailMessage:
    settings = get_settings()
    message = EmailMessage()
    message["From"] = formataddr((settings.desk_name, settings.desk_address))
    message["To"] = recipient
    message["Reply-To"] = settings.desk_address
    message["Subject"] = subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = new_message_id(ticket)
    message["In-Reply-To"] = answering.message_id
    references = [*answering.references, answering.message_id][-MAX_REFERENCES:]
    message["References"] = " ".join(references)
    message[LOOP_HEADER] = settings.desk_address
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def _store(
    session: Session, *, ticket: Ticket, kind: str, key: str, message: EmailMessage
) -> OutboxEmail:
    row = OutboxEmail(
        ticket_id=ticket.id,
        kind=kind,
        key=key,
        message_id=str(message["Message-ID"]),
        recipient=str(message["To"]),
        subject=str(message["Subject"]),
        # CRLF line ends, as on the wire: smtplib sends bytes as they are (RFC 5321 2.3.8).
        raw=message.as_bytes(policy=SMTP),
    )
    session.add(row)
    session.flush()
    return row
