"""The ``codes`` queue end to end: Dovecot → poller → Redis → Celery worker → lookups."""

from __future__ import annotations

import time

from sqlmodel import col, select

from consultant import dispatch
from consultant.config import get_settings, parse_mailbox_url
from consultant.db import session_scope
from consultant.mail.imap import poll_once
from consultant.models import CodeLookup, Ticket
from tests.conftest import CaseMailbox, Desk, read_email


def wait_for_lookups(ticket_id: int, count: int, timeout: float = 60) -> list[CodeLookup]:
    deadline = time.monotonic() + timeout
    while True:
        with session_scope() as session:
            rows = list(
                session.exec(
                    select(CodeLookup)
                    .where(CodeLookup.ticket_id == ticket_id)
                    .order_by(col(CodeLookup.id))
                )
            )
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_a_new_case_gets_its_codes_looked_up_once(celery_desk: Desk, mailbox: CaseMailbox) -> None:
    mailbox.append(read_email("case-home-infusion.eml"))
    poll_once(parse_mailbox_url(mailbox.url), settings=get_settings())

    deadline = time.monotonic() + 60
    ticket = None
    while ticket is None and time.monotonic() < deadline:
        with session_scope() as session:
            ticket = session.exec(select(Ticket)).first()
        time.sleep(0.2)
    assert ticket is not None and ticket.id is not None
    rows = wait_for_lookups(ticket.id, 3)
    assert {(r.system, r.code, r.units) for r in rows} == {
        ("cpt", "99601", None),
        ("cpt", "99602", 2),
        ("icd10cm", "E11.9", None),
    }

    dispatch.codes_needed([ticket.id])  # a redelivered task stores nothing new
    time.sleep(3)
    with session_scope() as session:
        again = session.exec(select(CodeLookup).where(CodeLookup.ticket_id == ticket.id)).all()
        routed = session.get(Ticket, ticket.id)
    assert len(again) == 3
    assert routed is not None and routed.specialty == "medicine-home-health"
