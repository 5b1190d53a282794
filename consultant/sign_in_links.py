"""One-time sign-in links: how a new coder (or one who forgot their password) gets in.

An admin runs ``consultant coders add`` or ``consultant coders link`` and passes the
printed link on; the coder opens it, chooses a password and is signed in (then enrols an
authenticator if their role asks for one). Only the token's SHA-256 is stored; the link
works once, for :data:`VALID_HOURS`, and a newer link for the same coder retires older
ones. Opening the link only shows the form: mail scanners that fetch every link they
see must not use it up.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from consultant import audit
from consultant.coders import CoderError, existing, set_password
from consultant.config import get_settings
from consultant.models import Coder, SignInLink
from consultant.passwords import token_hash

VALID_HOURS = 24
PATH = "/sign-in/link/"


class LinkRefused(Exception):
    """The link cannot be used (unknown, used, expired) or the password was refused;
    the message is safe to show."""


def issue_link(session: Session, *, email: str, by: str, now: datetime) -> str:
    """A new link for coder ``email``, retiring any unused older one: its full address."""
    coder = existing(session, email)
    for older in _unused_links(session, coder, now):
        older.expires_at = now
        session.add(older)
    token = secrets.token_urlsafe(32)
    session.add(
        SignInLink(
            token_hash=token_hash(token),
            coder_id=coder.id,  # type: ignore[arg-type]
            created_by=by,
            created_at=now,
            expires_at=now + timedelta(hours=VALID_HOURS),
        )
    )
    audit.record(session, actor=by, action="sign_in_link.issued", coder=coder, detail=coder.email)
    return f"{get_settings().web_url.rstrip('/')}{PATH}{token}"


def coder_for(session: Session, *, token: str, now: datetime) -> Coder:
    """Who the link is for, while it can still be used."""
    link = _usable(session, token, now)
    coder = session.get(Coder, link.coder_id)
    assert coder is not None
    return coder


def use_link(session: Session, *, token: str, password: str, address: str, now: datetime) -> Coder:
    """Set the coder's password from the link and use the link up."""
    link = _usable(session, token, now)
    coder = session.get(Coder, link.coder_id)
    assert coder is not None
    try:
        set_password(session, email=coder.email, password=password, actor=coder.email)
    except CoderError as exc:
        raise LinkRefused(f"That password will not do: {exc}.") from None
    link.used_at = now
    session.add(link)
    audit.record(
        session, actor=coder.email, action="sign_in_link.used", address=address, coder=coder
    )
    return coder


def _usable(session: Session, token: str, now: datetime) -> SignInLink:
    query = select(SignInLink).where(SignInLink.token_hash == token_hash(token))
    link = session.exec(query).first()
    if link is None or link.used_at is not None or link.expires_at <= now:
        raise LinkRefused(
            "This sign-in link was used already or has expired. Ask an admin for a new one."
        )
    coder = session.get(Coder, link.coder_id)
    if coder is None or not coder.active:
        raise LinkRefused("This sign-in link is no longer valid.")
    return link


def _unused_links(session: Session, coder: Coder, now: datetime) -> list[SignInLink]:
    query = select(SignInLink).where(
        SignInLink.coder_id == coder.id,
        col(SignInLink.used_at).is_(None),
        SignInLink.expires_at > now,
    )
    return list(session.exec(query))
