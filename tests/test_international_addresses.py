"""Senders with internationalised addresses (RFC 6531), and senders with no address at all.

An address like ``jörg@example.de`` is a real customer's: the acknowledgement goes out
over SMTPUTF8 when the relay offers it, and fails with a reason a person can act on when
it does not, without holding up anyone else's mail. A From that holds no address gets
no automatic mail, and the ticket says why.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlmodel import select, update

from consultant.config import get_settings
from consultant.db import session_scope
from consultant.inbound import due_inbound_ids
from consultant.models import Event, OutboxEmail, Ticket
from consultant.pipeline import process_inbound_emails
from consultant.worker import drain
from tests.cases import store
from tests.conftest import Desk, read_email
from tests.servers.smtp_sink import SmtpSink

INTERNATIONAL = "jörg@example.de"
NEEDS_SMTPUTF8 = "needs SMTPUTF8 (RFC 6531), which the relay does not offer"


@pytest.fixture(scope="module")
def ascii_only_sink() -> Iterator[SmtpSink]:
    """A relay that does not offer SMTPUTF8, as many still do not."""
    with SmtpSink(smtputf8=False) as sink:
        yield sink


@pytest.fixture
def ascii_only_desk(desk: Desk, ascii_only_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch) -> Desk:
    """The desk sending through :func:`ascii_only_sink`, one connection at a time, so that
    a bad email and the good one after it share a connection."""
    ascii_only_sink.clear()
    changes = {"CONSULTANT_SMTP_URL": ascii_only_sink.url, "CONSULTANT_SMTP_CONNECTIONS": "1"}
    for name, value in changes.items():
        monkeypatch.setenv(name, value)
        desk.env[name] = value
    get_settings.cache_clear()
    return desk


def outbox_rows() -> list[OutboxEmail]:
    with session_scope() as session:
        return list(session.exec(select(OutboxEmail).order_by(OutboxEmail.id)).all())  # type: ignore[arg-type]


def events(kind: str) -> list[Event]:
    with session_scope() as session:
        return list(session.exec(select(Event).where(Event.kind == kind)).all())


def test_an_internationalised_sender_is_acknowledged_over_smtputf8(
    desk: Desk, smtp_sink: SmtpSink
) -> None:
    store(read_email("from-internationalised-address.eml"))

    run = desk.consultant("run", "--once")

    assert run.returncode == 0, run.stderr
    assert "sent 1 email(s), 0 not sent" in run.stdout
    [ack] = smtp_sink.wait_for(1, timeout=10)
    assert ack.rcpt_tos == (INTERNATIONAL,)
    assert f"To: {INTERNATIONAL}\r\n".encode() in ack.raw  # UTF-8, as RFC 6532 has it
    [row] = outbox_rows()
    assert (row.kind, row.recipient, row.status, row.attempts) == ("ack", INTERNATIONAL, "sent", 1)
    with session_scope() as session:
        [ticket] = session.exec(select(Ticket)).all()
    assert ticket.requester == INTERNATIONAL


def test_without_smtputf8_at_the_relay_the_ack_fails_with_the_reason_and_others_still_go(
    ascii_only_desk: Desk, ascii_only_sink: SmtpSink
) -> None:
    store(read_email("from-internationalised-address.eml"))
    store(read_email("case-home-infusion.eml"))

    run = ascii_only_desk.consultant("run", "--once")

    assert run.returncode == 0, run.stderr
    assert "sent 1 email(s), 1 not sent" in run.stdout
    [delivered] = ascii_only_sink.wait_for(1, timeout=10)
    assert delivered.rcpt_tos == ("dana@clinic.example",)
    failed, sent = outbox_rows()
    assert (failed.recipient, failed.status, sent.status) == (INTERNATIONAL, "failed", "sent")
    assert NEEDS_SMTPUTF8 in (failed.last_error or "")
    [event] = events("mail.failed")
    assert event.ticket_id == failed.ticket_id and NEEDS_SMTPUTF8 in (event.detail or "")

    shown = ascii_only_desk.consultant("status")
    assert shown.returncode == 0, shown.stderr
    assert "1 failed, 1 sent" in shown.stdout
    assert f"ack of CC-{failed.ticket_id}: the recipient's address {NEEDS_SMTPUTF8}" in shown.stdout
    report = json.loads(ascii_only_desk.consultant("status", "--json").stdout)
    assert report["outbox"] == {"failed": 1, "sent": 1}
    [latest] = report["outbox_failures"]
    assert (latest["ticket"], latest["kind"]) == (f"CC-{failed.ticket_id}", "ack")
    assert NEEDS_SMTPUTF8 in latest["reason"]
    for private in ("99349", INTERNATIONAL):  # neither the email nor its recipient
        assert private not in shown.stdout + json.dumps(report, ensure_ascii=False)


@pytest.mark.parametrize("connections", ["1", "3"])
def test_an_unexpected_error_sending_one_email_leaves_none_sending_and_the_rest_sent(
    desk: Desk, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch, connections: str
) -> None:
    monkeypatch.setenv("CONSULTANT_SMTP_CONNECTIONS", connections)
    get_settings.cache_clear()
    for n in range(4):
        raw = read_email("case-home-infusion.eml").replace(b"dana@", f"dana{n}@".encode())
        store(raw.replace(b"<case-home-infusion@", f"<case-home-infusion-{n}@".encode()))
    process_inbound_emails(due_inbound_ids())
    damaged = "@@@\r\nRCPT TO:<someone@else.example>"
    with session_scope() as session:  # a row no relay could be given: smtplib refuses it
        session.exec(update(OutboxEmail).where(OutboxEmail.id == 2).values(recipient=damaged))  # type: ignore[call-overload, arg-type]

    report = drain()

    assert (report.sent, report.send_failures) == (3, 1)
    assert [row.status for row in outbox_rows()] == ["sent", "failed", "sent", "sent"]
    bad = outbox_rows()[1]
    assert "unexpected error" in (bad.last_error or "") and "newline" in (bad.last_error or "")
    assert sorted(m.rcpt_tos[0] for m in smtp_sink.wait_for(3, timeout=10)) == [
        "dana0@clinic.example",
        "dana2@clinic.example",
        "dana3@clinic.example",
    ]


@pytest.mark.parametrize(
    ("name", "shown_as"),
    [
        ("from-not-an-address.eml", '"Dana" <not an address>'),
        ("from-at-signs-only.eml", "@@@"),
        ("from-address-with-empty-domain-label.eml", "dana@clinic..example"),
        ("from-empty.eml", "is empty"),
        ("no-from-header.eml", "no From field"),
    ],
)
def test_a_from_that_holds_no_address_gets_no_automatic_mail_and_the_ticket_says_why(
    desk: Desk, smtp_sink: SmtpSink, name: str, shown_as: str
) -> None:
    store(read_email(name), envelope_from=None)

    report = drain()

    assert (report.processed, report.failed) == (1, 0)
    assert outbox_rows() == []
    assert smtp_sink.messages == []
    [event] = events("reply.skipped")
    with session_scope() as session:
        [ticket] = session.exec(select(Ticket)).all()
    assert event.ticket_id == ticket.id
    assert shown_as in (event.detail or "") and "no automatic email" in (event.detail or "")
