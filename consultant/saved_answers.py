"""Saved answers: the text a coder sends for the hundredth time, filled in from the case.

A saved answer is a small Jinja2 template. Its variables come from the case in front of
the coder (:data:`VARIABLES`); it is rendered in a sandbox (no attribute tricks reach
Python) with undefined variables refused, and it is rendered against a sample case when
it is saved, so a template that cannot render never reaches a customer. Filling one in
only puts text in the answer box: the coder reads it, edits it and sends it as any answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from consultant import sandbox
from consultant.db import storable
from consultant.models import CodeLookup, Coder, SavedAnswer, Ticket

MAX_TITLE = 120
MAX_BODY = 20_000

# What a saved answer may use, with what each holds (for ``answers variables`` and the page).
VARIABLES = {
    "first_name": "the customer's first name, or 'there' when their email gave none",
    "name": "the customer's name as their email gave it, or their address",
    "reference": "the case's number, e.g. CC-12",
    "subject": "the case's subject",
    "codes": "one line per code found: the code and its description",
    "code_list": "the codes found, comma-separated",
    "coder_name": "the name of the coder sending the answer",
}

SAMPLE = {
    "first_name": "Dana",
    "name": "Dana Whitfield",
    "reference": "CC-1",
    "subject": "Modifier 25 with a preventive visit",
    "codes": "99214: office visit, established patient\nZ00.00: general adult exam",
    "code_list": "99214, Z00.00",
    "coder_name": "Sam Coder",
}


class SavedAnswerError(ValueError):
    """A saved answer cannot be saved, found or filled in; the message says why."""


def render_template(body: str, variables: dict[str, str]) -> str:
    """``body`` filled from ``variables``, or :class:`SavedAnswerError` naming the problem
    (the line of a syntax error, the unknown variable)."""
    try:
        return sandbox.render(body, variables)
    except sandbox.TemplateProblem as exc:
        known = ", ".join(sorted(VARIABLES))
        hint = f"; the variables are {known}" if "undefined" in exc.problem else ""
        raise SavedAnswerError(f"{exc}{hint}") from None


def add_saved_answer(
    session: Session, *, title: str, body: str, by: str, now: datetime
) -> SavedAnswer:
    title = _checked_title(title)
    if find(session, title) is not None:
        raise SavedAnswerError(f"there is already a saved answer called {title!r}")
    saved = SavedAnswer(
        title=title, body=_checked_body(body), created_by=by, created_at=now, updated_at=now
    )
    session.add(saved)
    session.flush()
    return saved


def update_saved_answer(session: Session, *, title: str, body: str, now: datetime) -> SavedAnswer:
    saved = existing(session, title)
    saved.body = _checked_body(body)
    saved.updated_at = now
    session.add(saved)
    return saved


def remove_saved_answer(session: Session, *, title: str) -> None:
    session.delete(existing(session, title))


def list_saved_answers(session: Session) -> list[SavedAnswer]:
    return list(session.exec(select(SavedAnswer).order_by(col(SavedAnswer.title))))


def find(session: Session, title: str) -> SavedAnswer | None:
    return session.exec(select(SavedAnswer).where(SavedAnswer.title == title.strip())).first()


def existing(session: Session, title: str) -> SavedAnswer:
    saved = find(session, title)
    if saved is None:
        raise SavedAnswerError(f"no saved answer called {title.strip()!r}")
    return saved


def fill_in(session: Session, *, saved_id: int, number: int, coder: Coder) -> str:
    """Saved answer ``saved_id`` written out for case ``number``, as ``coder`` sends it."""
    saved = session.get(SavedAnswer, saved_id)
    ticket = session.get(Ticket, number)
    if saved is None:
        raise SavedAnswerError("that saved answer no longer exists")
    if ticket is None:
        raise SavedAnswerError(f"no case CC-{number}")
    return render_template(saved.body, case_variables(session, ticket=ticket, coder=coder))


def case_variables(session: Session, *, ticket: Ticket, coder: Coder) -> dict[str, str]:
    lookups = session.exec(
        select(CodeLookup).where(CodeLookup.ticket_id == ticket.id).order_by(col(CodeLookup.id))
    ).all()
    codes = list({lookup.code: lookup for lookup in lookups}.values())  # each code once
    name = (ticket.requester_name or "").strip()
    return {
        "first_name": name.split()[0] if name else "there",
        "name": name or ticket.requester,
        "reference": ticket.reference,
        "subject": ticket.subject,
        "codes": "\n".join(_code_line(lookup) for lookup in codes),
        "code_list": ", ".join(lookup.code for lookup in codes),
        "coder_name": coder.name,
    }


def _code_line(lookup: CodeLookup) -> str:
    described = lookup.description or lookup.reason or lookup.status
    return f"{lookup.code}: {described}"


def _checked_title(title: str) -> str:
    title = " ".join(storable(title).split())
    if not title:
        raise SavedAnswerError("a saved answer needs a title")
    if len(title) > MAX_TITLE:
        raise SavedAnswerError(f"a title is at most {MAX_TITLE} characters")
    return title


def _checked_body(body: str) -> str:
    body = storable(body)
    if not body.strip():
        raise SavedAnswerError("a saved answer needs some text")
    if len(body) > MAX_BODY:
        raise SavedAnswerError(f"a saved answer is at most {MAX_BODY} characters")
    render_template(body, SAMPLE)  # refuse now what would fail in front of a customer
    return body


def describe(saved: SavedAnswer) -> dict[str, Any]:
    return {
        "title": saved.title,
        "body": saved.body,
        "created_by": saved.created_by,
        "updated_at": saved.updated_at.isoformat(),
    }
