"""Live pages: one server-sent event stream per open queue, fed by the events table.

Every change to a case — a new case or message, a claim, an assignment, an answer, a
status — is an event row; the stream looks at the newest event id every couple of
seconds (one indexed query per open page, never one per row) and says ``changed`` when
it moved. The page's small script (``static/live.js``) then fetches the page again and
swaps its content in. Without JavaScript the page simply stays as loaded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from sqlmodel import func, select
from starlette.concurrency import run_in_threadpool

from consultant.db import session_scope
from consultant.models import Event
from consultant.web.security import Person

router = APIRouter()

CHECK_SECONDS = 2.0
KEEPALIVE_CHECKS = 10  # a comment line now and then keeps proxies from closing the stream


def newest_event_id() -> int:
    with session_scope() as session:
        return session.exec(select(func.max(Event.id))).one() or 0


@router.get("/live")
async def live(request: Request, person: Person) -> StreamingResponse:
    return StreamingResponse(
        _changes(request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _changes(request: Request) -> AsyncIterator[str]:
    seen = await run_in_threadpool(newest_event_id)
    yield "retry: 5000\n\n"
    quiet = 0
    while not await request.is_disconnected():
        await asyncio.sleep(CHECK_SECONDS)
        newest = await run_in_threadpool(newest_event_id)
        if newest != seen:
            seen, quiet = newest, 0
            yield f"event: changed\ndata: {newest}\n\n"
        else:
            quiet += 1
            if quiet >= KEEPALIVE_CHECKS:
                quiet = 0
                yield ": still here\n\n"
