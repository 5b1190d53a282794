"""Signing in and out of the dashboard."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Annotated, TypeVar
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from consultant.db import session_scope
from consultant.models import utcnow
from consultant.sign_in_links import LinkRefused, coder_for, use_link
from consultant.web.pages import render
from consultant.web.security import (
    Acting,
    HalfSignedIn,
    check_csrf,
    check_sign_in_token,
    client_address,
    session_cookie,
    set_session_cookie,
    set_sign_in_token,
)
from consultant.web.sessions import (
    SignedIn,
    SignInRefused,
    enrolment_qr,
    enrolment_uri,
    give_code,
    new_secret,
    open_session,
    sign_in,
    sign_out,
)

router = APIRouter()
T = TypeVar("T")


@router.get("/sign-in")
def sign_in_page(request: Request, next: str = "/") -> Response:
    return _form(request, next=next)


@router.post("/sign-in")
def sign_in_submit(
    request: Request,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
    token: Annotated[str, Form()] = "",
) -> Response:
    check_sign_in_token(request, token)
    address = client_address(request)
    signed, refused = _attempt(
        lambda s: sign_in(s, email=email, password=password, address=address, now=utcnow())
    )
    if signed is None:
        return _form(request, next=next, email=email, error=refused, status_code=401)
    response = RedirectResponse(_local(next), status_code=303)
    set_session_cookie(response, signed[0])
    return response


@router.get("/sign-in/link/{link}")
def link_page(request: Request, link: str) -> Response:
    """Only the form: opening the link (as a mail scanner does) does not use it up."""
    with session_scope() as session:
        try:
            email = coder_for(session, token=link, now=utcnow()).email
        except LinkRefused as exc:
            return render(request, "error.html.j2", {"message": str(exc)}, status_code=410)
    return _link_form(request, link=link, email=email)


@router.post("/sign-in/link/{link}")
def link_submit(
    request: Request,
    link: str,
    password: Annotated[str, Form()] = "",
    repeat: Annotated[str, Form()] = "",
    token: Annotated[str, Form()] = "",
) -> Response:
    """Choose a password with a one-time link, and be signed in."""
    check_sign_in_token(request, token)
    address = client_address(request)
    with session_scope() as session:
        try:
            email = coder_for(session, token=link, now=utcnow()).email
        except LinkRefused as exc:
            return render(request, "error.html.j2", {"message": str(exc)}, status_code=410)
        try:
            if password != repeat:
                raise LinkRefused("The two passwords differ.")
            coder = use_link(session, token=link, password=password, address=address, now=utcnow())
        except LinkRefused as exc:
            problem = str(exc)
        else:
            cookie, _ = open_session(
                session, coder=coder, address=address, now=utcnow(), how="link"
            )
            response = RedirectResponse("/queue", status_code=303)
            set_session_cookie(response, cookie)
            return response
    return _link_form(request, link=link, email=email, error=problem, status_code=400)


@router.get("/sign-in/code")
def code_page(request: Request, person: HalfSignedIn) -> Response:
    if not person.needs_code:
        return RedirectResponse("/queue", status_code=303)
    return _code_form(request, person, secret=None if person.enrolled else new_secret())


@router.post("/sign-in/code")
def code_submit(
    request: Request,
    person: HalfSignedIn,
    csrf: Annotated[str, Form()] = "",
    code: Annotated[str, Form()] = "",
    secret: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(person, csrf)
    address = client_address(request)
    _, refused = _attempt(
        lambda s: give_code(
            s, person=person, code=code, secret=secret or None, address=address, now=utcnow()
        )
    )
    if refused:
        enrolling = None if person.enrolled else secret or new_secret()
        return _code_form(request, person, secret=enrolling, error=refused, status_code=401)
    return RedirectResponse("/queue", status_code=303)


@router.post("/sign-out")
def sign_out_submit(request: Request, person: Acting) -> Response:
    with session_scope() as session:
        sign_out(
            session,
            token=request.cookies.get(session_cookie(), ""),
            address=client_address(request),
            now=utcnow(),
        )
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(session_cookie(), path="/")
    return response


def _attempt(step: Callable[[Session], T]) -> tuple[T | None, str]:
    """Run a sign-in step in a transaction that keeps its audit rows even when the step
    is refused: its result, or ``None`` and the refusal to show."""
    with session_scope() as session:
        try:
            return step(session), ""
        except SignInRefused as exc:
            return None, str(exc)


def _form(
    request: Request, *, next: str, email: str = "", error: str = "", status_code: int = 200
) -> Response:
    token = secrets.token_urlsafe(24)
    page = render(
        request,
        "sign_in.html.j2",
        {"next": _local(next), "email": email, "error": error, "token": token},
        status_code=status_code,
    )
    set_sign_in_token(page, token)
    return page


def _link_form(
    request: Request, *, link: str, email: str, error: str = "", status_code: int = 200
) -> Response:
    token = secrets.token_urlsafe(24)
    page = render(
        request,
        "sign_in_link.html.j2",
        {"link": link, "email": email, "error": error, "token": token},
        status_code=status_code,
    )
    set_sign_in_token(page, token)
    return page


def _code_form(
    request: Request,
    person: SignedIn,
    *,
    secret: str | None,
    error: str = "",
    status_code: int = 200,
) -> Response:
    """The second step: a code, or (``secret``) enrolling an authenticator first."""
    return render(
        request,
        "sign_in_code.html.j2",
        {
            "person": person,
            "secret": secret,
            "uri": enrolment_uri(secret, person.email) if secret else "",
            "qr": enrolment_qr(enrolment_uri(secret, person.email)) if secret else "",
            "error": error,
        },
        status_code=status_code,
    )


def _local(target: str) -> str:
    """Only a path of this desk: a sign-in link cannot send anyone elsewhere."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target
