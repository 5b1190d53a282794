"""The reports' rollups: figures per UTC day and group of cases (plan, specialty,
account), kept up to date by the beat so no report reads the raw tables whole.

:func:`refresh` re-derives only the days something happened on since the last refresh.
The cases touched are found through the rows the desk appends (tickets, messages,
events, code lookups, assignments, ledger entries: every change to a case writes one);
``report_cases`` keeps what each case last counted as, so a case that moved (solved
again, given a specialty) is taken out of its old days as well as put into its new ones.
Each refresh reads again from where the refresh before the last stopped, so a row
committed late by a slow transaction is still seen; reading a case twice changes
nothing. :func:`rebuild` derives everything from scratch the same way.

Times to first response and to resolution go into histograms of business minutes
(:data:`BUCKETS`, each about 10 % wider than the one before), so p50 and p90 are read
as the upper bound of the bucket they fall in: never under the true figure, at most
10 % (or one minute) over it.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Date, and_, case, cast, delete, false, func, insert, literal, or_, true
from sqlalchemy.sql import ColumnElement, Select, union_all
from sqlmodel import Session, col, select

from consultant.codes.catalog import DELETED, NOT_YET_VALID, UNKNOWN
from consultant.db import session_scope
from consultant.models import (
    Account,
    Assignment,
    CodeLookup,
    Event,
    Message,
    QuotaEntry,
    QuotaEntryKind,
    ReportCase,
    ReportCode,
    ReportCoderDay,
    ReportDay,
    ReportQuota,
    ReportRefresh,
    ReportSpeed,
    SlaClock,
    SlaTarget,
    Ticket,
    TicketStatus,
    utcnow,
)

BAD_CODES = (UNKNOWN, DELETED, NOT_YET_VALID)
UNFINISHED = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING)
EVERY = -1  # a rollup row's account (plan, coder) that adds up all of them
EVERY_SPECIALTY = "*"  # and its specialty
MAX_MINUTES = 60 * 24 * 60  # the last bucket holds everything from 60 whole days up
CHUNK = 5000  # ids per statement


def _buckets() -> tuple[int, ...]:
    bounds = [1]
    while bounds[-1] < MAX_MINUTES:
        bounds.append(max(bounds[-1] + 1, math.ceil(bounds[-1] * 1.1)))
    return tuple(bounds)


BUCKETS = _buckets()


def bucket_of(seconds: float) -> int:
    """The histogram bucket (its upper bound, in minutes) of a time in business seconds."""
    return BUCKETS[min(bisect_left(BUCKETS, seconds / 60), len(BUCKETS) - 1)]


@dataclass(frozen=True)
class Refreshed:
    cases: int  # cases re-read
    days: int  # days re-derived
    seconds: float


# --- reading the raw tables --------------------------------------------------------


def day_of(session: Session, column: Any) -> ColumnElement[Any]:
    """The UTC day of a timestamp column, as the database writes a date."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", column), Date)  # whatever the server's zone
    return func.date(column)  # SQLite keeps UTC text


def _answers() -> tuple[ColumnElement[bool], ...]:
    """The messages that are a coder's answer (not an acknowledgement, not a customer's)."""
    return (
        Message.direction == "out",
        col(Message.is_automatic).is_(False),
        col(Message.coder_id).is_not(None),
    )


def _facts(session: Session, ticket_ids: Sequence[int] | None) -> Select[Any]:
    """What each case counts as now, in the shape of ``report_cases``."""
    first = SlaClock.__table__.alias("fr")
    resolution = SlaClock.__table__.alias("res")
    first_coder = (
        select(Message.coder_id)
        .where(Message.ticket_id == Ticket.id, *_answers())
        .order_by(col(Message.id))
        .limit(1)
        .scalar_subquery()
    )
    bad = (
        select(CodeLookup.id)
        .where(CodeLookup.ticket_id == Ticket.id, col(CodeLookup.status).in_(BAD_CODES))
        .exists()
    )
    stopped = first.c.stopped_at.is_not(None)
    solved = resolution.c.stopped_at.is_not(None)
    query = (
        select(
            col(Ticket.id),
            func.coalesce(Account.plan_id, 0),
            func.coalesce(Ticket.specialty, ""),
            func.coalesce(Ticket.account_id, 0),
            func.coalesce(Ticket.coder_id, 0),
            day_of(session, Ticket.created_at),
            day_of(session, Ticket.solved_at),
            case((col(Ticket.status).in_(UNFINISHED), true()), else_=false()),
            case((bad, true()), else_=false()),
            day_of(session, first.c.stopped_at),
            case((stopped, first.c.used_seconds)),
            func.coalesce(first_coder, 0),
            _breached_on(session, first),
            day_of(session, resolution.c.stopped_at),
            case((solved, resolution.c.used_seconds)),
            _breached_on(session, resolution),
        )
        .outerjoin(Account, col(Account.id) == col(Ticket.account_id))
        .outerjoin(
            first,
            and_(first.c.ticket_id == Ticket.id, first.c.target == SlaTarget.FIRST_RESPONSE),
        )
        .outerjoin(
            resolution,
            and_(resolution.c.ticket_id == Ticket.id, resolution.c.target == SlaTarget.RESOLUTION),
        )
    )
    if ticket_ids is not None:
        query = query.where(col(Ticket.id).in_(ticket_ids))
    return query


def _breached_on(session: Session, clock: Any) -> ColumnElement[Any]:
    """The day a clock ran out: when the sweep saw it, or else the day it stopped late
    (a case answered past its due time between two sweeps)."""
    late = and_(clock.c.stopped_at.is_not(None), clock.c.used_seconds >= clock.c.target_seconds)
    return func.coalesce(
        day_of(session, clock.c.breached_at), case((late, day_of(session, clock.c.stopped_at)))
    )


FACT_COLUMNS = [
    "ticket_id", "plan_id", "specialty", "account_id", "coder_id", "created_on", "solved_on",
    "unfinished", "bad_codes", "fr_on", "fr_seconds", "fr_coder_id", "fr_breached_on",
    "res_on", "res_seconds", "res_breached_on",
]  # fmt: skip
CASE_DAYS = ("created_on", "solved_on", "fr_on", "fr_breached_on", "res_on", "res_breached_on")


def _write_facts(session: Session, ticket_ids: Sequence[int] | None) -> None:
    if ticket_ids is None:
        session.execute(delete(ReportCase))
        session.execute(insert(ReportCase).from_select(FACT_COLUMNS, _facts(session, None)))
        return
    for start in range(0, len(ticket_ids), CHUNK):
        chunk = ticket_ids[start : start + CHUNK]
        session.execute(delete(ReportCase).where(col(ReportCase.ticket_id).in_(chunk)))
        session.execute(insert(ReportCase).from_select(FACT_COLUMNS, _facts(session, chunk)))


def _case_days(session: Session, ticket_ids: Sequence[int]) -> set[date]:
    """Every day the cases count on in ``report_cases``, and the days of their answers."""
    days: set[date] = set()
    for start in range(0, len(ticket_ids), CHUNK):
        chunk = ticket_ids[start : start + CHUNK]
        columns = [getattr(ReportCase, name) for name in CASE_DAYS]
        where = col(ReportCase.ticket_id).in_(chunk)
        for row in session.exec(select(*columns).where(where)):
            days.update(_as_date(value) for value in row if value is not None)
        answered = day_of(session, Message.created_at)
        query = select(answered).where(col(Message.ticket_id).in_(chunk), *_answers()).distinct()
        days.update(_as_date(value) for value in session.exec(query))
    return days


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


# --- deriving the day tables ---------------------------------------------------------


DAY_MEASURES = (
    "received", "answered", "solved", "backlog", "bad_codes",
    "fr_met", "fr_breached", "res_met", "res_breached",
)  # fmt: skip


def _runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """Days as runs of consecutive days: (first, day after the last)."""
    ordered = sorted(days)
    runs: list[tuple[date, date]] = []
    for day in ordered:
        if runs and runs[-1][1] == day:
            runs[-1] = (runs[-1][0], day + timedelta(days=1))
        else:
            runs.append((day, day + timedelta(days=1)))
    return runs


def _in_days(column: Any, days: Sequence[date] | None) -> ColumnElement[bool]:
    """A date column among ``days`` (``None``: any)."""
    return true() if days is None else col(column).in_(days)


def _at_on_days(column: Any, days: Sequence[date] | None) -> ColumnElement[bool]:
    """A timestamp on one of ``days`` (UTC), as ranges an index can read."""
    if days is None:
        return true()
    ranges = [
        and_(col(column) >= _midnight(first), col(column) < _midnight(end))
        for first, end in _runs(days)
    ]
    return or_(*ranges)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _day_parts(session: Session, days: Sequence[date] | None) -> list[Select[Any]]:
    """One SELECT per way a case counts on a day, all in the shape of ``report_days``."""
    rc = ReportCase
    groups = (col(rc.plan_id), col(rc.specialty), col(rc.account_id))

    def part(day: Any, where: ColumnElement[bool], **measures: Any) -> Select[Any]:
        values = [measures.get(name, literal(0)).label(name) for name in DAY_MEASURES]
        return select(day.label("day"), *groups, *values).where(where)

    one = literal(1)
    parts = [
        part(
            col(rc.created_on),
            _in_days(rc.created_on, days),
            received=one,
            backlog=case((col(rc.unfinished), 1), else_=0),
            bad_codes=case((col(rc.bad_codes), 1), else_=0),
        ),
        part(
            col(rc.solved_on),
            _in_days(rc.solved_on, days) & col(rc.solved_on).is_not(None),
            solved=one,
        ),
        part(
            col(rc.fr_on),
            _in_days(rc.fr_on, days) & col(rc.fr_on).is_not(None),
            fr_met=case((col(rc.fr_breached_on).is_(None), 1), else_=0),
        ),
        part(
            col(rc.fr_breached_on),
            _in_days(rc.fr_breached_on, days) & col(rc.fr_breached_on).is_not(None),
            fr_breached=one,
        ),
        part(
            col(rc.res_on),
            _in_days(rc.res_on, days) & col(rc.res_on).is_not(None),
            res_met=case((col(rc.res_breached_on).is_(None), 1), else_=0),
        ),
        part(
            col(rc.res_breached_on),
            _in_days(rc.res_breached_on, days) & col(rc.res_breached_on).is_not(None),
            res_breached=one,
        ),
    ]
    answers = part(
        day_of(session, Message.created_at),
        and_(_at_on_days(Message.created_at, days), *_answers()),
        answered=one,
    ).join(Message, col(Message.ticket_id) == col(rc.ticket_id))
    return [*parts, answers]


def _derive_days(session: Session, days: Sequence[date] | None) -> None:
    every = union_all(*_day_parts(session, days)).subquery()
    keys = [every.c.day, every.c.plan_id, every.c.specialty, every.c.account_id]
    sums = [func.sum(every.c[name]) for name in DAY_MEASURES]
    grouped = select(*keys, *sums).group_by(*keys)
    session.execute(delete(ReportDay).where(_in_days(ReportDay.day, days)))
    columns = ["day", "plan_id", "specialty", "account_id", *DAY_MEASURES]
    session.execute(insert(ReportDay).from_select(columns, grouped))
    # The same days for every account together: what a report reads unless it asks
    # for accounts, a few dozen rows a day instead of one per account.
    rd = ReportDay
    keys = [col(rd.day), col(rd.plan_id), col(rd.specialty)]
    every_account = (
        select(*keys, literal(EVERY), *(func.sum(getattr(rd, n)) for n in DAY_MEASURES))
        .where(_in_days(rd.day, days), rd.account_id != EVERY)
        .group_by(*keys)
    )
    session.execute(insert(ReportDay).from_select(columns, every_account))


def _bucket(seconds: Any) -> ColumnElement[int]:
    whens = [(seconds <= bound * 60, bound) for bound in BUCKETS[:-1]]
    return case(*whens, else_=BUCKETS[-1])


def _derive_speed(session: Session, days: Sequence[date] | None) -> None:
    rc = ReportCase
    groups = (col(rc.plan_id), col(rc.specialty), col(rc.account_id))

    def part(target: str, day: Any, seconds: Any, coder: Any) -> Select[Any]:
        return select(
            day.label("day"),
            literal(target).label("target"),
            *groups,
            coder.label("coder_id"),
            _bucket(seconds).label("bucket"),
        ).where(_in_days(day, days), col(seconds).is_not(None), col(day).is_not(None))

    every = union_all(
        part(SlaTarget.FIRST_RESPONSE, col(rc.fr_on), col(rc.fr_seconds), col(rc.fr_coder_id)),
        part(SlaTarget.RESOLUTION, col(rc.res_on), col(rc.res_seconds), col(rc.coder_id)),
    ).subquery()
    keys = [
        every.c.day, every.c.target, every.c.plan_id, every.c.specialty,
        every.c.account_id, every.c.coder_id, every.c.bucket,
    ]  # fmt: skip
    grouped = select(*keys, func.count()).group_by(*keys)
    session.execute(delete(ReportSpeed).where(_in_days(ReportSpeed.day, days)))
    columns = ["day", "target", "plan_id", "specialty", "account_id", "coder_id", "bucket"]
    session.execute(insert(ReportSpeed).from_select([*columns, "cases"], grouped))
    # Sums the reports read unless they ask for accounts: per plan and specialty (every
    # account and coder), per plan (every specialty too), and per coder (every plan,
    # specialty and account).
    rs = ReportSpeed
    fine = (_in_days(rs.day, days), rs.account_id != EVERY)
    keys = [col(rs.day), col(rs.target), col(rs.plan_id), col(rs.specialty), col(rs.bucket)]
    by_group = (
        select(*keys[:4], literal(EVERY), literal(EVERY), keys[4], func.sum(rs.cases))
        .where(*fine)
        .group_by(*keys)
    )
    session.execute(insert(ReportSpeed).from_select([*columns, "cases"], by_group))
    keys = [col(rs.day), col(rs.target), col(rs.plan_id), col(rs.bucket)]
    by_plan = (
        select(
            *keys[:3],
            literal(EVERY_SPECIALTY),
            literal(EVERY),
            literal(EVERY),
            keys[3],
            func.sum(rs.cases),
        )
        .where(*fine)
        .group_by(*keys)
    )
    session.execute(insert(ReportSpeed).from_select([*columns, "cases"], by_plan))
    keys = [col(rs.day), col(rs.target), col(rs.coder_id), col(rs.bucket)]
    by_coder = (
        select(
            keys[0],
            keys[1],
            literal(EVERY),
            literal(""),
            literal(EVERY),
            keys[2],
            keys[3],
            func.sum(rs.cases),
        )
        .where(*fine)
        .group_by(*keys)
    )
    session.execute(insert(ReportSpeed).from_select([*columns, "cases"], by_coder))


def _derive_coder_days(session: Session, days: Sequence[date] | None) -> None:
    assigned_day = day_of(session, Assignment.started_at)
    answered_day = day_of(session, Message.created_at)
    every = union_all(
        select(
            assigned_day.label("day"),
            col(Assignment.coder_id).label("coder_id"),
            literal(1).label("assigned"),
            literal(0).label("answered"),
        ).where(_at_on_days(Assignment.started_at, days)),
        select(
            answered_day.label("day"),
            col(Message.coder_id).label("coder_id"),
            literal(0).label("assigned"),
            literal(1).label("answered"),
        ).where(_at_on_days(Message.created_at, days), *_answers()),
    ).subquery()
    keys = [every.c.day, every.c.coder_id]
    grouped = select(*keys, func.sum(every.c.assigned), func.sum(every.c.answered)).group_by(*keys)
    session.execute(delete(ReportCoderDay).where(_in_days(ReportCoderDay.day, days)))
    columns = ["day", "coder_id", "assigned", "answered"]
    session.execute(insert(ReportCoderDay).from_select(columns, grouped))


def _derive_codes(session: Session, days: Sequence[date] | None) -> None:
    rc = ReportCase
    keys = [
        col(rc.created_on), col(rc.plan_id), col(rc.specialty),
        col(CodeLookup.system), col(CodeLookup.code),
    ]  # fmt: skip
    bad_case = case((col(CodeLookup.status).in_(BAD_CODES), col(CodeLookup.ticket_id)))
    grouped = (
        select(
            *keys,
            func.count(func.distinct(CodeLookup.ticket_id)),
            func.count(func.distinct(bad_case)),
        )
        .join(CodeLookup, col(CodeLookup.ticket_id) == col(rc.ticket_id))
        .where(_in_days(rc.created_on, days))
        .group_by(*keys)
    )
    session.execute(delete(ReportCode).where(_in_days(ReportCode.day, days)))
    columns = ["day", "plan_id", "specialty", "system", "code", "cases", "bad"]
    session.execute(insert(ReportCode).from_select(columns, grouped))


def _derive_quota(session: Session, pairs: Sequence[tuple[int, str]] | None) -> None:
    """The ledger summed per account and period (``None``: all of them)."""
    debit = case((QuotaEntry.kind == QuotaEntryKind.DEBIT, QuotaEntry.amount), else_=0)
    credit = case((QuotaEntry.kind == QuotaEntryKind.CREDIT, QuotaEntry.amount), else_=0)
    keys = [col(QuotaEntry.account_id), col(QuotaEntry.period)]
    for start in range(0, len(pairs) if pairs is not None else 1, 500):
        if pairs is None:
            chosen: ColumnElement[bool] = true()
            kept: ColumnElement[bool] = true()
        else:
            chunk = pairs[start : start + 500]
            chosen = or_(
                *(and_(QuotaEntry.account_id == a, QuotaEntry.period == p) for a, p in chunk)
            )
            kept = or_(
                *(and_(ReportQuota.account_id == a, ReportQuota.period == p) for a, p in chunk)
            )
        grouped = select(*keys, func.sum(debit), func.sum(credit)).where(chosen).group_by(*keys)
        session.execute(delete(ReportQuota).where(kept))
        columns = ["account_id", "period", "debits", "credits"]
        session.execute(insert(ReportQuota).from_select(columns, grouped))


# --- refreshing ----------------------------------------------------------------------

# The tables whose new rows say a case changed: (name, its id column, its case column).
WATCHED: tuple[tuple[str, Any, Any], ...] = (
    ("tickets", Ticket.id, Ticket.id),
    ("messages", Message.id, Message.ticket_id),
    ("events", Event.id, Event.ticket_id),
    ("code_lookups", CodeLookup.id, CodeLookup.ticket_id),
    ("assignments", Assignment.id, Assignment.ticket_id),
    ("quota_entries", QuotaEntry.id, QuotaEntry.ticket_id),
)


def _newest_ids(session: Session) -> dict[str, int]:
    return {
        name: int(session.exec(select(func.coalesce(func.max(id_column), 0))).one())
        for name, id_column, _ in WATCHED
    }


def _state(session: Session) -> ReportRefresh | None:
    return session.exec(
        select(ReportRefresh).where(ReportRefresh.id == 1).with_for_update()
    ).first()


def rebuild(session: Session, *, now: datetime | None = None) -> Refreshed:
    """Every rollup derived again from the raw tables: ``consultant report rebuild``."""
    began = utcnow()
    state = _state(session) or ReportRefresh(id=1)
    newest = _newest_ids(session)
    _write_facts(session, None)
    for derive in (_derive_days, _derive_speed, _derive_coder_days, _derive_codes):
        derive(session, None)
    _derive_quota(session, None)
    state.marks = json.dumps({name: [newest[name], newest[name]] for name in newest})
    state.refreshed_at = state.rebuilt_at = now or began
    session.add(state)
    session.flush()
    cases = int(session.exec(select(func.count()).select_from(ReportCase)).one())
    days = int(session.exec(select(func.count(func.distinct(ReportDay.day)))).one())
    return Refreshed(cases=cases, days=days, seconds=(utcnow() - began).total_seconds())


def refresh(session: Session, *, now: datetime | None = None) -> Refreshed:
    """Re-derive the days touched since the refresh before the last (idempotent); the
    first refresh of a desk is a rebuild."""
    began = utcnow()
    state = _state(session)
    if state is None:
        return rebuild(session, now=now)
    marks: dict[str, list[int]] = json.loads(state.marks)
    newest = _newest_ids(session)
    touched: set[int] = set()
    pairs: set[tuple[int, str]] = set()
    new_days: set[date] = set()
    for name, id_column, case_column in WATCHED:
        since = marks.get(name, [0, 0])[0]
        query = select(case_column).where(id_column > since, col(case_column).is_not(None))
        touched.update(session.exec(query.distinct()))
    since = marks.get("quota_entries", [0, 0])[0]
    ledger = select(QuotaEntry.account_id, QuotaEntry.period).where(QuotaEntry.id > since)
    pairs.update((a, p) for a, p in session.exec(ledger.distinct()))
    since = marks.get("assignments", [0, 0])[0]
    assigned = select(day_of(session, Assignment.started_at)).where(Assignment.id > since)
    new_days.update(_as_date(day) for day in session.exec(assigned.distinct()))
    ids = sorted(touched)
    days = _case_days(session, ids)  # where they counted before
    _write_facts(session, ids)
    days |= _case_days(session, ids) | new_days  # and where they count now
    chosen = sorted(days)
    for start in range(0, len(chosen), 500):
        for derive in (_derive_days, _derive_speed, _derive_coder_days, _derive_codes):
            derive(session, chosen[start : start + 500])
    _derive_quota(session, sorted(pairs))
    state.marks = json.dumps({name: [marks.get(name, [0, 0])[1], newest[name]] for name in newest})
    state.refreshed_at = now or began
    session.add(state)
    return Refreshed(cases=len(ids), days=len(chosen), seconds=(utcnow() - began).total_seconds())


def refresh_now() -> Refreshed:
    """One refresh in its own transaction: what the beat (and the embedded worker) runs."""
    with session_scope() as session:
        return refresh(session)


def refreshed_at(session: Session) -> datetime | None:
    """When the figures were last brought up to date (``None``: never)."""
    return session.exec(select(ReportRefresh.refreshed_at).where(ReportRefresh.id == 1)).first()


def percentile_of(histogram: dict[int, int], share: float) -> int | None:
    """The nearest-rank percentile of a histogram, as its bucket's upper bound in minutes."""
    total = sum(histogram.values())
    if not total:
        return None
    rank = max(math.ceil(share * total), 1)
    seen = 0
    for bound in sorted(histogram):
        seen += histogram[bound]
        if seen >= rank:
            return bound
    return max(histogram)
