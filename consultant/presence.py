"""Who else has a case open, and who is typing an answer to it.

Two coders answering the same case is wasted work at best; the collision guard stops
the second answer, and presence tells them before they start. A case page says it is
open when it is shown and then every ``BEAT_SECONDS`` (its heartbeat), typing or not;
an entry not renewed within ``STALE_SECONDS`` no longer counts (FreeScout's 25 s), and
one not renewed within ``FORGET_AFTER`` is deleted by the next heartbeat, so the table
holds about as many rows as there are open case pages.

A heartbeat is neither a view of the case (the page's one ``case.viewed`` audit row is
that) nor the coder at work: it keeps no session from its idle logoff.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from consultant.db import insert_ignoring_duplicates
from consultant.models import CasePresence, Coder

BEAT_SECONDS = 5  # how often an open case page says so
STALE_SECONDS = 25  # an entry not renewed for this long is gone
TYPING_SECONDS = 10  # "typing" lasts this long after the last heartbeat that said so
FORGET_AFTER = timedelta(minutes=10)
TABLE = CasePresence.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Present:
    """Someone else on the case page, as the page shows them."""

    name: str
    email: str
    typing: bool


def beat(session: Session, *, ticket_id: int, coder_id: int, typing: bool, now: datetime) -> None:
    """This coder has the case open now (and is typing an answer, if ``typing``)."""
    _forget_old(session, now=now)
    changes: dict[str, datetime] = {"seen_at": now} | ({"typing_at": now} if typing else {})
    renewed = session.execute(
        update(TABLE)
        .where(TABLE.c.ticket_id == ticket_id, TABLE.c.coder_id == coder_id)
        .values(**changes)
    )
    if renewed.rowcount == 0:  # the page's first heartbeat (two tabs: the second is ignored)
        row = {"ticket_id": ticket_id, "coder_id": coder_id, "typing_at": None} | changes
        session.execute(insert_ignoring_duplicates(session, TABLE).values(**row))


def check_in(
    session: Session, *, ticket_id: int, coder_id: int, typing: bool, now: datetime
) -> list[Present]:
    """A heartbeat, answered with who else is on the case: what a case page does when
    it is shown and every few seconds after."""
    beat(session, ticket_id=ticket_id, coder_id=coder_id, typing=typing, now=now)
    return others(session, ticket_id=ticket_id, coder_id=coder_id, now=now)


def others(session: Session, *, ticket_id: int, coder_id: int, now: datetime) -> list[Present]:
    """Everyone but this coder whose page of the case is open, by name."""
    query = (
        select(Coder.name, Coder.email, CasePresence.typing_at)
        .join(Coder, col(Coder.id) == CasePresence.coder_id)
        .where(
            CasePresence.ticket_id == ticket_id,
            CasePresence.coder_id != coder_id,
            col(CasePresence.seen_at) > now - timedelta(seconds=STALE_SECONDS),
        )
        .order_by(col(Coder.name))
    )
    typing_since = now - timedelta(seconds=TYPING_SECONDS)
    return [
        Present(name=name, email=email, typing=typing_at is not None and typing_at > typing_since)
        for name, email, typing_at in session.exec(query)
    ]


def _forget_old(session: Session, *, now: datetime) -> None:
    """Delete pages not heard of for ``FORGET_AFTER``: one indexed range, usually empty.
    It runs before the heartbeat's own write, so that two heartbeats lock rows in the
    same order and never wait for each other in a circle."""
    session.execute(delete(TABLE).where(TABLE.c.seen_at < now - FORGET_AFTER))
