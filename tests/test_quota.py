"""The quota ledger under bursts, retries and admin actions, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from email import message_from_bytes

import pytest
from sqlmodel import func, select

from consultant import quota
from consultant.db import session_scope
from consultant.models import (
    Account,
    OutboxEmail,
    QuotaEntry,
    SlaClock,
    Ticket,
    TicketStatus,
    utcnow,
)
from consultant.pipeline import process_inbound
from consultant.worker import drain
from tests.cases import add_coder, case_email, store
from tests.conftest import Desk
from tests.servers.smtp_sink import SmtpSink


def add_account(address: str, plan: str, timezone: str = "UTC") -> None:
    with session_scope() as session:
        chosen = quota.plan_named(session, plan)
        session.add(Account(address=address, plan_id=chosen.id, timezone=timezone))


def statuses() -> list[str]:
    with session_scope() as session:
        return sorted(t.status for t in session.exec(select(Ticket)).all())


def outbox_kinds() -> list[str]:
    with session_scope() as session:
        return sorted(e.kind for e in session.exec(select(OutboxEmail)).all())


def debits() -> int:
    with session_scope() as session:
        return session.exec(
            select(func.count()).select_from(QuotaEntry).where(QuotaEntry.kind == "debit")
        ).one()


def test_fifty_cases_at_once_from_an_account_with_five_left_accept_exactly_five(
    desk: Desk, smtp_sink: SmtpSink
) -> None:
    add_account("@clinic.example", "free")  # 5 cases a month
    ids = [store(case_email(f"biller{n}@clinic.example")) for n in range(50)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda i: process_inbound(inbound_id=i), ids))

    assert {o.status for o in outcomes} == {"processed"}
    assert statuses().count(TicketStatus.NEW) == 5
    assert statuses().count(TicketStatus.HELD_QUOTA) == 45
    assert debits() == 5
    assert outbox_kinds().count("ack") == 5
    assert outbox_kinds().count("over_quota") == 45
    drain()
    assert len(smtp_sink.wait_for(50, timeout=30)) == 50


def test_processing_the_same_case_again_and_at_once_debits_it_once(desk: Desk) -> None:
    add_account("@clinic.example", "free")
    inbound_id = store(case_email("dana@clinic.example"))
    assert inbound_id is not None

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: process_inbound(inbound_id=inbound_id), range(4)))
    process_inbound(inbound_id=inbound_id)

    assert (debits(), statuses(), outbox_kinds()) == (1, ["new"], ["ack"])


def test_the_acknowledgement_tells_the_sla_and_what_is_left(
    desk: Desk, smtp_sink: SmtpSink
) -> None:
    add_account("@clinic.example", "free")
    store(case_email("dana@clinic.example"))
    drain()

    [ack] = smtp_sink.wait_for(1, timeout=10)
    text = ack.raw.decode()
    assert "within 48 hours, by " in text
    assert "Cases left on your plan this month: 4" in text


def test_a_held_case_gets_one_over_quota_email_even_when_the_customer_writes_again(
    desk: Desk, smtp_sink: SmtpSink
) -> None:
    add_account("dana@clinic.example", "guest")  # 1 case a month
    store(case_email("dana@clinic.example", subject="First case"))
    store(case_email("dana@clinic.example", subject="Second case"))
    drain()
    # Both go to the relay at once, so they may arrive in either order.
    [over_quota] = [m for m in smtp_sink.wait_for(2, timeout=10) if b"used up" in m.raw]

    follow_up = case_email(
        "dana@clinic.example",
        subject="Re: Second case",
        headers={"In-Reply-To": over_quota_id(over_quota.raw)},
    )
    store(follow_up)
    drain()

    assert statuses() == ["held_quota", "new"]
    assert outbox_kinds() == ["ack", "over_quota"]


def over_quota_id(raw: bytes) -> str:
    return str(message_from_bytes(raw)["Message-ID"])


def test_unknown_senders_become_guests_with_one_case_a_month(desk: Desk) -> None:
    store(case_email("new.person@elsewhere.example"))
    store(case_email("new.person@elsewhere.example", subject="another"))
    drain()

    with session_scope() as session:
        [account] = session.exec(select(Account)).all()
        assert account.address == "new.person@elsewhere.example"
        assert quota.remaining(session, account) == 0
    assert statuses() == ["held_quota", "new"]


def test_with_the_reject_policy_unknown_senders_get_a_polite_reply_and_no_ticket(
    desk: Desk, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    from consultant.config import get_settings

    monkeypatch.setenv("CONSULTANT_UNKNOWN_SENDERS", "reject")
    get_settings.cache_clear()
    store(case_email("stranger@elsewhere.example"))
    drain()

    assert statuses() == []
    [reply] = smtp_sink.wait_for(1, timeout=10)
    assert b"not registered" in reply.raw
    assert b"Knee injection" not in reply.raw  # nothing of the email is echoed


@pytest.mark.one_database("sqlite")
def test_refund_release_and_override_from_the_command_line(desk: Desk) -> None:
    desk.consultant("accounts", "add", "@clinic.example", "--plan", "guest")
    store(case_email("a@clinic.example"))
    store(case_email("b@clinic.example"))
    drain()
    held = desk.consultant("tickets", "list", "--status", "held_quota", "--json")
    [held_ticket] = json.loads(held.stdout)

    refused = desk.consultant("quota", "release", str(held_ticket["number"]), "--by", "admin")
    assert refused.returncode == 1
    assert "give a reason to override" in refused.stderr

    overridden = desk.consultant(
        "quota", "release", str(held_ticket["number"]), "--by", "admin", "--override", "goodwill"
    )
    assert overridden.returncode == 0, overridden.stderr
    refunded = desk.consultant("quota", "refund", "1", "--reason", "duplicate", "--by", "admin")
    assert refunded.returncode == 0, refunded.stderr
    again = desk.consultant("quota", "refund", "1", "--reason", "twice", "--by", "admin")
    assert "already refunded" in again.stderr

    report = json.loads(desk.consultant("quota", "show", "x@clinic.example", "--json").stdout)
    assert (report["plan"], report["limit"], report["used"], report["remaining"]) == (
        "guest",
        1,
        1,
        0,
    )
    assert [(e["kind"], e["reason"]) for e in report["entries"]] == [
        ("debit", None),
        ("debit", "goodwill"),
        ("credit", "duplicate"),
    ]


def test_the_period_is_the_calendar_month_in_the_accounts_time_zone() -> None:
    from datetime import UTC, datetime

    account = Account(address="@tokyo.example", plan_id=1, timezone="Asia/Tokyo")
    last_evening_utc = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)  # already Dec 1st in Tokyo

    assert quota.period_of(account, last_evening_utc) == "2026-12"
    assert quota.period_resets_at(account, last_evening_utc) == datetime(
        2026, 12, 31, 15, 0, tzinfo=UTC
    )


def test_a_task_delivered_many_times_to_the_celery_worker_debits_once(
    celery_desk: Desk, smtp_sink: SmtpSink
) -> None:
    from consultant import dispatch

    add_account("@clinic.example", "free")
    inbound_id = store(case_email("dana@clinic.example"))
    assert inbound_id is not None

    for _ in range(6):  # redeliveries, a sweep, a retry…: six tasks for one email
        dispatch.inbound_stored([inbound_id])
    smtp_sink.wait_for(1, timeout=30)
    time.sleep(1.5)  # room for a wrong second acknowledgement to arrive

    assert (debits(), statuses(), outbox_kinds()) == (1, ["new"], ["ack"])
    assert len(smtp_sink.messages) == 1


def test_follow_ups_are_free_unless_the_plan_counts_them(desk: Desk, smtp_sink: SmtpSink) -> None:
    desk.consultant("plans", "add", "per-email", "--cases", "3", "--followups-count")
    desk.consultant("accounts", "add", "@counted.example", "--plan", "per-email")
    add_account("@free-followups.example", "free")
    for domain in ("counted.example", "free-followups.example"):
        store(case_email(f"dana@{domain}", subject=f"case at {domain}"))
    drain()
    for ack in smtp_sink.wait_for(2, timeout=10):
        ack_id = str(message_from_bytes(ack.raw)["Message-ID"])
        sender = ack.rcpt_tos[0]
        for n in range(3):
            store(case_email(sender, subject=f"more {n}", headers={"In-Reply-To": ack_id}))
    drain()

    counted = json.loads(desk.consultant("quota", "show", "x@counted.example", "--json").stdout)
    free = json.loads(desk.consultant("quota", "show", "x@free-followups.example", "--json").stdout)
    assert (counted["used"], counted["remaining"]) == (3, 0)  # 1 case + 2 follow-ups; the 3rd over
    assert (free["used"], free["remaining"]) == (1, 4)
    assert statuses() == ["new", "new"]


def test_a_released_held_case_starts_its_clock_then_and_goes_to_a_coder(desk: Desk) -> None:
    add_account("@clinic.example", "guest")  # one case a month
    alice = add_coder("alice@desk.example", specialties="generalist")
    store(case_email("a@clinic.example"))
    store(case_email("b@clinic.example", subject="Is 20610 with 76942 bundled?"))
    drain()
    with session_scope() as session:
        held = session.exec(select(Ticket).where(Ticket.status == TicketStatus.HELD_QUOTA)).one()
        assert held.coder_id is None  # a case nobody has paid for is nobody's yet
        before = utcnow()
        quota.release_held_case(session, ticket=held, actor="admin", override_reason="goodwill")
    with session_scope() as session:
        released = session.get(Ticket, held.id)
        clocks = session.exec(select(SlaClock).where(SlaClock.ticket_id == held.id)).all()
    assert released is not None
    assert (released.status, released.coder_id) == (TicketStatus.OPEN, alice)
    assert [c.target for c in clocks] == ["first_response"]
    assert clocks[0].running_since is not None and clocks[0].running_since >= before
    assert released.due_at == clocks[0].due_at
