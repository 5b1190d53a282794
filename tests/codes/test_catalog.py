from datetime import date

from consultant.codes.analysis import analyse
from consultant.codes.catalog import DELETED, FORMAT_ONLY, HEADER, UNKNOWN, VALID, Catalog
from consultant.codes.cpt import parse_cpt_csv
from consultant.codes.extract import extract
from consultant.codes.formats import CPT
from consultant.codes.ncci import parse_mue, parse_ptp
from tests.codes.conftest import AS_OF
from tests.codes.test_parsers import MUE_FIXTURE, PTP_FIXTURE


def test_icd_statuses(icd_catalog: Catalog) -> None:
    assert icd_catalog.status("icd10cm", "E11.9", AS_OF).status == VALID
    header = icd_catalog.status("icd10cm", "E11", AS_OF)
    assert header.status == HEADER
    assert "needs 1 to 4 more characters" in header.detail
    assert "billable codes under it" in header.detail
    assert icd_catalog.status("icd10cm", "E11.99", AS_OF).status == UNKNOWN
    assert icd_catalog.header_info("S72.001").billable_children == 16


def test_hcpcs_deleted_code_gives_its_dates(icd_catalog: Catalog) -> None:
    status = icd_catalog.status("hcpcs", "G9990", AS_OF)
    assert status.status == DELETED
    assert "2015-01-01" in status.detail and "2019-12-31" in status.detail
    assert icd_catalog.status("hcpcs", "J9990", AS_OF).status == VALID
    assert icd_catalog.status("hcpcs", "J9999", AS_OF).status == UNKNOWN


def test_cpt_without_file_is_format_only_with_section() -> None:
    status = Catalog().status(CPT, "27447", AS_OF)
    assert status.status == FORMAT_ONLY
    assert status.description == "CPT Surgery — Musculoskeletal system"
    assert "format and section only" in status.detail


def test_cpt_with_imported_file() -> None:
    catalog = Catalog()
    catalog.add_codes(CPT, "user", parse_cpt_csv(b"99213,Made-up text\n"))
    assert catalog.status(CPT, "99213", AS_OF).status == VALID
    assert catalog.status(CPT, "99214", AS_OF).status == UNKNOWN


def test_modifier_status() -> None:
    assert Catalog().status("modifier", "59", AS_OF).status == VALID
    assert Catalog().status("modifier", "Q9", AS_OF).status == UNKNOWN


def ncci_catalog() -> Catalog:
    catalog = Catalog()
    catalog.add_ptp(parse_ptp(PTP_FIXTURE.encode()))
    catalog.add_mue(parse_mue(MUE_FIXTURE.encode()))
    return catalog


def test_pair_edit_indicator_one_with_and_without_modifier() -> None:
    catalog = ncci_catalog()
    [without] = analyse([("body", "97140 and 97530 today")], catalog, AS_OF).conflicts
    assert without.modifier_present is None and "needs a modifier" in without.message
    [with_mod] = analyse([("body", "97140-59 and 97530 today")], catalog, AS_OF).conflicts
    assert with_mod.modifier_present == "59"


def test_pair_edit_indicator_zero_and_deleted_edits() -> None:
    catalog = ncci_catalog()
    [never] = analyse([("body", "Billed 99213 with 36415")], catalog, AS_OF).conflicts
    assert never.modifier_indicator == 0 and "never" in never.message
    assert catalog.active_edits("20610", "20604", date(2020, 6, 1))
    assert not catalog.active_edits("20610", "20604", AS_OF)


def test_mue_exceeded() -> None:
    found = analyse([("body", "97110 x8 and J1100 x 4 units")], ncci_catalog(), AS_OF)
    assert [u.message for u in found.units_exceeded] == [
        "97110: 8 units exceed the MUE of 6 (adjudication indicator 3)"
    ]


def test_analysis_lists_status_and_specialty(icd_catalog: Catalog) -> None:
    result = analyse([("body", "Home infusion 99601 and 99602 x3, dx E11.9")], icd_catalog, AS_OF)
    assert result.specialty == "medicine-home-health"
    assert [(c.found.code, c.status.status) for c in result.codes] == [
        ("99601", FORMAT_ONLY),
        ("99602", FORMAT_ONLY),
        ("E11.9", VALID),
    ]
    assert extract("E11.9")[0].as_dict()["span"] == [0, 5]
