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


@dataclass(slots=True)
class CheckedCode:
    found: FoundCode
    status: CodeStatus

    def as_dict(self) -> dict[str, object]:
        return {
            **self.found.as_dict(),
            "status": self.status.status,
            "description": self.status.description,
            "detail": self.status.detail,
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
    found = extract_sources(sources, known=catalog.has)
    checked = [CheckedCode(code, catalog.status(code.system, code.code, as_of)) for code in found]
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
