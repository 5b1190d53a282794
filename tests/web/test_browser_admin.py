"""The admin's pages in Debian's Chromium, each a whole path as an admin walks it: make
something, change it, be refused beside the field, and find the change on /audit.
(Adding a coder is walked in test_admin_pages.py; the rest is tested over HTTP.)"""

from __future__ import annotations

from playwright.sync_api import Page, expect

from consultant.worker import drain
from tests.cases import store
from tests.web.conftest import PASSWORD, make_coder, unused_code

ADMIN = "root@desk.example"


def sign_in_as_admin(page: Page, dashboard: str) -> None:
    """Sign in, setting up the authenticator as an admin does the first time."""
    make_coder(ADMIN, role="admin")
    page.goto(f"{dashboard}/queue")
    page.get_by_label("Email address").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Code").fill(unused_code(ADMIN, page.locator("code.secret").inner_text()))
    page.get_by_role("button", name="Set up and sign in").click()
    expect(page.get_by_role("navigation", name="Views")).to_be_visible()


def test_an_admin_adds_and_changes_a_plan_is_refused_a_bad_one_and_finds_it_audited(
    page: Page, dashboard: str
) -> None:
    sign_in_as_admin(page, dashboard)
    page.get_by_role("link", name="Accounts").click()

    add = page.get_by_role("form", name="Add a plan")
    add.get_by_label("New plan").fill("clinic")
    add.get_by_label("Cases a month").fill("lots")
    add.get_by_role("button", name="Add plan").click()
    refused = page.get_by_role("form", name="Add a plan")
    expect(refused.get_by_role("alert")).to_contain_text("a number or 'unlimited'")
    expect(refused.get_by_label("New plan")).to_have_value("clinic")  # as typed
    refused.get_by_label("Cases a month").fill("20")
    refused.get_by_role("button", name="Add plan").click()
    expect(page.get_by_role("status")).to_contain_text("Done: added plan clinic.")

    plan = page.get_by_role("form", name="Plan clinic")
    plan.get_by_label("Cases a month for clinic").fill("30")
    plan.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Done: changed clinic.")

    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("row").filter(has_text="admin.plan_changed")).to_contain_text(
        "cases_per_period: 20 → 30"
    )
    expect(page.get_by_role("row").filter(has_text="admin.plan_added")).to_contain_text(ADMIN)


def test_an_admin_reads_a_set_aside_email_is_refused_an_empty_reason_and_deletes_it(
    page: Page, dashboard: str
) -> None:
    inbound_id = store(b"<img src=//tracker.example/p.gif> <b>not an email</b>\r\n")
    drain()
    sign_in_as_admin(page, dashboard)
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))

    page.get_by_role("link", name="Quarantine").click()
    page.get_by_role("link", name=f"#{inbound_id}").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("failed")
    expect(page.get_by_text("cannot be read as an email")).to_be_visible()
    expect(page.get_by_label("Source")).to_contain_text("<b>not an email</b>")  # as text

    form = page.get_by_role("form", name="Delete this email")
    form.get_by_role("button", name="Delete (the bytes are kept)").click()
    reason = page.get_by_label("Reason for deleting")
    expect(reason).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#reason-error")).to_contain_text("say why the email is deleted")
    reason.fill("a scanner's probe, not a case")
    page.get_by_role("button", name="Delete (the bytes are kept)").click()
    expect(page.get_by_role("status")).to_contain_text(f"email {inbound_id} deleted")

    page.get_by_role("link", name="Audit log").click()
    row = page.get_by_role("row").filter(has_text="admin.quarantine_deleted")
    expect(row).to_contain_text("status: 'failed' → 'deleted'")
    expect(page.get_by_role("row").filter(has_text="admin.quarantine_email_viewed")).to_have_count(
        2  # the look, and the page again with the refusal
    )
    assert all(url.startswith(dashboard) for url in fetched), fetched
