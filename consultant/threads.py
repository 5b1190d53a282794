"""Which ticket does an email answer?

First by In-Reply-To and References against every Message-ID we know (RFC 5322 3.6.4),
then by the ticket number signed into our own Message-IDs (it survives a thread whose
rows are gone), and last by the ``[#CC-n]`` subject token — which only counts when the
sender already takes part in that ticket, so a stranger quoting someone else's number
cannot write into their case (a known failure of other help desks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlmodel import Session, col, select

from consultant.mail.compose import ticket_number_in
from consultant.models import Message, OutboxEmail, Ticket

SUBJECT_TOKEN = re.compile(r"\[#CC-(\d+)\]")


@dataclass(frozen=True)
class ThreadMatch:
    ticket_id: int | None
    foreign_reference: int | None = None  # a ticket number in the subject not the sender's


def find_thread(
    session: Session, *, referenced: list[str], subject: str, sender: str
) -> ThreadMatch:
    wanted = [message_id for message_id in referenced if message_id]
    ticket_id = _ticket_by_message_ids(session, wanted) or next(
        (n for n in map(ticket_number_in, wanted) if n is not None), None
    )
    if ticket_id is not None:
        return ThreadMatch(ticket_id)
    return _match_subject_token(session, subject=subject, sender=sender)


def _match_subject_token(session: Session, *, subject: str, sender: str) -> ThreadMatch:
    match = SUBJECT_TOKEN.search(subject)
    if match is None or not sender:
        return ThreadMatch(None)
    number = int(match.group(1))
    ticket = session.get(Ticket, number)
    if ticket is None:
        return ThreadMatch(None)
    if _takes_part(session, ticket, sender):
        return ThreadMatch(number)
    return ThreadMatch(None, foreign_reference=number)


def _ticket_by_message_ids(session: Session, wanted: list[str]) -> int | None:
    if not wanted:
        return None
    return (
        session.exec(
            select(Message.ticket_id).where(col(Message.message_id).in_(wanted)).limit(1)
        ).first()
        or session.exec(
            select(OutboxEmail.ticket_id).where(col(OutboxEmail.message_id).in_(wanted)).limit(1)
        ).first()
    )


def _takes_part(session: Session, ticket: Ticket, sender: str) -> bool:
    if ticket.requester.lower() == sender:
        return True
    return (
        session.exec(
            select(Message.id).where(Message.ticket_id == ticket.id, Message.sender == sender)
        ).first()
        is not None
    )
