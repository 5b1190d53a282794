"""The code catalog held in memory, and what it says about the codes of one case.

Validation runs for every case email and must cost well under a millisecond, so it never
asks the database per code: the catalog is read once into plain dicts (about 100,000
ICD-10-CM codes take a few tens of megabytes) and every check is a dict lookup.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from itertools import combinations

from consultant.codes import formats
from consultant.codes.extract import FoundCode
from consultant.codes.formats import CPT, HCPCS, ICD10CM, ICD10PCS, MODIFIER, NDC
from consultant.codes.records import MODIFIER_KIND, CodeRecord, MueLimit, PtpEdit

VALID = "valid"
HEADER = "header"
UNKNOWN = "unknown"
DELETED = "deleted"
NOT_YET_VALID = "not-yet-valid"
FORMAT_ONLY = "format-only"


@dataclass(frozen=True, slots=True)
class Entry:
    description: str
    billable: bool
    effective_date: date | None
    deletion_date: date | None


@dataclass(frozen=True, slots=True)
class Version:
    """A code as the releases from ``valid_from`` up to ``valid_to`` describe it."""

    valid_from: date
    valid_to: date | None
    description: str
    billable: bool


@dataclass(frozen=True, slots=True)
class HeaderInfo:
    """What a non-billable ICD-10-CM code is missing: more characters, and how many
    billable codes lie under it."""

    fewest_more: int
    most_more: int
    billable_children: int


@dataclass(frozen=True, slots=True)
class CodeStatus:
    status: str
    description: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class PairConflict:
    column1: str
    column2: str
    modifier_indicator: int
    modifier_present: str | None
    message: str


@dataclass(frozen=True, slots=True)
class UnitsExceeded:
    code: str
    units: int
    max_units: int
    adjudication_indicator: int
    message: str


@dataclass(slots=True)
class Catalog:
    """Codes by system, the release of each loaded system, NCCI pair edits and MUEs."""

    codes: dict[str, dict[str, Entry]] = field(default_factory=dict)
    modifiers: dict[str, str] = field(default_factory=dict)  # imported HCPCS modifiers
    releases: dict[str, str] = field(default_factory=dict)
    ptp: dict[tuple[str, str], list[PtpEdit]] = field(default_factory=dict)
    mue: dict[str, MueLimit] = field(default_factory=dict)
    # codes whose description or flag changed between loaded releases, oldest first
    versions: dict[str, dict[str, tuple[Version, ...]]] = field(default_factory=dict)
    _headers: dict[str, HeaderInfo] | None = None

    # --- building ------------------------------------------------------------------

    def add_codes(self, system: str, release: str, records: Iterable[CodeRecord]) -> None:
        table = self.codes.setdefault(system, {})
        for record in records:
            if record.kind == MODIFIER_KIND:
                self.modifiers[record.code] = record.description
                continue
            table[record.code] = Entry(
                record.description, record.billable, record.effective_date, record.deletion_date
            )
        self.releases[system] = release
        self._headers = None

    def add_versions(self, system: str, versions: dict[str, tuple[Version, ...]]) -> None:
        self.versions.setdefault(system, {}).update(versions)

    def add_ptp(self, edits: Iterable[PtpEdit]) -> None:
        for edit in edits:
            self.ptp.setdefault((edit.column1, edit.column2), []).append(edit)

    def add_mue(self, limits: Iterable[MueLimit]) -> None:
        for limit in limits:
            self.mue[limit.code] = limit

    # --- questions -----------------------------------------------------------------

    def loaded(self, system: str) -> bool:
        return system in self.releases

    def has(self, system: str, code: str) -> bool:
        if system == MODIFIER:
            return code in self.modifiers
        return code in self.codes.get(system, {})

    def header_info(self, code: str) -> HeaderInfo | None:
        if self._headers is None:
            self.index_headings()
        assert self._headers is not None
        return self._headers.get(code)

    def index_headings(self) -> None:
        """Work out what every ICD-10-CM heading lacks (about a second for the full set),
        now rather than inside the first case that names a heading."""
        self._headers = _icd_headers(self.codes.get(ICD10CM, {}))

    def status(self, system: str, code: str, as_of: date) -> CodeStatus:
        """Valid, header, unknown, deleted or format-only — with the reason in words."""
        if system == MODIFIER:
            return self._modifier_status(code)
        if system == ICD10PCS:
            return CodeStatus(FORMAT_ONLY, None, "no ICD-10-PCS catalog is loaded: format only")
        if system == NDC:
            return CodeStatus(FORMAT_ONLY, None, "NDC directory not loaded: format only")
        if not self.loaded(system):
            return _format_only(system, code)
        entry = self.codes[system].get(code)
        if entry is None:
            return CodeStatus(UNKNOWN, None, f"not in the {self._release_name(system)}")
        if entry.effective_date is not None and as_of < entry.effective_date:
            detail = f"not yet valid: valid from {entry.effective_date}"
            return CodeStatus(NOT_YET_VALID, entry.description, detail)
        if entry.deletion_date is not None and entry.deletion_date <= as_of:
            return CodeStatus(DELETED, entry.description, _dates_text(entry))
        entry = self._in_effect(system, code, entry, as_of)
        if entry.deletion_date is not None and entry.deletion_date <= as_of:
            return CodeStatus(DELETED, entry.description, _dates_text(entry))
        if entry.billable:
            return CodeStatus(VALID, entry.description, "valid and billable")
        return CodeStatus(HEADER, entry.description, self._header_text(code))

    def _in_effect(self, system: str, code: str, entry: Entry, as_of: date) -> Entry:
        """The code as the release in effect on ``as_of`` describes it. Before its first
        loaded release it reads as in that one; in a gap between releases that dropped
        it and one that brought it back it reads as deleted when the gap began."""
        versions = self.versions.get(system, {}).get(code)
        if not versions:
            return entry
        passed = [v for v in versions if v.valid_from <= as_of] or [versions[0]]
        version = passed[-1]
        ended = version.valid_to if version.valid_to and version.valid_to <= as_of else None
        return Entry(version.description, version.billable, entry.effective_date, ended)

    def _release_name(self, system: str) -> str:
        return f"{formats.SYSTEM_NAMES[system]} {self.releases[system]} release"

    def _header_text(self, code: str) -> str:
        info = self.header_info(code)
        if info is None:
            return "not billable: a heading with no billable codes under it"
        more = (
            f"{info.fewest_more}"
            if info.fewest_more == info.most_more
            else f"{info.fewest_more} to {info.most_more}"
        )
        plural = "s" if info.most_more > 1 else ""
        return (
            f"not billable: a heading that needs {more} more character{plural}; "
            f"{info.billable_children} billable codes under it"
        )

    def _modifier_status(self, code: str) -> CodeStatus:
        label = formats.modifier_label(code) or self.modifiers.get(code)
        if label is None:
            return CodeStatus(UNKNOWN, None, "not a known CPT or HCPCS modifier")
        return CodeStatus(VALID, label, "known modifier")

    def active_edits(self, first: str, second: str, as_of: date) -> list[PtpEdit]:
        """Pair edits in force on ``as_of`` for the two codes, in either column order.

        An edit is in force from its effective date up to (not including) its deletion
        date.
        """
        edits = self.ptp.get((first, second), []) + self.ptp.get((second, first), [])
        return [
            e
            for e in edits
            if e.effective_date <= as_of and (e.deletion_date is None or as_of < e.deletion_date)
        ]


def _format_only(system: str, code: str) -> CodeStatus:
    if system == CPT:
        section = formats.cpt_section(code)
        return CodeStatus(
            FORMAT_ONLY,
            f"CPT {section}" if section else None,
            "no CPT descriptor file imported: checked by format and section only",
        )
    return CodeStatus(
        FORMAT_ONLY, None, f"{formats.SYSTEM_NAMES[system]} not loaded: checked by format only"
    )


def _dates_text(entry: Entry) -> str:
    since = f" (in effect from {entry.effective_date})" if entry.effective_date else ""
    return f"deleted: valid for a date of service before {entry.deletion_date}{since}"


def _icd_headers(codes: dict[str, Entry]) -> dict[str, HeaderInfo]:
    """For every ICD-10-CM heading, the extra characters its billable codes carry."""
    fewest: dict[str, int] = {}
    most: dict[str, int] = {}
    counts: dict[str, int] = {}
    for code, entry in codes.items():
        if not entry.billable:
            continue
        bare = code.replace(".", "")
        for length in range(3, len(bare)):
            prefix = formats.dotted_icd10cm(bare[:length])
            if prefix not in codes:
                continue
            extra = len(bare) - length
            fewest[prefix] = min(fewest.get(prefix, extra), extra)
            most[prefix] = max(most.get(prefix, extra), extra)
            counts[prefix] = counts.get(prefix, 0) + 1
    return {code: HeaderInfo(fewest[code], most[code], counts[code]) for code in counts}


# --- checks across the codes of one case --------------------------------------------


def pair_conflicts(found: list[FoundCode], catalog: Catalog, as_of: date) -> list[PairConflict]:
    """NCCI pair edits among the case's procedure codes, with whether a modifier that
    bypasses an indicator-1 edit is present on either code."""
    if not catalog.ptp:
        return []
    procedures = [c for c in found if c.system in (CPT, HCPCS)]
    conflicts: list[PairConflict] = []
    for first, second in combinations(procedures, 2):
        for edit in catalog.active_edits(first.code, second.code, as_of):
            conflict = _conflict(edit, first, second)
            if conflict is not None:
                conflicts.append(conflict)
    return conflicts


def _conflict(edit: PtpEdit, first: FoundCode, second: FoundCode) -> PairConflict | None:
    pair = f"{edit.column1} + {edit.column2}"
    if edit.modifier_indicator == 0:
        message = f"{pair}: never reported together (modifier indicator 0)"
        return PairConflict(edit.column1, edit.column2, 0, None, message)
    if edit.modifier_indicator != 1:
        return None
    present = next(
        (m for m in first.modifiers + second.modifiers if m in formats.NCCI_BYPASS_MODIFIERS),
        None,
    )
    if present:
        message = f"{pair}: allowed with a modifier; {present} is present"
    else:
        message = f"{pair}: needs a modifier such as 59, XE, XS, XP or XU; none is present"
    return PairConflict(edit.column1, edit.column2, 1, present, message)


def units_exceeded(found: list[FoundCode], catalog: Catalog) -> list[UnitsExceeded]:
    """Codes whose units in the case pass their MUE value."""
    exceeded: list[UnitsExceeded] = []
    for code in found:
        limit = catalog.mue.get(code.code) if code.system in (CPT, HCPCS) else None
        if limit is None or not code.units or code.units <= limit.max_units:
            continue
        message = (
            f"{code.code}: {code.units} units exceed the MUE of {limit.max_units} "
            f"(adjudication indicator {limit.adjudication_indicator})"
        )
        exceeded.append(
            UnitsExceeded(
                code.code, code.units, limit.max_units, limit.adjudication_indicator, message
            )
        )
    return exceeded
