"""XOAUTH2 logins against a Dovecot that asks a local introspection endpoint (RFC 7662)
whether a token is valid, as Gmail and Microsoft 365 ask their authorization servers."""

from __future__ import annotations

import base64
import json
import logging
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

from consultant.config import TokenSource, get_settings, parse_mailbox_url
from consultant.mail.imap import ImapAuthError, ImapError, poll_once, watch
from consultant.worker import drain
from tests.cases import counts, last_error
from tests.conftest import (
    MAIL_PASSWORD,
    MAIL_USER,
    CaseMailbox,
    Desk,
    new_case_mailbox,
    read_email,
)
from tests.servers.dovecot import DovecotServer
from tests.servers.oauth2 import IntrospectionServer

CASES = ("case-home-infusion.eml", "case-with-pdf-attachment.eml")


@pytest.fixture(scope="module")
def introspection() -> Iterator[IntrospectionServer]:
    with IntrospectionServer() as server:
        yield server


@pytest.fixture(scope="module")
def oauth_dovecot(introspection: IntrospectionServer) -> Iterator[DovecotServer]:
    """A Dovecot of its own that also takes XOAUTH2, checking tokens with ``introspection``."""
    base = Path(tempfile.mkdtemp(prefix="do"))  # short: Unix socket paths are limited
    with DovecotServer(
        base, users={MAIL_USER: MAIL_PASSWORD}, introspection_url=introspection.url
    ) as server:
        yield server
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def oauth_mailbox(oauth_dovecot: DovecotServer) -> CaseMailbox:
    return new_case_mailbox(oauth_dovecot)


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    return tmp_path / "access-token"


def xoauth2_url(mailbox: CaseMailbox, **options: str) -> str:
    """The mailbox's URL with no password: ``auth=xoauth2`` and the token's source."""
    server = mailbox.server
    query = urlencode({"auth": "xoauth2", **options}, quote_via=quote)
    return f"imap://{MAIL_USER}@{server.host}:{server.port}/{mailbox.folder}?{query}"


def new_token(introspection: IntrospectionServer, *, valid: bool = True) -> str:
    token = f"ya29.test-{time.monotonic_ns()}"
    if valid:
        introspection.grant(token, MAIL_USER)
    return token


def poll(url: str) -> list[int]:
    return poll_once(parse_mailbox_url(url), settings=get_settings()).stored


def test_a_token_from_a_file_logs_in_and_emails_become_tickets(
    desk: Desk, oauth_mailbox: CaseMailbox, introspection: IntrospectionServer, token_file: Path
) -> None:
    token = new_token(introspection)
    token_file.write_text(f"{token}\n")
    oauth_mailbox.append(*(read_email(name) for name in CASES))

    stored = poll(xoauth2_url(oauth_mailbox, token_file=str(token_file)))
    drain()

    assert (len(stored), counts()) == (2, (2, 2))
    assert introspection.presented[-1] == token


def test_a_token_rotated_in_its_file_is_used_from_the_next_connect(
    desk: Desk, oauth_mailbox: CaseMailbox, introspection: IntrospectionServer, token_file: Path
) -> None:
    url = xoauth2_url(oauth_mailbox, token_file=str(token_file))
    old = new_token(introspection)
    token_file.write_text(old)
    oauth_mailbox.append(read_email(CASES[0]))
    assert len(poll(url)) == 1

    new = new_token(introspection)
    introspection.revoke(old)  # as the authorization server does when the hour is up
    token_file.write_text(new)
    oauth_mailbox.append(read_email(CASES[1]))

    assert len(poll(url)) == 1
    assert introspection.presented[-1] == new


def test_a_token_from_a_command_logs_in(
    desk: Desk, oauth_mailbox: CaseMailbox, introspection: IntrospectionServer
) -> None:
    token = new_token(introspection)
    command = f"{sys.executable} -c 'print(\"{token}\")'"
    oauth_mailbox.append(read_email(CASES[0]))

    stored = poll(xoauth2_url(oauth_mailbox, token_command=command))

    assert len(stored) == 1
    assert introspection.presented[-1] == token


def test_a_refused_token_is_a_refused_login_that_status_shows(
    desk: Desk, oauth_mailbox: CaseMailbox, introspection: IntrospectionServer, token_file: Path
) -> None:
    token_file.write_text(new_token(introspection, valid=False))
    url = xoauth2_url(oauth_mailbox, token_file=str(token_file))
    oauth_mailbox.append(read_email(CASES[0]))

    with pytest.raises(ImapAuthError):
        poll(url)
    assert "login refused" in last_error()

    desk.env["CONSULTANT_IMAP_URL"] = url
    [shown] = json.loads(desk.consultant("status", "--json").stdout)["mailboxes"]
    assert shown["reachable"] is False and "login refused" in shown["last_error"]
    assert counts() == (0, 0)


def test_a_refused_token_is_logged_as_critical_and_never_logged_itself(
    desk: Desk,
    oauth_mailbox: CaseMailbox,
    introspection: IntrospectionServer,
    token_file: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = new_token(introspection, valid=False)
    token_file.write_text(token)
    target = parse_mailbox_url(xoauth2_url(oauth_mailbox, token_file=str(token_file)))
    caplog.set_level(logging.DEBUG)  # imapclient logs the protocol at DEBUG
    stop = threading.Event()
    poller = threading.Thread(
        target=watch, kwargs={"mailbox": target, "settings": get_settings(), "stop": stop}
    )

    poller.start()
    try:
        deadline = time.monotonic() + 10
        while not any(r.levelno == logging.CRITICAL for r in caplog.records):
            assert time.monotonic() < deadline, "no critical log line for the refused token"
            time.sleep(0.05)
    finally:
        stop.set()
        poller.join(timeout=10)

    [critical] = [r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL]
    assert target.name in critical and "login refused" in critical
    sasl = base64.b64encode(f"user={MAIL_USER}\1auth=Bearer {token}\1\1".encode()).decode()
    assert not [m for m in caplog.messages if token in m or sasl in m]


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("sh -c 'echo refresh token expired >&2; exit 3'", "failed with exit status 3: refresh"),
        ("true", "gave no token"),
        ("echo '{\"access_token\": 1}'", "not a bearer token"),
        ("sleep 10", "did not finish in 0.5 s"),
        ("/nonexistent/get-token", "cannot run the token command"),
    ],
)
def test_a_failing_token_command_is_a_clear_error_and_no_login(
    desk: Desk,
    oauth_mailbox: CaseMailbox,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    message: str,
) -> None:
    monkeypatch.setenv("CONSULTANT_IMAP_TOKEN_COMMAND_TIMEOUT", "0.5")
    get_settings.cache_clear()
    url = xoauth2_url(oauth_mailbox, token_command=command)
    since = oauth_mailbox.server.log_offset()

    with pytest.raises(ImapError) as raised:
        poll(url)

    assert not isinstance(raised.value, ImapAuthError)  # the token source, not the server
    assert parse_mailbox_url(url).name in str(raised.value)
    assert message in last_error()
    oauth_mailbox.append(read_email(CASES[0]))  # a login of the harness's, to sync the log
    logins = oauth_mailbox.server.wait_for_log("Login:", since=since).count("Login:")
    assert logins == 1  # the harness's own: the poller never connected


def test_a_missing_token_file_is_a_clear_error(
    desk: Desk, oauth_mailbox: CaseMailbox, token_file: Path
) -> None:
    with pytest.raises(ImapError):
        poll(xoauth2_url(oauth_mailbox, token_file=str(token_file)))

    assert f"cannot read the token file {token_file}" in last_error()


def test_an_xoauth2_url_names_its_token_source() -> None:
    by_file = parse_mailbox_url(
        "imaps://desk%40example.com@imap.gmail.com/INBOX?auth=xoauth2&token_file=/run/desk%20token"
    )
    by_command = parse_mailbox_url(
        "imaps://desk@outlook.office365.com/INBOX"
        "?auth=xoauth2&token_command=get-token%20--user%20'desk%40example.com'"
    )

    assert (by_file.username, by_file.password) == ("desk@example.com", "")
    assert by_file.xoauth2 == TokenSource(file=Path("/run/desk token"))
    assert by_command.xoauth2 == TokenSource(command=("get-token", "--user", "desk@example.com"))
    assert parse_mailbox_url("imaps://desk:pw@mail.example/INBOX").xoauth2 is None


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("auth=xoauth2", "needs one of token_file or token_command"),
        ("auth=xoauth2&token_file=/t&token_command=t", "needs one of token_file or token_command"),
        ("token_file=/t", "need auth=xoauth2"),
        ("auth=kerberos", "unknown auth 'kerberos'"),
        ("auth=xoauth2&token_command=get-token%20'unclosed", "No closing quotation"),
        ("auth=xoauth2&token=abc", "unknown option 'token'"),
    ],
)
def test_a_bad_xoauth2_url_is_a_configuration_error(query: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_mailbox_url(f"imaps://desk@mail.example/INBOX?{query}")


def test_an_xoauth2_url_with_a_password_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="takes no password") as raised:
        parse_mailbox_url("imaps://desk:hunter2@mail.example/INBOX?auth=xoauth2&token_file=/t")
    assert "hunter2" not in str(raised.value)
