"""The JSON API as a program uses it: a token from ``consultant tokens create``, scopes,
expiry and revocation, the queue's filters and pages, answering with the collision
guard, a rate limit with Retry-After, JSON errors with stable codes, every call audited."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate
from sqlmodel import select

from consultant import quota
from consultant.api_tokens import create_token
from consultant.codes.formats import ICD10CM
from consultant.codes.icd10cm_order import parse_icd10cm_order
from consultant.codes.releases import load_release
from consultant.config import get_settings
from consultant.db import session_scope
from consultant.models import AuditEntry, OutboxEmail, utcnow
from consultant.worker import drain
from tests.cases import case_email, store
from tests.codes.test_releases import FY2025, FY2025_ROWS, FY2026, FY2026_ROWS, order_file
from tests.conftest import Desk
from tests.servers.smtp_sink import SmtpSink
from tests.web.conftest import make_coder, new_case

TOKEN = re.compile(r"cc_[A-Za-z0-9_-]+")


def token_for(email: str, *scopes: str, days: int = 30) -> str:
    with session_scope() as session:
        token, _ = create_token(
            session,
            email=email,
            name="test",
            scopes=list(scopes),
            days=days,
            by="test",
            now=utcnow(),
        )
    return token


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_made_at_the_command_line_answers_a_case_and_the_answer_goes_out(
    desk: Desk, client: TestClient, smtp_sink: SmtpSink
) -> None:
    make_coder("alice@desk.example")
    number = new_case(subject="Home infusion: 99601 and 99602?")
    created = desk.consultant(
        "tokens", "create", "billing system", "--for", "alice@desk.example",
        "--scope", "tickets:read", "--scope", "tickets:write",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    [token] = TOKEN.findall(created.stdout)

    case = client.get(f"/api/v1/tickets/{number}", headers=auth(token))
    assert case.status_code == 200 and case.json()["codes"][0]["code"] == "99601"
    seen = max(m["id"] for m in case.json()["messages"])
    sent = client.post(
        f"/api/v1/tickets/{number}/answer",
        headers=auth(token),
        json={"text": "Bill 99602 for each hour past the first two.", "seen_message_id": seen},
    )
    assert sent.status_code == 201, sent.text
    drain()
    assert any(b"each hour past the first two" in m.raw for m in smtp_sink.wait_for(2, timeout=10))

    listed = desk.consultant("tokens", "list", "--json").stdout
    assert '"last_used_at": null' not in listed and token not in listed
    with session_scope() as session:
        actions = session.exec(
            select(AuditEntry.action).where(AuditEntry.actor == "alice@desk.example")
        ).all()
    assert {"case.viewed", "case.answered"} <= set(actions)


def test_scopes_expiry_revocation_and_garbage_tokens_are_refused_in_json(
    desk: Desk, client: TestClient
) -> None:
    make_coder("alice@desk.example")
    number = new_case()
    reader = token_for("alice@desk.example", "tickets:read")
    refused = client.post(
        f"/api/v1/tickets/{number}/note", headers=auth(reader), json={"text": "x"}
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"

    with session_scope() as session:
        old, _ = create_token(
            session, email="alice@desk.example", name="old", scopes=["tickets:read"], days=1,
            by="test", now=utcnow() - timedelta(days=2),
        )  # fmt: skip
    for bad in (old, "cc_made-up", "", "Basic abc"):
        response = client.get(f"/api/v1/tickets/{number}", headers=auth(bad))
        assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"

    assert client.get(f"/api/v1/tickets/{number}", headers=auth(reader)).status_code == 200
    listed = desk.consultant("tokens", "list", "--json").stdout
    token_id = re.findall(r'"id": (\d+)', listed)[0]
    desk.consultant("tokens", "revoke", token_id)
    assert client.get(f"/api/v1/tickets/{number}", headers=auth(reader)).status_code == 401

    missing = client.get(
        "/api/v1/tickets/999999", headers=auth(token_for("alice@desk.example", "admin"))
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    past_any_row = client.get(
        f"/api/v1/tickets/{'9' * 30}", headers=auth(token_for("alice@desk.example", "admin"))
    )
    assert past_any_row.status_code == 422 and past_any_row.json()["error"]["code"] == "invalid"


def test_a_coder_token_lists_its_own_cases_and_a_lead_pages_through_all(
    client: TestClient,
) -> None:
    make_coder("alice@desk.example")
    make_coder("lead@desk.example", role="lead")
    for n in range(7):
        store(case_email(f"b{n}@clinic{n}.example", subject=f"question {n} on 99213"))
    drain()
    coder = token_for("alice@desk.example", "tickets:read")
    lead = token_for("lead@desk.example", "tickets:read")

    everyone = client.get("/api/v1/tickets", headers=auth(coder))
    assert everyone.status_code == 403
    own = client.get("/api/v1/tickets", headers=auth(coder), params={"owner": "alice@desk.example"})
    assert own.status_code == 200
    assert {t["owner"] for t in own.json()["tickets"]} <= {"alice@desk.example"}

    numbers, after = [], None
    while True:
        params = {"limit": 3} | ({"after": after} if after else {})
        page = client.get("/api/v1/tickets", headers=auth(lead), params=params).json()
        numbers += [t["number"] for t in page["tickets"]]
        if not (after := page["next"]):
            break
    assert sorted(numbers) == list(range(1, 8))
    bad = client.get("/api/v1/tickets", headers=auth(lead), params={"limit": 0})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid"


def test_a_second_answer_is_stopped_with_the_new_messages_ids(client: TestClient) -> None:
    make_coder("alice@desk.example")
    make_coder("bob@desk.example")
    number = new_case()
    alice = token_for("alice@desk.example", "tickets:read", "tickets:write")
    bob = token_for("bob@desk.example", "tickets:read", "tickets:write")
    seen = max(
        m["id"]
        for m in client.get(f"/api/v1/tickets/{number}", headers=auth(bob)).json()["messages"]
    )

    first = client.post(
        f"/api/v1/tickets/{number}/answer", headers=auth(alice), json={"text": "Yes, with 25."}
    )
    second = client.post(
        f"/api/v1/tickets/{number}/answer",
        headers=auth(bob),
        json={"text": "No.", "seen_message_id": seen},
    )

    assert first.status_code == 201
    error = second.json()["error"]
    assert second.status_code == 409 and error["code"] == "collision"
    assert error["newer_message_ids"] and "alice@desk.example" in error["message"]
    with session_scope() as session:
        assert len(session.exec(select(OutboxEmail).where(OutboxEmail.kind == "answer")).all()) == 1


def test_a_token_over_its_calls_per_minute_waits_with_retry_after(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSULTANT_API_CALLS_PER_MINUTE", "3")
    get_settings.cache_clear()
    make_coder("alice@desk.example")
    token = token_for("alice@desk.example", "tickets:read")

    answers = [
        client.post("/api/v1/codes/extract", headers=auth(token), json={"text": "99213-25"})
        for _ in range(4)
    ]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].json()["codes"][0]["code"] == "99213"
    assert 0 < int(answers[3].headers["Retry-After"]) <= 60
    assert answers[3].json()["error"]["code"] == "rate_limited"


def test_the_openapi_document_is_valid_and_lists_the_endpoints(client: TestClient) -> None:
    document = client.get("/api/v1/openapi.json").json()

    validate(document)  # OpenAPI 3.1, as a client generator reads it
    assert {"/tickets", "/tickets/{number}", "/tickets/{number}/answer", "/codes/extract"} <= set(
        document["paths"]
    )
    assert {"/accounts", "/codes/{code}", "/accounts/{address}/quota"} <= set(document["paths"])
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["summary"], (path, method)
            assert {"200", "201"} & set(operation["responses"]), (path, method)


def test_a_lead_pages_through_the_accounts_with_this_months_cases(client: TestClient) -> None:
    make_coder("alice@desk.example")
    make_coder("lead@desk.example", role="lead")
    with session_scope() as session:
        quota.ensure_builtin_plans(session)
        for n in range(5):
            quota.add_account(session, address=f"@clinic{n}.example", plan="pro", timezone="UTC")
    store(case_email("dana@clinic3.example"))
    drain()
    lead = token_for("lead@desk.example", "tickets:read")

    refused = client.get(
        "/api/v1/accounts", headers=auth(token_for("alice@desk.example", "tickets:read"))
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    listed, after = [], None
    while True:
        params = {"limit": 2} | ({"after": after} if after else {})
        page = client.get("/api/v1/accounts", headers=auth(lead), params=params).json()
        listed += page["accounts"]
        if not (after := page["next"]):
            break
    assert [a["account"] for a in listed] == [f"@clinic{n}.example" for n in range(5)]
    assert [(a["plan"], a["used"]) for a in listed][2:4] == [("pro", 0), ("pro", 1)]
    assert listed[3]["remaining"] == listed[3]["limit"] - 1
    garbage = client.get("/api/v1/accounts", headers=auth(lead), params={"after": "x" * 5000})
    assert garbage.status_code == 422


def test_a_code_is_looked_up_with_its_validity_on_the_date_of_service(
    client: TestClient,
) -> None:
    make_coder("alice@desk.example")
    with session_scope() as session:
        for rows, name, effective in [(FY2025_ROWS, "2025", FY2025), (FY2026_ROWS, "2026", FY2026)]:
            records = parse_icd10cm_order(order_file(rows))
            load_release(session, ICD10CM, records, name=name, effective=effective, source="test")
    token = token_for("alice@desk.example", "tickets:read")

    def looked_up(code: str, **params: str) -> dict[str, Any]:
        found = client.get(f"/api/v1/codes/{code}", headers=auth(token), params=params)
        assert found.status_code == 200, found.text
        [reading] = found.json()["readings"]
        return reading

    back_pain = looked_up("M54.5", as_of="2025-03-01")
    assert (back_pain["system"], back_pain["status"]) == ("icd10cm", "valid")
    assert back_pain["description"] == "Low back pain"
    assert looked_up("M545", as_of="2025-11-01")["status"] == "deleted"
    assert looked_up("E11")["under"][0]["code"] == "E11.65"
    missing = client.get("/api/v1/codes/Q99.99", headers=auth(token))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    too_long = client.get(f"/api/v1/codes/{'E' * 50}", headers=auth(token))
    assert too_long.status_code == 422
    bad_day = client.get("/api/v1/codes/E11.9", headers=auth(token), params={"as_of": "soon"})
    assert bad_day.status_code == 422 and bad_day.json()["error"]["code"] == "invalid"
