"""Emails too big or too deep to store as files: each has a defined outcome, in bounded time.

They are built here rather than kept under tests/emails/. A time limit of a few seconds
stands for "no quadratic trap": a worker must never spend minutes on one email.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from email.message import EmailMessage

import pytest
from sqlmodel import func, select

from consultant.db import session_scope
from consultant.mail.parse import ParseError, parse_email
from consultant.models import Attachment, InboundEmail, OutboxEmail, Ticket
from consultant.worker import drain
from tests.cases import store
from tests.conftest import DESK_ADDRESS, Desk
from tests.servers.smtp_sink import SmtpSink

SECONDS = 10.0  # the 25 MB attachment parses in about 3 s on a 2-core machine


def _headers(slug: str) -> bytes:
    return (
        f"From: {slug}@clinic.example\r\nTo: {DESK_ADDRESS}\r\nSubject: {slug}\r\n"
        f"Message-ID: <{slug}@clinic.example>\r\nMIME-Version: 1.0\r\n"
    ).encode()


def two_megabyte_line() -> bytes:
    return _headers("two-megabyte-line") + b"Content-Type: text/plain\r\n\r\n" + b"x" * 2**21


def nested_multiparts(depth: int) -> bytes:
    inner = b"Content-Type: text/plain\r\n\r\nThe question at the bottom: 99213.\r\n"
    for level in range(depth):
        boundary = f"level{level}".encode()
        inner = (
            b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n--'
            + boundary + b"\r\n" + inner + b"\r\n--" + boundary + b"--\r\n"
        )  # fmt: skip
    return _headers(f"nested-{depth}-deep") + inner


def with_attachments(slug: str, sizes: list[int]) -> bytes:
    message = EmailMessage()
    message["From"] = f"{slug}@clinic.example"
    message["To"] = DESK_ADDRESS
    message["Subject"] = slug
    message["Message-ID"] = f"<{slug}@clinic.example>"
    message.set_content("Scans attached.")
    for number, size in enumerate(sizes):
        content = os.urandom(size)
        message.add_attachment(content, "application", "pdf", filename=f"scan-{number}.pdf")
    return message.as_bytes()


def thousand_attachments() -> bytes:
    return with_attachments("thousand-attachments", [64] * 1000)


def attachment_of_25_megabytes() -> bytes:
    return with_attachments("twenty-five-megabytes", [25 * 2**20])


def nested_too_deep() -> bytes:
    return nested_multiparts(1000)


def nested_200_deep() -> bytes:
    return nested_multiparts(200)


@pytest.mark.parametrize(
    ("build", "text", "attachments"),
    [
        (two_megabyte_line, "x" * 1000, 0),
        (nested_200_deep, "The question at the bottom: 99213.", 0),
        (thousand_attachments, "Scans attached.", 1000),
        (attachment_of_25_megabytes, "Scans attached.", 1),
    ],
)
def test_a_huge_email_parses_in_bounded_time(
    build: Callable[[], bytes], text: str, attachments: int
) -> None:
    raw = build()
    started = time.monotonic()
    parsed = parse_email(raw)

    assert time.monotonic() - started < SECONDS
    assert text in parsed.text
    assert len(parsed.attachments) == attachments


def test_nesting_past_the_parsers_limit_is_a_clear_parse_error_in_bounded_time() -> None:
    raw = nested_too_deep()
    started = time.monotonic()
    with pytest.raises(ParseError, match="nesting too deep"):
        parse_email(raw)
    assert time.monotonic() - started < SECONDS


@pytest.mark.parametrize(
    ("build", "tickets", "attachments", "status"),
    [
        (two_megabyte_line, 1, 0, "processed"),
        (nested_200_deep, 1, 0, "processed"),
        (thousand_attachments, 1, 1000, "processed"),
        (nested_too_deep, 0, 0, "failed"),
    ],
)
def test_a_huge_email_goes_through_intake_in_bounded_time(
    desk: Desk,
    smtp_sink: SmtpSink,
    build: Callable[[], bytes],
    tickets: int,
    attachments: int,
    status: str,
) -> None:
    inbound_id = store(build())
    started = time.monotonic()
    drain()

    assert time.monotonic() - started < SECONDS
    with session_scope() as session:
        inbound = session.get(InboundEmail, inbound_id)
        assert inbound is not None and inbound.status == status
        assert session.exec(select(func.count()).select_from(Ticket)).one() == tickets
        assert session.exec(select(func.count()).select_from(Attachment)).one() == attachments
        acks = session.exec(select(func.count()).select_from(OutboxEmail)).one()
    assert acks == tickets


def test_an_email_over_the_size_limit_is_kept_and_its_sender_told(
    desk: Desk, smtp_sink: SmtpSink
) -> None:
    raw = attachment_of_25_megabytes()  # 25 MB in base64 is over the 30 MiB default
    inbound_id = store(raw)
    started = time.monotonic()
    drain()

    assert time.monotonic() - started < SECONDS * 2  # storing it twice over is most of this
    with session_scope() as session:
        inbound = session.get(InboundEmail, inbound_id)
        assert inbound is not None and inbound.status == "processed"
        assert len(inbound.raw) == len(raw)
        [outgoing] = session.exec(select(OutboxEmail)).all()
    assert outgoing.kind == "too_large"
