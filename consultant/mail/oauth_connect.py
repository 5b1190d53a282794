"""Connecting a mailbox with OAuth 2.0: the authorization code flow with PKCE.

An admin starts a connect; the desk keeps a pending row (the ``state``'s hash, their web
session, the sealed PKCE ``code_verifier``, ten minutes to live) and sends them to the
provider's sign-in. The provider sends them back to ``/oauth/callback`` with a code, or
an error. The callback is accepted once, from the same session, in time, for a state
the desk issued (RFC 6749 10.12, RFC 9700 4.7); the code is exchanged with the
verifier (RFC 7636), and the refresh token is sealed on the mailbox. Anything else is
refused with a message for the admin, and nothing is stored.

authlib's client builds the requests; the desk keeps the state and the verifier.
"""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from consultant.config import Settings
from consultant.db import session_scope
from consultant.mail.oauth_providers import Provider, ProviderError, provider_named, redirect_uri
from consultant.models import Mailbox, OAuthConnect
from consultant.passwords import token_hash
from consultant.sealed import SealedError, reseal, seal, unseal

if TYPE_CHECKING:
    from authlib.integrations.httpx_client import OAuth2Client

CONNECT_MINUTES = 10  # from the click to the callback
KEPT = timedelta(days=1)  # how long an ended connect is kept
VERIFIER_BYTES = 48  # 64 characters: RFC 7636 asks for 43 to 128
ERROR_SHOWN = 200  # characters of a provider's error description


class ConnectRefused(Exception):
    """The connect did not happen; the message is for the admin and names no secret."""


@dataclass(frozen=True)
class Pending:
    """A callback's connect, claimed: what the code exchange needs."""

    mailbox_id: int
    provider: Provider
    verifier: str


def start_connect(
    session: Session,
    *,
    mailbox: Mailbox,
    provider_key: str,
    web_session_id: int,
    now: datetime,
    settings: Settings,
) -> str:
    """Keep a pending connect for ``mailbox`` and return the provider's sign-in address."""
    try:
        provider = provider_named(provider_key, settings=settings)
    except ProviderError as exc:
        raise ConnectRefused(str(exc)) from None
    assert mailbox.id is not None
    # Answered or abandoned connects stay a day (a late callback still gets its own
    # message), then go: the table holds only the last day's.
    session.execute(delete(OAuthConnect).where(col(OAuthConnect.expires_at) < now - KEPT))
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(VERIFIER_BYTES)
    session.add(
        OAuthConnect(
            state_hash=token_hash(state),
            web_session_id=web_session_id,
            mailbox_id=mailbox.id,
            provider=provider.key,
            verifier_sealed=seal(verifier, settings=settings),
            created_at=now,
            expires_at=now + timedelta(minutes=CONNECT_MINUTES),
        )
    )
    with token_endpoint(provider, settings) as client:
        url, _ = client.create_authorization_url(
            provider.authorize_url,
            state=state,
            code_verifier=verifier,
            login_hint=mailbox.username or "",
            **dict(provider.extra),
        )
    return str(url)


def finish_connect(
    *,
    state: str,
    code: str,
    error: str,
    error_description: str,
    web_session_id: int,
    actor: str,
    now: datetime,
    settings: Settings,
) -> str:
    """Check the callback, exchange its code and seal the tokens on the mailbox: the
    mailbox's name. :class:`ConnectRefused` for anything but a good answer."""
    with session_scope() as session:
        pending = claim(
            session, state=state, web_session_id=web_session_id, now=now, settings=settings
        )
    if error:
        raise ConnectRefused(_provider_error(pending.provider, error, error_description))
    if not code:
        raise ConnectRefused(f"{pending.provider.title} sent no authorization code back")
    token = _exchange(pending, code=code, settings=settings)
    with session_scope() as session:
        mailbox = session.get(Mailbox, pending.mailbox_id)
        if mailbox is None:
            raise ConnectRefused("the mailbox was removed while it was being connected")
        keep_tokens(session, mailbox, token=token, now=now, settings=settings)
        mailbox.oauth_provider = pending.provider.key
        mailbox.oauth_connected_at = now
        mailbox.oauth_connected_by = actor
        mailbox.oauth_revoked_at = None
        mailbox.last_error = None
        mailbox.failures = 0
        session.add(mailbox)
        return mailbox.name


def claim(
    session: Session, *, state: str, web_session_id: int, now: datetime, settings: Settings
) -> Pending:
    """The pending connect ``state`` names, marked used in the same statement that checks
    it was not: of two callbacks with one state, exactly one gets here."""
    row = session.exec(
        select(OAuthConnect).where(OAuthConnect.state_hash == token_hash(state))
    ).first()
    if row is None or not state:
        raise ConnectRefused(
            "this answer from the sign-in page matches no connect started here; "
            "nothing was connected. Start again from the mailboxes page"
        )
    if row.web_session_id != web_session_id:
        raise ConnectRefused(
            "this connect was started in another sign-in; nothing was connected. "
            "Start again from the mailboxes page"
        )
    if row.expires_at <= now:
        raise ConnectRefused(
            f"the sign-in took longer than {CONNECT_MINUTES} minutes; nothing was "
            "connected. Start again from the mailboxes page"
        )
    taken = session.execute(
        update(OAuthConnect)
        .where(col(OAuthConnect.id) == row.id, col(OAuthConnect.used_at).is_(None))
        .values(used_at=now)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise ConnectRefused(
            "this answer from the sign-in page was used already; nothing more was "
            "connected. Start again from the mailboxes page to connect once more"
        )
    try:
        provider = provider_named(row.provider, settings=settings)
        verifier = unseal(row.verifier_sealed, settings=settings, whose="this connect")
    except (ProviderError, SealedError) as exc:
        raise ConnectRefused(str(exc)) from None
    return Pending(mailbox_id=row.mailbox_id, provider=provider, verifier=verifier)


def keep_tokens(
    session: Session, mailbox: Mailbox, *, token: dict[str, Any], now: datetime, settings: Settings
) -> None:
    """Seal a token endpoint's answer on the mailbox: the access token with its expiry,
    and the refresh token when one came (Google sends none on a refresh; Microsoft a
    new one each time, which replaces the old)."""
    mailbox.oauth_access_sealed = seal(str(token["access_token"]), settings=settings)
    mailbox.oauth_access_expires_at = now + timedelta(seconds=_seconds(token, "expires_in", 3600))
    if token.get("refresh_token"):
        mailbox.oauth_refresh_sealed = seal(str(token["refresh_token"]), settings=settings)
        lasts = _seconds(token, "refresh_token_expires_in", 0)
        mailbox.oauth_refresh_expires_at = now + timedelta(seconds=lasts) if lasts else None
    session.add(mailbox)


def forget_connection(mailbox: Mailbox) -> None:
    """Drop the mailbox's tokens and its connect's record: a removed mailbox keeps none."""
    for key in (
        "oauth_provider",
        "oauth_refresh_sealed",
        "oauth_refresh_expires_at",
        "oauth_access_sealed",
        "oauth_access_expires_at",
        "oauth_connected_at",
        "oauth_connected_by",
        "oauth_revoked_at",
    ):
        setattr(mailbox, key, None)


def reseal_tokens(mailbox: Mailbox, *, settings: Settings) -> None:
    """Seal the mailbox's tokens with the current key, after a key rotation
    (:class:`consultant.sealed.SealedError` when no key the desk has opens them)."""
    whose = f"mailbox {mailbox.name}'s OAuth token"
    if mailbox.oauth_refresh_sealed:
        mailbox.oauth_refresh_sealed = reseal(
            mailbox.oauth_refresh_sealed, settings=settings, whose=whose
        )
    if mailbox.oauth_access_sealed:
        mailbox.oauth_access_sealed = reseal(
            mailbox.oauth_access_sealed, settings=settings, whose=whose
        )


def _exchange(pending: Pending, *, code: str, settings: Settings) -> dict[str, Any]:
    """The provider's tokens for ``code``; the verifier proves this desk asked for it."""
    provider = pending.provider
    try:
        with token_endpoint(provider, settings) as client:
            token = client.fetch_token(
                provider.token_url,
                grant_type="authorization_code",
                code=code,
                code_verifier=pending.verifier,
            )
    except ProviderRefused as exc:
        raise ConnectRefused(_provider_error(provider, exc.error, exc.description)) from None
    except ProviderUnreachable as exc:
        raise ConnectRefused(f"cannot reach {provider.title}'s token endpoint: {exc}") from None
    if not token.get("access_token") or not token.get("refresh_token"):
        raise ConnectRefused(
            f"{provider.title} gave no refresh token, so the desk could not keep access; "
            "nothing was connected"
        )
    return dict(token)


def _provider_error(provider: Provider, error: str, description: str) -> str:
    if error == "access_denied":
        return f"access was not given at {provider.title}; nothing was connected"
    said = f" ({description[:ERROR_SHOWN]})" if description else ""
    return f"{provider.title} refused: {error[:ERROR_SHOWN]}{said}; nothing was connected"


def _seconds(token: dict[str, Any], key: str, default: int) -> int:
    try:
        return max(int(token.get(key) or default), 0)
    except (TypeError, ValueError):
        return default


class ProviderRefused(Exception):
    """The provider answered with an OAuth error (RFC 6749 5.2), ``invalid_grant`` say."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error, self.description = error, description


class ProviderUnreachable(Exception):
    """No usable answer from the provider: the network, a timeout, or not OAuth's JSON."""


@contextmanager
def token_endpoint(provider: Provider, settings: Settings) -> Iterator[OAuth2Client]:
    """authlib's client as the desk is registered at ``provider``, its errors raised as
    the two above. authlib and httpx are imported here, at the first call to a
    provider: every command of the desk imports this module, and they would add a
    fifth to its start-up."""
    import httpx
    from authlib.deprecate import AuthlibDeprecationWarning
    from authlib.integrations.base_client.errors import OAuthError

    with warnings.catch_warnings():
        # authlib 1.9 would rather run on httpx2 and says so when imported; it still
        # works with the httpx the desk is locked to.
        warnings.filterwarnings(
            "ignore", "The httpx module is deprecated", AuthlibDeprecationWarning
        )
        from authlib.integrations.httpx_client import OAuth2Client

    try:
        with OAuth2Client(
            client_id=provider.client_id,
            client_secret=provider.client_secret,
            scope=provider.scope,
            redirect_uri=redirect_uri(settings),
            code_challenge_method="S256",
            timeout=settings.oauth_timeout,
        ) as client:
            yield client
    except OAuthError as exc:
        raise ProviderRefused(str(exc.error), str(exc.description or "")) from None
    except (httpx.HTTPError, ValueError) as exc:
        raise ProviderUnreachable(str(exc)) from None
