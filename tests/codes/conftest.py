"""Shared pieces for the code tests: a catalog built once from the real ICD-10-CM
release, and writers for files in CMS's layouts holding made-up rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import Engine

from consultant.codes.catalog import Catalog
from consultant.codes.formats import HCPCS, ICD10CM
from consultant.codes.hcpcs import parse_hcpcs
from consultant.codes.icd10cm import icd10cm_release, iter_icd10cm
from consultant.codes.records import CodeRecord
from consultant.db import make_engine
from tests.conftest import empty_tables

AS_OF = date(2026, 11, 26)


def hcpcs_line(
    code: str,
    kind: str,
    long: str,
    short: str = "",
    added: str = "20200101",
    terminated: str = "",
    action: str = "N",
    sequence: str = "00100",
) -> str:
    """One 320-character record in CMS's HCPCS fixed-width layout."""
    head = code.rjust(5) + sequence + kind + long.ljust(80)[:80] + short.ljust(28)[:28]
    if kind in "48":
        return head[:91]
    line = head.ljust(268) + added.ljust(8) + added.ljust(8) + terminated.ljust(8) + action
    return line.ljust(320)


HCPCS_FIXTURE_LINES = [
    "Disclaimer: made-up records in the HCPCS layout, for tests only.",
    "",
    hcpcs_line("ZZ", "7", "Made-up modifier for a test", "Test modifier"),
    hcpcs_line("LT", "7", "Left side of the body, test wording", "Left side"),
    hcpcs_line(
        "A9990", "3", "Made-up wound dressing supply, first part of a long", "Test dressing"
    ),
    hcpcs_line("A9990", "4", "description that continues on a second line", sequence="00200"),
    hcpcs_line("J9990", "3", "Injection, made-up drug, 1 mg", "Test drug 1 mg"),
    hcpcs_line("J1100", "3", "Injection, test steroid, 1 mg", "Test steroid"),
    hcpcs_line("G9990", "3", "Made-up retired service", "Retired", "20150101", "20191231", "D"),
]


def hcpcs_fixture_bytes(lines: list[str] | None = None) -> bytes:
    return "\r\n".join(lines or HCPCS_FIXTURE_LINES).encode("cp1252")


@pytest.fixture(scope="session")
def icd_catalog() -> Catalog:
    """ICD-10-CM (the real release) plus the made-up HCPCS fixture."""
    catalog = Catalog()
    catalog.add_codes(ICD10CM, icd10cm_release(), iter_icd10cm())
    catalog.add_codes(HCPCS, "test", parse_hcpcs(hcpcs_fixture_bytes()))
    return catalog


def make_pdf(text: str) -> bytes:
    """A one-page PDF whose text layer holds ``text`` (one line per line), built by hand."""
    lines = [
        line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        for line in text.split("\n")
    ]
    content = "BT /F1 11 Tf 50 750 Td 14 TL " + " ".join(f"({line}) '" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        "/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = "%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n"
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    return out.encode("latin-1")


@pytest.fixture
def code_engine(backend: str) -> Iterator[Engine]:
    """An engine on the test's backend (SQLite, then PostgreSQL), schema in place, empty."""
    empty_tables(backend)
    engine = make_engine(backend)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def diabetes_records() -> list[CodeRecord]:
    """A slice of the real ICD-10-CM release: the E10-E11 and J11 families."""
    return [r for r in iter_icd10cm() if r.code[:3] in {"E10", "E11", "J11"}]
