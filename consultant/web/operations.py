"""The admin's pages for what keeps the desk running: the emails intake set aside
(read safely, release, delete), the outgoing emails that failed or wait (retry, cancel)
and the code catalogs (what is loaded; a new ICD-10-CM release or CPT file by upload).

Every page is for admins, checked on the server; every action goes through the same
domain function as the command line (``consultant inbound``, ``outbox``, ``codes``) and
is audited with what it was before and after; so is every look at a set-aside email,
which may carry a patient's details. A refused form comes back as typed, with the
reason beside the field.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from consultant import audit, dispatch, outbox, quarantine
from consultant.codes.cpt import parse_cpt_csv
from consultant.codes.formats import CPT, ICD10CM
from consultant.codes.icd10cm_order import NotAnOrderFile, parse_icd10cm_order
from consultant.codes.records import CodeRecord, FileFormatError
from consultant.codes.releases import load_release, loaded_systems, release_from_file_name
from consultant.codes.store import load_codes
from consultant.db import session_scope, storable
from consultant.inbound import InboundError, delete_inbound, not_retried, retry_inbound
from consultant.models import OutboxEmail, utcnow
from consultant.web.admin import _apply, _audit
from consultant.web.cases import MESSAGE_POLICY
from consultant.web.pages import render
from consultant.web.security import Admin, RowId, check_csrf
from consultant.web.sessions import SignedIn

router = APIRouter(prefix="/admin")
MAX_UPLOAD_BYTES = 64 * 1024 * 1024  # CMS's order file is about 20 MB
MAX_RELEASE_CHARS = 40


# --- quarantine -----------------------------------------------------------------------


@router.get("/quarantine")
def quarantine_page(
    request: Request, person: Admin, status: str = "", after: str = "", done: str = ""
) -> Response:
    """The set-aside emails, newest first, 50 to a page."""
    with session_scope() as session:
        page = quarantine.list_set_aside(session, status=status or None, after=_id_or_none(after))
        _audit(session, request, person, "admin.quarantine_viewed", f"shown={len(page.rows)}")
    return render(
        request,
        "admin_quarantine.html.j2",
        {"person": person, "page": page, "status": status, "notice": done},
    )


@router.get("/quarantine/{inbound_id}")
def quarantined_email_page(request: Request, person: Admin, inbound_id: RowId) -> Response:
    return _quarantined_email(request, person, inbound_id)


@router.get("/quarantine/{inbound_id}/html")
def quarantined_email_html(person: Admin, inbound_id: RowId) -> Response:
    """The HTML part, without links or images, for the page's sandboxed frame only."""
    with session_scope() as session:
        inbound = quarantine.set_aside(session, inbound_id)
        markup = quarantine.inert_html(inbound) if inbound else ""
    return Response(
        markup, media_type="text/html", headers={"Content-Security-Policy": MESSAGE_POLICY}
    )


@router.get("/quarantine/{inbound_id}/source")
def quarantined_email_source(request: Request, person: Admin, inbound_id: RowId) -> Response:
    """The email's exact bytes as a download (``message/rfc822``), never shown inline."""
    with session_scope() as session:
        inbound = quarantine.set_aside(session, inbound_id)
        if inbound is None:
            return _no_such_email(request, person, inbound_id)
        raw = inbound.raw
        _audit(session, request, person, "admin.quarantine_downloaded", f"email {inbound_id}")
    return Response(
        raw,
        media_type="message/rfc822",
        headers={
            "Content-Disposition": f'attachment; filename="email-{inbound_id}.eml"',
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post("/quarantine/{inbound_id}/release")
def release_email_submit(
    request: Request, person: Admin, inbound_id: RowId, csrf: Annotated[str, Form()] = ""
) -> Response:
    """Process the email again from its bytes: ``consultant inbound retry``'s function."""
    check_csrf(person, csrf)

    def release(session: Session) -> str:
        inbound = quarantine.set_aside(session, inbound_id)
        before = quarantine.describe(inbound) if inbound else {}
        if not retry_inbound(session, inbound_ids=[inbound_id]):
            raise InboundError(not_retried(session, [inbound_id])[0])
        session.flush()
        after = quarantine.describe(inbound)  # type: ignore[arg-type]
        return f"email {inbound_id}: {audit.changes(before, after)}"

    problem = _apply(request, person, "admin.quarantine_released", release)
    if problem:
        return _quarantined_email(request, person, inbound_id, error=problem, status_code=400)
    dispatch.inbound_stored([inbound_id])  # after the commit
    done = {"done": f"email {inbound_id} released to be processed again"}
    return RedirectResponse(f"/admin/quarantine?{urlencode(done)}", status_code=303)


@router.post("/quarantine/{inbound_id}/delete")
def delete_email_submit(
    request: Request,
    person: Admin,
    inbound_id: RowId,
    csrf: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    """Give up on the email, saying why; its bytes are kept (consultant/inbound.py)."""
    check_csrf(person, csrf)

    def delete(session: Session) -> str:
        inbound = quarantine.set_aside(session, inbound_id)
        before = quarantine.describe(inbound) if inbound else {}
        deleted = delete_inbound(
            session, inbound_id=inbound_id, by=person.email, reason=reason, now=utcnow()
        )
        changed = audit.changes(before, quarantine.describe(deleted))
        return f"email {inbound_id}: {changed}; reason: {deleted.deleted_reason}"

    problem = _apply(request, person, "admin.quarantine_deleted", delete)
    if problem:
        return _quarantined_email(
            request,
            person,
            inbound_id,
            errors={"reason": problem},
            typed={"reason": storable(reason)},
            status_code=400,
        )
    done = {"done": f"email {inbound_id} deleted; its bytes are kept"}
    return RedirectResponse(f"/admin/quarantine?{urlencode(done)}", status_code=303)


def _quarantined_email(
    request: Request,
    person: SignedIn,
    inbound_id: RowId,
    *,
    error: str = "",
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    with session_scope() as session:
        inbound = quarantine.set_aside(session, inbound_id)
        if inbound is None:
            return _no_such_email(request, person, inbound_id)
        email = quarantine.read_safely(inbound)
        _audit(session, request, person, "admin.quarantine_email_viewed", f"email {inbound_id}")
    return render(
        request,
        "admin_quarantined_email.html.j2",
        {
            "person": person,
            "email": email,
            "error": error,
            "errors": errors or {},
            "typed": typed or {},
        },
        status_code=status_code,
    )


def _no_such_email(request: Request, person: SignedIn, inbound_id: int) -> Response:
    message = f"email {inbound_id} is not set aside (or does not exist)"
    return render(request, "error.html.j2", {"person": person, "message": message}, status_code=404)


# --- outbox ---------------------------------------------------------------------------


@router.get("/outbox")
def outbox_page(request: Request, person: Admin, after: str = "", done: str = "") -> Response:
    return _outbox_page(request, person, after=_id_or_none(after), notice=done)


@router.post("/outbox/{outbox_id}/retry")
def retry_outbox_submit(
    request: Request, person: Admin, outbox_id: RowId, csrf: Annotated[str, Form()] = ""
) -> Response:
    """Send it again now: ``consultant outbox retry``'s function."""
    check_csrf(person, csrf)
    problem = _outbox_change(request, person, outbox_id, "admin.outbox_retried", outbox.retry_email)
    if problem:
        return _outbox_page(request, person, errors={outbox_id: problem}, status_code=400)
    dispatch.outbox_queued([outbox_id])  # after the commit
    return RedirectResponse(
        f"/admin/outbox?{urlencode({'done': f'email {outbox_id} queued again'})}",
        status_code=303,
    )


@router.post("/outbox/{outbox_id}/cancel")
def cancel_outbox_submit(
    request: Request, person: Admin, outbox_id: RowId, csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(person, csrf)
    problem = _outbox_change(
        request, person, outbox_id, "admin.outbox_cancelled", outbox.cancel_email
    )
    if problem:
        return _outbox_page(request, person, errors={outbox_id: problem}, status_code=400)
    return RedirectResponse(
        f"/admin/outbox?{urlencode({'done': f'email {outbox_id} cancelled'})}",
        status_code=303,
    )


def _outbox_change(
    request: Request,
    person: SignedIn,
    outbox_id: int,
    action: str,
    change: Callable[..., OutboxEmail],
) -> str:
    def apply(session: Session) -> str:
        email = session.get(OutboxEmail, outbox_id)
        before = outbox.describe(email) if email else {}
        changed = change(session, outbox_id=outbox_id, by=person.email, now=utcnow())
        session.flush()
        return f"outbox {outbox_id}: {audit.changes(before, outbox.describe(changed))}"

    return _apply(request, person, action, apply)


def _outbox_page(
    request: Request,
    person: SignedIn,
    *,
    after: int | None = None,
    notice: str = "",
    errors: dict[int, str] | None = None,
    status_code: int = 200,
) -> Response:
    with session_scope() as session:
        rows, next_after = outbox.needing_attention(session, now=utcnow(), after=after)
        _audit(session, request, person, "admin.outbox_viewed", f"shown={len(rows)}")
    return render(
        request,
        "admin_outbox.html.j2",
        {
            "person": person,
            "rows": rows,
            "next_after": next_after,
            "notice": notice,
            "errors": errors or {},
        },
        status_code=status_code,
    )


# --- code catalogs --------------------------------------------------------------------


@router.get("/catalogs")
def catalogs_page(request: Request, person: Admin, done: str = "") -> Response:
    return _catalogs_page(request, person, notice=done)


@router.post("/catalogs/icd10cm")
async def import_icd10cm_submit(
    request: Request,
    person: Admin,
    csrf: Annotated[str, Form()] = "",
    file: UploadFile | None = None,
    effective: Annotated[str, Form()] = "",
    release: Annotated[str, Form()] = "",
) -> Response:
    """A CMS order file (or its zip), as ``consultant codes import icd10cm`` takes it: the
    release in effect from ``effective``; a bad line refuses the whole file."""
    check_csrf(person, csrf)
    typed = {"effective": storable(effective), "release": storable(release), "form": ICD10CM}
    errors: dict[str, str] = {}
    starts = _date_or_none(effective)
    if starts is None:
        errors["effective"] = f"{typed['effective']!r} is not a date (YYYY-MM-DD)"
    data, filename = await _upload(file, errors)
    name = _release_name(release, filename, errors)
    records = _parsed(parse_icd10cm_order, data, errors) if data else []
    if errors or starts is None:
        return _catalogs_page(request, person, errors=errors, typed=typed, status_code=400)
    effective_from: date = starts

    def load(session: Session) -> str:
        before = _system(session, ICD10CM)
        report = load_release(
            session, ICD10CM, records, name=name, effective=effective_from, source=filename
        )
        return f"{report.summary()}; {audit.changes(before, _system(session, ICD10CM))}"

    return _catalog_change(request, person, "admin.catalog_imported", load, ICD10CM)


@router.post("/catalogs/cpt")
async def import_cpt_submit(
    request: Request,
    person: Admin,
    csrf: Annotated[str, Form()] = "",
    file: UploadFile | None = None,
    release: Annotated[str, Form()] = "",
) -> Response:
    """A licensed CPT descriptor CSV, as ``consultant codes import cpt`` takes it."""
    check_csrf(person, csrf)
    typed = {"release": storable(release), "form": CPT}
    errors: dict[str, str] = {}
    data, filename = await _upload(file, errors)
    name = _release_name(release, filename, errors)
    records = _parsed(parse_cpt_csv, data, errors) if data else []
    if errors:
        return _catalogs_page(request, person, errors=errors, typed=typed, status_code=400)

    def load(session: Session) -> str:
        before = _system(session, CPT)
        report = load_codes(session, CPT, name, records)
        return f"{report.summary()}; {audit.changes(before, _system(session, CPT))}"

    return _catalog_change(request, person, "admin.catalog_imported", load, CPT)


async def _upload(file: UploadFile | None, errors: dict[str, str]) -> tuple[bytes, str]:
    """The uploaded file's bytes and name; what is wrong with it goes in ``errors``."""
    if file is None or not file.filename:
        errors["file"] = "choose the file to import"
        return b"", ""
    data = await file.read(MAX_UPLOAD_BYTES + 1)
    filename = storable(file.filename)[:200]
    if len(data) > MAX_UPLOAD_BYTES:
        errors["file"] = f"{filename} is over {MAX_UPLOAD_BYTES // (1024 * 1024)} MB"
    elif not data.strip():
        errors["file"] = f"{filename} is empty"
    else:
        return data, filename
    return b"", filename


def _release_name(typed: str, filename: str, errors: dict[str, str]) -> str:
    name = storable(typed).strip()
    if len(name) > MAX_RELEASE_CHARS:
        errors["release"] = f"at most {MAX_RELEASE_CHARS} characters"
    return name or release_from_file_name(filename)


def _parsed(
    parse: Callable[[bytes], Sequence[CodeRecord]], data: bytes, errors: dict[str, str]
) -> list[CodeRecord]:
    try:
        return list(parse(data))
    except (FileFormatError, NotAnOrderFile) as exc:
        errors["file"] = f"{exc} (nothing was loaded)"
        return []


def _system(session: Session, name: str) -> dict[str, Any]:
    """What the audit row compares: the system's newest release, its size, its releases."""
    for system in loaded_systems(session):
        if system["name"] == name:
            return {
                "release": system["release"],
                "codes": system["count"],
                "releases": [r["name"] for r in system["releases"]],
            }
    return {}


def _catalog_change(
    request: Request, person: SignedIn, action: str, load: Callable[[Session], str], system: str
) -> Response:
    problem = _apply(request, person, action, load)
    if problem:
        errors, typed = {"file": problem}, {"form": system}
        return _catalogs_page(request, person, errors=errors, typed=typed, status_code=400)
    return RedirectResponse(
        f"/admin/catalogs?{urlencode({'done': f'imported {system}'})}", status_code=303
    )


def _catalogs_page(
    request: Request,
    person: SignedIn,
    *,
    notice: str = "",
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    with session_scope() as session:
        systems = loaded_systems(session)
        _audit(session, request, person, "admin.catalogs_viewed", "")
    return render(
        request,
        "admin_catalogs.html.j2",
        {
            "person": person,
            "systems": systems,
            "cpt_loaded": any(s["name"] == CPT for s in systems),
            "notice": notice,
            "errors": errors or {},
            "typed": typed or {},
        },
        status_code=status_code,
    )


# --- shared ---------------------------------------------------------------------------


def _id_or_none(text: str) -> int | None:
    """A page's ``after``: a row id, or nothing (a mangled link starts at the top)."""
    return int(text) if text.isdigit() and len(text) < 19 else None


def _date_or_none(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None
