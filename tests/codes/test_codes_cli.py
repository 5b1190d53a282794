"""``consultant codes`` as a user runs it, on SQLite, the embedded default: each command is
a new process, and the loaders' PostgreSQL path is tested in test_releases.py and
test_store.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.codes.conftest import hcpcs_fixture_bytes, hcpcs_line, make_pdf
from tests.codes.test_parsers import CMS_2020_LINES, MUE_FIXTURE, PTP_FIXTURE

pytestmark = pytest.mark.one_database("sqlite")


def run(desk: Any, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The command with input on stdin (the fixture's runner gives none)."""
    return subprocess.run(
        [sys.executable, "-m", "consultant", *args],
        env={**os.environ, **desk.env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_load_icd10cm_is_idempotent_and_searchable(desk: Any) -> None:
    first = as_json(desk.consultant("codes", "load", "icd10cm", "--json", timeout=300))
    second = as_json(desk.consultant("codes", "load", "icd10cm", "--json", timeout=300))
    assert first["added"] == first["total"] > 98_000
    assert first["release"] == "2026-04"
    assert (second["added"], second["changed"]) == (0, 0)
    hits = as_json(desk.consultant("codes", "search", "infusion reaction", "--json"))
    assert hits and all(hit["system"] == "icd10cm" for hit in hits)
    assert any(hit["code"].startswith("T80") for hit in hits)
    [shown] = as_json(desk.consultant("codes", "show", "E11.9", "--json"))
    assert shown["status"] == "valid" and "Excludes1" in shown["notes"]
    [header] = as_json(desk.consultant("codes", "show", "E11.6", "--json"))
    assert header["status"] == "header"
    assert {child["code"] for child in header["under"]} >= {"E11.65", "E11.641"}
    shown = run(desk, "codes", "extract", "-", stdin="Old superbill lists J1100.")
    assert shown.returncode == 0, shown.stderr
    first, second = shown.stdout.splitlines()[:2]
    assert first.startswith("hcpcs:J1100 ") and "ambiguous" in first
    assert second.split()[:3] == ["or", "icd10cm:J11.00", "valid"]


def test_import_hcpcs_fixture_then_extract(desk: Any, tmp_path: Path) -> None:
    fixture = tmp_path / "HCPC2099_fixture.txt"
    fixture.write_bytes(hcpcs_fixture_bytes())
    report = as_json(desk.consultant("codes", "import", "hcpcs", str(fixture), "--json"))
    assert (report["release"], report["added"]) == ("2099", 6)
    [loaded] = as_json(desk.consultant("codes", "status", "--json"))
    assert (loaded["name"], loaded["release"], loaded["count"]) == ("hcpcs", "2099", 6)
    result = as_json(run(desk, "codes", "extract", "-", "--json", stdin="J9990 x2 and G9990-LT"))
    statuses = {code["code"]: code["status"] for code in result["codes"]}
    assert statuses == {"J9990": "valid", "G9990": "deleted"}
    assert result["specialty"] == "hcpcs-supplies-drugs-dme"


def test_malformed_file_loads_nothing(desk: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad_line = hcpcs_line("J99X9", "3", "Broken")
    bad.write_bytes(hcpcs_fixture_bytes() + b"\r\n" + bad_line.encode())
    result = desk.consultant("codes", "import", "hcpcs", str(bad))
    assert result.returncode == 1
    assert "line 10:" in result.stderr and "nothing was loaded" in result.stderr
    assert as_json(desk.consultant("codes", "search", "made-up", "--json")) == []


def test_import_lines_of_cms_2020_file(desk: Any, tmp_path: Path) -> None:
    """CMS's own lines, under CMS's file name, which gives the release."""
    path = tmp_path / "HCPC2020_ANWEB_w_disclaimer.txt"
    path.write_bytes(CMS_2020_LINES.read_bytes())
    records = sum(line[10:11] in ("3", "7") for line in path.read_text("cp1252").splitlines())
    report = as_json(desk.consultant("codes", "import", "hcpcs", str(path), "--json"))
    assert (report["release"], report["total"]) == ("2020", records)
    again = as_json(desk.consultant("codes", "import", "hcpcs", str(path), "--json"))
    assert (again["added"], again["changed"]) == (0, 0)
    hits = as_json(
        desk.consultant("codes", "search", "dexamethasone", "--system", "hcpcs", "--json")
    )
    assert "J1100" in [hit["code"] for hit in hits]


def test_cpt_file_ncci_and_mue(desk: Any, tmp_path: Path) -> None:
    (tmp_path / "cpt.csv").write_text("code,descriptor\n97140,Made-up one\n97530,Made-up two\n")
    (tmp_path / "ptp.txt").write_text(PTP_FIXTURE)
    (tmp_path / "mue.csv").write_text(MUE_FIXTURE)
    for kind, name in (("cpt", "cpt.csv"), ("ptp", "ptp.txt"), ("mue", "mue.csv")):
        as_json(desk.consultant("codes", "import", kind, str(tmp_path / name), "--json"))
    result = as_json(
        run(desk, "codes", "extract", "--json", stdin="97140 and 97530 x9, also 97110 x8")
    )
    statuses = {code["code"]: code["status"] for code in result["codes"]}
    assert statuses == {"97140": "valid", "97530": "valid", "97110": "unknown"}
    assert result["ncci_conflicts"] == [
        "97140 + 97530: needs a modifier such as 59, XE, XS, XP or XU; none is present"
    ]
    assert result["mue_exceeded"] == [
        "97110: 8 units exceed the MUE of 6 (adjudication indicator 3)"
    ]


def test_extract_jsonl_and_pdf(desk: Any, tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "a", "text": "Billed 99214-25 and 20610-RT"}),
        json.dumps({"id": 7, "text": "Call 555-201-3390, ZIP 60614"}),
        "not json",
    ]
    output = run(desk, "codes", "extract", "--jsonl", stdin="\n".join(lines) + "\n")
    assert output.returncode == 0, output.stderr
    results = [json.loads(line) for line in output.stdout.splitlines()]
    assert [r["id"] for r in results] == ["a", 7, None]
    assert [c["code"] for c in results[0]["codes"]] == ["99214", "20610"]
    assert results[1]["codes"] == [] and "error" in results[2]
    pdf = tmp_path / "op-note.pdf"
    pdf.write_bytes(make_pdf("Operative note\nProcedure 27447-RT, dx M17.11"))
    result = as_json(desk.consultant("codes", "extract", str(pdf), "--json"))
    assert [(c["system"], c["code"]) for c in result["codes"]] == [
        ("cpt", "27447"),
        ("icd10cm", "M17.11"),
    ]
    assert result["specialty"] == "surgery-musculoskeletal"
