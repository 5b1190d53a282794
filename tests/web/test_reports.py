"""The reports as a lead reads them: each figure checked against counts taken here from
the raw tables (tickets, messages, sla_clocks, quota_entries, code_lookups), with the
business-hours arithmetic of a case answered across a weekend, a refresh after new
cases arrive, the CSV, the command and the API."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from sqlmodel import col, func, select

from consultant import casework
from consultant.config import get_settings
from consultant.db import session_scope
from consultant.models import (
    Account,
    Assignment,
    AuditEntry,
    CodeLookup,
    Message,
    SlaClock,
    SlaTarget,
    Ticket,
    utcnow,
)
from consultant.quota import period_of, used_in_period
from consultant.reports.figures import Table
from consultant.reports.rollups import bucket_of, refresh_now
from tests.conftest import Desk
from tests.web.conftest import PASSWORD, make_coder, new_case, sign_in, unused_code
from tests.web.test_api import auth, token_for

HOURS = "Mon-Fri 08:00-18:00 UTC"
PERIOD = {"since": "2026-11-01", "until": "2026-11-10"}


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def office_hours(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The desk open Monday to Friday, 08:00 to 18:00 UTC."""
    monkeypatch.setenv("CONSULTANT_BUSINESS_HOURS", HOURS)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def case_at(
    arrived: datetime,
    n: int,
    *,
    subject: str,
    answered: datetime | None = None,
    then: str = "pending",
) -> int:
    """A case that arrived at ``arrived`` (its clocks started then), answered at
    ``answered`` by alice, who was given it when it arrived."""
    number = new_case(f"biller{n}@clinic{n}.example", subject=subject)
    with session_scope() as session:
        ticket = session.get(Ticket, number)
        assert ticket is not None
        ticket.created_at = arrived
        session.add(ticket)
        for clock in session.exec(select(SlaClock).where(SlaClock.ticket_id == number)):
            clock.running_since = arrived
            session.add(clock)
        for stretch in session.exec(select(Assignment).where(Assignment.ticket_id == number)):
            stretch.started_at = arrived
            session.add(stretch)
    if answered is not None:
        with session_scope() as session:
            casework.answer(
                session, number, by="alice@desk.example", text="See NCCI.", then=then, now=answered
            )
    return number


def make_history() -> None:
    make_coder("alice@desk.example")
    case_at(at(2, 15), 1, subject="Can we bill 99213-25?", answered=at(2, 16))
    case_at(at(2, 15, 30), 2, subject="Units of J3262", answered=at(2, 17, 30), then="solved")
    case_at(at(3, 10), 3, subject="Is 99213 with 20610 fine?")
    # Friday 17:00 to Monday 09:00: two business hours, the weekend not counted.
    case_at(at(6, 17), 4, subject="Dx E11.9 and 99214", answered=at(9, 9), then="solved")


# --- counts taken here from the raw tables ---------------------------------------------


def day_counts(day: date) -> dict[str, int]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    count = select(func.count())
    with session_scope() as session:
        return {
            "received": session.exec(
                count.select_from(Ticket).where(Ticket.created_at >= start, Ticket.created_at < end)
            ).one(),
            "answered": session.exec(
                count.select_from(Message).where(
                    Message.direction == "out",
                    col(Message.is_automatic).is_(False),
                    col(Message.coder_id).is_not(None),
                    Message.created_at >= start,
                    Message.created_at < end,
                )
            ).one(),
            "solved": session.exec(
                count.select_from(Ticket).where(
                    col(Ticket.solved_at) >= start, col(Ticket.solved_at) < end
                )
            ).one(),
        }


def first_response_seconds() -> list[float]:
    with session_scope() as session:
        return sorted(
            session.exec(
                select(SlaClock.used_seconds).where(
                    SlaClock.target == SlaTarget.FIRST_RESPONSE,
                    col(SlaClock.stopped_at).is_not(None),
                )
            ).all()
        )


def nearest_rank(values: list[float], share: float) -> float:
    return values[max(math.ceil(share * len(values)) - 1, 0)]


def csv_rows(client: TestClient, name: str, **params: str) -> list[dict[str, str]]:
    download = client.get(f"/reports/{name}.csv", params={**PERIOD, **params})
    assert download.status_code == 200, download.text
    assert "attachment" in download.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(download.text)))


def signed_in_lead(client: TestClient) -> TestClient:
    make_coder("lead@desk.example", role="lead")
    sign_in(client, "lead@desk.example")
    return client


# --- the page, its CSVs and what they say ------------------------------------------------


def test_each_report_matches_counts_taken_from_the_raw_tables(
    office_hours: None, client: TestClient
) -> None:
    make_history()
    refresh_now()
    lead = signed_in_lead(client)

    page = lead.get("/reports", params=PERIOD)
    assert page.status_code == 200
    assert page.text.count("<rect ") == 10 * 3  # a bar per series per day, quiet days too
    for day in (date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 9)):
        figures = day_counts(day)
        cells = "".join(f"<td>{figures[name]}</td>" for name in ("received", "answered", "solved"))
        assert f"<td>{day}</td>{cells}" in page.text
    assert "<title>11-02: 2 received</title>" in page.text
    assert "Figures as of" in page.text
    assert "<script" not in page.text.split("<main", 1)[1]
    weekly = csv_rows(lead, "volume", interval="week")
    assert [r["period"] for r in weekly] == ["2026-10-26", "2026-11-02", "2026-11-09"]
    assert int(weekly[1]["received"]) == 4 and int(weekly[2]["solved"]) == 1

    # Speed: business hours, the weekend not counted; percentiles within their bucket.
    seconds = first_response_seconds()
    assert seconds == [3600.0, 7200.0, 7200.0]
    [everyone, *_] = csv_rows(lead, "speed")
    for share, column in ((0.5, "first_response_p50_hours"), (0.9, "first_response_p90_hours")):
        exact = nearest_rank(seconds, share)
        shown = float(everyone[column])
        assert shown == round(bucket_of(exact) / 60, 2)  # the bucket's bound, in hours
        assert exact / 3600 <= shown <= (exact * 1.1 + 60) / 3600
    assert int(everyone["first_responses"]) == len(seconds)
    assert int(everyone["fr_met"]) == len(seconds) and int(everyone["fr_breached"]) == 0
    backlog = {r["age"]: int(r["cases"]) for r in csv_rows(lead, "speed", table="backlog")}
    with session_scope() as session:
        unfinished = session.exec(
            select(func.count())
            .select_from(Ticket)
            .where(col(Ticket.status).in_(["new", "open", "pending"]))
        ).one()
    assert sum(backlog.values()) == unfinished == 2
    assert backlog["30 days or more"] == 2  # the cases of November 2026, read a month on

    # People: alice's assignments and answers, counted here.
    [alice] = [r for r in csv_rows(lead, "people") if r["coder"] == "alice@desk.example"]
    with session_scope() as session:
        assigned = session.exec(select(func.count()).select_from(Assignment)).one()
        answers = session.exec(
            select(func.count()).select_from(Message).where(col(Message.coder_id).is_not(None))
        ).one()
    assert (int(alice["assigned"]), int(alice["answered"])) == (assigned, answers) == (4, 3)
    assert float(alice["first_response_p50_hours"]) == float(everyone["first_response_p50_hours"])

    # Quota: this month's ledger per account.
    quota = csv_rows(lead, "quota")
    with session_scope() as session:
        for row in quota:
            account = session.exec(select(Account).where(Account.address == row["account"])).one()
            assert int(row["used"]) == used_in_period(
                session, account, period_of(account, utcnow())
            )

    # Codes: cases per code and the share with an invalid or deleted code.
    codes = {r["code"]: int(r["cases"]) for r in csv_rows(lead, "codes")}
    with session_scope() as session:
        per_code = dict(
            session.exec(
                select(CodeLookup.code, func.count(func.distinct(CodeLookup.ticket_id))).group_by(
                    col(CodeLookup.code)
                )
            ).all()
        )
    assert codes == per_code and codes["99213"] == 2

    # One account's figures, and the volume per account.
    with session_scope() as session:
        first = session.exec(select(Ticket).order_by(col(Ticket.id))).first()
        assert first is not None and first.account_id is not None
        address = session.exec(select(Account.address).where(Account.id == first.account_id)).one()
        its_codes = set(
            session.exec(select(CodeLookup.code).where(CodeLookup.ticket_id == first.id)).all()
        )
    one = {"account": address}
    assert sum(int(r["received"]) for r in csv_rows(lead, "volume", **one)) == 1
    assert int(csv_rows(lead, "speed", **one)[0]["first_responses"]) == 1
    assert int(csv_rows(lead, "people", **one)[0]["first_responses"]) == 1
    assert {r["code"] for r in csv_rows(lead, "codes", **one)} == its_codes
    per_account = csv_rows(lead, "volume", by="account")
    assert len(per_account) == 4 and {int(r["received"]) for r in per_account} == {1}
    everyone_and_each = csv_rows(lead, "speed", by="account")
    assert [int(r["first_responses"]) for r in everyone_and_each] == [3, 1, 1, 0, 1]


def test_new_cases_show_after_the_next_refresh(office_hours: None, client: TestClient) -> None:
    make_coder("alice@desk.example")
    case_at(at(2, 15), 1, subject="Can we bill 99213-25?", answered=at(2, 16))
    refresh_now()
    lead = signed_in_lead(client)
    assert int(csv_rows(lead, "volume")[1]["received"]) == 1

    case_at(at(2, 17), 2, subject="And 99214?", answered=at(3, 9), then="solved")
    assert int(csv_rows(lead, "volume")[1]["received"]) == 1  # as of the last refresh
    refresh_now()

    rows = {r["period"]: r for r in csv_rows(lead, "volume")}
    assert int(rows["2026-11-02"]["received"]) == day_counts(date(2026, 11, 2))["received"] == 2
    assert int(rows["2026-11-03"]["solved"]) == day_counts(date(2026, 11, 3))["solved"] == 1
    [everyone, *_] = csv_rows(lead, "speed")
    assert int(everyone["first_responses"]) == 2  # 1 h, and 1 h from 17:00 to 09:00


# --- who may read them, and what garbage gets ------------------------------------------


def test_reports_are_for_leads_and_garbage_gets_a_message(client: TestClient) -> None:
    make_coder("alice@desk.example")
    sign_in(client, "alice@desk.example")
    assert client.get("/reports").status_code == 403
    assert client.get("/reports/volume.csv").status_code == 403

    lead = signed_in_lead(TestClient(client.app))
    garbage = [
        {"since": "yesterday"},
        {"since": "2026-12-01", "until": "2026-01-01"},
        {"since": "2020-01-01"},
        {"until": "2026-13-45"},
        {"plan": "gold\x00plated"},
        {"specialty": "x" * 5000},
        {"account": "@nowhere.example"},
        {"interval": "fortnight"},
        {"by": "moon"},
        {"report": "payroll"},
    ]
    for params in garbage:
        page = lead.get("/reports", params=params)
        assert page.status_code == 200, params
        assert 'role="alert"' in page.text, params
    assert lead.get("/reports/payroll.csv").status_code == 404
    assert lead.get("/reports/speed.csv", params={"table": "nope"}).status_code == 404
    for name in ("speed", "people", "quota", "codes"):
        assert lead.get("/reports", params={"report": name}).status_code == 200
    with session_scope() as session:
        actions = session.exec(
            select(AuditEntry.action).where(AuditEntry.actor == "lead@desk.example")
        ).all()
    assert actions.count("report.viewed") == len(garbage) + 4


@pytest.mark.one_database("sqlite")
def test_reports_from_the_command_line(office_hours: None, desk: Desk) -> None:
    make_history()
    period = ("--since", "2026-11-01", "--until", "2026-11-05")

    done = desk.consultant("report", "volume", *period, "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    as_csv = desk.consultant(
        "report", "volume", "--since", "2026-11-02", "--until", "2026-11-02", "--csv"
    ).stdout
    wrong = desk.consultant("report", "codes", "--since", "soon")
    rebuilt = desk.consultant("report", "rebuild", "--json")

    days = rows["tables"]["volume"]
    assert [r["period"] for r in days] == [f"2026-11-0{d}" for d in range(1, 6)]
    figures = day_counts(date(2026, 11, 2))
    assert days[1]["received"] == figures["received"]
    line = f"2026-11-02,{figures['received']},{figures['answered']},{figures['solved']}"
    assert as_csv.splitlines() == ["period,received,answered,solved", line]
    assert wrong.returncode == 1 and "--since: dates are written 2026-12-01" in wrong.stderr
    assert json.loads(rebuilt.stdout)["cases"] == 4


def test_the_reports_api_is_for_lead_tokens_with_the_read_scope(
    office_hours: None, client: TestClient
) -> None:
    make_history()
    refresh_now()
    make_coder("lead@desk.example", role="lead")
    lead = token_for("lead@desk.example", "tickets:read")
    unscoped = token_for("lead@desk.example", "tickets:write")
    coder = token_for("alice@desk.example", "tickets:read")

    answer = client.get("/api/v1/reports/speed", params=PERIOD, headers=auth(lead))
    refused = client.get("/api/v1/reports/speed", headers=auth(coder))
    no_scope = client.get("/api/v1/reports/speed", headers=auth(unscoped))
    bad = client.get("/api/v1/reports/volume", params={"since": "soon"}, headers=auth(lead))
    unknown = client.get("/api/v1/reports/payroll", headers=auth(lead))

    assert answer.status_code == 200
    assert answer.json()["tables"]["speed"][0]["first_responses"] == 3
    assert answer.json()["refreshed_at"]
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert no_scope.status_code == 403
    assert bad.status_code == 422 and "since" in bad.json()["error"]["message"]
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "invalid"
    with session_scope() as session:
        viewed = session.exec(
            select(AuditEntry.detail).where(AuditEntry.action == "api.report_viewed")
        ).all()
    assert viewed == ["token 1 speed 2026-11-01..2026-11-10"]


# --- in a browser ------------------------------------------------------------------------


def test_a_lead_opens_a_report_sees_its_chart_and_table_and_downloads_the_csv(
    page: Page, dashboard: str
) -> None:
    make_coder("alice@desk.example")
    new_case(subject="Can we bill 99213-25?")
    refresh_now()
    make_coder("lead@desk.example", role="lead")
    page.goto(f"{dashboard}/reports")
    page.get_by_label("Email address").fill("lead@desk.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    secret = page.locator('input[name="secret"]').get_attribute("value")
    assert secret
    page.get_by_label("Code").fill(unused_code("lead@desk.example", secret))
    page.get_by_role("button", name="Set up and sign in").click()

    page.goto(f"{dashboard}/reports")
    page.get_by_role("navigation", name="Reports").get_by_role("link", name="Codes").click()
    page.locator("select[name=specialty]").select_option("evaluation-management")
    page.get_by_role("button", name="Show").click()
    codes = page.get_by_role("region", name="The 25 codes asked about most")
    expect(codes.get_by_role("img")).to_be_visible()
    expect(codes.get_by_role("cell", name="99213", exact=True)).to_be_visible()
    with page.expect_download() as download:
        codes.get_by_role("link", name="CSV").click()
    text = download.value.path().read_text()
    assert text.splitlines()[0] == "code,system,cases,bad"
    assert any(line.startswith("99213,") for line in text.splitlines())


def test_a_csv_cell_a_spreadsheet_would_run_as_a_formula_stays_text() -> None:
    table = Table(
        key="accounts",
        title="Accounts",
        columns=[("account", "Account"), ("cases", "Cases")],
        rows=[
            {"account": '=HYPERLINK("http://x.example")@clinic.example', "cases": 3},
            {"account": "@clinic.example", "cases": -2},
            {"account": "dana@clinic.example", "cases": 0},
        ],
    )

    rows = list(csv.DictReader(io.StringIO(table.csv())))

    assert [r["account"] for r in rows] == [
        '\'=HYPERLINK("http://x.example")@clinic.example',
        "'@clinic.example",
        "dana@clinic.example",
    ]
    assert [r["cases"] for r in rows] == ["3", "-2", "0"]
