"""Find the medical codes a case email mentions, without mistaking other numbers for them.

Case emails are full of numbers that look like codes: ZIP codes, phone numbers, dates,
claim and member numbers, amounts, vitals, and NDCs (whose 5-digit labeler part looks like
a CPT code). Those are masked first — replaced by filler of the same length, so every
span still points into the original text — and only then are code-shaped tokens read.

Each token is judged by its shape and the words around it:

* dotted ICD-10-CM (``E11.9``) is trusted by shape alone;
* dotless ICD-10-CM (``E119``, ``I10``) needs a diagnosis word nearby *and* a catalog hit;
* ``J1100`` is both HCPCS and dotless ICD-10-CM ``J11.00``: nearby words decide, and when
  they do not, both readings are kept for the coder to pick;
* ICD-10-PCS ships without a catalog here, so it is read only next to a "PCS" word and
  says so in its reason.

Modifiers (``99213-25``, ``97110 GP``, "modifier 59") and units (``x2``, ``3 units``)
are attached to the code they belong to.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from consultant.codes import formats
from consultant.codes.formats import CPT, HCPCS, ICD10CM, ICD10PCS, MODIFIER, NDC

HIGH = 0.95
MEDIUM = 0.75
AMBIGUOUS = 0.5
LOW = 0.4

# (system, code) -> is it in the loaded catalog? Extraction asks only for ICD-10-CM.
CatalogCheck = Callable[[str, str], bool]


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
        }


# --- masks: numbers that are not codes ----------------------------------------------

# Each starts with a character the regex engine can skip ahead to.
NDC_PATTERNS = (
    re.compile(
        r"\d(?<![\w-]\d)(?:\d{3}-\d{4}-\d{2}|\d{4}-\d{3}-\d{2}|\d{4}-\d{4}-\d{1,2})(?![\w-])"
    ),
    re.compile(r"[Nn](?<!\w[Nn])(?i:dc)\s*(?:#|no\.?|number)?\s*:?\s*(\d{11})\b"),
)

# Each tail follows a first digit that starts a number (not one inside a word); starting
# every pattern with that digit lets the regex engine skip the text between numbers fast.
NUMBER_TRAP_TAILS = (
    r"\d{2}[-. ]\d{3}[-. ]\d{4}\b",  # phone: 555-123-4567, 555.123.4567
    r"\d?[/.-]\d{1,2}[/.-]\d{2,4}\b",  # dates: 01/15/2026, 1-15-26, 15.01.2026
    r"\d{3}-\d{2}-\d{2}\b",  # dates: 2026-01-15
    r"\d?:\d{2}(?::\d{2})?\b",  # times: 10:30, 14:05:00
    r"[\d,]*(?:\.\d+)?\s*(?i:usd|dollars)\b",  # money in words: 1,250 USD
    r"\d{4}-\d{4}\b(?!-)",  # ZIP+4
    r"\d{1,2}\s?/\s?\d{2,3}\b",  # vitals and ratios: BP 128/82
    r"\d{0,2}(?:,\d{3})+(?:\.\d+)?\b",  # thousands: 12,345.00
    r"\d*\.\d+\b",  # decimals: 98.6, 10021.5
    r"\d*\s?%",  # percentages
)
TRAP_PATTERNS = (
    re.compile(r"\d(?<!\w\d)(?:" + "|".join(NUMBER_TRAP_TAILS) + ")"),
    re.compile(r"\(\d{3}\)\s?\d{3}[-. ]\d{4}\b"),  # phone: (555) 123-4567
    re.compile(r"\$\s?\d[\d,]*(?:\.\d+)?"),  # money: $1,250.00, $99213
    re.compile(r",\s*[A-Z]{2}\.?\s+\d{5}(?:-\d{4})?\b"),  # ZIP after a state: ", IL 62704"
)

# A number right after one of these words is an identifier, an address or a count.
ID_LABELS = (
    r"zip|postal|claims?|acct|accounts?|members?|subscriber|policy|group|grp|invoice|inv|mrn|"
    r"id|npi|tin|ein|tax|ref|reference|orders?|auth|authorization|prior auth|case|ticket|"
    r"suite|ste|room|rm|box|route|rte|ext|fax|phone|tel|icn|dcn|tcn|tracking|serial|lot|"
    r"confirmation|pin|lcd|ncd|article|drg|apc|rev|revenue|contract|street|st|ave|avenue|"
    r"road|rd|blvd|highway|hwy"
)
# ... and these only when a number word follows them ("visit #", "check number").
ID_LABELS_WITH_NUMBER_WORD = (
    r"visit|encounter|check|cheque|bed|batch|control|plan|provider|unit|floor|building|bldg"
)
NUMBER_WORD = r"(?:#|no\.?|num\.?|number|id|ids|code)"
STRICT_NUMBER_WORD = r"(?:#|no\.?|num\.?|number)"
LABEL_TAIL = r"\s*(?:is|was|of|ends? in|ending in|starts? with|starting with)?\s*[:#]?\s*"
ID_BEFORE = re.compile(
    rf"(?i)(?:\b(?:{ID_LABELS}|(?:on|by|via|paper) check)\s*{NUMBER_WORD}?{LABEL_TAIL}"
    rf"|\b(?:{ID_LABELS_WITH_NUMBER_WORD})\s*{STRICT_NUMBER_WORD}{LABEL_TAIL}"
    r"|#\s*)$"
)
# A number right before one of these words is a quantity, not a code.
QUANTITY_AFTER = re.compile(
    r"(?i)^\s*(?:mg|mcg|ml|cc|iu|units?\b(?!\s+of)|miles?|mi\b|km|steps|feet|ft\b|lbs?|kg|"
    r"dollars|usd|patients|visits|claims|members|people|employees|beds|calls|emails|tests|"
    r"times|days|hours|minutes|mins?\b|seconds|cases|tickets|words|pages|rpm|mmhg|"
    r"main st|street|ave|avenue|blvd|road|rd\b|lane|ln\b|drive|dr\b|way\b|court|ct\b)"
)

# --- context words ------------------------------------------------------------------

DIAGNOSIS_WORDS = re.compile(
    r"(?i)\b(?:icd(?:-?10)?(?:-?cm)?|dx|diagnos\w*|diag|dxs|primary|secondary|"
    r"principal|reason for visit|z-?codes?)\b"
)
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
PCS_WORDS = re.compile(r"(?i)\b(?:pcs|icd-?10-?pcs|inpatient procedure codes?)\b")
LIST_GAP = re.compile(r"(?i)^\s*(?:,|;|/|&|\+|and|or|,\s*and|,\s*or|\(|\))?\s*$")

CONTEXT_BEFORE = 36
CONTEXT_AFTER = 16

# --- tokens, modifiers, units -------------------------------------------------------

TOKEN = re.compile(
    r"(?<![\w.@$#~])(?<![A-Za-z]-)(?<![A-Za-z]/)"
    r"(?=[A-Za-z]{0,3}\d)"  # every code has a digit among its first four characters
    r"([0-9A-Za-z][0-9A-Za-z]{2,6}(?:\.[0-9A-Za-z]{1,4})?)"
    r"(?![\w@~]|[.,]\d|-[A-Za-z]{3})"
)
MODIFIER_STEP = re.compile(r"(\s*[-\u2013/,]\s*|\s+)([0-9A-Z]{2})(?![\w])")
# Uppercase words that are also modifiers: only taken after a hyphen, never after a space.
MODIFIER_LOOKALIKE_WORDS = frozenset({"AS", "AT", "CO", "CS", "CR", "SA", "SB", "PO", "PT"})
MODIFIER_PHRASE = re.compile(
    r"(?i:\bmod(?:ifiers?|\.)?)\s*[-:#]?\s*"
    r"((?:[0-9A-Z]{2})(?:\s*(?:,|/|&|\+|(?i:and|or))\s*-?[0-9A-Z]{2})*)(?![\w])"
)
MODIFIER_IN_LIST = re.compile(r"(?<![\w])-?([0-9A-Z]{2})(?![\w])")
MODIFIER_BEFORE_WORD = re.compile(
    r"(?<![\w-])-?([0-9A-Z]{2})(?:\s*(?:,|/|&|(?i:and|or))\s*-?([0-9A-Z]{2}))?\s+(?i:modifiers?)\b"
)
MODIFIER_NAMES_CODE = re.compile(
    r"(?i)\s*(?:on|to|for|with|appended to)\s+(?:the\s+|code\s+)?([0-9A-Z]{5})\b"
)
UNITS_AFTER = re.compile(
    r"(?i)^\s*(?:,\s*)?\(?\s*(?:[x\u00d7]\s*(\d{1,3})\b|(\d{1,3})\s*(?:units?|uos)\b|"
    r"(?:units?|uos)\s*[:=]?\s*(\d{1,3})\b)"
)
UNITS_BEFORE = re.compile(r"(?i)\b(\d{1,3})\s*units?\s+(?:of\s+)?$")
SENTENCE_BREAK = re.compile(r"[.?!;\n]\s")

MODIFIER_ATTACH_BEFORE = 80
MODIFIER_ATTACH_AFTER = 40


def mask(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """``text`` with each span overwritten by filler, keeping every other offset."""
    chars = list(text)
    for start, end in spans:
        chars[start:end] = "~" * (end - start)
    return "".join(chars)


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


def trap_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for pattern in TRAP_PATTERNS for m in pattern.finditer(text)]


def _window(text: str, start: int, end: int) -> tuple[str, str]:
    """The words just before and just after a token, cut at a sentence break."""
    before = text[max(0, start - CONTEXT_BEFORE) : start]
    breaks = list(SENTENCE_BREAK.finditer(before))
    if breaks:
        before = before[breaks[-1].end() :]
    after = text[end : end + CONTEXT_AFTER]
    cut = SENTENCE_BREAK.search(after)
    return before, after[: cut.start()] if cut else after


def _sentence(text: str, breaks: list[tuple[int, int]], start: int, end: int) -> str:
    """The sentence (or line) around a token, given the text's sentence breaks."""
    index = bisect.bisect_left(breaks, (start, start))
    first = breaks[index - 1][1] if index else 0
    after = bisect.bisect_left(breaks, (end, end))
    last = breaks[after][0] if after < len(breaks) else len(text)
    return text[first:last]


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

    def __init__(self, text: str, known: CatalogCheck | None, source: str) -> None:
        self.known = known
        self.source = source
        self.ndcs = find_ndcs(text)
        masked = mask(text, [(f.start, f.end) for f in self.ndcs])
        self.masked = mask(masked, trap_spans(masked))
        self.sentence_breaks = [m.span() for m in SENTENCE_BREAK.finditer(self.masked)]
        self.found: list[FoundCode] = []

    def read(self) -> list[FoundCode]:
        for match in TOKEN.finditer(self.masked):
            self.found.extend(self._classify(match.group(1), match.start(1), match.end(1)))
        for code in self.found:
            self._attach_trailing(code)
        self._attach_modifier_phrases()
        return self.ndcs + self.found

    # --- classification ------------------------------------------------------------

    def _context(self, start: int, end: int) -> _Context:
        before, after = _window(self.masked, start, end)
        inherited = None
        if self.found and LIST_GAP.match(self.masked[self.found[-1].end : start]):
            inherited = self.found[-1].system
        sentence = _sentence(self.masked, self.sentence_breaks, start, end)
        return _Context(before, after, inherited, sentence)

    def _classify(self, token: str, start: int, end: int) -> list[FoundCode]:
        context = self._context(start, end)
        if formats.CPT_CATEGORY_I.fullmatch(token):
            return self._cpt_category_i(token, start, end, context)
        if formats.CPT_LETTER_CODE.fullmatch(token):
            reason = f"CPT {formats.CPT_LETTER_KINDS[token[-1]]} shape"
            return [self._code(CPT, token, start, end, HIGH, reason)]
        if formats.HCPCS_CODE.fullmatch(token):
            return self._hcpcs_or_icd(token, start, end, context)
        upper = token.upper()
        if formats.ICD10CM_DOTTED.fullmatch(upper):
            return [self._code(ICD10CM, upper, start, end, HIGH, "dotted ICD-10-CM shape")]
        if token != upper:
            return []
        pcs = self._pcs(token, start, end, context)
        if pcs:
            return pcs
        return self._dotless_icd(token, start, end, context)

    def _after_identifier_label(self, start: int) -> bool:
        """Whether the words just before ``start`` label an identifier ("claim #")."""
        words = self.masked[max(0, start - 40) : start].split(" ")
        return bool(ID_BEFORE.search(" ".join(words[-5:])))

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
        if QUANTITY_AFTER.match(self.masked[end : end + 20]):
            return []
        if context.inherited in (CPT, HCPCS) or context.has(PROCEDURE_WORDS):
            return [self._code(CPT, token, start, end, HIGH, "CPT shape with procedure context")]
        if self._has_trailing_modifier_or_units(end):
            return [self._code(CPT, token, start, end, HIGH, "CPT shape with modifier or units")]
        return [self._code(CPT, token, start, end, MEDIUM, "CPT shape, in a known section")]

    def _has_trailing_modifier_or_units(self, end: int) -> bool:
        return bool(self._modifiers_after(end)[0] or UNITS_AFTER.match(self.masked[end:]))

    def _hcpcs_or_icd(self, token: str, start: int, end: int, context: _Context) -> list[FoundCode]:
        """``J1100``: HCPCS, or ICD-10-CM ``J11.00`` written without its dot?

        Words right next to the token (a dx word; units, a modifier, "injection") decide
        first; then hints from the rest of the sentence (a dotted diagnosis or a CPT code
        nearby); when neither side wins, both readings are kept.
        """
        if self._after_identifier_label(start):
            return []
        icd = formats.dotted_icd10cm(token)
        if not self._known(ICD10CM, icd):
            return [self._hcpcs(token, start, end, context)]
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
        if not near_dx:
            hint_dx = bool(DOTTED_ICD_IN_TEXT.search(context.sentence))
            hint_hcpcs = bool(CPT_IN_TEXT.search(context.sentence))
            if hint_dx != hint_hcpcs:
                return [
                    self._dotless_reading(icd, start, end)
                    if hint_dx
                    else self._hcpcs(token, start, end, context)
                ]
        reason = f"both HCPCS {token} and ICD-10-CM {icd}: the coder picks"
        hcpcs = self._code(HCPCS, token, start, end, AMBIGUOUS, reason)
        diagnosis = self._code(ICD10CM, icd, start, end, AMBIGUOUS, reason)
        hcpcs.alternatives.append(f"{ICD10CM}:{icd}")
        diagnosis.alternatives.append(f"{HCPCS}:{token}")
        return [hcpcs, diagnosis]

    def _hcpcs(self, token: str, start: int, end: int, context: _Context) -> FoundCode:
        sure = context.has(HCPCS_WORDS) or self._has_trailing_modifier_or_units(end)
        return self._code(
            HCPCS, token, start, end, HIGH if sure else MEDIUM, "HCPCS Level II shape"
        )

    def _dotless_reading(self, icd: str, start: int, end: int) -> FoundCode:
        reason = "dotless ICD-10-CM with diagnosis context and a catalog hit"
        return self._code(ICD10CM, icd, start, end, MEDIUM, reason)

    def _dotless_icd(self, token: str, start: int, end: int, context: _Context) -> list[FoundCode]:
        if not formats.is_icd10cm(token):
            return []
        if not context.diagnosis():
            return []
        icd = formats.dotted_icd10cm(token)
        if not self._known(ICD10CM, icd):
            return []
        return [self._dotless_reading(icd, start, end)]

    def _pcs(self, token: str, start: int, end: int, context: _Context) -> list[FoundCode]:
        if not formats.ICD10PCS_CODE.fullmatch(token) or token.isdigit():
            return []
        if not (context.inherited == ICD10PCS or context.has(PCS_WORDS)):
            return []
        reason = "ICD-10-PCS shape with PCS context (format only: no PCS catalog is loaded)"
        return [self._code(ICD10PCS, token, start, end, LOW, reason)]

    def _known(self, system: str, code: str) -> bool:
        return self.known is not None and self.known(system, code)

    # --- modifiers and units -------------------------------------------------------

    def _modifiers_after(self, end: int) -> tuple[list[str], int]:
        """Modifiers written right after a code, and where they stop."""
        modifiers: list[str] = []
        position = end
        while match := MODIFIER_STEP.match(self.masked, position):
            separator, modifier = match.group(1).strip(), match.group(2)
            if modifier not in formats.KNOWN_MODIFIERS:
                break
            if not separator and (modifier.isdigit() or modifier in MODIFIER_LOOKALIKE_WORDS):
                break
            if separator == "," and not modifiers:
                break
            modifiers.append(modifier)
            position = match.end()
        return modifiers, position

    def _attach_trailing(self, code: FoundCode) -> None:
        if code.system not in (CPT, HCPCS):
            return
        modifiers, position = self._modifiers_after(code.end)
        code.modifiers.extend(m for m in modifiers if m not in code.modifiers)
        after = UNITS_AFTER.match(self.masked[position:])
        if after:
            code.units = int(next(g for g in after.groups() if g))
            return
        before = UNITS_BEFORE.search(self.masked[max(0, code.start - 20) : code.start])
        if before:
            code.units = int(before.group(1))

    def _attach_modifier_phrases(self) -> None:
        taken = {(code.start, code.end) for code in self.found if code.modifiers}
        for start, end, modifiers in self._modifier_phrases():
            if any(s <= start < e for s, e in taken):
                continue
            target = self._modifier_target(start, end, modifiers)
            if target is None:
                for modifier in modifiers:
                    self.found.append(
                        self._code(MODIFIER, modifier, start, end, MEDIUM, "modifier named alone")
                    )
                continue
            target.modifiers.extend(m for m in modifiers if m not in target.modifiers)

    def _modifier_phrases(self) -> list[tuple[int, int, list[str]]]:
        phrases: list[tuple[int, int, list[str]]] = []
        for match in MODIFIER_PHRASE.finditer(self.masked):
            found = MODIFIER_IN_LIST.findall(match.group(1))
            phrases.append((match.start(), match.end(), found))
        for match in MODIFIER_BEFORE_WORD.finditer(self.masked):
            if any(s <= match.start() < e for s, e, _ in phrases):
                continue
            found = [g for g in match.groups() if g]
            phrases.append((match.start(), match.end(), found))
        return [
            (s, e, [m for m in mods if m in formats.KNOWN_MODIFIERS])
            for s, e, mods in phrases
            if all(m in formats.KNOWN_MODIFIERS for m in mods)
        ]

    def _modifier_target(self, start: int, end: int, modifiers: list[str]) -> FoundCode | None:
        """The procedure code a modifier phrase speaks of.

        "modifier XS on 12001" names its code; E/M-only modifiers (25, 57, ...) go to the
        E/M code of the sentence; otherwise the code just before the phrase in the same
        sentence, else the one right after it.
        """
        procedures = [c for c in self.found if c.system in (CPT, HCPCS)]
        named = MODIFIER_NAMES_CODE.match(self.masked, end)
        if named:
            for code in procedures:
                if code.start == named.start(1):
                    return code
        nearby = [c for c in procedures if self._same_sentence_near(c, start, end)]
        if modifiers and all(m in formats.EM_ONLY_MODIFIERS for m in modifiers):
            em = [c for c in nearby if c.system == CPT and formats.is_em_code(c.code)]
            if em:
                return em[0]
        before = [c for c in nearby if c.end <= start]
        if before:
            return before[-1]
        after = [c for c in nearby if c.start >= end]
        return after[0] if after else None

    def _same_sentence_near(self, code: FoundCode, start: int, end: int) -> bool:
        if code.end <= start:
            gap = self.masked[code.end : start]
            return len(gap) <= MODIFIER_ATTACH_BEFORE and not SENTENCE_BREAK.search(gap)
        if code.start >= end:
            gap = self.masked[end : code.start]
            return len(gap) <= MODIFIER_ATTACH_AFTER and not SENTENCE_BREAK.search(gap)
        return False


def extract(
    text: str, *, known: CatalogCheck | None = None, source: str = "text"
) -> list[FoundCode]:
    """Every code in ``text``, once per (system, code), in order of first mention.

    ``known`` answers whether a code is in the loaded catalog; without it, dotless
    ICD-10-CM codes cannot be confirmed and are not reported.
    """
    return merge_mentions(_Reader(text, known, source).read())


def merge_mentions(found: Iterable[FoundCode]) -> list[FoundCode]:
    """One entry per (system, code): the first mention, with every modifier and the
    largest unit count seen across mentions."""
    merged: dict[tuple[str, str], FoundCode] = {}
    for code in sorted(found, key=lambda c: (c.start, c.system != HCPCS)):
        seen = merged.get((code.system, code.code))
        if seen is None:
            merged[(code.system, code.code)] = code
            continue
        seen.modifiers.extend(m for m in code.modifiers if m not in seen.modifiers)
        if code.units and (seen.units or 0) < code.units:
            seen.units = code.units
        seen.confidence = max(seen.confidence, code.confidence)
    return list(merged.values())


def extract_sources(
    sources: Iterable[tuple[str, str]], *, known: CatalogCheck | None = None
) -> list[FoundCode]:
    """Codes from several texts of one case (subject, body, attachments), merged."""
    found: list[FoundCode] = []
    for source, text in sources:
        found.extend(_Reader(text, known, source).read())
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
                seen.modifiers.extend(m for m in code.modifiers if m not in seen.modifiers)
                seen.units = max(seen.units or 0, code.units or 0) or None
    return list(merged.values())
