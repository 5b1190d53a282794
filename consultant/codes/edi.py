"""X12 837 and 835 segments pasted into a case: where a claim file keeps its codes.

In a claim file every number has its place: the diagnoses sit in the ``HI`` segment
behind a qualifier (``HI*ABK:E119*ABF:Z794~``), the procedure with its modifiers in the
first element of a service line (``SV1*HC:97110:GP:KX*150*UN*2~``; some files separate
components by ``>`` or ``^``) and the units a few elements further on. Everything else —
claim and check numbers, NPIs, ZIP codes in ``N4``, payer IDs, reason codes in ``CAS`` and
``LQ`` — is not a code, however much it looks like one. An 835's ``SVC`` may also give the
line as it was submitted (SVC06, SVC07) when the payer changed it, and an 837's ``LIN``
the NDC of the drug on the line (``LIN**N4*00703476701~``). Reading the segments by position
is therefore surer than reading their text by its words, and the reader masks every
segment it has read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import pairwise

# A segment: its two- or three-character ID, then elements separated by ``*``, ended by ``~``.
SEGMENT = re.compile(r"(?<![\w*])([A-Z][A-Z0-9]{1,2})\*([^~\n]*)~")
# Qualifiers of an HI element that carry an ICD-10-CM diagnosis (principal, admitting,
# other, reason for visit, external cause).
DIAGNOSIS_QUALIFIERS = frozenset({"ABK", "ABF", "ABJ", "ABN", "APR", "BK", "BF", "BJ", "BN"})
# Qualifiers of a service line's procedure composite: HCPCS/CPT, or HIPPS/other.
PROCEDURE_QUALIFIERS = frozenset({"HC", "AD", "ER", "IV", "WK"})
# Where the procedure composite and the unit count sit in each service line segment
# (SV1: professional, SV2: institutional, SVC: a paid line in an 835).
SERVICE_LINES: dict[str, tuple[int, int]] = {"SV1": (0, 3), "SV2": (1, 4), "SVC": (0, 4)}
# SVC06 and SVC07: the procedure and the units as submitted, when the payer paid others.
SUBMITTED_PROCEDURE_AT = 5
SUBMITTED_UNITS_AT = 6
NDC_QUALIFIER = "N4"
DIAGNOSIS = "diagnosis"
PROCEDURE = "procedure"
DRUG = "ndc"
COMPONENT_SEPARATOR = re.compile(r"[:>^|]")
UNIT_COUNT = re.compile(r"\d{1,4}(?:\.0+)?")
MAX_MODIFIERS = 4


@dataclass(slots=True)
class SegmentCode:
    """One code read from a segment, with where it was written."""

    kind: str  # DIAGNOSIS, PROCEDURE or DRUG
    code: str
    start: int
    end: int
    modifiers: list[str] = field(default_factory=list)
    units: int | None = None


@dataclass(slots=True)
class Segments:
    """The segments of one text: the codes they hold and the spans they cover."""

    codes: list[SegmentCode] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)


def read_segments(text: str) -> Segments:
    """Every X12 segment of ``text``; empty (and quick) for a text with no ``~``."""
    found = Segments()
    if "~" not in text or "*" not in text:
        return found
    for match in SEGMENT.finditer(text):
        found.spans.append(match.span())
        name, start = match.group(1), match.start(2)
        elements = _elements(match.group(2), start)
        if name == "HI":
            found.codes.extend(_diagnoses(elements))
        elif name == "LIN":
            found.codes.extend(_drugs(elements))
        elif name in SERVICE_LINES:
            found.codes.extend(_service_line(name, elements))
    return found


def _elements(body: str, start: int) -> list[tuple[str, int]]:
    """Each element of a segment with the offset it starts at."""
    elements = []
    for part in body.split("*"):
        elements.append((part, start))
        start += len(part) + 1
    return elements


def _components(element: str, start: int) -> list[tuple[str, int]]:
    """The components of a composite element, split by whichever separator the file
    uses: ``:`` most often, ``>``, ``^`` or ``|`` in many clearinghouses' files."""
    components = []
    for part in COMPONENT_SEPARATOR.split(element):
        components.append((part, start))
        start += len(part) + 1
    return components


def _diagnoses(elements: list[tuple[str, int]]) -> list[SegmentCode]:
    codes = []
    for element, start in elements:
        parts = _components(element, start)
        if len(parts) >= 2 and parts[0][0] in DIAGNOSIS_QUALIFIERS and parts[1][0]:
            code, offset = parts[1]
            codes.append(SegmentCode(DIAGNOSIS, code.upper(), offset, offset + len(code)))
    return codes


def _drugs(elements: list[tuple[str, int]]) -> list[SegmentCode]:
    """The NDC of a ``LIN`` segment: the element after an ``N4`` qualifier."""
    for (qualifier, _), (value, offset) in pairwise(elements):
        if qualifier == NDC_QUALIFIER and value.isdigit() and len(value) == 11:
            return [SegmentCode(DRUG, value, offset, offset + len(value))]
    return []


def _service_line(name: str, elements: list[tuple[str, int]]) -> list[SegmentCode]:
    """The procedure of a service line with its modifiers and units, and for an 835 the
    procedure as submitted when the payer paid another (SVC06), each with its count."""
    procedure_at, units_at = SERVICE_LINES[name]
    paid = _procedure(elements, procedure_at)
    if paid is None:
        return []
    paid.units = _units(elements, units_at)
    if name != "SVC":
        return [paid]
    submitted = _procedure(elements, SUBMITTED_PROCEDURE_AT)
    submitted_units = _units(elements, SUBMITTED_UNITS_AT)
    if submitted is None:
        paid.units = max(paid.units or 0, submitted_units or 0) or None
        return [paid]
    submitted.units = submitted_units
    return [paid, submitted]


def _procedure(elements: list[tuple[str, int]], at: int) -> SegmentCode | None:
    if len(elements) <= at:
        return None
    parts = _components(*elements[at])
    if len(parts) < 2 or parts[0][0] not in PROCEDURE_QUALIFIERS or not parts[1][0]:
        return None
    code, offset = parts[1]
    modifiers = [part for part, _ in parts[2 : 2 + MAX_MODIFIERS] if part]
    return SegmentCode(PROCEDURE, code.upper(), offset, offset + len(code), modifiers)


def _units(elements: list[tuple[str, int]], at: int) -> int | None:
    if len(elements) > at and UNIT_COUNT.fullmatch(elements[at][0]):
        return int(float(elements[at][0])) or None
    return None
