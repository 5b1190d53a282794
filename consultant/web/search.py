"""Finding a case from any page: the search box in the header, results best first.

The page calls the same function as ``consultant tickets search``; what a coder may
find is what their queue shows them. Every search is in the audit log with its query.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from consultant import audit
from consultant.db import session_scope, storable
from consultant.models import LEAD_ROLES
from consultant.search import MAX_QUERY_CHARS, SearchPage, SearchQueryError, search_cases
from consultant.web.pages import render
from consultant.web.security import Person, client_address

router = APIRouter()


@router.get("/search")
def search_page(request: Request, person: Person, q: str = "", after: str = "") -> Response:
    page: SearchPage | None = None
    problem = ""
    everything = person.role in LEAD_ROLES
    if q.strip():
        with session_scope() as session:
            audit.record(
                session,
                actor=person.email,
                action="case.searched",
                address=client_address(request),
                detail=storable(q)[: MAX_QUERY_CHARS * 2],
            )
            try:
                page = search_cases(
                    session, q, coder_id=None if everything else person.coder_id, after=after
                )
            except SearchQueryError as exc:
                problem = str(exc)
    return render(
        request,
        "search.html.j2",
        {"person": person, "q": q, "page": page, "problem": problem, "everything": everything},
        status_code=400 if problem else 200,
    )
