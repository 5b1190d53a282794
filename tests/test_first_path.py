"""The first path end to end: Dovecot → poller → Redis → Celery worker → SMTP sink."""

from __future__ import annotations

import time
from email import message_from_bytes, policy

from sqlmodel import func, select

from consultant.config import get_settings, parse_mailbox_url
from consultant.db import session_scope
from consultant.mail.imap import poll_once
from consultant.models import Ticket
from tests.conftest import CaseMailbox, Desk, read_email
from tests.servers.smtp_sink import SmtpSink

CASES = (
    "case-home-infusion.eml",
    "case-modifier-25-html-alternative.eml",
    "case-with-pdf-attachment.eml",
)


def case_message_ids() -> set[str]:
    return {str(message_from_bytes(read_email(name))["Message-ID"]) for name in CASES}


def test_three_emails_in_the_mailbox_get_three_threaded_acknowledgements_once(
    celery_desk: Desk, mailbox: CaseMailbox, smtp_sink: SmtpSink
) -> None:
    mailbox.append(*(read_email(name) for name in CASES))
    target = parse_mailbox_url(mailbox.url)

    first = poll_once(target, settings=get_settings())
    acks = [message_from_bytes(m.raw, policy=policy.default) for m in smtp_sink.wait_for(3, 30)]

    assert (first.seen, len(first.stored)) == (3, 3)
    assert {str(ack["In-Reply-To"]) for ack in acks} == case_message_ids()
    assert all(ack["Auto-Submitted"] == "auto-replied" for ack in acks)
    with session_scope() as session:
        tickets = session.exec(select(Ticket)).all()
        assert len(tickets) == 3
        assert {f"[#CC-{t.id}]" for t in tickets} == {
            "[#" + str(ack["Subject"]).rsplit("[#", 1)[1] for ack in acks
        }

    second = poll_once(target, settings=get_settings())
    time.sleep(2)  # give a wrongly re-queued email time to show up at the sink

    assert (second.seen, second.stored) == (0, [])
    assert len(smtp_sink.messages) == 3
    with session_scope() as session:
        assert session.exec(select(func.count()).select_from(Ticket)).one() == 3
