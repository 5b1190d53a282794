"""A licensed CPT descriptor file that the user supplies → code records.

CPT descriptors belong to the AMA, so the desk ships none: a practice with a CPT licence
exports its descriptors to a CSV and imports it with ``consultant codes import cpt FILE``.

Layout: UTF-8 CSV (comma or tab separated), two columns — ``code``, ``descriptor`` — one
code per row. A first row whose code column is not a code (``code,descriptor``) is taken
as a header. Codes are Category I (``99213``), II (``3074F``), III (``0591T``), PLA
(``0241U``), MAAA (``0002M``) or ``A``-suffixed. Without such a file, CPT codes are
checked by format and section only.
"""

from __future__ import annotations

import csv
import io

from consultant.codes.formats import CPT, is_cpt
from consultant.codes.records import CodeRecord, FileFormatError, decode_text


def parse_cpt_csv(data: bytes) -> list[CodeRecord]:
    text = decode_text(data)
    dialect = "excel-tab" if "\t" in text.split("\n", 1)[0] else "excel"
    records: dict[str, CodeRecord] = {}
    for number, row in enumerate(csv.reader(io.StringIO(text), dialect=dialect), start=1):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != 2:
            raise FileFormatError(number, f"expected 2 columns (code, descriptor), got {len(row)}")
        code, descriptor = row[0].strip().upper(), row[1].strip()
        if number == 1 and not is_cpt(code):
            continue  # header row
        if not is_cpt(code):
            raise FileFormatError(number, f"{row[0]!r} is not a CPT code")
        if not descriptor:
            raise FileFormatError(number, f"{code} has an empty descriptor")
        if code in records:
            raise FileFormatError(number, f"{code} appears twice")
        records[code] = CodeRecord(system=CPT, code=code, description=descriptor)
    if not records:
        raise FileFormatError(1, "no CPT rows found")
    return list(records.values())
