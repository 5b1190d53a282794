from datetime import date
from pathlib import Path

import pytest

from consultant.codes.cpt import parse_cpt_csv
from consultant.codes.hcpcs import parse_hcpcs
from consultant.codes.ncci import parse_mue, parse_ptp
from consultant.codes.records import MODIFIER_KIND, FileFormatError
from tests.codes.conftest import HCPCS_FIXTURE_LINES, hcpcs_fixture_bytes, hcpcs_line

# Lines copied from CMS's 2020 HCPCS file: its disclaimer, then the records of the codes
# and modifiers the quality set labels (see data/quality/check_labels.py).
CMS_2020_LINES = Path(__file__).parent / "data" / "quality" / "hcpcs-2020-excerpt.txt"


def test_hcpcs_fixture_reads_codes_modifiers_and_continuations() -> None:
    records = {r.code: r for r in parse_hcpcs(hcpcs_fixture_bytes())}
    assert set(records) == {"ZZ", "LT", "A9990", "J9990", "J1100", "G9990"}
    assert records["LT"].kind == MODIFIER_KIND
    assert records["A9990"].description.endswith("long description that continues on a second line")
    assert records["A9990"].short_description == "Test dressing"
    assert records["G9990"].deletion_date == date(2019, 12, 31)
    assert records["G9990"].effective_date == date(2015, 1, 1)
    assert records["J9990"].deletion_date is None


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        (hcpcs_line("J99X0", "3", "Bad code"), "is not a HCPCS code"),
        (hcpcs_line("J9991", "3", "Bad date", added="2020130x"), "is not a YYYYMMDD date"),
        (hcpcs_line("J9992", "5", "Bad kind"), "record kind '5'"),
        (hcpcs_line("J9993", "3", "Short record")[:150], "record is 150 characters"),
        (hcpcs_line("K0001", "4", "Orphan continuation"), "follows no record"),
        (hcpcs_line("J9990", "3", "Duplicate"), "J9990 appears twice"),
    ],
)
def test_hcpcs_malformed_line_is_named(bad_line: str, reason: str) -> None:
    lines = [*HCPCS_FIXTURE_LINES, bad_line]
    with pytest.raises(FileFormatError) as error:
        parse_hcpcs(hcpcs_fixture_bytes(lines))
    assert error.value.line == len(lines)
    assert reason in str(error.value)


def test_hcpcs_file_without_records_is_rejected() -> None:
    with pytest.raises(FileFormatError, match="no HCPCS records"):
        parse_hcpcs(b"just some text\r\nand more\r\n")


def test_lines_of_cms_2020_file() -> None:
    """CMS's own lines (cp1252, CRLF, a free-text disclaimer, modifiers whose long
    descriptions continue on kind-8 lines), and a discontinued code in their layout."""
    retired = hcpcs_line("G9990", "3", "Made-up retired service", "Retired", "20150101", "20191231")
    data = CMS_2020_LINES.read_bytes() + retired.encode("cp1252") + b"\r\n"
    lines = data.decode("cp1252").splitlines()
    records = parse_hcpcs(data)
    codes = {r.code: r for r in records if r.kind != MODIFIER_KIND}
    modifiers = {r.code: r for r in records if r.kind == MODIFIER_KIND}
    assert len(codes) == sum(line[10:11] == "3" for line in lines)
    assert len(modifiers) == sum(line[10:11] == "7" for line in lines)
    assert codes["J1100"].description == "Injection, dexamethasone sodium phosphate, 1 mg"
    assert codes["E0601"].description.startswith("Continuous positive airway pressure")
    assert {"LT", "RT", "XS", "GP", "KX"} <= set(modifiers)
    assert modifiers["GC"].description.endswith("teaching physician")  # a kind-8 line
    assert codes["G9990"].deletion_date == date(2019, 12, 31)
    assert [c for c, r in codes.items() if r.deletion_date] == ["G9990"]


def test_cpt_csv_with_header_and_tabs() -> None:
    text = 'code,descriptor\n99213,Test descriptor one\n0591T,"Test, with comma"\n'
    records = parse_cpt_csv(text.encode())
    assert [(r.code, r.description) for r in records] == [
        ("99213", "Test descriptor one"),
        ("0591T", "Test, with comma"),
    ]
    assert parse_cpt_csv(b"99213\tTabbed test text\n")[0].description == "Tabbed test text"


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("code,descriptor\n99213,ok\n9921,bad\n", 3, "is not a CPT code"),
        ("99213,ok\n99214\n", 2, "expected 2 columns"),
        ("99213,ok\n99213,again\n", 2, "appears twice"),
        ("99213,\n", 1, "empty descriptor"),
    ],
)
def test_cpt_csv_errors(text: str, line: int, reason: str) -> None:
    with pytest.raises(FileFormatError) as error:
        parse_cpt_csv(text.encode())
    assert error.value.line == line
    assert reason in error.value.reason


PTP_FIXTURE = (
    "Made-up PTP edits for tests\n"
    "Column 1\tColumn 2\t*=in existence prior to 1996\tEffective Date\tDeletion Date\t"
    "Modifier\tRationale\n"
    "97140\t97530\t\t20200101\t*\t1\tMade-up rationale\n"
    "99213\t36415\t\t20200101\t*\t0\tMade-up rationale\n"
    "20610\t20604\t*\t19960101\t20210101\t9\tMade-up rationale\n"
)


def test_ptp_fixture() -> None:
    edits = parse_ptp(PTP_FIXTURE.encode())
    assert [(e.column1, e.column2, e.modifier_indicator) for e in edits] == [
        ("97140", "97530", 1),
        ("99213", "36415", 0),
        ("20610", "20604", 9),
    ]
    assert edits[0].deletion_date is None
    assert edits[2].deletion_date == date(2021, 1, 1)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("97140\t97530\t\t20200101\t*\t2\tx", "modifier indicator 2"),
        ("97140\tABCDE\t\t20200101\t*\t1\tx", "column 2 code"),
        ("97140\t97110\t\t2020-01-01\t*\t1\tx", "effective date"),
        ("97140\t97110\t\t20200101", "expected at least 6 columns"),
        ("97140\t97530\t\t20200101\t*\t1\tx", "appears twice"),
    ],
)
def test_ptp_errors_name_the_line(row: str, reason: str) -> None:
    with pytest.raises(FileFormatError) as error:
        parse_ptp((PTP_FIXTURE + row + "\n").encode())
    assert error.value.line == 6
    assert reason in error.value.reason


MUE_FIXTURE = (
    '"Made-up MUE table for tests"\n'
    '"HCPCS/CPT Code","Practitioner Services MUE Values","MUE Adjudication Indicator",'
    '"MUE Rationale"\n'
    '97110,6,"3 Date of Service Edit: Clinical","Made-up"\n'
    '99213,1,"2 Date of Service Edit: Policy","Made-up"\n'
    'J1100,40,"1 Line Edit","Made-up"\n'
)


def test_mue_fixture() -> None:
    limits = parse_mue(MUE_FIXTURE.encode())
    assert [(m.code, m.max_units, m.adjudication_indicator) for m in limits] == [
        ("97110", 6, 3),
        ("99213", 1, 2),
        ("J1100", 40, 1),
    ]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ('97112,six,"3 Date"', "MUE value"),
        ('97112,6,"4 Something"', "adjudication indicator 4"),
        ("97112,6", "expected at least 3 columns"),
    ],
)
def test_mue_errors_name_the_line(row: str, reason: str) -> None:
    with pytest.raises(FileFormatError) as error:
        parse_mue((MUE_FIXTURE + row + "\n").encode())
    assert error.value.line == 6
    assert reason in error.value.reason
