"""The bad-input corpus: every odd email gets its defined outcome, and none is lost.

``tests/emails/corpus/expected.json`` says, for each ``.eml`` beside it, what must happen:
``ticket`` (a new ticket, acknowledged), ``no-ack-ticket`` (a ticket nobody can be told
about), ``automatic`` (no ticket, no answer), ``attached`` (a machine's answer to one of
our emails, joining that email's ticket) or ``failed`` (kept, with the stage and error).
Optional keys name what a person must read (``text``, ``subject``, ``sender_name``…) and
the machine ``kind`` the classifier must see.
"""

from __future__ import annotations

import json
from email import message_from_bytes
from typing import Any

import pytest
from sqlmodel import select

from consultant.db import session_scope
from consultant.mail.autoreply import classify
from consultant.mail.parse import ParsedEmail, ParseError, parse_email
from consultant.models import InboundEmail, Message, OutboxEmail
from consultant.worker import drain
from tests.cases import case_email, store
from tests.conftest import EMAILS, Desk, read_email
from tests.servers.smtp_sink import SmtpSink

CORPUS = EMAILS / "corpus"
EXPECTED: dict[str, dict[str, Any]] = json.loads((CORPUS / "expected.json").read_text())
OUR_EMAIL_ID = "<cc1.test.sig@desk.example>"  # what a bounce returns, in the unit tests


def corpus_email(name: str, *, original_id: str, recipient: str) -> bytes:
    """A corpus email, its placeholders naming the email of ours it answers or returns."""
    return (
        read_email(f"corpus/{name}.eml")
        .replace(b"@@ORIGINAL_MESSAGE_ID@@", original_id.encode())
        .replace(b"@@RECIPIENT@@", recipient.encode())
    )


def test_the_corpus_is_complete() -> None:
    on_disk = {path.stem for path in CORPUS.glob("*.eml")}
    assert on_disk == set(EXPECTED)
    assert len(on_disk) >= 60


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_email_parses_and_classifies_as_a_person_reads_it(name: str) -> None:
    expected = EXPECTED[name]
    raw = corpus_email(name, original_id=OUR_EMAIL_ID, recipient="gone@clinic.example")
    if expected["outcome"] == "failed":
        with pytest.raises(ParseError):
            parse_email(raw)
        return

    parsed = parse_email(raw)
    verdict = classify(
        parsed.headers, sender=parsed.sender, envelope_from=None, own_domain="desk.example"
    )

    assert_reads_as_expected(parsed, expected)
    expected_kind = expected.get(
        "kind", "normal" if expected["outcome"].endswith("ticket") else None
    )
    if expected_kind:
        assert verdict.kind == expected_kind, verdict.reason
    if expected["outcome"] == "attached" and verdict.kind == "bounce":
        assert OUR_EMAIL_ID in {
            *parsed.returned_message_ids,
            *parsed.references,
            parsed.in_reply_to,
        }


def assert_reads_as_expected(parsed: ParsedEmail, expected: dict[str, Any]) -> None:
    """Decoded text equals what a person reads: no replacement characters, no NUL."""
    if "text" in expected:
        assert expected["text"] in parsed.text
    if "subject" in expected:
        assert parsed.subject == expected["subject"]
    if "subject_contains" in expected:
        assert expected["subject_contains"] in parsed.subject
    if "sender_name" in expected:
        assert parsed.sender_name == expected["sender_name"]
    if "html" in expected:
        assert expected["html"] in (parsed.html or "")
    for unwanted in expected.get("html_absent", []):
        assert unwanted not in (parsed.html or "") + parsed.text
    if "attachments" in expected:
        found = [[part.filename, part.content_type] for part in parsed.attachments]
        assert found == expected["attachments"]
    readable = [parsed.text, parsed.subject, parsed.sender_name, *parsed.headers.values()]
    assert not any("\ufffd" in value or "\x00" in value for value in readable)
    assert "\x00" not in (parsed.html or "") + parsed.message_id


def test_every_corpus_email_gets_its_outcome_and_none_is_lost(
    desk: Desk, smtp_sink: SmtpSink
) -> None:
    store(case_email("seed@clinic.example"))
    drain()
    [ack] = smtp_sink.wait_for(1, timeout=10)
    ours = message_from_bytes(ack.raw)
    inbound_ids = {
        name: store(
            corpus_email(name, original_id=str(ours["Message-ID"]), recipient=str(ours["To"]))
        )
        for name in sorted(EXPECTED)
    }
    report = drain()  # an exception escaping any stage would fail the test here

    assert None not in inbound_ids.values(), "an email was taken for a duplicate"
    with session_scope() as session:
        seed_ticket = session.exec(
            select(OutboxEmail.ticket_id).where(OutboxEmail.message_id == ours["Message-ID"])
        ).one()
        inbound = {row.id: row for row in session.exec(select(InboundEmail)).all()}
        acknowledged = {
            row.ticket_id for row in session.exec(select(OutboxEmail)).all() if row.kind == "ack"
        }
        automatic_messages = {
            row.inbound_id
            for row in session.exec(select(Message).where(Message.is_automatic)).all()
        }
        outcomes = {
            name: outcome_of(inbound[i], seed_ticket, acknowledged, automatic_messages)
            for name, i in inbound_ids.items()
            if i is not None
        }
    assert len(inbound) == len(EXPECTED) + 1  # nothing lost: every raw email is kept
    assert outcomes == {name: expected["outcome"] for name, expected in EXPECTED.items()}
    assert report.failed == sum(e["outcome"] == "failed" for e in EXPECTED.values())
    answered = {rcpt for message in smtp_sink.messages for rcpt in message.rcpt_tos}
    persons = {f"{name}@clinic.example" for name, e in EXPECTED.items() if e["outcome"] == "ticket"}
    assert answered == persons | {"seed@clinic.example"}  # machines got nothing
    assert len(smtp_sink.messages) == len(persons) + 1


def outcome_of(
    row: InboundEmail, seed_ticket: int | None, acknowledged: set[int | None], automatic: set[int]
) -> str:
    """What happened to one stored email, in the manifest's words."""
    if row.status != "processed":
        assert row.stage == "parse" and row.error and row.error.startswith("ParseError")
        return "failed" if row.status == "failed" else row.status
    if row.ticket_id is None:
        assert (row.stage or "").startswith("automatic: ")
        return "automatic"
    if row.ticket_id == seed_ticket:
        assert row.id in automatic
        return "attached"
    return "ticket" if row.ticket_id in acknowledged else "no-ack-ticket"
