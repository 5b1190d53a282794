"""The JSON API (``/api/v1``, its OpenAPI document at ``/api/v1/openapi.json``).

A program calls it with a personal access token (``Authorization: Bearer cc_…``,
consultant/api_tokens.py) and acts as that token's coder: the same domain functions as
the dashboard and the command line, the same role checks, each call in the audit log.
Errors are JSON with a stable ``code`` a program can branch on, and a ``message`` for
the person reading its log. Each token may make ``CONSULTANT_API_CALLS_PER_MINUTE``
calls a minute; past that it gets 429 with ``Retry-After``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlmodel import Session, select
from starlette.exceptions import HTTPException

from consultant import audit, casework, dispatch
from consultant.api_tokens import Caller, caller_for
from consultant.codes.analysis import analyse
from consultant.codes.show import show_code
from consultant.codes.store import cached_catalog
from consultant.config import get_settings
from consultant.db import session_scope, storable
from consultant.models import LEAD_ROLES, Account, TicketStatus, utcnow
from consultant.quota import accounts_after, quota_summary
from consultant.reports.figures import run_report
from consultant.reports.query import read_query
from consultant.routing.claims import ClaimError, reassign
from consultant.tickets import Cursor, list_tickets, ticket_detail
from consultant.web.security import RowId, client_address

PAGE_LIMIT = 200
MAX_TEXT = 100_000
MAX_CODE = 20


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


# --- rate limit ---------------------------------------------------------------------


class CallsPerMinute:
    """A sliding window of each token's calls in this process."""

    def __init__(self) -> None:
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait_for(self, token: str, *, limit: int, now: float) -> float:
        """0 if the call may go ahead (and it is counted), else the seconds to wait."""
        with self._lock:
            calls = self._calls.setdefault(token, deque())
            while calls and calls[0] <= now - 60:
                calls.popleft()
            if len(calls) >= limit:
                return calls[0] + 60 - now
            calls.append(now)
            return 0.0


_LIMIT = CallsPerMinute()


# --- who calls ----------------------------------------------------------------------


def _caller(request: Request) -> Caller:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    with session_scope() as session:
        found = (
            caller_for(session, token=token.strip(), now=utcnow()) if scheme == "Bearer" else None
        )
        if found is None:
            audit.record(session, actor="", action="api.refused", address=client_address(request))
    if found is None:
        raise ApiError(401, "unauthorized", "a valid token is needed: Authorization: Bearer …")
    wait = _LIMIT.wait_for(
        found.token_hash, limit=get_settings().api_calls_per_minute, now=time.monotonic()
    )
    if wait:
        raise ApiError(
            429, "rate_limited", "too many calls; try again later", retry_after=math.ceil(wait)
        )
    return found


def _needs(scope: str) -> Callable[..., Caller]:
    def check(request: Request, caller: Annotated[Caller, Depends(_caller)]) -> Caller:
        if not caller.may(scope):
            with session_scope() as session:
                _record(session, request, caller, "api.forbidden", detail=scope)
            raise ApiError(403, "forbidden", f"this token lacks the {scope} scope")
        return caller

    return check


Reader = Annotated[Caller, Depends(_needs("tickets:read"))]
Writer = Annotated[Caller, Depends(_needs("tickets:write"))]


def _record(
    session: Session,
    request: Request,
    caller: Caller,
    action: str,
    *,
    ticket_id: int | None = None,
    detail: str = "",
) -> None:
    audit.record(
        session,
        actor=caller.email,
        action=action,
        address=client_address(request),
        ticket_id=ticket_id,
        detail=" ".join(filter(None, [f"token {caller.token_id}", detail])),
    )


def _is_lead(caller: Caller) -> bool:
    return caller.role in LEAD_ROLES or "admin" in caller.scopes


# --- requests -----------------------------------------------------------------------


class AnswerIn(BaseModel):
    text: str = Field(max_length=MAX_TEXT)
    then: Literal["pending", "solved", "open"] = "pending"
    seen_message_id: int | None = Field(
        default=None,
        description="The newest message the answer was written after: "
        "given, the answer is refused (409 collision) when the thread has grown since.",
    )


class NoteIn(BaseModel):
    text: str = Field(max_length=MAX_TEXT)


class AssignIn(BaseModel):
    to: str = Field(max_length=320, description="The coder's address.")


class StatusIn(BaseModel):
    to: Literal["pending", "open", "new", "closed"]


class ExtractIn(BaseModel):
    text: str = Field(max_length=MAX_TEXT)
    as_of: date | None = Field(default=None, description="The day the case arrived.")


# --- the application ------------------------------------------------------------------

router = APIRouter()


def create_api() -> FastAPI:
    api = FastAPI(
        title="CaseConsultant API",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    api.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    api.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    api.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    api.include_router(router)
    return api


@router.get("/tickets", summary="Cases, most urgent first, with the queue's filters")
def tickets(
    request: Request,
    caller: Reader,
    status: TicketStatus | None = None,
    specialty: Annotated[str | None, Query(max_length=100)] = None,
    plan: Annotated[str | None, Query(max_length=100)] = None,
    account: Annotated[str | None, Query(max_length=320)] = None,
    owner: Annotated[str | None, Query(max_length=320)] = None,
    unassigned: bool = False,
    sla: Literal["at-risk", "breached"] | None = None,
    after: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT)] = 50,
) -> dict[str, Any]:
    """A coder lists their own cases (``owner`` = their address) or the unassigned ones;
    a lead or an admin token lists any. ``next`` is the ``after`` of the next page."""
    if not _is_lead(caller) and not unassigned and owner != caller.email:
        raise ApiError(
            403, "forbidden", "a coder lists their own cases (owner=you) or unassigned ones"
        )
    cursor = Cursor.decode(after) if after else None
    if after and cursor is None:
        raise ApiError(422, "invalid", "after: not a cursor this API gave")
    with session_scope() as session:
        rows = list_tickets(
            session,
            now=utcnow(),
            status=status,
            coder=owner,
            unassigned=unassigned,
            sla=sla,
            specialty=specialty,
            plan=plan,
            account=account,
            after=cursor,
            limit=limit + 1,
        )
        more, rows = len(rows) > limit, rows[:limit]
        _record(session, request, caller, "api.tickets_listed", detail=f"shown={len(rows)}")
    last = rows[-1] if rows and more else None
    return {"tickets": rows, "next": _cursor_after(last) if last else None}


@router.get("/tickets/{number}", summary="One case: thread, codes, SLA clocks, events")
def ticket(request: Request, caller: Reader, number: RowId) -> dict[str, Any]:
    with session_scope() as session:
        case = ticket_detail(session, number, now=utcnow())
        if case is not None:
            _record(session, request, caller, "case.viewed", ticket_id=number)
    if case is None:
        raise ApiError(404, "not_found", f"no case CC-{number}")
    return case


@router.post("/tickets/{number}/answer", status_code=201, summary="Send an answer")
def answer(request: Request, caller: Writer, number: RowId, body: AnswerIn) -> dict[str, Any]:
    """Queued and sent at once; refused (409 ``collision``, with the new messages' ids)
    when ``seen_message_id`` is given and the thread has grown since."""
    with session_scope() as session:
        try:
            outgoing = casework.answer(
                session,
                number,
                by=caller.email,
                text=body.text,
                then=body.then,
                now=utcnow(),
                seen_message_id=body.seen_message_id,
            )
        except casework.Collision as exc:
            newer = [m.id for m in exc.newer]
            raise ApiError(409, "collision", str(exc), newer_message_ids=newer) from None
        except casework.CaseError as exc:
            raise ApiError(409, "refused", str(exc)) from None
        session.flush()
        outbox_id = outgoing.id
        _record(
            session,
            request,
            caller,
            "case.answered",
            ticket_id=number,
            detail=f"outbox {outbox_id}",
        )
    dispatch.outbox_queued([outbox_id] if outbox_id else [])  # after the commit
    return {"outbox_id": outbox_id}


@router.post("/tickets/{number}/note", status_code=201, summary="Add an internal note")
def note(request: Request, caller: Writer, number: RowId, body: NoteIn) -> dict[str, Any]:
    with session_scope() as session:
        _refused_as_409(
            lambda: casework.add_note(
                session, number, by=caller.email, text=body.text, now=utcnow()
            )
        )
        _record(session, request, caller, "case.noted", ticket_id=number)
    return {"noted": True}


@router.post("/tickets/{number}/assign", summary="Give a case to a coder (leads and admins)")
def assign(request: Request, caller: Writer, number: RowId, body: AssignIn) -> dict[str, Any]:
    if not _is_lead(caller):
        raise ApiError(403, "forbidden", "assigning cases is for leads and admins")
    with session_scope() as session:
        _refused_as_409(
            lambda: reassign(session, number, to=body.to, by=caller.email, now=utcnow())
        )
        _record(session, request, caller, "case.assigned", ticket_id=number, detail=body.to)
    return {"assigned": body.to}


@router.post("/tickets/{number}/status", summary="Move a case without writing to the customer")
def status(request: Request, caller: Writer, number: RowId, body: StatusIn) -> dict[str, Any]:
    with session_scope() as session:
        _refused_as_409(
            lambda: casework.set_status(session, number, to=body.to, by=caller.email, now=utcnow())
        )
        _record(session, request, caller, "case.status", ticket_id=number, detail=body.to)
    return {"status": body.to}


@router.get("/accounts/{address}/quota", summary="An account's plan and this month's cases")
def account_quota(request: Request, caller: Reader, address: str) -> dict[str, Any]:
    with session_scope() as session:
        query = select(Account).where(Account.address == storable(address).lower())
        account = session.exec(query).first()
        if account is not None:
            _record(session, request, caller, "api.quota_viewed", detail=account.address)
            return quota_summary(session, account, now=utcnow())
    raise ApiError(404, "not_found", f"no account {address}")


@router.get("/accounts", summary="Accounts with their plan and this month's cases (leads)")
def accounts(
    request: Request,
    caller: Reader,
    after: Annotated[str | None, Query(max_length=320)] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT)] = 50,
) -> dict[str, Any]:
    """By address; ``next`` is the ``after`` of the next page. For lead, admin and
    ``admin``-scoped tokens: a coder sees the account of a case on the case."""
    if not _is_lead(caller):
        raise ApiError(403, "forbidden", "the list of accounts is for leads and admins")
    now = utcnow()
    with session_scope() as session:
        found = accounts_after(session, after=storable(after) if after else None, limit=limit + 1)
        rows = [quota_summary(session, account, now=now) for account in found[:limit]]
        _record(session, request, caller, "api.accounts_listed", detail=f"shown={len(rows)}")
    more = len(found) > limit
    return {"accounts": rows, "next": rows[-1]["account"] if more and rows else None}


@router.get("/codes/{code}", summary="One code: system, description, validity on a date")
def code_lookup(
    request: Request,
    caller: Reader,
    code: Annotated[str, Path(min_length=1, max_length=MAX_CODE)],
    as_of: Annotated[
        date | None,
        Query(description="The date of service: checked by the release in effect then."),
    ] = None,
) -> dict[str, Any]:
    """Each reading of the code (``J1100`` may be HCPCS or ICD-10-CM): its description,
    whether it is valid on ``as_of`` (default today) by the release in effect on that
    day, and the codes it heads."""
    day = as_of or date.today()
    with session_scope() as session:
        readings = show_code(session, cached_catalog(session), storable(code), day)
        _record(session, request, caller, "api.code_looked_up", detail=storable(code))
    if not readings:
        raise ApiError(404, "not_found", f"{code}: not in any loaded code system")
    return {"code": code, "as_of": day.isoformat(), "readings": readings}


@router.get("/reports/{name}", summary="A report: volume, speed, people, quota or codes")
def report(
    request: Request,
    caller: Reader,
    name: Literal["volume", "speed", "people", "quota", "codes"],
    since: Annotated[str, Query(max_length=20, description="First UTC day, 2026-12-01")] = "",
    until: Annotated[str, Query(max_length=20, description="Last UTC day, included")] = "",
    plan: Annotated[str, Query(max_length=100)] = "",
    specialty: Annotated[str, Query(max_length=100)] = "",
    account: Annotated[str, Query(max_length=320)] = "",
    interval: Annotated[str, Query(max_length=10, description="day, week or month")] = "",
    by: Annotated[str, Query(max_length=10, description="plan, specialty or account")] = "",
) -> dict[str, Any]:
    """For leads and admins, as on the reports page: the figures as of the rollups' last
    refresh (``refreshed_at``), each table's rows under ``tables``."""
    if not _is_lead(caller):
        raise ApiError(403, "forbidden", "reports are for leads and admins")
    now = utcnow()
    with session_scope() as session:
        asked = read_query(
            session,
            today=now.date(),
            since=since,
            until=until,
            plan=plan,
            specialty=specialty,
            account=account,
            interval=interval,
            by=by,
        )
        if asked.problems:
            problems = "; ".join(f"{key}: {text}" for key, text in asked.problems.items())
            raise ApiError(422, "invalid", problems)
        shown = run_report(session, name, asked.query, now=now)
        q = shown.query
        _record(
            session, request, caller, "api.report_viewed", detail=f"{name} {q.since}..{q.until}"
        )
    return shown.as_dict()


@router.post("/codes/extract", summary="Find and check the medical codes in a text")
def extract(request: Request, caller: Reader, body: ExtractIn) -> dict[str, Any]:
    with session_scope() as session:
        catalog = cached_catalog(session)
        _record(session, request, caller, "api.codes_extracted")
    return analyse([("text", body.text)], catalog, body.as_of or date.today()).as_dict()


def _cursor_after(row: dict[str, Any]) -> str:
    due = datetime.fromisoformat(row["due_at"]) if row["due_at"] else None
    return Cursor(due, row["number"]).encode()


def _refused_as_409(action: Callable[[], object]) -> None:
    try:
        action()
    except (casework.CaseError, ClaimError) as exc:
        raise ApiError(409, "refused", str(exc)) from None


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    headers = {"Retry-After": str(exc.extra["retry_after"])} if "retry_after" in exc.extra else {}
    content = {"error": {"code": exc.code, "message": exc.message, **exc.extra}}
    return JSONResponse(content, status_code=exc.status, headers=headers)


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()
    )
    return JSONResponse(
        {"error": {"code": "invalid", "message": problems or "the request is not valid"}},
        status_code=422,
    )


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
    return JSONResponse(
        {"error": {"code": code, "message": str(exc.detail)}}, status_code=exc.status_code
    )
