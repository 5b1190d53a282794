"""Outgoing mail: hand rendered bytes to the relay, or to a folder when there is none.

Failures come in two kinds, because they call for different actions: a
:class:`TemporaryDeliveryError` (4xx, a dropped connection, a timeout) is tried again
later; a :class:`PermanentDeliveryError` (5xx) will fail the same way every time.

An internationalised address (``jörg@example.de``, RFC 6531) or header field (RFC 6532)
travels only over SMTPUTF8: the relay is asked for it when the envelope or the header
block is not ASCII, and a relay that does not offer it fails the email permanently, with
the reason — a later attempt would meet the same relay.

A relay set to log in as a connected mailbox does so with SASL XOAUTH2 and that
mailbox's access token (consultant/mail/oauth_access.py), as Microsoft 365 and Google
ask now that they retire passwords for SMTP. A token the relay refuses is no fault of
the email: it waits, and the token is dropped so the next attempt asks for a new one.
"""

from __future__ import annotations

import contextlib
import smtplib
import threading
import time
from pathlib import Path
from typing import Protocol

from consultant.config import RelayURL, Settings
from consultant.mail.oauth_access import access_token_for, forget_access_token
from consultant.mail.tls import tls_context
from consultant.mail.tokens import TokenError

IDLE_SECONDS = 20.0  # reconnect rather than reuse a connection quiet for longer
_connections = threading.local()


class DeliveryError(Exception):
    """The email was not handed over."""


class TemporaryDeliveryError(DeliveryError):
    pass


class PermanentDeliveryError(DeliveryError):
    pass


class Transport(Protocol):
    def deliver(self, raw: bytes, *, sender: str, recipient: str, name: str) -> None: ...


class SmtpRelay:
    """The configured relay, over verified TLS when the URL asks for it.

    Each thread keeps its connection open between emails (logging in once per connection,
    not per email) and drops it after any error or a quiet spell, when relays hang up.
    """

    def __init__(self, relay: RelayURL, *, settings: Settings, token: str | None = None) -> None:
        self.relay = relay
        self.settings = settings
        self.timeout = settings.smtp_timeout
        self.token = token  # the XOAUTH2 access token to log in with, when the relay has one
        self.token_refused = ""  # why the relay refused the token: the run's other emails wait
        # Named explicitly: smtplib would otherwise ask DNS for this host's name on
        # every connection (socket.getfqdn), which is slow and often wrong in containers.
        self.helo_name = settings.desk_domain

    def deliver(self, raw: bytes, *, sender: str, recipient: str, name: str) -> None:
        if self.token_refused:
            raise TemporaryDeliveryError(self.token_refused)
        try:
            client = self._client()
            options = _mail_options(client, raw, sender=sender, recipient=recipient)
            refused = client.sendmail(sender, [recipient], raw, mail_options=options)
            _connections.last_used = time.monotonic()
        except smtplib.SMTPResponseException as exc:
            _drop_connection()
            raise _classified(exc.smtp_code, exc.smtp_error) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            _drop_connection()
            code, text = next(iter(exc.recipients.values()))
            raise _classified(code, text) from exc
        except (smtplib.SMTPException, OSError) as exc:  # OSError covers timeouts
            _drop_connection()
            # A connection lost after the final "." may mean the relay has the email; the
            # retry carries the same Message-ID, so the receiver can tell.
            raise TemporaryDeliveryError(f"relay unreachable or connection lost: {exc}") from exc
        except Exception:
            # Whatever went wrong on our side may have left the session halfway through
            # an email; the next one starts on a new connection.
            _drop_connection()
            raise
        if refused:
            code, text = refused[recipient]
            raise _classified(code, text)

    def _client(self) -> smtplib.SMTP:
        client: smtplib.SMTP | None = getattr(_connections, "client", None)
        key = (self.relay, self.timeout, self.helo_name, self.token)
        stale = time.monotonic() - getattr(_connections, "last_used", 0.0) > IDLE_SECONDS
        if client is None or stale or getattr(_connections, "key", None) != key:
            _drop_connection()
            client = self._connect()
            _connections.client, _connections.key = client, key
        return client

    def _connect(self) -> smtplib.SMTP:
        relay = self.relay
        if relay.tls:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                relay.host,
                relay.port,
                local_hostname=self.helo_name,
                timeout=self.timeout,
                context=tls_context(),
            )
        else:
            client = smtplib.SMTP(
                relay.host, relay.port, local_hostname=self.helo_name, timeout=self.timeout
            )
            if relay.starttls:
                client.starttls(context=tls_context())
        try:
            log_in(client, relay, token=self.token, settings=self.settings)
        except smtplib.SMTPAuthenticationError as exc:
            client.close()
            if self.token is None:
                raise
            self.token_refused = (
                f"the relay refused the access token of {relay.username}: "
                f"{_classified(exc.smtp_code, exc.smtp_error)}"
            )
            raise TemporaryDeliveryError(self.token_refused) from exc
        return client


def relay_token(relay: RelayURL, *, settings: Settings) -> str | None:
    """The access token a relay logging in as a connected mailbox presents (refreshed
    when near its end); ``None`` for a password login.
    :class:`consultant.mail.tokens.TokenError` (a revoked consent among them) when there
    is none to be had."""
    if relay.xoauth2 is None or relay.xoauth2.connection is None:
        return None
    return access_token_for(relay.xoauth2.connection, settings=settings)


def log_in(client: smtplib.SMTP, relay: RelayURL, *, token: str | None, settings: Settings) -> None:
    """AUTH XOAUTH2 with the access token when there is one, else the relay's password
    when it has a user; with neither, the relay is used without logging in.

    A refused token (consent withdrawn, the token revoked before its end) is dropped,
    so the next login asks the provider for a new one and learns whether the consent
    is gone.
    """
    if token is None:
        if relay.username:
            client.login(relay.username, relay.password)
        return
    assert relay.xoauth2 is not None and relay.xoauth2.connection is not None
    client.ehlo_or_helo_if_needed()
    initial = xoauth2_response(relay.username, token)
    try:
        # On a refused token the server sends a JSON challenge; the empty answer ends it.
        client.auth("XOAUTH2", lambda challenge=None: "" if challenge is not None else initial)
    except smtplib.SMTPAuthenticationError:
        with contextlib.suppress(TokenError):  # a token no key opens is refused anyway
            forget_access_token(relay.xoauth2.connection, presented=token, settings=settings)
        raise


def xoauth2_response(user: str, token: str) -> str:
    """The SASL XOAUTH2 initial response, before base64 (smtplib encodes it)."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def _mail_options(client: smtplib.SMTP, raw: bytes, *, sender: str, recipient: str) -> list[str]:
    """``MAIL FROM`` parameters this email needs, or a permanent failure when it needs
    SMTPUTF8 and the relay does not offer it.

    smtplib's ``sendmail`` writes commands in ASCII unless ``SMTPUTF8`` is among the
    options (then in UTF-8), so a non-ASCII address without it raises
    ``UnicodeEncodeError`` on our side instead of anything the relay could answer.
    """
    needs = _needs_smtputf8(raw, sender=sender, recipient=recipient)
    if needs is None:
        return []
    client.ehlo_or_helo_if_needed()  # what the relay offers is known only after EHLO
    if not client.has_extn("smtputf8"):
        raise PermanentDeliveryError(
            f"{needs} needs SMTPUTF8 (RFC 6531), which the relay does not offer"
        )
    # An SMTPUTF8 email's 8-bit bytes are 8BITMIME content, declared as such (RFC 6152).
    eight_bit = not raw.isascii() and client.has_extn("8bitmime")
    return ["SMTPUTF8", "BODY=8BITMIME"] if eight_bit else ["SMTPUTF8"]


def _needs_smtputf8(raw: bytes, *, sender: str, recipient: str) -> str | None:
    """What of this email cannot travel in ASCII (RFC 6531 section 3.2), ``None`` when
    all of it can: addresses and header fields; a body is MIME's business (8BITMIME)."""
    if not recipient.isascii():
        return "the recipient's address"
    if not sender.isascii():
        return "the sender's address"
    if not _header_block(raw).isascii():
        return "a header field"
    return None


def _header_block(raw: bytes) -> bytes:
    """The email's header fields: everything before the first empty line."""
    ends = [end for end in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if end >= 0]
    return raw[: min(ends)] if ends else raw


def _drop_connection() -> None:
    client: smtplib.SMTP | None = getattr(_connections, "client", None)
    _connections.client = None
    if client is not None:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.quit()


def _classified(code: int, text: bytes | str) -> DeliveryError:
    reply = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    error_type = PermanentDeliveryError if 500 <= code < 600 else TemporaryDeliveryError
    return error_type(f"{code} {reply}")


class OutboxFolder:
    """No relay configured: write each email as a ``.eml`` file a person can open."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def deliver(self, raw: bytes, *, sender: str, recipient: str, name: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"{name}.eml"
        partial = final.with_suffix(".eml.part")
        partial.write_bytes(raw)
        partial.replace(final)  # atomic: a reader never sees half an email


class UnusableRelay:
    """A relay is set up but cannot be used (its password opens with no key the desk
    has): every email waits, with the reason, until an admin fixes it."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def deliver(self, raw: bytes, *, sender: str, recipient: str, name: str) -> None:
        raise TemporaryDeliveryError(self.reason)


def transport_for(
    settings: Settings, *, relay: RelayURL | None, token: str | None = None
) -> Transport:
    """Through ``relay`` when there is one (logging in with ``token``, when it is given),
    else into the outbox folder."""
    if relay is not None:
        return SmtpRelay(relay, settings=settings, token=token)
    return OutboxFolder(settings.outbox_dir)
