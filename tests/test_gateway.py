"""The inbound SMTP/LMTP gateway: answers mean what they say."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Callable, Iterator
from typing import BinaryIO

import pytest
from aiosmtpd.controller import Controller
from sqlmodel import func, select

from consultant import config, db
from consultant.config import get_settings, parse_mailbox_url
from consultant.db import session_scope
from consultant.mail.gateway import start_gateway
from consultant.mail.imap import poll_once
from consultant.models import InboundEmail, Ticket
from consultant.worker import drain
from tests.cases import case_email
from tests.conftest import DESK_ADDRESS, CaseMailbox, Desk, read_email
from tests.servers.ports import free_port

Start = Callable[..., Controller]


@pytest.fixture
def gateway(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> Iterator[Start]:
    """Starts the gateway on a free port with the test's settings; stops it afterwards."""
    started: list[Controller] = []

    def start(*, lmtp: bool = False, **env: str) -> Controller:
        monkeypatch.setenv("CONSULTANT_GATEWAY", f"127.0.0.1:{free_port()}")
        for name, value in env.items():
            monkeypatch.setenv(f"CONSULTANT_{name}", value)
        config.get_settings.cache_clear()
        db.reset_engine()
        started.append(start_gateway(get_settings(), lmtp=lmtp))
        return started[-1]

    yield start
    for controller in started:
        controller.stop()


def stored() -> list[InboundEmail]:
    with session_scope() as session:
        return list(session.exec(select(InboundEmail)).all())


def connect(controller: Controller) -> smtplib.SMTP:
    return smtplib.SMTP(controller.hostname, controller.port, timeout=10)


def test_250_means_the_email_is_already_committed(gateway: Start) -> None:
    controller = gateway()
    with connect(controller) as client:
        client.sendmail("dana@clinic.example", [DESK_ADDRESS], read_email("case-home-infusion.eml"))
        [email] = stored()  # before QUIT: the 250 came after the commit

    assert email.envelope_from == "dana@clinic.example"
    assert email.envelope_to == DESK_ADDRESS
    assert email.raw == read_email("case-home-infusion.eml")


def test_a_recipient_that_is_not_the_desk_is_refused_with_550(gateway: Start) -> None:
    controller = gateway(DESK_ALIASES="cases@desk.example")
    with connect(controller) as client, pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        client.sendmail(
            "dana@clinic.example", ["someone@elsewhere.example"], case_email("a@b.example")
        )

    [(code, _)] = refused.value.recipients.values()
    assert code == 550
    assert stored() == []


def test_an_email_over_the_size_limit_is_refused_with_552_and_not_kept(gateway: Start) -> None:
    controller = gateway(MAX_MESSAGE_BYTES="4096")
    raw = case_email("dana@clinic.example", body="scan " * 2000)
    with connect(controller) as client, pytest.raises(smtplib.SMTPException) as refused:
        client.sendmail("dana@clinic.example", [DESK_ADDRESS], raw)

    assert getattr(refused.value, "smtp_code", None) == 552
    assert stored() == []


def test_while_the_database_is_down_the_answer_is_451_so_the_sender_retries(
    gateway: Start,
) -> None:
    controller = gateway(DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    with connect(controller) as client, pytest.raises(smtplib.SMTPDataError) as deferred:
        client.sendmail("dana@clinic.example", [DESK_ADDRESS], case_email("dana@clinic.example"))

    assert deferred.value.smtp_code == 451


def test_lmtp_answers_data_once_per_recipient_and_stores_the_email_once(gateway: Start) -> None:
    controller = gateway(lmtp=True, DESK_ALIASES="cases@desk.example")
    # A raw conversation: smtplib's LMTP client reads only one reply after DATA, where
    # RFC 2033 4.2 has the server answer once per accepted recipient, as Postfix expects.
    with socket.create_connection((controller.hostname, controller.port), timeout=10) as conn:
        replies = conn.makefile("rb")
        conversation = [
            b"LHLO mx.desk.example",
            b"MAIL FROM:<dana@clinic.example>",
            f"RCPT TO:<{DESK_ADDRESS}>".encode(),
            b"RCPT TO:<cases@desk.example>",
            b"DATA",
        ]
        read_reply(replies)  # greeting
        for command in conversation:
            conn.sendall(command + b"\r\n")
            read_reply(replies)
        conn.sendall(case_email("dana@clinic.example").replace(b"\n", b"\r\n") + b"\r\n.\r\n")
        after_data = [read_reply(replies), read_reply(replies)]

    assert [reply[:3] for reply in after_data] == [b"250", b"250"]
    assert len(stored()) == 1


def read_reply(replies: BinaryIO) -> bytes:
    """One SMTP reply, however many lines ("250-…" continues, "250 …" ends)."""
    while True:
        line = replies.readline()
        if line[3:4] != b"-":
            return line


def test_the_same_email_by_the_gateway_and_the_mailbox_makes_one_ticket(
    gateway: Start, mailbox: CaseMailbox
) -> None:
    raw = read_email("case-home-infusion.eml")
    mailbox.append(b"Received: from mx.desk.example by imap.desk.example\r\n" + raw)
    controller = gateway()
    with connect(controller) as client:
        client.sendmail("dana@clinic.example", [DESK_ADDRESS], raw)

    report = poll_once(parse_mailbox_url(mailbox.url), settings=get_settings())
    drain()

    assert (report.seen, report.stored) == (1, [])
    with session_scope() as session:
        assert session.exec(select(func.count()).select_from(Ticket)).one() == 1
