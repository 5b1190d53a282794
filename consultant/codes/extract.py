"""Find the medical codes a case email mentions, without mistaking other numbers for them.

Case emails are full of numbers that look like codes. Those whose layout gives them away
(dates, phone numbers, amounts, ZIP codes after a state, NDCs) are masked first
(``masks``); a number an identifier's label governs ("claim #", "(ZIP)", a column headed
"Acct") is skipped when it is read (``identifiers``, ``tables``).

Each token is judged by its shape and the words around it:

* dotted ICD-10-CM (``E11.9``) is trusted by shape alone;
* dotless ICD-10-CM (``E119``, ``I10``) needs a diagnosis word nearby *and* a catalog hit;
* ``J1100`` is both HCPCS and dotless ICD-10-CM ``J11.00``: nearby words decide, and when
  they do not, both readings are kept for the coder to pick;
* ICD-10-PCS ships without a catalog here, so it is read only next to a "PCS" word and
  says so in its reason.

Modifiers (``99213-25``, ``97110 GP``, "modifier 59") and units (``x2``, ``3 units``)
are attached to the code they belong to (``attachment``).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from consultant.codes import edi, formats, tables
from consultant.codes.attachment import (
    GLUED_UNITS,
    SENTENCE_BREAK,
    UNITS_AFTER,
    known_modifiers,
    modifier_phrases,
    modifier_target,
    modifiers_after,
    row_count,
    shared_modifier_phrases,
    units_in_row,
    units_in_sentence,
    units_written_after,
    units_written_before,
)
from consultant.codes.formats import CPT, HCPCS, ICD10CM, ICD10PCS, MODIFIER, NDC
from consultant.codes.identifiers import (
    ID_HEADER,
    NOT_CODE_AROUND,
    QUANTITY_AFTER,
    STREET_AFTER,
    counted,
    identifier_by_words,
    labelled_identifier,
)
from consultant.codes.masks import NDC_PATTERNS, mask, signature_span, trap_spans

HIGH = 0.95
MEDIUM = 0.75
AMBIGUOUS = 0.5
LOW = 0.4

# (system, code) -> is it in the loaded catalog?
CatalogCheck = Callable[[str, str], bool]
# system -> has a release of it been loaded? Without one, "not in the catalog" says nothing.
CatalogLoaded = Callable[[str], bool]


@dataclass(slots=True)
class FoundCode:
    """One code found in a text: what it is, how sure we are, why, and where it was."""

    system: str
    code: str
    start: int
    end: int
    confidence: float
    reason: str
    modifiers: list[str] = field(default_factory=list)
    units: int | None = None
    alternatives: list[str] = field(default_factory=list)  # other readings, "system:code"
    source: str = "text"

    @property
    def ambiguous(self) -> bool:
        """Whether the text leaves open which of several readings the code is."""
        return bool(self.alternatives)

    @property
    def key(self) -> str:
        """``system:code`` with its modifiers and units: what a coder would write down."""
        text = f"{self.system}:{self.code}" + "".join(f"-{m}" for m in self.modifiers)
        return text + (f" x{self.units}" if self.units else "")

    def as_dict(self) -> dict[str, object]:
        return {
            "system": self.system,
            "code": self.code,
            "modifiers": list(self.modifiers),
            "units": self.units,
            "confidence": self.confidence,
            "reason": self.reason,
            "source": self.source,
            "span": [self.start, self.end],
            "alternatives": list(self.alternatives),
            "ambiguous": self.ambiguous,
        }


# HCPCS modifiers that read as unit counts in a case ("96127 X1", 837's "UN*4").
UNIT_LIKE_MODIFIERS = frozenset({"UN", "X1", "X2", "X3", "X4", "X5"})
NOT_CODE_COLUMNS = frozenset({tables.ID, tables.UNITS, tables.MODIFIER, tables.OTHER})


# --- context words ------------------------------------------------------------------

DIAGNOSIS_WORDS = re.compile(
    r"(?i)\b(?:icd(?:-?10)?(?:-?cm)?|dx\d{0,2}|diagnos\w*|diag|dxs|primary|secondary|"
    r"principal|reason for visit|z-?codes?|decimals?|"
    # conditions written as their usual abbreviations: "HTN I10", "DM2 E119"
    r"htn|dm2?|copd|chf|ckd|cad|afib|gerd|uti|hld)\b"
)
# A diagnosis label right before a code decides its reading, whatever else is near:
# "Dx M5450", "DX1: C61", "diagnosis code E116", "ICD-10 M1711".
DIAGNOSIS_LABEL = re.compile(
    r"(?i)\b(?:icd(?:-?10)?(?:-?cm)?|dx\d{0,2}|diagnos[ie]s|diag|21[a-l]|fl\s?67[a-q]?)"
    r"(?:\s+codes?(?:\(s\))?)?"
    r"(?:\s+(?:was|is|were|are|of))?\s*[:#=;]?\s*$"
)
# Box 21's letters ("A. M7541   B. M5450"), read as diagnoses under a box 21 or "Dx" label.
POINTER_LETTER = re.compile(r"(?<![\w.])[A-L][.):]?\s{1,3}$")
BOX_21 = re.compile(r"(?i)(?:\b21\b|\bdx\b|diagnos)")
POINTER_REACH = 160
PROCEDURE_WORDS = re.compile(
    r"(?i)(?:\b(?:cpt|hcpcs|codes?|bill\w*|report\w*|charg\w*|modifiers?|units?|e/m|em|"
    r"visits?|procedures?|services?|add-?on|primary code|panel|infusion|injection|"
    r"performed|submitted|denied|paid|coded|code\s+it|use)\b|/)"
)
HCPCS_WORDS = re.compile(
    r"(?i)\b(?:hcpcs|level ii|j-?codes?|units?|mg|mcg|ml|injection|supply|supplies|dme|"
    r"drugs?|modifiers?|cpt|bill\w*|dose|vials?|wheelchair|orthotic|prosthetic|g-?codes?)\b"
)
CPT_IN_TEXT = re.compile(r"(?<![\w.~])\d{4}[0-9FTU](?![\w.~])")
DOTTED_ICD_IN_TEXT = re.compile(r"(?<![\w.])[A-Z]\d[0-9A-Z]\.[0-9A-Z]{1,4}(?![\w.])")
# Words that make a dotted number a part of a document: "Section B10.2", "manual G15.7".
DOCUMENT_PART_BEFORE = re.compile(
    r"(?i)\b(?:section|sect\.|chapter|ch\.|manual|criteria|criterion|article|page|version|"
    r"ver\.|rule|item|paragraph|para\.)\s*(?:no\.?|#)?\s*$"
)
# ICD-9-CM's V and E codes, whose short dotted form ICD-10-CM uses only for headings.
ICD9_SUPPLEMENTARY = re.compile(r"[VE]\d{2}\.\d{1,2}")
# Words that put a dotted code in the old ICD-9-CM set ("legacy chart shows V45.81").
ICD9_WORDS = re.compile(
    r"(?i)\b(?:icd-?9(?:-?cm)?|legacy|old|former|crosswalk\w*|gems?|equivalent)\b"
)
# Words right before a token that say a code follows: "codes such as Z131", "e.g. E113291".
CODE_WORDS_BEFORE = re.compile(
    r"(?i)(?:\bcodes?(?:\s+(?:such\s+as|like))?|\be\.g\.|\bfor\s+example|\bsuch\s+as|"
    r"\b(?:add|use|report|submit|code)(?:\s+(?:a|an|the))?)[\s,:]*$"
)
PCS_WORDS = re.compile(r"(?i)\b(?:pcs|icd-?10-?pcs|inpatient procedure codes?)\b")
LIST_GAP = re.compile(r"(?i)^\s*(?:,|;|/|&|\+|and|or|,\s*and|,\s*or|vs\.?|versus|\(|\))?\s*$")

CONTEXT_BEFORE = 36
CONTEXT_AFTER = 16

TOKEN = re.compile(
    r"(?<![\w.@$#~])(?<![A-Za-z]-)(?<!\b[A-Za-z]/)(?<!\d{6}-)"
    # not a later group of a hyphenated number ("UR-26-20553", "9552-43360"); a range of
    # codes ("99202-99205") is two codes
    r"(?<!\b\d-)(?<!\b\d\d-)(?<!\b\d{3}-)(?<!\b\d{4}-)"
    r"(?=[A-Za-z]{0,3}\d)"  # every code has a digit among its first four characters
    # up to eleven characters: a code with modifiers or units glued on ("97110GPKX", "97110GPx10")
    r"([0-9A-Za-z][0-9A-Za-z]{2,10}(?:\.[0-9A-Za-z]{1,4})?)"
    # not "99309-B", nor the first group of "96372-322"
    r"(?![\w@~]|\.\d|,\d{3}(?!\d)|-[A-Za-z]{2}(?![xX]\d)[A-Za-z]|-[A-Za-z]\b|-(?!\d{5}(?!\d))\d{3})"
)


def find_ndcs(text: str) -> list[FoundCode]:
    """NDCs in any of the usual layouts, normalised to the 11-digit billing form."""
    found: list[FoundCode] = []
    for pattern in NDC_PATTERNS:
        for match in pattern.finditer(text):
            group = 1 if pattern.groups else 0
            start, end = match.span(group)
            if any(f.start < end and start < f.end for f in found):
                continue
            code = formats.ndc_as_11_digits(match.group(group))
            found.append(FoundCode(NDC, code, start, end, HIGH, "NDC layout"))
    return found


def _window(text: str, start: int, end: int) -> tuple[str, str]:
    """The words just before and just after a token, cut at a sentence break."""
    before = text[max(0, start - CONTEXT_BEFORE) : start]
    breaks = list(SENTENCE_BREAK.finditer(before))
    if breaks:
        before = before[breaks[-1].end() :]
    after = text[end : end + CONTEXT_AFTER]
    cut = SENTENCE_BREAK.search(after)
    return before, after[: cut.start()] if cut else after


def _sentence_span(
    breaks: list[tuple[int, int]], length: int, start: int, end: int
) -> tuple[int, int]:
    """Where the sentence (or line) around a token starts and ends, given the text's
    sentence breaks and length."""
    index = bisect.bisect_left(breaks, (start, start))
    first = breaks[index - 1][1] if index else 0
    after = bisect.bisect_left(breaks, (end, end))
    last = breaks[after][0] if after < len(breaks) else length
    return first, last


@dataclass(slots=True)
class _Context:
    before: str
    after: str
    inherited: str | None  # system of the code just before, when this token continues a list
    sentence: str

    def has(self, words: re.Pattern[str]) -> bool:
        return bool(words.search(self.before) or words.search(self.after))

    def diagnosis(self) -> bool:
        """A diagnosis word nearby, a diagnosis list going on, or a dotted ICD-10-CM code
        in the same sentence."""
        return (
            self.inherited == ICD10CM
            or self.has(DIAGNOSIS_WORDS)
            or bool(DOTTED_ICD_IN_TEXT.search(self.sentence))
        )


class _Reader:
    """One pass over one text: masks, then tokens, then modifiers and units."""

    def __init__(
        self, text: str, known: CatalogCheck | None, loaded: CatalogLoaded | None, source: str
    ) -> None:
        self.text = text
        self.known = known
        self.loaded = loaded
        self.source = source
        ndcs = find_ndcs(text)
        # "Authorization 11043-2026-03" has an NDC's layout and is masked, not reported
        self.ndcs = [f for f in ndcs if not labelled_identifier(text, f.start)]
        segments = edi.read_segments(text)
        self.claim = [c for c in map(self._segment_code, segments.codes) if c is not None]
        spans = [(f.start, f.end) for f in ndcs] + segments.spans + signature_span(text)
        masked = mask(text, spans)
        self.masked = mask(masked, trap_spans(masked))
        self.sentence_breaks = [m.span() for m in SENTENCE_BREAK.finditer(self.masked)]
        self.found: list[FoundCode] = []
        self.read_up_to = 0  # where the last code's modifiers and units end
        self.diagnosis_lists: set[int] = set()
        self.rows: dict[int, list[tables.Cell] | None] = {}
        # what a code took as its own (what follows it, its row's or record's modifier
        # cells): no modifier phrase there is read again
        self.attached: list[tuple[int, int]] = []

    def read(self) -> list[FoundCode]:
        tokens = list(TOKEN.finditer(self.masked))
        self.diagnosis_lists = self._diagnosis_lists(tokens)
        for match in tokens:
            start, end = match.span(1)
            if start < self.read_up_to:
                continue
            for code in self._classify(match.group(1), start, end):
                self.found.append(code)
                self.read_up_to = max(self.read_up_to, self._attach_trailing(code))
        self._attach_modifier_phrases()
        self._attach_sentence_units()
        return self.ndcs + self.claim + self.found

    def _diagnosis_lists(self, tokens: list[re.Match[str]]) -> set[int]:
        """Where lists of two or more dotless ICD-10-CM codes start each item ("I5023,
        N184, E875"): codes that the catalog holds, listed together, are diagnoses."""
        starts: set[int] = set()
        run: list[int] = []
        previous_end = -1
        for match in [*tokens, None]:
            listed = match is not None and self._dotless_diagnosis_shape(match.group(1))
            if listed and run and LIST_GAP.match(self.masked[previous_end : match.start(1)]):
                run.append(match.start(1))
            else:
                if len(run) >= 2:
                    starts.update(run)
                run = [match.start(1)] if listed else []
            if match is not None:
                previous_end = match.end(1)
        return starts

    def _dotless_diagnosis_shape(self, token: str) -> bool:
        """A capitalised dotless token of four or more characters the ICD-10-CM catalog holds."""
        return (
            len(token) >= 4
            and token.isupper()
            and formats.is_icd10cm(token)
            and self._known(ICD10CM, formats.dotted_icd10cm(token))
        )

    # --- classification ------------------------------------------------------------

    def _segment_code(self, item: edi.SegmentCode) -> FoundCode | None:
        """A code a claim file's segment holds: its place says what it is."""
        if item.kind == edi.DRUG:
            reason = "NDC in a claim file's drug segment"
            return self._code(NDC, item.code, item.start, item.end, HIGH, reason)
        if item.kind == edi.DIAGNOSIS:
            if not formats.is_icd10cm(item.code):
                return None
            icd = formats.dotted_icd10cm(item.code)
            sure = HIGH if self._known(ICD10CM, icd) else MEDIUM
            reason = "ICD-10-CM in a claim file's diagnosis segment"
            return self._code(ICD10CM, icd, item.start, item.end, sure, reason)
        if formats.is_cpt(item.code):
            system = CPT
        elif formats.is_hcpcs(item.code):
            system = HCPCS
        else:
            return None
        reason = "procedure in a claim file's service line"
        code = self._code(system, item.code, item.start, item.end, HIGH, reason)
        code.modifiers = list(dict.fromkeys(item.modifiers))
        code.units = item.units
        return code

    def _context(self, start: int, end: int) -> _Context:
        before, after = _window(self.masked, start, end)
        inherited = None
        if self.found:
            gap_start = max(self.found[-1].end, min(self.read_up_to, start))
            if not self.found[-1].ambiguous and LIST_GAP.match(self.masked[gap_start:start]):
                inherited = self.found[-1].system
        first, last = self._sentence_span(start, end)
        sentence = self.masked[first:last]
        return _Context(before, after, inherited, sentence)

    def _classify(self, token: str, start: int, end: int) -> list[FoundCode]:
        context = self._context(start, end)
        upper = token.upper()
        if GLUED_UNITS.fullmatch(token):
            head = token[: token.upper().rindex("X")]
            return self._classify(head, start, start + len(head))
        glued = self._glued(token, start, end)
        if glued is not None:
            return [glued]
        if formats.CPT_CATEGORY_I.fullmatch(token):
            return self._cpt_category_i(token, start, end, context)
        if formats.CPT_LETTER_CODE.fullmatch(token):
            if self._after_identifier_label(start) or QUANTITY_AFTER.match(self.masked[end:]):
                return []
            reason = f"CPT {formats.CPT_LETTER_KINDS[token[-1]]} shape"
            return [self._code(CPT, token, start, end, HIGH, reason)]
        if formats.HCPCS_CODE.fullmatch(token):
            return self._hcpcs_or_icd(token, start, end, context)
        if formats.ICD10CM_DOTTED.fullmatch(upper):
            return self._dotted_icd(upper, start, end, context)
        if token == upper:
            pcs = self._pcs(token, start, end, context)
            if pcs:
                return pcs
        return self._dotless_icd(upper, start, end, context, written_lower=token != upper)

    def _dotted_icd(self, code: str, start: int, end: int, context: _Context) -> list[FoundCode]:
        """A dotted ICD-10-CM shape — unless the catalog lacks it and the sentence speaks
        of the old ICD-9-CM set, whose codes share the shape (``V45.81``), or its second
        character is a letter and neither the catalog nor a diagnosis word vouches for it."""
        if ICD9_WORDS.search(context.sentence) and (
            (self.known and not self._known(ICD10CM, code)) or ICD9_SUPPLEMENTARY.fullmatch(code)
        ):
            return []  # "legacy dx V22.0": ICD-10-CM's V22.0 is a heading, never written alone
        if DOCUMENT_PART_BEFORE.search(self.masked, max(0, start - 30), start):
            return []  # "Section B10.2", "manual G15.7": a part of a document
        if code[1].isalpha() and not (self._known(ICD10CM, code) or context.diagnosis()):
            return []  # "QA0.0101" is rare; "CR1.2" and "MS4.1" are not codes
        return [self._code(ICD10CM, code, start, end, HIGH, "dotted ICD-10-CM shape")]

    def _glued(self, token: str, start: int, end: int) -> FoundCode | None:
        """``97110GP``, ``J9271JW``, ``97110GPKX``: a procedure code with its modifiers
        written on without a separator (never a 7-character ICD-10-CM code)."""
        if len(token) not in (7, 9) or not token.isupper():
            return None
        code, tail = token[:5], token[5:]
        modifiers = [tail[i : i + 2] for i in range(0, len(tail), 2)]
        # the first glued on has a letter ("97140GP59"): "9921325" is no code
        if modifiers[0].isdigit() or not all(self._is_modifier(m) for m in modifiers):
            return None
        if formats.is_cpt(code) and (not code.isdigit() or formats.cpt_range(code)):
            system = CPT
        elif formats.is_hcpcs(code) and not self._known(ICD10CM, formats.dotted_icd10cm(token)):
            system = HCPCS
        else:
            return None
        if self._after_identifier_label(start):
            return None
        found = self._code(system, code, start, end, HIGH, "code with its modifiers written on")
        found.modifiers = modifiers
        return found

    def _after_identifier_label(self, start: int) -> bool:
        """Whether the number at ``start`` is an identifier by the words around it or by
        its table column ("Acct")."""
        return (
            identifier_by_words(self.text, self.masked, start)
            or self._column_role(start) in NOT_CODE_COLUMNS
        )

    def _row(self, start: int) -> list[tables.Cell] | None:
        """The table row (cells with their columns' roles) holding ``start``, read once
        per line from the text as written: a CSV row's "4,684.00" is two cells, not the
        thousands the masks take it for."""
        line_start = self.text.rfind("\n", 0, start) + 1
        if line_start not in self.rows:
            self.rows[line_start] = tables.row_cells(self.text, start, identifier=ID_HEADER)
        return self.rows[line_start]

    def _in_other_column(self, start: int) -> bool:
        """Whether ``start`` sits in a table column that holds neither codes nor
        modifiers: "50" under "Units" is a count, not modifier 50."""
        return self._column_role(start) in (tables.UNITS, tables.OTHER, tables.ID)

    def _column_role(self, start: int) -> str | None:
        """The role of the table column ``start`` sits in, if it is in a table."""
        cells = self._row(start)
        if not cells:
            return None
        return next((c.role for c in cells if c.start <= start < c.end), None)

    def _diagnosis_label(self, start: int) -> bool:
        """A diagnosis label right before ``start``: "Dx", "DX2:", box 21's "B."."""
        before = self.masked[max(0, start - 40) : start]
        if DIAGNOSIS_LABEL.search(before):
            return True
        if not POINTER_LETTER.search(before):
            return False
        return bool(BOX_21.search(self.masked[max(0, start - POINTER_REACH) : start]))

    def _code(
        self, system: str, code: str, start: int, end: int, confidence: float, reason: str
    ) -> FoundCode:
        return FoundCode(system, code, start, end, confidence, reason, source=self.source)

    def _cpt_category_i(
        self, token: str, start: int, end: int, context: _Context
    ) -> list[FoundCode]:
        if formats.cpt_range(token) is None:
            return []
        if self._after_identifier_label(start):
            return []
        if counted(self.masked, start, end) and context.inherited is None:
            return []  # "15000 claims", but "the 59510 and 58300 cases" name two codes
        if QUANTITY_AFTER.match(self.masked[end : end + 20]) or STREET_AFTER.match(
            self.masked[end : end + 40]
        ):
            return []
        before = self.masked[max(0, start - 40) : start]
        if any(b.search(before) and a.match(self.masked, end) for b, a in NOT_CODE_AROUND):
            return []
        if context.inherited in (CPT, HCPCS) or context.has(PROCEDURE_WORDS):
            return [self._code(CPT, token, start, end, HIGH, "CPT shape with procedure context")]
        if self._has_trailing_modifier_or_units(end):
            return [self._code(CPT, token, start, end, HIGH, "CPT shape with modifier or units")]
        return [self._code(CPT, token, start, end, MEDIUM, "CPT shape, in a known section")]

    def _has_trailing_modifier_or_units(self, end: int) -> bool:
        return bool(
            modifiers_after(self.masked, end, self._is_modifier)[0]
            or UNITS_AFTER.match(self.masked[end:])
        )

    def _hcpcs_or_icd(self, token: str, start: int, end: int, context: _Context) -> list[FoundCode]:
        """``J1100``: HCPCS, or ICD-10-CM ``J11.00`` written without its dot?

        A diagnosis label right before the token decides; so does a catalog that holds
        only one reading. Then words right next to the token (a dx word; units, a
        modifier, "injection"), then a dotted diagnosis in the sentence. A CPT code
        nearby does not decide: a list of codes mixes both. When nothing decides, the
        code is reported once, as HCPCS with the ICD-10-CM reading beside it, for the
        coder to pick.
        """
        if self._after_identifier_label(start):
            return []
        icd = formats.dotted_icd10cm(token)
        if not self._known(ICD10CM, icd):
            return self._hcpcs_alone(token, start, end, context)
        if self._diagnosis_label(start) or not self._maybe_hcpcs(token):
            return [self._dotless_reading(icd, start, end)]
        near_dx = context.inherited == ICD10CM or context.has(DIAGNOSIS_WORDS)
        near_hcpcs = (
            context.inherited in (CPT, HCPCS)
            or context.has(HCPCS_WORDS)
            or self._has_trailing_modifier_or_units(end)
        )
        if near_dx != near_hcpcs:
            return [
                self._dotless_reading(icd, start, end)
                if near_dx
                else self._hcpcs(token, start, end, context)
            ]
        if not near_dx and DOTTED_ICD_IN_TEXT.search(context.sentence):
            return [self._dotless_reading(icd, start, end)]
        reason = f"both HCPCS {token} and ICD-10-CM {icd}: the coder picks"
        found = self._code(HCPCS, token, start, end, AMBIGUOUS, reason)
        found.alternatives.append(f"{ICD10CM}:{icd}")
        return [found]

    def _hcpcs_alone(self, token: str, start: int, end: int, context: _Context) -> list[FoundCode]:
        """A HCPCS shape with no ICD-10-CM reading. When a loaded HCPCS release lacks it,
        only procedure words make it a code: otherwise it is an ID ("badge E4051")."""
        if not self._maybe_hcpcs(token) and not (
            context.has(PROCEDURE_WORDS)
            or context.has(HCPCS_WORDS)
            or self._has_trailing_modifier_or_units(end)
        ):
            return []
        return [self._hcpcs(token, start, end, context)]

    def _maybe_hcpcs(self, token: str) -> bool:
        """Whether ``token`` may be a HCPCS code: yes unless a loaded HCPCS release lacks it."""
        if self.loaded is None or not self.loaded(HCPCS):
            return True
        return self._known(HCPCS, token)

    def _hcpcs(self, token: str, start: int, end: int, context: _Context) -> FoundCode:
        sure = context.has(HCPCS_WORDS) or self._has_trailing_modifier_or_units(end)
        return self._code(
            HCPCS, token, start, end, HIGH if sure else MEDIUM, "HCPCS Level II shape"
        )

    def _dotless_reading(self, icd: str, start: int, end: int) -> FoundCode:
        reason = "dotless ICD-10-CM with diagnosis context and a catalog hit"
        return self._code(ICD10CM, icd, start, end, MEDIUM, reason)

    def _dotless_icd(
        self, token: str, start: int, end: int, context: _Context, *, written_lower: bool
    ) -> list[FoundCode]:
        """A dotless ICD-10-CM code needs a catalog hit and a diagnosis word nearby —
        except a six- or seven-character one in capitals, which nothing else resembles,
        or one in capitals in a sentence with a procedure code ("billed 99439 with I10"),
        after words that name codes ("codes such as Z131"), or in a sentence about
        diagnoses ("the diagnosis pointer on this line points to Z7984")."""
        if not formats.is_icd10cm(token):
            return []
        icd = formats.dotted_icd10cm(token)
        if not self._known(ICD10CM, icd):
            return []
        if self._after_identifier_label(start) and not self._diagnosis_word_governs(context):
            return []
        if (
            context.diagnosis()
            or self._diagnosis_label(start)
            or start in self.diagnosis_lists
            or self._column_role(start) == tables.DIAGNOSIS
        ):
            return [self._dotless_reading(icd, start, end)]
        if len(token) >= 6 and not written_lower:
            reason = "dotless ICD-10-CM of six or seven characters with a catalog hit"
            return [self._code(ICD10CM, icd, start, end, MEDIUM, reason)]
        if written_lower:
            return []
        if CPT_IN_TEXT.search(context.sentence) or CODE_WORDS_BEFORE.search(context.before):
            reason = "dotless ICD-10-CM with a catalog hit beside a procedure code or code word"
            return [self._code(ICD10CM, icd, start, end, MEDIUM, reason)]
        if len(token) >= 4 and DIAGNOSIS_WORDS.search(context.sentence):
            reason = "dotless ICD-10-CM with a catalog hit in a sentence about diagnoses"
            return [self._code(ICD10CM, icd, start, end, MEDIUM, reason)]
        return []

    @staticmethod
    def _diagnosis_word_governs(context: _Context) -> bool:
        """A diagnosis word before the token with no other code between ("Dx on the claim
        B351"): it outweighs an identifier label; "dx F41.9 — NPI (N290)" does not."""
        words = list(DIAGNOSIS_WORDS.finditer(context.before))
        if not words:
            return False
        rest = context.before[words[-1].end() :]
        return not (DOTTED_ICD_IN_TEXT.search(rest) or CPT_IN_TEXT.search(rest))

    def _pcs(self, token: str, start: int, end: int, context: _Context) -> list[FoundCode]:
        if not formats.ICD10PCS_CODE.fullmatch(token) or token.isdigit():
            return []
        if not (context.inherited == ICD10PCS or context.has(PCS_WORDS)):
            return []
        reason = "ICD-10-PCS shape with PCS context (format only: no PCS catalog is loaded)"
        return [self._code(ICD10PCS, token, start, end, LOW, reason)]

    def _known(self, system: str, code: str) -> bool:
        return self.known is not None and self.known(system, code)

    def _is_modifier(self, text: str) -> bool:
        """A modifier the desk knows by heart, or one of a loaded HCPCS release (``HO``,
        ``Q8``, ``P3``), except those written like a unit count."""
        if text in UNIT_LIKE_MODIFIERS:
            return False
        return text in formats.KNOWN_MODIFIERS or self._known(MODIFIER, text)

    # --- modifiers and units -------------------------------------------------------

    def _attach_trailing(self, code: FoundCode) -> int:
        """Attach the modifiers and units written after a procedure code; returns where
        they end, so that a unit count (``X100``) is not read as a code of its own."""
        if code.system not in (CPT, HCPCS):
            return code.end
        modifiers, position = modifiers_after(
            self.masked, code.end, self._is_modifier, other_column=self._in_other_column
        )
        _add_modifiers(code, modifiers)
        in_table = self._attach_from_row(code) or self._attach_from_record(code)
        after = units_written_after(self.masked, position)
        if after and not (in_table and code.units):
            code.units, position = after
            modifiers, position = modifiers_after(
                self.masked, position, self._is_modifier
            )  # "97110 x4 GP"
            _add_modifiers(code, modifiers)
        elif not in_table:
            code.units = units_written_before(self.masked, code.start) or units_in_row(
                self.text, self.masked, position
            )
        self.attached.append((code.end, position))
        return position

    def _attach_from_row(self, code: FoundCode) -> bool:
        """A code in a table's code column takes the modifiers and the unit count its
        row gives under the modifier and units headers; returns whether it is in one."""
        cells = self._row(code.start)
        if not cells or not any(
            c.role == tables.CODE and c.start <= code.start < c.end for c in cells
        ):
            return False
        self._take_cells(code, cells, keep_largest=False)
        return True

    def _attach_from_record(self, code: FoundCode) -> bool:
        """A code that is the value of a "Procedure:" key takes the values of its
        record's "Modifier(s):" and "Units:" keys, on its line or the lines below
        ("Units Billed: 5   Units Paid: 0" gives the larger); returns whether it is one."""
        values = tables.record_values(self.text, code.start, identifier=ID_HEADER)
        if values is None:
            return False
        self._take_cells(code, values, keep_largest=True)
        return True

    def _take_cells(self, code: FoundCode, cells: list[tables.Cell], *, keep_largest: bool) -> None:
        """Give a code the modifiers and unit count of its row's or record's cells: a
        row's last count, or a record's largest."""
        for cell in cells:
            value = self.text[cell.start : cell.end].strip().strip('"')
            if cell.role == tables.MODIFIER:
                _add_modifiers(code, known_modifiers(value, self._is_modifier))
                self.attached.append((cell.start, cell.end))
            elif cell.role == tables.UNITS:
                count = row_count(value)
                if keep_largest:
                    code.units = max(code.units or 0, count or 0) or None
                else:
                    code.units = count or code.units

    def _attach_sentence_units(self) -> None:
        """ "J1885 is per 15 mg and the MD gave 60 mg — 4 units": a count of units the
        sentence gives, when the sentence names one procedure code; the largest of
        several ("billed 6 units, allowed 2 units"), as for a code written twice."""
        procedures = [c for c in self.found if c.system in (CPT, HCPCS)]
        for code in procedures:
            if code.units is not None:
                continue
            sentence = self._sentence_span(code.start, code.end)
            if sum(1 for c in procedures if sentence[0] <= c.start < sentence[1]) != 1:
                continue
            code.units = max(units_in_sentence(self.masked, *sentence), default=None)

    def _sentence_span(self, start: int, end: int) -> tuple[int, int]:
        return _sentence_span(self.sentence_breaks, len(self.masked), start, end)

    def _attach_modifier_phrases(self) -> None:
        taken = [(code.start, code.end) for code in self.found if code.modifiers]
        taken += self.attached
        procedures = [c for c in self.found if c.system in (CPT, HCPCS)]
        # a modifier named apart from every code matters in a text that names none
        names_a_code = bool(procedures) or any(c.system in (CPT, HCPCS) for c in self.claim)
        for start, end, modifiers in modifier_phrases(self.masked, self._is_modifier):
            if any(s < end and start < e for s, e in taken):
                continue
            target = modifier_target(self.masked, procedures, start, end, modifiers)
            if target is None:
                for modifier in [] if names_a_code else modifiers:
                    self.found.append(
                        self._code(MODIFIER, modifier, start, end, MEDIUM, "modifier named alone")
                    )
                continue
            _add_modifiers(target, modifiers)
        self._attach_shared_modifiers()

    def _attach_shared_modifiers(self) -> None:
        """ "97110 x2, 97112 x3, all with GP", "(GP on both)": a modifier said of every
        code listed before it in the sentence goes on each of them."""
        for position, modifiers in shared_modifier_phrases(self.masked, self._is_modifier):
            sentence_start = max((e for s, e in self.sentence_breaks if e <= position), default=0)
            for code in self.found:
                if code.system in (CPT, HCPCS) and sentence_start <= code.start < position:
                    _add_modifiers(code, modifiers)


def _add_modifiers(code: FoundCode, modifiers: Iterable[str]) -> None:
    """Add modifiers to a code, each once, in the order first written."""
    code.modifiers.extend(m for m in modifiers if m not in code.modifiers)


def extract(
    text: str,
    *,
    known: CatalogCheck | None = None,
    loaded: CatalogLoaded | None = None,
    source: str = "text",
) -> list[FoundCode]:
    """Every code in ``text``, once per (system, code), in order of first mention.

    ``known`` answers whether a code is in the loaded catalog; without it, dotless
    ICD-10-CM codes cannot be confirmed and are not reported. ``loaded`` says which
    systems have a release loaded, so that a code absent from one is known not to be
    of that system.
    """
    return merge_mentions(_Reader(text, known, loaded, source).read())


def merge_mentions(found: Iterable[FoundCode]) -> list[FoundCode]:
    """One entry per (system, code): the first mention, with every modifier and the
    largest unit count seen across mentions. A mention that decides a reading settles
    the same string's undecided mentions."""
    merged: dict[tuple[str, str], FoundCode] = {}
    for code in sorted(found, key=lambda c: (c.start, c.system != HCPCS)):
        seen = merged.get((code.system, code.code))
        if seen is None:
            merged[(code.system, code.code)] = code
            continue
        _add_modifiers(seen, code.modifiers)
        if code.units and (seen.units or 0) < code.units:
            seen.units = code.units
        if not code.ambiguous and seen.ambiguous:
            seen.alternatives.clear()
            seen.reason = code.reason
        seen.confidence = max(seen.confidence, code.confidence)
    decided = {f"{c.system}:{c.code}" for c in merged.values() if not c.ambiguous}
    return [
        code
        for code in merged.values()
        if not (code.ambiguous and any(a in decided for a in code.alternatives))
    ]


def extract_sources(
    sources: Iterable[tuple[str, str]],
    *,
    known: CatalogCheck | None = None,
    loaded: CatalogLoaded | None = None,
) -> list[FoundCode]:
    """Codes from several texts of one case (subject, body, attachments), merged."""
    found: list[FoundCode] = []
    for source, text in sources:
        found.extend(_Reader(text, known, loaded, source).read())
    return _merge_across_sources(found)


def _merge_across_sources(found: list[FoundCode]) -> list[FoundCode]:
    by_source: dict[str, list[FoundCode]] = {}
    for code in found:
        by_source.setdefault(code.source, []).append(code)
    merged: dict[tuple[str, str], FoundCode] = {}
    for codes in by_source.values():
        for code in merge_mentions(codes):
            seen = merged.setdefault((code.system, code.code), code)
            if seen is not code:
                _add_modifiers(seen, code.modifiers)
                seen.units = max(seen.units or 0, code.units or 0) or None
    return list(merged.values())
