"""The whole desk as its people meet it: ``consultant run`` (gateway, worker, dashboard in
one process), a customer's email over SMTP, a coder in Chromium — and two coders
answering the same case at once."""

from __future__ import annotations

import os
import smtplib
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlmodel import select

from consultant.db import session_scope
from consultant.models import Ticket, utcnow
from consultant.saved_answers import add_saved_answer
from tests.conftest import DESK_ADDRESS, Desk
from tests.servers.ports import free_port
from tests.servers.smtp_sink import SmtpSink
from tests.test_embedded import consultant_run
from tests.web.conftest import make_coder, new_case
from tests.web.test_browser import ARTIFACTS, sign_in

GREETING = "Hi {{ first_name }},\n\nOn {{ code_list }}: {{ codes }}\n\n{{ coder_name }}"


@pytest.fixture
def running_desk(desk: Desk, tmp_path: Path) -> Iterator[dict[str, str]]:
    """``consultant run`` on the test's database, sending to the SMTP sink: the addresses
    of its gateway and its dashboard."""
    addresses = {"gateway": f"127.0.0.1:{free_port()}", "web": f"127.0.0.1:{free_port()}"}
    env = {
        **desk.env,
        "CONSULTANT_GATEWAY": addresses["gateway"],
        "CONSULTANT_WEB": addresses["web"],
    }
    with consultant_run({**os.environ, **env}, tmp_path):
        yield addresses


def customer_email(*, subject: str, body: str, message_id: str, reply_to: str = "") -> bytes:
    message = EmailMessage()
    message["From"] = "Dana Whitfield <dana@clinic.example>"
    message["To"] = DESK_ADDRESS
    message["Subject"] = subject
    message["Message-ID"] = message_id
    if reply_to:
        message["In-Reply-To"] = message["References"] = reply_to
    message.set_content(body)
    return message.as_bytes()


def send_to_gateway(gateway: str, raw: bytes) -> None:
    host, port = gateway.split(":")
    with smtplib.SMTP(host, int(port), timeout=10) as client:
        client.sendmail("dana@clinic.example", [DESK_ADDRESS], raw)


def test_an_email_reaches_a_coders_live_queue_is_answered_and_the_reply_reopens_it(
    running_desk: dict[str, str], page: Page, smtp_sink: SmtpSink
) -> None:
    make_coder("alice@desk.example")
    with session_scope() as session:
        add_saved_answer(session, title="Infusion hours", body=GREETING, by="test", now=utcnow())
    dashboard = f"http://{running_desk['web']}"
    sign_in(page, dashboard, "alice@desk.example")
    page.evaluate("window.notReloaded = true")

    first = "<infusion-question@clinic.example>"
    send_to_gateway(
        running_desk["gateway"],
        customer_email(
            subject="Home infusion 3.5 hours: 99601 and 99602?",
            body="The nurse stayed 3.5 hours. How many units of 99602?",
            message_id=first,
        ),
    )
    row = page.get_by_role("row").filter(has_text="Home infusion 3.5 hours")
    expect(row).to_contain_text("99602", timeout=20_000)  # looked up, routed, shown live
    assert page.evaluate("window.notReloaded") is True

    row.get_by_role("link", name="CC-1").click()
    page.get_by_role("button", name="Claim").click()
    expect(page.get_by_role("status")).to_have_text("Done: claimed.")
    page.get_by_label("Saved answer").select_option(label="Infusion hours")
    page.get_by_role("button", name="Insert").click()
    expect(page.get_by_label("Your answer to")).to_contain_text("Hi Dana,")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Done: sent.")

    answer = next(
        m for m in smtp_sink.wait_for(2, timeout=20) if b"Hi Dana," in m.raw
    )  # after the acknowledgement, sent by the desk's own worker
    parsed = message_from_bytes(answer.raw, policy=policy.default)
    assert first in str(parsed["References"]) and "[#CC-1]" in str(parsed["Subject"])

    page.goto(f"{dashboard}/queue")
    row = page.get_by_role("row").filter(has_text="Home infusion 3.5 hours")
    expect(row).to_contain_text("pending")
    page.evaluate("window.notReloaded = true")
    send_to_gateway(
        running_desk["gateway"],
        customer_email(
            subject=f"Re: {parsed['Subject']}",
            body="Thanks. And if the nurse stayed 5 hours?",
            message_id="<infusion-follow-up@clinic.example>",
            reply_to=str(parsed["Message-ID"]),
        ),
    )
    expect(row).to_contain_text("open", timeout=20_000)  # reopened, shown live
    assert page.evaluate("window.notReloaded") is True
    with session_scope() as session:
        assert [t.status for t in session.exec(select(Ticket))] == ["open"]


def test_two_coders_answer_one_case_and_the_second_is_stopped_and_shown_the_first_answer(
    browser: Browser, dashboard: str
) -> None:
    make_coder("alice@desk.example")
    make_coder("bob@desk.example")
    number = new_case(subject="Modifier 25 with 99214 and 20610?")
    pages = []
    for who in ("alice", "bob"):
        page = browser.new_context().new_page()
        sign_in(page, dashboard, f"{who}@desk.example")
        page.goto(f"{dashboard}/tickets/{number}")
        pages.append(page)
    alice, bob = pages

    alice.get_by_label("Your answer to").fill("Yes: 25 on 99214 when the E/M is separate.")
    alice.get_by_role("button", name="Send", exact=True).click()
    expect(alice.get_by_role("status")).to_have_text("Done: sent.")
    bob.get_by_label("Your answer to").fill("No, bundle it.")
    bob.get_by_role("button", name="Send", exact=True).click()

    expect(bob.get_by_role("alert").filter(has_text="since you opened the case")).to_contain_text(
        "(alice@desk.example)"
    )
    expect(bob.get_by_role("alert").filter(has_text="Not sent")).to_be_visible()
    expect(bob.locator("article.message.new")).to_contain_text("25 on 99214 when the E/M")
    expect(bob.get_by_label("Your answer to")).to_have_value("No, bundle it.")
    ARTIFACTS.mkdir(exist_ok=True)
    bob.screenshot(path=ARTIFACTS / "collision.png", full_page=True)
    for page in pages:
        page.context.close()
