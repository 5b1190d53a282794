"""The admin's pages: adding a coder (with their one-time link), changing and deactivating
one, resetting two-factor, writing saved answers with a preview — refused with the
reason and kept as typed when wrong, audited with before and after when done."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from sqlmodel import col, select

from consultant import quota
from consultant.db import session_scope
from consultant.models import AuditEntry, Coder, SavedAnswer
from tests.web.conftest import make_coder, sign_in, unused_code

LINK = re.compile(r"https?://[^<\s]+/sign-in/link/[A-Za-z0-9_-]+")


def admin_audit(action: str) -> list[str]:
    with session_scope() as session:
        query = select(AuditEntry.detail).where(AuditEntry.action == action)
        return list(session.exec(query.order_by(col(AuditEntry.id))))


def test_an_admin_adds_changes_and_deactivates_a_coder_each_change_audited(
    client: TestClient,
) -> None:
    make_coder("root@desk.example", role="admin")
    csrf = sign_in(client, "root@desk.example")
    form = {"csrf": csrf, "name": "Bea", "role": "coder", "capacity": "8", "timezone": "UTC"}

    bad = client.post("/admin/coders", data={**form, "email": "not-an-address"})
    assert bad.status_code == 400 and "is not an email address" in bad.text
    assert 'value="not-an-address"' in bad.text  # kept as typed
    assert 'id="add-error"' in bad.text  # beside the form
    added = client.post("/admin/coders", data={**form, "email": "bea@desk.example"})
    assert added.status_code == 200 and len(LINK.findall(added.text)) == 1

    changed = client.post(
        "/admin/coders/bea@desk.example",
        data={**form, "capacity": "12", "specialties": ["medicine-home-health"], "active": "yes"},
    )
    assert "Done: changed bea@desk.example." in changed.text
    refused = client.post("/admin/coders/bea@desk.example", data={**form, "capacity": "lots"})
    assert refused.status_code == 400 and "whole number" in refused.text
    client.post("/admin/coders/bea@desk.example", data={**form, "capacity": "12"})  # inactive

    with session_scope() as session:
        bea = session.exec(select(Coder).where(Coder.email == "bea@desk.example")).one()
    assert (bea.capacity, bea.active, bea.specialties) == (12, False, "generalist")
    details = admin_audit("admin.coder_changed")
    assert "capacity: 8 → 12" in details[0] and "medicine-home-health" in details[0]
    assert "active: True → False" in details[1]
    assert admin_audit("admin.coder_added") == ["bea@desk.example (coder)"]


def test_admin_pages_are_for_admins_only(client: TestClient) -> None:
    make_coder("lead@desk.example", role="lead")
    csrf = sign_in(client, "lead@desk.example")

    assert client.get("/admin/coders").status_code == 403
    assert client.get("/admin/answers").status_code == 403
    posted = client.post(
        "/admin/coders", data={"csrf": csrf, "email": "x@desk.example", "name": "X"}
    )
    assert posted.status_code == 403
    with session_scope() as session:
        assert session.exec(select(Coder).where(Coder.email == "x@desk.example")).first() is None


def test_a_saved_answer_is_previewed_from_a_sample_case_and_refused_if_it_would_not_render(
    client: TestClient,
) -> None:
    make_coder("root@desk.example", role="admin")
    csrf = sign_in(client, "root@desk.example")
    body = "Hi {{ first_name }}, on {{ code_list }}:"

    preview = client.post(
        "/admin/answers", data={"csrf": csrf, "title": "Hello", "body": body, "preview": "yes"}
    )
    assert "Hi Dana, on 99214, Z00.00:" in preview.text
    with session_scope() as session:
        assert session.exec(select(SavedAnswer)).all() == []  # a preview saves nothing
    broken = client.post(
        "/admin/answers", data={"csrf": csrf, "title": "Broken", "body": "Hi {{ frist_name }}"}
    )
    assert broken.status_code == 400 and "frist_name" in broken.text
    assert 'id="body-error"' in broken.text and "Hi {{ frist_name }}</textarea>" in broken.text
    client.post("/admin/answers", data={"csrf": csrf, "title": "Hello", "body": body})
    client.post(
        "/admin/answers",
        data={"csrf": csrf, "existing_title": "Hello", "body": body + " see you"},
    )
    with session_scope() as session:
        [saved] = session.exec(select(SavedAnswer)).all()
    assert saved.body.endswith("see you")
    assert admin_audit("admin.answer_saved") == ["Hello", "Hello"]


def test_an_admin_adds_a_coder_in_the_browser_who_then_signs_in_with_the_link(
    page: Page, dashboard: str
) -> None:
    make_coder("root@desk.example", role="admin")
    page.goto(f"{dashboard}/queue")
    page.get_by_label("Email address").fill("root@desk.example")
    page.get_by_label("Password").fill("a long test passphrase")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Code").fill(unused_code_for_page(page))
    page.get_by_role("button", name="Set up and sign in").click()
    page.get_by_role("link", name="Coders").click()

    add = page.get_by_role("region", name="Add a coder")
    add.get_by_label("Email address").fill("cy@desk.example")
    add.get_by_label("Name").fill("Cy")
    add.get_by_role("button", name="Add and make a sign-in link").click()
    expect(page.get_by_role("status").first).to_contain_text("Done: added cy@desk.example.")
    link = page.locator("code.link").inner_text()

    newcomer = page.context.browser.new_context().new_page()  # type: ignore[union-attr]
    newcomer.goto(link)
    newcomer.get_by_label("New password").fill("a fine new passphrase")
    newcomer.get_by_label("The same again").fill("a fine new passphrase")
    newcomer.get_by_role("button", name="Set password and sign in").click()
    expect(newcomer.get_by_role("navigation", name="Views")).to_be_visible()
    newcomer.context.close()


def unused_code_for_page(page: Page) -> str:
    """The enrolment page's key, turned into a code as the admin's phone would."""
    key = page.locator("code.secret").inner_text()
    return unused_code("root@desk.example", key)


def test_an_admin_adds_and_changes_plans_and_accounts_each_change_audited(
    client: TestClient,
) -> None:
    make_coder("root@desk.example", role="admin")
    csrf = sign_in(client, "root@desk.example")

    bad = client.post("/admin/plans", data={"csrf": csrf, "name": "clinic", "cases": "lots"})
    assert bad.status_code == 400 and "a number or &#39;unlimited&#39;" in bad.text
    assert 'value="lots"' in bad.text and 'id="form-error"' in bad.text  # beside it, as typed
    client.post(
        "/admin/plans",
        data={"csrf": csrf, "name": "clinic", "cases": "20", "sla_hours": "8"},
    )
    client.post(
        "/admin/accounts",
        data={"csrf": csrf, "address": "@clinic.example", "plan": "clinic", "timezone": "UTC"},
    )
    zone = client.post(
        "/admin/accounts/@clinic.example",
        data={"csrf": csrf, "plan": "clinic", "timezone": "Mars/Olympus"},
    )
    assert zone.status_code == 400 and "unknown time zone" in zone.text
    moved = client.post(
        "/admin/accounts/@clinic.example",
        data={"csrf": csrf, "plan": "pro", "timezone": "America/Chicago"},
    )
    assert "Done: changed @clinic.example." in moved.text
    client.post(
        "/admin/plans/clinic",
        data={"csrf": csrf, "cases": "unlimited", "sla_hours": "8", "resolution_hours": ""},
    )

    with session_scope() as session:
        plan = quota.plan_named(session, "clinic")
        account = quota.account_named(session, "@clinic.example")
        assert plan.cases_per_period is None and plan.sla_hours == 8
        assert quota.describe_account(session, account)["plan"] == "pro"
    assert admin_audit("admin.account_changed") == [
        "@clinic.example: plan: 'clinic' → 'pro'; timezone: 'UTC' → 'America/Chicago'; "
        "remaining: 20 → 50"
    ]
    assert admin_audit("admin.plan_changed") == ["clinic: cases_per_period: 20 → None"]


def test_an_admin_sends_a_coder_away_and_brings_them_back_each_audited(
    client: TestClient,
) -> None:
    make_coder("root@desk.example", role="admin")
    make_coder("bea@desk.example")
    csrf = sign_in(client, "root@desk.example")

    bad = client.post(
        "/admin/coders/bea@desk.example/away", data={"csrf": csrf, "away_until": "Friday"}
    )
    assert bad.status_code == 400 and "back on: a date, or a date and time" in bad.text
    client.post(
        "/admin/coders/bea@desk.example/away", data={"csrf": csrf, "away_until": "2099-01-04"}
    )
    with session_scope() as session:
        bea = session.exec(select(Coder).where(Coder.email == "bea@desk.example")).one()
        assert bea.away_from is not None and bea.away_until is not None
    assert "Back now" in client.get("/admin/coders").text
    client.post("/admin/coders/bea@desk.example/back", data={"csrf": csrf})
    with session_scope() as session:
        bea = session.exec(select(Coder).where(Coder.email == "bea@desk.example")).one()
        assert bea.away_from is None
    [away] = admin_audit("admin.coder_away")
    assert away.startswith("bea@desk.example: away: False → True;") and "2099-01-04" in away
    assert admin_audit("admin.coder_back")[0].startswith("bea@desk.example: away: True → False")
