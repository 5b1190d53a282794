"""Every release of a code system the desk has loaded, and each code's history across them.

ICD-10-CM changes every October 1 (some years April 1 too), and a claim is judged by the
release in effect on its date of service, so the desk keeps all the releases it was
given rather than the newest alone. A release is in effect from its ``effective_from``
until the next loaded release's. ``code_versions`` holds each code as runs of releases
that describe it alike: a code deleted in a later release ends there, a new one starts
there, and a changed description starts a new run.

A release may be loaded in any order (an older one after a newer); the history is worked
out again from every release each time, inside the caller's transaction, and only the
rows that differ are written. ``catalog_codes`` then holds each code as its newest
release describes it, with the date it first appeared (``None`` when it was already in
the oldest release loaded, whose start is not known) and the date it was deleted.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import PurePath
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlmodel import Session

from consultant.codes.formats import dotted_icd10cm
from consultant.codes.records import CODE, CodeRecord
from consultant.codes.search import refresh_search_index
from consultant.codes.store import LoadReport, Progress, load_codes, no_progress, write_rows
from consultant.models import CatalogCode, CodeRelease, CodeSystem, CodeVersion, utcnow

# (description, short description, billable): what a release says of a code
Value = tuple[str, str | None, bool]
Timeline = list[Value | None]  # one entry per release, oldest first; None: not in it
VERSION_FIELDS = ("valid_to", "description", "short_description", "billable")
RELEASE_MONTH = re.compile(r"(\d{4})-(\d{2})")


@dataclass(frozen=True, slots=True)
class ReleaseReport:
    """What loading one release changed, against the release in effect before it."""

    system: str
    name: str
    effective_from: date
    total: int
    added: int
    deleted: int
    redescribed: int
    already_loaded: bool
    catalog: LoadReport  # what the newest view in catalog_codes took of it
    compared_with: date | None  # the start of the release before it; None: the oldest

    def summary(self) -> str:
        head = f"{self.system} {self.name} (effective {self.effective_from}): {self.total} codes"
        if self.already_loaded:
            return f"{head}; this release was loaded already, nothing changed"
        if self.compared_with is None:
            return f"{head}; the oldest release loaded"
        return (
            f"{head}; against the release of {self.compared_with}: {self.added} added, "
            f"{self.deleted} deleted, {self.redescribed} with a new description"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "system": self.system,
            "release": self.name,
            "effective_from": self.effective_from.isoformat(),
            "total": self.total,
            "added": self.added,
            "deleted": self.deleted,
            "redescribed": self.redescribed,
            "already_loaded": self.already_loaded,
            "compared_with": self.compared_with.isoformat() if self.compared_with else None,
        }


def release_start(name: str) -> date | None:
    """The first day of a release named by its month (``2026-04``), as the bundled
    package names its release."""
    match = RELEASE_MONTH.fullmatch(name)
    if not match or not 1 <= int(match[2]) <= 12:
        return None
    return date(int(match[1]), int(match[2]), 1)


def release_from_file_name(name: str) -> str:
    """The release a code file is, by the year in its name (``icd10cm_order_2026.txt``:
    ``2026``), else today's date."""
    digits = "".join(ch if ch.isdigit() else " " for ch in PurePath(name).stem).split()
    years = [d for d in digits if len(d) == 4 and d.startswith("20")]
    return years[0] if years else date.today().isoformat()


def load_release(
    session: Session,
    system: str,
    records: Sequence[CodeRecord],
    *,
    name: str,
    effective: date,
    source: str,
    progress: Progress = no_progress,
) -> ReleaseReport:
    """Add (or replace) the release in effect from ``effective``; loading the same
    release again writes nothing."""
    _adopt_unversioned_catalog(session, system)
    releases = _stored_releases(session, system)
    dates = [release.effective_from for release in releases]
    timelines = _timelines(session, system, dates)
    new = {record.code: _value(record) for record in records}
    replacing = effective in dates
    if replacing and _same_release(timelines, dates.index(effective), new):
        unchanged = LoadReport(system, name, len(new), 0, 0)
        index = dates.index(effective)
        return _report(name, dates, timelines, index, catalog=unchanged, already_loaded=True)
    index = _place(timelines, dates, effective, new, replacing=replacing)
    _drop_codes_of_no_release(session, system, timelines)
    _write_versions(session, system, _spans(timelines, dates))
    _write_releases(
        session, system, releases, dates, timelines, loading=effective, name=name, source=source
    )
    catalog = _write_current_view(session, system, timelines, dates, records, progress)
    return _report(name, dates, timelines, index, catalog=catalog, already_loaded=False)


def loaded_systems(session: Session) -> list[dict[str, Any]]:
    """Each code system and NCCI table loaded, with its release, size and when, and the
    releases kept for earlier dates of service: ``codes status`` and the admin's page."""
    rows = session.execute(select(CodeSystem).order_by(CodeSystem.name)).scalars().all()
    releases = loaded_releases(session)
    return [
        {
            "name": row.name,
            "release": row.release,
            "count": row.code_count,
            "loaded_at": row.loaded_at.isoformat(),
            "releases": [r for r in releases if r["system"] == row.name],
        }
        for row in rows
    ]


def loaded_releases(session: Session) -> list[dict[str, Any]]:
    """Every release loaded, by system and date, for ``codes status``."""
    rows = session.execute(
        select(CodeRelease).order_by(CodeRelease.system, CodeRelease.effective_from)
    ).scalars()
    return [
        {
            "system": row.system,
            "name": row.name,
            "effective_from": row.effective_from.isoformat(),
            "effective_to": row.effective_to.isoformat() if row.effective_to else None,
            "count": row.code_count,
            "source": row.source,
            "loaded_at": row.loaded_at.isoformat(),
        }
        for row in rows
    ]


# --- the history, worked out from every release ----------------------------------


def _value(record: CodeRecord) -> Value:
    return (record.description, record.short_description, record.billable)


def _stored_releases(session: Session, system: str) -> list[CodeRelease]:
    query = (
        select(CodeRelease).where(CodeRelease.system == system).order_by(CodeRelease.effective_from)
    )
    return list(session.execute(query).scalars())


def _timelines(session: Session, system: str, dates: list[date]) -> dict[str, Timeline]:
    """What each stored release said of each code, rebuilt from the stored runs."""
    table = CodeVersion.__table__  # type: ignore[attr-defined]
    rows = session.connection().execute(
        select(
            table.c.code, table.c.valid_from, table.c.valid_to, table.c.description,
            table.c.short_description, table.c.billable,
        ).where(table.c.system == system)
    )  # fmt: skip
    timelines: dict[str, Timeline] = {}
    for code, valid_from, valid_to, description, short, billable in rows:
        timeline = timelines.setdefault(code, [None] * len(dates))
        end = len(dates) if valid_to is None else bisect_left(dates, valid_to)
        for index in range(bisect_left(dates, valid_from), end):
            timeline[index] = (description, short, bool(billable))
    return timelines


def _same_release(timelines: dict[str, Timeline], index: int, new: dict[str, Value]) -> bool:
    """The stored release at ``index`` says what ``new`` says (a short description the
    new file lacks or shares with a later release of the same run counts as the same)."""
    stored = {code: line[index] for code, line in timelines.items() if line[index] is not None}
    return stored.keys() == new.keys() and all(
        _alike(stored[code], value) and value[1] in (None, stored[code][1])  # type: ignore[index]
        for code, value in new.items()
    )


def _place(
    timelines: dict[str, Timeline],
    dates: list[date],
    effective: date,
    new: dict[str, Value],
    *,
    replacing: bool,
) -> int:
    """Put the new release into every code's timeline; its index among the releases."""
    if replacing:
        index = dates.index(effective)
        for code, timeline in timelines.items():
            timeline[index] = new.get(code)
    else:
        index = bisect_right(dates, effective)
        dates.insert(index, effective)
        for code, timeline in timelines.items():
            timeline.insert(index, new.get(code))
    for code in new.keys() - timelines.keys():
        timeline = [None] * len(dates)
        timeline[index] = new[code]
        timelines[code] = timeline
    return index


def _drop_codes_of_no_release(
    session: Session, system: str, timelines: dict[str, Timeline]
) -> None:
    """Codes that only a replaced release held are no code of any release now."""
    gone = [code for code, timeline in timelines.items() if not any(timeline)]
    if not gone:
        return
    for code in gone:
        del timelines[code]
    table = CatalogCode.__table__  # type: ignore[attr-defined]
    session.connection().execute(
        delete(table).where(
            table.c.system == system, table.c.kind == CODE, table.c.code == bindparam("gone")
        ),
        [{"gone": code} for code in gone],
    )
    refresh_search_index(session.connection(), system)


def _spans(
    timelines: dict[str, Timeline], dates: list[date]
) -> dict[tuple[str, date], tuple[date | None, str, str | None, bool]]:
    """Runs of consecutive releases that describe a code alike, keyed by code and start;
    a run keeps the newest short description among its releases."""
    spans: dict[tuple[str, date], tuple[date | None, str, str | None, bool]] = {}
    for code, timeline in timelines.items():
        start = 0
        while start < len(dates):
            value = timeline[start]
            end = start + 1
            while end < len(dates) and _alike(timeline[end], value):
                end += 1
            if value is not None:
                valid_to = dates[end] if end < len(dates) else None
                short = next((v[1] for v in reversed(timeline[start:end]) if v and v[1]), None)
                spans[(code, dates[start])] = (valid_to, value[0], short, value[2])
            start = end
    return spans


def _alike(one: Value | None, other: Value | None) -> bool:
    """Same description and flag: a short description alone (which the bundled release
    lacks) is no change a coder needs to see by date."""
    if one is None or other is None:
        return one is other
    return (one[0], one[2]) == (other[0], other[2])


def _write_versions(
    session: Session,
    system: str,
    spans: dict[tuple[str, date], tuple[date | None, str, str | None, bool]],
) -> None:
    table = CodeVersion.__table__  # type: ignore[attr-defined]
    connection = session.connection()
    stored = {
        (row.code, row.valid_from): row
        for row in connection.execute(select(table).where(table.c.system == system))
    }
    gone = [{"row_id": row.id} for key, row in stored.items() if key not in spans]
    if gone:
        connection.execute(delete(table).where(table.c.id == bindparam("row_id")), gone)
    new_rows: list[dict[str, Any]] = []
    changed_rows: list[dict[str, Any]] = []
    for (code, valid_from), span in spans.items():
        values = dict(zip(VERSION_FIELDS, span, strict=True))
        old = stored.get((code, valid_from))
        if old is None:
            new_rows.append({"system": system, "code": code, "valid_from": valid_from, **values})
        elif any(getattr(old, f) != values[f] for f in VERSION_FIELDS):
            changed_rows.append({"row_id": old.id, **values})
    write_rows(session, table, new_rows, changed_rows, VERSION_FIELDS, lambda _done: None)


def _write_releases(
    session: Session,
    system: str,
    releases: list[CodeRelease],
    dates: list[date],
    timelines: dict[str, Timeline],
    *,
    loading: date,
    name: str,
    source: str,
) -> None:
    """One row a release, each in effect until the next one starts."""
    by_date = {release.effective_from: release for release in releases}
    for index, effective in enumerate(dates):
        release = by_date.get(effective) or CodeRelease(system=system, effective_from=effective)
        if effective == loading:
            release.name, release.source, release.loaded_at = name, source, utcnow()
        release.code_count = sum(1 for line in timelines.values() if line[index] is not None)
        release.effective_to = dates[index + 1] if index + 1 < len(dates) else None
        session.add(release)
    session.flush()


def _report(
    name: str,
    dates: list[date],
    timelines: dict[str, Timeline],
    index: int,
    *,
    catalog: LoadReport,
    already_loaded: bool,
) -> ReleaseReport:
    total = added = deleted = redescribed = 0
    for timeline in timelines.values():
        now, before = timeline[index], timeline[index - 1] if index else None
        total += now is not None
        if index and now is not None and before is None:
            added += 1
        elif before is not None and now is None:
            deleted += 1
        elif before is not None and now is not None and not _alike(before, now):
            redescribed += 1
    return ReleaseReport(
        system=catalog.name,
        name=name,
        effective_from=dates[index],
        total=total,
        added=added,
        deleted=deleted,
        redescribed=redescribed,
        already_loaded=already_loaded,
        catalog=catalog,
        compared_with=dates[index - 1] if index else None,
    )


# --- the newest view, which search, show and validation read ----------------------


def _write_current_view(
    session: Session,
    system: str,
    timelines: dict[str, Timeline],
    dates: list[date],
    records: Iterable[CodeRecord],
    progress: Progress,
) -> LoadReport:
    """Each code as its newest release describes it, keeping the notes and parents that
    only the bundled release carries."""
    given = {record.code: record for record in records}
    kept = _stored_notes(session, system)
    view: list[CodeRecord] = []
    for code, timeline in timelines.items():
        present = [index for index, value in enumerate(timeline) if value is not None]
        first, last = present[0], present[-1]
        description, short, billable = timeline[last]  # type: ignore[misc]
        record = given.get(code)
        parent, notes = kept.get(code, (None, ""))
        view.append(
            CodeRecord(
                system=system,
                code=code,
                description=description,
                billable=billable,
                short_description=short,
                parent=(record.parent if record and record.parent else parent)
                or _parent(code, timelines),
                notes=(record.notes if record and record.notes else notes),
                effective_date=dates[first] if first else None,
                deletion_date=dates[last + 1] if last + 1 < len(dates) else None,
            )
        )
    newest = _stored_releases(session, system)[-1].name
    return load_codes(session, system, newest, view, progress)


def _stored_notes(session: Session, system: str) -> dict[str, tuple[str | None, str]]:
    table = CatalogCode.__table__  # type: ignore[attr-defined]
    rows = session.connection().execute(
        select(table.c.code, table.c.parent, table.c.notes).where(
            table.c.system == system, table.c.kind == CODE
        )
    )
    return {code: (parent, notes) for code, parent, notes in rows}


def _parent(code: str, codes: dict[str, Timeline]) -> str | None:
    """The longest shorter code that exists (``E11.65`` → ``E11.6``); none above a category."""
    bare = code.replace(".", "")
    for length in range(len(bare) - 1, 2, -1):
        candidate = dotted_icd10cm(bare[:length])
        if candidate in codes:
            return candidate
    return None


# --- a catalog loaded before releases were kept ------------------------------------


def _adopt_unversioned_catalog(session: Session, system: str) -> None:
    """A catalog loaded before the desk kept releases becomes the first release, dated by
    its name (``2026-04``), so a newer release can say which of its codes were deleted."""
    if _stored_releases(session, system):
        return
    stored = session.execute(select(CodeSystem).where(CodeSystem.name == system)).scalars().first()
    effective = release_start(stored.release) if stored else None
    if stored is None or effective is None:
        return
    table = CatalogCode.__table__  # type: ignore[attr-defined]
    rows = session.connection().execute(
        select(
            table.c.code, table.c.description, table.c.short_description, table.c.billable
        ).where(table.c.system == system, table.c.kind == CODE, table.c.deletion_date.is_(None))
    )
    spans = {
        (code, effective): (None, description, short, bool(billable))
        for code, description, short, billable in rows
    }
    if not spans:
        return
    _write_versions(session, system, spans)
    release = CodeRelease(
        system=system,
        name=stored.release,
        effective_from=effective,
        code_count=len(spans),
        source="catalog loaded before releases were kept",
        loaded_at=stored.loaded_at,
    )
    session.add(release)
    session.flush()
