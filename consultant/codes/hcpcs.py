"""CMS's annual HCPCS Level II file (fixed width) → code and modifier records.

The file starts with a free-text disclaimer, then one record per line, 320 characters
wide (trailing blanks may be trimmed). Positions used here, 1-based as in CMS's record
layout:

=========  =======================================================================
1-5        code (procedure codes ``A0021``; modifiers right-aligned, ``   LT``)
6-10       sequence number
11         record kind: 3 procedure, 4 its continuation, 7 modifier, 8 its continuation
12-91      long description (continued on kind 4 and 8 lines)
92-119     short description
269-276    date the code was added (``YYYYMMDD``)
277-284    effective date of the latest action
285-292    termination date (blank while the code is active)
293        action code (A added, C changed, D discontinued, N no change, …)
=========  =======================================================================
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date

from consultant.codes.formats import HCPCS, HCPCS_CODE
from consultant.codes.records import (
    CODE,
    MODIFIER_KIND,
    CodeRecord,
    FileFormatError,
    decode_text,
    parse_yyyymmdd,
)

RECORD_WIDTH = 320
FIRST_LINE_KINDS = {"3": CODE, "7": MODIFIER_KIND}
CONTINUATION_KINDS = {"4": CODE, "8": MODIFIER_KIND}
MODIFIER_CODE = re.compile(r"[0-9A-Z]{2}")
RECORD_START = re.compile(r"(?:[A-Z]\d{4}|   [0-9A-Z]{2})\d{5}[3478]")


@dataclass(slots=True)
class _Pending:
    kind: str
    code: str
    long_parts: list[str]
    short: str
    added: date | None
    terminated: date | None

    def record(self) -> CodeRecord:
        return CodeRecord(
            system=HCPCS,
            code=self.code,
            description=" ".join(p for p in self.long_parts if p),
            short_description=self.short or None,
            kind=self.kind,
            effective_date=self.added,
            deletion_date=self.terminated,
        )


def parse_hcpcs(data: bytes) -> list[CodeRecord]:
    """Every code and modifier in the file; a bad record stops with its line number."""
    return list(iter_hcpcs(decode_text(data).splitlines()))


def iter_hcpcs(lines: Iterable[str]) -> Iterator[CodeRecord]:
    pending: _Pending | None = None
    started = False
    seen: set[tuple[str, str]] = set()
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not started:
            if not RECORD_START.match(line):
                continue  # the disclaimer before the first record
            started = True
        if not line.strip():
            continue
        kind_char = line[10:11]
        if kind_char in CONTINUATION_KINDS:
            _continue(pending, line, number, CONTINUATION_KINDS[kind_char])
            continue
        if kind_char not in FIRST_LINE_KINDS:
            raise FileFormatError(number, f"record kind {kind_char!r} is not 3, 4, 7 or 8")
        if pending is not None:
            yield pending.record()
        pending = _first_line(line, number, FIRST_LINE_KINDS[kind_char])
        if (pending.kind, pending.code) in seen:
            raise FileFormatError(number, f"{pending.code} appears twice")
        seen.add((pending.kind, pending.code))
    if pending is None:
        raise FileFormatError(1, "no HCPCS records found (is this CMS's fixed-width file?)")
    yield pending.record()


def _first_line(line: str, number: int, kind: str) -> _Pending:
    if len(line) < 293:
        raise FileFormatError(number, f"record is {len(line)} characters, expected {RECORD_WIDTH}")
    line = line.ljust(RECORD_WIDTH)
    code = line[0:5].strip()
    shape = HCPCS_CODE if kind == CODE else MODIFIER_CODE
    if not shape.fullmatch(code):
        raise FileFormatError(number, f"{line[0:5]!r} is not a HCPCS {kind}")
    long_description = line[11:91].strip()
    if not long_description:
        raise FileFormatError(number, f"{code} has no description")
    return _Pending(
        kind=kind,
        code=code,
        long_parts=[long_description],
        short=line[91:119].strip(),
        added=parse_yyyymmdd(line[268:276], number, "date added"),
        terminated=parse_yyyymmdd(line[284:292], number, "termination date"),
    )


def _continue(pending: _Pending | None, line: str, number: int, kind: str) -> None:
    code = line[0:5].strip()
    if pending is None or pending.code != code or pending.kind != kind:
        raise FileFormatError(number, f"continuation line for {code!r} follows no record of it")
    pending.long_parts.append(line[11:91].strip())
