"""Plain records that the file parsers produce and the catalog stores.

Parsers turn a supplied file into these records or stop at the first bad line with a
``FileFormatError`` naming it, so a malformed file loads nothing at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

CODE = "code"
MODIFIER_KIND = "modifier"


class FileFormatError(ValueError):
    """A supplied file is not in the expected layout; ``line`` is 1-based."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CodeRecord:
    """One code (or modifier) of a code system, as the catalog keeps it."""

    system: str
    code: str
    description: str
    billable: bool = True
    kind: str = CODE
    parent: str | None = None
    short_description: str | None = None
    notes: str = ""
    effective_date: date | None = None
    deletion_date: date | None = None


@dataclass(frozen=True, slots=True)
class PtpEdit:
    """An NCCI procedure-to-procedure edit: column 2 is not paid with column 1."""

    column1: str
    column2: str
    effective_date: date
    deletion_date: date | None
    modifier_indicator: int  # 0 never together, 1 allowed with a modifier, 9 not applicable


@dataclass(frozen=True, slots=True)
class MueLimit:
    """An NCCI medically unlikely edit: the most units of a code per line or per day."""

    code: str
    max_units: int
    adjudication_indicator: int  # 1 line, 2 date (absolute), 3 date (clinical)
    rationale: str = ""


def parse_yyyymmdd(text: str, line: int, what: str) -> date | None:
    """A CMS-style ``YYYYMMDD`` date; blank means none."""
    text = text.strip()
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise FileFormatError(line, f"{what} {text!r} is not a YYYYMMDD date") from None


def decode_text(data: bytes) -> str:
    """CMS files are Windows-1252; user files are usually UTF-8. Try UTF-8 first."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")
