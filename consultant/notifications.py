"""Telling coders and leads about cases: a line per cause, an email per person per while.

A notification names the case (its number, subject and a link to it) and why it needs
the person — never the case's text, which is patient information and stays on the desk.
It goes to a coder's address only, never a customer's. Lines wait while the person is
outside their working hours, and whatever waits for one person goes out as one email,
at most one every ``CONSULTANT_NOTIFY_MINUTES``: a lead hears of twenty unroutable
cases in one digest, not twenty emails.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from consultant.config import get_settings
from consultant.db import insert_ignoring_duplicates
from consultant.mail.compose import compose
from consultant.models import Coder, Mailbox, Notification, OutboxEmail, Ticket, utcnow
from consultant.replies import one_line, render, store

KINDS = {
    "sla.at_risk": "at risk",
    "sla.breached": "breached",
    "routing.waiting": "waiting for an owner",
    "mailbox.consent_revoked": "consent revoked: the desk stopped reading it",
}
TARGET_WORDS = {"first_response": "first response", "resolution": "resolution"}


class Notices:
    """Lines gathered over a batch of work (the sweep's clocks) and queued in one
    statement; the same ``key`` is queued once, whoever asks again."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._rows: list[dict[str, object]] = []
        self._leads: list[Coder] | None = None

    def add(
        self,
        *,
        coder: Coder,
        ticket: Ticket | None,
        kind: str,
        key: str,
        mailbox: Mailbox | None = None,
    ) -> None:
        self._rows.append(
            {
                "coder_id": coder.id,
                "ticket_id": ticket.id if ticket else None,
                "mailbox_id": mailbox.id if mailbox else None,
                "kind": kind,
                "key": f"{key}:{coder.id}",
                "created_at": utcnow(),
            }
        )

    def add_for_leads(self, *, ticket: Ticket, kind: str, key: str) -> None:
        from consultant.routing.assign import leads

        if self._leads is None:
            self._leads = leads(self._session)
        for lead in self._leads:
            self.add(coder=lead, ticket=ticket, kind=kind, key=key)

    def queue(self) -> None:
        if self._rows:
            table = Notification.__table__  # type: ignore[attr-defined]
            self._session.execute(insert_ignoring_duplicates(self._session, table), self._rows)
            self._rows = []


def notify(session: Session, *, coder: Coder, ticket: Ticket | None, kind: str, key: str) -> None:
    """Queue one line for ``coder``."""
    notices = Notices(session)
    notices.add(coder=coder, ticket=ticket, kind=kind, key=key)
    notices.queue()


def notify_leads(session: Session, *, ticket: Ticket, kind: str, key: str) -> None:
    notices = Notices(session)
    notices.add_for_leads(ticket=ticket, kind=kind, key=key)
    notices.queue()


def deliver(session: Session, *, now: datetime) -> list[int]:
    """Send what waits for each person who is at work now and was not emailed within the
    interval: one email each. The outbox ids queued."""
    from consultant.routing.assign import working_hours

    # Taken SKIP LOCKED: a second sweep at the same moment leaves these lines to this
    # one instead of composing the same digest again.
    waiting = session.exec(
        select(Notification)
        .where(col(Notification.sent_at).is_(None))
        .order_by(col(Notification.id))
        .with_for_update(skip_locked=True)
    ).all()
    by_coder: dict[int, list[Notification]] = {}
    for line in waiting:
        by_coder.setdefault(line.coder_id, []).append(line)
    interval = timedelta(minutes=get_settings().notify_minutes)
    queued = []
    for coder_id, lines in by_coder.items():
        coder = session.get(Coder, coder_id)
        if coder is None or not coder.active:
            _mark(session, lines, None, now)  # nobody to tell any more
            continue
        if not working_hours(coder).is_open(now) or coder.is_away(now):
            continue
        if coder.last_notified_at and now - coder.last_notified_at < interval:
            continue
        email = _send(session, coder, lines, now=now)
        queued.append(email.id)
    return [i for i in queued if i is not None]


def _send(
    session: Session, coder: Coder, lines: Sequence[Notification], *, now: datetime
) -> OutboxEmail:
    ids = {line.ticket_id for line in lines if line.ticket_id is not None}
    tickets = {t.id: t for t in session.exec(select(Ticket).where(col(Ticket.id).in_(ids)))}
    boxes = {line.mailbox_id for line in lines if line.mailbox_id is not None}
    mailboxes = {m.id: m for m in session.exec(select(Mailbox).where(col(Mailbox.id).in_(boxes)))}
    notices = [
        _mailbox_notice(line, mailboxes[line.mailbox_id])
        if line.mailbox_id in mailboxes
        else _notice(line, tickets.get(line.ticket_id))
        for line in lines
    ]
    subject = (
        f"{notices[0]['reference']} {notices[0]['what']}"
        if len(notices) == 1
        else f"{len(notices)} cases need you"
    )
    text, html = render(session, "notice", {"name": coder.name, "notices": notices})
    message = compose(
        ticket_id=None,
        recipient=coder.email,
        subject=one_line(f"[{get_settings().desk_name}] {subject}"),
        text=text,
        html=html,
        in_reply_to=None,
        references=(),
    )
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: a reply to it opens no case
    email = store(
        session,
        ticket=None,
        kind="notice",
        key=f"notice:{coder.id}:{lines[0].id}:{lines[-1].id}",
        message=message,
        automatic=False,
    )
    session.flush()
    _mark(session, lines, email.id, now)
    coder.last_notified_at = now
    session.add(coder)
    return email


def _notice(line: Notification, ticket: Ticket | None) -> dict[str, str]:
    kind, _, target = line.kind.partition(":")
    what = KINDS.get(kind, kind)
    if target:
        what = f"{TARGET_WORDS.get(target, target)} {what}"
    if kind == "routing.waiting" and ticket is not None:
        what = f"{what} ({ticket.specialty})"
    if ticket is not None and ticket.due_at is not None and kind == "sla.at_risk":
        what = f"{what}, due {ticket.due_at:%Y-%m-%d %H:%M} UTC"
    return {
        "reference": ticket.reference if ticket else "",
        "subject": one_line(ticket.subject) if ticket else "",
        "what": what,
        "link": f"{get_settings().web_url}/tickets/{ticket.id}"
        if ticket
        else get_settings().web_url,
        "needs": "a case needs you",
    }


def _mailbox_notice(line: Notification, mailbox: Mailbox) -> dict[str, str]:
    """A line about a mailbox (its consent revoked): for admins, linking to the page
    where they connect it again."""
    return {
        "reference": mailbox.name,
        "subject": "",
        "what": KINDS.get(line.kind, line.kind),
        "link": f"{get_settings().web_url}/admin/mailboxes",
        "needs": "a mailbox needs you",
    }


def _mark(
    session: Session, lines: Sequence[Notification], outbox_id: int | None, now: datetime
) -> None:
    for line in lines:
        line.sent_at = now
        line.outbox_id = outbox_id
        session.add(line)
