"""CMS's ICD-10-CM order file (``icd10cm_order_2026.txt``) → code records.

CMS publishes each fiscal year's release (and some April updates) as a zip holding this
fixed-width file, so a desk can follow a new release on the day it takes effect without
waiting for a package. Positions, 1-based as in CMS's description of the file:

=========  ==================================================================
1-5        order number, zero-filled
7-13       code without its dot, left-aligned (``E119   ``)
15         ``0`` a header (not billable), ``1`` a billable code
17-76      short description (60 characters)
78-        long description
=========  ==================================================================

Columns 6, 14, 16 and 77 are blanks. The file is plain ASCII in practice (read as
UTF-8, falling back to Windows-1252) with CRLF line ends; LF is accepted too.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable, Iterator

from consultant.codes.formats import ICD10CM, dotted_icd10cm
from consultant.codes.records import CodeRecord, FileFormatError, decode_text

SHORT_START, SHORT_END, LONG_START = 16, 76, 77
BLANK_COLUMNS = (5, 13, 15, 76)  # 0-based
# Letter first, then letters and digits: CMS's own releases have codes such as QA0.01
# whose second character is a letter, so the shape is not narrowed further.
ORDER_CODE = re.compile(r"[A-Z][0-9A-Z]{2,6}")
ORDER_MEMBER = re.compile(r"icd10cm[_-]order[_-].*\.txt", re.IGNORECASE)


class NotAnOrderFile(ValueError):
    """A zip that holds no order file, or several that could be meant."""


def parse_icd10cm_order(data: bytes) -> list[CodeRecord]:
    """Every code in an order file, or in the zip CMS publishes it in."""
    if zipfile.is_zipfile(io.BytesIO(data)):
        data = order_file_in_zip(data)
    return list(iter_order_lines(decode_text(data).splitlines()))


def order_file_in_zip(data: bytes) -> bytes:
    """The order file inside CMS's zip (addenda and other files beside it are ignored)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = [
            name
            for name in archive.namelist()
            if ORDER_MEMBER.fullmatch(name.rsplit("/", 1)[-1]) and "addend" not in name.lower()
        ]
        if len(names) != 1:
            found = ", ".join(names) if names else "none"
            raise NotAnOrderFile(
                f"the zip must hold exactly one icd10cm_order_YYYY.txt file (found: {found})"
            )
        return archive.read(names[0])


def iter_order_lines(lines: Iterable[str]) -> Iterator[CodeRecord]:
    """One record a line; the first bad line stops the file with its number."""
    seen: set[str] = set()
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        record = _record(line, number)
        if record.code in seen:
            raise FileFormatError(number, f"code {record.code} appears twice")
        seen.add(record.code)
        yield record


def _record(line: str, number: int) -> CodeRecord:
    if len(line) <= LONG_START:
        raise FileFormatError(
            number,
            f"line is {len(line)} characters long; an order file line has a long "
            f"description from column {LONG_START + 1}",
        )
    order, code, flag = line[0:5], line[6:13].rstrip(), line[14]
    if not order.isdigit():
        raise FileFormatError(number, f"order number {order!r} is not 5 digits")
    if any(line[column] != " " for column in BLANK_COLUMNS):
        raise FileFormatError(number, "fields are not separated by blanks at columns 6, 14, 16, 77")
    if not ORDER_CODE.fullmatch(code):
        raise FileFormatError(number, f"{line[6:13].strip()!r} is not an ICD-10-CM code")
    if flag not in "01":
        raise FileFormatError(
            number, f"header flag {flag!r} is neither 0 (header) nor 1 (billable)"
        )
    short, long = line[SHORT_START:SHORT_END].strip(), line[LONG_START:].strip()
    if not long:
        raise FileFormatError(number, f"code {code} has no long description")
    return CodeRecord(
        system=ICD10CM,
        code=dotted_icd10cm(code),
        description=long,
        billable=flag == "1",
        short_description=short or None,
    )
