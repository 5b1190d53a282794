"""Looking a ticket's codes up into ``code_lookups``, on SQLite and on PostgreSQL."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from consultant.codes.formats import HCPCS, ICD10CM
from consultant.codes.hcpcs import parse_hcpcs
from consultant.codes.lookup import attach_code_lookups, look_up_codes
from consultant.codes.records import CodeRecord
from consultant.codes.store import load_codes
from consultant.db import session_scope
from consultant.inbound import Arrival, due_inbound_ids, store_arrival
from consultant.models import Attachment, CodeLookup, Message, Ticket, utcnow
from consultant.pipeline import process_inbound
from consultant.tickets import ticket_detail
from consultant.worker import drain
from tests.codes.conftest import AS_OF, hcpcs_fixture_bytes, make_pdf
from tests.conftest import DESK_ADDRESS, Desk, read_email


def add_message(
    session: Session, ticket: Ticket, body: str, *, direction: str = "in", subject: str = ""
) -> Message:
    message = Message(
        ticket_id=ticket.id,
        direction=direction,
        message_id=f"<{body[:8].replace(' ', '')}@clinic.example>",
        sender="pat@clinic.example",
        subject=subject or ticket.subject,
        body_text=body,
    )
    session.add(message)
    session.flush()
    return message


def attach(session: Session, message: Message, name: str, content_type: str, data: bytes) -> None:
    session.add(
        Attachment(
            message_id=message.id,
            filename=name,
            content_type=content_type,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            content=data,
        )
    )


@pytest.fixture
def case(code_engine: Engine, diabetes_records: list[CodeRecord]) -> int:
    """A loaded catalog and a two-email case with a PDF, a text file and a reply of ours."""
    with Session(code_engine) as session:
        load_codes(session, ICD10CM, "2026-04", diabetes_records)
        load_codes(session, HCPCS, "test", parse_hcpcs(hcpcs_fixture_bytes()))
        ticket = Ticket(subject="Home infusion 99601 question", requester="pat@clinic.example")
        session.add(ticket)
        session.flush()
        first = add_message(
            session,
            ticket,
            "We billed 99601 and 99602 x2, dx E11.9. Call me at 555-201-3390, ZIP 60614.",
        )
        attach(session, first, "visit.pdf", "application/pdf", make_pdf("Drug J9990 x4 units"))
        attach(session, first, "notes.txt", "text/plain", b"99213 in a text file is not read")
        attach(session, first, "broken.pdf", "application/pdf", b"%PDF-1.4 not really")
        add_message(session, ticket, "Should it be 99213? We use 99213-25 here.", direction="out")
        add_message(session, ticket, "Also 96365 for the first hour; still E11.9.")
        session.commit()
        assert ticket.id is not None
        return ticket.id


def lookups(session: Session, ticket_id: int) -> list[CodeLookup]:
    query = select(CodeLookup).where(CodeLookup.ticket_id == ticket_id).order_by(col(CodeLookup.id))
    return list(session.exec(query))


def test_lookups_are_stored_once(code_engine: Engine, case: int) -> None:
    with Session(code_engine) as session:
        stored = attach_code_lookups(session, ticket_ids=[case], as_of=AS_OF)
        session.commit()
    with Session(code_engine) as session:
        again = attach_code_lookups(session, ticket_ids=[case], as_of=AS_OF)
        session.commit()
        rows = lookups(session, case)
        ticket = session.get(Ticket, case)
        assert ticket is not None
        specialty = ticket.specialty
    assert again == 0
    assert stored == len(rows) == 7  # the reply repeats the subject's 99601
    seen = {
        (row.source, row.system, row.code, row.modifiers, row.units, row.status) for row in rows
    }
    assert seen == {
        ("subject", "cpt", "99601", "", None, "format-only"),
        ("body", "cpt", "99602", "", 2, "format-only"),
        ("body", "icd10cm", "E11.9", "", None, "valid"),
        ("attachment:visit.pdf", "hcpcs", "J9990", "", 4, "valid"),
        ("body", "cpt", "96365", "", None, "format-only"),
        ("body", "icd10cm", "E11.9", "", None, "valid"),
    }
    assert specialty == "medicine-home-health"


def test_ticket_show_includes_the_lookups(code_engine: Engine, case: int) -> None:
    with Session(code_engine) as session:
        attach_code_lookups(session, ticket_ids=[case], as_of=AS_OF)
        session.commit()
        detail = ticket_detail(session, case, now=utcnow())
    assert detail is not None
    codes = {(c["system"], c["code"]) for c in detail["codes"]}
    assert ("icd10cm", "E11.9") in codes and ("hcpcs", "J9990") in codes


def test_an_existing_specialty_is_kept(code_engine: Engine, case: int) -> None:
    with Session(code_engine) as session:
        ticket = session.get(Ticket, case)
        assert ticket is not None
        ticket.specialty = "radiology"
        session.add(ticket)
        session.commit()
        attach_code_lookups(session, ticket_ids=[case], as_of=AS_OF)
        session.commit()
        session.refresh(ticket)
        assert ticket.specialty == "radiology"


def test_unknown_ticket_is_an_error(code_engine: Engine) -> None:
    with Session(code_engine) as session, pytest.raises(LookupError):
        attach_code_lookups(session, ticket_ids=[999], as_of=AS_OF)


def test_the_embedded_worker_looks_codes_up_and_tickets_show_lists_them(desk: Desk) -> None:
    with session_scope() as session:
        raw = read_email("case-with-pdf-attachment.eml")
        store_arrival(session, Arrival(raw=raw, source="smtp", envelope_to=DESK_ADDRESS))
    drain()
    with session_scope() as session:
        ticket = session.exec(select(Ticket)).one()
    shown = desk.consultant("tickets", "show", str(ticket.id), "--json")
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert [(c["system"], c["code"], c["source"]) for c in detail["codes"]] == [
        ("cpt", "74160", "subject"),
        ("cpt", "74177", "subject"),
    ]
    assert detail["specialty"] == "radiology"


def test_a_batch_with_a_ticket_that_fails_still_looks_up_the_others(desk: Desk) -> None:
    with session_scope() as session:
        for name in ("case-with-pdf-attachment.eml", "case-home-infusion.eml"):
            raw = read_email(name)
            store_arrival(session, Arrival(raw=raw, source="smtp", envelope_to=DESK_ADDRESS))
    for inbound_id in due_inbound_ids():
        process_inbound(inbound_id=inbound_id)
    with session_scope() as session:
        first, second = session.exec(select(Ticket.id).order_by(col(Ticket.id))).all()
    assert first is not None and second is not None

    # A ticket gone by the time its codes are looked up fails the batch's transaction.
    stored = look_up_codes([first, 999, second])

    with session_scope() as session:
        looked_up = session.exec(select(CodeLookup.ticket_id).distinct()).all()
    assert stored > 0 and sorted(looked_up) == [first, second]
