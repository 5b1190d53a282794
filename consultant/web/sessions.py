"""Signing in and out, and the server-side sessions behind the dashboard's cookie.

The cookie holds a random token and nothing else; the table keeps its SHA-256, the
person, a CSRF token and the times that end it: ``CONSULTANT_WEB_IDLE_MINUTES`` without a
request (automatic logoff, HIPAA 164.312(a)(2)(iii)) or ``CONSULTANT_WEB_SESSION_HOURS``
after signing in, whatever happens (OWASP's absolute timeout). Both are checked here, on
the server, at every request. Signing in always makes a new token, so a token planted in
a browser before sign-in is worth nothing after it (session fixation).

Leads and admins (everyone, with ``CONSULTANT_WEB_TWO_FACTOR=everyone``) then give a
TOTP code (RFC 6238) from their authenticator, enrolling one at their first sign-in;
until they do, the session opens no page (HIPAA 164.312(d), person authentication).

Failed sign-ins are audit rows; ``CONSULTANT_WEB_SIGN_IN_FAILURES`` of them for one
account, or from one address, within ``CONSULTANT_WEB_SIGN_IN_WAIT_MINUTES`` make both
wait that long. The answer never says whether the address belongs to a coder.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

import pyotp
import segno
from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from consultant import audit
from consultant.config import get_settings
from consultant.models import LEAD_ROLES, Coder, Event, WebSession, utcnow
from consultant.passwords import hash_password, matches, needs_rehash, token_hash

FAILED = "sign_in.failed"
CODE_FAILED = "sign_in.code_failed"
TWO_FACTOR = "sign_in.two_factor"


class SignInRefused(Exception):
    """Sign-in did not happen; the message is safe to show the person."""


@dataclass(frozen=True)
class SignedIn:
    """The person behind a request, as the routes see them."""

    session_id: int
    coder_id: int
    email: str
    name: str
    role: str
    csrf_token: str
    needs_code: bool = False  # the second step (TOTP) is still to come
    enrolled: bool = True  # has an authenticator; if not, the second step enrols one


@cache
def _decoy_hash() -> str:
    return hash_password(secrets.token_urlsafe(32))


def sign_in(
    session: Session, *, email: str, password: str, address: str, now: datetime
) -> tuple[str, SignedIn]:
    """Check the password and open a session: the cookie's token and who signed in.

    Raises :class:`SignInRefused` after recording why; the caller commits either way.
    """
    settings = get_settings()
    given = email.strip().lower()
    since = now - timedelta(minutes=settings.web_sign_in_wait_minutes)
    failures = max(
        audit.count_since(session, action=FAILED, since=since, actor=given),
        audit.count_since(session, action=FAILED, since=since, address=address),
    )
    if failures >= settings.web_sign_in_failures:
        audit.record(session, actor=given, action="sign_in.throttled", address=address)
        raise SignInRefused(
            f"Too many failed sign-ins. Wait {settings.web_sign_in_wait_minutes} minutes "
            "and try again."
        )
    coder = session.exec(select(Coder).where(Coder.email == given)).first()
    stored = coder.password_hash if coder is not None else None
    # Hash even for an unknown address, so the answer takes as long either way.
    good = matches(stored or _decoy_hash(), password) and stored is not None
    if coder is None or not good or not coder.active:
        audit.record(session, actor=given, action=FAILED, address=address, coder=coder)
        raise SignInRefused("Wrong email address or password.")
    if stored and needs_rehash(stored):
        coder.password_hash = hash_password(password)
        session.add(coder)
    return open_session(session, coder=coder, address=address, now=now)


def open_session(
    session: Session, *, coder: Coder, address: str, now: datetime, how: str = "password"
) -> tuple[str, SignedIn]:
    """A new session for a coder who has just proved who they are: the cookie's token
    (always a fresh one) and who signed in."""
    token = secrets.token_urlsafe(32)
    row = WebSession(
        token_hash=token_hash(token),
        coder_id=coder.id,  # type: ignore[arg-type]
        csrf_token=secrets.token_urlsafe(32),
        address=address,
        created_at=now,
        last_seen_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(
        session, actor=coder.email, action="sign_in", address=address, coder=coder, detail=how
    )
    return token, _signed_in(row, coder)


def resume(
    session: Session, *, token: str, address: str, now: datetime, touch: bool = True
) -> SignedIn | None:
    """The person whose session this token opens, or ``None`` (unknown, ended, idle too
    long, past the absolute limit, or the coder deactivated). Marks it seen now, unless
    ``touch`` is false: a page refreshing itself is not the person at work, and must
    not keep an unattended screen signed in."""
    row = session.exec(select(WebSession).where(WebSession.token_hash == token_hash(token))).first()
    if row is None or row.ended_at is not None:
        return None
    coder = session.get(Coder, row.coder_id)
    reason = _why_over(row, coder, now)
    if reason is not None:
        _end(session, row, now=now, reason=reason)
        audit.record(
            session,
            actor=coder.email if coder else "",
            action="sign_out",
            address=address,
            coder=coder,
            detail=reason,
        )
        return None
    if touch:
        row.last_seen_at = now
        session.add(row)
    return _signed_in(row, coder)  # type: ignore[arg-type]


def sign_out(session: Session, *, token: str, address: str, now: datetime) -> None:
    row = session.exec(select(WebSession).where(WebSession.token_hash == token_hash(token))).first()
    if row is None or row.ended_at is not None:
        return
    coder = session.get(Coder, row.coder_id)
    _end(session, row, now=now, reason="signed out")
    audit.record(
        session, actor=coder.email if coder else "", action="sign_out", address=address, coder=coder
    )


def end_all(session: Session, *, coder_id: int, reason: str) -> int:
    """End every open session of this coder (password changed, deactivated)."""
    rows = session.exec(
        select(WebSession).where(
            WebSession.coder_id == coder_id, col(WebSession.ended_at).is_(None)
        )
    ).all()
    for row in rows:
        _end(session, row, now=utcnow(), reason=reason)
    return len(rows)


def _why_over(row: WebSession, coder: Coder | None, now: datetime) -> str | None:
    settings = get_settings()
    if coder is None or not coder.active:
        return "coder deactivated"
    if now - row.last_seen_at >= timedelta(minutes=settings.web_idle_minutes):
        return f"idle for {settings.web_idle_minutes} minutes"
    if now - row.created_at >= timedelta(hours=settings.web_session_hours):
        return f"signed in for {settings.web_session_hours:g} hours"
    return None


def _end(session: Session, row: WebSession, *, now: datetime, reason: str) -> None:
    row.ended_at = now
    row.ended_reason = reason
    session.add(row)


def _signed_in(row: WebSession, coder: Coder) -> SignedIn:
    return SignedIn(
        session_id=row.id,  # type: ignore[arg-type]
        coder_id=coder.id,  # type: ignore[arg-type]
        email=coder.email,
        name=coder.name,
        role=coder.role,
        csrf_token=row.csrf_token,
        needs_code=row.second_factor_at is None and needs_second_factor(coder),
        enrolled=coder.totp_secret is not None,
    )


# --- the second step: a TOTP code (RFC 6238) ------------------------------------------


def needs_second_factor(coder: Coder) -> bool:
    """Leads and admins always give a code; everyone does when the admin says so."""
    everyone = get_settings().web_two_factor == "everyone"
    return everyone or coder.role in LEAD_ROLES


def new_secret() -> str:
    return pyotp.random_base32()


def enrolment_uri(secret: str, email: str) -> str:
    """What an authenticator app reads (typed in, or from a QR code of it)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=get_settings().desk_name)


def enrolment_qr(uri: str) -> str:
    """The enrolment address as a QR code a phone's authenticator scans: inline SVG,
    drawn here, so the secret never goes to an outside QR service."""
    code = segno.make(uri, error="m")
    return code.svg_inline(
        scale=4, dark="#000", light="#fff", title="QR code for your authenticator"
    )


def give_code(
    session: Session,
    *,
    person: SignedIn,
    code: str,
    address: str,
    now: datetime,
    secret: str | None = None,
) -> None:
    """Pass the second step with a code from the coder's authenticator — or, with
    ``secret``, enrol that authenticator (a coder who has none). Wrong codes are audited;
    ``CONSULTANT_WEB_SIGN_IN_FAILURES`` of them end the session. Raises
    :class:`SignInRefused`; the caller commits either way."""
    settings = get_settings()
    row = session.get(WebSession, person.session_id)
    coder = session.get(Coder, person.coder_id)
    assert row is not None and coder is not None
    enrolling = coder.totp_secret is None
    expected = secret if enrolling else coder.totp_secret
    step = _step_of(code, secret=expected, now=now) if expected else None
    used_before = step is not None and not _first_use(session, coder=coder, step=step)
    if step is not None and not used_before:
        if enrolling:
            coder.totp_secret = expected
            session.add(coder)
            session.add(Event(actor=coder.email, kind="coder.two_factor", detail="enrolled"))
        row.second_factor_at = now
        session.add(row)
        audit.record(session, actor=coder.email, action=TWO_FACTOR, address=address, coder=coder)
        return
    audit.record(
        session,
        actor=coder.email,
        action=CODE_FAILED,
        address=address,
        coder=coder,
        detail="used before" if used_before else "",
    )
    since = now - timedelta(minutes=settings.web_sign_in_wait_minutes)
    session.flush()
    if audit.count_since(session, action=CODE_FAILED, since=since, actor=coder.email) >= (
        settings.web_sign_in_failures
    ):
        _end(session, row, now=now, reason="too many wrong codes")
        audit.record(
            session,
            actor=coder.email,
            action="sign_out",
            address=address,
            coder=coder,
            detail="too many wrong codes",
        )
        raise SignInRefused("Too many wrong codes: sign in again.")
    if used_before:
        raise SignInRefused("That code has been used already: wait for the next one.")
    raise SignInRefused(
        "That code is not right. Codes change every 30 seconds; try the current one."
    )


def _step_of(code: str, *, secret: str, now: datetime) -> int | None:
    """The 30-second step this code belongs to: now's, or the one before or after (a
    phone's clock a little off), as RFC 6238 allows; ``None`` if it is none of them."""
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code.strip()):
            return step
    return None


def _first_use(session: Session, *, coder: Coder, step: int) -> bool:
    """Mark the step's code used, unless it (or a later one) already was: a code works
    once (RFC 6238, 5.2), so one seen over a shoulder or phished is worth nothing after.
    One conditional UPDATE decides, even between two sign-ins at the same instant."""
    coders = Coder.__table__  # type: ignore[attr-defined]
    taken = session.execute(
        update(coders)
        .where(
            coders.c.id == coder.id,
            or_(coders.c.totp_last_step.is_(None), coders.c.totp_last_step < step),
        )
        .values(totp_last_step=step)
    )
    return taken.rowcount == 1
