"""A new coder's first sign-in: the admin adds them, passes on the printed one-time link,
and the coder chooses a password there and is in — once, and not after a day."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pyotp
from fastapi.testclient import TestClient

from consultant.db import session_scope
from consultant.models import utcnow
from consultant.sign_in_links import issue_link
from tests.conftest import Desk
from tests.web.conftest import SECRET, form_token, make_coder
from tests.web.test_signing_in import audit_actions

LINK = re.compile(r"https?://\S+/sign-in/link/\S+")
NEW_PASSWORD = "correct horse battery staple"


def path_of(link: str) -> str:
    return "/sign-in/link/" + link.rsplit("/", 1)[1]


def choose_password(
    client: TestClient, path: str, password: str, repeat: str | None = None
) -> httpx.Response:
    page = client.get(path)
    assert page.status_code == 200, page.text
    return client.post(
        path,
        data={"password": password, "repeat": repeat or password, "token": form_token(page.text)},
    )


def test_a_new_admin_signs_in_from_the_printed_link_and_sets_up_two_factor(
    desk: Desk, client: TestClient
) -> None:
    added = desk.consultant("coders", "add", "amy@desk.example", "--name", "Amy", "--role", "admin")
    assert added.returncode == 0, added.stderr
    [link] = LINK.findall(added.stdout)
    path = path_of(link)

    client.get(path)  # a mail scanner opening the link does not use it up
    differ = choose_password(client, path, NEW_PASSWORD, "something else entirely")
    assert differ.status_code == 400 and "The two passwords differ." in differ.text
    short = choose_password(client, path, "short")
    assert short.status_code == 400 and "at least 12 characters" in short.text
    signed = choose_password(client, path, NEW_PASSWORD)

    assert signed.url.path == "/sign-in/code"  # an admin enrols an authenticator next
    secret = SECRET.search(signed.text)
    assert secret is not None
    queue = client.post(
        "/sign-in/code",
        data={"csrf": form_token(signed.text), "code": pyotp.TOTP(secret.group(1)).now()}
        | {"secret": secret.group(1)},
    )
    assert queue.url.path == "/queue" and "Amy · admin" in queue.text
    assert client.get(path).status_code == 410  # used once, never again
    assert audit_actions("amy@desk.example")[:2] == ["sign_in_link.used", "sign_in"]

    elsewhere = TestClient(client.app)
    token = form_token(elsewhere.get("/sign-in").text)
    password_works = elsewhere.post(
        "/sign-in", data={"email": "amy@desk.example", "password": NEW_PASSWORD, "token": token}
    )
    assert password_works.url.path == "/sign-in/code"


def test_a_link_stops_working_after_a_day_or_when_a_newer_one_is_issued(
    desk: Desk, client: TestClient
) -> None:
    make_coder("bob@desk.example")
    with session_scope() as session:
        stale = issue_link(
            session, email="bob@desk.example", by="admin", now=utcnow() - timedelta(hours=25)
        )
    assert client.get(path_of(stale)).status_code == 410

    first = LINK.findall(desk.consultant("coders", "link", "bob@desk.example").stdout)[0]
    second = LINK.findall(desk.consultant("coders", "link", "bob@desk.example").stdout)[0]
    refused = client.get(path_of(first))
    assert refused.status_code == 410 and "Ask an admin for a new one" in refused.text
    assert choose_password(client, path_of(second), NEW_PASSWORD).url.path == "/queue"


def test_a_made_up_link_opens_nothing(client: TestClient) -> None:
    assert client.get("/sign-in/link/not-a-real-token").status_code == 410
    assert client.post("/sign-in/link/not-a-real-token", data={"token": "x"}).status_code == 403
