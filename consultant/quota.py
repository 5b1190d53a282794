"""Plans, accounts and the quota ledger.

The ledger is a list of entries — a debit per case, a credit per refund — never a
counter, so every number it shows can be explained line by line. Each entry has a unique
``key`` (``debit:ticket:7``): charging the same case twice is impossible, whoever retries.

A debit decides "is there room?" and writes its entry while holding the account's lock:
``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite every transaction already holds the
database's write lock from its first statement (``BEGIN IMMEDIATE``, see consultant/db.py).
So a burst of cases from one account is counted one at a time. An account on an unlimited
plan has nothing to count and is not locked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import case, event
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, col, func, select

from consultant import sla
from consultant.db import insert_ignoring_duplicates, insert_rows
from consultant.models import (
    Account,
    Plan,
    QuotaEntry,
    QuotaEntryKind,
    Ticket,
    TicketStatus,
    utcnow,
)


class QuotaError(Exception):
    """An admin asked for something the ledger cannot do (unknown plan, account, ticket…)."""


@dataclass(frozen=True)
class BuiltinPlan:
    name: str
    cases_per_period: int | None
    sla_hours: int


BUILTIN_PLANS = (
    BuiltinPlan("guest", 1, 48),
    BuiltinPlan("free", 5, 48),
    BuiltinPlan("pro", 50, 24),
    BuiltinPlan("unlimited", None, 8),
)
GUEST_PLAN = "guest"
LOCKED_ACCOUNTS = "locked_accounts"  # session.info key: accounts this transaction holds


# --- plans --------------------------------------------------------------------------


def ensure_builtin_plans(session: Session) -> None:
    """Create the built-in plans that are missing; an admin's changes to them stay."""
    for plan in BUILTIN_PLANS:
        session.execute(
            insert_ignoring_duplicates(session, Plan.__table__).values(
                name=plan.name,
                cases_per_period=plan.cases_per_period,
                sla_hours=plan.sla_hours,
                followups_count=False,
                created_at=utcnow(),
            )
        )


def plan_named(session: Session, name: str) -> Plan:
    plan = session.exec(select(Plan).where(Plan.name == name)).first()
    if plan is None and name in {p.name for p in BUILTIN_PLANS}:
        ensure_builtin_plans(session)
        plan = session.exec(select(Plan).where(Plan.name == name)).first()
    if plan is None:
        raise QuotaError(f"no plan named {name!r}")
    return plan


# --- accounts -----------------------------------------------------------------------


def retarget_plan(session: Session, plan: Plan, *, now: datetime) -> int:
    """``plan``'s answer times changed: the open cases of every account on it count the
    time they have used against the new targets from now on. How many cases."""
    accounts = session.exec(select(Account.id).where(Account.plan_id == plan.id)).all()
    return sla.retarget_tickets(session, account_ids=list(accounts), plan=plan, now=now)  # type: ignore[arg-type]


def move_account(session: Session, account: Account, plan: Plan, *, now: datetime) -> int:
    """Put ``account`` on ``plan``: its quota counts by the new plan at once, and its
    open cases' clocks keep the time used against the new plan's targets. How many cases."""
    account.plan_id = plan.id  # type: ignore[assignment]
    session.add(account)
    return sla.retarget_tickets(session, account_ids=[account.id], plan=plan, now=now)  # type: ignore[list-item]


# --- what an admin changes (the command line and the admin page) --------------------


def parse_limit(value: str) -> int | None:
    """Cases a month as written: a number, or ``unlimited``."""
    value = value.strip().lower()
    if value == "unlimited":
        return None
    if not value.isdigit():
        raise QuotaError(f"cases a month is a number or 'unlimited', not {value!r}")
    return int(value)


def add_plan(
    session: Session,
    *,
    name: str,
    cases: str,
    sla_hours: int,
    resolution_hours: int | None,
    followups_count: bool,
) -> Plan:
    name = name.strip()
    if not name:
        raise QuotaError("a plan needs a name")
    if session.exec(select(Plan).where(Plan.name == name)).first():
        raise QuotaError(f"a plan named {name!r} exists; change it instead")
    plan = Plan(
        name=name,
        cases_per_period=parse_limit(cases),
        sla_hours=_hours_at_least_one(sla_hours),
        resolution_hours=resolution_hours or None,
        followups_count=followups_count,
    )
    session.add(plan)
    return plan


def change_plan(
    session: Session,
    plan: Plan,
    *,
    now: datetime,
    cases: str | None = None,
    sla_hours: int | None = None,
    resolution_hours: int | None = None,
    followups_count: bool | None = None,
) -> Plan:
    """Change what is given (``cases`` as written: a number or ``unlimited``); accounts
    on the plan see it at once, and a change of hours re-times their open cases' clocks."""
    if cases is not None:
        plan.cases_per_period = parse_limit(cases)
    if sla_hours is not None:
        plan.sla_hours = _hours_at_least_one(sla_hours)
    if resolution_hours is not None:
        plan.resolution_hours = resolution_hours or None
    if followups_count is not None:
        plan.followups_count = followups_count
    session.add(plan)
    if sla_hours is not None or resolution_hours is not None:
        retarget_plan(session, plan, now=now)
    return plan


def describe_plan(plan: Plan) -> dict[str, Any]:
    return {
        "name": plan.name,
        "cases_per_period": plan.cases_per_period,
        "sla_hours": plan.sla_hours,
        "resolution_hours": plan.resolution_hours,
        "followups_count": plan.followups_count,
    }


def add_account(session: Session, *, address: str, plan: str, timezone: str) -> Account:
    normalised = normalise_address(address)
    if "@" not in normalised or "." not in normalised.rpartition("@")[2]:
        raise QuotaError(f"{address!r} is not an address or a domain")
    if session.exec(select(Account).where(Account.address == normalised)).first():
        raise QuotaError(f"{normalised} has an account; change it instead")
    account = Account(
        address=normalised,
        plan_id=plan_named(session, plan).id,
        timezone=check_timezone(timezone),
    )
    session.add(account)
    return account


def change_account(
    session: Session,
    account: Account,
    *,
    now: datetime,
    plan: str | None = None,
    timezone: str | None = None,
) -> Account:
    if plan is not None:
        move_account(session, account, plan_named(session, plan), now=now)
    if timezone is not None:
        account.timezone = check_timezone(timezone)
    session.add(account)
    return account


def account_named(session: Session, address: str) -> Account:
    account = session.exec(
        select(Account).where(Account.address == normalise_address(address))
    ).first()
    if account is None:
        raise QuotaError(f"no account {normalise_address(address)}")
    return account


def describe_account(session: Session, account: Account) -> dict[str, Any]:
    plan = session.get(Plan, account.plan_id)
    return {
        "address": account.address,
        "plan": plan.name if plan else None,
        "timezone": account.timezone,
        "remaining": remaining(session, account),
    }


def list_plans(session: Session) -> list[dict[str, Any]]:
    return [describe_plan(plan) for plan in session.exec(select(Plan).order_by(col(Plan.id)))]


def list_accounts(session: Session) -> list[dict[str, Any]]:
    accounts = session.exec(select(Account).order_by(col(Account.address)))
    return [describe_account(session, account) for account in accounts]


def accounts_after(session: Session, *, after: str | None, limit: int) -> list[Account]:
    """A page of accounts by address, those after ``after`` (a keyset on the unique
    address: no page is read twice or skipped when accounts are added meanwhile)."""
    query = select(Account).order_by(col(Account.address)).limit(limit)
    if after is not None:
        query = query.where(col(Account.address) > after)
    return list(session.exec(query))


def _hours_at_least_one(hours: int) -> int:
    if hours < 1:
        raise QuotaError("business hours to the first answer is at least 1")
    return hours


def normalise_address(address: str) -> str:
    """Lower-case; a bare domain (``clinic.example``) becomes ``@clinic.example``."""
    address = address.strip().lower()
    return address if "@" in address else f"@{address}"


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise QuotaError(f"unknown time zone {name!r} (use a name like Europe/Berlin)") from None
    return name


def account_for_sender(session: Session, sender: str) -> Account | None:
    """The sender's own account, else their domain's, else none."""
    return accounts_for_senders(session, [sender])[normalise_address(sender)]


def accounts_for_senders(session: Session, senders: Iterable[str]) -> dict[str, Account | None]:
    """:func:`account_for_sender` for many senders in one query, by normalised address."""
    wanted = {normalise_address(sender) for sender in senders}
    addresses = wanted | {"@" + sender.rpartition("@")[2] for sender in wanted}
    accounts = session.exec(select(Account).where(col(Account.address).in_(addresses))).all()
    by_address = {account.address: account for account in accounts}
    return {
        sender: by_address.get(sender) or by_address.get("@" + sender.rpartition("@")[2])
        for sender in wanted
    }


def guest_account(session: Session, sender: str) -> Account:
    """The sender's account on the guest plan, created if two emails race to make it."""
    plan = plan_named(session, GUEST_PLAN)
    session.execute(
        insert_ignoring_duplicates(session, Account.__table__).values(
            address=normalise_address(sender), plan_id=plan.id, timezone="UTC", created_at=utcnow()
        )
    )
    account = account_for_sender(session, sender)
    assert account is not None
    return account


# --- the ledger ---------------------------------------------------------------------


def period_of(account: Account, at: datetime) -> str:
    """The calendar month, in the account's time zone, that ``at`` falls in: ``2026-11``."""
    return at.astimezone(ZoneInfo(account.timezone)).strftime("%Y-%m")


def period_resets_at(account: Account, at: datetime) -> datetime:
    """When the period containing ``at`` ends: midnight on the 1st, in the account's zone."""
    local = at.astimezone(ZoneInfo(account.timezone))
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return datetime(year, month, 1, tzinfo=ZoneInfo(account.timezone)).astimezone(UTC)


def used_in_period(session: Session, account: Account, period: str) -> int:
    """Debits minus credits in the period."""
    signed = case(
        (QuotaEntry.kind == QuotaEntryKind.CREDIT, -QuotaEntry.amount), else_=QuotaEntry.amount
    )
    total = session.exec(
        select(func.coalesce(func.sum(signed), 0)).where(
            QuotaEntry.account_id == account.id, QuotaEntry.period == period
        )
    ).one()
    return int(total)


def remaining(session: Session, account: Account, *, at: datetime | None = None) -> int | None:
    """Cases left this period; ``None`` for an unlimited plan."""
    plan = session.get(Plan, account.plan_id)
    assert plan is not None
    if plan.cases_per_period is None:
        return None
    used = used_in_period(session, account, period_of(account, at or utcnow()))
    return max(0, plan.cases_per_period - used)


@event.listens_for(OrmSession, "after_transaction_end")
def _forget_locks(session: OrmSession, transaction: SessionTransaction) -> None:
    """Row locks end with the transaction (or the savepoint) that took them; the ORM's
    own inner transactions around a flush end nothing."""
    if transaction.parent is None or transaction.nested:
        session.info.pop(LOCKED_ACCOUNTS, None)


def lock_account(session: Session, account: Account) -> Account:
    """Hold the account's row until the transaction ends (a no-op lock on SQLite).

    ``FOR NO KEY UPDATE``, not ``FOR UPDATE``: inserting a ticket that references the
    account takes ``FOR KEY SHARE`` on it, and two cases each holding that while asking
    for ``FOR UPDATE`` would deadlock. The weaker lock still excludes other debits.
    A transaction that holds the lock already is not asked to take it again.
    """
    assert account.id is not None
    return lock_accounts(session, [account])[account.id]


def lock_accounts(session: Session, accounts: Iterable[Account]) -> dict[int, Account]:
    """:func:`lock_account` for several accounts, in one statement and in id order.

    The order matters: two transactions that each lock a few accounts, in whatever order
    their emails came, could each hold one the other waits for — a deadlock. An account
    on an unlimited plan is not locked at all: the lock is there to count its cases and
    nothing is counted for it, so a busy clinic's cases need not queue behind each other.
    """
    given = {account.id: account for account in accounts if account.id is not None}
    held: dict[int, Account] = session.info.setdefault(LOCKED_ACCOUNTS, {})
    wanted = sorted(
        account_id
        for account_id, account in given.items()
        if account_id not in held and _is_counted(session, account)
    )
    if wanted:
        query = (
            select(Account)
            .where(col(Account.id).in_(wanted))
            .order_by(col(Account.id))
            .with_for_update(key_share=True)
        )
        held.update({account.id: account for account in session.exec(query)})  # type: ignore[misc]
    return {account_id: held.get(account_id, account) for account_id, account in given.items()}


def _is_counted(session: Session, account: Account) -> bool:
    plan = session.get(Plan, account.plan_id)
    return plan is None or plan.cases_per_period is not None


class Debits:
    """A batch's charges, decided one at a time and written together.

    Each is decided under the account's lock, counting this batch's charges that are not
    written yet, so several cases of one account in one batch are counted as if each had
    been written at once; the entries then go in as plain rows, one statement for the
    batch, which costs a tenth of what an ORM object per entry cost to build and flush.
    The ledger's unique key refuses a second charge of the same case: the transaction
    trying it fails rather than charging twice.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self.rows: list[dict[str, Any]] = []

    def charge(self, *, account: Account, ticket: Ticket, key: str | None = None) -> bool:
        """Charge one case to the account; ``False`` when the period's quota is used up."""
        account = lock_account(self.session, account)
        left = remaining(self.session, account)
        entry = _entry_fields(
            account=account,
            ticket=ticket,
            kind=QuotaEntryKind.DEBIT,
            key=key or f"debit:ticket:{ticket.id}",
        )
        if left is not None and left <= self._unwritten(account.id, entry["period"]):
            return False
        self.rows.append(entry)
        return True

    def write(self) -> None:
        insert_rows(self.session, QuotaEntry.__table__, self.rows)
        self.rows = []

    def _unwritten(self, account_id: int | None, period: str) -> int:
        return sum(
            row["amount"]
            for row in self.rows
            if row["account_id"] == account_id and row["period"] == period
        )


def _add_entry(session: Session, fields: dict[str, Any]) -> QuotaEntry:
    """An entry made of :func:`_entry_fields`, flushed so that the caller sees its id."""
    entry = QuotaEntry(**fields)
    session.add(entry)
    session.flush()
    return entry


def _entry_fields(
    *,
    account: Account,
    ticket: Ticket | None,
    kind: QuotaEntryKind,
    key: str,
    reason: str | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """One case (amount 1) in the calendar month of the account's zone, now."""
    now = utcnow()
    return {
        "account_id": account.id,
        "ticket_id": ticket.id if ticket else None,
        "kind": kind,
        "amount": 1,
        "period": period_of(account, now),
        "key": key,
        "reason": reason,
        "actor": actor,
        "created_at": now,
    }


def refund_case(session: Session, *, ticket: Ticket, reason: str, actor: str) -> QuotaEntry:
    """Give a charged case back to its account; once per case."""
    debit = session.exec(
        select(QuotaEntry).where(QuotaEntry.key == f"debit:ticket:{ticket.id}")
    ).first()
    if debit is None:
        raise QuotaError(f"{ticket.reference} was never charged")
    key = f"credit:ticket:{ticket.id}"
    if session.exec(select(QuotaEntry.id).where(QuotaEntry.key == key)).first() is not None:
        raise QuotaError(f"{ticket.reference} was already refunded")
    account = session.get(Account, debit.account_id)
    assert account is not None
    return _add_entry(
        session,
        _entry_fields(
            account=account,
            ticket=ticket,
            kind=QuotaEntryKind.CREDIT,
            key=key,
            reason=reason,
            actor=actor,
        ),
    )


def release_held_case(
    session: Session, *, ticket: Ticket, actor: str, override_reason: str | None = None
) -> QuotaEntry:
    """Take a case out of ``held_quota``: charge it, or with a reason charge it past the limit."""
    if ticket.status != TicketStatus.HELD_QUOTA:
        raise QuotaError(f"{ticket.reference} is {ticket.status}, not held for quota")
    account = session.get(Account, ticket.account_id) if ticket.account_id else None
    if account is None:
        raise QuotaError(f"{ticket.reference} has no account")
    account = lock_account(session, account)
    if override_reason is None and remaining(session, account) == 0:
        raise QuotaError(
            f"{account.address} has no cases left this period; give a reason to override"
        )
    entry = _add_entry(
        session,
        _entry_fields(
            account=account,
            ticket=ticket,
            kind=QuotaEntryKind.DEBIT,
            key=f"debit:ticket:{ticket.id}",
            reason=override_reason or "released",
            actor=actor,
        ),
    )
    from consultant.routing.assign import route_tickets  # routing imports the ledger's users

    now = utcnow()
    ticket.status = TicketStatus.NEW
    ticket.updated_at = now
    session.add(ticket)
    plan = session.get(Plan, account.plan_id)
    if plan is not None:  # the promise starts now that the case is charged
        sla.start_clocks(session, ticket, plan=plan, now=now)
    session.flush()
    route_tickets(session, [ticket.id], now=now)  # type: ignore[list-item]
    return entry


def quota_summary(session: Session, account: Account, *, now: datetime) -> dict[str, object]:
    """The account's plan and this period's count: what the case page shows beside a case."""
    plan = session.get(Plan, account.plan_id)
    assert plan is not None
    period = period_of(account, now)
    return {
        "account": account.address,
        "plan": plan.name,
        "limit": plan.cases_per_period,
        "period": period,
        "resets_at": period_resets_at(account, now).isoformat(),
        "used": used_in_period(session, account, period),
        "remaining": remaining(session, account, at=now),
    }


def quota_report(session: Session, account: Account) -> dict[str, object]:
    """What ``consultant quota show`` prints: the plan, this period and its entries."""
    now = utcnow()
    period = period_of(account, now)
    entries = session.exec(
        select(QuotaEntry)
        .where(QuotaEntry.account_id == account.id, QuotaEntry.period == period)
        .order_by(col(QuotaEntry.id))
    ).all()
    return {
        **quota_summary(session, account, now=now),
        "entries": [
            {
                "kind": e.kind,
                "ticket": e.ticket_id,
                "reason": e.reason,
                "actor": e.actor,
                "created_at": e.created_at.isoformat(),
            }
            for e in entries
        ],
    }
