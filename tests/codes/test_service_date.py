"""The date of service a case text states: found after its usual labels, in the usual
spellings, and never taken from a date of birth or any other date."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consultant.codes.service_date import date_of_service


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("DOS 10/02/2025, billed 99214-25", date(2025, 10, 2)),
        ("date of service: 2025-09-30", date(2025, 9, 30)),
        ("Patient seen on 9/30/25 for follow-up", date(2025, 9, 30)),
        ("Dates of service 10/02/2025-10/05/2025, 97110 x4", date(2025, 10, 2)),
        ("Service date: October 2, 2025", date(2025, 10, 2)),
        ("DOS: Sept 30th 2025", date(2025, 9, 30)),
        ("visit date 2025-10-01\nDOB 03/04/1961", date(2025, 10, 1)),
        ("DOS 10.02.2025 and again DOS 10/2/25", date(2025, 10, 2)),
    ],
)
def test_a_labelled_date_of_service_is_found(text: str, expected: date) -> None:
    assert date_of_service([text]) == expected


@pytest.mark.parametrize(
    "text",
    [
        "DOB 10/02/1955, dx E11.9",
        "Date of birth: 2025-09-30",
        "Claim received 10/02/2025, paid 10/20/2025",
        "Appeal due by 11/01/2025",
        "DOS 13/45/2025 is what the form says",
        "DOS 09/30/2025 and DOS 10/02/2025 on one claim",  # which code goes with which?
        "We saw her on Tuesday",
    ],
)
def test_no_date_of_service_is_guessed(text: str) -> None:
    assert date_of_service([text]) is None


def test_the_date_may_be_in_any_of_the_texts_of_a_case() -> None:
    assert date_of_service(["Question about 99213", "DOS 2025-10-02"]) == date(2025, 10, 2)


days = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))
spellings = st.sampled_from(
    [
        lambda d: d.isoformat(),
        lambda d: f"{d.month}/{d.day}/{d.year}",
        lambda d: f"{d.month:02d}/{d.day:02d}/{d.year % 100:02d}",
        lambda d: f"{d:%B} {d.day}, {d.year}",
        lambda d: f"{d:%b} {d.day} {d.year}",
    ]
)
labels = st.sampled_from(["DOS", "DOS:", "Date of service:", "service date", "seen on", "dos -"])
prose = st.text(alphabet="abcdefghij ,.\n", max_size=40)


@given(day=days, spell=spellings, label=labels, before=prose, after=prose)
def test_a_date_after_a_service_label_is_read_whatever_its_spelling(
    day: date, spell: object, label: str, before: str, after: str
) -> None:
    text = f"{before} {label} {spell(day)} {after}"  # type: ignore[operator]
    assert date_of_service([text]) == day


@given(
    day=days,
    spell=spellings,
    label=st.sampled_from(["DOB", "Date of birth:", "born", "claim date", "paid on", "due"]),
)
def test_a_date_after_any_other_label_is_never_a_date_of_service(
    day: date, spell: object, label: str
) -> None:
    assert date_of_service([f"{label} {spell(day)}"]) is None  # type: ignore[operator]
