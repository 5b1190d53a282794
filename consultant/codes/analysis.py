"""Extraction plus validation for one case: the single entry point the CLI, the ticket
lookup and the benchmark share."""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from consultant.codes.catalog import (
    Catalog,
    CodeStatus,
    PairConflict,
    UnitsExceeded,
    pair_conflicts,
    units_exceeded,
)
from consultant.codes.extract import FoundCode, extract_sources
from consultant.codes.service_date import date_of_service
from consultant.codes.specialty import specialty_for

MAX_PDF_PAGES = 50


class UnreadablePdf(ValueError):
    """A PDF attachment whose text could not be read."""


@dataclass(frozen=True, slots=True)
class Reading:
    """Another reading of an ambiguous code, checked like the first."""

    system: str
    code: str
    status: CodeStatus

    def as_dict(self) -> dict[str, object]:
        return {
            "system": self.system,
            "code": self.code,
            "status": self.status.status,
            "description": self.status.description,
        }


@dataclass(slots=True)
class CheckedCode:
    found: FoundCode
    status: CodeStatus
    readings: list[Reading] = field(default_factory=list)  # the other readings, if ambiguous

    def as_dict(self) -> dict[str, object]:
        return {
            **self.found.as_dict(),
            "status": self.status.status,
            "description": self.status.description,
            "detail": self.status.detail,
            "readings": [reading.as_dict() for reading in self.readings],
        }


@dataclass(slots=True)
class CaseAnalysis:
    codes: list[CheckedCode] = field(default_factory=list)
    conflicts: list[PairConflict] = field(default_factory=list)
    units_exceeded: list[UnitsExceeded] = field(default_factory=list)
    specialty: str = ""
    checked_on: date | None = None  # the day whose code releases were applied
    date_of_service: date | None = None  # as the text states it, when it does

    def as_dict(self) -> dict[str, object]:
        return {
            "specialty": self.specialty,
            "checked_on": self.checked_on.isoformat() if self.checked_on else None,
            "date_of_service": self.date_of_service.isoformat() if self.date_of_service else None,
            "codes": [code.as_dict() for code in self.codes],
            "ncci_conflicts": [c.message for c in self.conflicts],
            "mue_exceeded": [u.message for u in self.units_exceeded],
        }


def analyse(sources: Iterable[tuple[str, str]], catalog: Catalog, received: date) -> CaseAnalysis:
    """Find, check and route the codes of one case given as (source name, text) pairs.

    Codes are checked by the releases in effect on the date of service the text states,
    or else on the day the case was ``received``.
    """
    sources = list(sources)
    stated = date_of_service(text for _, text in sources)
    as_of = stated or received
    found = extract_sources(sources, known=catalog.has, loaded=catalog.loaded)
    checked = [_checked(code, catalog, as_of) for code in found]
    return CaseAnalysis(
        codes=checked,
        conflicts=pair_conflicts(found, catalog, as_of),
        units_exceeded=units_exceeded(found, catalog),
        specialty=specialty_for(
            ((c.system, c.code) for c in found), " ".join(text for _, text in sources)
        ),
        checked_on=as_of,
        date_of_service=stated,
    )


def _checked(found: FoundCode, catalog: Catalog, as_of: date) -> CheckedCode:
    """A found code with its status — and, when the text left it ambiguous, the status of
    each other reading, so the coder sees at once which of them the catalog holds."""
    readings = []
    for alternative in found.alternatives:
        system, code = alternative.split(":", 1)
        readings.append(Reading(system, code, catalog.status(system, code, as_of)))
    return CheckedCode(found, catalog.status(found.system, found.code, as_of), readings)


def pdf_text(data: bytes, *, max_pages: int = MAX_PDF_PAGES) -> str:
    """The text layer of a PDF's first pages; scanned pages without one contribute nothing.

    Case attachments are op notes and EOBs of a few pages; the cap keeps a 500-page
    upload from holding a worker for minutes.
    """
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = reader.pages[:max_pages]
        return "\n".join(page.extract_text() or "" for page in pages)
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise UnreadablePdf(f"cannot read PDF: {exc}") from exc
