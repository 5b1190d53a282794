"""The queue: the cases a coder works through, most urgent first."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import col, select

from consultant import audit
from consultant.codes.specialty import SPECIALTIES
from consultant.db import session_scope, storable
from consultant.models import LEAD_ROLES, Coder, Plan, TicketStatus, utcnow
from consultant.sla import ClockState
from consultant.tickets import Cursor, codes_of, list_tickets, queue_counts
from consultant.web.pages import render
from consultant.web.security import Forbidden, Person, client_address
from consultant.web.sessions import SignedIn

router = APIRouter()

PAGE_SIZE = 50
VIEWS = {
    "mine": "Mine",
    "unassigned": "Unassigned",
    "at-risk": "At risk",
    "breached": "Breached",
    "all": "All",
}


@router.get("/")
def home() -> Response:
    return RedirectResponse("/queue", status_code=303)


@router.get("/queue")
def queue_page(
    request: Request,
    person: Person,
    view: str = "mine",
    status: str = "",
    specialty: str = "",
    plan: str = "",
    account: str = "",
    owner: str = "",
    after: str = "",
) -> Response:
    view = view if view in VIEWS else "mine"
    if view == "all" and person.role not in LEAD_ROLES:
        raise Forbidden("all cases are for leads and admins")
    cursor = Cursor.decode(after) if after else None
    with session_scope() as session:
        plans = list(session.exec(select(Plan.name).order_by(col(Plan.name))))
        coders = list(session.exec(select(Coder.email).order_by(col(Coder.email))))
        filters = {  # only what the lists offer; an account as typed, minus NULs
            "status": status if status in set(TicketStatus) else "",
            "specialty": specialty if specialty in SPECIALTIES else "",
            "plan": plan if plan in plans else "",
            "account": storable(account).strip()[:320],
            "owner": owner if owner in coders and person.role in LEAD_ROLES else "",
        }
        rows = list_tickets(
            session,
            now=utcnow(),
            status=filters["status"] or None,
            coder=_owner_filter(view, person) or filters["owner"] or None,
            unassigned=view == "unassigned",
            sla=_sla_filter(view),
            specialty=filters["specialty"] or None,
            plan=filters["plan"] or None,
            account=filters["account"] or None,
            after=cursor,
            limit=PAGE_SIZE + 1,
        )
        more, rows = len(rows) > PAGE_SIZE, rows[:PAGE_SIZE]
        badges = codes_of(session, [row["number"] for row in rows])
        counts = queue_counts(session, coder_id=person.coder_id)
        audit.record(
            session,
            actor=person.email,
            action="queue.viewed",
            address=client_address(request),
            detail=" ".join([f"view={view}", *(f"{k}={v}" for k, v in filters.items() if v)])
            + f" shown={len(rows)}",
        )
    last = rows[-1] if rows else None
    next_page = Cursor(_due(last["due_at"]), last["number"]).encode() if more and last else None
    return render(
        request,
        "queue.html.j2",
        {
            "person": person,
            "view": view,
            "views": {k: v for k, v in VIEWS.items() if k != "all" or person.role in LEAD_ROLES},
            "rows": rows,
            "badges": badges,
            "counts": counts,
            **filters,
            "filter_query": urlencode({"view": view, **{k: v for k, v in filters.items() if v}}),
            "statuses": [s.value for s in TicketStatus],
            "specialties": SPECIALTIES,
            "plans": plans,
            "coders": coders if person.role in LEAD_ROLES and view != "mine" else [],
            "next_page": next_page,
            "filtered": any(filters.values()) or bool(after),
        },
    )


def _owner_filter(view: str, person: SignedIn) -> str | None:
    """Whose cases the view lists: a coder's SLA views are of their own cases."""
    if view == "mine" or (view in ("at-risk", "breached") and person.role not in LEAD_ROLES):
        return person.email
    return None


def _sla_filter(view: str) -> str | None:
    return {"at-risk": ClockState.AT_RISK, "breached": ClockState.BREACHED}.get(view)


def _due(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
