"""Shared pieces for the code tests: a catalog built once from the real ICD-10-CM
release, and writers for files in CMS's layouts holding made-up rows."""

from __future__ import annotations

from datetime import date

import pytest

from consultant.codes.catalog import Catalog
from consultant.codes.formats import HCPCS, ICD10CM
from consultant.codes.hcpcs import parse_hcpcs
from consultant.codes.icd10cm import icd10cm_release, iter_icd10cm

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
