"""The audit log, for admins: who saw or did what, filtered by person, action, case and
time, newest first, a page at a time. It shows the rows as they are (ids and short
words, never a case's text), and looking at it is a row of its own."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from consultant import audit
from consultant.db import session_scope, storable
from consultant.web.pages import render
from consultant.web.security import Admin, client_address
from consultant.web.sessions import SignedIn

router = APIRouter()

PAGE_SIZE = 100
MAX_FILTER_CHARS = 320  # an email address's longest; the filters go into the view's row
CASE_NUMBER = re.compile(r"#?(?:CC-)?(\d{1,9})", re.IGNORECASE)


class BadFilter(ValueError):
    """A filter the page cannot read; the message says what it takes."""


@router.get("/audit")
def audit_page(
    request: Request,
    person: Admin,
    actor: str = "",
    action: str = "",
    ticket: str = "",
    since: str = "",
    until: str = "",
    before: str = "",
) -> Response:
    typed = {"actor": actor, "action": action, "ticket": ticket, "since": since, "until": until}
    given = {name: storable(value).strip()[:MAX_FILTER_CHARS] for name, value in typed.items()}
    try:
        query = _query(given)
    except BadFilter as exc:
        return _page(request, person, given=given, error=str(exc), status_code=400)
    after = int(before) if before.isdigit() else None  # only the page's own link sets it
    with session_scope() as session:
        rows = audit.entries(session, **query, before=after, limit=PAGE_SIZE + 1)
        more, rows = len(rows) > PAGE_SIZE, rows[:PAGE_SIZE]
        shown = " ".join(f"{k}={v}" for k, v in given.items() if v)
        audit.record(
            session,
            actor=person.email,
            action="audit.viewed",
            address=client_address(request),
            detail=f"{shown} before={after or '-'} shown={len(rows)}".strip(),
        )
    next_page = urlencode({**given, "before": rows[-1]["id"]}) if more else ""
    return _page(request, person, given=given, rows=rows, next_page=next_page)


def _query(given: dict[str, str]) -> dict[str, Any]:
    """The filters as :func:`consultant.audit.entries` takes them."""
    try:
        since = audit.moment(given["since"]) if given["since"] else None
        until = audit.moment(given["until"], until=True) if given["until"] else None
    except ValueError as exc:
        raise BadFilter(f"Since and until take {exc}.") from None
    number = CASE_NUMBER.fullmatch(given["ticket"].strip())
    if given["ticket"] and number is None:
        raise BadFilter(f"Case takes a case number, like CC-12 or 12, not {given['ticket']!r}.")
    return {
        "since": since,
        "until": until,
        "actor": given["actor"],
        "action": given["action"],
        "ticket_id": int(number.group(1)) if number else None,
    }


def _page(
    request: Request,
    person: SignedIn,
    *,
    given: dict[str, str],
    rows: list[dict[str, Any]] | None = None,
    next_page: str = "",
    error: str = "",
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "audit.html.j2",
        {
            "person": person,
            "given": given,
            "rows": rows or [],
            "next_page": next_page,
            "error": error,
        },
        status_code=status_code,
    )
