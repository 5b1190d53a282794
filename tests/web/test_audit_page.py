"""The audit log's page, for admins only: filtered by person, action, case and time,
newest first, a keyset page at a time; refused to leads and coders; looking at it is
itself audited, and it shows no case text."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import col, select

from consultant import audit
from consultant.db import session_scope
from consultant.models import AuditEntry, utcnow
from tests.conftest import Desk
from tests.web.conftest import form_token, make_coder, new_case, sign_in
from tests.web.test_signing_in import audit_actions

SUBJECT = "Private question about 99601 for Mrs Example"


def listed(page: str) -> list[tuple[str, str, str]]:
    """Each row of the page's table: person, action and case."""
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in page else ""
    rows = []
    for row in body.split("<tr>")[1:]:
        cells = [cell.split("</td>", 1)[0] for cell in row.split("<td")[1:]]
        case = cells[3].split(">CC-", 1)[1].split("<", 1)[0] if "CC-" in cells[3] else ""
        rows.append((cells[1].lstrip(">"), cells[2].split(">", 1)[1], case))
    return rows


@pytest.fixture
def activity(client: TestClient) -> tuple[int, int]:
    """Alice reads two cases; someone fails to sign in as Bob; then the admin signs in."""
    for email in ("alice@desk.example", "bob@desk.example"):
        make_coder(email)
    make_coder("root@desk.example", role="admin")
    first = new_case(subject=SUBJECT)
    second = new_case(sender="erin@other.example", subject="Second question on 20610")
    alice = TestClient(client.app)
    sign_in(alice, "alice@desk.example")
    alice.get(f"/tickets/{first}")
    alice.get(f"/tickets/{second}")
    page = alice.get("/sign-in")
    alice.post(
        "/sign-in",
        data={"email": "bob@desk.example", "password": "wrong", "token": form_token(page.text)},
    )
    sign_in(client, "root@desk.example")
    return first, second


def test_an_admin_reads_the_log_newest_first_and_filters_it(
    client: TestClient, activity: tuple[int, int]
) -> None:
    first, second = activity

    everything = listed(client.get("/audit").text)
    by_alice = listed(client.get("/audit?actor=Alice@desk.example").text)
    views = listed(client.get("/audit?action=case.viewed").text)
    sign_ins = listed(client.get("/audit?action=sign_in").text)
    about_first = listed(client.get(f"/audit?ticket=CC-{first}").text)

    assert everything[0] == ("root@desk.example", "queue.viewed", "")
    assert everything[-1] == ("alice@desk.example", "sign_in", "")
    assert by_alice == [
        ("alice@desk.example", "case.viewed", str(second)),
        ("alice@desk.example", "case.viewed", str(first)),
        ("alice@desk.example", "queue.viewed", ""),
        ("alice@desk.example", "sign_in", ""),
    ]
    assert views == by_alice[:2]
    assert [action for _, action, _ in sign_ins] == [
        "sign_in.two_factor",
        "sign_in",
        "sign_in.failed",
        "sign_in",
    ]
    assert about_first == [("alice@desk.example", "case.viewed", str(first))]


def test_since_and_until_take_dates_and_times_and_a_bad_one_is_explained(
    client: TestClient, activity: tuple[int, int]
) -> None:
    today = utcnow().date()
    tomorrow, yesterday = today + timedelta(days=1), today - timedelta(days=1)

    assert listed(client.get(f"/audit?since={tomorrow}").text) == []
    assert listed(client.get(f"/audit?until={yesterday}").text) == []
    assert len(listed(client.get(f"/audit?since={today}&until={today}").text)) >= 8
    hour_ago = (utcnow() - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M")
    assert len(listed(client.get("/audit", params={"since": hour_ago}).text)) >= 8

    bad = client.get("/audit?since=last+tuesday&actor=alice@desk.example")
    assert bad.status_code == 400
    assert "Since and until take a date, or a date and time, like 2026-12-01" in bad.text
    assert 'value="alice@desk.example"' in bad.text  # the form keeps what was typed
    wrong_case = client.get("/audit?ticket=twelve")
    assert wrong_case.status_code == 400 and "a case number, like CC-12 or 12" in wrong_case.text


def test_the_log_pages_through_older_entries_without_repeating_one(client: TestClient) -> None:
    make_coder("root@desk.example", role="admin")
    with session_scope() as session:
        for n in range(1, 231):
            audit.record(session, actor="carol@desk.example", action="case.viewed", ticket_id=n)
    sign_in(client, "root@desk.example")

    cases: list[str] = []
    page = client.get("/audit?actor=carol@desk.example")
    while True:
        cases += [case for _, _, case in listed(page.text)]
        if 'rel="next"' not in page.text:
            break
        link = page.text.split('rel="next"', 1)[0].rsplit('href="', 1)[1].split('"', 1)[0]
        with session_scope() as session:  # newer rows do not shift the next page
            audit.record(session, actor="carol@desk.example", action="case.viewed", ticket_id=999)
        page = client.get(link.replace("&amp;", "&"))

    assert cases == [str(n) for n in range(230, 0, -1)]


def test_viewing_the_log_is_audited_and_shows_no_case_text(
    client: TestClient, activity: tuple[int, int]
) -> None:
    page = client.get("/audit?actor=alice@desk.example&action=case.viewed")

    assert SUBJECT not in page.text and "99601" not in page.text
    with session_scope() as session:
        row = session.exec(select(AuditEntry).where(AuditEntry.action == "audit.viewed")).one()
    assert row.actor == "root@desk.example" and row.address
    assert row.detail == "actor=alice@desk.example action=case.viewed before=- shown=2"


@pytest.mark.parametrize("role", ["coder", "lead"])
def test_leads_and_coders_are_refused_the_log_and_see_no_link_to_it(
    client: TestClient, desk: Desk, role: str
) -> None:
    make_coder("alice@desk.example", role=role)
    make_coder("root@desk.example", role="admin")
    sign_in(client, "alice@desk.example")

    assert 'href="/audit"' not in client.get("/queue").text
    refused = client.get("/audit")
    assert refused.status_code == 403 and "this is for admins" in refused.text
    assert "audit.viewed" not in audit_actions("alice@desk.example")
    admin = TestClient(client.app)
    sign_in(admin, "root@desk.example")
    assert 'href="/audit"' in admin.get("/queue").text


@pytest.mark.one_database("sqlite")
def test_the_command_line_lists_the_same_rows_and_explains_a_bad_date(
    client: TestClient, desk: Desk, activity: tuple[int, int]
) -> None:
    first, _ = activity
    listed_here = desk.consultant("audit", "list", "--since", str(utcnow().date()))
    refused = desk.consultant("audit", "list", "--until", "last tuesday")
    views = desk.consultant(
        "audit", "list", "--actor", "alice@desk.example", "--action", "case", "--ticket", str(first)
    )

    with session_scope() as session:
        newest = session.exec(select(AuditEntry).order_by(col(AuditEntry.id).desc())).first()
    assert newest is not None
    assert listed_here.returncode == 0
    assert listed_here.stdout.splitlines()[0].split()[1:3] == [newest.actor, newest.action]
    assert refused.returncode != 0
    assert "--until takes a date, or a date and time, like 2026-12-01" in refused.stderr
    assert [line.split()[1:4] for line in views.stdout.splitlines()] == [
        ["alice@desk.example", "case.viewed", f"CC-{first}"]
    ]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    filters=st.dictionaries(
        st.sampled_from(["actor", "action", "ticket", "since", "until", "before"]),
        st.text(max_size=400) | st.sampled_from(["\x00", "CC-\x00", "2026-12-01\x00", "-1"]),
    )
)
def test_any_filter_gets_a_page_never_a_server_error(
    client: TestClient, admin_signed_in: None, filters: dict[str, str]
) -> None:
    page = client.get("/audit", params=filters)

    assert page.status_code in (200, 400), page.text[:300]
    assert "Audit log" in page.text


@pytest.fixture
def admin_signed_in(client: TestClient) -> None:
    make_coder("root@desk.example", role="admin")
    sign_in(client, "root@desk.example")
