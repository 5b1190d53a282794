"""The dashboard's application: routes of each page group, the errors every route may
raise and what the browser gets for them, and the headers every response carries.

``consultant web`` serves it with uvicorn; ``consultant run`` serves it too.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from consultant.web import (
    admin,
    admin_desk,
    audit_log,
    cases,
    live,
    mailbox_oauth,
    operations,
    presence,
    queue,
    reports,
    search,
    signin,
)
from consultant.web.api import create_api
from consultant.web.pages import render
from consultant.web.security import (
    BadForm,
    CodeNeeded,
    Forbidden,
    SecurityHeaders,
    SignInNeeded,
)

STATIC = Path(__file__).parent / "static"


def create_app() -> FastAPI:
    app = FastAPI(title="CaseConsultant", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/api/v1", create_api())  # its own errors (JSON) and OpenAPI document
    app.include_router(signin.router)
    app.include_router(queue.router)
    app.include_router(cases.router)
    app.include_router(live.router)
    app.include_router(presence.router)
    app.include_router(audit_log.router)
    app.include_router(search.router)
    app.include_router(reports.router)
    app.include_router(admin.router)
    app.include_router(operations.router)
    app.include_router(mailbox_oauth.router)
    app.include_router(admin_desk.router)
    app.add_exception_handler(SignInNeeded, _to_sign_in)  # type: ignore[arg-type]
    app.add_exception_handler(CodeNeeded, _to_code)  # type: ignore[arg-type]
    app.add_exception_handler(Forbidden, _forbidden)  # type: ignore[arg-type]
    app.add_exception_handler(BadForm, _bad_form)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _not_valid)  # type: ignore[arg-type]
    return app


async def _to_sign_in(request: Request, _: SignInNeeded) -> Response:
    if request.method == "GET":
        return RedirectResponse(f"/sign-in?next={request.url.path}", status_code=303)
    return RedirectResponse("/sign-in", status_code=303)


async def _to_code(request: Request, _: CodeNeeded) -> Response:
    return RedirectResponse("/sign-in/code", status_code=303)


async def _forbidden(request: Request, exc: Forbidden) -> Response:
    return render(request, "error.html.j2", {"message": str(exc)}, status_code=403)


async def _bad_form(request: Request, exc: BadForm) -> Response:
    return render(request, "error.html.j2", {"message": str(exc)}, status_code=403)


async def _not_valid(request: Request, exc: RequestValidationError) -> Response:
    """A mangled address or form (``/tickets/abc``, a number past any row's) gets the
    desk's page saying what is wrong, not a framework's JSON."""
    problems = "; ".join(
        f"{' '.join(str(part) for part in e['loc'])}: {e['msg']}" for e in exc.errors()
    )
    message = f"this address or form is not one the desk makes ({problems})"
    return render(request, "error.html.j2", {"message": message}, status_code=422)
