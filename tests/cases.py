"""Case emails built in tests (for when a stored .eml would need hundreds of variants),
and what tests ask of the database afterwards."""

from __future__ import annotations

import secrets
from email.message import EmailMessage

from sqlmodel import func, select

from consultant.db import session_scope
from consultant.inbound import Arrival, store_arrival
from consultant.models import Coder, InboundEmail, Mailbox, Ticket
from tests.conftest import DESK_ADDRESS


def case_email(
    sender: str,
    *,
    subject: str = "Can we bill 99213-25 with 20610?",
    body: str = "Knee injection and a separate E/M visit on the same day.",
    headers: dict[str, str] | None = None,
) -> bytes:
    message = EmailMessage()
    for name, value in (headers or {}).items():
        message[name] = value
    message["From"] = sender
    message["To"] = DESK_ADDRESS
    message["Subject"] = subject
    message["Message-ID"] = f"<{secrets.token_hex(8)}@{sender.rpartition('@')[2]}>"
    message.set_content(body)
    return message.as_bytes()


def store(raw: bytes, *, envelope_from: str | None = "sender@clinic.example") -> int | None:
    """Store an email as the gateway would: its inbound id, ``None`` if stored before."""
    with session_scope() as session:
        return store_arrival(
            session,
            Arrival(raw=raw, source="smtp", envelope_from=envelope_from, envelope_to=DESK_ADDRESS),
        )


def counts() -> tuple[int, int]:
    """(stored emails, tickets)."""
    with session_scope() as session:
        emails = session.exec(select(func.count()).select_from(InboundEmail)).one()
        tickets = session.exec(select(func.count()).select_from(Ticket)).one()
    return emails, tickets


def last_error() -> str:
    """The error recorded on the test's one mailbox row ("" when none)."""
    with session_scope() as session:
        [row] = session.exec(select(Mailbox)).all()
    return row.last_error or ""


def add_coder(email: str, **fields: object) -> int:
    """A coder of the desk, as ``consultant coders add`` would make one: their id."""
    with session_scope() as session:
        coder = Coder(email=email, name=email.split("@")[0].title(), **fields)
        session.add(coder)
        session.flush()
        assert coder.id is not None
        return coder.id
