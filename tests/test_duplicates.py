"""Only the same email is stored once; two different emails are never merged.

Each pair goes in through all three doors: an IMAP mailbox, the SMTP gateway and
``consultant inbound add``. Different emails that share a body (and no Message-ID), or
share a Message-ID and a body, must both become cases; the same email again — the same
bytes, or relayed with trace fields added and other line endings — must not.
"""

from __future__ import annotations

import os
import smtplib
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlmodel import func, select

from consultant import config, db
from consultant.config import get_settings, parse_mailbox_url
from consultant.db import session_scope
from consultant.mail.gateway import start_gateway
from consultant.mail.imap import poll_once
from consultant.models import InboundEmail, Ticket
from consultant.worker import drain
from tests.conftest import DESK_ADDRESS, CaseMailbox, Desk, read_email
from tests.servers.ports import free_port

Deliver = Callable[[list[bytes]], None]


def relayed(raw: bytes) -> bytes:
    """The same email as another hop hands it over: trace fields above, LF line ends."""
    trace = (
        b"Received: from mx.clinic.example by desk.example; Mon, 30 Nov 2026 09:13:02 -0500\r\n"
        b"Delivered-To: desk@desk.example\r\n"
        b"Return-Path: <dana@clinic.example>\r\n"
    )
    return (trace + raw).replace(b"\r\n", b"\n")


@pytest.fixture(params=["imap", "gateway", "file"])
def deliver(
    request: pytest.FixtureRequest,
    desk: Desk,
    mailbox: CaseMailbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Deliver]:
    """Hands emails to the desk through one of its doors, one after the other."""
    if request.param == "imap":

        def by_imap(raws: list[bytes]) -> None:
            mailbox.append(*raws)
            poll_once(parse_mailbox_url(mailbox.url), settings=get_settings())

        yield by_imap
    elif request.param == "gateway":
        monkeypatch.setenv("CONSULTANT_GATEWAY", f"127.0.0.1:{free_port()}")
        config.get_settings.cache_clear()
        db.reset_engine()
        controller = start_gateway(get_settings())

        def by_smtp(raws: list[bytes]) -> None:
            with smtplib.SMTP(controller.hostname, controller.port, timeout=10) as client:
                for raw in raws:
                    client.sendmail("relay@clinic.example", [DESK_ADDRESS], raw)

        yield by_smtp
        controller.stop()
    else:

        def by_file(raws: list[bytes]) -> None:
            paths = []
            for number, raw in enumerate(raws):
                paths.append(tmp_path / f"email-{number}.eml")
                paths[-1].write_bytes(raw)
            result = desk.consultant("inbound", "add", *map(str, paths))
            assert result.returncode == 0, result.stderr

        yield by_file


def stored_and_ticketed() -> tuple[int, int]:
    drain()
    with session_scope() as session:
        emails = session.exec(select(func.count()).select_from(InboundEmail)).one()
        tickets = session.exec(select(func.count()).select_from(Ticket)).one()
    return emails, tickets


def test_two_senders_with_the_same_body_and_no_message_id_are_two_cases(
    deliver: Deliver,
) -> None:
    deliver(
        [
            read_email("duplicates/no-message-id-same-body-dana.eml"),
            read_email("duplicates/no-message-id-same-body-lee.eml"),
        ]
    )

    assert stored_and_ticketed() == (2, 2)
    with session_scope() as session:
        requesters = set(session.exec(select(Ticket.requester)).all())
        invented = set(session.exec(select(InboundEmail.message_id)).all())
    assert requesters == {"dana@clinic.example", "lee@ortho.example"}
    assert len(invented) == 2  # each gets a Message-ID of its own


@pytest.mark.parametrize("other", ["other-sender", "other-subject"])
def test_a_shared_message_id_and_body_do_not_make_two_emails_one(
    deliver: Deliver, other: str
) -> None:
    deliver(
        [
            read_email("duplicates/shared-message-id-first-sender.eml"),
            read_email(f"duplicates/shared-message-id-{other}.eml"),
        ]
    )

    emails, _tickets = stored_and_ticketed()
    assert emails == 2


def test_the_same_email_again_is_stored_once(deliver: Deliver) -> None:
    raw = read_email("case-home-infusion.eml")

    deliver([raw, raw])
    deliver([relayed(raw)])

    assert stored_and_ticketed() == (1, 1)


def test_the_same_email_without_a_message_id_again_is_stored_once(deliver: Deliver) -> None:
    raw = read_email("duplicates/no-message-id-same-body-dana.eml")

    deliver([raw, relayed(raw)])

    assert stored_and_ticketed() == (1, 1)
    with session_scope() as session:
        [message_id] = session.exec(select(InboundEmail.message_id)).all()
    assert message_id.endswith("@fingerprint.invalid>")


def test_inbound_add_reads_stdin_and_refuses_what_is_not_an_email(
    desk: Desk, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"\r\n")

    missing = desk.consultant("inbound", "add", str(tmp_path / "missing.eml"))
    blank = desk.consultant("inbound", "add", str(empty))
    assert (missing.returncode, blank.returncode) == (1, 1)
    assert "cannot read" in missing.stderr and "empty, not an email" in blank.stderr
    assert stored_and_ticketed() == (0, 0)

    piped = subprocess.run(
        [sys.executable, "-m", "consultant", "inbound", "add", "-"],
        input=read_email("case-home-infusion.eml"),
        env={**os.environ, **desk.env},
        capture_output=True,
        timeout=120,
    )
    assert piped.returncode == 0, piped.stderr
    assert b"-: stored as email" in piped.stdout
    assert stored_and_ticketed() == (1, 1)
