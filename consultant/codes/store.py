"""Putting parsed code files into the database, and reading the catalog back into memory.

Every load runs inside the caller's transaction, so a failure leaves the database as it
was. Loads compare each record with what is stored and write only the differences:
loading the same file twice changes nothing the second time. Codes missing from a newer
file are kept (a deleted code should say "deleted", not "unknown").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, insert, select, tuple_, update
from sqlmodel import Session

from consultant.codes.catalog import Catalog, Version
from consultant.codes.formats import CPT
from consultant.codes.records import CodeRecord, MueLimit, PtpEdit
from consultant.codes.search import refresh_search_index
from consultant.db import session_scope
from consultant.models import (
    CatalogCode,
    CodeRelease,
    CodeSystem,
    CodeVersion,
    MueValue,
    NcciPtpEdit,
    utcnow,
)

PTP = "ncci-ptp"
MUE = "ncci-mue"
CHUNK = 2000

Progress = Callable[[int], None]

CODE_FIELDS = (
    "description",
    "short_description",
    "billable",
    "parent",
    "notes",
    "effective_date",
    "deletion_date",
    "release",
)
PTP_FIELDS = ("deletion_date", "modifier_indicator", "release")
MUE_FIELDS = ("max_units", "adjudication_indicator", "rationale", "release")


@dataclass(frozen=True, slots=True)
class LoadReport:
    name: str
    release: str
    total: int
    added: int
    changed: int

    @property
    def unchanged(self) -> int:
        return self.total - self.added - self.changed

    def summary(self) -> str:
        return (
            f"{self.name} {self.release}: {self.total} records read; "
            f"{self.added} added, {self.changed} changed, {self.unchanged} unchanged"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "release": self.release,
            "total": self.total,
            "added": self.added,
            "changed": self.changed,
            "unchanged": self.unchanged,
        }


def no_progress(_done: int) -> None:
    return None


def load_codes(
    session: Session,
    system: str,
    release: str,
    records: Sequence[CodeRecord],
    progress: Progress = no_progress,
) -> LoadReport:
    """Store a code system's records, writing only what differs from what is stored."""
    table = CatalogCode.__table__  # type: ignore[attr-defined]
    stored = {
        (row.code, row.kind): row
        for row in session.connection().execute(
            select(
                table.c.id, table.c.code, table.c.kind, *(table.c[f] for f in CODE_FIELDS)
            ).where(table.c.system == system)
        )
    }
    new_rows: list[dict[str, Any]] = []
    changed_rows: list[dict[str, Any]] = []
    for record in records:
        values = _code_values(record, release)
        old = stored.get((record.code, record.kind))
        if old is None:
            new_rows.append({"system": system, "code": record.code, "kind": record.kind, **values})
        elif any(getattr(old, f) != values[f] for f in CODE_FIELDS):
            changed_rows.append({"row_id": old.id, **values})
    write_rows(session, table, new_rows, changed_rows, CODE_FIELDS, progress)
    if new_rows or changed_rows:
        refresh_search_index(session.connection(), system)
    _record_system(
        session, system, release, len(stored) + len(new_rows), bool(new_rows or changed_rows)
    )
    return LoadReport(system, release, len(records), len(new_rows), len(changed_rows))


def _code_values(record: CodeRecord, release: str) -> dict[str, Any]:
    return {
        "description": record.description,
        "short_description": record.short_description,
        "billable": record.billable,
        "parent": record.parent,
        "notes": record.notes,
        "effective_date": record.effective_date,
        "deletion_date": record.deletion_date,
        "release": release,
    }


def load_ptp(
    session: Session, release: str, edits: Sequence[PtpEdit], progress: Progress = no_progress
) -> LoadReport:
    table = NcciPtpEdit.__table__  # type: ignore[attr-defined]
    stored = {
        (row.column1, row.column2, row.effective_date): row
        for row in session.connection().execute(select(table))
    }
    new_rows: list[dict[str, Any]] = []
    changed_rows: list[dict[str, Any]] = []
    for edit in edits:
        values = {
            "deletion_date": edit.deletion_date,
            "modifier_indicator": edit.modifier_indicator,
            "release": release,
        }
        old = stored.get((edit.column1, edit.column2, edit.effective_date))
        if old is None:
            keys = {"column1": edit.column1, "column2": edit.column2}
            new_rows.append({**keys, "effective_date": edit.effective_date, **values})
        elif any(getattr(old, f) != values[f] for f in PTP_FIELDS):
            changed_rows.append({"row_id": old.id, **values})
    write_rows(session, table, new_rows, changed_rows, PTP_FIELDS, progress)
    _record_system(
        session, PTP, release, len(stored) + len(new_rows), bool(new_rows or changed_rows)
    )
    return LoadReport(PTP, release, len(edits), len(new_rows), len(changed_rows))


def load_mue(
    session: Session, release: str, limits: Sequence[MueLimit], progress: Progress = no_progress
) -> LoadReport:
    table = MueValue.__table__  # type: ignore[attr-defined]
    stored = {row.code: row for row in session.connection().execute(select(table))}
    new_rows: list[dict[str, Any]] = []
    changed_rows: list[dict[str, Any]] = []
    for limit in limits:
        values = {
            "max_units": limit.max_units,
            "adjudication_indicator": limit.adjudication_indicator,
            "rationale": limit.rationale,
            "release": release,
        }
        old = stored.get(limit.code)
        if old is None:
            new_rows.append({"code": limit.code, **values})
        elif any(getattr(old, f) != values[f] for f in MUE_FIELDS):
            changed_rows.append({"row_id": old.id, **values})
    write_rows(session, table, new_rows, changed_rows, MUE_FIELDS, progress)
    _record_system(
        session, MUE, release, len(stored) + len(new_rows), bool(new_rows or changed_rows)
    )
    return LoadReport(MUE, release, len(limits), len(new_rows), len(changed_rows))


def write_rows(
    session: Session,
    table: Any,
    new_rows: list[dict[str, Any]],
    changed_rows: list[dict[str, Any]],
    fields: Iterable[str],
    progress: Progress,
) -> None:
    """Insert and update in chunks, reporting progress after each."""
    connection = session.connection()
    done = 0
    for start in range(0, len(new_rows), CHUNK):
        chunk = new_rows[start : start + CHUNK]
        connection.execute(insert(table), chunk)
        done += len(chunk)
        progress(done)
    statement = (
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values({f: bindparam(f) for f in fields})
    )
    for start in range(0, len(changed_rows), CHUNK):
        chunk = changed_rows[start : start + CHUNK]
        connection.execute(statement, chunk)
        done += len(chunk)
        progress(done)


def _record_system(session: Session, name: str, release: str, count: int, changed: bool) -> None:
    """Note the release and size of what is loaded; untouched when nothing changed."""
    row = session.execute(select(CodeSystem).where(CodeSystem.name == name)).scalars().first()
    if row is not None and not changed and row.release == release:
        return
    if row is None:
        row = CodeSystem(name=name, release=release)
    row.release, row.code_count, row.loaded_at = release, count, utcnow()
    session.add(row)
    session.flush()


# --- reading the catalog into memory ------------------------------------------------

_cache: dict[str, tuple[tuple[object, ...], Catalog]] = {}


def catalog_stamp(session: Session) -> tuple[object, ...]:
    """What is loaded, cheaply: changes whenever any load changed anything."""
    rows = session.connection().execute(
        select(
            CodeSystem.name, CodeSystem.release, CodeSystem.code_count, CodeSystem.loaded_at
        ).order_by(CodeSystem.name)
    )
    releases = session.connection().execute(
        select(CodeRelease.system, CodeRelease.effective_from, CodeRelease.loaded_at).order_by(
            CodeRelease.system, CodeRelease.effective_from
        )
    )
    return tuple(tuple(row) for row in rows) + tuple(tuple(row) for row in releases)


def read_catalog(session: Session) -> Catalog:
    """Everything validation needs, in plain dicts: one query per table."""
    catalog = Catalog()
    connection = session.connection()
    releases = {
        name: release
        for name, release in connection.execute(select(CodeSystem.name, CodeSystem.release))
    }
    table = CatalogCode.__table__  # type: ignore[attr-defined]
    rows = connection.execute(
        select(
            table.c.system, table.c.code, table.c.kind, table.c.description, table.c.billable,
            table.c.effective_date, table.c.deletion_date,
        )
    )  # fmt: skip
    by_system: dict[str, list[CodeRecord]] = {}
    for system, code, kind, description, billable, effective, deletion in rows:
        by_system.setdefault(system, []).append(
            CodeRecord(
                system,
                code,
                description,
                bool(billable),
                kind,
                effective_date=effective,
                deletion_date=deletion,
            )
        )
    for system, records in by_system.items():
        catalog.add_codes(system, releases.get(system, ""), records)
    for system, versions in _changed_versions(session).items():
        catalog.add_versions(system, versions)
    if CPT in releases:
        catalog.releases.setdefault(CPT, releases[CPT])
    ptp = NcciPtpEdit.__table__  # type: ignore[attr-defined]
    catalog.add_ptp(
        PtpEdit(r.column1, r.column2, r.effective_date, r.deletion_date, r.modifier_indicator)
        for r in connection.execute(select(ptp))
    )
    mue = MueValue.__table__  # type: ignore[attr-defined]
    catalog.add_mue(
        MueLimit(r.code, r.max_units, r.adjudication_indicator, r.rationale)
        for r in connection.execute(select(mue))
    )
    catalog.index_headings()
    return catalog


def _changed_versions(session: Session) -> dict[str, dict[str, tuple[Version, ...]]]:
    """The history of the codes some loaded release describes differently from another:
    the few hundred a year that validation needs beyond the newest description."""
    table = CodeVersion.__table__  # type: ignore[attr-defined]
    changed = (
        select(table.c.system, table.c.code)
        .group_by(table.c.system, table.c.code)
        .having(func.count() > 1)
    )
    rows = session.connection().execute(
        select(
            table.c.system, table.c.code, table.c.valid_from, table.c.valid_to,
            table.c.description, table.c.billable,
        )
        .where(tuple_(table.c.system, table.c.code).in_(changed))
        .order_by(table.c.system, table.c.code, table.c.valid_from)
    )  # fmt: skip
    found: dict[str, dict[str, list[Version]]] = {}
    for system, code, valid_from, valid_to, description, billable in rows:
        by_code = found.setdefault(system, {})
        by_code.setdefault(code, []).append(
            Version(valid_from, valid_to, description, bool(billable))
        )
    return {
        system: {code: tuple(versions) for code, versions in by_code.items()}
        for system, by_code in found.items()
    }


def cached_catalog(session: Session) -> Catalog:
    """The in-memory catalog for this database, read again only after a load changed it."""
    key = str(session.get_bind().url)
    stamp = catalog_stamp(session)
    cached = _cache.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    catalog = read_catalog(session)
    _cache[key] = (stamp, catalog)
    return catalog


def warm_catalog() -> None:
    """Read the catalog before the first case needs it.

    Reading the full ICD-10-CM release takes a second or two; a worker that does it when
    it starts keeps that out of the first acknowledgement it sends.
    """
    with session_scope() as session:
        cached_catalog(session)
