"""Where each code was read, highlighted in the customer's text on the case page."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from consultant.tickets import marked_text
from tests.web.conftest import make_coder, new_case, sign_in


@st.composite
def text_and_spans(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]]]:
    text = draw(st.text(max_size=80))
    bound = len(text) + 3  # some spans run past the end, as after the text was re-read
    spans = draw(
        st.lists(
            st.tuples(st.integers(0, bound), st.integers(0, bound)).map(
                lambda pair: {"code": "X", "span_start": pair[0], "span_end": pair[1]}
            ),
            max_size=6,
        )
    )
    return text, spans


@given(text_and_spans())
def test_highlighting_never_loses_or_repeats_a_character(case: tuple[str, list[dict]]) -> None:
    text, codes = case
    parts = marked_text(text, codes)

    assert "".join(part for part, _ in parts) == text
    for part, code in parts:
        if code is not None:
            assert part == text[code["span_start"] : code["span_end"]] and part


def test_the_case_page_highlights_each_code_where_the_customer_wrote_it(
    client: TestClient,
) -> None:
    make_coder("alice@desk.example")
    number = new_case(body="The nurse stayed 3.5 hours: 99601 once, then 99602?")
    sign_in(client, "alice@desk.example")

    page = client.get(f"/tickets/{number}").text

    assert 'title="99601: ' in page and "stayed 3.5 hours: <mark" in page
    assert ">99601</mark> once, then <mark" in page and ">99602</mark>?" in page
