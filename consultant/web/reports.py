"""The reports page for leads and admins: a tab per report, a period and the queue's
filters (a GET form, so it works without script), and for each table a chart drawn on
the server, the figures under it and a CSV; the same functions ``consultant report``
and the API call. Figures come from the rollups, as of their last refresh."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlmodel import Session, col, select

from consultant import audit
from consultant.codes.specialty import SPECIALTIES
from consultant.config import get_settings
from consultant.db import session_scope
from consultant.models import LEAD_ROLES, Plan, utcnow
from consultant.reports.figures import REPORTS, Report, Table, run_report
from consultant.reports.query import GROUPS, INTERVALS, Asked, read_query
from consultant.web.charts import BarChart, grouped_bars
from consultant.web.pages import render
from consultant.web.security import Forbidden, Person, client_address
from consultant.web.sessions import SignedIn

router = APIRouter()
LABEL_CHARS = 14  # a chart's group label is cut to this; the table has it whole
CHART_ROWS = 400  # a chart draws the first rows (a year of days); the table and CSV all


@dataclass
class Filters:
    """The period and filters as typed in the page's GET form (and its CSV links)."""

    since: str = ""
    until: str = ""
    plan: str = ""
    specialty: str = ""
    account: str = ""
    interval: str = ""
    by: str = ""


Typed = Annotated[Filters, Depends()]


@router.get("/reports")
def reports_page(
    request: Request,
    person: Person,
    typed: Typed,
    report: str = "volume",
) -> Response:
    _leads_only(person)
    name = report if report in REPORTS else "volume"
    now = utcnow()
    with session_scope() as session:
        asked = read_query(session, today=now.date(), **asdict(typed))
        shown = run_report(session, name, asked.query, now=now)
        plans = list(session.exec(select(Plan.name).order_by(col(Plan.name))).all())
        _audit(session, request, person, "report.viewed", shown)
    problems = dict(asked.problems)
    if report not in REPORTS:
        problems["report"] = f"no report {report[:40]!r}; showing volume"
    query = shown.query.filters()
    return render(
        request,
        "reports.html.j2",
        {
            "person": person,
            "report": shown,
            "reports": REPORTS,
            "asked": _typed(asked, since=typed.since, until=typed.until, account=typed.account),
            "problems": problems,
            "tables": [
                (table, _chart(table), _csv_link(name, table, query)) for table in shown.tables
            ],
            "tab_query": urlencode(query),
            "plans": plans,
            "specialties": SPECIALTIES,
            "intervals": INTERVALS,
            "groups": GROUPS,
            "refresh_seconds": int(get_settings().report_seconds),
        },
    )


@router.get("/reports/{name}.csv")
def report_csv(
    request: Request,
    person: Person,
    name: str,
    typed: Typed,
    table: str = "",
) -> Response:
    _leads_only(person)
    if name not in REPORTS:
        return _not_found(f"no report {name[:40]!r}")
    now = utcnow()
    with session_scope() as session:
        asked = read_query(session, today=now.date(), **asdict(typed))
        shown = run_report(session, name, asked.query, now=now)
        chosen = shown.table(table) if table else shown.tables[0]
        if chosen is not None:
            _audit(session, request, person, "report.downloaded", shown)
    if chosen is None:
        return _not_found(f"the {name} report has no table {table[:40]!r}")
    q = shown.query
    filename = f"{name}-{chosen.key}-{q.since}-{q.until}.csv"
    return Response(
        chosen.csv(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _typed(asked: Asked, **typed: str) -> dict[str, str]:
    """What goes back into the form: the query used, or what was typed where it was wrong."""
    q = asked.query
    shown = {
        "since": q.since.isoformat(),
        "until": q.until.isoformat(),
        "plan": q.plan,
        "specialty": q.specialty,
        "account": q.account,
        "interval": q.interval,
        "by": q.by,
    }
    for key, value in typed.items():
        if key in asked.problems:
            shown[key] = value[:320]
    return shown


def _chart(table: Table) -> BarChart | None:
    if not table.series or not table.rows:
        return None
    rows = table.rows[:CHART_ROWS]
    labels = [_short(str(row[table.label])) for row in rows]
    return grouped_bars(
        labels, {name: [int(row[name] or 0) for row in rows] for name in table.series}
    )


def _short(label: str) -> str:
    if len(label) == 10 and label[4] == "-" and label[7] == "-":  # a day: its month and day
        return label[5:]
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def _csv_link(name: str, table: Table, query: dict[str, str]) -> str:
    return f"/reports/{name}.csv?" + urlencode({"table": table.key, **query})


def _leads_only(person: SignedIn) -> None:
    if person.role not in LEAD_ROLES:
        raise Forbidden("reports are for leads and admins")


def _audit(
    session: Session, request: Request, person: SignedIn, action: str, report: Report
) -> None:
    q = report.query
    filters = " ".join(f"{k}={v}" for k, v in q.filters().items() if k not in ("since", "until"))
    audit.record(
        session,
        actor=person.email,
        action=action,
        address=client_address(request),
        detail=f"{report.name} {q.since}..{q.until} {filters}".strip(),
    )


def _not_found(message: str) -> Response:
    return Response(message, status_code=404, media_type="text/plain")
