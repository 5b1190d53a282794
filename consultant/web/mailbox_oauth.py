"""Connecting a mailbox with Microsoft 365 or Google from the mailboxes page.

The admin's click (a form with the session's CSRF token) starts a connect and sends the
browser to the provider's sign-in with plain redirects; the provider sends it back to
``/oauth/callback``, which finishes the connect or shows why not. Both are for admins,
and both are audited, refusals included. No script is involved.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from consultant import audit
from consultant.config import Settings, get_settings
from consultant.db import session_scope
from consultant.mail.oauth_connect import ConnectRefused, finish_connect, start_connect
from consultant.mail.oauth_providers import CALLBACK_PATH, providers
from consultant.mailbox_settings import MailboxError, add_mailbox, describe_mailbox
from consultant.models import Mailbox, utcnow
from consultant.web.pages import render
from consultant.web.security import PAGE_POLICY, Admin, check_csrf, client_address
from consultant.web.sessions import SignedIn

router = APIRouter()
MAX_CALLBACK_VALUE = 4096  # characters of a callback parameter the desk looks at


@router.post("/admin/mailboxes/connect")
def connect_new_submit(
    request: Request,
    person: Admin,
    csrf: Annotated[str, Form()] = "",
    provider: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    username: Annotated[str, Form()] = "",
    host: Annotated[str, Form()] = "",
    port: Annotated[str, Form()] = "",
    security: Annotated[str, Form()] = "tls",
    folder: Annotated[str, Form()] = "INBOX",
) -> Response:
    """Set up a new mailbox that logs in with OAuth 2.0 and start connecting it."""
    check_csrf(person, csrf)
    settings = get_settings()
    with session_scope() as session:
        try:
            mailbox = add_mailbox(
                session,
                name=name,
                host=host,
                port=port,
                security=security,
                username=username,
                password="",
                folder=folder,
                auth="oauth",
                settings=settings,
            )
            url = start_connect(
                session,
                mailbox=mailbox,
                provider_key=provider,
                web_session_id=person.session_id,
                now=utcnow(),
                settings=settings,
            )
        except (MailboxError, ConnectRefused) as exc:
            session.rollback()
            problem = str(exc)
        else:
            detail = f"{mailbox.name}: {audit.changes({}, describe_mailbox(mailbox))}"
            _audit(session, request, person, "admin.mailbox_added", detail)
            detail = f"{mailbox.name} with {provider}"
            _audit(session, request, person, "admin.mailbox_connect_started", detail)
            return RedirectResponse(url, status_code=303)
    return _refused(request, person, problem, status_code=400)


@router.post("/admin/mailboxes/{mailbox_id}/connect")
def connect_submit(
    request: Request,
    person: Admin,
    mailbox_id: int,
    csrf: Annotated[str, Form()] = "",
    provider: Annotated[str, Form()] = "",
) -> Response:
    """Start connecting the mailbox: off to the provider's sign-in page."""
    check_csrf(person, csrf)
    with session_scope() as session:
        mailbox = session.get(Mailbox, mailbox_id)
        if mailbox is None:
            problem = "there is no such mailbox"
        else:
            try:
                url = start_connect(
                    session,
                    mailbox=mailbox,
                    provider_key=provider,
                    web_session_id=person.session_id,
                    now=utcnow(),
                    settings=get_settings(),
                )
            except ConnectRefused as exc:
                problem = f"{mailbox.name}: {exc}"
            else:
                detail = f"{mailbox.name} with {provider}"
                _audit(session, request, person, "admin.mailbox_connect_started", detail)
                return RedirectResponse(url, status_code=303)
    return _refused(request, person, problem, status_code=400)


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
