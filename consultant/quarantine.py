"""The emails intake set aside, as an admin reads them before releasing or deleting one.

A set-aside email failed processing, so it is suspect by definition: it is read here
from its raw bytes without trusting them. Headers and text go to the page as text (the
template escapes them); the HTML part, already sanitised at parse time, loses every
link and image as well, and the page shows it only in a sandboxed frame that runs and
fetches nothing; attachments are listed by name, type and size, never opened. An email
that cannot be parsed at all is shown as its source, as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nh3
from sqlalchemy import func
from sqlmodel import Session, col, select

from consultant.config import get_settings
from consultant.inbound import SET_ASIDE
from consultant.mail.parse import ParsedEmail, ParseError, parse_email, sanitise_html
from consultant.models import InboundEmail, InboundStatus

HEADER_BYTES = 64 * 1024  # enough for any header block a list needs to read
SOURCE_BYTES = 64 * 1024  # of the source shown on the page; the download has it all
PAGE = 50
SHOWN = (*SET_ASIDE, InboundStatus.DELETED)


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    next_after: int | None  # the ``after`` of the next page, when there is one


def list_set_aside(
    session: Session, *, status: str | None = None, after: int | None = None, limit: int = PAGE
) -> Page:
    """Failed, quarantined (and, asked for, deleted) emails, newest first, a page at a time
    by a keyset on the id. Only the head of each raw email is read, for From and Subject."""
    statuses = [status] if status in SHOWN else list(SET_ASIDE)
    head = func.substr(col(InboundEmail.raw), 1, HEADER_BYTES)
    query = (
        select(InboundEmail, head)
        .where(col(InboundEmail.status).in_(statuses))
        .order_by(col(InboundEmail.id).desc())
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(col(InboundEmail.id) < after)
    found = session.exec(query).all()
    rows = [_listed(inbound, bytes(raw_head)) for inbound, raw_head in found[:limit]]
    more = len(found) > limit
    return Page(rows, rows[-1]["id"] if more and rows else None)


def _listed(inbound: InboundEmail, raw_head: bytes) -> dict[str, Any]:
    try:
        headers = parse_email(raw_head, headers_only=True)
        sender, subject = headers.sender, headers.subject
    except ParseError:
        sender, subject = "", ""
    return {
        **_facts(inbound),
        "sender": sender or inbound.envelope_from or "",
        "subject": subject,
    }


def _facts(inbound: InboundEmail) -> dict[str, Any]:
    return {
        "id": inbound.id,
        "status": inbound.status,
        "stage": inbound.stage,
        "error": inbound.error,
        "attempts": inbound.attempts,
        "source": inbound.source,
        "size": inbound.size,
        "received_at": inbound.received_at,
        "deleted_at": inbound.deleted_at,
        "deleted_by": inbound.deleted_by,
        "deleted_reason": inbound.deleted_reason,
    }


def describe(inbound: InboundEmail) -> dict[str, Any]:
    """What an admin's release or deletion changes, for the audit row's before → after."""
    return {"status": str(inbound.status), "deleted_by": inbound.deleted_by}


def set_aside(session: Session, inbound_id: int) -> InboundEmail | None:
    """The email, if it is one this page shows (a processed one is a case's, not ours)."""
    inbound = session.get(InboundEmail, inbound_id)
    return inbound if inbound is not None and inbound.status in SHOWN else None


def read_safely(inbound: InboundEmail) -> dict[str, Any]:
    """The email as the page shows it: facts, headers, text, the HTML part made inert,
    attachments (name, type, size) and the start of its source. ``unreadable`` says why
    there is nothing but the source."""
    headers_only = inbound.size > get_settings().max_message_bytes
    try:
        parsed: ParsedEmail | None = parse_email(inbound.raw, headers_only=headers_only)
        unreadable = ""
    except ParseError as exc:
        parsed, unreadable = None, str(exc)
    source = inbound.raw[:SOURCE_BYTES].decode("utf-8", errors="replace").replace("\x00", "")
    return {
        **_facts(inbound),
        "unreadable": unreadable,
        "headers_only": headers_only,
        "headers": sorted(parsed.headers.items()) if parsed else [],
        "sender": parsed.sender if parsed else inbound.envelope_from or "",
        "subject": parsed.subject if parsed else "",
        "text": parsed.text if parsed else "",
        "has_html": bool(parsed and parsed.html),
        "attachments": [
            {"name": a.filename, "type": a.content_type, "size": len(a.content)}
            for a in (parsed.attachments if parsed else ())
        ],
        "source": source,
        "source_cut": inbound.size > SOURCE_BYTES,
    }


def inert_html(inbound: InboundEmail) -> str:
    """The HTML part with no link and no image left: a suspect email's markup, shown
    only inside a sandboxed frame whose policy forbids scripts and fetches besides."""
    try:
        parsed = parse_email(inbound.raw)
    except ParseError:
        return ""
    return inert(parsed.html) if parsed.html else ""


def inert(markup: str) -> str:
    """``markup`` through the desk's sanitiser, then without any link or image."""
    return nh3.clean(sanitise_html(markup), attribute_filter=_no_links_or_images)


def _no_links_or_images(element: str, attribute: str, value: str) -> str | None:
    return None if attribute in ("href", "src", "srcset", "background") else value
