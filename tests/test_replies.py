"""Automatic emails: who may be charged, who gets answered, how often, and what they say."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlmodel import select

from consultant.config import get_settings
from consultant.db import session_scope
from consultant.mail.compose import new_message_id, ticket_number_in
from consultant.models import Event, OutboxEmail, QuotaEntry, Ticket, utcnow
from consultant.worker import drain
from tests.cases import add_coder, case_email, store
from tests.conftest import Desk
from tests.servers.smtp_sink import SmtpSink

OUR_MTA = "mx.desk.example"


def received(sink: SmtpSink, count: int) -> list[EmailMessage]:
    return [
        message_from_bytes(m.raw, policy=policy.default)  # type: ignore[misc]
        for m in sink.wait_for(count, timeout=10)
    ]


def only_ticket() -> Ticket:
    with session_scope() as session:
        [ticket] = session.exec(select(Ticket)).all()
        return ticket


def charged() -> int:
    with session_scope() as session:
        return len(session.exec(select(QuotaEntry)).all())


@pytest.fixture
def trusting_our_mta(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> Desk:
    monkeypatch.setenv("CONSULTANT_AUTHSERV_ID", OUR_MTA)
    get_settings.cache_clear()
    return desk


@pytest.mark.parametrize(
    ("auth_results", "trusted"),
    [
        ([f"{OUR_MTA}; dmarc=pass (p=reject) header.from=clinic.example"], True),
        ([f"{OUR_MTA}; dkim=pass header.d=clinic.example; dmarc=none"], True),
        ([f"{OUR_MTA}; dkim=pass header.d=bulk-sender.example; dmarc=fail"], False),
        ([f"{OUR_MTA}; dmarc=fail header.from=clinic.example"], False),
        ([], False),
        (["mx.forger.example; dmarc=pass header.from=clinic.example"], False),
        # Our MTA prepends its header; a forged one with our id sits below it.
        (
            [f"{OUR_MTA}; dmarc=fail header.from=clinic.example", f"{OUR_MTA}; dmarc=pass"],
            False,
        ),
    ],
    ids=[
        "dmarc-pass",
        "aligned-dkim",
        "unaligned-dkim",
        "dmarc-fail",
        "missing",
        "foreign",
        "forged-below",
    ],
)
def test_a_case_is_charged_only_when_our_mta_vouches_for_the_sender(
    trusting_our_mta: Desk, smtp_sink: SmtpSink, auth_results: list[str], trusted: bool
) -> None:
    raw = case_email("dana@clinic.example").replace(
        b"From:",
        b"".join(f"Authentication-Results: {h}\n".encode() for h in auth_results) + b"From:",
        1,
    )
    store(raw)
    drain()

    ticket = only_ticket()
    if trusted:
        assert (ticket.status, charged()) == ("new", 1)
        assert len(received(smtp_sink, 1)) == 1
    else:
        assert (ticket.status, charged()) == ("held_unverified", 0)
        assert smtp_sink.messages == []  # the From may be forged: its owner hears nothing


def test_at_most_ten_automatic_emails_per_recipient_a_day(desk: Desk, smtp_sink: SmtpSink) -> None:
    desk.consultant("accounts", "add", "busy@clinic.example", "--plan", "unlimited")
    for n in range(12):
        store(case_email("busy@clinic.example", subject=f"case {n}"))
    drain()

    assert len(received(smtp_sink, 10)) == 10
    with session_scope() as session:
        assert len(session.exec(select(Ticket)).all()) == 12
        suppressed = session.exec(select(Event).where(Event.kind == "ack.suppressed")).all()
    assert len(suppressed) == 2
    assert len(smtp_sink.messages) == 10


def test_an_address_that_bounced_gets_no_automatic_email_for_a_while(
    desk: Desk, smtp_sink: SmtpSink
) -> None:
    desk.consultant("accounts", "add", "gone@clinic.example", "--plan", "unlimited")
    store(case_email("gone@clinic.example"))
    drain()
    received(smtp_sink, 1)
    with session_scope() as session:
        [ack] = session.exec(select(OutboxEmail)).all()
        ack.bounced_at = utcnow()
        session.add(ack)

    store(case_email("gone@clinic.example", subject="again"))
    drain()

    assert len(smtp_sink.messages) == 1
    with session_scope() as session:
        assert len(session.exec(select(Ticket)).all()) == 2


def test_hostile_subjects_render_as_plain_words(desk: Desk, smtp_sink: SmtpSink) -> None:
    hostile = "{{ 7*7 }} <script>alert(1)</script> " + "x" * 5000
    raw = case_email("dana@clinic.example", subject=hostile)
    garbage = case_email("dana@clinic.example", subject="x").replace(
        b"Subject: x",
        b"Subject: =?utf-8?B?####?= =?unknown-8?Q?=FF=FE?=\n\tBcc: victim@example.com",
    )
    store(raw)
    store(garbage)
    drain()

    htmls = []
    for ack in received(smtp_sink, 2):
        subject = str(ack["Subject"])
        assert len(subject) < 260 and "\n" not in subject
        assert ack["Bcc"] is None
        htmls.append(ack.get_body(("html",)).get_content())  # type: ignore[union-attr]
        assert "<script>" not in htmls[-1]
        assert "49" not in subject
    assert any("{{ 7*7 }} &lt;script&gt;" in html for html in htmls)


@pytest.mark.parametrize(
    "subject",
    [
        "Can we bill 99213-25 with 20610 on the same day? " * 4,
        "Kodierung: Grüße, 99213 und 25 " * 4,
    ],
    ids=["long-ascii", "long-non-ascii"],
)
def test_acknowledgements_keep_to_the_line_limit_and_read_back_as_written(
    desk: Desk, smtp_sink: SmtpSink, subject: str
) -> None:
    store(case_email("dana@clinic.example", subject=subject))
    drain()

    [ack] = received(smtp_sink, 1)
    raw = smtp_sink.messages[0].raw
    assert raw.isascii()  # encoded words and quoted-printable: any relay carries it
    header_lines = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert max(len(line) for line in header_lines) <= 78  # RFC 5322 2.1.1
    assert " ".join(subject.split()) in " ".join(str(ack["Subject"]).split())
    assert ack["In-Reply-To"] and ack["Message-ID"] and ack["Auto-Submitted"] == "auto-replied"
    text = ack.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = ack.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "CC-1" in text and "CC-1" in html


def test_an_admin_can_override_a_template(
    desk: Desk, smtp_sink: SmtpSink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    overrides = tmp_path / "our-templates"
    (overrides / "email").mkdir(parents=True)
    (overrides / "email" / "ack.txt.j2").write_text("Thanks! Your case is {{ reference }}.\n")
    monkeypatch.setenv("CONSULTANT_TEMPLATE_OVERRIDES", str(overrides))
    get_settings.cache_clear()
    store(case_email("dana@clinic.example"))
    drain()

    [ack] = received(smtp_sink, 1)
    text = ack.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.strip() == "Thanks! Your case is CC-1."
    assert "within 48 hours, by " in ack.get_body(("html",)).get_content()  # type: ignore[union-attr]


def test_our_message_ids_carry_a_signed_ticket_number(desk: Desk) -> None:
    message_id = new_message_id(42)

    assert message_id.endswith("@desk.example>")
    assert ticket_number_in(message_id) == 42
    assert ticket_number_in(message_id.replace("<cc42.", "<cc43.")) is None
    assert ticket_number_in("<cc42.abc.def@desk.example>") is None


def test_a_coders_answer_threads_back_and_a_reply_reopens_the_solved_case(
    desk: Desk, smtp_sink: SmtpSink
) -> None:
    add_coder("coder@desk.example", specialties="generalist")
    store(case_email("dana@clinic.example"))
    drain()
    answered = desk.consultant(
        "tickets",
        "answer",
        "1",
        "--by",
        "coder@desk.example",
        "--text",
        "Yes: 99213-25 <b>and</b> 20610.",
    )
    assert answered.returncode == 0, answered.stderr
    drain()  # the answer goes out before the case is closed, as a coder works
    desk.consultant("tickets", "solve", "1", "--by", "coder@desk.example")
    drain()
    ack, answer, solved = received(smtp_sink, 3)

    assert answer["In-Reply-To"] == ack["In-Reply-To"]  # under the customer's email
    assert answer["Auto-Submitted"] is None  # a person wrote it
    assert "[#CC-1]" in answer["Subject"]
    assert "Yes: 99213-25 <b>and</b> 20610." in answer.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "&lt;b&gt;and&lt;/b&gt;" in answer.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert only_ticket().status == "solved"

    store(
        case_email(
            "dana@clinic.example",
            subject="Re: thanks",
            headers={"In-Reply-To": solved["Message-ID"]},
        )
    )
    drain()

    assert only_ticket().status == "open"
    assert len(smtp_sink.messages) == 3  # a follow-up gets no new acknowledgement


def test_an_email_over_the_size_limit_is_kept_and_its_sender_told(
    desk: Desk, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSULTANT_MAX_MESSAGE_BYTES", "2048")
    get_settings.cache_clear()
    inbound_id = store(case_email("dana@clinic.example", body="scan " * 1000))
    drain()

    [reply] = received(smtp_sink, 1)
    assert "larger than the 2 KB this desk" in reply.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "no case was" in reply.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    with session_scope() as session:
        assert session.exec(select(Ticket)).all() == []
        from consultant.models import InboundEmail

        kept = session.get(InboundEmail, inbound_id)
        assert kept is not None and kept.status == "processed" and kept.size > 2048
