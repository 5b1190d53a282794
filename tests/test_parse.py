"""Text decoded the way a person reads it, whatever the email claims about itself."""

from __future__ import annotations

import pytest
from sqlmodel import select

from consultant.db import session_scope
from consultant.mail.parse import parse_email
from consultant.models import Message, Ticket
from consultant.worker import drain
from tests.cases import store
from tests.conftest import Desk, read_email


@pytest.mark.parametrize(
    ("name", "subject", "sender_name", "in_text"),
    [
        ("latin1-body-no-charset", "Modifier question", "Ana Biller", "caf\u00e9 visit"),
        ("latin1-body-claims-utf8", "Claims UTF-8, sends Latin-1", "", "R\u00e9sum\u00e9 of"),
        ("unknown-charset-declared", "Unknown charset", "", "Na\u00efve question"),
        ("nul-bytes-in-body-and-subject", "NUL in subject 97110", "", "NUL byte: 97110"),
        (
            "eight-bit-headers-latin1",
            "Caf\u00e9 clinic: 99202?",
            "Jos\u00e9 P\u00e9rez",
            "New patient",
        ),
        ("rfc2047-split-multibyte", "Caf\u00e9 visit 99203", "Jos\u00e9 Ruiz", "Split encoded"),
        ("rfc2047-damaged-encoded-word", "Re: J1100 dose", "", "One broken word"),
    ],
)
def test_text_and_headers_decode_readably(
    name: str, subject: str, sender_name: str, in_text: str
) -> None:
    parsed = parse_email(read_email(f"charsets/{name}.eml"))

    assert parsed.subject == subject
    assert parsed.sender_name == sender_name
    assert in_text in parsed.text
    assert "\ufffd" not in parsed.text + parsed.subject + parsed.sender_name
    assert "\x00" not in parsed.text + parsed.subject


def test_an_email_with_nul_bytes_becomes_a_ticket_on_every_database(desk: Desk) -> None:
    store(read_email("charsets/nul-bytes-in-body-and-subject.eml"))
    report = drain()

    assert report.failed == 0
    with session_scope() as session:
        [ticket] = session.exec(select(Ticket)).all()
        [message] = session.exec(select(Message)).all()
    assert ticket.subject == "NUL in subject 97110"
    assert "97110 GP x3" in message.body_text
