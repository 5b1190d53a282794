"""The five reports, each read from the rollups (consultant/reports/rollups.py): a few
grouped queries over rows per day and group, never over the cases themselves. The page,
``consultant report`` and ``GET /api/v1/reports/{name}`` all call :func:`run_report`."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, text
from sqlmodel import Session, col, select

from consultant.models import (
    Account,
    CodeLookup,
    Coder,
    Plan,
    ReportCase,
    ReportCode,
    ReportCoderDay,
    ReportDay,
    ReportQuota,
    ReportSpeed,
    SlaTarget,
    Ticket,
    TicketStatus,
)
from consultant.quota import period_of
from consultant.reports.query import ReportQuery
from consultant.reports.rollups import (
    BAD_CODES,
    EVERY,
    EVERY_SPECIALTY,
    percentile_of,
    refreshed_at,
)
from consultant.routing.assign import loads

NEAR_LIMIT = 0.8  # an account that has used this share of its cases is near its limit
TOP = 25  # codes and accounts listed by the codes and volume reports
BACKLOG_AGES = ((1, "under 1 day"), (3, "1-2 days"), (7, "3-6 days"), (30, "7-29 days"))


@dataclass
class Table:
    """Rows a person reads under a chart (and downloads as CSV): ``label`` names the
    column that labels the chart's groups, ``series`` the columns drawn as bars."""

    key: str
    title: str
    columns: list[tuple[str, str]]
    rows: list[dict[str, Any]]
    label: str = ""
    series: tuple[str, ...] = ()

    def csv(self) -> str:
        """The rows as CSV, one line per row, the header from the column keys."""
        out = io.StringIO()
        writer = csv.DictWriter(
            out, fieldnames=[key for key, _ in self.columns], lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(
            {key: _spreadsheet_safe(row.get(key)) for key, _ in self.columns} for row in self.rows
        )
        return out.getvalue()


def _spreadsheet_safe(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (an account address a customer
    chose, ``=HYPERLINK(…)@x``) is kept as text with a leading apostrophe (OWASP's
    advice on CSV injection); numbers, negative ones too, stay numbers."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@dataclass
class Report:
    name: str
    title: str
    query: ReportQuery
    tables: list[Table]
    summary: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    refreshed_at: datetime | None = None

    def table(self, key: str) -> Table | None:
        return next((t for t in self.tables if t.key == key), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "report": self.name,
            "since": self.query.since.isoformat(),
            "until": self.query.until.isoformat(),
            "filters": self.query.filters(),
            "refreshed_at": self.refreshed_at.isoformat() if self.refreshed_at else None,
            "summary": self.summary,
            "notes": self.notes,
            "tables": {table.key: table.rows for table in self.tables},
        }


# --- filters over the rollups ------------------------------------------------------


def _where(model: Any, q: ReportQuery, *, account: bool = True, period: bool = True) -> list[Any]:
    """The query's period and filters as conditions on a rollup table; on one with
    rows for every account together (``EVERY``), those rows unless accounts are asked for."""
    conditions: list[Any] = []
    if period and hasattr(model, "day"):
        conditions += [col(model.day) >= q.since, col(model.day) <= q.until]
    if q.plan_id is not None:
        conditions.append(model.plan_id == q.plan_id)
    if q.specialty:
        conditions.append(model.specialty == q.specialty)
    if account and q.account_id is not None:
        conditions.append(model.account_id == q.account_id)
    elif model in (ReportDay, ReportSpeed):
        per_account = q.by == "account"
        conditions.append(model.account_id != EVERY if per_account else model.account_id == EVERY)
    if model is ReportSpeed and q.account_id is None and q.by != "account":
        conditions.append(model.coder_id == EVERY)  # the sums per plan (and specialty)
        per_plan = not q.specialty and q.by != "specialty"
        every = model.specialty == EVERY_SPECIALTY
        conditions.append(every if per_plan else ~every)
    return conditions


def _per_coder(q: ReportQuery) -> list[Any]:
    """Conditions on ``report_speed`` for first responses per coder: the sums per coder,
    or with a filter the rows per plan, specialty and account it picks."""
    rs = ReportSpeed
    day = [col(rs.day) >= q.since, col(rs.day) <= q.until]
    if q.plan_id is None and not q.specialty and q.account_id is None:
        return [*day, rs.plan_id == EVERY, rs.account_id == EVERY]
    fine = _where(rs, replace(q, by="account"))
    return [*fine, rs.coder_id != EVERY]


def _names(session: Session, by: str, ids: list[Any]) -> dict[Any, str]:
    """What a group is called: a plan's name, an account's address, the specialty."""
    if by == "specialty":
        return {value: value or "(none yet)" for value in ids}
    model, name = (Plan, Plan.name) if by == "plan" else (Account, Account.address)
    found = dict(session.exec(select(model.id, name).where(col(model.id).in_(ids))).all())
    return {value: found.get(value, "(no account)") for value in ids}


def _group_column(model: Any, by: str) -> Any:
    return {"plan": model.plan_id, "specialty": model.specialty, "account": model.account_id}[by]


def _hours(minutes: int | None) -> float | None:
    return None if minutes is None else round(minutes / 60, 2)


# --- volume --------------------------------------------------------------------------

VOLUME = ("received", "answered", "solved")


def volume(session: Session, q: ReportQuery) -> Report:
    """Cases received, answered (answers coders sent) and solved, per day, week or
    month, or per plan, specialty or account over the whole period."""
    sums = [func.sum(getattr(ReportDay, name)) for name in VOLUME]
    if q.by:
        group = _group_column(ReportDay, q.by)
        query = select(group, *sums).where(*_where(ReportDay, q)).group_by(group)
        found = sorted(session.exec(query).all(), key=lambda row: (-(row[1] or 0), str(row[0])))
        found = found[:TOP] if q.by == "account" else found
        names = _names(session, q.by, [row[0] for row in found])
        rows = [
            {q.by: names[row[0]], **{n: int(v or 0) for n, v in zip(VOLUME, row[1:], strict=True)}}
            for row in found
        ]
        key = q.by
    else:
        query = select(ReportDay.day, *sums).where(*_where(ReportDay, q)).group_by(ReportDay.day)
        per_day = {row[0]: row[1:] for row in session.exec(query)}
        rows = _by_interval(per_day, q)
        key = "period"
    total = {name: sum(row[name] for row in rows) for name in VOLUME} if not q.by else {}
    table = Table(
        key="volume",
        title="Cases received, answered and solved",
        columns=[(key, key.title()), *((name, name.title()) for name in VOLUME)],
        rows=rows,
        label=key,
        series=VOLUME,
    )
    notes = ["Answered counts the answers coders sent; a case answered twice counts twice."]
    if q.by == "account":
        notes.append(f"The {TOP} accounts with the most cases received.")
    return Report("volume", "Volume", q, [table], summary=total, notes=notes)


def _by_interval(per_day: dict[date, Any], q: ReportQuery) -> list[dict[str, Any]]:
    """Every day (week, month) of the period, the quiet ones with zeros."""
    rows: dict[str, dict[str, Any]] = {}
    day = q.since
    while day <= q.until:
        label = _interval_label(day, q.interval)
        row = rows.setdefault(label, {"period": label, **dict.fromkeys(VOLUME, 0)})
        for name, value in zip(VOLUME, per_day.get(day, (0, 0, 0)), strict=True):
            row[name] += int(value or 0)
        day += timedelta(days=1)
    return list(rows.values())


def _interval_label(day: date, interval: str) -> str:
    if interval == "week":
        return (day - timedelta(days=day.weekday())).isoformat()  # the week's Monday
    if interval == "month":
        return day.strftime("%Y-%m")
    return day.isoformat()


# --- speed ---------------------------------------------------------------------------

SPEED_COUNTS = ("fr_met", "fr_breached", "res_met", "res_breached")


def speed(session: Session, q: ReportQuery, *, today: date) -> Report:
    """Time to first response and to resolution in business hours (p50, p90), SLA met
    and breached, per plan (or specialty, or account); and the age of the backlog."""
    by = q.by or "plan"
    group = _group_column(ReportDay, by)
    counted = select(group, *(func.sum(getattr(ReportDay, n)) for n in SPEED_COUNTS))
    counts = {
        row[0]: [int(v or 0) for v in row[1:]]
        for row in session.exec(counted.where(*_where(ReportDay, q)).group_by(group))
    }
    total = [sum(values[i] for values in counts.values()) for i in range(len(SPEED_COUNTS))]
    if by == "account":  # the accounts with the most SLA outcomes, not thousands of rows
        counts = dict(sorted(counts.items(), key=lambda item: (-sum(item[1]), item[0]))[:TOP])
    rs = ReportSpeed
    histograms: dict[tuple[Any, str], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    overall = (
        select(rs.target, rs.bucket, func.sum(rs.cases))
        .where(*_where(rs, replace(q, by="")))
        .group_by(col(rs.target), col(rs.bucket))
    )
    for target, bucket, cases in session.exec(overall):
        histograms[("*", target)][bucket] = int(cases)
    speed_group = _group_column(rs, by)
    spread = (
        select(speed_group, rs.target, rs.bucket, func.sum(rs.cases))
        .where(*_where(rs, q))
        .group_by(speed_group, col(rs.target), col(rs.bucket))
    )
    if by == "account":
        spread = spread.where(col(rs.account_id).in_(list(counts)))
    for key, target, bucket, cases in session.exec(spread):
        histograms[(key, target)][bucket] += int(cases)
    keys = sorted(set(counts) | {k for k, _ in histograms if k != "*"}, key=str)
    names = _names(session, by, keys)
    rows = [_speed_row(by, "all", total, histograms, "*")]
    rows += [_speed_row(by, names[key], counts.get(key, [0] * 4), histograms, key) for key in keys]
    table = Table(
        key="speed",
        title="Time to first response and resolution (business hours); SLA met and breached",
        columns=[
            (by, by.title()),
            ("first_responses", "First responses"),
            ("first_response_p50_hours", "First response p50 h"),
            ("first_response_p90_hours", "p90 h"),
            ("fr_met", "First response SLA met"),
            ("fr_breached", "breached"),
            ("resolutions", "Resolutions"),
            ("resolution_p50_hours", "Resolution p50 h"),
            ("resolution_p90_hours", "p90 h"),
            ("res_met", "Resolution SLA met"),
            ("res_breached", "breached"),
        ],
        rows=rows,
        label=by,
        series=("fr_met", "fr_breached"),
    )
    backlog = Table(
        key="backlog",
        title="Backlog: unfinished cases by age",
        columns=[("age", "Age"), ("cases", "Cases")],
        rows=_backlog(session, q, today=today),
        label="age",
        series=("cases",),
    )
    notes = [
        "Times are business hours on the desk's clock, counted to the first response "
        "(or the solve) of the cases answered (solved) in the period; p50 and p90 are "
        "the upper bound of a histogram bucket, at most 10 % over the exact figure.",
        "An SLA counts as met on the day its clock stopped in time, breached on the day "
        "it ran out.",
        "The backlog is every unfinished case now, whatever the period.",
    ]
    if by == "account":
        notes.append(f"The {TOP} accounts with the most SLA outcomes in the period.")
    return Report("speed", "Speed", q, [table, backlog], summary=rows[0], notes=notes)


def _speed_row(
    by: str,
    name: str,
    counts: list[int],
    histograms: dict[tuple[Any, str], dict[int, int]],
    key: Any,
) -> dict[str, Any]:
    first = histograms.get((key, SlaTarget.FIRST_RESPONSE), {})
    solved = histograms.get((key, SlaTarget.RESOLUTION), {})
    return {
        by: name,
        "first_responses": sum(first.values()),
        "first_response_p50_hours": _hours(percentile_of(first, 0.5)),
        "first_response_p90_hours": _hours(percentile_of(first, 0.9)),
        **dict(zip(SPEED_COUNTS[:2], counts[:2], strict=True)),
        "resolutions": sum(solved.values()),
        "resolution_p50_hours": _hours(percentile_of(solved, 0.5)),
        "resolution_p90_hours": _hours(percentile_of(solved, 0.9)),
        **dict(zip(SPEED_COUNTS[2:], counts[2:], strict=True)),
    }


def _backlog(session: Session, q: ReportQuery, *, today: date) -> list[dict[str, Any]]:
    """Unfinished cases by the day they came in, whatever the period, as of the refresh."""
    rd = ReportDay
    query = (
        select(rd.day, func.sum(rd.backlog))
        .where(rd.backlog > 0, *_where(rd, replace(q, by=""), period=False))
        .group_by(col(rd.day))
    )
    ages = {label: 0 for _, label in BACKLOG_AGES} | {"30 days or more": 0}
    for day, cases in session.exec(query):
        age = (today - day).days
        label = next((name for limit, name in BACKLOG_AGES if age < limit), "30 days or more")
        ages[label] += int(cases)
    return [{"age": label, "cases": cases} for label, cases in ages.items()]


# --- people --------------------------------------------------------------------------


def people(session: Session, q: ReportQuery) -> Report:
    """Per coder: cases assigned and answers sent in the period, open cases against
    capacity now, and their time to first response (business hours, p50 and p90)."""
    coders = session.exec(select(Coder).order_by(col(Coder.email))).all()
    open_now = loads(session, [c.id for c in coders])  # type: ignore[misc]
    days = ReportCoderDay
    work = {
        coder_id: (int(assigned or 0), int(answered or 0))
        for coder_id, assigned, answered in session.exec(
            select(days.coder_id, func.sum(days.assigned), func.sum(days.answered))
            .where(col(days.day) >= q.since, col(days.day) <= q.until)
            .group_by(col(days.coder_id))
        )
    }
    histograms: dict[int, dict[int, int]] = defaultdict(dict)
    spread = (
        select(ReportSpeed.coder_id, ReportSpeed.bucket, func.sum(ReportSpeed.cases))
        .where(ReportSpeed.target == SlaTarget.FIRST_RESPONSE, *_per_coder(q))
        .group_by(col(ReportSpeed.coder_id), col(ReportSpeed.bucket))
    )
    for coder_id, bucket, cases in session.exec(spread):
        histograms[coder_id][bucket] = int(cases)
    rows = []
    for coder in coders:
        assigned, answered = work.get(coder.id, (0, 0))  # type: ignore[arg-type]
        first = histograms.get(coder.id, {})  # type: ignore[arg-type]
        if not (coder.active or assigned or answered or first):
            continue
        rows.append(
            {
                "coder": coder.email,
                "name": coder.name,
                "open": open_now[coder.id],  # type: ignore[index]
                "capacity": coder.capacity,
                "assigned": assigned,
                "answered": answered,
                "first_responses": sum(first.values()),
                "first_response_p50_hours": _hours(percentile_of(first, 0.5)),
                "first_response_p90_hours": _hours(percentile_of(first, 0.9)),
            }
        )
    table = Table(
        key="people",
        title="Coders: cases assigned and answered, load, first response",
        columns=[
            ("coder", "Coder"),
            ("open", "Open now"),
            ("capacity", "Capacity"),
            ("assigned", "Assigned"),
            ("answered", "Answered"),
            ("first_responses", "First responses"),
            ("first_response_p50_hours", "First response p50 h"),
            ("first_response_p90_hours", "p90 h"),
        ],
        rows=rows,
        label="coder",
        series=("assigned", "answered"),
    )
    notes = [
        "Open now is counted live; the filters apply to the first-response times only.",
    ]
    return Report("people", "People", q, [table], notes=notes)


# --- quota ---------------------------------------------------------------------------


def quota(session: Session, q: ReportQuery, *, now: datetime) -> Report:
    """Per account, this month (in the account's zone): cases used and left, cases held
    for quota now, refunds; the accounts near their limit first."""
    accounts = select(
        Account.id, Account.address, Account.timezone, Plan.name, Plan.cases_per_period
    ).join(Plan, col(Plan.id) == col(Account.plan_id))
    if q.plan_id is not None:
        accounts = accounts.where(Account.plan_id == q.plan_id)
    if q.account_id is not None:
        accounts = accounts.where(Account.id == q.account_id)
    found = session.exec(accounts).all()
    months = {zone: _month_in(zone, now) for zone in {row[2] for row in found}}
    ledger: dict[tuple[int, str], tuple[int, int]] = {}
    entries = select(
        ReportQuota.account_id, ReportQuota.period, ReportQuota.debits, ReportQuota.credits
    ).where(col(ReportQuota.period).in_(set(months.values())))
    if q.account_id is not None:
        entries = entries.where(ReportQuota.account_id == q.account_id)
    for account_id, period, debits, credits in session.exec(entries):
        ledger[(account_id, period)] = (debits, credits)
    held = dict(
        session.exec(
            select(Ticket.account_id, func.count())
            .where(Ticket.status == TicketStatus.HELD_QUOTA)
            .group_by(col(Ticket.account_id))
        ).all()
    )
    rows = []
    for account_id, address, zone, plan, limit in found:
        period = months[zone]
        debits, credits = ledger.get((account_id, period), (0, 0))
        used = debits - credits
        rows.append(
            {
                "account": address,
                "plan": plan,
                "period": period,
                "limit": limit,
                "used": used,
                "left": None if limit is None else max(limit - used, 0),
                "held": int(held.get(account_id, 0)),
                "refunds": credits,
                "near_limit": limit is not None and used >= limit * NEAR_LIMIT,
            }
        )
    rows.sort(key=_quota_order)
    table = Table(
        key="quota",
        title="Accounts this month: cases used and left",
        columns=[
            ("account", "Account"),
            ("plan", "Plan"),
            ("period", "Month"),
            ("limit", "Limit"),
            ("used", "Used"),
            ("left", "Left"),
            ("held", "Held"),
            ("refunds", "Refunds"),
            ("near_limit", "Near limit"),
        ],
        rows=rows,
        label="account",
        series=("used", "held"),
    )
    summary = {
        "accounts": len(rows),
        "near_limit": sum(1 for row in rows if row["near_limit"]),
        "held": sum(row["held"] for row in rows),
        "refunds": sum(row["refunds"] for row in rows),
    }
    notes = [
        "This month in each account's time zone, whatever the period; held cases are "
        f"counted now. Near limit: {NEAR_LIMIT:.0%} of the month's cases used.",
    ]
    return Report("quota", "Quota", q, [table], summary=summary, notes=notes)


def _month_in(zone: str, now: datetime) -> str:
    """The ledger's period (``2026-12``) now, in a time zone: as ``quota.period_of``."""
    return period_of(Account(address="", plan_id=0, timezone=zone), now)


def _quota_order(row: dict[str, Any]) -> tuple[int, float, int, str]:
    share = row["used"] / row["limit"] if row["limit"] else 0.0
    return (0 if row["limit"] is not None else 1, -share, -row["used"], row["account"])


# --- codes ---------------------------------------------------------------------------


def codes(session: Session, q: ReportQuery) -> Report:
    """The codes asked about most, the specialties of the cases, and the share of cases
    with a code the catalog calls unknown, deleted or not yet valid."""
    code_rows = (
        _account_codes(session, q) if q.account_id is not None else _rollup_codes(session, q)
    )
    specialties = session.exec(
        select(ReportDay.specialty, func.sum(ReportDay.received), func.sum(ReportDay.bad_codes))
        .where(*_where(ReportDay, q))
        .group_by(col(ReportDay.specialty))
    ).all()
    received = sum(int(r or 0) for _, r, _ in specialties)
    bad = sum(int(b or 0) for _, _, b in specialties)
    specialty_rows = sorted(
        (
            {"specialty": name or "(none yet)", "cases": int(r or 0), "bad_codes": int(b or 0)}
            for name, r, b in specialties
        ),
        key=lambda row: (-row["cases"], row["specialty"]),
    )
    tables = [
        Table(
            key="codes",
            title=f"The {TOP} codes asked about most",
            columns=[
                ("code", "Code"),
                ("system", "System"),
                ("cases", "Cases"),
                ("bad", "Invalid or deleted in"),
            ],
            rows=code_rows,
            label="code",
            series=("cases", "bad"),
        ),
        Table(
            key="specialties",
            title="Cases by specialty",
            columns=[
                ("specialty", "Specialty"),
                ("cases", "Cases"),
                ("bad_codes", "With an invalid or deleted code"),
            ],
            rows=specialty_rows,
            label="specialty",
            series=("cases", "bad_codes"),
        ),
    ]
    summary = {
        "cases": received,
        "with_bad_codes": bad,
        "bad_code_share": round(bad / received, 4) if received else None,
    }
    notes = ["Cases counted on the day they were received; a code counts once per case."]
    return Report("codes", "Codes", q, tables, summary=summary, notes=notes)


def _rollup_codes(session: Session, q: ReportQuery) -> list[dict[str, Any]]:
    rc = ReportCode
    query = (
        select(rc.system, rc.code, func.sum(rc.cases), func.sum(rc.bad))
        .where(*_where(rc, q, account=False))
        .group_by(col(rc.system), col(rc.code))
        .order_by(func.sum(rc.cases).desc(), col(rc.code))
        .limit(TOP)
    )
    return [
        {"code": code, "system": system, "cases": int(cases), "bad": int(bad)}
        for system, code, cases, bad in session.exec(query)
    ]


def _account_codes(session: Session, q: ReportQuery) -> list[dict[str, Any]]:
    """One account's codes, read from its cases (found by the tickets' account index):
    the code rollup keeps no account, or it would be as large as the lookups."""
    rc, lookup = ReportCase, CodeLookup
    bad = func.count(func.distinct(_bad_ticket()))
    cases = func.count(func.distinct(lookup.ticket_id))
    query = (
        select(lookup.system, lookup.code, cases, bad)
        .join(Ticket, col(Ticket.id) == col(lookup.ticket_id))
        .join(rc, col(rc.ticket_id) == col(lookup.ticket_id))
        .where(Ticket.account_id == q.account_id, *_where_cases(q))
        .group_by(col(lookup.system), col(lookup.code))
        .order_by(cases.desc(), col(lookup.code))
        .limit(TOP)
    )
    return [
        {"code": code, "system": system, "cases": int(n), "bad": int(bad_cases)}
        for system, code, n, bad_cases in session.exec(query)
    ]


def _bad_ticket() -> Any:
    return case((col(CodeLookup.status).in_(BAD_CODES), col(CodeLookup.ticket_id)))


def _where_cases(q: ReportQuery) -> list[Any]:
    rc = ReportCase
    conditions = [col(rc.created_on) >= q.since, col(rc.created_on) <= q.until]
    return conditions + _where(rc, q)


# --- one entry point -------------------------------------------------------------------

REPORTS: dict[str, str] = {
    "volume": "Volume",
    "speed": "Speed",
    "people": "People",
    "quota": "Quota",
    "codes": "Codes",
}


def run_report(session: Session, name: str, q: ReportQuery, *, now: datetime) -> Report:
    """The report called ``name`` (one of :data:`REPORTS`) for the query, as of ``now``."""
    if session.get_bind().dialect.name == "postgresql":
        # Planned for this period and these filters each time: a plan made once for any
        # (what a prepared statement gets after five runs) cannot tell a day from a year,
        # nor the summed rows from one account's.
        session.connection().execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    makers: dict[str, Callable[[], Report]] = {
        "volume": lambda: volume(session, q),
        "speed": lambda: speed(session, q, today=now.date()),
        "people": lambda: people(session, q),
        "quota": lambda: quota(session, q, now=now),
        "codes": lambda: codes(session, q),
    }
    report = makers[name]()
    report.refreshed_at = refreshed_at(session)
    return report
