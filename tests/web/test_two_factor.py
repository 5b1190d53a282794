"""Two-factor sign-in (TOTP, RFC 6238): required of leads and admins by default and of
everyone where the admin says so; enrolment, codes, wrong codes and a reset."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from consultant.config import get_settings
from consultant.db import session_scope
from consultant.models import AuditEntry, Coder, utcnow
from consultant.web.sessions import enrolment_qr, enrolment_uri
from tests.conftest import Desk
from tests.web.conftest import PASSWORD, form_token, make_coder, unused_code
from tests.web.test_signing_in import audit_actions


def password_step(client: TestClient, email: str) -> None:
    page = client.get("/sign-in")
    client.post(
        "/sign-in",
        data={"email": email, "password": PASSWORD, "token": form_token(page.text)},
        follow_redirects=False,
    )


def stored_secret(email: str) -> str | None:
    with session_scope() as session:
        return session.exec(select(Coder.totp_secret).where(Coder.email == email)).one()


def test_a_lead_enrols_at_first_sign_in_and_gives_a_code_every_time_after(
    client: TestClient,
) -> None:
    make_coder("lead@desk.example", role="lead")
    password_step(client, "lead@desk.example")

    held = client.get("/queue", follow_redirects=False)
    assert held.headers["location"] == "/sign-in/code"
    enrol = client.get("/sign-in/code")
    secret = enrol.text.split('name="secret" value="', 1)[1].split('"', 1)[0]
    assert "otpauth://totp/" in enrol.text and stored_secret("lead@desk.example") is None
    wrong = client.post(
        "/sign-in/code", data={"csrf": form_token(enrol.text), "secret": secret, "code": "000000"}
    )
    assert wrong.status_code == 401 and "not right" in wrong.text
    right = client.post(
        "/sign-in/code",
        data={"csrf": form_token(enrol.text), "secret": secret, "code": pyotp.TOTP(secret).now()},
    )
    assert "Lead · lead" in right.text and stored_secret("lead@desk.example") == secret

    again = TestClient(client.app)
    password_step(again, "lead@desk.example")
    asked = again.get("/sign-in/code")
    assert 'name="secret"' not in asked.text  # the secret is shown once, at enrolment
    done = again.post(
        "/sign-in/code",
        data={"csrf": form_token(asked.text), "code": unused_code("lead@desk.example", secret)},
    )
    assert "Lead · lead" in done.text
    assert audit_actions("lead@desk.example") == [
        "sign_in",
        "sign_in.code_failed",
        "sign_in.two_factor",
        "queue.viewed",
        "sign_in",
        "sign_in.two_factor",
        "queue.viewed",
    ]


def test_a_lead_cannot_skip_the_code_by_going_straight_to_a_page(client: TestClient) -> None:
    make_coder("lead@desk.example", role="lead")
    password_step(client, "lead@desk.example")
    for path in ("/queue", "/queue?view=all", "/tickets/1"):
        assert client.get(path, follow_redirects=False).headers["location"] == "/sign-in/code"


def test_five_wrong_codes_end_the_session(client: TestClient) -> None:
    make_coder("lead@desk.example", role="lead")
    password_step(client, "lead@desk.example")
    page = client.get("/sign-in/code")
    secret = page.text.split('name="secret" value="', 1)[1].split('"', 1)[0]
    for _ in range(5):
        client.post(
            "/sign-in/code", data={"csrf": form_token(page.text), "secret": secret, "code": "1"}
        )
    assert client.get("/sign-in/code", follow_redirects=False).status_code == 303
    assert audit_actions("lead@desk.example")[-1] == "sign_out"


def test_a_coder_goes_straight_in_unless_the_admin_asks_everyone_for_a_code(
    client: TestClient, desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_coder("alice@desk.example")
    password_step(client, "alice@desk.example")
    assert client.get("/queue", follow_redirects=False).status_code == 200

    monkeypatch.setenv("CONSULTANT_WEB_TWO_FACTOR", "everyone")
    get_settings.cache_clear()
    other = TestClient(client.app)
    password_step(other, "alice@desk.example")
    assert other.get("/queue", follow_redirects=False).headers["location"] == "/sign-in/code"


def test_an_admin_resets_a_lost_authenticator_from_the_command_line(
    client: TestClient, desk: Desk
) -> None:
    make_coder("lead@desk.example", role="lead")
    with session_scope() as session:
        coder = session.exec(select(Coder)).one()
        coder.totp_secret = pyotp.random_base32()
        session.add(coder)

    reset = desk.consultant("coders", "reset-2fa", "lead@desk.example")

    assert reset.returncode == 0, reset.stderr
    assert stored_secret("lead@desk.example") is None
    password_step(client, "lead@desk.example")
    assert 'name="secret"' in client.get("/sign-in/code").text  # enrols again


def test_a_code_works_once_even_within_its_30_seconds(client: TestClient) -> None:
    make_coder("lead@desk.example", role="lead")
    password_step(client, "lead@desk.example")
    enrol = client.get("/sign-in/code")
    secret = enrol.text.split('name="secret" value="', 1)[1].split('"', 1)[0]
    code = pyotp.TOTP(secret).now()
    client.post(
        "/sign-in/code", data={"csrf": form_token(enrol.text), "secret": secret, "code": code}
    )

    again = TestClient(client.app)
    password_step(again, "lead@desk.example")
    asked = again.get("/sign-in/code")
    replayed = again.post("/sign-in/code", data={"csrf": form_token(asked.text), "code": code})
    assert replayed.status_code == 401 and "That code has been used already" in replayed.text
    assert again.get("/queue", follow_redirects=False).headers["location"] == "/sign-in/code"

    following = pyotp.TOTP(secret).at(utcnow() + timedelta(seconds=30))  # a clock a step ahead
    done = again.post("/sign-in/code", data={"csrf": form_token(asked.text), "code": following})
    assert "Lead · lead" in done.text
    with session_scope() as session:
        replay = session.exec(
            select(AuditEntry).where(AuditEntry.action == "sign_in.code_failed")
        ).one()
    assert replay.detail == "used before"


def test_enrolment_shows_the_key_as_a_qr_code_drawn_by_the_desk(client: TestClient) -> None:
    make_coder("lead@desk.example", role="lead")
    password_step(client, "lead@desk.example")

    enrol = client.get("/sign-in/code").text
    secret = enrol.split('name="secret" value="', 1)[1].split('"', 1)[0]

    uri = enrolment_uri(secret, "lead@desk.example")
    assert enrolment_qr(uri) in enrol  # this secret's address, inline: no outside service
    assert '<svg width="' in enrol and "<img" not in enrol
