"""Connecting a mailbox with OAuth 2.0, end to end: the admin's click, a local
authorization server's consent page, the callback, and IMAP XOAUTH2 logins to a Dovecot
that asks that server about every token. Refused callbacks (forged, replayed, expired,
denied, from another sign-in), refreshes ahead of expiry, and a revoked consent. The
outgoing relay logging in as a connected mailbox, with AUTH XOAUTH2 to an SMTP sink that
asks the same server about its token."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import threading
import time
from base64 import urlsafe_b64encode
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from playwright.sync_api import Page, expect
from sqlalchemy import text, update
from sqlmodel import col, select

from consultant import casework
from consultant.config import MailboxURL, get_settings
from consultant.db import session_scope
from consultant.mail import smtp
from consultant.mail.imap import ImapConsentRevoked, poll_once, watch
from consultant.mail.oauth_providers import CALLBACK_PATH
from consultant.mailbox_settings import add_mailbox, mailbox_url
from consultant.models import (
    AuditEntry,
    Mailbox,
    Notification,
    OAuthConnect,
    OutboxEmail,
    OutboxStatus,
    utcnow,
)
from consultant.notifications import deliver
from consultant.outbox import due_outbox_ids, send_outbox_emails
from consultant.worker import drain
from tests.cases import counts
from tests.conftest import MAIL_PASSWORD, MAIL_USER, CaseMailbox, Desk, new_case_mailbox, read_email
from tests.servers.dovecot import DovecotServer
from tests.servers.oauth2 import AuthorizationServer
from tests.servers.smtp_sink import SmtpSink
from tests.web.conftest import PASSWORD, make_coder, new_case, sign_in, unused_code
from tests.web.test_browser import ARTIFACTS

CLIENT_ID, CLIENT_SECRET = "desk-test-client", "test-only-client-secret"
ADMIN = "ada@desk.example"


@pytest.fixture(scope="module")
def provider() -> Iterator[AuthorizationServer]:
    with AuthorizationServer(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, user=MAIL_USER
    ) as server:
        yield server  # type: ignore[misc]


@pytest.fixture(scope="module")
def oauth_dovecot(provider: AuthorizationServer) -> Iterator[DovecotServer]:
    base = Path(tempfile.mkdtemp(prefix="do"))  # short: Unix socket paths are limited
    with DovecotServer(
        base, users={MAIL_USER: MAIL_PASSWORD}, introspection_url=provider.url
    ) as server:
        yield server
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def microsoft(
    desk: Desk, provider: AuthorizationServer, monkeypatch: pytest.MonkeyPatch
) -> AuthorizationServer:
    """The desk registered at the local server as at Microsoft, the server as new."""
    for name, value in {
        "CLIENT_ID": CLIENT_ID,
        "CLIENT_SECRET": CLIENT_SECRET,
        "AUTHORIZE_URL": provider.authorize_url,
        "TOKEN_URL": provider.token_url,
    }.items():
        monkeypatch.setenv(f"CONSULTANT_OAUTH_MICROSOFT_{name}", value)
    get_settings.cache_clear()
    provider.redirect_uris = {f"{get_settings().web_url}{CALLBACK_PATH}"}
    provider.access_seconds, provider.refresh_expires_in, provider.rotate = 3600, None, True
    provider.token_requests.clear()
    return provider


@pytest.fixture(scope="module")
def oauth_relay(provider: AuthorizationServer) -> Iterator[SmtpSink]:
    """A relay as Microsoft 365's now is: AUTH XOAUTH2 only, each token asked about."""
    with SmtpSink(introspection_url=provider.url) as sink:
        yield sink


@pytest.fixture
def folder(oauth_dovecot: DovecotServer) -> CaseMailbox:
    return new_case_mailbox(oauth_dovecot)


@pytest.fixture
def admin(client: TestClient) -> str:
    make_coder(ADMIN, role="admin")
    return sign_in(client, ADMIN)


def oauth_mailbox(folder: CaseMailbox) -> MailboxURL:
    """A mailbox set up to be connected, as the poller gets it: the folder in Dovecot,
    its token the desk's own."""
    server = folder.server
    with session_scope() as session:
        row = add_mailbox(
            session,
            name=folder.folder.lower(),
            host=server.host,
            port=server.port,
            security="none",
            username=MAIL_USER,
            password="",
            folder=folder.folder,
            auth="oauth",
            settings=get_settings(),
        )
        return mailbox_url(row, settings=get_settings())


def row(mailbox: MailboxURL) -> Mailbox:
    with session_scope() as session:
        found = session.exec(select(Mailbox).where(Mailbox.name == mailbox.name)).one()
        session.expunge(found)
        return found


def start(client: TestClient, csrf: str, mailbox: MailboxURL) -> str:
    """The admin's click: the provider's sign-in address the desk sends them to."""
    started = client.post(
        f"/admin/mailboxes/{mailbox.name}/connect",
        data={"csrf": csrf, "provider": "microsoft"},
        follow_redirects=False,
    )
    assert started.status_code == 303, started.text
    return started.headers["location"]


def consent(sign_in_url: str, *, decision: str = "accept") -> str:
    """The person at the provider's page: the callback address it sends them back to."""
    page = httpx.get(sign_in_url)
    assert page.status_code == 200 and "Accept" in page.text
    query = {k: v[0] for k, v in parse_qs(urlsplit(sign_in_url).query).items()}
    answer = httpx.post(sign_in_url.split("?")[0], data={**query, "decision": decision})
    assert answer.status_code == 302
    return answer.headers["location"]


def come_back(client: TestClient, callback_url: str) -> httpx.Response:
    parts = urlsplit(callback_url)
    assert parts.path == CALLBACK_PATH
    return client.get(f"{parts.path}?{parts.query}", follow_redirects=False)


def connect(client: TestClient, csrf: str, mailbox: MailboxURL) -> httpx.Response:
    return come_back(client, consent(start(client, csrf, mailbox)))


def poll(mailbox: MailboxURL) -> list[int]:
    return poll_once(mailbox, settings=get_settings()).stored


def audited(action: str) -> list[str]:
    with session_scope() as session:
        query = select(AuditEntry.detail).where(AuditEntry.action == action)
        return list(session.exec(query.order_by(col(AuditEntry.id))))


def test_a_connected_mailbox_is_read_with_the_desks_own_tokens(
    client: TestClient, admin: str, microsoft: AuthorizationServer, folder: CaseMailbox
) -> None:
    mailbox = oauth_mailbox(folder)
    sign_in_url = start(client, admin, mailbox)
    asked = parse_qs(urlsplit(sign_in_url).query)
    assert asked["code_challenge_method"] == ["S256"] and asked["login_hint"] == [MAIL_USER]
    assert "offline_access" in asked["scope"][0]

    finished = come_back(client, consent(sign_in_url))

    assert finished.status_code == 303
    assert finished.headers["location"].startswith("/admin/mailboxes?done=connected")
    [exchange] = microsoft.token_requests
    digest = hashlib.sha256(exchange["code_verifier"].encode()).digest()
    assert urlsafe_b64encode(digest).rstrip(b"=").decode() == asked["code_challenge"][0]
    assert exchange["redirect_uri"] == f"{get_settings().web_url}{CALLBACK_PATH}"
    issued = microsoft.refresh_tokens()
    with session_scope() as session:
        raw = session.execute(
            text("SELECT oauth_refresh_sealed, oauth_access_sealed FROM mailboxes WHERE name = :n"),
            {"n": mailbox.name},
        ).one()
    assert raw[0] and not any(token in raw[0] for token in issued)
    assert not any(token in raw[1] for token in microsoft.valid)

    folder.append(read_email("case-home-infusion.eml"))
    assert len(poll(mailbox)) == 1
    drain()
    assert counts() == (1, 1)
    assert microsoft.presented[-1] in microsoft.valid  # the desk's token logged in
    assert microsoft.refresh_grants() == 0  # the token from the exchange is still good
    assert audited("admin.mailbox_connect_started") == [f"{mailbox.name} with microsoft"]
    assert audited("admin.mailbox_connected") == [mailbox.name]

    page = client.get(finished.headers["location"])  # the mailboxes page, its row connected
    assert 'Microsoft 365: <strong class="connection">connected</strong>' in page.text
    assert "Connect Microsoft 365 again" in page.text
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(microsoft.authorize_url))
    assert f"form-action 'self' {origin}" in page.headers["content-security-policy"]
    tested = client.post(f"/admin/mailboxes/{mailbox.name}/test", data={"csrf": admin})
    assert "Connection works" in tested.text and "log in" in tested.text


def test_forged_replayed_late_denied_and_foreign_callbacks_connect_nothing(
    desk: Desk, client: TestClient, admin: str, microsoft: AuthorizationServer, folder: CaseMailbox
) -> None:
    mailbox = oauth_mailbox(folder)

    forged = client.get(f"{CALLBACK_PATH}?state=made-up&code=anything")
    assert forged.status_code == 400 and "matches no connect started here" in forged.text
    garbage = client.get(CALLBACK_PATH, params={"state": "\x00" * 10_000, "code": "\x00"})
    assert garbage.status_code == 400

    denied = come_back(client, consent(start(client, admin, mailbox), decision="cancel"))
    assert denied.status_code == 400 and "access was not given at Microsoft 365" in denied.text

    late_url = consent(start(client, admin, mailbox))
    with session_scope() as session:  # the admin took a quarter of an hour at the provider
        pending = session.exec(select(OAuthConnect).order_by(col(OAuthConnect.id).desc())).first()
        assert pending is not None
        pending.expires_at = utcnow() - timedelta(minutes=5)
        session.add(pending)
    late = come_back(client, late_url)
    assert late.status_code == 400 and "longer than 10 minutes" in late.text

    callback_url = consent(start(client, admin, mailbox))
    with TestClient(client.app) as other:  # another admin's browser
        make_coder("bo@desk.example", role="admin")
        sign_in(other, "bo@desk.example")
        foreign = come_back(other, callback_url)
    assert foreign.status_code == 400 and "started in another sign-in" in foreign.text

    # A code is worth nothing without the verifier only the desk holds (PKCE).
    code = parse_qs(urlsplit(consent(start(client, admin, mailbox))).query)["code"][0]
    stolen = httpx.post(
        microsoft.token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": "x" * 64,
            "redirect_uri": next(iter(microsoft.redirect_uris)),
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"

    assert row(mailbox).oauth_refresh_sealed is None  # nothing of all that connected it
    assert [r["grant_type"] for r in microsoft.token_requests] == ["authorization_code"]
    good_url = consent(start(client, admin, mailbox))
    assert come_back(client, good_url).status_code == 303
    exchanges = len(microsoft.token_requests)
    replayed = come_back(client, good_url)
    assert replayed.status_code == 400 and "was used already" in replayed.text
    assert len(microsoft.token_requests) == exchanges  # the code was not sent again
    with session_scope() as session:  # two days on, the next connect clears them away
        session.execute(update(OAuthConnect).values(expires_at=utcnow() - timedelta(days=2)))
    start(client, admin, mailbox)
    with session_scope() as session:
        assert len(session.exec(select(OAuthConnect)).all()) == 1
    refusals = audited("admin.mailbox_connect_refused")
    assert len(refusals) == 6 and "used already" in refusals[-1]

    new = {
        "csrf": admin, "provider": "microsoft", "name": "billing", "username": MAIL_USER,
        "host": "outlook.office365.com", "port": "", "security": "tls", "folder": "INBOX",
    }  # fmt: skip
    unnamed = client.post("/admin/mailboxes/connect", data={**new, "name": "", "port": "99999"})
    assert unnamed.status_code == 400 and unnamed.text.count('aria-invalid="true"') == 2
    assert 'value="outlook.office365.com"' in unnamed.text  # the rest as typed
    unknown = client.post("/admin/mailboxes/connect", data={**new, "provider": "yahoo"})
    assert unknown.status_code == 400 and "unknown provider &#39;yahoo&#39;" in unknown.text
    with session_scope() as session:  # neither left a mailbox behind
        assert session.exec(select(Mailbox).where(Mailbox.name == "billing")).first() is None

    make_coder("cy@desk.example", role="coder")
    with TestClient(client.app) as coder:
        csrf = sign_in(coder, "cy@desk.example")
        assert coder.get(CALLBACK_PATH, params={"state": "x"}).status_code == 403
        refused = coder.post(
            f"/admin/mailboxes/{mailbox.name}/connect",
            data={"csrf": csrf, "provider": "microsoft"},
            follow_redirects=False,
        )
        assert refused.status_code == 403
    no_csrf = client.post(
        f"/admin/mailboxes/{mailbox.name}/connect",
        data={"csrf": "wrong", "provider": "microsoft"},
        follow_redirects=False,
    )
    assert no_csrf.status_code == 403


def test_an_access_token_near_its_end_is_replaced_before_the_login(
    client: TestClient, admin: str, microsoft: AuthorizationServer, folder: CaseMailbox
) -> None:
    mailbox = oauth_mailbox(folder)
    microsoft.refresh_expires_in = 3 * 24 * 3600  # as Google says of a testing app's token
    assert connect(client, admin, mailbox).status_code == 303
    first_token = set(microsoft.valid)
    with session_scope() as session:  # an hour later, less a minute
        held = session.exec(select(Mailbox).where(Mailbox.name == mailbox.name)).one()
        held.oauth_access_expires_at = utcnow() + timedelta(minutes=1)
        session.add(held)
    before = row(mailbox).oauth_refresh_sealed

    folder.append(read_email("case-home-infusion.eml"))
    assert len(poll(mailbox)) == 1
    assert microsoft.refresh_grants() == 1
    assert microsoft.presented[-1] not in first_token  # the login used the new one
    assert row(mailbox).oauth_refresh_sealed != before  # rotated, and the new one kept

    folder.append(read_email("case-with-pdf-attachment.eml"))
    assert len(poll(mailbox)) == 1
    assert microsoft.refresh_grants() == 1  # the new token is good for the hour

    page = client.get("/admin/mailboxes")
    assert 'Microsoft 365: <strong class="connection">token expiring</strong>' in page.text


def test_a_revoked_consent_stops_the_mailbox_and_tells_the_admins_once(
    desk: Desk,
    client: TestClient,
    admin: str,
    microsoft: AuthorizationServer,
    folder: CaseMailbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mailbox = oauth_mailbox(folder)
    make_coder("bo@desk.example", role="admin")
    assert connect(client, admin, mailbox).status_code == 303
    microsoft.revoke_consent()  # the mailbox's owner withdrew it at Microsoft
    with session_scope() as session:
        held = session.exec(select(Mailbox).where(Mailbox.name == mailbox.name)).one()
        held.oauth_access_expires_at = utcnow()
        session.add(held)
    folder.append(read_email("case-home-infusion.eml"))

    with pytest.raises(ImapConsentRevoked):
        poll(mailbox)
    stop = threading.Event()  # the poller as it runs: it says so once, then waits
    follower = threading.Thread(
        target=watch, kwargs={"mailbox": mailbox, "settings": get_settings(), "stop": stop}
    )
    follower.start()
    time.sleep(2.5)  # long enough for a follower in a loop to have tried twice more
    stop.set()
    follower.join(timeout=10)

    critical = [r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(critical) == 1 and "consent revoked at Microsoft 365" in critical[0]
    assert microsoft.refresh_grants() == 1  # asked once; then the desk knew
    assert "consent revoked at Microsoft 365" in (row(mailbox).last_error or "")
    assert counts() == (0, 0)
    with session_scope() as session:
        lines = session.exec(select(Notification)).all()
        assert sorted(line.kind for line in lines) == ["mailbox.consent_revoked"] * 2
        queued = deliver(session, now=utcnow())
        told = [session.get(OutboxEmail, email_id) for email_id in queued]
    assert sorted(email.recipient for email in told if email) == [
        "ada@desk.example",
        "bo@desk.example",
    ]
    assert all(b"a mailbox needs you" in email.raw for email in told if email)
    assert audited("mailbox.consent_revoked") == [mailbox.name]
    page = client.get("/admin/mailboxes")
    assert 'Microsoft 365: <strong class="connection">consent revoked</strong>' in page.text
    assert "Connect Microsoft 365 again" in page.text
    [shown] = json.loads(desk.consultant("status", "--json").stdout)["mailboxes"]
    assert shown["connection"] == "consent revoked" and not shown["reachable"]
    assert "consent revoked at Microsoft 365" in shown["last_error"]

    assert connect(client, admin, mailbox).status_code == 303  # "Connect … again"
    assert len(poll(mailbox)) == 1  # the email that waited meanwhile
    assert row(mailbox).last_error is None


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    answer=st.dictionaries(
        st.sampled_from(["state", "code", "error", "error_description"]),
        st.text(max_size=300) | st.sampled_from(["\x00", "%00", "access_denied", "x" * 5000]),
    )
)
def test_no_made_up_callback_connects_anything(
    client: TestClient, admin: str, microsoft: AuthorizationServer, answer: dict[str, str]
) -> None:
    """Whatever a callback carries, without a state the desk issued it is refused with a
    page (never a 500) and the token endpoint is never asked."""
    refused = client.get(CALLBACK_PATH, params=answer, follow_redirects=False)

    assert refused.status_code == 400 and "Mailbox not connected" in refused.text
    assert microsoft.token_requests == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the HTTP tests run both
def test_an_admin_connects_a_mailbox_in_the_browser(
    page: Page, dashboard: str, microsoft: AuthorizationServer, folder: CaseMailbox
) -> None:
    """One click on the mailboxes page, one at the provider's consent page, and the
    mailbox is connected: the redirects are plain, the page's policy lets them through."""
    microsoft.redirect_uris = {f"{dashboard}{CALLBACK_PATH}"}
    make_coder(ADMIN, role="admin")
    page.goto(f"{dashboard}/queue")
    page.get_by_label("Email address").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Code").fill(unused_code(ADMIN, page.locator("code.secret").inner_text()))
    page.get_by_role("button", name="Set up and sign in").click()
    page.get_by_role("link", name="Mailboxes").click()

    form = page.get_by_role("form", name="Connect Microsoft 365")
    form.get_by_label("Name").fill("support")
    form.get_by_label("Mailbox address").fill(MAIL_USER)
    form.get_by_text("Server and folder").click()
    form.get_by_label("Host").fill(folder.server.host)
    form.get_by_label("Port").fill(str(folder.server.port))
    form.get_by_label("Security").select_option("none")
    form.get_by_label("Folder").fill(folder.folder)
    form.get_by_role("button", name="Connect Microsoft 365").click()
    expect(page.get_by_role("heading", name=f"as {MAIL_USER}?")).to_be_visible()
    page.get_by_role("button", name="Accept").click()

    expect(page.get_by_role("status")).to_have_text("Done: connected support.")
    mailbox = page.get_by_role("article", name="Mailbox support")
    expect(mailbox.locator("strong.connection")).to_have_text("connected")
    expect(mailbox.get_by_role("button", name="Connect Microsoft 365 again")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "mailbox-connected.png", full_page=True)
    assert [r["grant_type"] for r in microsoft.token_requests] == ["authorization_code"]
    assert audited("admin.mailbox_connected") == ["support"]


def relay_form(csrf: str, sink: SmtpSink, **changes: str) -> dict[str, str]:
    return {"csrf": csrf, "host": sink.host, "port": str(sink.port), "security": "none",
            **changes}  # fmt: skip


def outgoing(outbox_id: int) -> OutboxEmail:
    with session_scope() as session:
        email = session.get(OutboxEmail, outbox_id)
        assert email is not None
        session.expunge(email)
        return email


def send_again_now() -> None:
    """The sender's next run, its backoff over."""
    with session_scope() as session:
        session.execute(update(OutboxEmail).values(next_attempt_at=utcnow()))
    send_outbox_emails(outbox_ids=due_outbox_ids())


def test_the_relay_logs_in_as_the_connected_mailbox_and_holds_mail_when_consent_is_revoked(
    client: TestClient,
    admin: str,
    microsoft: AuthorizationServer,
    folder: CaseMailbox,
    oauth_relay: SmtpSink,
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    oauth_relay.clear()
    mailbox = oauth_mailbox(folder)
    assert connect(client, admin, mailbox).status_code == 303
    page = client.get("/admin/mailboxes")
    assert f'<option value="{mailbox.name}">connected mailbox {mailbox.name}' in page.text

    saved = client.post(
        "/admin/relay",
        data=relay_form(admin, oauth_relay, login_mailbox=mailbox.name),
        follow_redirects=True,
    )
    assert f"logging in as the connected mailbox {mailbox.name} (XOAUTH2)" in saved.text
    [change] = audited("admin.relay_set")
    assert f"login_mailbox: None → '{mailbox.name}'" in change and "password" not in change
    tested = client.post("/admin/relay/test", data={"csrf": admin})
    assert "Connection works" in tested.text and "EHLO → log in" in tested.text

    make_coder("alice@desk.example")
    number = new_case()
    with session_scope() as session:
        casework.answer(
            session, number, by="alice@desk.example", text="Bill 99601 once.", then="solved",
            now=utcnow(),
        )  # fmt: skip
    drain()
    _, answer = oauth_relay.wait_for(2, timeout=10)
    assert b"Bill 99601 once." in answer.raw
    assert oauth_relay.logins and set(oauth_relay.logins) == {MAIL_USER}
    assert smtp_sink.messages == []  # CONSULTANT_SMTP_URL's relay is replaced

    microsoft.revoke_consent()  # the mailbox's owner withdraws the desk's access
    monkeypatch.setattr(smtp, "IDLE_SECONDS", 0.0)  # later: no logged-in connection kept
    new_case(subject="Modifier 25 with 99213")  # its acknowledgement cannot go out
    waiting = due_or_held()[-1]
    assert waiting.status == OutboxStatus.PENDING
    assert "the relay refused the access token of desk: 535" in (waiting.last_error or "")
    send_again_now()
    held = outgoing(waiting.id)
    assert held.status == OutboxStatus.PENDING and held.next_attempt_at > utcnow()
    assert "cannot log in to the relay: " in (held.last_error or "")
    assert "consent revoked at Microsoft 365" in (held.last_error or "")
    asked = microsoft.refresh_grants()
    send_again_now()  # the consent is known to be gone: the provider is not asked again
    assert microsoft.refresh_grants() == asked == 1 and len(oauth_relay.messages) == 2
    failed = client.post("/admin/relay/test", data={"csrf": admin})
    assert "failed at <strong>log in</strong>" in failed.text and "consent revoked" in failed.text

    assert connect(client, admin, mailbox).status_code == 303  # connected again
    send_again_now()
    assert outgoing(waiting.id).status == OutboxStatus.SENT
    assert len(oauth_relay.wait_for(3, timeout=10)) == 3


def due_or_held() -> list[OutboxEmail]:
    with session_scope() as session:
        emails = list(session.exec(select(OutboxEmail).order_by(col(OutboxEmail.id))))
        for email in emails:
            session.expunge(email)
        return emails


def test_the_relay_logs_in_only_as_a_mailbox_connected_with_oauth(
    desk: Desk, client: TestClient, admin: str, folder: CaseMailbox, oauth_relay: SmtpSink
) -> None:
    mailbox = oauth_mailbox(folder)
    with session_scope() as session:
        add_mailbox(
            session, name="by-password", host="127.0.0.1", port=143, security="none",
            username="desk", password="secret", settings=get_settings(),
        )  # fmt: skip
    for chosen in ("by-password", "no-such-mailbox", "\x00" * 5000, "Ü" * 70):
        refused = client.post(
            "/admin/relay",
            data=relay_form(admin, oauth_relay, port="99999", login_mailbox=chosen),
        )
        assert refused.status_code == 400
        assert "Log in as: choose a mailbox connected with Microsoft 365 or Google" in refused.text
        assert "Port: a whole number from 1 to 65535" in refused.text  # both, beside each
        assert f'value="{oauth_relay.host}"' in refused.text  # kept as typed
    page = client.get("/admin/mailboxes")
    assert '<option value="by-password">' not in page.text
    assert audited("admin.relay_set") == []

    done = desk.consultant(
        "mailboxes", "set-relay", "--host", oauth_relay.host, "--port", str(oauth_relay.port),
        "--security", "none", "--login-mailbox", mailbox.name,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"logging in as mailbox {mailbox.name}" in done.stdout
    not_yet = client.post("/admin/relay/test", data={"csrf": admin})  # never connected
    assert "failed at <strong>log in</strong>" in not_yet.text
    assert "is not connected yet" in not_yet.text
