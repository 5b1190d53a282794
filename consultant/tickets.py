"""Read-only views of tickets, shaped for the CLI's ``--json`` and the dashboard."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from consultant.models import Attachment, CodeLookup, Message, OutboxEmail, Ticket


def ticket_summary(ticket: Ticket) -> dict[str, Any]:
    return {
        "number": ticket.id,
        "reference": ticket.reference,
        "subject": ticket.subject,
        "requester": ticket.requester,
        "status": ticket.status,
        "specialty": ticket.specialty,
        "created_at": ticket.created_at.isoformat(),
        "updated_at": ticket.updated_at.isoformat(),
    }


def list_tickets(session: Session, *, status: str | None = None) -> list[dict[str, Any]]:
    query = select(Ticket).order_by(col(Ticket.id))
    if status:
        query = query.where(Ticket.status == status)
    return [ticket_summary(ticket) for ticket in session.exec(query)]


def ticket_detail(session: Session, number: int) -> dict[str, Any] | None:
    """The ticket with its thread, its outgoing mail and the codes found in it."""
    ticket = session.get(Ticket, number)
    if ticket is None:
        return None
    messages = session.exec(
        select(Message).where(Message.ticket_id == number).order_by(col(Message.id))
    ).all()
    outbox = session.exec(
        select(OutboxEmail).where(OutboxEmail.ticket_id == number).order_by(col(OutboxEmail.id))
    ).all()
    lookups = session.exec(
        select(CodeLookup).where(CodeLookup.ticket_id == number).order_by(col(CodeLookup.id))
    ).all()
    return {
        **ticket_summary(ticket),
        "requester_name": ticket.requester_name,
        "messages": [_message(session, message) for message in messages],
        "outbox": [_outgoing(email) for email in outbox],
        "codes": [
            lookup.model_dump(exclude={"id", "ticket_id", "created_at"}) for lookup in lookups
        ],
    }


def _message(session: Session, message: Message) -> dict[str, Any]:
    attachments = session.exec(
        select(Attachment).where(Attachment.message_id == message.id).order_by(col(Attachment.id))
    ).all()
    return {
        "id": message.id,
        "direction": message.direction,
        "message_id": message.message_id,
        "sender": message.sender,
        "subject": message.subject,
        "body_text": message.body_text,
        "is_automatic": message.is_automatic,
        "created_at": message.created_at.isoformat(),
        "attachments": [
            {
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
            }
            for a in attachments
        ],
    }


def _outgoing(email: OutboxEmail) -> dict[str, Any]:
    return {
        "id": email.id,
        "kind": email.kind,
        "message_id": email.message_id,
        "recipient": email.recipient,
        "subject": email.subject,
        "status": email.status,
        "attempts": email.attempts,
        "last_error": email.last_error,
        "sent_at": email.sent_at.isoformat() if email.sent_at else None,
    }
