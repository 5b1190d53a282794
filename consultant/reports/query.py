"""What a report is asked for: a span of UTC days and the queue's filters, read from
what a person typed (the page's form, the command's options, the API's query), each
wrong field with a message saying what was expected."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlmodel import Session, select

from consultant.codes.specialty import SPECIALTIES
from consultant.db import storable
from consultant.models import Account, Plan

DEFAULT_DAYS = 30
MAX_DAYS = 366
INTERVALS = ("day", "week", "month")
GROUPS = ("plan", "specialty", "account")
MAX_TEXT = 320


@dataclass(frozen=True)
class ReportQuery:
    since: date
    until: date  # included
    plan: str = ""
    specialty: str = ""
    account: str = ""
    interval: str = "day"
    by: str = ""  # group the figures by plan, specialty or account instead of by time
    plan_id: int | None = None
    account_id: int | None = None

    def days(self) -> int:
        return (self.until - self.since).days + 1

    def filters(self) -> dict[str, str]:
        """What was asked, as the page's links and the CSV's name carry it."""
        asked = {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "plan": self.plan,
            "specialty": self.specialty,
            "account": self.account,
            "interval": self.interval,
            "by": self.by,
        }
        return {key: value for key, value in asked.items() if value and value != "day"}


@dataclass
class Asked:
    """A query and what was wrong with what was typed, by field."""

    query: ReportQuery
    problems: dict[str, str] = field(default_factory=dict)


def read_query(
    session: Session,
    *,
    today: date,
    since: str = "",
    until: str = "",
    plan: str = "",
    specialty: str = "",
    account: str = "",
    interval: str = "",
    by: str = "",
) -> Asked:
    """The query asked for; a field that cannot be read is left at its default, with why."""
    problems: dict[str, str] = {}
    first, last = _days(since, until, today=today, problems=problems)
    plan, plan_id = _plan(session, storable(plan).strip()[:MAX_TEXT], problems)
    account, account_id = _account(session, storable(account).strip()[:MAX_TEXT], problems)
    specialty = storable(specialty).strip()[:MAX_TEXT]
    if specialty and specialty not in SPECIALTIES:
        problems["specialty"] = f"no specialty {specialty!r}; one of {', '.join(SPECIALTIES)}"
        specialty = ""
    interval = interval.strip() or "day"
    if interval not in INTERVALS:
        problems["interval"] = f"an interval is one of {', '.join(INTERVALS)}"
        interval = "day"
    by = by.strip()
    if by and by not in GROUPS:
        problems["by"] = f"figures are grouped by {', '.join(GROUPS)} (or by time)"
        by = ""
    query = ReportQuery(
        since=first,
        until=last,
        plan=plan,
        specialty=specialty,
        account=account,
        interval=interval,
        by=by,
        plan_id=plan_id,
        account_id=account_id,
    )
    return Asked(query, problems)


def _days(since: str, until: str, *, today: date, problems: dict[str, str]) -> tuple[date, date]:
    last = _date(until, "until", problems) or today
    first = _date(since, "since", problems) or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        problems["since"] = f"the first day ({first}) is after the last ({last})"
        first = last - timedelta(days=DEFAULT_DAYS - 1)
    elif (last - first).days >= MAX_DAYS:
        problems["since"] = f"a report covers 1 to {MAX_DAYS} days; showing 30 days to {last}"
        first = last - timedelta(days=DEFAULT_DAYS - 1)
    return first, last


def _date(text: str, name: str, problems: dict[str, str]) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text[:20])
    except ValueError:
        problems[name] = "dates are written 2026-12-01"
        return None


def _plan(session: Session, name: str, problems: dict[str, str]) -> tuple[str, int | None]:
    if not name:
        return "", None
    found = session.exec(select(Plan.id).where(Plan.name == name)).first()
    if found is None:
        problems["plan"] = f"no plan named {name!r}"
        return "", None
    return name, found


def _account(session: Session, address: str, problems: dict[str, str]) -> tuple[str, int | None]:
    if not address:
        return "", None
    address = address.lower()
    found = session.exec(select(Account.id).where(Account.address == address)).first()
    if found is None:
        problems["account"] = f"no account {address!r} (a domain's is written @clinic.example)"
        return "", None
    return address, found
