"""The reports' rollups kept by refreshes are the rollups a rebuild derives from
scratch, whatever the order cases arrive, are answered, solved and reopened in, and
wherever the refreshes fall between them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from consultant import casework
from consultant.coders import add_coder
from consultant.db import get_engine, session_scope
from consultant.models import (
    Account,
    CodeLookup,
    Message,
    QuotaEntry,
    ReportCase,
    ReportCode,
    ReportCoderDay,
    ReportDay,
    ReportQuota,
    ReportSpeed,
    SlaClock,
    Ticket,
    utcnow,
)
from consultant.quota import add_account, ensure_builtin_plans, period_of, plan_named
from consultant.reports.rollups import rebuild, refresh
from consultant.sla import desk_schedule, new_clocks
from tests.conftest import Desk, empty_tables

START = datetime(2026, 11, 2, 8, tzinfo=UTC)
CODER = "alice@desk.example"
ROLLUPS = (ReportCase, ReportDay, ReportSpeed, ReportCoderDay, ReportCode, ReportQuota)
SPECIALTIES = ("", "evaluation-management", "infusion")
CODES = (("99213", "valid"), ("99999", "unknown"), ("E11.9", "valid"))

arrive = st.tuples(st.just("arrive"), st.integers(0, 5 * 24), st.integers(0, 2), st.integers(0, 2))
act = st.tuples(
    st.sampled_from(["answer", "solve", "reopen", "specialty"]),
    st.integers(0, 20),
    st.integers(1, 60),
    st.integers(0, 2),
)
refresh_step = st.just(("refresh", 0, 0, 0))
steps = st.lists(st.one_of(arrive, act, act, refresh_step), min_size=1, max_size=16)


def snapshot(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    tables = {}
    for model in ROLLUPS:
        rows = session.exec(select(model)).all()
        tables[model.__tablename__] = sorted(tuple(sorted(r.model_dump().items())) for r in rows)
    return tables


def a_case(session: Session, *, hours: int, account: int, code: int) -> None:
    """A case as intake leaves it: the ticket, the customer's message, its clocks, the
    code found in it and the ledger's debit."""
    now = START + timedelta(hours=hours)
    found = session.exec(select(Account).where(Account.address == f"@c{account}.example")).one()
    ticket = Ticket(
        subject="q", requester=f"b@c{account}.example", account_id=found.id, created_at=now
    )
    session.add(ticket)
    session.flush()
    session.add(
        Message(
            ticket_id=ticket.id, direction="in", message_id=f"<{ticket.id}@c>",
            sender=ticket.requester, subject="q", body_text="q", created_at=now,
        )
    )  # fmt: skip
    for row in new_clocks(
        ticket.id, plan_named(session, "pro"), now=now, schedule=desk_schedule(session)
    ):
        session.add(SlaClock(**row))
    system_code, status = CODES[code]
    session.add(CodeLookup(ticket_id=ticket.id, system="cpt", code=system_code, status=status))
    session.add(
        QuotaEntry(
            account_id=found.id, ticket_id=ticket.id, kind="debit",
            period=period_of(found, now), key=f"debit:ticket:{ticket.id}",
        )
    )  # fmt: skip


def act_on(session: Session, kind: str, index: int, hours: int, value: int) -> None:
    numbers = session.exec(select(Ticket.id).order_by(Ticket.id)).all()
    if not numbers:
        return
    number = numbers[index % len(numbers)]
    ticket = session.get(Ticket, number)
    assert ticket is not None
    now = max(ticket.updated_at, ticket.created_at) + timedelta(hours=hours)
    try:
        if kind in ("answer", "solve"):
            then = "solved" if kind == "solve" else "pending"
            casework.answer(session, number, by=CODER, text="See NCCI.", then=then, now=now)
        elif kind == "reopen":
            casework.set_status(session, number, to="open", by=CODER, now=now)
        else:  # code lookup gives the case its specialty, and writes what it found
            ticket.specialty = SPECIALTIES[value] or None
            session.add(ticket)
            session.add(CodeLookup(ticket_id=number, system="cpt", code="96365", status="valid"))
    except casework.CaseError:
        pass


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=steps)
def test_refreshes_between_any_steps_equal_a_rebuild(
    desk: Desk, steps: list[tuple[Any, ...]]
) -> None:
    empty_tables(get_engine().url.render_as_string(hide_password=False))
    with session_scope() as session:
        ensure_builtin_plans(session)
        for n in range(3):
            add_account(session, address=f"@c{n}.example", plan="pro", timezone="UTC")
        add_coder(session, email=CODER, name="Alice", actor="test", now=utcnow())
    for kind, a, b, c in steps:
        with session_scope() as session:
            if kind == "arrive":
                a_case(session, hours=a, account=b, code=c)
            elif kind == "refresh":
                refresh(session)
            else:
                act_on(session, kind, a, b, c)
    with session_scope() as session:
        refresh(session)
    with session_scope() as session:
        refreshed = snapshot(session)
        rebuild(session)
    with session_scope() as session:
        assert snapshot(session) == refreshed
