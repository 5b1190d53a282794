"""NCCI files that the user supplies (they embed CPT and carry the AMA licence).

**PTP (procedure-to-procedure) edits** — CMS's tab-delimited text (or the same columns as
CSV). Any header lines come first; data rows have these columns:

1. column 1 code
2. column 2 code
3. "in existence prior to 1996" flag (``*`` or blank; ignored)
4. effective date, ``YYYYMMDD``
5. deletion date, ``YYYYMMDD``, or ``*`` / blank when still in force
6. modifier indicator: ``0`` never together, ``1`` allowed with a modifier, ``9`` n/a
7. (optional) the edit's rationale; ignored

**MUE (medically unlikely edits)** — CMS's CSV. Any header lines come first; data rows:

1. code
2. MUE value (maximum units)
3. adjudication indicator, starting with its digit: ``1`` line edit, ``2`` date of
   service (policy, absolute), ``3`` date of service (clinical)
4. (optional) rationale
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from typing import TypeVar

from consultant.codes.formats import is_cpt, is_hcpcs
from consultant.codes.records import (
    FileFormatError,
    MueLimit,
    PtpEdit,
    decode_text,
    parse_yyyymmdd,
)

Row = TypeVar("Row")
MODIFIER_INDICATORS = {0, 1, 9}
ADJUDICATION_INDICATORS = {1, 2, 3}


def is_procedure_code(text: str) -> bool:
    return is_cpt(text) or is_hcpcs(text)


def _rows(data: bytes) -> list[tuple[int, list[str]]]:
    """(line number, cells) for every non-blank line, tab- or comma-separated."""
    text = decode_text(data)
    rows: list[tuple[int, list[str]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        cells = line.split("\t") if "\t" in line else next(csv.reader([line]))
        rows.append((number, [cell.strip() for cell in cells]))
    return rows


def _parse_data_rows(
    data: bytes,
    parse_row: Callable[[int, list[str]], Row],
    key: Callable[[Row], tuple[object, ...]],
    what: str,
) -> list[Row]:
    """Skip header lines up to the first row that starts with a code; parse all after it.

    A key seen twice is an error: the file would say two things about one edit.
    """
    parsed: list[Row] = []
    seen: set[tuple[object, ...]] = set()
    for number, cells in _rows(data):
        if not parsed and not is_procedure_code(cells[0].upper()):
            continue
        row = parse_row(number, cells)
        if key(row) in seen:
            raise FileFormatError(number, f"{what} {' '.join(map(str, key(row)))} appears twice")
        seen.add(key(row))
        parsed.append(row)
    if not parsed:
        raise FileFormatError(1, f"no {what} rows found")
    return parsed


def _code(cell: str, number: int, what: str) -> str:
    code = cell.strip().upper()
    if not is_procedure_code(code):
        raise FileFormatError(number, f"{what} {cell!r} is not a CPT or HCPCS code")
    return code


def _int(cell: str, number: int, what: str, allowed: set[int] | None = None) -> int:
    digits = cell.strip()[:1] if allowed else cell.strip()
    if not digits.isdigit():
        raise FileFormatError(number, f"{what} {cell!r} is not a number")
    value = int(digits)
    if allowed is not None and value not in allowed:
        raise FileFormatError(number, f"{what} {value} is not one of {sorted(allowed)}")
    return value


def _ptp_row(number: int, cells: list[str]) -> PtpEdit:
    if len(cells) < 6:
        raise FileFormatError(number, f"expected at least 6 columns, got {len(cells)}")
    effective = parse_yyyymmdd(cells[3], number, "effective date")
    if effective is None:
        raise FileFormatError(number, "effective date is missing")
    deletion_text = "" if cells[4] == "*" else cells[4]
    return PtpEdit(
        column1=_code(cells[0], number, "column 1 code"),
        column2=_code(cells[1], number, "column 2 code"),
        effective_date=effective,
        deletion_date=parse_yyyymmdd(deletion_text, number, "deletion date"),
        modifier_indicator=_int(cells[5], number, "modifier indicator", MODIFIER_INDICATORS),
    )


def _mue_row(number: int, cells: list[str]) -> MueLimit:
    if len(cells) < 3:
        raise FileFormatError(number, f"expected at least 3 columns, got {len(cells)}")
    return MueLimit(
        code=_code(cells[0], number, "code"),
        max_units=_int(cells[1], number, "MUE value"),
        adjudication_indicator=_int(
            cells[2], number, "adjudication indicator", ADJUDICATION_INDICATORS
        ),
        rationale=cells[3] if len(cells) > 3 else "",
    )


def parse_ptp(data: bytes) -> list[PtpEdit]:
    return _parse_data_rows(
        data, _ptp_row, lambda e: (e.column1, e.column2, e.effective_date), "PTP edit"
    )


def parse_mue(data: bytes) -> list[MueLimit]:
    return _parse_data_rows(data, _mue_row, lambda limit: (limit.code,), "MUE")
