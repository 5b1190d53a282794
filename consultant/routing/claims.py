"""Claims: a coder holds a case while working on it, for a lease of minutes.

Claiming makes the coder the case's owner and holds it for ``CONSULTANT_CLAIM_MINUTES``;
another coder's claim meanwhile is refused with who holds it and until when. The lease
ends when its holder answers, releases it, or lets it run out (the escalation sweep then
records that it expired; until then an expired lease simply no longer counts). A lead
assigns a case to someone else outright, claim or none.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from consultant.config import get_settings
from consultant.db import storable
from consultant.models import LEAD_ROLES, Coder, Event, Ticket, TicketStatus
from consultant.routing.assign import assign, is_available

CLAIMABLE = frozenset({TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING})


class ClaimError(Exception):
    """A claim, release or assignment that cannot be done; the message says why."""


class ClaimRefused(ClaimError):
    """Someone else holds the case."""


def find_coder(session: Session, email: str) -> Coder:
    email = storable(email).strip().lower()
    coder = session.exec(select(Coder).where(Coder.email == email)).first()
    if coder is None:
        raise ClaimError(f"no coder {email} (see consultant coders list)")
    return coder


def holder(session: Session, ticket: Ticket, now: datetime) -> Coder | None:
    """Who holds the case now, if anyone: a lease past its time holds nothing."""
    if ticket.claimed_by_id is None or ticket.claim_expires_at is None:
        return None
    if ticket.claim_expires_at <= now:
        return None
    return session.get(Coder, ticket.claimed_by_id)


def lock_ticket(session: Session, number: int) -> Ticket:
    ticket = session.exec(select(Ticket).where(Ticket.id == number).with_for_update()).first()
    if ticket is None:
        raise ClaimError(f"no ticket CC-{number}")
    return ticket


def claim(session: Session, number: int, *, by: str, now: datetime) -> Ticket:
    """``by`` takes the case and holds it for the lease; refused while another holds it."""
    ticket = lock_ticket(session, number)
    coder = find_coder(session, by)
    if ticket.status not in CLAIMABLE:
        raise ClaimError(
            f"{ticket.reference} is {ticket.status}; only unfinished cases are claimed"
        )
    if not is_available(coder, now):
        raise ClaimError(f"{coder.email} is away or inactive and cannot take cases")
    current = holder(session, ticket, now)
    if current is not None and current.id != coder.id:
        until = f"{ticket.claim_expires_at:%Y-%m-%d %H:%M} UTC"
        raise ClaimRefused(f"{ticket.reference} is claimed by {current.email} until {until}")
    renewed = current is not None
    assign(session, ticket, coder, reason=f"claimed by {coder.email}", actor=coder.email, now=now)
    ticket.claimed_by_id = coder.id
    ticket.claim_expires_at = now + timedelta(minutes=get_settings().claim_minutes)
    session.add(ticket)
    until = f"{ticket.claim_expires_at:%Y-%m-%d %H:%M} UTC"
    kind = "claim.renewed" if renewed else "claim.taken"
    session.add(Event(ticket_id=ticket.id, actor=coder.email, kind=kind, detail=f"until {until}"))
    return ticket


def release(session: Session, number: int, *, by: str, now: datetime) -> Ticket:
    """The holder lets go of the lease; the case stays theirs."""
    ticket = lock_ticket(session, number)
    coder = find_coder(session, by)
    current = holder(session, ticket, now)
    if current is None or current.id != coder.id:
        raise ClaimError(f"{ticket.reference} is not claimed by {coder.email}")
    end_claim(session, ticket, kind="claim.released", actor=coder.email, reason="released")
    return ticket


def end_claim(session: Session, ticket: Ticket, *, kind: str, actor: str, reason: str) -> None:
    """Whatever lease the ticket had is over (``kind``: released, answered, expired)."""
    if ticket.claimed_by_id is None:
        return
    ticket.claimed_by_id = None
    ticket.claim_expires_at = None
    session.add(ticket)
    session.add(Event(ticket_id=ticket.id, actor=actor, kind=kind, detail=reason))


def refuse_if_held_by_another(
    session: Session, ticket: Ticket, coder: Coder, now: datetime
) -> None:
    """An answer from someone who does not hold a claimed case would cross the holder's."""
    current = holder(session, ticket, now)
    if current is not None and current.id != coder.id:
        until = f"{ticket.claim_expires_at:%Y-%m-%d %H:%M} UTC"
        raise ClaimRefused(f"{ticket.reference} is claimed by {current.email} until {until}")


def reassign(session: Session, number: int, *, to: str, by: str, now: datetime) -> Ticket:
    """A lead (or admin) gives the case to ``to``, ending any claim on it."""
    ticket = lock_ticket(session, number)
    lead = find_coder(session, by)
    if lead.role not in LEAD_ROLES or not lead.active:
        raise ClaimError(f"{lead.email} is a {lead.role}; only a lead or an admin assigns cases")
    coder = find_coder(session, to)
    if ticket.status not in CLAIMABLE:
        raise ClaimError(
            f"{ticket.reference} is {ticket.status}; only unfinished cases are assigned"
        )
    if not is_available(coder, now):
        raise ClaimError(f"{coder.email} is away or inactive and cannot take cases")
    end_claim(
        session, ticket, kind="claim.ended", actor=lead.email, reason=f"assigned to {coder.email}"
    )
    assign(session, ticket, coder, reason=f"assigned by {lead.email}", actor=lead.email, now=now)
    return ticket


def expire_claims(session: Session, *, now: datetime) -> int:
    """Record the end of every lease that ran out; how many."""
    query = (
        select(Ticket)
        .where(col(Ticket.claim_expires_at) <= now)
        .order_by(col(Ticket.id))
        .with_for_update(skip_locked=True)
    )
    expired = list(session.exec(query).all())
    for ticket in expired:
        end_claim(
            session, ticket, kind="claim.expired", actor="routing", reason="the lease ran out"
        )
    return len(expired)
