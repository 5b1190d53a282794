"""The case page and what a coder does from it: claim, release, answer (from a saved
answer, with a preview), move, note; a lead also assigns, refunds and releases held cases.

Each route checks the role, calls one domain function (consultant/casework.py, the same
the ``consultant tickets`` commands call), writes the audit row in the same transaction
and renders. A refused action shows the case again with the reason, and an answer that
was refused keeps its draft.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session, col, select

from consultant import audit, casework, dispatch, presence, saved_answers
from consultant.db import session_scope
from consultant.models import (
    LEAD_ROLES,
    Account,
    Attachment,
    Coder,
    Message,
    Ticket,
    TicketStatus,
    utcnow,
)
from consultant.precedents import precedents_for
from consultant.quota import quota_summary
from consultant.replies import Preview
from consultant.routing.claims import ClaimError, claim, find_coder, reassign, release
from consultant.tickets import earlier_cases, marked_text, ticket_detail
from consultant.web.pages import render
from consultant.web.security import Acting, Forbidden, Person, RowId, client_address
from consultant.web.sessions import SignedIn

router = APIRouter()

# The HTML part of an email, inside the page's sandboxed frame: sanitised at intake
# (consultant/mail/parse.py), and here nothing may run or be fetched whatever got past.
MESSAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
AFTER_ANSWER = (TicketStatus.PENDING, TicketStatus.SOLVED, TicketStatus.OPEN)
MOVES = (TicketStatus.PENDING, TicketStatus.OPEN, TicketStatus.NEW, TicketStatus.CLOSED)


@router.get("/tickets/{number}")
def case_page(request: Request, number: RowId, person: Person, done: str = "") -> Response:
    return _show(request, number, person, notice=done)


@router.get("/tickets/{number}/messages/{message_id}/html")
def message_html(number: RowId, message_id: RowId, person: Person) -> Response:
    with session_scope() as session:
        message = session.get(Message, message_id)
    if message is None or message.ticket_id != number or not message.body_html:
        return Response("no such message", status_code=404, media_type="text/plain")
    return Response(
        message.body_html,
        media_type="text/html",
        headers={"Content-Security-Policy": MESSAGE_POLICY},
    )


@router.get("/attachments/{attachment_id}")
def attachment(request: Request, attachment_id: RowId, person: Person) -> Response:
    """Always a download, never shown inline: a PDF or HTML file from a stranger is
    opened by the coder's own viewer, not by the desk's page."""
    with session_scope() as session:
        found = session.get(Attachment, attachment_id)
        message = session.get(Message, found.message_id) if found else None
        if found is None or message is None:
            return Response("no such attachment", status_code=404, media_type="text/plain")
        audit.record(
            session,
            actor=person.email,
            action="attachment.downloaded",
            address=client_address(request),
            ticket_id=message.ticket_id,
            detail=f"attachment {attachment_id}",
        )
    return Response(
        found.content,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(found.filename)}",
            "X-Content-Type-Options": "nosniff",
        },
    )


# --- actions ------------------------------------------------------------------------


@router.post("/tickets/{number}/claim")
def claim_case(request: Request, number: RowId, person: Acting) -> Response:
    return _act(
        request,
        number,
        person,
        "case.claimed",
        lambda s: claim(s, number, by=person.email, now=utcnow()),
    )


@router.post("/tickets/{number}/release")
def release_case(request: Request, number: RowId, person: Acting) -> Response:
    return _act(
        request,
        number,
        person,
        "case.released",
        lambda s: release(s, number, by=person.email, now=utcnow()),
    )


@router.post("/tickets/{number}/status")
def move_case(
    request: Request, number: RowId, person: Acting, to: Annotated[str, Form()] = ""
) -> Response:
    return _act(
        request,
        number,
        person,
        f"case.status:{to}",
        lambda s: casework.set_status(s, number, to=to, by=person.email, now=utcnow()),
    )


@router.post("/tickets/{number}/assign")
def assign_case(
    request: Request, number: RowId, person: Acting, to: Annotated[str, Form()] = ""
) -> Response:
    _leads_only(person, "assigning cases")
    return _act(
        request,
        number,
        person,
        f"case.assigned:{to}",
        lambda s: reassign(s, number, to=to, by=person.email, now=utcnow()),
    )


@router.post("/tickets/{number}/note")
def note_case(
    request: Request, number: RowId, person: Acting, text: Annotated[str, Form()] = ""
) -> Response:
    return _act(
        request,
        number,
        person,
        "case.noted",
        lambda s: casework.add_note(s, number, by=person.email, text=text, now=utcnow()),
    )


@router.post("/tickets/{number}/answer")
def answer_case(
    request: Request,
    number: RowId,
    person: Acting,
    text: Annotated[str, Form()] = "",
    then: Annotated[str, Form()] = TicketStatus.PENDING,
    seen: Annotated[int, Form()] = 0,
) -> Response:
    """Queue the answer, unless the thread moved since the page was loaded: then the
    page comes back with the new messages and the draft, to send anyway or edit."""
    address = client_address(request)
    problem, queued = "", 0
    with session_scope() as session:
        try:
            outgoing = casework.answer(
                session,
                number,
                by=person.email,
                text=text,
                then=then if then in AFTER_ANSWER else TicketStatus.PENDING,
                now=utcnow(),
                seen_message_id=seen,
            )
        except casework.AlreadySent:
            return RedirectResponse(f"/tickets/{number}?done=sent", status_code=303)
        except casework.Collision as exc:
            newer = [m.id for m in exc.newer]
            problem, stopped = str(exc), True
        except casework.CaseError as exc:
            problem, stopped, newer = str(exc), False, []
        else:
            session.flush()  # the outbox row's id, for the record and the worker
            audit.record(
                session,
                actor=person.email,
                action="case.answered",
                address=address,
                ticket_id=number,
                detail=f"outbox {outgoing.id}, then {then}",
            )
            queued = outgoing.id
    if not problem:
        dispatch.outbox_queued([queued] if queued else [])  # after the commit: sent now
        return RedirectResponse(f"/tickets/{number}?done=sent", status_code=303)
    return _show(
        request,
        number,
        person,
        error=problem,
        draft=text,
        collision=newer if stopped else [],
        seen=None if stopped else seen,  # after a collision, what was read is now seen
        status_code=409,
    )


@router.post("/tickets/{number}/answer/preview")
def preview_answer(
    request: Request,
    number: RowId,
    person: Acting,
    text: Annotated[str, Form()] = "",
    seen: Annotated[int, Form()] = 0,
) -> Response:
    """The answer as the customer will get it, above the draft; nothing is sent."""
    with session_scope() as session:
        try:
            shown, problem = casework.preview(session, number, text=text), ""
        except casework.CaseError as exc:
            shown, problem = None, str(exc)
    return _show(request, number, person, error=problem, draft=text, seen=seen, preview=shown)


@router.post("/tickets/{number}/saved-answer")
def use_saved_answer(
    request: Request,
    number: RowId,
    person: Acting,
    saved: Annotated[int, Form()] = 0,
    text: Annotated[str, Form()] = "",
    seen: Annotated[int, Form()] = 0,
) -> Response:
    """Put a saved answer, filled in for this case, into the answer box after the draft."""
    with session_scope() as session:
        try:
            coder = find_coder(session, person.email)
            filled = saved_answers.fill_in(session, saved_id=saved, number=number, coder=coder)
        except (saved_answers.SavedAnswerError, ClaimError) as exc:
            problem = str(exc)
        else:
            problem = ""
            audit.record(
                session,
                actor=person.email,
                action="case.saved_answer_used",
                address=client_address(request),
                ticket_id=number,
                detail=f"saved answer {saved}",
            )
    if problem:
        return _show(request, number, person, error=problem, draft=text, seen=seen)
    draft = f"{text.rstrip()}\n\n{filled}" if text.strip() else filled
    return _show(request, number, person, draft=draft, seen=seen)


@router.post("/tickets/{number}/refund")
def refund_case(
    request: Request, number: RowId, person: Acting, reason: Annotated[str, Form()] = ""
) -> Response:
    _leads_only(person, "refunding a case")
    return _act(
        request,
        number,
        person,
        "case.refunded",
        lambda s: casework.refund(s, number, by=person.email, reason=reason),
    )


@router.post("/tickets/{number}/release-held")
def release_held_case(
    request: Request, number: RowId, person: Acting, override: Annotated[str, Form()] = ""
) -> Response:
    _leads_only(person, "releasing a held case")
    return _act(
        request,
        number,
        person,
        "case.hold_released",
        lambda s: casework.release_held(s, number, by=person.email, override_reason=override),
    )


def _leads_only(person: SignedIn, what: str) -> None:
    if person.role not in LEAD_ROLES:
        raise Forbidden(f"{what} is for leads and admins")


def _act(
    request: Request,
    number: int,
    person: SignedIn,
    action: str,
    change: Callable[[Session], object],
) -> Response:
    with session_scope() as session:
        try:
            change(session)
        except (casework.CaseError, ClaimError) as exc:
            problem = str(exc)
        else:
            audit.record(
                session,
                actor=person.email,
                action=action,
                address=client_address(request),
                ticket_id=number,
            )
            done = action.split(":")[0].removeprefix("case.")
            return RedirectResponse(f"/tickets/{number}?done={done}", status_code=303)
    return _show(request, number, person, error=problem, status_code=409)


# --- the page -----------------------------------------------------------------------


def _show(
    request: Request,
    number: int,
    person: SignedIn,
    *,
    notice: str = "",
    error: str = "",
    draft: str = "",
    seen: int | None = None,
    preview: Preview | None = None,
    collision: list[int] | None = None,
    status_code: int = 200,
) -> Response:
    """The case page. ``seen``: the newest message the person had in front of them when
    they started the draft, carried through previews so a later send still notices
    anything that arrived since."""
    with session_scope() as session:
        case = ticket_detail(session, number, now=utcnow())
        if case is None:
            return render(request, "error.html.j2", {"message": "no such case"}, status_code=404)
        audit.record(
            session,
            actor=person.email,
            action="case.viewed",
            address=client_address(request),
            ticket_id=number,
        )
        context = _page_context(session, case, person)
        context["present"] = presence.check_in(  # who else has it open, as it is shown
            session, ticket_id=number, coder_id=person.coder_id, typing=False, now=utcnow()
        )
        context["beat_seconds"] = presence.BEAT_SECONDS
    if seen:
        context["seen"] = seen
    return render(
        request,
        "case.html.j2",
        {
            **context,
            "preview": preview,
            "notice": notice,
            "error": error,
            "draft": draft,
            "collision": collision or [],
        },
        status_code=status_code,
    )


def _page_context(session: Session, case: dict[str, Any], person: SignedIn) -> dict[str, Any]:
    coders = []
    if person.role in LEAD_ROLES:
        query = select(Coder.email).where(col(Coder.active).is_(True)).order_by(col(Coder.email))
        coders = list(session.exec(query))
    seen = max((m["id"] for m in case["messages"]), default=0)
    notes = [e for e in case["events"] if e["kind"] == casework.NOTE]
    ticket = session.get(Ticket, case["number"])
    assert ticket is not None
    account = session.get(Account, ticket.account_id) if ticket.account_id else None
    return {
        "marked": {
            m["id"]: marked_text(
                m["body_text"],
                [c for c in case["codes"] if c["message_id"] == m["id"] and c["source"] == "body"],
            )
            for m in case["messages"]
        },
        "account": quota_summary(session, account, now=utcnow()) if account else None,
        "earlier": earlier_cases(session, ticket),
        "precedents": precedents_for(session, ticket.id),  # type: ignore[arg-type]
        "saved_answers": saved_answers.list_saved_answers(session),
        "is_lead": person.role in LEAD_ROLES,
        "notes": notes,
        "person": person,
        "case": case,
        "seen": seen,
        "coders": coders,
        "after_answer": AFTER_ANSWER,
        "moves": MOVES,
        "attachments": _attachment_ids(session, case),
    }


def _attachment_ids(session: Session, case: dict[str, Any]) -> dict[str, int]:
    """Each attachment's id by its SHA-256 and message, for the download links."""
    message_ids = [m["id"] for m in case["messages"]]
    query = select(Attachment.id, Attachment.message_id, Attachment.sha256).where(
        col(Attachment.message_id).in_(message_ids)
    )
    return {f"{message_id}:{digest}": row_id for row_id, message_id, digest in session.exec(query)}
