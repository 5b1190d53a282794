"""What every request of the dashboard passes through: who is signed in, their role,
the CSRF token of every form, and the headers that keep pages private and inert.

Routes declare what they need (``Depends(signed_in)``, ``Depends(lead)``); nothing is
checked in a template or in the browser.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from fastapi import Depends, Form, Path, Request, Response
from starlette.middleware.base import BaseHTTPMiddleware

from consultant.config import get_settings
from consultant.db import session_scope
from consultant.models import LEAD_ROLES, CoderRole, utcnow
from consultant.web.sessions import SignedIn, resume

LIVE_HEADER = "X-Live-Refresh"  # sent by static/live.js: the page refreshing itself
SIGN_IN_COOKIE = "cc_sign_in"  # the sign-in form's CSRF token, before there is a session

# Pages load only what the desk serves; none may be framed by another site.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)


class SignInNeeded(Exception):
    """No valid session: the browser is sent to the sign-in page."""


class CodeNeeded(Exception):
    """Signed in with a password, but the second step (a TOTP code) is still to come."""


class Forbidden(Exception):
    """Signed in, but this page or action is not for their role."""


class BadForm(Exception):
    """A form without the right CSRF token: refused, nothing done."""


def session_cookie() -> str:
    """``__Host-`` binds the cookie to this host and path ``/`` and requires TLS."""
    return "__Host-cc_session" if get_settings().web_is_secure else "cc_session"


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def set_session_cookie(response: Response, token: str) -> None:
    # Lax: a link from an email to a case page arrives signed in; a form from elsewhere
    # carries no cookie.
    _set_cookie(response, session_cookie(), token, same_site="lax")


def set_sign_in_token(response: Response, token: str) -> None:
    """The sign-in form's token, also in a cookie: a form posted from another site
    cannot carry the cookie's value (double submit)."""
    _set_cookie(response, SIGN_IN_COOKIE, token, same_site="strict")


def _set_cookie(
    response: Response, name: str, value: str, *, same_site: Literal["lax", "strict"]
) -> None:
    secure = get_settings().web_is_secure
    response.set_cookie(name, value, httponly=True, samesite=same_site, secure=secure, path="/")


def check_sign_in_token(request: Request, given: str) -> None:
    expected = request.cookies.get(SIGN_IN_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, given):
        raise BadForm("the sign-in form has expired; please try again")


def half_signed_in(request: Request) -> SignedIn:
    """The person behind this request, who may still owe the second step; or
    :class:`SignInNeeded`. Only the second step's own pages take this."""
    token = request.cookies.get(session_cookie())
    if not token:
        raise SignInNeeded
    by_itself = request.headers.get(LIVE_HEADER) == "1" or request.url.path == "/live"
    with session_scope() as session:
        person = resume(
            session,
            token=token,
            address=client_address(request),
            now=utcnow(),
            touch=not by_itself,
        )
    if person is None:
        raise SignInNeeded
    return person


def signed_in(person: Annotated[SignedIn, Depends(half_signed_in)]) -> SignedIn:
    """The person behind this request, fully signed in; or :class:`SignInNeeded`, or
    :class:`CodeNeeded` while their TOTP code is still to come."""
    if person.needs_code:
        raise CodeNeeded
    return person


Person = Annotated[SignedIn, Depends(signed_in)]


def lead(person: Person) -> SignedIn:
    if person.role not in LEAD_ROLES:
        raise Forbidden("this is for leads and admins")
    return person


def admin(person: Person) -> SignedIn:
    if person.role != CoderRole.ADMIN:
        raise Forbidden("this is for admins")
    return person


def checked_form(person: Person, csrf: Annotated[str, Form()] = "") -> SignedIn:
    """A state-changing request by a signed-in person, with their session's CSRF token."""
    check_csrf(person, csrf)
    return person


def check_csrf(person: SignedIn, given: str) -> None:
    if not hmac.compare_digest(person.csrf_token, given):
        raise BadForm("this form has expired or did not come from the desk; nothing was done")


HalfSignedIn = Annotated[SignedIn, Depends(half_signed_in)]
Lead = Annotated[SignedIn, Depends(lead)]
Admin = Annotated[SignedIn, Depends(admin)]
Acting = Annotated[SignedIn, Depends(checked_form)]  # a person posting one of the desk's forms
# A row's id (or a case's number) in an address: the range of the databases' INTEGER, so
# a mangled address is refused as such instead of overflowing in the driver.
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class SecurityHeaders(BaseHTTPMiddleware):
    """Headers on every response: nothing cached (pages hold patient information),
    nothing sniffed, no referrer leaked, no remote resource loaded."""

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        return response
