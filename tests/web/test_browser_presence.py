"""In Chromium: two coders on one case see each other come, type and go; and the
keyboard shortcuts move through the queue and act on a case, never while a field is
being typed in."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlmodel import select

from consultant import presence
from consultant.db import session_scope
from consultant.models import Coder, WebSession, utcnow
from tests.web.conftest import make_coder, new_case
from tests.web.test_browser import ARTIFACTS, sign_in

SELECTED = re.compile(r"\bselected\b")


def leave_the_field(page: Page) -> None:
    page.evaluate("document.activeElement.blur()")


@pytest.fixture
def quick_presence(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same rules on a shorter clock: a heartbeat a second, stale after five."""
    monkeypatch.setattr(presence, "BEAT_SECONDS", 1)
    monkeypatch.setattr(presence, "STALE_SECONDS", 5)
    monkeypatch.setattr(presence, "TYPING_SECONDS", 3)


def test_a_coder_sees_another_open_the_case_type_an_answer_and_leave(
    browser: Browser, dashboard: str, quick_presence: None
) -> None:
    make_coder("alice@desk.example")
    make_coder("bob@desk.example")
    number = new_case(subject="Home infusion 3.5 hours: 99601 and 99602?")
    alice_context, bob_context = browser.new_context(), browser.new_context()
    alice, bob = alice_context.new_page(), bob_context.new_page()
    sign_in(alice, dashboard, "alice@desk.example")
    sign_in(bob, dashboard, "bob@desk.example")
    bob.goto(f"{dashboard}/tickets/{number}")
    here = bob.get_by_role("region", name="Who else is here")
    expect(here).to_have_text("Nobody else has this case open.")

    alice.goto(f"{dashboard}/tickets/{number}")
    expect(here).to_have_text("Also on this case: Alice (viewing)", timeout=10_000)
    alice.get_by_label("Your answer to").press_sequentially("Report 99601 once", delay=50)
    expect(here).to_have_text("Also on this case: Alice (typing an answer)", timeout=10_000)
    ARTIFACTS.mkdir(exist_ok=True)
    bob.screenshot(path=ARTIFACTS / "case-presence.png", full_page=True)
    expect(here).to_have_text("Also on this case: Alice (viewing)", timeout=10_000)

    alice_context.close()
    expect(here).to_have_text("Nobody else has this case open.", timeout=15_000)

    with session_scope() as session:  # Bob has left his screen for 16 minutes
        row = session.exec(
            select(WebSession).join(Coder).where(Coder.email == "bob@desk.example")
        ).one()
        row.last_seen_at -= timedelta(minutes=16)
        session.add(row)
    expect(bob.get_by_label("Password")).to_be_visible(timeout=10_000)  # the case is gone
    bob_context.close()


def last_seen(email: str) -> timedelta:
    """How long ago the coder's session last counted as them at work."""
    with session_scope() as session:
        row = session.exec(select(WebSession).join(Coder).where(Coder.email == email)).one()
        return utcnow() - row.last_seen_at


def make_idle(email: str, minutes: int) -> None:
    with session_scope() as session:
        row = session.exec(select(WebSession).join(Coder).where(Coder.email == email)).one()
        row.last_seen_at = utcnow() - timedelta(minutes=minutes)
        session.add(row)


def test_typing_a_long_answer_keeps_the_coder_signed_in_and_an_open_page_does_not(
    page: Page, dashboard: str, quick_presence: None
) -> None:
    make_coder("alice@desk.example")
    number = new_case()
    sign_in(page, dashboard, "alice@desk.example")
    page.goto(f"{dashboard}/tickets/{number}")

    make_idle("alice@desk.example", minutes=14)
    page.wait_for_timeout(2500)  # heartbeats of a page merely open
    assert last_seen("alice@desk.example") > timedelta(minutes=13)
    page.get_by_label("Your answer to").press_sequentially("Report 99601 once", delay=100)

    assert last_seen("alice@desk.example") < timedelta(minutes=1)  # at work, not idle
    expect(page.get_by_label("Your answer to")).to_have_value("Report 99601 once")


def test_keyboard_shortcuts_move_through_the_queue_and_act_on_the_case(
    page: Page, dashboard: str
) -> None:
    make_coder("alice@desk.example")
    new_case(subject="First question on 99213")
    new_case(sender="erin@other.example", subject="Second question on 20610")
    sign_in(page, dashboard, "alice@desk.example")
    rows = page.locator("table.queue tbody tr")
    expect(rows).to_have_count(2)
    page.wait_for_load_state()

    page.keyboard.press("?")
    help_box = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(help_box).to_contain_text("next case")
    page.keyboard.press("Escape")
    expect(help_box).to_be_hidden()
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    expect(rows.nth(0)).to_have_class(SELECTED)
    chosen = rows.nth(0).get_by_role("link").first.get_attribute("href")
    page.keyboard.press("/")
    expect(page.get_by_label("Search cases")).to_be_focused()
    page.keyboard.type("j")  # typed into the search box, not a shortcut
    expect(rows.nth(0)).to_have_class(SELECTED)
    leave_the_field(page)
    page.keyboard.press("j")
    page.keyboard.press("k")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{dashboard}{chosen}")
    page.wait_for_load_state()  # its scripts are there, as for a person who just arrived

    page.keyboard.press("r")
    answer = page.get_by_label("Your answer to")
    expect(answer).to_be_focused()
    page.keyboard.type("c")  # a letter of the answer, not a claim
    expect(answer).to_have_value("c")
    leave_the_field(page)
    page.keyboard.press("n")
    expect(page.get_by_label("Add a note for coders")).to_be_focused()
    leave_the_field(page)
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_contain_text("claim this case")
    page.keyboard.press("Escape")
    page.keyboard.press("c")
    expect(page.get_by_role("status")).to_have_text("Done: claimed.")
