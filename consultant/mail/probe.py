"""Test a mailbox's or the relay's settings step by step, and say which step failed.

"Could not connect" is no help to an admin typing settings into a form: the probe takes
the steps a poller or the sender takes, one at a time and with the same timeouts and TLS
policy (consultant/mail/tls.py), and stops at the first that fails with
:class:`ProbeFailed`, which names the step and carries the server's own words. It reads
nothing and sends nothing: the folder is opened read-only and the relay is left after
logging in.
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import IMAPClientError

from consultant.config import MailboxURL, RelayURL, Settings
from consultant.mail.imap import log_in, login_token
from consultant.mail.smtp import log_in as smtp_log_in
from consultant.mail.smtp import relay_token
from consultant.mail.tls import tls_context
from consultant.mail.tokens import TokenError

T = TypeVar("T")

RESOLVE = "resolve host"
CONNECT = "connect"
TLS = "TLS handshake"
STARTTLS = "STARTTLS"
LOGIN = "log in"
SELECT = "open folder"
EHLO = "EHLO"
TOKEN = "get access token"


class ProbeFailed(Exception):
    """A step of the connection test failed: ``step`` names it, the message is the
    server's or the system's own words."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step} failed: {reason}")
        self.step = step
        self.reason = reason


def probe_mailbox(mailbox: MailboxURL, *, settings: Settings) -> list[str]:
    """Resolve, connect, TLS or STARTTLS, log in, open the folder: the steps that
    passed, or :class:`ProbeFailed` at the first that did not."""
    token = _token(mailbox, settings=settings)
    timeout = SocketTimeout(connect=settings.imap_connect_timeout, read=settings.imap_read_timeout)
    passed = _reach(mailbox.host, mailbox.port, timeout=settings.imap_connect_timeout)
    step = TLS if mailbox.tls else CONNECT
    client = _step(
        step,
        lambda: IMAPClient(
            mailbox.host,
            port=mailbox.port,
            ssl=mailbox.tls,
            ssl_context=tls_context(),
            timeout=timeout,
        ),
    )
    if mailbox.tls:
        passed.append(TLS)
    with _closing(client):
        if mailbox.starttls:
            _step(STARTTLS, lambda: client.starttls(ssl_context=tls_context()))
            passed.append(STARTTLS)
        _step(LOGIN, lambda: log_in(client, mailbox, token=token))
        passed.append(LOGIN)
        _step(SELECT, lambda: client.select_folder(mailbox.folder, readonly=True))
        passed.append(f"{SELECT} {mailbox.folder}")
    return passed


def probe_relay(relay: RelayURL, *, settings: Settings) -> list[str]:
    """Resolve, connect, TLS, EHLO, STARTTLS, log in (when there is a user): the steps
    that passed, or :class:`ProbeFailed` at the first that did not. A relay logging in
    as a connected mailbox gets its access token as part of "log in", so a revoked
    consent or a failed refresh is that step's failure, in the desk's words."""
    passed = _reach(relay.host, relay.port, timeout=settings.smtp_timeout)
    helo = settings.desk_domain
    if relay.tls:
        client: smtplib.SMTP = _step(
            TLS,
            lambda: smtplib.SMTP_SSL(
                relay.host,
                relay.port,
                local_hostname=helo,
                timeout=settings.smtp_timeout,
                context=tls_context(),
            ),
        )
        passed.append(TLS)
    else:
        client = _step(
            CONNECT,
            lambda: smtplib.SMTP(
                relay.host, relay.port, local_hostname=helo, timeout=settings.smtp_timeout
            ),
        )
    with _quitting(client):
        _smtp_reply(EHLO, _step(EHLO, client.ehlo))
        passed.append(EHLO)
        if relay.starttls:
            _smtp_reply(STARTTLS, _step(STARTTLS, lambda: client.starttls(context=tls_context())))
            passed.append(STARTTLS)
        if relay.username:
            token = _relay_token(relay, settings=settings)
            _step(LOGIN, lambda: smtp_log_in(client, relay, token=token, settings=settings))
            passed.append(LOGIN)
    return passed


def _relay_token(relay: RelayURL, *, settings: Settings) -> str | None:
    try:
        return relay_token(relay, settings=settings)
    except TokenError as exc:  # a revoked consent too
        raise ProbeFailed(LOGIN, str(exc)) from None


def _token(mailbox: MailboxURL, *, settings: Settings) -> str | None:
    """The XOAUTH2 access token the poller would log in with (``None``: a password)."""
    try:
        return login_token(mailbox, settings=settings)
    except TokenError as exc:  # a revoked consent too
        raise ProbeFailed(TOKEN, str(exc)) from None


def _reach(host: str, port: int, *, timeout: float) -> list[str]:
    """Resolve the host and open (then close) a TCP connection: the steps a bad name,
    a firewall or a wrong port fail, told apart from what the server then says."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ProbeFailed(RESOLVE, f"{host}: {_words(exc)}") from None
    _step(CONNECT, lambda: socket.create_connection((host, port), timeout=timeout).close())
    shown = addresses[0][4][0]
    return [f"{RESOLVE} ({shown})", f"{CONNECT} to port {port}"]


def _step(step: str, action: Callable[[], T]) -> T:
    try:
        return action()
    except ssl.SSLCertVerificationError as exc:
        raise ProbeFailed(step, f"certificate not trusted: {exc.verify_message}") from None
    except (IMAPClientError, smtplib.SMTPException, OSError, UnicodeError) as exc:
        raise ProbeFailed(step, _words(exc)) from None


def _smtp_reply(step: str, reply: tuple[int, bytes]) -> None:
    code, text = reply
    if not 200 <= code < 300:
        raise ProbeFailed(step, f"{code} {text.decode(errors='replace')}")


def _words(exc: BaseException) -> str:
    """The error as the server or the system put it: an IMAP reply comes as a bytes
    repr, an SMTP one as (code, bytes), a socket error as its strerror."""
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error
        return (
            f"{exc.smtp_code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"
        )
    if isinstance(exc, TimeoutError):
        return "no answer in time (timed out)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    words = str(exc) or type(exc).__name__
    if words.startswith(("b'", 'b"')):
        words = words[2:-1]
    return words


@contextmanager
def _closing(client: IMAPClient) -> Iterator[None]:
    try:
        yield
    finally:
        with contextlib.suppress(IMAPClientError, OSError):
            client.logout()


@contextmanager
def _quitting(client: smtplib.SMTP) -> Iterator[None]:
    try:
        yield
    finally:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.quit()
