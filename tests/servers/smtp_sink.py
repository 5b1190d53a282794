"""An SMTP server that records what it receives, and can be told to fail or to stall.

Outgoing mail in tests goes here: a real aiosmtpd server on a free loopback port, so the
desk's smtplib code runs exactly as against a relay. Given an introspection URL
(tests/servers/oauth2.py) it is a relay as Microsoft 365's or Google's now are: AUTH
XOAUTH2 only, each bearer token asked about there, and no email without a login.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from base64 import b64decode
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope

from .ports import free_port


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes


class _Recorder:
    """The aiosmtpd handler: keeps what arrives, or fails as it was told to."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.messages: list[Received] = []
        self.failures: list[str] = []  # replies to give instead of 250, in order
        self.drops = 0  # DATA commands to answer by closing the connection
        self.released = threading.Event()  # cleared: keep each email but hold the reply
        self.released.set()
        self.held = 0  # replies being held now
        self.on_data: Callable[[], None] | None = None  # called as each email's data arrives
        self.reply_delay = 0.0  # seconds each reply to an email's data takes

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Envelope) -> str:
        if self.on_data is not None:
            self.on_data()
        with self.lock:
            if self.drops:
                self.drops -= 1
                assert server.transport is not None
                server.transport.close()  # the data arrived; the reply never does
                return "250 2.0.0 never sent"
            if self.failures:
                return self.failures.pop(0)
            self.messages.append(
                Received(
                    mail_from=envelope.mail_from or "",
                    rcpt_tos=tuple(envelope.rcpt_tos),
                    raw=envelope.original_content or b"",
                )
            )
            self.lock.notify_all()
        await asyncio.sleep(self.reply_delay)  # only this connection waits
        await self._hold_reply()
        return "250 2.0.0 OK"

    async def _hold_reply(self) -> None:
        if self.released.is_set():
            return
        with self.lock:
            self.held += 1
            self.lock.notify_all()
        try:
            while not self.released.is_set():
                await asyncio.sleep(0.02)  # only this connection waits, not the server
        finally:
            with self.lock:
                self.held -= 1


class _XOAuth2Recorder(_Recorder):
    """A recorder that also takes AUTH XOAUTH2, as Google's and Microsoft's relays do:
    the token must be active at the introspection endpoint, for the user named."""

    def __init__(self, introspection_url: str) -> None:
        super().__init__()
        self.introspection_url = introspection_url
        self.logins: list[str] = []  # the users logged in, in order

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        blob = args[1] if len(args) > 1 else ""
        user, scheme, token = self._parts(b64decode(blob).decode(errors="replace"))
        answer = await asyncio.to_thread(
            lambda: httpx.post(self.introspection_url, data={"token": token}).json()
        )
        if scheme == "Bearer" and answer.get("active") and answer.get("username") == user:
            with self.lock:
                self.logins.append(user)
            return AuthResult(success=True, auth_data=user)
        # As Google's relay refuses a token: a JSON challenge, answered by an empty line.
        failure = json.dumps({"status": "401", "schemes": "bearer", "scope": "mail"})
        await server.challenge_auth(failure)
        refused = "535 5.7.8 Username and Password not accepted"
        return AuthResult(success=False, handled=False, message=refused)

    @staticmethod
    def _parts(response: str) -> tuple[str, str, str]:
        """user, "Bearer", token of ``user=…\x01auth=Bearer …\x01\x01``."""
        fields = dict(part.split("=", 1) for part in response.split("\x01") if "=" in part)
        scheme, _, token = fields.get("auth", "").partition(" ")
        return fields.get("user", ""), scheme, token


class SmtpSink:
    """Records every email it accepts; ``fail_next``/``drop_next`` script its failures,
    ``hold``/``release`` stall its replies.

    ``smtputf8=False`` makes it a relay that does not offer SMTPUTF8 (RFC 6531) and
    refuses non-ASCII addresses, as many still do; by default it offers it.
    """

    host = "127.0.0.1"

    def __init__(self, *, smtputf8: bool = True, introspection_url: str = "") -> None:
        self.port = free_port()
        self._recorder = _XOAuth2Recorder(introspection_url) if introspection_url else _Recorder()
        # Plain text, as the desk's tests talk to it: aiosmtpd offers AUTH only over TLS
        # unless told otherwise.
        logins = (
            {"auth_required": True, "auth_require_tls": False,
             "auth_exclude_mechanism": ["LOGIN", "PLAIN"]}
            if introspection_url
            else {}
        )  # fmt: skip
        # server_hostname: aiosmtpd would otherwise ask DNS (getfqdn) on every connection.
        self._controller = Controller(
            self._recorder,
            hostname=self.host,
            port=self.port,
            server_hostname="sink.test",
            enable_SMTPUTF8=smtputf8,
            **logins,
        )

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    @property
    def messages(self) -> list[Received]:
        with self._recorder.lock:
            return list(self._recorder.messages)

    def wait_for(self, count: int, timeout: float) -> list[Received]:
        """At least ``count`` messages, waiting up to ``timeout`` seconds for them."""
        recorder = self._recorder
        self._wait_until(
            lambda: len(recorder.messages) >= count,
            timeout,
            lambda: f"expected {count} message(s), {len(recorder.messages)} arrived",
        )
        return self.messages

    def wait_until_holding(self, count: int, timeout: float) -> None:
        """Until ``count`` senders wait for the reply to their email's data."""
        recorder = self._recorder
        self._wait_until(
            lambda: recorder.held >= count,
            timeout,
            lambda: f"expected {count} held replies, {recorder.held} held",
        )

    def _wait_until(
        self, condition: Callable[[], bool], timeout: float, failure: Callable[[], str]
    ) -> None:
        deadline = time.monotonic() + timeout
        with self._recorder.lock:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(failure())
                self._recorder.lock.wait(left)

    def clear(self) -> None:
        with self._recorder.lock:
            self._recorder.messages.clear()
            self._recorder.failures.clear()
            self._recorder.drops = 0
        self._recorder.on_data = None
        self._recorder.reply_delay = 0.0
        self.release()

    def hold(self) -> None:
        """Keep each email that arrives but hold the reply to its data until ``release``.

        A relay in that state has the email while its sender does not know it yet: a
        sender that dies now leaves an email that was delivered but not marked sent.
        """
        self._recorder.released.clear()

    def release(self) -> None:
        """Answer the held emails' data (to whichever senders are still there)."""
        self._recorder.released.set()

    def answer_slowly(self, seconds: float) -> None:
        """Take ``seconds`` over each reply to an email's data, as a relay a network (or
        a content scan) away does; its other connections are answered meanwhile."""
        self._recorder.reply_delay = seconds

    def fail_next(self, count: int, reply: str) -> None:
        """Answer the next ``count`` DATA commands with ``reply`` (e.g. "451 4.3.0 later")."""
        with self._recorder.lock:
            self._recorder.failures.extend([reply] * count)

    def drop_next(self, count: int) -> None:
        """Close the connection after the next ``count`` emails' data, without a reply."""
        with self._recorder.lock:
            self._recorder.drops += count

    def on_data(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` as each email's data arrives, before it is kept or answered:
        it sees the sender's state at the moment the relay takes the email."""
        self._recorder.on_data = callback

    @property
    def logins(self) -> list[str]:
        """The users that logged in with XOAUTH2, in order."""
        assert isinstance(self._recorder, _XOAuth2Recorder)
        with self._recorder.lock:
            return list(self._recorder.logins)

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
