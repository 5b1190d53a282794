"""The volume report as a lead reads it: a chart drawn on the server, the table under it
and a CSV, each figure checked against counts taken here from the raw tables."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta

from fastapi.testclient import TestClient
from sqlmodel import col, func, select

from consultant import casework
from consultant.db import session_scope
from consultant.models import Message, Ticket
from tests.conftest import Desk
from tests.web.conftest import make_coder, new_case, sign_in

DAYS = [date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 5)]


def case_on(day: date, n: int, *, answered: bool = False, solved: bool = False) -> None:
    """A case received on ``day``, answered and solved that day if asked."""
    at = datetime(day.year, day.month, day.day, 15, n, tzinfo=UTC)
    number = new_case(f"biller{n}@clinic{n}.example", subject=f"question {n} on 99213")
    with session_scope() as session:
        ticket = session.get(Ticket, number)
        assert ticket is not None
        ticket.created_at = at
        session.add(ticket)
    if answered or solved:
        with session_scope() as session:
            casework.answer(
                session,
                number,
                by="alice@desk.example",
                text="See the NCCI table.",
                then="solved" if solved else "pending",
                now=at + timedelta(hours=1),
            )


def counted(day: date) -> dict[str, int]:
    """The day's figures, counted here from the tables."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    with session_scope() as session:
        count = select(func.count())
        received = session.exec(
            count.select_from(Ticket).where(Ticket.created_at >= start, Ticket.created_at < end)
        ).one()
        answered = session.exec(
            count.select_from(Message).where(
                Message.direction == "out",
                col(Message.coder_id).is_not(None),
                Message.created_at >= start,
                Message.created_at < end,
            )
        ).one()
        solved = session.exec(
            count.select_from(Ticket).where(
                col(Ticket.solved_at) >= start, col(Ticket.solved_at) < end
            )
        ).one()
    return {"received": received, "answered": answered, "solved": solved}


def make_history() -> None:
    make_coder("alice@desk.example")
    case_on(DAYS[0], 1, answered=True)
    case_on(DAYS[0], 2, solved=True)
    case_on(DAYS[1], 3)
    case_on(DAYS[2], 4, solved=True)


def test_a_lead_sees_the_volume_chart_table_and_csv_matching_the_tables(
    client: TestClient,
) -> None:
    make_history()
    make_coder("lead@desk.example", role="lead")
    sign_in(client, "lead@desk.example")
    period = {"since": "2026-11-01", "until": "2026-11-06"}

    page = client.get("/reports", params=period)

    assert page.status_code == 200
    assert page.text.count("<rect ") == 6 * 3  # a bar per series per day, quiet days too
    for day in DAYS:
        figures = counted(day)
        row = f"<td>{day}</td><td>{figures['received']}</td><td>{figures['answered']}</td>"
        assert row + f"<td>{figures['solved']}</td>" in page.text
    assert "<title>11-02: 2 received</title>" in page.text
    assert "<script" not in page.text.split("<main", 1)[1]

    download = client.get("/reports/volume.csv", params=period)
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert "attachment" in download.headers["content-disposition"]
    assert {r["day"]: int(r["solved"]) for r in rows}["2026-11-05"] == counted(DAYS[2])["solved"]
    assert len(rows) == 6


def test_reports_are_for_leads_and_bad_dates_get_a_message(client: TestClient) -> None:
    make_coder("alice@desk.example")
    sign_in(client, "alice@desk.example")
    assert client.get("/reports").status_code == 403
    assert client.get("/reports/volume.csv").status_code == 403

    lead = TestClient(client.app)
    make_coder("lead@desk.example", role="lead")
    sign_in(lead, "lead@desk.example")
    for since, until in (("yesterday", ""), ("2026-12-01", "2026-01-01"), ("2020-01-01", "")):
        page = lead.get("/reports", params={"since": since, "until": until})
        assert page.status_code == 200 and 'role="alert"' in page.text
        assert page.text.count("<rect ") == 30 * 3


def test_the_volume_report_from_the_command_line(desk: Desk) -> None:
    make_history()

    period = ("--since", "2026-11-01", "--until", "2026-11-05")
    rows = json.loads(desk.consultant("report", "volume", *period, "--json").stdout)
    as_csv = desk.consultant(
        "report", "volume", "--since", "2026-11-02", "--until", "2026-11-02", "--csv"
    ).stdout

    assert [r["day"] for r in rows] == [f"2026-11-0{d}" for d in range(1, 6)]
    assert {r["day"]: r["received"] for r in rows}["2026-11-02"] == counted(DAYS[0])["received"]
    figures = counted(DAYS[0])
    line = f"2026-11-02,{figures['received']},{figures['answered']},{figures['solved']}"
    assert as_csv.splitlines() == ["day,received,answered,solved", line]
