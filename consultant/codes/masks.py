"""Numbers that are never codes, masked before a case's text is read for codes.

Case emails are full of numbers that look like codes: ZIP codes after a city or a state,
phone numbers, dates, times, amounts, vitals, percentages, claim adjustment and remark
codes, and NDCs (whose five-digit labeler part looks like a CPT code). Each is found by
its layout alone and overwritten with filler of the same length, so every later span
still points into the original text. A signature (from a sign-off line near the end)
is masked whole: only addresses, phone numbers and NPIs live there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

US_STATES = (
    "AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|"
    "NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|PR"
)
# States whose abbreviation is also a word before a code ("Smith MD 99214", "Head CT
# 70450", "the MA plan") count only after a comma.
CITY_STATES = "|".join(
    state for state in US_STATES.split("|") if state not in {"MA", "MD", "PA", "CT"}
)
LOWER_CASE_STATES = (
    "wa|ca|tx|fl|ny|nj|nc|sc|ga|az|nv|ut|nm|ks|ia|mn|wi|mi|il|ky|tn|ms|ar|wv|va|vt|nh|ri|"
    "ct|md|dc|ak|wy|mt|sd"
)
STATE_NAMES = (
    "Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|Florida|"
    "Georgia|Hawaii|Idaho|Illinois|Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|Maryland|"
    "Massachusetts|Michigan|Minnesota|Mississippi|Missouri|Montana|Nebraska|Nevada|"
    "New Hampshire|New Jersey|New Mexico|New York|North Carolina|North Dakota|Ohio|Oklahoma|"
    "Oregon|Pennsylvania|Rhode Island|South Carolina|South Dakota|Tennessee|Texas|Utah|"
    "Vermont|Virginia|Washington|West Virginia|Wisconsin|Wyoming"
)
WORD_STATE_ZIPS = r"MA\.?\s+0[12]\d{3}|MD\.?\s+2[01]\d{3}|PA\.?\s+1[5-9]\d{3}|CT\.?\s+06\d{3}"
# Remittance advice remark codes, one or a list: "N20", "N290, M51", "MA130 / N362".
REMARKS = r"(?:MA|[MN])\d{1,3}\b(?:\s*(?:,|/|&|and)\s*(?:MA|[MN])\d{1,3}\b)*"
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
    r"\d{3}-\d{2}-\d{2}\b",  # dates: 2026-01-15
    r"\d?:\d{2}(?::\d{2})?\b",  # times: 10:30, 14:05:00
    r"[\d,]*(?:\.\d+)?\s*(?i:usd|dollars)\b",  # money in words: 1,250 USD
    r"\d{4}-\d{4}\b(?!-)",  # ZIP+4
    r"\d{1,2}\s?/\s?\d{2,3}\b",  # vitals and ratios: BP 128/82
    r"\d{0,2}(?:,\d{3})+(?:\.\d+)?\b",  # thousands: 12,345.00
    r"\d*\.\d+\b",  # decimals: 98.6, 10021.5
    r"\d*\s?%",  # percentages
)
# A street address with the city and ZIP after it: "1200 Main Street, Chicago 60611".
STREET_SUFFIXES = (
    "St|Street|Ave|Avenue|Blvd|Boulevard|Rd|Road|Hwy|Highway|Dr|Drive|Ln|Lane|Way|Ct|Court|"
    "Pkwy|Parkway|Pl|Place|Cir|Circle|Ter|Trail"
)
ADDRESS = re.compile(
    rf"\b\d{{1,6}}\s+(?:[A-Z][a-z]*\.?\s+){{1,3}}(?:{STREET_SUFFIXES})\b\.?"
    r"[^\n\d]{0,40}\d{5}(?:-\d{4})?\b"
)
# Capitalised words that come before a code, never a city; and what a place is called.
NOT_PLACES = (
    r"(?:Medicare|Medicaid|Tricare|Part|Box|Room|Suite|Line|Tier|Level|Group|Code|Codes|Category|"
    r"Procedure|Service|Modifier|Visit|Units?|Claim|Item|Row|Step|Page)"
)
PLACE_NOUNS = r"(?:office|location|clinic|campus|site|branch|area|facility|lockbox|address)"
CITY = rf"(?!{NOT_PLACES}\b)[A-Z][a-z]+(?:\s[A-Z][a-z]+)?"
MONTH = r"(?:0?[1-9]|1[0-2])"
DAY = r"(?:0?[1-9]|[12]\d|3[01])"
TRAP_PATTERNS = (
    # dates: 01/15/2026, 1-15-26, 15.01.2026 (a real month and day: "25-59-26" is modifiers)
    re.compile(rf"(?<![\w-])(?:{MONTH}[/.-]{DAY}|{DAY}[/.-]{MONTH})[/.-]\d{{2,4}}\b"),
    # not after a word and a hyphen: in "99213-GP-25-59-26" the digits are modifiers
    re.compile(r"\d(?<!\w\d)(?<!\w-\d)(?:" + "|".join(NUMBER_TRAP_TAILS) + ")"),
    re.compile(r"\(\d{3}\)\s?\d{3}[-. ]\d{4}\b"),  # phone: (555) 123-4567
    # clock times in a day's list: "0930A", "1215P" (CPT's own "A" codes start 00 or 01)
    re.compile(r"(?<![\w-])(?:0[2-9]|1[0-2])[0-5]\d[AaPp]\b"),
    re.compile(
        r"(?:\$|\b(?i:usd|us\$))\s?\d[\d,]*(?:\.\d+)?"
    ),  # money: $1,250.00, $99213, USD 16000
    # ZIP after a state: ", IL 62704", ", CA, 92014"
    re.compile(r",\s*[A-Z]{2}\.?,?\s+\d{5}(?:-\d{4})?\b"),
    ADDRESS,
    # ZIP after a city and a state without a comma: "Omaha NE 68198", "Dayton, Ohio 45380"
    re.compile(rf"\b[A-Z][A-Za-z]+\s+(?:{CITY_STATES})\.?\s+\d{{5}}(?:-\d{{4}})?\b"),
    # ... and in lower case, for the states whose abbreviation is no word: "selah wa 98942"
    re.compile(rf"\b[a-z]+\s+(?:{LOWER_CASE_STATES})\s+\d{{5}}(?:-\d{{4}})?\b"),
    re.compile(rf"\b(?:{STATE_NAMES}),?\s+\d{{5}}(?:-\d{{4}})?\b"),
    # ... and for the states whose abbreviation is also a word, a ZIP in the state's range
    re.compile(rf"\b[A-Z][A-Za-z]+\s+(?:{WORD_STATE_ZIPS})(?:-\d{{4}})?\b"),
    # claim adjustment and remark codes: "CO-45", "PR-2 / N20", "CO-97  M80", "remark N362"
    re.compile(rf"\b(?:CO|PR|OA|PI)-\d{{1,3}}\b(?:\s*/?\s*{REMARKS})?"),
    re.compile(
        r"(?i:\b(?:remarks?|rarc|rmk)(?:\s+codes?)?(?:\s+came\s+back|\s+was|\s+is)?\s*:?\s*)"
        + REMARKS
    ),
)
# Where a signature begins: a line with only a sign-off. Nothing below it is a code.
SIGN_OFF = re.compile(
    r"(?im)^[ \t]*(?:(?:thanks|thank you)(?: so much| again| in advance| all)?|thx|ty|"
    r"many thanks|with thanks|best|best regards|best wishes|all the best|regards|"
    r"kind regards|warm regards|warmly|sincerely|cheers|take care|appreciate it|"
    r"respectfully|--|sent from my \w+)[ \t]*[,.!]*[ \t]*$"
)
SIGNATURE_LINES = 12


def mask(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """``text`` with each span overwritten by filler, keeping every other offset."""
    chars = list(text)
    for start, end in spans:
        chars[start:end] = "~" * (end - start)
    return "".join(chars)


def trap_spans(text: str) -> list[tuple[int, int]]:
    """Where the text holds a date, phone number, amount, ZIP code or remark code."""
    return [m.span() for pattern in TRAP_PATTERNS for m in pattern.finditer(text)]


def signature_span(text: str) -> list[tuple[int, int]]:
    """The signature of an email — from a sign-off line near the end to the end — where
    only addresses, phone numbers and NPIs live."""
    for match in SIGN_OFF.finditer(text):
        if match.start() > 0 and text.count("\n", match.end()) <= SIGNATURE_LINES:
            return [(match.start(), len(text))]
    return []
