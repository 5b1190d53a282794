"""X12 837 and 835 segments pasted into a case: where a claim file keeps its codes.

In a claim file every number has its place: the diagnoses sit in the ``HI`` segment
behind a qualifier (``HI*ABK:E119*ABF:Z794~``), the procedure with its modifiers in the
first element of a service line (``SV1*HC:97110:GP:KX*150*UN*2~``; some files separate
components by ``>`` or ``^``) and the units a few elements further on. Everything else —
claim and check numbers, NPIs, ZIP codes in ``N4``, payer IDs, reason codes in ``CAS`` and
``LQ`` — is not a code, however much it looks like one. Reading the segments by position
is therefore surer than reading their text by its words, and the reader masks every
segment it has read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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
COMPONENT_SEPARATOR = re.compile(r"[:>^]")
UNIT_COUNT = re.compile(r"\d{1,4}(?:\.0+)?")
MAX_MODIFIERS = 4


@dataclass(slots=True)
class SegmentCode:
    """One code read from a segment, with where it was written."""

    diagnosis: bool
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
        elif name in SERVICE_LINES:
            service = _service_line(elements, *SERVICE_LINES[name])
            if service is not None:
                found.codes.append(service)
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
    uses: ``:`` most often, ``>`` or ``^`` in many clearinghouses' files."""
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
            codes.append(SegmentCode(True, code.upper(), offset, offset + len(code)))
    return codes


def _service_line(
    elements: list[tuple[str, int]], procedure_at: int, units_at: int
) -> SegmentCode | None:
    if len(elements) <= procedure_at:
        return None
    parts = _components(*elements[procedure_at])
    if len(parts) < 2 or parts[0][0] not in PROCEDURE_QUALIFIERS or not parts[1][0]:
        return None
    code, offset = parts[1]
    modifiers = [part for part, _ in parts[2 : 2 + MAX_MODIFIERS] if part]
    units = None
    if len(elements) > units_at and UNIT_COUNT.fullmatch(elements[units_at][0]):
        units = int(float(elements[units_at][0])) or None
    return SegmentCode(False, code.upper(), offset, offset + len(code), modifiers, units)
