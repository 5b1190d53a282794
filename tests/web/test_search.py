"""Finding a case from the dashboard's search box and from ``consultant tickets search``:
by number, code, requester, subject or message text, best match first, only what the
person's queue shows them, every search audited, and no query a server error."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import col, select

from consultant import search
from consultant.db import session_scope
from consultant.models import AuditEntry, Message, utcnow
from consultant.routing.claims import reassign
from tests.conftest import Desk
from tests.web.conftest import make_coder, new_case, sign_in

ROW = re.compile(r'<a href="/tickets/(\d+)">CC-\d+</a>')


def found(page: str) -> list[int]:
    """The case numbers a results page lists, in its order."""
    return [int(number) for number in ROW.findall(page)]


def give(number: int, to: str) -> None:
    with session_scope() as session:
        reassign(session, number, to=to, by="lead@desk.example", now=utcnow())


def searches() -> list[str]:
    with session_scope() as session:
        query = select(AuditEntry.detail).where(AuditEntry.action == "case.searched")
        return list(session.exec(query.order_by(col(AuditEntry.id))))


def test_a_case_is_found_by_number_requester_subject_text_and_code(client: TestClient) -> None:
    make_coder("lead@desk.example", role="lead")
    infusion = new_case(
        "Dana Whitfield <dana@clinic.example>",
        subject="Home infusion 3.5 hours: 99601 and 99602?",
        body="The nurse stayed for the hydration; how many units of the add-on code?",
    )
    knee = new_case(
        "billing@ortho.example",
        subject="Knee injection with a visit",
        body="Arthrocentesis of the knee and an office visit, modifier 25 on 99213.",
    )
    sign_in(client, "lead@desk.example")

    assert found(client.get(f"/search?q=%23{knee}").text)[0] == knee
    assert found(client.get(f"/search?q=CC-{infusion}").text)[0] == infusion
    assert found(client.get("/search?q=dana@clinic.example").text) == [infusion]
    assert found(client.get("/search?q=Whitfield").text) == [infusion]
    assert found(client.get("/search?q=infusion").text) == [infusion]
    by_text = client.get("/search?q=arthrocentesis knee")
    assert found(by_text.text) == [knee]
    assert "<mark>Arthrocentesis</mark>" in by_text.text
    assert found(client.get("/search?q=hydrated").text) == [infusion]  # another form
    assert found(client.get("/search?q=99601").text) == [infusion]  # a code found in it
    assert found(client.get("/search?q=99213").text) == [knee]
    assert found(client.get("/search?q=nothing+like+this").text) == []
    assert "No case matches" in client.get("/search?q=zzyzx").text


def test_a_reply_is_searchable_once_it_is_in_the_thread(client: TestClient) -> None:
    make_coder("lead@desk.example", role="lead")
    number = new_case("dana@clinic.example", subject="A question", body="First words.")
    sign_in(client, "lead@desk.example")
    assert found(client.get("/search?q=tocilizumab").text) == []

    new_case(
        "dana@clinic.example",
        subject=f"Re: A question [#CC-{number}]",
        body="Also: the tocilizumab infusion, J3262 per 1 mg?",
    )

    assert found(client.get("/search?q=tocilizumab").text) == [number]
    with session_scope() as session:
        thread = session.exec(select(Message).where(Message.ticket_id == number)).all()
    assert len(thread) == 2


def test_the_best_match_comes_first_and_pages_do_not_repeat_a_case(client: TestClient) -> None:
    make_coder("lead@desk.example", role="lead")
    numbers = [
        new_case(f"biller{n}@clinic.example", subject=f"Question {n}", body="About modifier 59.")
        for n in range(25)
    ]
    best = new_case(
        "x@clinic.example", subject="Modifier 59 or XU?", body="Modifier 59, modifier XU."
    )
    sign_in(client, "lead@desk.example")

    first = client.get("/search?q=modifier")
    link = first.text.split('rel="next"', 1)[0].rsplit('href="', 1)[1].split('"', 1)[0]
    second = client.get(link.replace("&amp;", "&"))

    listed = found(first.text) + found(second.text)
    assert listed[0] == best
    assert sorted(listed) == sorted([*numbers, best])
    assert 'rel="next"' not in second.text


def test_a_coder_finds_only_what_their_queue_shows_and_every_search_is_audited(
    client: TestClient,
) -> None:
    make_coder("lead@desk.example", role="lead")
    make_coder("alice@desk.example")
    make_coder("bob@desk.example")
    mine = new_case("a@clinic.example", subject="Wound care 97597", body="Debridement.")
    theirs = new_case("b@clinic.example", subject="Wound care 97598", body="Debridement.")
    give(mine, "alice@desk.example")
    give(theirs, "bob@desk.example")
    sign_in(client, "alice@desk.example")

    assert found(client.get("/search?q=debridement").text) == [mine]
    assert found(client.get(f"/search?q=CC-{theirs}").text) == []
    assert "your cases and the unassigned ones" in client.get("/search?q=wound").text.lower()
    assert searches() == ["debridement", f"CC-{theirs}", "wound"]


def test_a_query_too_long_or_without_words_gets_a_message_not_an_error(
    client: TestClient,
) -> None:
    make_coder("lead@desk.example", role="lead")
    sign_in(client, "lead@desk.example")

    long = client.get("/search", params={"q": "a" * 500})
    empty = client.get("/search", params={"q": '"*" -- () ^'})
    box = client.get("/search")

    assert long.status_code == 400 and "keep it under 200" in long.text
    assert empty.status_code == 400 and "type a case number" in empty.text
    assert box.status_code == 200 and 'name="q"' in box.text
    assert 'action="/search"' in client.get("/queue").text  # the box on every page


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    query=st.text(
        alphabet=st.sampled_from(list("abc 9213J.-\"*:()^&|!'\\%_~#@{}NEAROR\u00e9\u4e2d\t\x00")),
        max_size=250,
    )
)
def test_any_query_gives_results_or_a_clear_message(client: TestClient, query: str) -> None:
    """Full-text syntax (quotes, stars, operators, column filters) is never passed on."""
    if not client.cookies:
        make_coder("lead@desk.example", role="lead")
        sign_in(client, "lead@desk.example")
        new_case("dana@clinic.example", subject="Code 99213-25 with J11.00", body='a "b" c*')

    response = client.get("/search", params={"q": query})

    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert '<p class="error" role="alert">' in response.text


def test_the_command_line_searches_with_the_same_function(desk: Desk) -> None:
    number = new_case("dana@clinic.example", subject="Prolonged infusion", body="99601, 99602.")

    listed = desk.consultant("tickets", "search", "99602", "--json")
    shown = desk.consultant("tickets", "search", "prolonged")
    refused = desk.consultant("tickets", "search", "***")

    assert listed.returncode == 0, listed.stderr
    [result] = json.loads(listed.stdout)["results"]
    assert (result["number"], result["matched"], result["highlighted"]) == (
        number,
        "code",
        ["99602"],
    )
    assert f"CC-{number}" in shown.stdout and "[Prolonged]" in shown.stdout
    assert refused.returncode == 1 and "type a case number" in refused.stderr


def test_a_word_only_in_old_cases_is_found_past_the_newest_rows(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "RECENT_ROWS", 3)  # a desk whose newest rows lack the word
    monkeypatch.setattr(search, "CANDIDATES", 4)
    make_coder("lead@desk.example", role="lead")
    old = [new_case(f"a{n}@clinic.example", body="Kyphoplasty at two levels?") for n in range(2)]
    common = [new_case(f"b{n}@clinic.example", body="Kyphoplasty once more.") for n in range(5)]
    for n in range(6):
        new_case(f"c{n}@clinic.example", body="Is 99213 right?")
    sign_in(client, "lead@desk.example")

    assert set(found(client.get("/search?q=levels").text)) == set(old)
    everything = found(client.get("/search?q=kyphoplasty").text)
    assert set(everything) >= set(common[-4:])  # the newest matches, as many as are kept
