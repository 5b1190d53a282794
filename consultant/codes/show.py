"""``consultant codes show CODE``: one code with its notes, or every code under a prefix."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from consultant.codes import formats
from consultant.codes.catalog import Catalog
from consultant.codes.formats import CPT, HCPCS, ICD10CM, MODIFIER
from consultant.models import CatalogCode

PREFIX_LIMIT = 50


def systems_for(code: str) -> list[str]:
    """Which systems a typed code may belong to, most likely first."""
    bare = code.replace(".", "").upper()
    if len(bare) == 2:
        return [MODIFIER]
    if formats.is_cpt(bare) or bare.isdigit():
        return [CPT]
    if formats.is_hcpcs(bare) and "." not in code:
        return [HCPCS, ICD10CM]
    if formats.ICD10CM_DOTLESS.match(bare):
        return [ICD10CM]
    return [HCPCS, ICD10CM]


def normalise(system: str, code: str) -> str:
    code = code.strip().upper()
    return formats.dotted_icd10cm(code) if system == ICD10CM else code


def show_code(session: Session, catalog: Catalog, typed: str, as_of: date) -> list[dict[str, Any]]:
    """Each reading of ``typed``: its status and notes, and the codes it heads."""
    readings = []
    for system in systems_for(typed):
        code = normalise(system, typed)
        row = _row(session, system, code)
        under = _under(session, system, code)
        if row is None and not under and system != MODIFIER and catalog.loaded(system):
            continue
        status = catalog.status(system, code, as_of)
        readings.append(
            {
                "system": system,
                "code": code,
                "status": status.status,
                "description": row.description if row else status.description,
                "detail": status.detail,
                "parent": row.parent if row else None,
                "notes": row.notes if row else "",
                "under": under,
            }
        )
    return readings


def _row(session: Session, system: str, code: str) -> CatalogCode | None:
    query = select(CatalogCode).where(CatalogCode.system == system, CatalogCode.code == code)
    return session.execute(query).scalars().first()


def _under(session: Session, system: str, prefix: str) -> list[dict[str, Any]]:
    """Codes that start with ``prefix`` (a prefix search served by the unique index)."""
    if system not in (ICD10CM, HCPCS, CPT):
        return []
    query = (
        select(CatalogCode.code, CatalogCode.description, CatalogCode.billable)
        .where(
            CatalogCode.system == system,
            CatalogCode.code > prefix,
            CatalogCode.code < prefix + "\uffff",
        )
        .order_by(CatalogCode.code)
        .limit(PREFIX_LIMIT)
    )
    return [
        {"code": code, "description": description, "billable": bool(billable)}
        for code, description, billable in session.execute(query)
    ]
