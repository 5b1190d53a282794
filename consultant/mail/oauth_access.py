"""Access tokens for mailboxes connected with OAuth 2.0, and the state of each connection.

An access token lives about an hour. The desk keeps the current one sealed on the
mailbox and uses it until ``REFRESH_AHEAD`` before it ends, then asks the provider for a
new one with the refresh token, so a login never presents a token about to lapse and
every process of the desk shares one token instead of refreshing on its own.

A refresh answered ``invalid_grant`` means the consent is gone (withdrawn by the
mailbox's owner or an administrator, the password changed, the token expired): the
mailbox is marked "consent revoked", admins are told once, and no further refresh is
tried until an admin connects it again. Other failures (the provider unreachable) are
only this attempt's error: the next connect tries again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from consultant import audit
from consultant.config import Settings
from consultant.db import session_scope
from consultant.mail.oauth_connect import (
    ProviderRefused,
    ProviderUnreachable,
    keep_tokens,
    token_endpoint,
)
from consultant.mail.oauth_providers import ProviderError, provider_named, providers
from consultant.mail.tokens import TokenError
from consultant.models import Coder, CoderRole, Mailbox, utcnow
from consultant.notifications import Notices
from consultant.sealed import SealedError, unseal

REFRESH_AHEAD = timedelta(minutes=5)  # a token this close to its end is replaced first
EXPIRING_WITHIN = timedelta(days=7)  # a refresh token ending sooner: "token expiring"
CONNECTED, EXPIRING, REVOKED, NOT_CONNECTED = (
    "connected",
    "token expiring",
    "consent revoked",
    "not connected",
)


class ConsentRevoked(TokenError):
    """The provider no longer honours the mailbox's refresh token; an admin must connect
    it again. Retrying does nothing until then."""


@dataclass(frozen=True)
class _Held:
    name: str
    provider: str
    refresh_sealed: str | None
    access_sealed: str | None
    access_expires_at: datetime | None
    revoked: bool


def access_token_for(mailbox_id: int, *, settings: Settings, now: datetime | None = None) -> str:
    """A current access token for the mailbox: the kept one, or a fresh one.

    No session is held while the provider is asked.
    """
    now = now or utcnow()
    held = _held(mailbox_id)
    if held.revoked:
        raise ConsentRevoked(revoked_message(held.name, held.provider, settings=settings))
    if held.refresh_sealed is None or not held.provider:
        raise TokenError(f"{held.name} is not connected yet: connect it on the mailboxes page")
    if (
        held.access_sealed
        and held.access_expires_at
        and now < held.access_expires_at - REFRESH_AHEAD
    ):
        return _open(held.access_sealed, held.name, settings=settings)
    return _refresh(mailbox_id, held, settings=settings, now=now)


def forget_access_token(mailbox_id: int, *, presented: str, settings: Settings) -> None:
    """A server refused the kept access token before its end (consent withdrawn, the
    token revoked): drop it, so the next login asks the provider for a new one, and
    learns whether the consent is gone. Only if it is still the token presented."""
    held = _held(mailbox_id)
    if held.access_sealed is None:
        return
    if _open(held.access_sealed, held.name, settings=settings) != presented:
        return  # another process has replaced it meanwhile
    with session_scope() as session:
        session.execute(
            update(Mailbox)
            .where(
                col(Mailbox.id) == mailbox_id,
                col(Mailbox.oauth_access_sealed) == held.access_sealed,
            )
            .values(oauth_access_sealed=None, oauth_access_expires_at=None)
        )


def connection_state(mailbox: Mailbox, *, now: datetime) -> str | None:
    """What an admin reads for a mailbox connected with OAuth; ``None`` for the others."""
    if mailbox.auth != "oauth":
        return None
    if mailbox.oauth_revoked_at is not None:
        return REVOKED
    if mailbox.oauth_refresh_sealed is None or mailbox.oauth_provider is None:
        return NOT_CONNECTED
    ends = mailbox.oauth_refresh_expires_at
    if ends is not None and ends - now < EXPIRING_WITHIN:
        return EXPIRING
    return CONNECTED


def revoked_message(name: str, provider_key: str, *, settings: Settings) -> str:
    title = _title(provider_key, settings=settings)
    return (
        f"{name}: consent revoked at {title}; the desk stopped reading it until an admin "
        "connects it again on the mailboxes page"
    )


def _held(mailbox_id: int) -> _Held:
    with session_scope() as session:
        row = session.get(Mailbox, mailbox_id)
        if row is None:
            raise TokenError(f"mailbox {mailbox_id} is gone")
        return _Held(
            name=row.name,
            provider=row.oauth_provider or "",
            refresh_sealed=row.oauth_refresh_sealed,
            access_sealed=row.oauth_access_sealed,
            access_expires_at=row.oauth_access_expires_at,
            revoked=row.oauth_revoked_at is not None,
        )


def _refresh(mailbox_id: int, held: _Held, *, settings: Settings, now: datetime) -> str:
    assert held.refresh_sealed is not None
    try:
        provider = provider_named(held.provider, settings=settings)
    except ProviderError as exc:
        raise TokenError(f"{held.name}: {exc}") from None
    refresh_token = _open(held.refresh_sealed, held.name, settings=settings)
    try:
        with token_endpoint(provider, settings) as client:
            token = client.refresh_token(provider.token_url, refresh_token=refresh_token)
    except ProviderRefused as exc:
        if exc.error != "invalid_grant":
            raise TokenError(
                f"{held.name}: {provider.title} refused a new access token: {exc.error}"
            ) from None
        if _held(mailbox_id).refresh_sealed != held.refresh_sealed:
            # Another process refreshed (and the provider rotated the token) meanwhile.
            return access_token_for(mailbox_id, settings=settings, now=now)
        _mark_revoked(mailbox_id, settings=settings, now=now)
        raise ConsentRevoked(revoked_message(held.name, held.provider, settings=settings)) from None
    except ProviderUnreachable as exc:
        raise TokenError(
            f"{held.name}: cannot reach {provider.title}'s token endpoint: {exc}"
        ) from None
    with session_scope() as session:
        mailbox = session.get(Mailbox, mailbox_id)
        if mailbox is not None and mailbox.oauth_refresh_sealed == held.refresh_sealed:
            keep_tokens(session, mailbox, token=dict(token), now=now, settings=settings)
    return str(token["access_token"])


def _mark_revoked(mailbox_id: int, *, settings: Settings, now: datetime) -> None:
    """Record the lost consent and tell the admins, once per connection: only the
    process that flips ``oauth_revoked_at`` from empty does."""
    with session_scope() as session:
        flipped = session.execute(
            update(Mailbox)
            .where(col(Mailbox.id) == mailbox_id, col(Mailbox.oauth_revoked_at).is_(None))
            .values(oauth_revoked_at=now, oauth_access_sealed=None, oauth_access_expires_at=None)
        )
        if flipped.rowcount != 1:  # type: ignore[attr-defined]
            return
        mailbox = session.get(Mailbox, mailbox_id)
        assert mailbox is not None
        mailbox.last_error = revoked_message(
            mailbox.name, mailbox.oauth_provider or "", settings=settings
        )
        session.add(mailbox)
        audit.record(session, actor="desk", action="mailbox.consent_revoked", detail=mailbox.name)
        _tell_admins(session, mailbox)


def _tell_admins(session: Session, mailbox: Mailbox) -> None:
    connected = mailbox.oauth_connected_at.isoformat() if mailbox.oauth_connected_at else ""
    notices = Notices(session)
    admins = session.exec(
        select(Coder).where(Coder.role == CoderRole.ADMIN, col(Coder.active).is_(True))
    ).all()
    for admin in admins:
        notices.add(
            coder=admin,
            ticket=None,
            mailbox=mailbox,
            kind="mailbox.consent_revoked",
            key=f"mailbox.consent_revoked:{mailbox.id}:{connected}",
        )
    notices.queue()


def _open(sealed: str, name: str, *, settings: Settings) -> str:
    try:
        return unseal(sealed, settings=settings, whose=f"{name}'s OAuth token")
    except SealedError as exc:
        raise TokenError(str(exc)) from None


def _title(provider_key: str, *, settings: Settings) -> str:
    titles = {p.key: p.title for p in providers(settings)}
    return titles.get(provider_key, provider_key)
