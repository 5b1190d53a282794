"""Raw email → ticket → acknowledgement, in-process, on SQLite and PostgreSQL."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

from sqlmodel import func, select

from consultant.db import session_scope
from consultant.mail.compose import new_message_id
from consultant.models import Attachment, Event, InboundEmail, Message, OutboxEmail, Ticket
from consultant.pipeline import process_inbound
from consultant.worker import drain
from tests.cases import case_email, store
from tests.conftest import DESK_ADDRESS, Desk, read_email
from tests.servers.smtp_sink import SmtpSink


def count(model: type) -> int:
    with session_scope() as session:
        return session.exec(select(func.count()).select_from(model)).one()


def received(sink: SmtpSink, count: int = 1) -> list[EmailMessage]:
    return [
        message_from_bytes(message.raw, policy=policy.default)  # type: ignore[misc]
        for message in sink.wait_for(count, timeout=10)
    ]


def test_a_case_becomes_a_ticket_and_its_sender_gets_one_threaded_acknowledgement(
    desk: Desk, smtp_sink: SmtpSink
) -> None:
    store(read_email("case-home-infusion.eml"))
    report = drain()

    assert (report.processed, report.sent) == (1, 1)
    with session_scope() as session:
        [ticket] = session.exec(select(Ticket)).all()
    assert ticket.requester == "dana@clinic.example"
    assert ticket.subject == "Home infusion 3.5 hours: 99601 and 99602?"
    [ack] = received(smtp_sink)
    assert ack["To"] == "dana@clinic.example"
    assert f"[#CC-{ticket.id}]" in ack["Subject"]
    assert ack["In-Reply-To"] == "<case-home-infusion@clinic.example>"
    assert "<case-home-infusion@clinic.example>" in ack["References"]
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["Message-ID"].endswith("@desk.example>")
    body = ack.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"CC-{ticket.id}" in body
    # RFC 3834: the answer echoes nothing of the case but its subject.
    assert "3.5 hours (dx" not in body and "E11.9" not in body


def test_processing_an_email_again_changes_nothing(desk: Desk, smtp_sink: SmtpSink) -> None:
    inbound_id = store(read_email("case-home-infusion.eml"))
    assert inbound_id is not None
    first = process_inbound(inbound_id=inbound_id)
    second = process_inbound(inbound_id=inbound_id)
    drain()
    drain()

    assert first.ticket_id == second.ticket_id
    assert (count(Ticket), count(Message), count(OutboxEmail)) == (1, 1, 1)
    received(smtp_sink)
    assert len(smtp_sink.messages) == 1


def test_the_same_email_arriving_again_by_another_route_is_stored_once(desk: Desk) -> None:
    raw = read_email("case-home-infusion.eml")
    relayed = b"Received: from mx.clinic.example by desk.example; Thu, 26 Nov 2026\r\n" + raw

    assert store(raw) is not None
    assert store(raw) is None
    assert store(relayed, envelope_from="dana@clinic.example") is None
    assert count(InboundEmail) == 1


def test_a_reply_to_the_acknowledgement_joins_its_ticket_without_a_new_acknowledgement(
    desk: Desk, smtp_sink: SmtpSink
) -> None:
    store(read_email("case-home-infusion.eml"))
    drain()
    [ack] = received(smtp_sink)
    reply = EmailMessage()
    reply["From"] = "Dana Biller <dana@clinic.example>"
    reply["To"] = DESK_ADDRESS
    reply["Subject"] = f"Re: {ack['Subject']}"
    reply["Message-ID"] = "<reply-1@clinic.example>"
    reply["In-Reply-To"] = ack["Message-ID"]
    reply["References"] = f"{ack['References']} {ack['Message-ID']}"
    reply.set_content("Forgot to say: the infusion started at 9:10.")
    store(reply.as_bytes())
    drain()

    assert count(Ticket) == 1
    with session_scope() as session:
        thread = session.exec(select(Message).order_by(Message.id)).all()  # type: ignore[arg-type]
    assert [m.message_id for m in thread] == [
        "<case-home-infusion@clinic.example>",
        "<reply-1@clinic.example>",
    ]
    assert count(OutboxEmail) == 1


def test_an_out_of_office_reply_makes_no_ticket_and_gets_no_answer(
    desk: Desk, smtp_sink: SmtpSink
) -> None:
    inbound_id = store(read_email("out-of-office-auto-submitted.eml"))
    drain()

    assert (count(Ticket), count(OutboxEmail)) == (0, 0)
    with session_scope() as session:
        inbound = session.get(InboundEmail, inbound_id)
    assert inbound is not None and inbound.status == "processed"
    assert inbound.stage == "automatic: Auto-Submitted: auto-replied"
    assert smtp_sink.messages == []


def test_a_bounce_with_an_empty_return_path_gets_no_answer(desk: Desk, smtp_sink: SmtpSink) -> None:
    store(read_email("case-home-infusion.eml"), envelope_from="")
    drain()

    assert count(OutboxEmail) == 0
    assert smtp_sink.messages == []


def test_an_email_without_a_sender_is_kept_as_a_ticket_but_not_acknowledged(
    desk: Desk, smtp_sink: SmtpSink
) -> None:
    store(read_email("no-from-header.eml"), envelope_from=None)
    report = drain()

    assert report.failed == 0
    assert (count(Ticket), count(OutboxEmail)) == (1, 0)
    assert smtp_sink.messages == []


def test_html_is_sanitised_and_latin1_text_decoded(desk: Desk, smtp_sink: SmtpSink) -> None:
    store(read_email("case-modifier-25-html-alternative.eml"))
    drain()

    with session_scope() as session:
        [message] = session.exec(select(Message)).all()
    assert "Café talk" in message.body_text
    assert message.body_html is not None and "<b>99213-25</b>" in message.body_html
    assert "tracker.example" not in message.body_html  # no remote fetch when displayed
    [ack] = received(smtp_sink)
    assert "Modifier 25 on 99213 with a joint injection \u2013 OK?" in ack["Subject"]


def test_attachments_are_kept_with_their_hash(desk: Desk, smtp_sink: SmtpSink) -> None:
    store(read_email("case-with-pdf-attachment.eml"))
    drain()

    with session_scope() as session:
        [attachment] = session.exec(select(Attachment)).all()
    assert attachment.filename == "report-deidentified.pdf"
    assert attachment.content_type == "application/pdf"
    assert attachment.content.startswith(b"%PDF-1.4")
    assert len(attachment.sha256) == 64


def test_a_subject_token_joins_the_ticket_only_for_someone_taking_part(
    desk: Desk, smtp_sink: SmtpSink
) -> None:
    store(read_email("case-home-infusion.eml"))
    drain()
    [ack] = received(smtp_sink)
    subject = f"Re: {ack['Subject']}"  # a client that dropped In-Reply-To and References

    store(case_email("dana@clinic.example", subject=subject, body="Also: the pump was ours."))
    store(case_email("stranger@elsewhere.example", subject=subject, body="Let me in."))
    drain()

    with session_scope() as session:
        tickets = session.exec(select(Ticket).order_by(Ticket.id)).all()  # type: ignore[arg-type]
        first_thread = session.exec(select(Message).where(Message.ticket_id == tickets[0].id)).all()
        [note] = session.exec(select(Event).where(Event.kind == "thread.foreign_reference")).all()
    assert [m.sender for m in first_thread] == ["dana@clinic.example", "dana@clinic.example"]
    assert [t.requester for t in tickets] == ["dana@clinic.example", "stranger@elsewhere.example"]
    assert note.ticket_id == tickets[1].id and "CC-1" in (note.detail or "")


def test_our_signed_message_id_finds_the_ticket_even_without_its_outbox_row(
    desk: Desk, smtp_sink: SmtpSink
) -> None:
    store(read_email("case-home-infusion.eml"))
    drain()
    forwarded_reference = new_message_id(1)  # ours, signed, but never stored anywhere

    store(
        case_email(
            "dana@clinic.example", subject="more", headers={"References": forwarded_reference}
        )
    )
    drain()

    assert count(Ticket) == 1
    assert count(Message) == 2
