"""Where Microsoft 365 or Google send an admin back after connecting a mailbox.

The admin's click on the mailboxes page (consultant/web/admin.py, a form with the
session's CSRF token) starts a connect and sends the browser to the provider's sign-in
with a plain redirect; the provider sends it back to ``/oauth/callback``, which finishes
the connect or shows why not. It is for admins and audited, refusals included. No
script is involved.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from consultant import audit
from consultant.config import Settings, get_settings
from consultant.db import session_scope
from consultant.mail.oauth_connect import ConnectRefused, finish_connect
from consultant.mail.oauth_providers import CALLBACK_PATH, providers
from consultant.models import utcnow
from consultant.web.pages import render
from consultant.web.security import PAGE_POLICY, Admin, client_address
from consultant.web.sessions import SignedIn

router = APIRouter()
MAX_CALLBACK_VALUE = 4096  # characters of a callback parameter the desk looks at


@router.get(CALLBACK_PATH)
def callback(
    request: Request,
    person: Admin,
    state: str = "",
    code: str = "",
    error: str = "",
    error_description: str = "",
) -> Response:
    """Where the provider sends the admin back, with a code or an error."""
    try:
        name = finish_connect(
            state=state[:MAX_CALLBACK_VALUE],
            code=code[:MAX_CALLBACK_VALUE],
            error=error[:MAX_CALLBACK_VALUE],
            error_description=error_description[:MAX_CALLBACK_VALUE],
            web_session_id=person.session_id,
            actor=person.email,
            now=utcnow(),
            settings=get_settings(),
        )
    except ConnectRefused as exc:
        return _refused(request, person, str(exc), status_code=400)
    with session_scope() as session:
        _audit(session, request, person, "admin.mailbox_connected", name)
    done = urlencode({"done": f"connected {name}"})
    return RedirectResponse(f"/admin/mailboxes?{done}", status_code=303)


def connect_policy(settings: Settings) -> str:
    """The page policy for a page with connect buttons: its forms may end at the
    providers' sign-in pages (browsers apply ``form-action`` to the redirect too)."""
    origins = sorted({_origin(p.authorize_url) for p in providers(settings) if p.configured})
    if not origins:
        return PAGE_POLICY
    return PAGE_POLICY.replace("form-action 'self'", f"form-action 'self' {' '.join(origins)}")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _refused(request: Request, person: SignedIn, reason: str, *, status_code: int) -> Response:
    with session_scope() as session:
        _audit(session, request, person, "admin.mailbox_connect_refused", reason)
    return render(
        request,
        "mailbox_connect_refused.html.j2",
        {"person": person, "message": reason},
        status_code=status_code,
    )


def _audit(session: Session, request: Request, person: SignedIn, action: str, detail: str) -> None:
    audit.record(
        session, actor=person.email, action=action, address=client_address(request), detail=detail
    )
