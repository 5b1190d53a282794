"""Precedents: solved cases that asked about the same codes, with the answer they got.

Most questions a desk gets have been answered before (the hundredth 99601/99602 add-on
question); a coder who sees the earlier answer beside the case answers in a minute and
answers the same way. Matching is by the codes code intelligence found: the more codes a
solved case shares with this one, the better the match, then the more recent.

At a million cases a common code (99213) is in a large share of them, so each code looks
only at its most recent solved cases (:data:`RECENT_PER_CODE`, an index walk on
``(code, ticket_id)``) and the ranking is done on those few hundred.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlmodel import Session, col, select

from consultant.models import CodeLookup, Message, Ticket, TicketStatus

RECENT_PER_CODE = 200
MOST_CODES = 12  # a case listing dozens of codes is matched on its first few
ANSWER_PREVIEW = 600


@dataclass(frozen=True)
class Precedent:
    number: int
    reference: str
    subject: str
    shared_codes: list[str]
    answered_by: str
    answer: str  # the last answer the customer got, shortened


def precedents_for(session: Session, number: int, *, limit: int = 5) -> list[Precedent]:
    """Up to ``limit`` solved cases sharing codes with case ``number``, best first."""
    codes = _codes_of(session, number)[:MOST_CODES]
    shared: dict[int, set[str]] = {}
    for code in codes:
        for other in _recent_solved_with(session, code, excluding=number):
            shared.setdefault(other, set()).add(code)
    ranked = sorted(shared, key=lambda other: (len(shared[other]), other), reverse=True)
    found = []
    for other in ranked:
        answer = _last_answer(session, other)
        if answer is None:  # solved without an answer (a duplicate, spam): nothing to learn
            continue
        ticket = session.get(Ticket, other)
        assert ticket is not None
        found.append(
            Precedent(
                number=other,
                reference=ticket.reference,
                subject=ticket.subject,
                shared_codes=[code for code in codes if code in shared[other]],
                answered_by=answer.sender,
                answer=_shortened(answer.body_text),
            )
        )
        if len(found) == limit:
            break
    return found


def _codes_of(session: Session, number: int) -> list[str]:
    """The case's codes, the ones mentioned most first."""
    rows = session.exec(select(CodeLookup.code).where(CodeLookup.ticket_id == number)).all()
    return [code for code, _ in Counter(rows).most_common()]


def _recent_solved_with(session: Session, code: str, *, excluding: int) -> list[int]:
    query = (
        select(CodeLookup.ticket_id)
        .join(Ticket, col(Ticket.id) == col(CodeLookup.ticket_id))
        .where(
            CodeLookup.code == code,
            CodeLookup.ticket_id != excluding,
            col(Ticket.status).in_([TicketStatus.SOLVED, TicketStatus.CLOSED]),
        )
        .order_by(col(CodeLookup.ticket_id).desc())
        .limit(RECENT_PER_CODE)
    )
    return list(dict.fromkeys(session.exec(query)))


def _last_answer(session: Session, number: int) -> Message | None:
    query = (
        select(Message)
        .where(
            Message.ticket_id == number,
            Message.direction == "out",
            col(Message.coder_id).is_not(None),
        )
        .order_by(col(Message.id).desc())
        .limit(1)
    )
    return session.exec(query).first()


def _shortened(text: str) -> str:
    text = text.strip()
    if len(text) <= ANSWER_PREVIEW:
        return text
    return text[:ANSWER_PREVIEW].rsplit(" ", 1)[0] + " …"
