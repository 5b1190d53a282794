"""Machines answering our mail: bounces and out-of-office replies join their ticket, silently."""

from __future__ import annotations

from email import message_from_bytes

import pytest
from sqlmodel import select

from consultant.db import session_scope
from consultant.models import Event, Message, OutboxEmail, Ticket
from consultant.worker import drain
from tests.cases import case_email, store
from tests.conftest import Desk, read_email
from tests.servers.smtp_sink import SmtpSink


def answering_our_ack(name: str, sink: SmtpSink) -> tuple[bytes, str]:
    """The test email ``name`` made to report or answer the first acknowledgement sent."""
    [ack] = sink.wait_for(1, timeout=10)
    headers = message_from_bytes(ack.raw)
    raw = (
        read_email(name)
        .replace(b"@@ORIGINAL_MESSAGE_ID@@", str(headers["Message-ID"]).encode())
        .replace(b"@@RECIPIENT@@", str(headers["To"]).encode())
    )
    return raw, str(headers["Message-ID"])


@pytest.mark.parametrize(
    "name", ["bounces/dsn-postfix-user-unknown.eml", "bounces/ndr-exchange-rfc822-headers.eml"]
)
def test_a_bounce_joins_the_ticket_and_holds_off_automatic_mail_to_that_address(
    desk: Desk, smtp_sink: SmtpSink, name: str
) -> None:
    desk.consultant("accounts", "add", "@clinic.example", "--plan", "unlimited")
    store(case_email("gone@clinic.example"))
    drain()
    bounce, ack_id = answering_our_ack(name, smtp_sink)

    store(bounce, envelope_from="")
    store(case_email("gone@clinic.example", subject="a second case"))
    drain()

    with session_scope() as session:
        tickets = session.exec(select(Ticket).order_by(Ticket.id)).all()  # type: ignore[arg-type]
        thread = session.exec(select(Message).where(Message.ticket_id == tickets[0].id)).all()
        [ack] = session.exec(select(OutboxEmail).where(OutboxEmail.message_id == ack_id)).all()
        events = {e.kind for e in session.exec(select(Event)).all()}
    assert len(tickets) == 2  # the bounce made no ticket
    assert [m.is_automatic for m in thread] == [False, True]
    assert ack.bounced_at is not None
    assert {"mail.bounced", "ack.suppressed"} <= events
    assert len(smtp_sink.messages) == 1  # nothing to the bounce, nothing to the dead address


def test_an_out_of_office_reply_to_our_email_is_a_silent_note_on_its_ticket(
    desk: Desk, smtp_sink: SmtpSink
) -> None:
    store(case_email("dana@clinic.example"))
    drain()
    reply, _ = answering_our_ack("out-of-office-reply-to-acknowledgement.eml", smtp_sink)

    store(reply)
    drain()

    with session_scope() as session:
        [ticket] = session.exec(select(Ticket)).all()
        thread = session.exec(select(Message)).all()
        ack = session.exec(select(OutboxEmail)).one()
    assert ticket.status == "new"
    assert [m.is_automatic for m in thread] == [False, True]
    assert ack.bounced_at is None
    assert len(smtp_sink.messages) == 1


def test_our_own_email_coming_back_is_never_answered(desk: Desk, smtp_sink: SmtpSink) -> None:
    store(case_email("dana@clinic.example"))
    drain()
    [ack] = smtp_sink.wait_for(1, timeout=10)

    store(ack.raw.replace(b"To: dana@clinic.example", b"To: desk@desk.example"))
    drain()

    with session_scope() as session:
        assert len(session.exec(select(Ticket)).all()) == 1
    assert len(smtp_sink.messages) == 1
