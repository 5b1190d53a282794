"""Personal access tokens: how a program (a billing system, a script) calls the JSON API.

An admin creates one for a coder (a person, or an account made for a service) with the
scopes it needs; it acts as that coder, so every call is checked and recorded as theirs.
The token is shown once; only its SHA-256 is kept. It ends at its expiry, when revoked,
or when its coder is deactivated.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from consultant import audit
from consultant.coders import existing
from consultant.models import ApiToken, Coder
from consultant.passwords import token_hash

SCOPES = {
    "tickets:read": "list and read cases, accounts' quota, codes",
    "tickets:write": "answer, note, assign (leads), move cases",
    "admin": "everything an admin may do through the API",
}
PREFIX = "cc_"  # a token says what it is when it turns up in a log or a scanner
MAX_DAYS = 366


class TokenError(ValueError):
    """A token cannot be created or found as asked; the message says why."""


@dataclass(frozen=True)
class Caller:
    """Who is calling the API: the token and the coder it acts as."""

    token_id: int
    token_hash: str  # what rate limits count by: ids repeat across restored databases
    coder_id: int
    email: str
    role: str
    scopes: frozenset[str]

    def may(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


def create_token(
    session: Session,
    *,
    email: str,
    name: str,
    scopes: list[str],
    days: int,
    by: str,
    now: datetime,
) -> tuple[str, ApiToken]:
    """A new token for coder ``email``: the token itself (shown once) and its row."""
    coder = existing(session, email)
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise TokenError(f"scopes are {', '.join(SCOPES)} (got {', '.join(unknown) or 'none'})")
    if not 1 <= days <= MAX_DAYS:
        raise TokenError(f"a token lasts 1 to {MAX_DAYS} days")
    if not name.strip():
        raise TokenError("a token needs a name saying what it is for")
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        token_hash=token_hash(token),
        name=name.strip(),
        coder_id=coder.id,  # type: ignore[arg-type]
        scopes=",".join(sorted(set(scopes))),
        created_by=by,
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    session.add(row)
    session.flush()
    audit.record(session, actor=by, action="api_token.created", coder=coder, detail=f"{row.id}")
    return token, row


def revoke_token(session: Session, *, token_id: int, by: str, now: datetime) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise TokenError(f"no token {token_id} (see consultant tokens list)")
    if row.revoked_at is None:
        row.revoked_at = now
        session.add(row)
        audit.record(session, actor=by, action="api_token.revoked", detail=f"{token_id}")
    return row


def list_tokens(session: Session) -> list[dict[str, Any]]:
    query = select(ApiToken, Coder.email).join(Coder, col(Coder.id) == col(ApiToken.coder_id))
    return [describe(row, email) for row, email in session.exec(query.order_by(col(ApiToken.id)))]


def describe(row: ApiToken, email: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "coder": email,
        "scopes": row.scopes.split(","),
        "created_at": row.created_at.isoformat(),
        "expires_at": row.expires_at.isoformat(),
        "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
    }


def caller_for(session: Session, *, token: str, now: datetime) -> Caller | None:
    """Who this token acts as, or ``None`` if it opens nothing (unknown, expired,
    revoked, or its coder deactivated). Marks it used now."""
    if not token.startswith(PREFIX):
        return None
    query = select(ApiToken).where(ApiToken.token_hash == token_hash(token))
    row = session.exec(query).first()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    coder = session.get(Coder, row.coder_id)
    if coder is None or not coder.active:
        return None
    row.last_used_at = now
    session.add(row)
    return Caller(
        token_id=row.id,  # type: ignore[arg-type]
        token_hash=row.token_hash,
        coder_id=coder.id,  # type: ignore[arg-type]
        email=coder.email,
        role=coder.role,
        scopes=frozenset(row.scopes.split(",")),
    )
