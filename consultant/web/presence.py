"""The case page's heartbeat: it says the page is still open (and whether its coder is
typing an answer) and gets back who else has the case open, as the fragment of the page
that shows them.

``static/presence.js`` posts it every few seconds with the session's CSRF token. A page
merely open sends the ``X-Live-Refresh`` header too: that heartbeat is not the coder at
work and keeps no unattended session signed in; one sent while they type an answer is,
and does (a long answer is not lost to the idle logoff). It writes no audit row: the
page's view was audited when it was shown.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from consultant import presence
from consultant.db import session_scope
from consultant.models import Ticket, utcnow
from consultant.web.pages import render
from consultant.web.security import Acting

router = APIRouter()


@router.post("/tickets/{number}/presence")
def heartbeat(
    request: Request, number: int, person: Acting, typing: Annotated[str, Form()] = ""
) -> Response:
    with session_scope() as session:
        if session.get(Ticket, number) is None:
            return Response("no such case", status_code=404, media_type="text/plain")
        present = presence.check_in(
            session, ticket_id=number, coder_id=person.coder_id, typing=typing == "1", now=utcnow()
        )
    return render(request, "presence.html.j2", {"present": present})
