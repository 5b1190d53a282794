"""The date of service a case text states, which decides the code release it is checked by.

Conservative on purpose: a date counts only right after a label that means the date of
service ("DOS", "date of service", "service date", "seen on", "visit date"), so a date
of birth, a claim date or a deadline in the same email never moves a case to another
release. Texts giving several different dates of service give none: which code goes
with which date cannot be told, and the day the case arrived is used instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

LABEL = (
    r"(?:\bDOS\b|\bdates?\s+of\s+service\b|\bservice\s+date\b|\bdate\s+serviced\b"
    r"|\bseen\s+on\b|\b(?:visit|encounter)\s+date\b)"
)
MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
DATE = (
    r"(?:(?P<iso_y>\d{4})-(?P<iso_m>\d{1,2})-(?P<iso_d>\d{1,2})"
    r"|(?P<us_m>\d{1,2})(?P<sep>[/.-])(?P<us_d>\d{1,2})(?P=sep)(?P<us_y>\d{4}|\d{2})"
    r"|(?P<name_m>[A-Za-z]{3,9})\.?\s+(?P<name_d>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<name_y>\d{4}))"
)
STATED = re.compile(
    LABEL + r"\s*(?:\(s\))?\s*(?:[:#=-]|\bwas\b|\bis\b|\bon\b|\bof\b)?\s*" + DATE + r"(?![\d/])",
    re.IGNORECASE,
)


def date_of_service(texts: Iterable[str]) -> date | None:
    """The one date of service the texts state, or ``None`` (none, or several)."""
    found = {day for text in texts for day in _stated_dates(text)}
    return found.pop() if len(found) == 1 else None


def _stated_dates(text: str) -> Iterable[date]:
    for match in STATED.finditer(text):
        day = _as_date(match)
        if day is not None:
            yield day


def _as_date(match: re.Match[str]) -> date | None:
    if match["iso_y"]:
        year, month, day = int(match["iso_y"]), int(match["iso_m"]), int(match["iso_d"])
    elif match["us_y"]:
        year, month, day = int(match["us_y"]), int(match["us_m"]), int(match["us_d"])
        year += 2000 if year < 100 else 0
    else:
        month_number = MONTHS.get(match["name_m"].lower())
        if month_number is None:
            return None
        year, month, day = int(match["name_y"]), month_number, int(match["name_d"])
    try:
        return date(year, month, day)
    except ValueError:
        return None
