"""Reports for leads and admins: the desk's volume per day as a chart and a table (and
CSV), and each coder's load and speed; the same functions ``consultant report`` calls."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session

from consultant import audit
from consultant.db import session_scope
from consultant.models import LEAD_ROLES, utcnow
from consultant.reports import coders_report, volume_report
from consultant.web.charts import grouped_bars
from consultant.web.pages import render
from consultant.web.security import Forbidden, Person, client_address
from consultant.web.sessions import SignedIn

router = APIRouter()
DEFAULT_DAYS = 30
MAX_DAYS = 366
SERIES = ("received", "answered", "solved")


@router.get("/reports")
def reports_page(request: Request, person: Person, since: str = "", until: str = "") -> Response:
    _leads_only(person)
    start, end, problem = _period(since, until)
    with session_scope() as session:
        volume = volume_report(session, since=start, until=end)
        coders = coders_report(session, since=start, until=end)
        _audit(session, request, person, "report.viewed", start, end)
    chart = grouped_bars(
        [row["day"][5:] for row in volume], {name: [row[name] for row in volume] for name in SERIES}
    )
    return render(
        request,
        "reports.html.j2",
        {
            "person": person,
            "since": start.date().isoformat(),
            "until": (end - timedelta(days=1)).date().isoformat(),
            "error": problem,
            "volume": volume,
            "totals": {name: sum(row[name] for row in volume) for name in SERIES},
            "chart": chart,
            "coders": coders,
        },
    )


@router.get("/reports/volume.csv")
def volume_csv(request: Request, person: Person, since: str = "", until: str = "") -> Response:
    _leads_only(person)
    start, end, _ = _period(since, until)
    with session_scope() as session:
        volume = volume_report(session, since=start, until=end)
        _audit(session, request, person, "report.downloaded", start, end)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["day", *SERIES])
    writer.writeheader()
    writer.writerows(volume)
    name = f"volume-{start:%Y-%m-%d}-{end - timedelta(days=1):%Y-%m-%d}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _period(since: str, until: str) -> tuple[datetime, datetime, str]:
    """The days asked for (``until`` included), or the last 30 days with why not."""
    today = utcnow().date()
    try:
        last = date.fromisoformat(until) if until else today
        first = date.fromisoformat(since) if since else last - timedelta(days=DEFAULT_DAYS - 1)
    except ValueError:
        first, last = today - timedelta(days=DEFAULT_DAYS - 1), today
        problem = "Dates are written 2026-12-01; showing the last 30 days."
    else:
        problem = ""
        if first > last or (last - first).days >= MAX_DAYS:
            first, last = last - timedelta(days=DEFAULT_DAYS - 1), last
            problem = f"A report covers 1 to {MAX_DAYS} days; showing 30 days to {last}."
    start = datetime.combine(first, time(), tzinfo=UTC)
    return start, datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC), problem


def _leads_only(person: SignedIn) -> None:
    if person.role not in LEAD_ROLES:
        raise Forbidden("reports are for leads and admins")


def _audit(
    session: Session,
    request: Request,
    person: SignedIn,
    action: str,
    start: datetime,
    end: datetime,
) -> None:
    audit.record(
        session,
        actor=person.email,
        action=action,
        address=client_address(request),
        detail=f"volume {start:%Y-%m-%d}..{end - timedelta(days=1):%Y-%m-%d}",
    )
