"""Presence on the case page: who else has the case open and who is typing an answer,
from the page as shown and from its heartbeat; stale after 25 seconds; a heartbeat
needs the form token, is no audited view and keeps no idle session signed in."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete
from sqlmodel import func, select

from consultant import presence
from consultant.db import session_scope
from consultant.models import CasePresence, Coder, WebSession, utcnow
from tests.conftest import Desk
from tests.web.conftest import make_coder, new_case, sign_in
from tests.web.test_signing_in import audit_actions


def heartbeat(client: TestClient, number: int, csrf: str, *, typing: bool = False) -> Response:
    """What static/presence.js posts every few seconds."""
    return client.post(
        f"/tickets/{number}/presence",
        data={"csrf": csrf, "typing": "1" if typing else "0"},
        headers={"X-Live-Refresh": "1"},
        follow_redirects=False,
    )


def shown_on(page: str) -> str:
    """The words of the page's presence box, without markup."""
    box = page.split('aria-label="Who else is here"', 1)[1].split("</section>", 1)[0]
    return _words(box.split(">", 1)[1])


def _words(html: str) -> str:
    text = "".join(part.split(">", 1)[-1] for part in html.split("<"))
    return " ".join(text.split())


def two_coders_on_a_case(client: TestClient) -> tuple[int, TestClient, str, str]:
    """Alice and Bob signed in (Bob in a browser of his own), a case, and their tokens."""
    make_coder("alice@desk.example")
    make_coder("bob@desk.example")
    number = new_case(subject="Home infusion 3.5 hours: 99601 and 99602?")
    alice = sign_in(client, "alice@desk.example")
    other = TestClient(client.app)
    bob = sign_in(other, "bob@desk.example")
    return number, other, alice, bob


def move_back(email: str, *, seconds: float) -> None:
    """The coder's presence, as if their last heartbeat were ``seconds`` earlier."""
    with session_scope() as session:
        row = session.exec(select(CasePresence).join(Coder).where(Coder.email == email)).one()
        row.seen_at -= timedelta(seconds=seconds)
        if row.typing_at is not None:
            row.typing_at -= timedelta(seconds=seconds)
        session.add(row)


def test_the_case_page_shows_who_else_has_it_open_and_who_is_typing(
    client: TestClient,
) -> None:
    number, bob_browser, alice, bob = two_coders_on_a_case(client)
    first = client.get(f"/tickets/{number}")
    assert shown_on(first.text) == "Nobody else has this case open."

    seen_by_bob = bob_browser.get(f"/tickets/{number}")
    assert shown_on(seen_by_bob.text) == "Also on this case: Alice (viewing)"
    assert _words(heartbeat(client, number, alice).text) == "Also on this case: Bob (viewing)"

    heartbeat(client, number, alice, typing=True)
    assert _words(heartbeat(bob_browser, number, bob).text) == (
        "Also on this case: Alice (typing an answer)"
    )


def test_someone_whose_page_went_quiet_for_25_seconds_is_no_longer_shown(
    client: TestClient,
) -> None:
    number, bob_browser, alice, bob = two_coders_on_a_case(client)
    heartbeat(client, number, alice, typing=True)

    move_back("alice@desk.example", seconds=11)
    assert _words(heartbeat(bob_browser, number, bob).text) == "Also on this case: Alice (viewing)"
    move_back("alice@desk.example", seconds=15)  # 26 seconds since her last heartbeat
    assert _words(heartbeat(bob_browser, number, bob).text) == "Nobody else has this case open."
    heartbeat(client, number, alice)  # her page speaks again
    assert _words(heartbeat(bob_browser, number, bob).text) == "Also on this case: Alice (viewing)"


def test_a_heartbeat_needs_the_form_token_and_an_existing_case(client: TestClient) -> None:
    number, _, alice, _ = two_coders_on_a_case(client)

    refused = heartbeat(client, number, "not the token")
    missing = heartbeat(client, number + 1, alice)

    assert refused.status_code == 403 and missing.status_code == 404
    with session_scope() as session:
        assert session.exec(select(func.count()).select_from(CasePresence)).one() == 0


def test_heartbeats_are_not_views_and_keep_no_idle_session_signed_in(
    client: TestClient,
) -> None:
    make_coder("alice@desk.example")
    number = new_case()
    csrf = sign_in(client, "alice@desk.example")
    client.get(f"/tickets/{number}")
    with session_scope() as session:
        row = session.exec(select(WebSession)).one()
        row.last_seen_at -= timedelta(minutes=10)
        session.add(row)
        before = row.last_seen_at

    for _ in range(5):
        assert heartbeat(client, number, csrf, typing=True).status_code == 200
    with session_scope() as session:
        assert session.exec(select(WebSession)).one().last_seen_at == before
    assert audit_actions("alice@desk.example") == ["sign_in", "queue.viewed", "case.viewed"]

    with session_scope() as session:
        row = session.exec(select(WebSession)).one()
        row.last_seen_at -= timedelta(minutes=6)  # 16 minutes without the coder
        session.add(row)
    ended = heartbeat(client, number, csrf, typing=True)
    assert ended.status_code == 303 and ended.headers["location"] == "/sign-in"
    assert audit_actions("alice@desk.example")[-1] == "sign_out"


def test_pages_not_heard_of_for_ten_minutes_are_deleted_by_the_next_heartbeat(
    desk: Desk,
) -> None:
    make_coder("alice@desk.example")
    make_coder("bob@desk.example")
    first, second = new_case(), new_case(sender="erin@other.example")
    with session_scope() as session:
        alice, bob = session.exec(select(Coder.id).order_by(Coder.id)).all()
    start = utcnow()

    with session_scope() as session:
        presence.beat(session, ticket_id=first, coder_id=alice, typing=False, now=start)
        presence.beat(session, ticket_id=first, coder_id=bob, typing=False, now=start)
    with session_scope() as session:
        later = start + presence.FORGET_AFTER + timedelta(seconds=1)
        presence.beat(session, ticket_id=second, coder_id=bob, typing=False, now=later)
    with session_scope() as session:
        left = session.exec(select(CasePresence.ticket_id, CasePresence.coder_id)).all()
    assert left == [(second, bob)]


@pytest.fixture
def case_and_coders(desk: Desk) -> tuple[int, int, int]:
    make_coder("alice@desk.example")
    make_coder("bob@desk.example")
    number = new_case()
    with session_scope() as session:
        alice, bob = session.exec(select(Coder.id).order_by(Coder.id)).all()
    return number, alice, bob  # type: ignore[return-value]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    quiet=st.integers(min_value=0, max_value=120_000),
    typed=st.one_of(st.none(), st.integers(min_value=0, max_value=120_000)),
)
def test_someone_is_shown_while_their_page_spoke_in_the_last_25_seconds(
    case_and_coders: tuple[int, int, int], quiet: int, typed: int | None
) -> None:
    """For any time (in ms) since the last heartbeat, and since the last that said typing."""
    number, alice, bob = case_and_coders
    now = utcnow()
    with session_scope() as session:
        session.execute(delete(presence.TABLE))
    with session_scope() as session:
        last = now - timedelta(milliseconds=quiet)
        if typed is not None:  # typing then, only viewing since
            said = min(last, now - timedelta(milliseconds=typed))
            presence.beat(session, ticket_id=number, coder_id=alice, typing=True, now=said)
        presence.beat(session, ticket_id=number, coder_id=alice, typing=False, now=last)
    with session_scope() as session:
        shown = presence.others(session, ticket_id=number, coder_id=bob, now=now)
        mine = presence.others(session, ticket_id=number, coder_id=alice, now=now)

    assert mine == []
    if quiet >= presence.STALE_SECONDS * 1000:
        assert shown == []
        return
    typing = typed is not None and max(quiet, typed) < presence.TYPING_SECONDS * 1000
    assert [(p.name, p.typing) for p in shown] == [("Alice", typing)]
