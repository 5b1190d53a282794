"""Webhooks as a receiving system sees them: signed posts for the events it asked for,
without the customer's text unless the admin said so, again later when it was down,
given up on (and said so) after a day of failures."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from consultant import casework, webhooks
from consultant.db import session_scope
from consultant.models import utcnow
from tests.cases import case_email, store
from tests.conftest import Desk
from tests.web.conftest import make_coder, new_case

SECRET = re.compile(r"^\s+(\S+)$", re.MULTILINE)


class Receiver(BaseHTTPRequestHandler):
    posts: ClassVar[list[tuple[dict[str, str], bytes]]] = []
    answers: ClassVar[list[int]] = []  # status codes to give, then 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(self.answers.pop(0) if self.answers else 200)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.posts, Receiver.answers = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def add_webhook(desk: Desk, url: str, *args: str) -> str:
    added = desk.consultant("webhooks", "add", url, *args)
    assert added.returncode == 0, added.stderr
    return SECRET.findall(added.stdout)[-1]


def checked(headers: dict[str, str], body: bytes, secret: str) -> dict:
    """The payload, after checking its signature as a receiver would."""
    fields = dict(part.split("=", 1) for part in headers["x-caseconsultant-signature"].split(","))
    signed = f"{fields['t']}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, fields["v1"])
    return json.loads(body)


def test_a_new_case_and_its_answer_reach_the_webhook_signed_without_the_customers_text(
    desk: Desk, receiver: str
) -> None:
    make_coder("alice@desk.example")
    secret = add_webhook(desk, receiver, "--event", "ticket.created", "--event", "ticket.answered")
    number = new_case(body="The patient's knee injection and a separate visit.")
    with session_scope() as session:
        casework.answer(session, number, by="alice@desk.example", text="Yes, 25.", then="pending",
                        now=utcnow())  # fmt: skip

    report = webhooks.run_once()

    assert (report.queued, report.sent) == (2, 2)
    payloads = [checked(headers, body, secret) for headers, body in Receiver.posts]
    assert [p["event"] for p in payloads] == ["ticket.created", "ticket.answered"]
    assert payloads[0]["ticket"]["reference"] == f"CC-{number}"
    assert all(b"knee injection" not in body for _, body in Receiver.posts)
    assert webhooks.run_once().sent == 0  # each event once


def test_a_webhook_with_the_body_gets_the_customers_latest_message(
    desk: Desk, receiver: str
) -> None:
    secret = add_webhook(desk, receiver, "--event", "ticket.created", "--with-body")
    new_case(body="Is 20610 bundled with 99213?")

    webhooks.run_once()

    [(headers, body)] = Receiver.posts
    assert checked(headers, body, secret)["ticket"]["last_message"].startswith("Is 20610 bundled")


def test_a_receiver_that_is_down_gets_the_event_later_and_one_that_stays_down_is_given_up(
    desk: Desk, receiver: str
) -> None:
    add_webhook(desk, receiver, "--event", "ticket.created")
    Receiver.answers = [500]
    new_case()
    now = utcnow()

    assert webhooks.run_once(now=now).failed == 1
    assert webhooks.run_once(now=now + timedelta(seconds=1)).sent == 0  # not due yet
    assert webhooks.run_once(now=now + timedelta(hours=1)).sent == 1
    assert len(Receiver.posts) == 2

    Receiver.answers = [503] * webhooks.MAX_ATTEMPTS
    new_case(sender="erin@other.example")
    later = now + timedelta(hours=1)
    for _ in range(webhooks.MAX_ATTEMPTS):
        later += timedelta(hours=5)
        webhooks.run_once(now=later)
    assert webhooks.run_once(now=later + timedelta(days=2)).failed == 0  # never again
    listed = json.loads(desk.consultant("webhooks", "list", "--json").stdout)
    assert listed[0]["deliveries"] == {"sent": 1, "failed": 1}
    assert listed[0]["last_error"] == "HTTP 503"


def test_the_embedded_desk_delivers_webhooks_when_it_runs_once(desk: Desk, receiver: str) -> None:
    add_webhook(desk, receiver, "--event", "ticket.created")
    store(case_email("dana@clinic.example"))

    ran = desk.consultant("run", "--once")

    assert ran.returncode == 0, ran.stderr
    assert [json.loads(body)["event"] for _, body in Receiver.posts] == ["ticket.created"]


def test_a_webhook_needs_a_web_address_and_known_events(desk: Desk) -> None:
    bad_url = desk.consultant("webhooks", "add", "ftp://x", "--event", "ticket.created")
    bad_event = desk.consultant("webhooks", "add", "https://x.example", "--event", "ticket.lost")
    assert bad_url.returncode == 1 and "not a web address" in bad_url.stderr
    assert bad_event.returncode == 1 and "ticket.lost" in bad_event.stderr
