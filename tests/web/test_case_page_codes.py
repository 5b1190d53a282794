"""The case page's codes panel shows an ambiguous code once, with its other reading, so a
coder sees at a glance that the text left the choice to them."""

from __future__ import annotations

from fastapi.testclient import TestClient

from consultant.codes.formats import ICD10CM
from consultant.codes.records import CodeRecord
from consultant.codes.store import load_codes
from consultant.db import session_scope
from tests.web.conftest import make_coder, new_case, sign_in

INFLUENZA = CodeRecord(ICD10CM, "J11.00", "Influenza with unspecified type of pneumonia")


def test_an_undecided_code_shows_both_readings(client: TestClient) -> None:
    with session_scope() as session:
        load_codes(session, ICD10CM, "2026-04", [INFLUENZA])
    make_coder("alice@desk.example")
    number = new_case(subject="Old superbill lists J1100 with no heading")
    sign_in(client, "alice@desk.example")

    page = client.get(f"/tickets/{number}").text
    panel = page.split('aria-label="Codes found"', 1)[1].split("</section>", 1)[0]
    rows = [row for row in panel.split("<tr>") if "J1100" in row]
    assert len(rows) == 1
    assert '<span class="ambiguous">ambiguous: or icd10cm:J11.00</span>' in rows[0]


def test_a_decided_code_shows_one_reading(client: TestClient) -> None:
    with session_scope() as session:
        load_codes(session, ICD10CM, "2026-04", [INFLUENZA])
    make_coder("alice@desk.example")
    number = new_case(subject="Primary dx J1100 on the claim")
    sign_in(client, "alice@desk.example")

    page = client.get(f"/tickets/{number}").text
    panel = page.split('aria-label="Codes found"', 1)[1].split("</section>", 1)[0]
    assert "J11.00" in panel and "ambiguous" not in panel
