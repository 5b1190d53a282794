"""The poller over verified TLS, against a Dovecot with a certificate from a throw-away CA.

The CA is trusted the way an administrator trusts a private one: ``SSL_CERT_FILE``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from consultant.config import ConfigError, get_settings, load_settings, parse_mailbox_url
from consultant.mail.imap import ImapAuthError, ImapError, poll_once
from consultant.mail.tls import tls_context
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
from tests.servers.tls import SERVER_NAME, Certificates, make_certificates

CASES = ("case-home-infusion.eml", "case-with-pdf-attachment.eml")
NO_AUTH_ATTEMPT = "no auth attempts"  # what Dovecot logs for a connection that sent none


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def tls_dovecot(certificates: Certificates) -> Iterator[DovecotServer]:
    """A Dovecot of its own that offers STARTTLS and implicit TLS."""
    base = Path(tempfile.mkdtemp(prefix="dt"))  # short: Unix socket paths are limited
    with DovecotServer(base, users={MAIL_USER: MAIL_PASSWORD}, tls=certificates) as server:
        yield server
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def tls_mailbox(tls_dovecot: DovecotServer) -> CaseMailbox:
    return new_case_mailbox(tls_dovecot)


@pytest.fixture
def trusted_ca(certificates: Certificates, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The test CA trusted through ``SSL_CERT_FILE``, read when the context is built."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates.ca))
    tls_context.cache_clear()
    yield
    tls_context.cache_clear()


@pytest.fixture
def system_cas_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    tls_context.cache_clear()
    yield
    tls_context.cache_clear()


def tls_url(mailbox: CaseMailbox, how: str, *, host: str = SERVER_NAME) -> str:
    """The mailbox's URL over implicit TLS (``imaps``) or STARTTLS (``starttls``)."""
    server, where = mailbox.server, f"{MAIL_USER}:{MAIL_PASSWORD}@{host}"
    if how == "imaps":
        return f"imaps://{where}:{server.imaps_port}/{mailbox.folder}"
    return f"imap://{where}:{server.port}/{mailbox.folder}?starttls=true"


@pytest.mark.parametrize("how", ["imaps", "starttls"])
@pytest.mark.usefixtures("trusted_ca")
def test_emails_become_tickets_over_verified_tls(
    desk: Desk, tls_mailbox: CaseMailbox, how: str
) -> None:
    tls_mailbox.append(*(read_email(name) for name in CASES))
    since = tls_mailbox.server.log_offset()

    report = poll_once(parse_mailbox_url(tls_url(tls_mailbox, how)), settings=get_settings())
    drain()

    assert (len(report.stored), counts()) == (2, (2, 2))
    [login] = [
        line
        for line in tls_mailbox.server.wait_for_log("Login:", since=since).splitlines()
        if "Login:" in line
    ]
    assert "TLS" in login  # the password went over TLS, not in the clear


@pytest.mark.parametrize("how", ["imaps", "starttls"])
@pytest.mark.usefixtures("system_cas_only")
def test_a_certificate_from_an_unknown_authority_stops_the_poll_before_login(
    desk: Desk, tls_mailbox: CaseMailbox, how: str
) -> None:
    tls_mailbox.append(read_email("case-home-infusion.eml"))
    since = tls_mailbox.server.log_offset()

    with pytest.raises(ImapError) as raised:
        poll_once(parse_mailbox_url(tls_url(tls_mailbox, how)), settings=get_settings())

    assert not isinstance(raised.value, ImapAuthError)
    assert "certificate verify failed" in last_error()
    assert counts() == (0, 0)
    logged = tls_mailbox.server.wait_for_log("Disconnected", since=since)
    # Dovecot says "no auth attempts", or, when the client's TLS alert ends the
    # handshake first, only that SSL_accept() failed: either way no login was sent.
    assert NO_AUTH_ATTEMPT in logged or "SSL_accept() failed" in logged, logged


@pytest.mark.usefixtures("trusted_ca")
def test_a_certificate_for_another_host_name_stops_the_poll(
    desk: Desk, tls_mailbox: CaseMailbox
) -> None:
    address = tls_mailbox.server.host  # 127.0.0.1: not a name the certificate carries
    with pytest.raises(ImapError):
        poll_once(
            parse_mailbox_url(tls_url(tls_mailbox, "imaps", host=address)),
            settings=get_settings(),
        )

    assert "certificate verify failed" in last_error()
    assert "mismatch" in last_error()


def test_a_server_that_does_not_offer_starttls_gets_no_plaintext_login(
    desk: Desk, mailbox: CaseMailbox
) -> None:
    since = mailbox.server.log_offset()  # the shared Dovecot runs without TLS

    with pytest.raises(ImapError):
        poll_once(parse_mailbox_url(f"{mailbox.url}?starttls=true"), settings=get_settings())

    assert "does not support STARTTLS" in last_error()
    assert NO_AUTH_ATTEMPT in mailbox.server.wait_for_log(NO_AUTH_ATTEMPT, since=since)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("imaps://desk:pw@mail.example/INBOX?starttls=true", "imaps:// is TLS already"),
        ("imap://desk:pw@mail.example/INBOX?starttls=maybe", "is not true or false"),
        ("imap://desk:pw@mail.example/INBOX?startls=true", "unknown option 'startls'"),
        ("imap://desk:pw@mail.example/INBOX?starttls=1&starttls=0", "given twice"),
    ],
)
def test_a_mistyped_tls_option_is_a_configuration_error(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_mailbox_url(url)


def test_starttls_is_on_only_when_asked_and_keeps_the_imap_port() -> None:
    asked = parse_mailbox_url("imap://desk:pw@mail.example/INBOX?starttls=true")
    plain = parse_mailbox_url("imap://desk:pw@mail.example/INBOX")
    implicit = parse_mailbox_url("imaps://desk:pw@mail.example/INBOX")

    assert (asked.tls, asked.starttls, asked.port) == (False, True, 143)
    assert (plain.tls, plain.starttls) == (False, False)
    assert (implicit.tls, implicit.starttls, implicit.port) == (True, False, 993)


def test_a_bad_mailbox_option_stops_start_up_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONSULTANT_IMAP_URL", "imap://desk:secret@mail.example/?tls=yes")

    with pytest.raises(ConfigError) as raised:
        load_settings()

    message = str(raised.value)
    assert message.startswith("CONSULTANT_IMAP_URL: unknown option 'tls'")
    assert "secret" not in message and "\n" not in message
