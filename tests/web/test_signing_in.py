"""Signing in: passwords, throttling, CSRF, idle and absolute timeouts, fixation, roles —
each checked on the server, each leaving its audit row."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import col, select

from consultant.db import session_scope
from consultant.models import AuditEntry, Ticket, WebSession
from tests.conftest import Desk
from tests.web.conftest import PASSWORD, form_token, make_coder, new_case, sign_in


def audit_actions(actor: str) -> list[str]:
    with session_scope() as session:
        query = select(AuditEntry.action).where(AuditEntry.actor == actor)
        return list(session.exec(query.order_by(col(AuditEntry.id))))


def test_a_page_without_a_session_sends_the_browser_to_sign_in(client: TestClient) -> None:
    response = client.get("/queue", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=/queue"


def test_signing_in_opens_the_queue_and_is_audited(client: TestClient) -> None:
    make_coder("alice@desk.example")
    sign_in(client, "alice@desk.example")

    queue = client.get("/queue")
    assert queue.status_code == 200 and "Alice · coder" in queue.text
    assert "no-store" in queue.headers["cache-control"]
    assert "default-src 'self'" in queue.headers["content-security-policy"]
    assert audit_actions("alice@desk.example") == ["sign_in", "queue.viewed", "queue.viewed"]


def test_a_wrong_password_is_refused_without_saying_whether_the_address_exists(
    client: TestClient,
) -> None:
    make_coder("alice@desk.example")
    for email in ("alice@desk.example", "nobody@desk.example"):
        page = client.get("/sign-in")
        refused = client.post(
            "/sign-in",
            data={"email": email, "password": "not the password", "token": form_token(page.text)},
        )
        assert refused.status_code == 401
        assert "Wrong email address or password." in refused.text
    assert audit_actions("alice@desk.example") == ["sign_in.failed"]
    assert audit_actions("nobody@desk.example") == ["sign_in.failed"]


def test_five_failures_make_the_account_wait_even_for_the_right_password(
    client: TestClient,
) -> None:
    make_coder("alice@desk.example")
    for _ in range(5):
        page = client.get("/sign-in")
        client.post(
            "/sign-in",
            data={
                "email": "alice@desk.example",
                "password": "guess",
                "token": form_token(page.text),
            },
        )
    page = client.get("/sign-in")
    waited = client.post(
        "/sign-in",
        data={"email": "alice@desk.example", "password": PASSWORD, "token": form_token(page.text)},
    )
    assert waited.status_code == 401 and "Wait 15 minutes" in waited.text
    assert audit_actions("alice@desk.example")[-1] == "sign_in.throttled"


def test_a_sign_in_form_from_elsewhere_is_refused(client: TestClient) -> None:
    make_coder("alice@desk.example")
    forged = client.post(
        "/sign-in", data={"email": "alice@desk.example", "password": PASSWORD, "token": "x"}
    )
    assert forged.status_code == 403
    assert audit_actions("alice@desk.example") == []


def test_an_action_without_the_sessions_csrf_token_does_nothing(client: TestClient) -> None:
    make_coder("alice@desk.example")
    number = new_case()
    sign_in(client, "alice@desk.example")
    with session_scope() as session:
        ticket = session.get(Ticket, number)
        assert ticket is not None and ticket.claimed_by_id is None

    forged = client.post(f"/tickets/{number}/claim", data={"csrf": "stolen?"})

    assert forged.status_code == 403
    with session_scope() as session:
        ticket = session.get(Ticket, number)
        assert ticket is not None and ticket.claimed_by_id is None


def test_a_token_planted_before_sign_in_is_worth_nothing_after_it(client: TestClient) -> None:
    make_coder("alice@desk.example")
    planted = {"cc_session": "planted-by-an-attacker"}
    page = client.get("/sign-in")
    signed = client.post(
        "/sign-in",
        data={"email": "alice@desk.example", "password": PASSWORD, "token": form_token(page.text)},
        headers={"Cookie": f"cc_sign_in={client.cookies.get('cc_sign_in')}; cc_session=planted"},
        follow_redirects=False,
    )
    assert signed.status_code == 303
    assert signed.cookies.get("cc_session") not in (None, "planted")  # a fresh token
    stranger = TestClient(client.app, cookies=planted)
    assert stranger.get("/queue", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    ("column", "back", "reason"),
    [
        ("last_seen_at", timedelta(minutes=16), "idle for 15 minutes"),
        ("created_at", timedelta(hours=8, minutes=1), "signed in for 8 hours"),
    ],
)
def test_a_session_ends_when_idle_or_too_old(
    client: TestClient, column: str, back: timedelta, reason: str
) -> None:
    make_coder("alice@desk.example")
    sign_in(client, "alice@desk.example")
    with session_scope() as session:
        row = session.exec(select(WebSession)).one()
        setattr(row, column, getattr(row, column) - back)
        if column == "created_at":
            row.last_seen_at = row.last_seen_at  # used a minute ago: not idle
        session.add(row)

    assert client.get("/queue", follow_redirects=False).status_code == 303
    with session_scope() as session:
        ended = session.exec(select(WebSession)).one()
    assert ended.ended_reason == reason
    assert audit_actions("alice@desk.example")[-1] == "sign_out"


def test_signing_out_ends_the_session_on_the_server(client: TestClient) -> None:
    make_coder("alice@desk.example")
    csrf = sign_in(client, "alice@desk.example")
    token = client.cookies.get("cc_session")

    client.post("/sign-out", data={"csrf": csrf})

    replayed = TestClient(client.app)
    replayed.cookies.set("cc_session", token or "")
    assert replayed.get("/queue", follow_redirects=False).status_code == 303


def test_a_coder_is_refused_the_leads_view_and_assigning(client: TestClient) -> None:
    make_coder("alice@desk.example")
    make_coder("bob@desk.example")
    number = new_case()
    csrf = sign_in(client, "alice@desk.example")

    assert client.get("/queue?view=all").status_code == 403
    refused = client.post(
        f"/tickets/{number}/assign", data={"csrf": csrf, "to": "bob@desk.example"}
    )
    assert refused.status_code == 403
    assert (
        'action="/tickets/' + str(number) + '/assign"' not in client.get(f"/tickets/{number}").text
    )


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_the_audit_log_cannot_be_changed_or_emptied_on_postgresql(
    client: TestClient, desk: Desk
) -> None:
    make_coder("alice@desk.example")
    sign_in(client, "alice@desk.example")
    for statement in (
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ):
        with pytest.raises(DBAPIError, match="append-only"), session_scope() as session:
            session.execute(text(statement))
    assert audit_actions("alice@desk.example") == ["sign_in", "queue.viewed"]


def test_a_page_refreshing_itself_does_not_keep_an_unattended_session_alive(
    client: TestClient,
) -> None:
    make_coder("alice@desk.example")
    sign_in(client, "alice@desk.example")
    with session_scope() as session:
        row = session.exec(select(WebSession)).one()
        row.last_seen_at -= timedelta(minutes=10)
        session.add(row)
        before = row.last_seen_at

    refreshed = client.get("/queue", headers={"X-Live-Refresh": "1"})

    assert refreshed.status_code == 200
    with session_scope() as session:
        assert session.exec(select(WebSession)).one().last_seen_at == before
