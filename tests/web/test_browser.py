"""The dashboard in Debian's Chromium, driven by Playwright: what a coder does with a
mouse and a keyboard, and what a hostile email cannot do to their browser.

Screenshots of the pages go to ``tests/web/artifacts/`` (not committed) for a reviewer.
"""

from __future__ import annotations

import threading
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

from playwright.sync_api import Page, expect

from consultant.worker import drain
from tests.cases import store
from tests.conftest import DESK_ADDRESS
from tests.servers.smtp_sink import SmtpSink
from tests.web.conftest import PASSWORD, make_coder, new_case

ARTIFACTS = Path(__file__).parent / "artifacts"


def sign_in(page: Page, dashboard: str, email: str) -> None:
    page.goto(f"{dashboard}/queue")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Views")).to_be_visible()


def test_a_coder_signs_in_claims_a_case_and_answers_it(
    page: Page, dashboard: str, smtp_sink: SmtpSink
) -> None:
    make_coder("alice@desk.example")
    number = new_case(subject="Home infusion 3.5 hours: 99601 and 99602?")
    sign_in(page, dashboard, "alice@desk.example")

    row = page.get_by_role("row").filter(has_text=f"CC-{number}")
    expect(row).to_contain_text("99601")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "queue.png", full_page=True)
    row.get_by_role("link", name=f"CC-{number}").click()
    page.get_by_role("button", name="Claim").click()
    expect(page.get_by_role("status")).to_have_text("Done: claimed.")
    page.get_by_label("Your answer to").fill("Report 99601 once and 99602 for the extra time.")
    page.screenshot(path=ARTIFACTS / "case.png", full_page=True)
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Done: sent.")
    drain()

    answered = [m for m in smtp_sink.wait_for(2, timeout=10) if b"99602 for the extra" in m.raw]
    assert len(answered) == 1 and f"[#CC-{number}]".encode() in answered[0].raw


class _CountingHandler(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def hostile_email(outside: str) -> bytes:
    message = EmailMessage()
    message["From"] = "mallory@clinic.example"
    message["To"] = DESK_ADDRESS
    message["Subject"] = "Question on 99213"
    message["Message-ID"] = "<hostile@clinic.example>"
    message.set_content("Is 99213 right here?")
    message.add_alternative(
        f"""<html><head><meta http-equiv="refresh" content="0;url={outside}/refresh">
<link rel="stylesheet" href="{outside}/css"><style>body{{background:url({outside}/bg)}}</style>
</head><body onload="parent.document.title='owned'">
<p>Is 99213 right here?</p>
<script>parent.document.title='owned'; fetch('{outside}/fetch')</script>
<img src="{outside}/pixel.png" onerror="parent.document.title='owned'">
<svg><script>parent.document.title='owned'</script><image href="{outside}/svg"/></svg>
<a href="javascript:parent.document.title='owned'">click</a>
<form action="{outside}/form"><input name="q"></form>
<iframe src="{outside}/frame"></iframe>
</body></html>""",
        subtype="html",
    )
    return message.as_bytes()


def test_a_hostile_emails_html_runs_nothing_and_fetches_nothing(page: Page, dashboard: str) -> None:
    outside = ThreadingHTTPServer(("127.0.0.1", 0), _CountingHandler)
    threading.Thread(target=outside.serve_forever, daemon=True).start()
    _CountingHandler.hits = []
    try:
        make_coder("alice@desk.example")
        store(hostile_email(f"http://127.0.0.1:{outside.server_port}"))
        drain()
        sign_in(page, dashboard, "alice@desk.example")
        page.goto(f"{dashboard}/tickets/1")
        page.get_by_text("Formatted version").click()
        frame = page.frame_locator("iframe")
        expect(frame.get_by_text("Is 99213 right here?")).to_be_visible()
        frame.get_by_text("click").click(timeout=2000)
        page.wait_for_timeout(1000)

        assert page.title().startswith("CC-1")  # no script changed it
        assert _CountingHandler.hits == []  # and nothing was fetched from outside
    finally:
        outside.shutdown()


def test_the_queue_shows_a_new_case_without_a_reload(page: Page, dashboard: str) -> None:
    make_coder("alice@desk.example")
    new_case(subject="First question on 99213")
    sign_in(page, dashboard, "alice@desk.example")
    page.goto(f"{dashboard}/queue")
    expect(page.get_by_role("row").filter(has_text="First question")).to_be_visible()
    page.evaluate("window.notReloaded = true")

    new_case(sender="erin@other.example", subject="Second question on 20610")

    expect(page.get_by_role("row").filter(has_text="Second question")).to_be_visible(timeout=15_000)
    assert page.evaluate("window.notReloaded") is True  # swapped in, not reloaded
