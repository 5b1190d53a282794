"""Modifiers and unit counts: which code each belongs to.

A coder writes ``99213-25``, ``97110GP``, ``97110 x3``, "2 units of 97530", "modifier
59 on 97140", "all with GP", or puts them in a claim row's own columns. The functions
here read what is written right after a code, on its claim row, and in modifier
phrases of a sentence; the reader decides which code a phrase speaks of.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from consultant.codes import formats

# Whether a two-character string is a modifier: those of CPT and HCPCS the desk knows by
# heart, and every modifier of a loaded HCPCS release.
IsModifier = Callable[[str], bool]

# A modifier after a dash, slash, comma or space, or in parentheses: "-25", " GP", "(AI)".
MODIFIER_STEP = re.compile(
    # not a claim status code ("A3:21")
    r"(\s*[-\u2013/,|+]\s*|:(?=[0-9A-Z]{2}\b)|\s+|\s*(\()\s*)([0-9A-Z]{2})(?(2)\s*\)|(?!(?![x\u00d7]\d)\w|:\w))"
)
# A gap wide enough to part two table columns.
COLUMN_BREAK = re.compile(r"\t| {3,}|\|")
# Where a cell of a claim row ends: a column gap, a pipe, the line's end, another
# modifier or the next code. A word that is also a modifier ("98941 AT   1") counts as
# one there.
ROW_CELL_END = re.compile(
    r"[ \t]{2,}|\t|[ \t]*\||[ \t]*$|[ \t]+[0-9A-Z]{2}(?!\w)"
    # ... or before the next code: "98941 AT and 97140 59", "98941 AT, 97140"
    r"|[ \t]*(?:,|and)[ \t]*[0-9A-Z]{5}(?!\w)",
    re.MULTILINE,
)
# A unit count written on a code or its glued modifier: "99213x2", "J1885X4", "97110GPx3".
GLUED_UNITS = re.compile(r"[0-9A-Z]{5}(?:[0-9A-Z]{2})?[xX]\d{1,3}")
# A two-digit "modifier" followed by one of these is a count: "00142 QS, 33 min".
COUNT_AFTER = re.compile(
    r"(?i)[ \t]*(?:min|minutes?|mins|mg|mcg|ml|units?(?![ \t]*[:=]?[ \t]*\d)|%|hours?|hrs?|days?)\b"
)
# Uppercase words that are also modifiers: only taken after a hyphen, never after a space.
MODIFIER_LOOKALIKE_WORDS = frozenset(
    {"AD", "AM", "AS", "AT", "CA", "CO", "CR", "CS", "ED", "EX", "HE", "HI", "MA", "MD"}
    | {"ME", "PA", "PM", "PO", "PT", "SA", "SB", "ST", "UP", "US"}
)
LOOKALIKE = "|".join(sorted(MODIFIER_LOOKALIKE_WORDS))
MODIFIER_PHRASE = re.compile(
    # "mod", "mods", "mod.", "modifier(s)" and its usual typos ("modifer", "modfier")
    r"(?i:\bmod(?:s|\.|i?f(?:i?e)?rs?)?)\s*[-:#]?\s*"
    # "mod GO 59", "mods: 25, 59", "modifiers 59 and XU"
    r"((?:[0-9A-Z]{2})(?:(?:\s*(?:,|/|&|\+|(?i:and|or))\s*|[ \t]+)-?[0-9A-Z]{2}(?![\w]))*)(?![\w])"
)
TRAILING_MODIFIER_PHRASE = re.compile(
    r"\s*,?\s*(?:with\s+|w/\s*)?"
    + MODIFIER_PHRASE.pattern
    # "99231 with a 25", "27447 w/ 59", but not "with 25 minutes"
    + r"|\s*,?\s*(?:with|w/)\s*(?:an?\s+)?"
    + r"((?:[0-9][0-9](?![\w.,/:]\d|\w|\s*(?:%|mins?\b|minutes|units?|mg|ml))|[A-Z][0-9A-Z](?!\w))"
    # "w/ 50 & 59"
    + r"(?:\s*(?:&|and|,|/)\s*-?[0-9A-Z]{2}(?!\w))*)"
)
MODIFIER_IN_LIST = re.compile(r"(?<![\w])-?([0-9A-Z]{2})(?![\w])")
MODIFIER_BEFORE_WORD = re.compile(
    r"(?<![\w-])-?([0-9A-Z]{2})(?:\s*(?:,|/|&|(?i:and|or))\s*-?([0-9A-Z]{2}))?\s+(?i:modifiers?)\b"
)
# "appended -59, XS to 11102", "added JW to J0585": the modifiers, then the code they go on.
MODIFIER_APPENDED = re.compile(
    r"(?i:\b(?:append(?:ed|ing)?|add(?:ed|ing)?))\s+-?"
    r"([0-9A-Z]{2}(?:\s*(?:,|/|&|\+|(?i:and))\s*-?[0-9A-Z]{2})*)(?=\s+(?i:to|on)\s)"
)
# "all with GP", "each with modifier 59", "both with KX": modifiers shared by a list.
SHARED_MODIFIER = re.compile(
    r"(?i:\b(?:all|each|both)(?:\s+of\s+them)?\s+(?:with|w/|get|take)\s*(?:(?:the|a)\s+)?"
    r"(?:mod(?:ifier)?s?\s*)?)-?([0-9A-Z]{2})(?:\s*(?:,|/|&|and)\s*-?([0-9A-Z]{2}))?(?!\w)"
)
# "GP on both", "59 and XU on each": the same, with the modifiers first. Words that are
# also modifiers ("PT on all") need a hyphen.
SHARED_BY_ALL = re.compile(
    rf"(?<![\w-])(?:-([0-9A-Z]{{2}})|(?!(?:{LOOKALIKE})\b)([0-9A-Z]{{2}}))"
    r"(?:\s*(?:,|/|&|and)\s*-?([0-9A-Z]{2}))?\s+(?:(?i:modifiers?)\s+)?"
    r"(?i:on|for)\s+(?i:both|all|each|every\s+(?:line|code|one))\b"
)
# "97110x2, 97112x1 (all GP)"
SHARED_IN_PARENTHESES = re.compile(
    r"\(\s*(?i:all|each|both)\s+(?:(?i:mod(?:ifier)?s?)\s*)?-?([0-9A-Z]{2})"
    r"(?:\s*(?:,|/|&|and)\s*-?([0-9A-Z]{2}))?\s*\)"
)
# "put 59 on 97140", "use XS on 12001", "modifier 24 on 99213 and XS on 12001": a modifier
# put on the code it names ("XU instead of 59 on 97140" puts none).
MODIFIER_ON_CODE = re.compile(
    r"(?i:\b(?:put|putting|use|using|add|adding|append\w*|attach\w*|appl\w+)\s+"
    r"(?:(?:the|a|an)\s+)?(?:mod(?:ifier)?\s+)?|(?<=[0-9A-Z]{5})\s+and\s+)"
    r"-?([0-9A-Z]{2})(?=\s+(?:on|to)\s+(?:the\s+|code\s+)?[0-9A-Z]{5}\b)"
)
# "the 25 goes on the E/M 99213", "XU on 97530 is fine": a modifier said to go on a code
MODIFIER_WORD = r"(?:\s+(?i:mod(?:ifier)?))?"
GOES = r"(?i:goes|go|belongs|should\s+go)\s+"
ON_CODE = r"(?i:on)\s+(?:the\s+)?(?:(?i:e/m|code)\s+)?[0-9A-Z]{5}\b"
MODIFIER_GOES_ON = re.compile(
    rf"(?i:\bthe)\s+-?([0-9A-Z]{{2}})(?={MODIFIER_WORD}\s+{GOES}{ON_CODE})"
    rf"|(?<![\w-])([A-Z][0-9A-Z])(?={MODIFIER_WORD}\s+(?:{GOES})?{ON_CODE})"
)
# "97535 gets the KX": a code said to take a modifier
MODIFIER_TAKEN = re.compile(
    r"(?<=[0-9A-Z]{5} )(?i:gets|takes|carries|needs)\s+(?:(?i:the|a|an)\s+)?"
    r"(?:(?i:mod(?:ifier)?)\s+)?-?([0-9A-Z]{2})(?!\w)"
)
MODIFIER_NAMES_CODE = re.compile(
    r"(?i)\s*(?:(?:goes|go|belongs|should\s+go|is\s+going)\s+)?(?:on|to|for|with|appended to)"
    r"\s+(?:the\s+|code\s+|e/m\s+)?([0-9A-Z]{5})\b"
)
UNITS_AFTER = re.compile(
    r"(?i)^\s*(?:[,\u2013-]\s*)?\(?\s*(?:[x\u00d7*]\s*(\d{1,3})\b(?:\s*units?\b)?|"
    # not the count of the next code: "96372, 1 units of J2550"
    r"(?:(?:@|for)\s*)?(\d{1,3})(?:[ \t]*(?:units?|uos)|u)\b(?![ \t]*[:=]?[ \t]*\d|\s+of\b)|"
    r"(?:units?|uos|un|qty)\s*[:=*]?\s*(\d{1,3})\b)(?:[ \t]*\))?"
)
# Modifiers in parentheses after a code: "49505 (RT, 51)", "90834 (GT, HO)".
MODIFIER_LIST_IN_PARENTHESES = re.compile(
    r"[ \t]*\([ \t]*([0-9A-Z]{2}(?:[ \t]*[,/&][ \t]*[0-9A-Z]{2}){1,3})[ \t]*\)"
)
UNITS_BEFORE = re.compile(
    r"(?i)(?:\b[x\u00d7]?(\d{1,3})\s*units?\s+(?:of\s+)?|(?<![\w.~])(\d{1,3})\s?[x\u00d7]\s+)$"
)
SENTENCE_BREAK = re.compile(r"[.?!;]\s|\n")
# Column tables: a header naming a units column ("CPT Units Charge", "Proc Mod Units"),
# a pipe-separated claim row whose last cell is the count, box 24G of the CMS-1500.
UNITS_HEADER = re.compile(r"(?im)^.*\b(?:cpt|hcpcs|code|proc\w*)\b.*\b(?:units?|uos|qty)\b.*$")
TABLE_UNITS = re.compile(r"^[^\n\d]*?(?<![\w.~])(\d{1,3})(?![\w.~/])")
PIPE_ROW_UNITS = re.compile(r"\|\s*(\d{1,3})\s*$")
COLUMN_GAP = re.compile(r"\t|  +|\|")
# Box 24G of the CMS-1500, or form locator 46 of the UB-04: the units.
BOX_24G = re.compile(r"\b(?:24G|FL\s?46)\s+(\d{1,3})\b")
# A claim row's count in its own cell right before the charge: "00790 AA  11  1096.31".
COUNT_BEFORE_CHARGE = re.compile(
    r"(?:[ \t]{2,}[A-L]{1,4})?[ \t]{2,}(\d{1,3})[ \t]{2,}\$?[ \t]?\d[\d,]*\.\d{2}(?![\w.])"
)
# ... or the last cell of a row, right after the charge: "29515  RT   112.00  1".
COUNT_AFTER_CHARGE = re.compile(r"[ \t]{2,}\$?[ \t]?\d[\d,]*\.\d{2}[ \t]{2,}(\d{1,3})[ \t]*$")
# Box 24 keyed by its letters: "D 99214 25   E ABCD  F 165 00  G 1  J 1982736450".
BOX_24_LETTERS = re.compile(
    r"[ \t]E[ \t]+[A-L]{1,4}[ \t]+F[ \t]+\$?[\d ,.]+?[ \t]+G[ \t]+(\d{1,3})\b"
)
# A CMS-1500 box 24 line as typed or scanned, after the code and its modifiers: the
# pointer letters (24E), the charge (24F, dollars and cents apart) and the units (24G).
BOX_24_TAIL = re.compile(
    r"(?:[ \t|]+[0-9A-Z]{2}(?!\w))*?[ \t|]+[A-L]{1,4}[ \t|]+\$?\d{1,6}(?:[ .]\d{2})?[ \t|]+"
    r"(\d{1,3})(?![\w.])"
)
ROW_COUNT = re.compile(r"\d{1,3}(?:\.0+)?")
# A unit count labelled anywhere on a claim row: "UNITS 4", "5 UN", "Qty: 2".
ROW_UNITS = re.compile(
    r"(?i)(?:\b(?:units?|uos|qty)\s*[:=#]?\s*(\d{1,3})\b|(?<![\w.~])(\d{1,3})\s*(?:units?|un|uos)\b)"
)
# Words that say a modifier is not on a code: "billed without modifier 25", "dropped the
# 59 modifier", "XU instead of 59".
NEGATED = re.compile(
    r"(?i)\b(?:without|w/o|no|not|never|missing|minus|drop(?:ped|ping|s)?|remov(?:e|ed|es|ing)|"
    r"delet(?:e|ed|es|ing)|strip(?:ped|s)?|instead\s+of|rather\s+than|in\s+place\s+of)"
    r"\s+(?:(?:the|a|an|any)\s+)?$"
)
# A count of units stated anywhere in a sentence.
SENTENCE_UNITS = re.compile(
    r"(?i)\b(?:units?|uos|qty|quantity)\s*[:=#]?\s*(\d{1,3})\b(?!\s*(?:mg|mcg|ml|%))"
    r"|(?<!per )(?<![\w.~/])(\d{1,3})\s*(?:units?|uos)\b"
    r"|(?<![\w.~])[x\u00d7](\d{1,3})\b"
)
# ... and the same said after the modifier: "modifier GP missing", "25 was not appended".
NEGATED_AFTER = re.compile(
    r"(?i)\s*(?:(?:is|was|were)\s+)?(?:missing|absent|omitted|left\s+off|removed|dropped|"
    r"not\s+(?:appended|present|reported|billed|attached|on))\b"
)
# What may stand between a code and the modifier phrase that is its own: "99202 with modifier 57".
WITH_GAP = re.compile(
    r"(?i)\s*(?:,\s*)?(?:with|w/|plus|and|gets|takes|carries|needs)?\s*(?:an?\s+|the\s+)?"
)
MODIFIER_ATTACH_BEFORE = 80
MODIFIER_ATTACH_AFTER = 40


def known_modifiers(value: str, is_modifier: IsModifier) -> list[str]:
    """The modifiers a list such as "25, 59" or "-GP/KX" names, when each is one."""
    return [m for m in MODIFIER_IN_LIST.findall(value) if is_modifier(m)]


def row_count(value: str) -> int | None:
    """A units cell's count ("4", "2.00"); None for an empty, zero or other cell."""
    if not ROW_COUNT.fullmatch(value):
        return None
    return int(float(value)) or None


def modifiers_after(
    masked: str,
    end: int,
    is_modifier: IsModifier,
    *,
    other_column: Callable[[int], bool] = lambda start: False,
) -> tuple[list[str], int]:
    """Modifiers written right after a code ending at ``end``, and where they stop.

    A letter modifier that is also a word ("AS", "PT") needs a hyphen; a two-digit
    one after a space must not be a count ("QS, 33 min") or part of a number, nor sit
    past a column gap in a table column of its own (``other_column``: under "Units").
    """
    listed = MODIFIER_LIST_IN_PARENTHESES.match(masked, end)
    if listed and all(is_modifier(m) for m in MODIFIER_IN_LIST.findall(listed.group(1))):
        return MODIFIER_IN_LIST.findall(listed.group(1)), listed.end()
    modifiers: list[str] = []
    position = end
    while match := MODIFIER_STEP.match(masked, position):
        separator, modifier = match.group(1).strip(), match.group(3)
        if not is_modifier(modifier) or "\n" in match.group(1):
            break
        if (
            separator in ("", "(")
            and modifier in MODIFIER_LOOKALIKE_WORDS
            and not ROW_CELL_END.match(masked, match.end())
        ):
            break
        counted = COUNT_AFTER.match(masked, match.end())
        if modifier.isdigit() and separator not in ("-", "\u2013") and counted:
            break
        if separator == "," and not modifiers:
            break
        if COLUMN_BREAK.search(match.group(1)) and other_column(match.start(3)):
            break
        modifiers.append(modifier)
        position = match.end()
    phrase = TRAILING_MODIFIER_PHRASE.match(masked, position)
    if phrase and "\n" not in phrase.group() and not NEGATED_AFTER.match(masked, phrase.end()):
        named = MODIFIER_IN_LIST.findall(phrase.group(1) or phrase.group(2))
        if named and all(is_modifier(m) for m in named):
            modifiers.extend(m for m in named if m not in modifiers)
            position = phrase.end()
    return modifiers, position


def units_written_after(masked: str, position: int) -> tuple[int, int] | None:
    """A count written right after a code and its modifiers ("x3", "(2 units)",
    "units: 4"): the count and where it ends."""
    after = UNITS_AFTER.match(masked[position:])
    if after is None:
        return None
    return int(next(g for g in after.groups() if g)), position + after.end()


def units_written_before(masked: str, start: int) -> int | None:
    """A count written right before a code: "2 units of 97530", "6x 97110"."""
    before = UNITS_BEFORE.search(masked[max(0, start - 20) : start])
    return int(before.group(1) or before.group(2)) if before else None


def units_in_row(text: str, masked: str, position: int) -> int | None:
    """The count a claim row or table gives the code on it: box 24G, a count right
    before the charge, a pipe row's last cell, or the first number after the code under
    a header naming units. ``masked`` is ``text`` with its look-alikes masked."""
    line_start = masked.rfind("\n", 0, position) + 1
    line_end = masked.find("\n", position)
    line_end = len(masked) if line_end == -1 else line_end
    rest = masked[position:line_end]
    box = (
        BOX_24G.search(rest)
        or BOX_24_LETTERS.search(rest)
        or BOX_24_TAIL.match(rest)
        or COUNT_BEFORE_CHARGE.match(text, position, line_end)
        or COUNT_AFTER_CHARGE.match(text, position, line_end)
    )
    if box:
        return int(box.group(1))
    if COLUMN_GAP.search(rest):
        labelled = ROW_UNITS.search(rest)
        if labelled:
            return int(labelled.group(1) or labelled.group(2))
    if masked.count("|", line_start, line_end) >= 3:
        cell = PIPE_ROW_UNITS.search(rest)
        return int(cell.group(1)) if cell else None
    if not COLUMN_GAP.search(rest) or not _under_units_header(masked, line_start):
        return None
    cell = TABLE_UNITS.match(rest)
    return int(cell.group(1)) if cell else None


def units_in_sentence(masked: str, start: int, end: int) -> list[int]:
    """The counts of units a sentence states anywhere ("— 4 units, right?", "QTY 3 -
    97110"), not a dose per unit ("per 2 units")."""
    return [
        int(next(g for g in m.groups() if g)) for m in SENTENCE_UNITS.finditer(masked, start, end)
    ]


def _under_units_header(masked: str, line_start: int) -> bool:
    """Whether the row starting at ``line_start`` is in a table whose header (a line
    of columns, no blank line between) names a units column."""
    block_start = masked.rfind("\n\n", 0, line_start) + 1
    for header in UNITS_HEADER.finditer(masked, block_start, line_start):
        if len(COLUMN_GAP.findall(header.group())) >= 2:
            return True
    return False


def modifier_phrases(masked: str, is_modifier: IsModifier) -> list[tuple[int, int, list[str]]]:
    """Every phrase naming modifiers apart from a code ("modifier 59", "appended XS to",
    "put 59 on 97140", "25 modifier"): its span and the modifiers, all known ones. A
    phrase that says the modifiers are not there ("without modifier 25", "modifier GP
    missing") puts none."""
    phrases: list[tuple[int, int, list[str]]] = []
    for match in MODIFIER_PHRASE.finditer(masked):
        phrases.append((match.start(), match.end(), MODIFIER_IN_LIST.findall(match.group(1))))
    for match in MODIFIER_APPENDED.finditer(masked):
        phrases.append((match.start(), match.end(), MODIFIER_IN_LIST.findall(match.group(1))))
    for match in MODIFIER_ON_CODE.finditer(masked):
        if match.group(1) not in MODIFIER_LOOKALIKE_WORDS:
            phrases.append((match.start(), match.end(), [match.group(1)]))
    for match in [*MODIFIER_GOES_ON.finditer(masked), *MODIFIER_TAKEN.finditer(masked)]:
        modifier = next(g for g in match.groups() if g)
        taken = any(s <= match.start() < e for s, e, _ in phrases)
        if modifier not in MODIFIER_LOOKALIKE_WORDS and not taken:
            phrases.append((match.start(), match.end(), [modifier]))
    for match in MODIFIER_BEFORE_WORD.finditer(masked):
        if any(s <= match.start() < e for s, e, _ in phrases):
            continue
        phrases.append((match.start(), match.end(), [g for g in match.groups() if g]))
    return [
        (start, end, modifiers)
        for start, end, modifiers in phrases
        if all(is_modifier(m) for m in modifiers)
        and not NEGATED.search(masked, max(0, start - 30), start)
        and not NEGATED_AFTER.match(masked, end)
    ]


def shared_modifier_phrases(masked: str, is_modifier: IsModifier) -> list[tuple[int, list[str]]]:
    """Phrases that give modifiers to every code listed before them in their sentence
    ("all with GP", "GP on both", "(all GP)"): where each starts, and its modifiers."""
    shared = []
    for pattern in (SHARED_MODIFIER, SHARED_BY_ALL, SHARED_IN_PARENTHESES):
        for match in pattern.finditer(masked):
            modifiers = [m for m in match.groups() if m]
            if all(is_modifier(m) for m in modifiers):
                shared.append((match.start(), modifiers))
    return shared


class Placed(Protocol):
    """A code found in a text: its system, code and span."""

    system: str
    code: str
    start: int
    end: int


CodeT = TypeVar("CodeT", bound=Placed)


def modifier_target(
    masked: str, procedures: Sequence[CodeT], start: int, end: int, modifiers: list[str]
) -> CodeT | None:
    """The procedure code a modifier phrase at ``start:end`` speaks of.

    "modifier XS on 12001" names its code; E/M-only modifiers (25, 57, ...) go to the
    E/M code of the sentence; otherwise the code just before the phrase in the same
    sentence, else the one right after it.
    """
    named = MODIFIER_NAMES_CODE.match(masked, end)
    if named:
        for code in procedures:
            if code.start == named.start(1):
                return code
    nearby = [c for c in procedures if _same_sentence_near(masked, c, start, end)]
    right_before = [c for c in nearby if WITH_GAP.fullmatch(masked, c.end, start)]
    if right_before:
        return right_before[-1]
    if modifiers and all(m in formats.EM_ONLY_MODIFIERS for m in modifiers):
        em = [c for c in nearby if c.system == formats.CPT and formats.is_em_code(c.code)]
        if em:
            return em[0]
    before = [c for c in nearby if c.end <= start]
    if before:
        return before[-1]
    after = [c for c in nearby if c.start >= end]
    return after[0] if after else None


def _same_sentence_near(masked: str, code: Placed, start: int, end: int) -> bool:
    if code.end <= start:
        gap = masked[code.end : start]
        return len(gap) <= MODIFIER_ATTACH_BEFORE and not SENTENCE_BREAK.search(gap)
    if code.start >= end:
        gap = masked[end : code.start]
        return len(gap) <= MODIFIER_ATTACH_AFTER and not SENTENCE_BREAK.search(gap)
    return False
