"""Numbers that an identifier's label makes not a code, whatever their shape.

"Claim # 99213", "ZIP 45380", "Batch ID = 27447", "39931 (ZIP)", "employee E4051": the
digits are a valid code, and the words around them say they are not one. A label may
stand before the number, after it ("99497 - cost ctr"), as the key of its line, or as
a time starting a log line (what follows is a user). The header of a table column is
read by ``tables``; the reader combines both.
"""

from __future__ import annotations

import re

from consultant.codes.masks import CITY, PLACE_NOUNS, STREET_SUFFIXES

# A number right after one of these words is an identifier, an address or a count.
ID_LABELS = (
    r"zip|postal|claims?(?!\s+(?:was|is)\s)|acct|acnt|accounts?|pid|rej|rule|inquiry|"
    # an edit's number, not the verb ("will edit 96365") nor a pair edit ("NCCI edit 97140")
    r"(?<!ncci )(?<!ptp )(?<!mue )(?<!cci )(?<!will )(?<!to )(?<!would )(?<!may )edit|"
    r"members?|subscriber|policy|group|grp|invoice|inv|mrn|"
    r"id|npi|tin|ein|tax|ref|reference|orders?|auth|authorization|prior auth|case|ticket|"
    r"suite|ste|room|rm|box|lockbox|route|rte|ext\.?|extension|dept|department|fax|phone|tel|icn|dcn|tcn|tracking|serial|lot|"
    r"confirmation|pin|lcd|ncd|article|drg|apc|rev|revenue|contract|street|st|ave|avenue|"
    r"road|rd|blvd|highway|hwy|transmittal|cr|change request|cost cent(?:er|re)|cost ctr|"
    r"employee|emp|user|operator|entered by|changed by|updated by|batch|pay[eo]r id|ptan|"
    r"trace|eft|amount|amt|balance|gl|general ledger|accession|badge|reviewer|chart|mln matters|"
    r"rep|representative|agent|analyst|submitter|receiver|sender|payee|"
    r"clm|mbr|ctrl|chk|bulletin|memo|notice|job|vendor|location|loc|seq|sequence|remit|"
    r"voucher|trans\.|transm\.|change req\.?|(?:keyed|added|posted|worked|reviewed) by|"
    r"bldg|building|apt|apartment|fl|pcn|deposit(?:\s+slip)?|appeal|correspondence|letter|"
    r"document|doc|"
    r"prov|facility|worklist owner|assigned to"
)
# ... and these only when a number word follows them ("visit #", "check number").
ID_LABELS_WITH_NUMBER_WORD = (
    r"visit|encounter|check|cheque|bed|control|plan|provider|unit|floor|building|bldg|"
    r"coder"
)
NUMBER_WORD = r"(?:#|no\.?|num\.?|nbr\.?|number|id|ids|code)"
STRICT_NUMBER_WORD = r"(?:#|no\.?|num\.?|nbr\.?|number)"
# "Change Request (CR) 13706", "Accession #: 45380", "claim number is 88213"
LABEL_TAIL = (
    r"\s*(?:\([A-Za-z]{1,6}\))?\s*(?:there\s+|on\s+(?:file|record)\s+)?"
    r"(?:is|was|of|ends? in|ending in|starts? with|starting with)?"
    r"\s*(?:[:#=]{0,2}|[-\u2013](?=\s))\s*"
)
# Any word with a number word after it names an identifier ("Deposit #:", "Prov. No.",
# "appeal #"), unless the word is one for codes or counts ("CPT #", "line no.").
NUMBERED_LABEL = (
    r"(?!(?:cpt|hcpcs|codes?|proc\w*|dx|icd\w*|diag\w*|lines?|items?|services?|svc|mods?|"
    r"modifiers?|units?|page|step|option|tier|level|box|rev)\b)[a-z]{2,}\.?\s*"
    r"(?:#|no\.|nbr\.?|num\.|number)"
)
# A label written after the number: "39931 (ZIP)", "99497 - cost ctr", "90791 = member
# ID", "27410 is our ZIP"; the label must end its clause, so "99213 - claim denied" is a code.
ID_AFTER = re.compile(
    r"(?i)\s*(?:\(\s*|[-\u2013=]\s*|(?:is|was|are|were|that'?s)\s+|[-\u2013]\s*that'?s\s+)"
    r"(?:(?:the|our|my|their|your|his|her|its|a|an)\s+)?"
    # up to two qualifying words, no preposition: "(PO box)", "is the patient's account
    # number", but not "99213 is on the claim"
    r"(?:(?!(?:on|in|at|for|from|with|to|under|of|by|per)\b)[a-z']+\.?\s+){0,2}"
    rf"(?:{NUMBERED_LABEL}|(?:{ID_LABELS})\.?(?:\s*{NUMBER_WORD})?|(?:{ID_LABELS_WITH_NUMBER_WORD})\s*{STRICT_NUMBER_WORD})"
    rf"\.?(?![. \t:#]*(?:{NUMBER_WORD}[. \t:#]*)?\d)"  # not the label of the next number
    r"\s*(?=[),.;\n]|$)"
)
# A line "Label: value", "Label = value", "Label - value": every number in the value is
# what the label says, so a line keyed by an identifier label holds no code.
KEY_VALUE = re.compile(
    r"(?m)^[ \t]*([A-Za-z][A-Za-z .#/()&'_-]{0,30}?)[ \t]*(?::|=|\t| [-\u2013] )[ \t]*"
)
# A key that ends in one of these words is about a claim, not its number.
NOT_IDENTIFIER_KEY = re.compile(
    r"(?i)\b(?:check|review|status|edit|message|notes?|reason|result|details?|summary|"
    r"lines?|denial|decision|response|update|question)\s*$"
)
CODE_KEY = re.compile(
    r"(?i)\b(?:cpt|hcpcs|codes?|proc\w*|dx|diag\w*|icd\w*|mods?|modifiers?|services?|"
    r"lines?|re|subject|billed|denied|paid)\b"
)
# A number joined to a labelled one shares its label: "ZIP 43614 and 98405". Not after a
# comma: in "claim #88213, 99213 and 99214" the codes follow the claim number.
SEGMENT_BEFORE = re.compile(r"[0-9A-Za-z]+-$")
GROUP_BEFORE = re.compile(r"(?:(?<![\w.~])\d{1,4} )+$")
LISTED_BEFORE = re.compile(r"(?:[~0-9A-Z]*[~0-9][~0-9A-Z]*\s*(?:/|&|\band\b|\bor\b)\s*)+$")
ID_BEFORE = re.compile(
    rf"(?i)(?:\b(?:{ID_LABELS}|(?:on|by|via|paper|under) check)\.?\s*{NUMBER_WORD}?{LABEL_TAIL}"
    rf"|\b(?:{ID_LABELS_WITH_NUMBER_WORD})\s*{STRICT_NUMBER_WORD}{LABEL_TAIL}"
    r"|\b(?:npi|tin|ein|id)\s*\(\s*"  # "invalid rendering NPI (N290)"
    r"|\b(?:total|count|accepted)\s*:\s*"  # a report's counts: "Accepted: 45378"
    rf"|\b{NUMBERED_LABEL}\s*:?\s*"
    r"|#\s*:?\s*)$"
)
# A table header that names an identifier: "Claim#", "Pt Acct", "member_id", "ICN".
ID_HEADER = re.compile(
    rf"(?i)\b(?:{ID_LABELS}|(?:{ID_LABELS_WITH_NUMBER_WORD})\s*{STRICT_NUMBER_WORD})(?!\w)"
)
WORD = re.compile(r"[0-9A-Za-z]+")
# A word or a cell break in a key's value before a number: "Member: Jane Doe, billed
# 99213" and "Allowed amt: 61.00 | 72148" name a code.
VALUE_WORD = re.compile(r"[a-z]{3,}|[|\t;]")
# A number right before one of these words is a quantity, not a code.
QUANTITY_AFTER = re.compile(
    r"(?i)^[ \t]*(?:mg|mcg|ml|cc|iu|units?\b(?!\s+of|\s*[:=]?\s*\d)|"
    r"miles?|mi\b|km|steps|feet|ft\b|lbs?|kg|"
    r"dollars|usd|people|employees|beds|calls|emails|tests|"
    r"times|days|hours|minutes|mins?\b|seconds|tickets|words|pages|rpm|mmhg|"
    r"main st|street|ave|avenue|blvd|road|rd\b|lane|ln\b|drive|dr\b|way\b|court|ct\b|"
    r"zip\b|zip code|postal)"
)
# "15000 claims" is a count, but "the 99213 claims" and "if 99213 visits count" name a code.
COUNTED_AFTER = re.compile(r"(?i)\s*(?:patients|visits|claims|members|cases)\b")
DETERMINER_BEFORE = re.compile(r"(?i)\b(?:the|our|their|your|if|these|those|which|what|any)\s+$")


def counted(text: str, start: int, end: int) -> bool:
    """Whether the number at ``start:end`` counts something ("15000 claims")."""
    if not COUNTED_AFTER.match(text, end):
        return False
    return not DETERMINER_BEFORE.search(text, max(0, start - 12), start)


# Five digits that are a ZIP after a city named as a place ("our office in Versailles
# 45380", "moved to Versailles (45380)", "the Dayton 45402 location"), or a check by its
# number ("Check 45378 issued", "check 20553 for $2,055.30"): (before, after) patterns.
# Payers whose ID clearinghouses print after their name.
PAYER_NAMES = (
    r"aetna|cigna|uhc|united\s?health\s?care|humana|bcbs\w*|anthem|molina|centene|wellcare|"
    r"kaiser|ambetter|oscar|highmark|regence|premera|optum|geha|umr|tricare|triwest"
)
NOT_CODE_AROUND = (
    (re.compile(rf"\b(?:in|at|near|from|to)\s+{CITY}\s+\(?$"), re.compile(r"(?!\w|-\w)")),
    (re.compile(rf"\b{CITY}\s+$"), re.compile(rf"\s+{PLACE_NOUNS}\b")),
    # "seen at our Toledo office (43614)": a number in parentheses after a place noun
    (re.compile(rf"(?i)\b{PLACE_NOUNS}\s*\(\s*$"), re.compile(r"\s*\)")),
    # "Payer: GEHA (44054)": a payer's ID in parentheses after its name
    (
        re.compile(r"(?i)\b(?:payer|carrier|insurer|plan)\s*:\s*[A-Z][\w&.' -]{1,40}[ (]\s*$"),
        re.compile(r"\s*\)|[ \t]*$|[ \t]{2,}", re.MULTILINE),
    ),
    # "Cigna 62308: no change", "UHC 87726<tab>...": a payer's ID after its name
    (
        re.compile(rf"(?i)\b(?:{PAYER_NAMES})\s+\(?$"),
        re.compile(r"[ \t]*(?:[:;)|\t]|$|[ ]{2,})", re.MULTILINE),
    ),
    # "the patient moved to 60614": where someone lives or moved is a place
    (
        re.compile(r"(?i)\b(?:moved|moving|relocated|lives|living|resides)\s+(?:to|in)\s+$"),
        re.compile(r"(?!\w|-\w)"),
    ),
    (
        re.compile(r"(?i)\b(?:check|chk|cheque)\s+$"),
        re.compile(
            r"(?i)\s+(?:issued|dated|cleared|mailed|voided|cashed|for\s+\$|in\s+the\s+amount)"
            r"|[ \t]{2,}|\t|[ \t]*$"
        ),
    ),
)
# A street number: "20610 Ventura Blvd", "45380 County Rd 9".
STREET_AFTER = re.compile(
    rf"^\s+(?:(?:[NSEW]|NE|NW|SE|SW)\.?\s+)?(?:[A-Z][A-Za-z]+(?:-[A-Z][A-Za-z]+)?\.?\s+){{1,3}}"
    rf"(?i:{STREET_SUFFIXES})\b"
)
# A time at the start of a line: what follows it in a log is a user, not a code.
TIME_FIRST = re.compile(r"(?m)^[ \t]*\d{1,2}:\d{2}(?::\d{2})?(?:\s*[AP]M)?[ \t]+$")


def labelled_identifier(text: str, start: int) -> bool:
    """Whether the words just before ``start`` label an identifier ("claim #", "ZIP"),
    directly, through a number listed with it ("ZIP 43614 and 98405") or as the next
    segment of a labelled number ("GL 6100-45380")."""
    before = text[max(0, start - 60) : start]
    before = before[before.rfind("\n") + 1 :]  # a label does not reach across a line
    windows = [before]
    if before.rstrip().endswith(("and", "or", "&", "/")):
        windows.append(LISTED_BEFORE.sub("", before))
    elif before.endswith("-"):  # a segment of a labelled number: "GL 6100-45380"
        windows.append(SEGMENT_BEFORE.sub("", before))
    elif GROUP_BEFORE.search(before):  # a group of a spaced number: "ICN 7716 11590 617"
        windows.append(GROUP_BEFORE.sub("", before))
    for window in windows:
        words = window[-40:].split(" ")
        if ID_BEFORE.search(" ".join(words[-5:])):
            return True
    return False


def keyed_identifier(text: str, start: int) -> bool:
    """A line keyed by an identifier label ("Cost Center - 59834", "Group No = 12002"),
    with only identifiers between its key and ``start``."""
    line_start = text.rfind("\n", 0, start) + 1
    key = KEY_VALUE.match(text, line_start, start)
    if key is None or CODE_KEY.search(key.group(1)) or not ID_HEADER.search(key.group(1)):
        return False
    if NOT_IDENTIFIER_KEY.search(key.group(1)):
        return False  # "Duplicate claim check: E0114 NU", "Claim status: 99213 denied"
    return not VALUE_WORD.search(text, key.end(), start)


def identifier_by_words(text: str, masked: str, start: int) -> bool:
    """Whether the number at ``start`` is an identifier by the words around it: a label
    just before it ("claim #") or just after it ("(ZIP)", "- cost ctr"), the key of its
    line ("Batch ID = 45380"), or a time starting its line (a log's user ID: "09:14 E4051
    changed ..."). ``masked`` is the text with its look-alikes masked."""
    if labelled_identifier(masked, start) or keyed_identifier(text, start):
        return True
    word = WORD.match(masked, start)
    if word and ID_AFTER.match(masked, word.end()):
        return True
    line_start = text.rfind("\n", 0, start) + 1
    return bool(TIME_FIRST.fullmatch(text, line_start, start))
