"""The desk's outgoing emails as an admin words them: a version of a template's text or
HTML part kept in the database, used instead of the packaged file.

An admin's version is a Jinja2 template rendered in the sandbox (consultant/sandbox.py)
with the variables of its kind (:data:`KINDS`). It is refused when saved if it uses a
variable its kind does not have or does not render against the kind's sample; and
should one still fail when an email is composed (a value the sample did not have, a row
changed in the database by hand), the email goes out with the packaged template instead
and an audit row (``template.fallback``, by ``desk``) says which part failed and why,
shown on ``/admin/templates``. A broken template never reaches a customer.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from consultant import audit, sandbox
from consultant.config import get_settings
from consultant.db import storable
from consultant.models import EmailTemplate

log = logging.getLogger(__name__)

MAX_BODY = 50_000
MAX_AUDIT_DIFF = 2_000
PARTS = {"text": "txt", "html": "html"}  # part → the packaged file's middle name
FALLBACK = "template.fallback"
COMMON = {
    "desk_name": "the desk's name (CONSULTANT_DESK_NAME)",
    "desk_address": "the desk's email address",
}
_NAME = {"name": "the customer's name as their email gave it (may be empty)"}
_CASE = {"reference": "the case's number, e.g. CC-12", "subject": "the email's subject"}
_SAMPLE_CASE = {
    "name": "Dana Whitfield",
    "reference": "CC-1",
    "subject": "Modifier 25 with a preventive visit",
}
_SAMPLE_SUBJECT = "Re: Modifier 25 with a preventive visit [#CC-1]"


@dataclass(frozen=True)
class Kind:
    """One email the desk sends: what it is for, its variables and a sample case."""

    label: str
    when: str
    variables: dict[str, str]
    sample: dict[str, Any]
    subject: str = _SAMPLE_SUBJECT  # the sample's subject (the desk sets it, not the template)


KINDS = {
    "ack": Kind(
        "Acknowledgement",
        "a new case was opened",
        {
            **_NAME,
            **_CASE,
            "sla_hours": "hours promised to the first answer",
            "hours_kind": "'business hours' or 'hours'",
            "due": "when the answer is due, in the customer's zone (may be empty)",
            "remaining": "cases left this month (none: no limit)",
            "resets_on": "the day the monthly count starts again",
        },
        {
            **_SAMPLE_CASE,
            "sla_hours": 24,
            "hours_kind": "business hours",
            "due": "Tuesday, December 8 at 11:00 EST",
            "remaining": 41,
            "resets_on": "January 1, 2027",
        },
    ),
    "answer": Kind(
        "Answer",
        "a coder answers a case",
        {"reference": _CASE["reference"], "answer": "the coder's answer"},
        {
            "reference": "CC-1",
            "answer": "Report 99214-25 with the preventive visit: the "
            "problem-oriented part is separately identifiable.",
        },
    ),
    "over_quota": Kind(
        "Over quota",
        "a case arrived after the plan's cases for the month were used up",
        {
            **_NAME,
            **_CASE,
            "plan": "the plan's name",
            "limit": "the plan's cases a month",
            "resets_on": "the day the monthly count starts again",
        },
        {**_SAMPLE_CASE, "plan": "clinic", "limit": 20, "resets_on": "January 1, 2027"},
    ),
    "not_registered": Kind(
        "Not registered",
        "an email came from an address with no account",
        {**_NAME, **_CASE},
        {**_SAMPLE_CASE, "reference": None},
        subject="Re: Modifier 25 with a preventive visit",
    ),
    "too_large": Kind(
        "Too large",
        "an email was over the size limit",
        {**_NAME, **_CASE, "limit": "the size limit, e.g. 30 MB"},
        {**_SAMPLE_CASE, "reference": None, "limit": "30 MB"},
        subject="Re: Modifier 25 with a preventive visit",
    ),
    "solved": Kind(
        "Solved",
        "a coder marks a case solved",
        {"reference": _CASE["reference"]},
        {"reference": "CC-1"},
    ),
    "notice": Kind(
        "Notice to a coder",
        "cases need a coder or lead (a digest)",
        {
            "name": "the coder's name",
            "notices": "the cases: each has reference, what, subject and link",
        },
        {
            "name": "Sam Coder",
            "notices": [
                {
                    "reference": "CC-1",
                    "what": "first response at risk",
                    "subject": "Modifier 25 with a preventive visit",
                    "link": "http://127.0.0.1:8000/tickets/1",
                }
            ],
        },
        subject="[{desk_name}] CC-1 first response at risk",
    ),
}


class EmailTemplateError(ValueError):
    """Parts that cannot be saved; ``problems`` maps each part to what is wrong."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{part}: {why}" for part, why in problems.items()))
        self.problems = problems


@dataclass(frozen=True)
class Preview:
    subject: str
    text: str
    html: str
    problems: dict[str, str] = field(default_factory=dict)


# --- reading ------------------------------------------------------------------------


def packaged(kind: str, part: str) -> str:
    """The file template of ``kind``'s ``part`` (the override folder's, else the desk's)."""
    settings = get_settings()
    name = f"{_kind(kind)}.{PARTS[part]}.j2"
    folders = [settings.template_overrides / "email"] if settings.template_overrides else []
    for folder in [*folders, settings.templates_dir / "email"]:
        if (folder / name).is_file():
            return (folder / name).read_text(encoding="utf-8")
    raise EmailTemplateError({part: f"no packaged template {name}"})  # pragma: no cover


def stored(session: Session, kind: str) -> dict[str, str]:
    """The admin's versions of ``kind``'s parts: part → body (one indexed query)."""
    rows = session.exec(select(EmailTemplate).where(EmailTemplate.kind == kind)).all()
    return {row.part: row.body for row in rows}


def overview(session: Session) -> list[dict[str, Any]]:
    """Every kind with its parts as in force now (the admin's or the packaged), for the page."""
    rows = session.exec(select(EmailTemplate)).all()
    custom = {(row.kind, row.part): row for row in rows}
    shown = []
    for name, kind in KINDS.items():
        parts = {}
        for part in PARTS:
            row = custom.get((name, part))
            parts[part] = {
                "body": row.body if row else packaged(name, part),
                "custom": row is not None,
                "changed": f"{row.changed_by}, {row.changed_at:%Y-%m-%d %H:%M} UTC" if row else "",
            }
        shown.append(
            {
                "kind": name,
                "label": kind.label,
                "when": kind.when,
                "variables": {**kind.variables, **COMMON},
                "parts": parts,
            }
        )
    return shown


def fallbacks(session: Session, *, limit: int = 5) -> list[dict[str, Any]]:
    """The latest emails that went out with the packaged template because the admin's failed."""
    return audit.entries(session, actor="desk", action=FALLBACK, limit=limit)


# --- checking and previewing --------------------------------------------------------


def preview(kind: str, bodies: Mapping[str, str]) -> Preview:
    """``bodies`` (part → template) filled from ``kind``'s sample case, with the problems
    of the parts that do not render instead of their text."""
    filled: dict[str, str] = {}
    problems: dict[str, str] = {}
    for part, body in bodies.items():
        try:
            filled[part] = _checked(kind, part, body)[1]
        except sandbox.TemplateProblem as exc:
            problems[part] = str(exc)
    subject = KINDS[_kind(kind)].subject.replace("{desk_name}", get_settings().desk_name)
    return Preview(subject, filled.get("text", ""), filled.get("html", ""), problems)


def _checked(kind: str, part: str, body: str) -> tuple[str, str]:
    """The body as kept (line ends made ``\\n``, no NUL) and as the sample renders it."""
    body = storable(body).replace("\r\n", "\n").replace("\r", "\n")
    if not body.strip():
        raise sandbox.TemplateProblem("an email needs some text (reset to default instead)")
    if len(body) > MAX_BODY:
        raise sandbox.TemplateProblem(f"at most {MAX_BODY} characters, not {len(body)}")
    sandbox.refuse_unknown(body, [*KINDS[_kind(kind)].variables, *COMMON])
    return body, sandbox.render(body, sample_context(kind), html=part == "html")


def sample_context(kind: str) -> dict[str, Any]:
    settings = get_settings()
    return {
        "desk_name": settings.desk_name,
        "desk_address": settings.desk_address,
        **KINDS[_kind(kind)].sample,
    }


# --- changing -----------------------------------------------------------------------


def save(
    session: Session, *, kind: str, bodies: Mapping[str, str], actor: str, now: datetime
) -> str:
    """Keep ``bodies`` (part → template) as ``kind``'s parts, each checked to render
    first (:class:`EmailTemplateError` names each part that does not); a part the same as
    the packaged one is kept as no version of the admin's. What changed, for the audit."""
    checked: dict[str, str] = {}
    problems: dict[str, str] = {}
    for part, body in bodies.items():
        if part not in PARTS:
            problems[part] = "not a part of an email (text, html)"
            continue
        try:
            checked[part] = _checked(kind, part, body)[0]
        except sandbox.TemplateProblem as exc:
            problems[part] = str(exc)
    if problems:
        raise EmailTemplateError(problems)
    rows = {
        r.part: r for r in session.exec(select(EmailTemplate).where(EmailTemplate.kind == kind))
    }
    changes = []
    for part, body in checked.items():
        row = rows.get(part)
        before = row.body if row else packaged(kind, part)
        if body == packaged(kind, part):
            if row is not None:
                session.delete(row)
        elif row is None:
            session.add(
                EmailTemplate(kind=kind, part=part, body=body, changed_by=actor, changed_at=now)
            )
        else:
            row.body, row.changed_by, row.changed_at = body, actor, now
            session.add(row)
        if body != before:
            changes.append(f"{part}: {_diff(before, body)}")
    return f"{kind}: {'; '.join(changes) or 'no change'}"


def reset(session: Session, *, kind: str) -> str:
    """Back to the packaged templates for ``kind``; what changed, for the audit."""
    changes = []
    for row in session.exec(select(EmailTemplate).where(EmailTemplate.kind == _kind(kind))):
        changes.append(f"{row.part}: {_diff(row.body, packaged(kind, row.part))}")
        session.delete(row)
    return f"{kind}: {'; '.join(changes) or 'no change'}"


def _diff(before: str, after: str) -> str:
    """The lines removed and added, short enough for an audit row."""
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
    changed = [line for line in lines if line[:1] in "+-" and line[:3] not in ("---", "+++")]
    text = " | ".join(changed)
    return text if len(text) <= MAX_AUDIT_DIFF else text[:MAX_AUDIT_DIFF] + " …"


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise EmailTemplateError({"kind": f"no email {kind!r} ({', '.join(KINDS)})"})
    return kind


# --- composing an email -------------------------------------------------------------


def render_stored(
    session: Session,
    *,
    kind: str,
    part: str,
    body: str,
    context: Mapping[str, Any],
    ticket_id: int | None,
) -> str | None:
    """The admin's version of a part filled in, or ``None`` when it does not render: the
    caller sends the packaged one, and the failure is audited for the admins."""
    try:
        return sandbox.render(body, context, html=part == "html")
    except sandbox.TemplateProblem as exc:
        log.warning("email template %s %s failed; the packaged one is used", kind, part)
        audit.record(
            session,
            actor="desk",
            action=FALLBACK,
            ticket_id=ticket_id,
            detail=f"{kind} {part}: {str(exc)[:200]}; the packaged template was sent",
        )
        return None
