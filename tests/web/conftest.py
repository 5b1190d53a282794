"""A signed-in dashboard over the test's desk: the app in process (FastAPI's test
client, a real HTTP exchange without a socket) and coders with passwords; and the
dashboard served by uvicorn for Debian's Chromium, driven by Playwright."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

import pyotp
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, sync_playwright
from sqlmodel import select

from consultant.coders import add_coder, set_password
from consultant.config import get_settings
from consultant.db import session_scope
from consultant.models import Coder, Ticket, utcnow
from consultant.web.app import create_app
from consultant.web.server import WebServer
from consultant.worker import drain
from tests.cases import case_email, store
from tests.conftest import Desk
from tests.servers.ports import free_port

PASSWORD = "a long test passphrase"
TOKEN = re.compile(r'name="(?:token|csrf)" value="([^"]+)"')
SECRET = re.compile(r'name="secret" value="([^"]+)"')


def make_coder(email: str, *, role: str = "coder", specialties: tuple[str, ...] = ()) -> None:
    with session_scope() as session:
        add_coder(
            session,
            email=email,
            name=email.split("@")[0].title(),
            actor="test",
            now=utcnow(),
            role=role,
            specialties=specialties or ("generalist",),
        )
        set_password(session, email=email, password=PASSWORD, actor="test")


def form_token(page: str) -> str:
    found = TOKEN.search(page)
    assert found, "no form token on the page"
    return found.group(1)


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> str:
    """Sign in as a browser does (with the TOTP step where the role asks for it, setting
    up the authenticator the first time); the CSRF token of the session's forms."""
    page = client.get("/sign-in")
    response = client.post(
        "/sign-in",
        data={"email": email, "password": password, "token": form_token(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    queue = client.get("/queue")
    if queue.url.path == "/sign-in/code":
        secret = SECRET.search(queue.text)
        key = secret.group(1) if secret else secret_of(email)
        queue = client.post(
            "/sign-in/code",
            data={"csrf": form_token(queue.text), "code": unused_code(email, key)}
            | ({"secret": key} if secret else {}),
        )
    return form_token(queue.text)


def unused_code(email: str, secret: str) -> str:
    """A code the desk has not accepted yet (each works once), as a person gets by
    waiting for the next one: now's, or else the next step's, which the desk accepts
    for a phone whose clock runs a little ahead."""
    totp = pyotp.TOTP(secret)
    now = totp.timecode(utcnow())
    with session_scope() as session:
        last = session.exec(select(Coder.totp_last_step).where(Coder.email == email)).one()
    return totp.generate_otp(now if last is None or last < now else now + 1)


def secret_of(email: str) -> str:
    with session_scope() as session:
        secret = session.exec(select(Coder.totp_secret).where(Coder.email == email)).one()
    assert secret is not None
    return secret


def new_case(sender: str = "dana@clinic.example", **fields: str) -> int:
    """A case as a customer's email makes it: stored, processed, looked up, routed."""
    store(case_email(sender, **fields))
    drain()
    with session_scope() as session:
        return max(session.exec(select(Ticket.id)).all())  # type: ignore[type-var, return-value]


@pytest.fixture
def client(desk: Desk) -> Iterator[TestClient]:
    with TestClient(create_app()) as test_client:
        yield test_client


# --- the dashboard in a browser (Debian's Chromium, driven by Playwright) -------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is missing: scripts/test-services installs it")
    with sync_playwright() as playwright:
        # As root Chromium needs --no-sandbox; pages are still isolated from each other.
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def dashboard(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The dashboard served by uvicorn on a free port, as ``consultant run`` serves it."""
    address = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("CONSULTANT_WEB", address)
    get_settings.cache_clear()
    server = WebServer(get_settings())
    server.start()
    yield f"http://{address}"
    server.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    yield context.new_page()
    context.close()
