"""The ``consultant`` command as scripts and new users meet it."""

from __future__ import annotations

import json

import pytest

from tests.conftest import CaseMailbox, Desk, read_email
from tests.servers.smtp_sink import SmtpSink


def test_run_once_tickets_every_email_in_the_mailbox_and_a_second_run_sends_nothing(
    desk: Desk, mailbox: CaseMailbox, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox.append(
        read_email("case-home-infusion.eml"),
        read_email("case-with-pdf-attachment.eml"),
        read_email("out-of-office-auto-submitted.eml"),
    )
    desk.env["CONSULTANT_IMAP_URL"] = mailbox.url

    first = desk.consultant("run", "--once")
    assert first.returncode == 0, first.stderr
    assert "processed 3 email(s), 0 failed; sent 2 email(s)" in first.stdout
    assert len(smtp_sink.wait_for(2, timeout=10)) == 2

    second = desk.consultant("run", "--once")
    assert second.returncode == 0, second.stderr
    assert "processed 0 email(s), 0 failed; sent 0 email(s)" in second.stdout
    assert len(smtp_sink.messages) == 2

    listed = json.loads(desk.consultant("tickets", "list", "--json").stdout)
    assert [t["requester"] for t in listed] == [
        "dana@clinic.example",
        "billing@radiology-partners.example",
    ]

    shown = desk.consultant("tickets", "show", str(listed[1]["number"]), "--json")
    detail = json.loads(shown.stdout)
    assert detail["messages"][0]["attachments"][0]["filename"] == "report-deidentified.pdf"
    [ack] = detail["outbox"]
    assert (ack["kind"], ack["status"], ack["attempts"]) == ("ack", "sent", 1)


def test_showing_a_ticket_that_does_not_exist_says_so(desk: Desk) -> None:
    result = desk.consultant("tickets", "show", "999", "--json")
    assert result.returncode == 1
    assert "no ticket CC-999" in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CONSULTANT_IMAP_URL", "pop3://desk:pw@127.0.0.1/INBOX", "unknown scheme 'pop3'"),
        ("CONSULTANT_IMAP_URL", "imap://desk:secret@127.0.0.1:notaport/INBOX", "bad port"),
        ("CONSULTANT_SMTP_URL", "http://relay.example", "unknown scheme 'http'"),
        ("CONSULTANT_DESK_ADDRESS", "not an address", "is not an email address"),
        ("CONSULTANT_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none", "cannot connect"),
        ("CONSULTANT_DATABASE_URL", "nosuchdb://x", "CONSULTANT_DATABASE_URL"),
    ],
)
def test_bad_configuration_stops_with_one_line_naming_the_setting(
    desk: Desk, name: str, value: str, message: str
) -> None:
    desk.env[name] = value
    result = desk.consultant("tickets", "list")

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"configuration error: {name}")
    assert message in lines[0]
    assert "secret" not in lines[0]  # a password in a URL is never echoed
