"""Emails processed together, as a worker's task hands them over: the batch changes how
fast, never what happens to each email."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from email import message_from_bytes
from pathlib import Path

import pytest
from sqlmodel import col, func, select

from consultant.config import get_settings
from consultant.db import session_scope
from consultant.models import (
    Event,
    InboundEmail,
    Message,
    OutboxEmail,
    QuotaEntry,
    Ticket,
    TicketStatus,
)
from consultant.pipeline import process_inbound_emails
from tests.cases import case_email, store
from tests.conftest import Desk
from tests.test_quota import add_account, debits, statuses


def stored(*emails: bytes) -> list[int]:
    ids = [store(raw) for raw in emails]
    assert None not in ids
    return ids  # type: ignore[return-value]


def count(model: type) -> int:
    with session_scope() as session:
        return session.exec(select(func.count()).select_from(model)).one()


@pytest.fixture
def ack_needing_a_name(desk: Desk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An admin's acknowledgement template that breaks on a sender with no display name."""
    overrides = tmp_path / "overrides"
    (overrides / "email").mkdir(parents=True)
    (overrides / "email" / "ack.txt.j2").write_text("Dear {{ name[0] }}., {{ reference }}\n")
    monkeypatch.setenv("CONSULTANT_TEMPLATE_OVERRIDES", str(overrides))
    get_settings.cache_clear()


def test_a_batch_of_cases_makes_a_ticket_a_charge_and_an_acknowledgement_each(
    desk: Desk,
) -> None:
    ids = stored(*(case_email(f"biller{n}@clinic.example") for n in range(5)))

    outcomes = process_inbound_emails(ids)

    assert [o.status for o in outcomes] == ["processed"] * 5
    assert [o.inbound_id for o in outcomes] == ids
    with session_scope() as session:
        tickets = session.exec(select(Ticket).order_by(col(Ticket.id))).all()
        acks = session.exec(select(OutboxEmail)).all()
        created = session.exec(select(Event).where(Event.kind == "ticket.created")).all()
    # Numbered in the order the emails came, each acknowledged under its own number.
    assert [t.requester for t in tickets] == [f"biller{n}@clinic.example" for n in range(5)]
    assert [o.ticket_id for o in outcomes] == [t.id for t in tickets]
    assert sorted(a.ticket_id for a in acks) == [t.id for t in tickets]  # type: ignore[type-var]
    for ack in acks:
        assert f"[#CC-{ack.ticket_id}]" in str(message_from_bytes(ack.raw)["Subject"])
    assert {e.detail for e in created} == {t.reference for t in tickets}
    assert count(QuotaEntry) == 5


def test_one_bad_email_holds_up_none_of_the_others_in_its_batch(
    desk: Desk, ack_needing_a_name: None
) -> None:
    named = [case_email(f"Dana Example <dana{n}@clinic.example>") for n in range(3)]
    nameless = case_email("nameless@clinic.example")
    ids = stored(named[0], nameless, *named[1:])

    outcomes = process_inbound_emails(ids)

    assert [o.status for o in outcomes] == ["processed", "failed", "processed", "processed"]
    with session_scope() as session:
        bad = session.get(InboundEmail, ids[1])
        assert bad is not None and (bad.stage, bad.ticket_id) == ("reply", None)
        requesters = session.exec(select(Ticket.requester)).all()
    # The failed attempt left nothing behind: no ticket, no charge, no acknowledgement.
    assert sorted(requesters) == [f"dana{n}@clinic.example" for n in range(3)]
    assert (count(QuotaEntry), count(OutboxEmail)) == (3, 3)


def test_a_follow_up_in_the_same_batch_joins_the_first_emails_ticket(desk: Desk) -> None:
    first = case_email("dana@clinic.example")
    first_id = message_from_bytes(first)["Message-ID"]
    follow_up = case_email(
        "dana@clinic.example",
        subject="Re: Can we bill 99213-25 with 20610?",
        body="Forgot to say: the injection was on the left knee.",
        headers={"In-Reply-To": first_id, "References": first_id},
    )
    other = case_email("lee@clinic.example")

    outcomes = process_inbound_emails(stored(first, follow_up, other))

    assert [o.status for o in outcomes] == ["processed"] * 3
    assert outcomes[0].ticket_id == outcomes[1].ticket_id != outcomes[2].ticket_id
    assert (count(Ticket), count(Message), count(OutboxEmail)) == (2, 3, 2)


def test_a_batch_holding_an_email_already_processed_leaves_that_one_alone(desk: Desk) -> None:
    ids = stored(*(case_email(f"biller{n}@clinic.example") for n in range(3)))
    [done] = process_inbound_emails(ids[1:2])

    outcomes = process_inbound_emails([*ids, 999_999])

    assert [o.status for o in outcomes] == ["processed"] * 3 + ["missing"]
    assert (outcomes[1].ticket_id, outcomes[1].outbox_ids) == (done.ticket_id, ())  # sent once
    assert (count(Ticket), count(OutboxEmail)) == (3, 3)


def test_batches_running_at_once_count_each_accounts_quota_exactly_and_never_deadlock(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    add_account("@north.example", "free")  # 5 cases a month each
    add_account("@south.example", "free")
    clinics = ["north.example", "south.example"]
    # Five batches of ten, half of them naming the clinics in the other order, so that
    # locking accounts in the order the emails came would make batches wait in a circle.
    batches = [
        stored(*(case_email(f"b{n}.{i}@{clinics[(i + n) % 2]}") for i in range(10)))
        for n in range(5)
    ]

    with caplog.at_level(logging.WARNING), ThreadPoolExecutor(max_workers=5) as pool:
        outcomes = [o for batch in pool.map(process_inbound_emails, batches) for o in batch]

    assert {o.status for o in outcomes} == {"processed"}
    assert "processing each alone" not in caplog.text  # no batch failed, deadlocks included
    assert statuses().count(TicketStatus.NEW) == 10  # five per clinic
    assert statuses().count(TicketStatus.HELD_QUOTA) == 40
    assert debits() == 10
