"""Tables pasted into a case: what a column's header says about the cells under it.

Remittance exports, EOB columns and clearinghouse reports set every number under a
header: ``Claim#|Svc Date|Proc|Mod|Units|Charge``, ``acct,dos,code,mod,qty,amt``, or
columns aligned by runs of spaces. The header decides what a cell is far better than the
cell's neighbours do: a five-digit number under "Acct" is an account whatever it looks
like, and the number under "Units" on a code's row is that code's unit count. A row is a
line split by the separator its header uses (pipe, tab, comma) or, for aligned columns,
by the header's cell positions; the header is the nearest line above in the same block
with three or more cells and no number in any of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ID = "id"
CODE = "code"
MODIFIER = "modifier"
UNITS = "units"
DIAGNOSIS = "diagnosis"
OTHER = "other"  # dates, amounts, names: never a code

DELIMITERS = ("|", "\t", ",", "/")
ALIGNED_GAP = re.compile(r" {2,}|\t")
ALIGNED_CELL = re.compile(r"[^\s|]+(?: [^\s|]+)*")
NUMBER_CELL = re.compile(r"\d{3,}|\d[/.-]\d")
CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
HEADER_REACH = 30
MIN_CELLS = 3

CODE_HEADER = re.compile(r"(?i)\b(?:cpt|hcpcs|proc\w*|codes?|service|svc|px|24d)\b")
MODIFIER_HEADER = re.compile(r"(?i)^(?:mods?\s*\d?|modifiers?\s*\d?|m\s*[1-4])$")
UNITS_HEADER = re.compile(r"(?i)\b(?:units?|uos|qty|quantity|un|days\s*/\s*units|svc\s*units)\b")
# A code word in these names something else: "Adj Code", "Reason Code", "Rev Code"; but
# "Proc/Rev" is a procedure's column.
NOT_CODE_HEADER = re.compile(r"(?i)\b(?:adj\w*|reason|remark|rev)\b")
PROCEDURE_HEADER = re.compile(r"(?i)\b(?:proc\w*|cpt|hcpcs)\b")
# ... and words for a count that give way to a code word in the same cell ("POS NOS PROC")
COUNT_HEADER = re.compile(r"(?i)\b(?:nos|how\s+many|count|times|24g|svcs)\b")
DIAGNOSIS_HEADER = re.compile(r"(?i)\b(?:dx\d?|diag\w*|icd(?:[\s-]*10)?(?:[\s-]*cm)?)\b")
DATE_HEADER = re.compile(r"(?i)\b(?:dos|dates?|from|thru)\b")
OTHER_HEADER = re.compile(
    r"(?i)\b(?:dos|dates?|from|thru|to|billed|charges?|chg|amt|amount|allowed|paid|pay|"
    r"adj\w*|deduct\w*|coins\w*|copay|balance|bal|carc|rarc|remarks?|rmk|reason|grp|"
    r"group\s*/\s*rc|status|names?|patient|pt|pos|npi|tin|rev(?:enue)?|24[abcefhij]|ptr|"
    r"pointer)\b"
)


# "Key: value" pairs, several to a line when parted by a wide gap ("Date: 02-Jul-2026
# Procedure: HC:92250   Modifiers: TC"); a key is a few words, its value runs to the next
# key or the end of the line.
KEY = r"[A-Za-z0-9][A-Za-z0-9 .#/()&'_-]{0,30}?"  # box 24's "24D:" too
PAIR = re.compile(
    rf"(?:^|(?<=[ \t]{{2}})|(?<=\t))[ \t]*({KEY})[ \t]*:[ \t]*"
    rf"(.*?)(?=[ \t]{{2,}}{KEY}[ \t]*:|[ \t]*$)"
)
RECORD_REACH = 6


@dataclass(frozen=True, slots=True)
class Cell:
    """One cell of a table row: its span in the text and its column's role."""

    start: int
    end: int
    role: str


def header_role(header: str, *, identifier: re.Pattern[str]) -> str:
    """What the cells under ``header`` are: ``identifier`` recognises identifier labels
    (the extractor's own label words), the patterns here the rest."""
    words = CAMEL.sub(" ", header).replace("_", " ").replace("(s)", "").strip()
    if MODIFIER_HEADER.match(words):
        return MODIFIER
    if UNITS_HEADER.search(words):
        return UNITS
    if DIAGNOSIS_HEADER.search(words):
        return DIAGNOSIS
    if DATE_HEADER.search(words):
        return OTHER
    if CODE_HEADER.search(words) and (
        PROCEDURE_HEADER.search(words) or not NOT_CODE_HEADER.search(words)
    ):
        return CODE
    if COUNT_HEADER.search(words):
        return UNITS
    if identifier.search(words + " "):
        return ID
    if OTHER_HEADER.search(words):
        return OTHER
    return ""


def row_cells(text: str, position: int, *, identifier: re.Pattern[str]) -> list[Cell] | None:
    """The cells of the table row holding ``position``, each with its column's role;
    None when the line is not a row under a header."""
    line_start = text.rfind("\n", 0, position) + 1
    line_end = text.find("\n", position)
    line_end = len(text) if line_end < 0 else line_end
    line = text[line_start:line_end]
    delimiter = _delimiter(line)
    header = _header_above(text, line_start, delimiter)
    if header is None:
        return None
    roles = [header_role(name, identifier=identifier) for name, _ in header]
    if delimiter is not None:
        spans = _delimited(line, delimiter)
        if len(spans) < MIN_CELLS or len(spans) > len(roles) + 1:
            return None  # a row of many more cells than its header is read by their words
        return [
            Cell(line_start + s, line_start + e, roles[i] if i < len(roles) else "")
            for i, (s, e) in enumerate(spans)
        ]
    if not ALIGNED_GAP.search(line):  # a line of prose under a header is not its row
        return None
    starts = [offset for _, offset in header]
    cells = []
    for match in ALIGNED_CELL.finditer(line):
        column = max((i for i, s in enumerate(starts) if s <= match.start() + 1), default=0)
        cells.append(Cell(line_start + match.start(), line_start + match.end(), roles[column]))
    return cells


def _delimiter(line: str) -> str | None:
    """The character a row's cells are split by: a pipe or tab used twice, a comma in a
    line without aligned columns, or a slash between cells with no space
    ("90715/SL/1/53.52"; "03/03/26 41100" is a date)."""
    for delimiter in DELIMITERS:
        if line.count(delimiter) < 2:
            continue
        if delimiter == "/" and (line.count("/") < MIN_CELLS - 1 or " " in line.strip()):
            continue
        if delimiter == "," and ALIGNED_GAP.search(line):
            continue  # "LT,NU,KX" in a row of aligned columns
        return delimiter
    return None


def _header_above(
    text: str, line_start: int, delimiter: str | None
) -> list[tuple[str, int]] | None:
    """The header of the block above ``line_start``: (cell text, offset in its line)."""
    end = line_start - 1
    for _ in range(HEADER_REACH):
        if end <= 0:
            return None
        begin = text.rfind("\n", 0, end) + 1
        line = text[begin:end]
        if not line.strip():
            return None
        cells = _header_cells(line, delimiter)
        if cells is not None:
            return _with_header_above(text, begin, cells) if delimiter is None else cells
        end = begin - 1
    return None


def _with_header_above(
    text: str, begin: int, cells: list[tuple[str, int]]
) -> list[tuple[str, int]]:
    """A header written on two lines ("PROC/" over "REV", "NO." over "SVCS"): each cell
    takes the words of the cell above it."""
    if begin == 0:
        return cells
    above_begin = text.rfind("\n", 0, begin - 1) + 1
    above = _header_cells(text[above_begin : begin - 1], None)
    if above is None:
        return cells
    merged = [
        (" ".join([*(upper[0] for upper in above if _stacked(upper, cell)), cell[0]]), cell[1])
        for cell in cells
    ]
    alone = [upper for upper in above if not any(_stacked(upper, cell) for cell in cells)]
    return sorted(merged + alone, key=lambda cell: cell[1])


def _stacked(upper: tuple[str, int], lower: tuple[str, int]) -> bool:
    """Whether two header cells on adjacent lines overlap in their columns."""
    (upper_name, upper_offset), (name, offset) = upper, lower
    return upper_offset <= offset + len(name) and offset <= upper_offset + len(upper_name)


def _header_cells(line: str, delimiter: str | None) -> list[tuple[str, int]] | None:
    if delimiter is not None:
        if line.count(delimiter) < 2:
            return None
        found = [(line[s:e].strip(), s) for s, e in _delimited(line, delimiter)]
    else:
        # a tab- or pipe-separated header's rows have tabs or pipes: a line without them
        # is not its row
        if not ALIGNED_GAP.search(line) or "\t" in line or line.count("|") >= 2:
            return None
        found = [(m.group(), m.start()) for m in ALIGNED_CELL.finditer(line)]
    named = [name for name, _ in found if name]
    if len(named) < MIN_CELLS or any(NUMBER_CELL.search(name) for name in named):
        return None
    if not all(any(ch.isalpha() for ch in name) for name in named):
        return None
    return found


def _delimited(line: str, delimiter: str) -> list[tuple[int, int]]:
    spans = []
    start = 0
    for part in line.split(delimiter):
        spans.append((start, start + len(part)))
        start += len(part) + 1
    return spans


def key_values(
    text: str, line_start: int, line_end: int, *, identifier: re.Pattern[str]
) -> list[Cell]:
    """The values of a line's "Key: value" pairs, each with its key's role."""
    return [
        Cell(
            line_start + m.start(2),
            line_start + m.end(2),
            header_role(m.group(1), identifier=identifier),
        )
        for m in PAIR.finditer(text[line_start:line_end])
    ]


def record_values(text: str, position: int, *, identifier: re.Pattern[str]) -> list[Cell] | None:
    """When ``position`` is in the value of a code key ("Procedure: HC:92250"), the
    other values of its record: the pairs of its line and of the lines below, up to a
    blank line, the next code key or six lines. None when it is not such a value."""
    line_start = text.rfind("\n", 0, position) + 1
    line_end = _line_end(text, position)
    pairs = key_values(text, line_start, line_end, identifier=identifier)
    own = next((c for c in pairs if c.start <= position < c.end), None)
    if own is None or own.role != CODE:
        return None
    values = [c for c in pairs if c is not own]
    for _ in range(RECORD_REACH):
        if line_end >= len(text):
            break
        line_start, line_end = line_end + 1, _line_end(text, line_end + 1)
        if not text[line_start:line_end].strip():
            break
        pairs = key_values(text, line_start, line_end, identifier=identifier)
        if any(c.role == CODE for c in pairs):
            break
        values.extend(pairs)
    return values


def _line_end(text: str, position: int) -> int:
    end = text.find("\n", position)
    return len(text) if end < 0 else end
