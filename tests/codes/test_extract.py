import pytest

from consultant.codes import formats
from consultant.codes.analysis import UnreadablePdf, pdf_text
from consultant.codes.catalog import Catalog
from consultant.codes.extract import extract, extract_sources
from tests.codes.conftest import make_pdf


def keys(text: str, catalog: Catalog | None = None) -> list[str]:
    known = catalog.has if catalog else None
    return [f.key for f in extract(text, known=known)]


@pytest.mark.parametrize(
    "text",
    [
        "Mail it to 400 Elm Road, Dayton, OH 45402 please.",
        "Call me at (937) 555-0142 or 937-555-0199.",
        "Date of service 03/14/2026, follow up 2026-04-02.",
        "The balance is $12,450.00 and the allowed amount $99213.",
        "Claim # 88213 was denied; member ID 45871; account 20931.",
        "Visit at 10:45, BP 128/82, pulse 72, temp 98.6, SpO2 97%.",
        "We processed 15000 claims last month for 12000 members.",
        "Please quote ticket number 40213 and reference 51234.",
        "The ZIP code is 60614 and the NPI is 1234567890.",
        "Patients from ZIP 43614 and 98405; the 99163 ZIP code too.",
        "Our office in Versailles 45380, moved to Dayton (45402); the Tacoma 98405 location.",
        "Change Request (CR) 97014, Accession #: 96374, GL 99232-572, badge K6286.",
        "Check 45378 issued to payee; chart number there is 99309-B; Submitter 45380.",
        "Authorization 11043-2026-03 is on file. Report totals - Accepted: 45378",
        "Zip on file was 60611 but the patient moved to 60614.",
        "Charges post to GL 6100-45380 this month.",
        "Claim Number   Patient Acct   DOS\n202603120771   20931          03/02/26",
    ],
)
def test_traps_are_not_codes(text: str) -> None:
    assert keys(text) == []


def test_ndc_is_found_and_masked() -> None:
    found = keys("Billed J9990 with NDC 50242-0041-21 and NDC 0409-4888-02.")
    assert found == ["hcpcs:J9990", "ndc:50242004121", "ndc:00409488802"]


def test_modifiers_attach_to_their_code() -> None:
    text = "Billed 99213-25 and 20610-RT, then 97110 GP x2 and 97140 with modifier 59."
    assert keys(text) == ["cpt:99213-25", "cpt:20610-RT", "cpt:97110-GP x2", "cpt:97140-59"]


def test_a_modifier_phrase_right_after_a_code_is_that_codes() -> None:
    text = "Documentation for 99204, 99202 with modifier 57 and 99212 -57."
    assert keys(text) == ["cpt:99204", "cpt:99202-57", "cpt:99212-57"]


def test_codes_in_a_table_are_read_beside_identifier_columns() -> None:
    text = (
        "Claim Number   Patient Acct   DOS        Proc    Billed\n"
        "202603120771   20931          03/02/26   97140   $95.00\n"
        "202603120771   20931          03/02/26   97530   $110.00"
    )
    assert keys(text) == ["cpt:97140", "cpt:97530"]


def test_modifier_alone_is_reported_as_a_modifier() -> None:
    assert keys("When is modifier 25 appropriate?") == ["modifier:25"]


def test_units_before_and_after() -> None:
    assert keys("Report 3 units of 97110 and 96372 x 2") == ["cpt:97110 x3", "cpt:96372 x2"]


def test_cpt_category_ii_iii_and_pla() -> None:
    assert keys("Codes 3074F, 0591T and 0241U") == ["cpt:3074F", "cpt:0591T", "cpt:0241U"]


def test_dotted_icd_is_high_confidence_without_catalog() -> None:
    [found] = extract("Dx is E11.9 today")
    assert (found.system, found.code, found.confidence) == ("icd10cm", "E11.9", 0.95)
    assert "Dx is E11.9 today"[found.start : found.end] == "E11.9"


def test_dotless_icd_needs_context_and_catalog(icd_catalog: Catalog) -> None:
    assert keys("dx codes E119, I10 and Z794", icd_catalog) == [
        "icd10cm:E11.9",
        "icd10cm:I10",
        "icd10cm:Z79.4",
    ]
    assert keys("dx codes E119, I10 and Z794") == []  # no catalog to confirm them
    assert keys("Room E119 on the third floor", icd_catalog) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Screening codes such as Z131 do not apply here.", ["icd10cm:Z13.1"]),
        (
            "report the specific code, e.g. E113291 or E113553",
            ["icd10cm:E11.3291", "icd10cm:E11.3553"],
        ),
        (
            "The diagnosis pointer on this line points to Z7984 only.",
            ["icd10cm:Z79.84"],
        ),
        ("Duplicate claim check: E0114 NU on 06/03/26 matches.", ["hcpcs:E0114-NU"]),
        (
            "Wt mgmt: HTN I10. Want me to add Z713 for the counseling?",
            ["icd10cm:I10", "icd10cm:Z71.3"],
        ),
        ("21.  A I2510    B I480", ["icd10cm:I25.10", "icd10cm:I48.0"]),
    ],
)
def test_dotless_diagnoses_and_codes_named_in_payer_letters(
    icd_catalog: Catalog, text: str, expected: list[str]
) -> None:
    found = extract(text, known=icd_catalog.has)
    assert [f.key for f in found] == expected


def test_a_modifier_named_apart_from_codes_in_a_text_with_codes_is_not_reported() -> None:
    text = "Line 1: 99214 denied. The E/M on the same day as the injection needs modifier 25."
    assert keys(text) == ["cpt:99214"]
    assert keys("Do we need modifier 25 here?") == ["modifier:25"]


def test_a_dotless_code_beside_a_procedure_code_is_a_diagnosis(icd_catalog: Catalog) -> None:
    assert keys("OK to bill 99439 with I10?", icd_catalog) == ["cpt:99439", "icd10cm:I10"]
    assert keys("Doc did 11102 and also managed I10.", icd_catalog) == [
        "cpt:11102",
        "icd10cm:I10",
    ]
    # no procedure code in the sentence: a road, not a diagnosis
    assert keys("Took I10 to the clinic. Billed 99213.", icd_catalog) == ["cpt:99213"]


def test_a_modifier_the_text_says_is_absent_goes_on_no_code() -> None:
    text = "99213 was billed on the same date as 11042 without modifier 25, so it is bundled."
    assert keys(text) == ["cpt:99213", "cpt:11042"]
    assert keys("We dropped the 59 modifier from 97140 after review.") == ["cpt:97140"]
    assert keys("Line 3: procedure 97530 denied, modifier GP missing.") == ["cpt:97530"]
    assert keys("Line 3: 97530 modifier GP missing.") == ["cpt:97530"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Can you check 97110 x4 units GP, 97140 x1 59 GP and G0283 x1?",
            ["cpt:97110-GP x4", "cpt:97140-59-GP x1", "hcpcs:G0283 x1"],
        ),
        (
            "Billing 2 units 97530 + 1 unit 97116 today (GP on both).",
            ["cpt:97530-GP x2", "cpt:97116-GP x1"],
        ),
        (
            "We billed 97110 (2u), 97112 (1u), and 97140-59 (1u) all with GP.",
            ["cpt:97110-GP x2", "cpt:97112-GP x1", "cpt:97140-59-GP x1"],
        ),
        ("Procedures: 17000, 17003 x 13", ["cpt:17000", "cpt:17003 x13"]),
        (
            "tx: 97110x2, 97112x1, 97530x1 (all GP); next visit 11/12",
            ["cpt:97110-GP x2", "cpt:97112-GP x1", "cpt:97530-GP x1"],
        ),
        (
            "QTY 3 - 97110 - GP - $165.00\nQTY 1 - 97140 - GP/59 - $60.00",
            ["cpt:97110-GP x3", "cpt:97140-GP-59 x1"],
        ),
        # the block's own modifier line is the code's, not a modifier named alone
        ("Proc Code: 64483\nMod: RT, 50\nQty: 2", ["cpt:64483-RT-50 x2"]),
    ],
)
def test_modifiers_and_units_in_the_order_people_write_them(text: str, expected: list[str]) -> None:
    assert keys(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bill 99215 w/ modfier 25 and the 17110", ["cpt:99215-25", "cpt:17110"]),
        (
            "the 25 goes on the E/M 99213, not on 11102. Also 11103 x2.",
            ["cpt:99213-25", "cpt:11102", "cpt:11103 x2"],
        ),
        ("yeah XU on 97530 is fine", ["cpt:97530-XU"]),
        ("fixed it, 98941 AT and 97140 59 on the chiro claim", ["cpt:98941-AT", "cpt:97140-59"]),
        ("So 97535 gets the KX and 97012 gets nothing, right?", ["cpt:97535-KX", "cpt:97012"]),
        ("97140 (1u) -GP and 97750 CQ 4u", ["cpt:97140-GP x1", "cpt:97750-CQ x4"]),
        ("12001 w/XS units 1", ["cpt:12001-XS x1"]),
        ("99214 + 25 \u00d71", ["cpt:99214-25 x1"]),
        ("pt Quist: 64484 w/ 50 & 59 | 20553", ["cpt:64484-50-59", "cpt:20553"]),
        ("chart says A1c done, 3078F/3074F for the BP", ["cpt:3078F", "cpt:3074F"]),
        ("Please update before the 99213 claims go out.", ["cpt:99213"]),
        ("use this location on the upcoming 59510 and 58300 cases", ["cpt:59510", "cpt:58300"]),
        ("Line 2 (J1030): billed 6 units, allowed 2 units.", ["hcpcs:J1030 x6"]),
        (
            "Units: 93000 \u00d71, 2x 96372, 1 units of J2550",
            ["cpt:93000 x1", "cpt:96372 x2", "hcpcs:J2550 x1"],
        ),
        (
            "G0008-GA X1 + 1 unit of 99215\n\nUnits look right?",
            ["hcpcs:G0008-GA x1", "cpt:99215 x1"],
        ),
        # a modifier the payer calls invalid was on the code all the same
        ("SV101-2 99215 modifier 95 not valid with place of service 11", ["cpt:99215-95"]),
        # a question about a modifier is not a modifier on the code
        ("Does 96365 need the 25 on 90853? No.", ["cpt:96365", "cpt:90853"]),
    ],
)
def test_modifiers_and_units_as_people_write_them_in_prose(text: str, expected: list[str]) -> None:
    assert keys(text) == expected


def test_clock_times_in_a_day_list_are_not_codes() -> None:
    text = "0850A Kowalczyk (93000)\n1030A Lund (20611 with modifier 59)"
    assert keys(text) == ["cpt:93000", "cpt:20611-59"]


def test_a_count_of_units_anywhere_in_the_sentence_of_one_code() -> None:
    text = "J1885 is per 15 mg and the MD gave 60 mg — 4 units, right?"
    assert keys(text) == ["hcpcs:J1885 x4"]
    # two procedure codes: the count could be either one's
    assert keys("J1885 and J1100 were given — 4 units, right?") == ["hcpcs:J1885", "hcpcs:J1100"]


@pytest.mark.parametrize("code", ["QA0.0101", "QA00101", "QA0.8", "E11.9", "E119", "S72001A"])
def test_codes_with_a_letter_or_a_digit_second_are_icd10cm_shaped(code: str) -> None:
    assert formats.is_icd10cm(code)


@pytest.mark.parametrize("code", ["QAA.01", "QA", "AB12345678", "1A0.01", "Q0"])
def test_other_shapes_are_not_icd10cm(code: str) -> None:
    assert not formats.is_icd10cm(code)


def test_codes_whose_second_character_is_a_letter_are_found(icd_catalog: Catalog) -> None:
    text = "Genetics confirmed SCN2A: dx QA00101, and QA0.8 for the sibling; also F84.0."
    assert keys(text, icd_catalog) == ["icd10cm:QA0.0101", "icd10cm:QA0.8", "icd10cm:F84.0"]
    # the shape alone is not enough: version and policy numbers take it too
    assert keys("Policy CR1.2 and form MS4.1 apply.", icd_catalog) == []


def test_ambiguous_token_is_reported_once_with_both_readings(icd_catalog: Catalog) -> None:
    [found] = extract("Is J1100 right here?", known=icd_catalog.has)
    assert found.key == "hcpcs:J1100"
    assert found.ambiguous
    assert found.alternatives == ["icd10cm:J11.00"]
    assert found.as_dict()["ambiguous"] is True


def test_a_cpt_code_nearby_does_not_decide_an_ambiguous_token(icd_catalog: Catalog) -> None:
    [found, cpt] = extract("Audit sample list: J1100, 99204", known=icd_catalog.has)
    assert (found.key, found.alternatives, cpt.key) == (
        "hcpcs:J1100",
        ["icd10cm:J11.00"],
        "cpt:99204",
    )


def test_a_mention_that_decides_settles_the_undecided_one(icd_catalog: Catalog) -> None:
    assert keys("Is J1100 right? Dx J1100 on the claim.", icd_catalog) == ["icd10cm:J11.00"]


def test_the_hcpcs_release_decides_a_dotless_diagnosis(icd_catalog: Catalog) -> None:
    # the fixture's HCPCS release holds J1100 but not E1165
    text = "E1165 is on the old superbill. Is J1100 right?"
    found = extract(text, known=icd_catalog.has, loaded=icd_catalog.loaded)
    assert [(f.key, f.ambiguous) for f in found] == [
        ("icd10cm:E11.65", False),
        ("hcpcs:J1100", True),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "HI*ABK:E119*ABF:Z794~\nSV1*HC:97110:GP:KX*150*UN*2***1~",
            ["icd10cm:E11.9", "icd10cm:Z79.4", "cpt:97110-GP-KX x2"],
        ),
        ("DX1: N390\nDX2: C61", ["icd10cm:N39.0", "icd10cm:C61"]),
        ("21. DIAGNOSIS\nA. M7541   B. M5450", ["icd10cm:M75.41", "icd10cm:M54.50"]),
        (
            "The face sheet lists I5023, N184, E875.",
            ["icd10cm:I50.23", "icd10cm:N18.4", "icd10cm:E87.5"],
        ),
        ("Scrubber flags S060X1A and W19XXXA.", ["icd10cm:S06.0X1A", "icd10cm:W19.XXXA"]),
        ("icd codes r112, j209 from the paper chart", ["icd10cm:R11.2", "icd10cm:J20.9"]),
    ],
)
def test_dotless_diagnoses_as_claims_and_reports_write_them(
    icd_catalog: Catalog, text: str, expected: list[str]
) -> None:
    assert keys(text, icd_catalog) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Our PT visits go out as 97530GO, 97116GO KX.", ["cpt:97530-GO", "cpt:97116-GO-KX"]),
        ("Billed 99214 25 and 99213-25-59 today", ["cpt:99214-25", "cpt:99213-25-59"]),
        ("Claim went out as 99223 (AI) and came back", ["cpt:99223-AI"]),
        ("Anesthesia: 00142 QS, 33 min.", ["cpt:00142-QS"]),
        (
            "Drug line: J9271 X100, J1885 - 2 units, 90471 UN 1",
            ["hcpcs:J9271 x100", "hcpcs:J1885 x2", "cpt:90471 x1"],
        ),
        ("We appended -59, XS to 11102 after 99213.", ["cpt:11102-59-XS", "cpt:99213"]),
    ],
)
def test_modifiers_and_units_in_the_usual_spellings(text: str, expected: list[str]) -> None:
    assert keys(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "CMS Transmittal 12973 (CR 13706) updates the fee schedule.",
        "Charges post to cost center 40110.",
        "We moved to 20610 Ventura Blvd last month.",
        "Heparin 5000U given.",
        "Call 1-800-555-0199 ext. 20610.",
        "Payment posted under check 86580.",
        "Omaha NE 68198",
        "09:40 K2210 released claim",
        "Line 2 64495 PR-2 / N20",
    ],
)
def test_look_alike_numbers_are_not_codes(icd_catalog: Catalog, text: str) -> None:
    assert [k for k in keys(text, icd_catalog) if k != "cpt:64495"] == []


@pytest.mark.parametrize(
    "text",
    [
        "Edit 33101: Rendering provider NPI not on file. REJ 10492: pointer invalid.",
        "Payer: GEHA (44054)\nRule 2211F (local edit) applies.",
        "Case # UR-26-20553; your request (45380-139) was denied.",
        "Claim 22 42 955 79484 6  DOS 3/7/26",
        "Mail to PO BOX 20610, Del Mar, CA, 92014.",
        "Acknowledgement summary - (PID 87726)",
        "NPI 1740029315   TIN 91-4720183   Check 30418   Date 04/02/2026",
        "Rejection Detail - Payer: BCBSTX 84980\nours is 15800 SW Tualatin-Sherwood Rd",
        "Could the payer still have her at the old Houston address (77030)?",
        "hi dana - our new mailing addr for remits is 410 w 3rd ave, selah wa 98942",
        "* Humana 61101: no change\n* Cigna 62308: no change",
        "Details in Provider Manual section G12.4; policy section B10.9.",
        "The diagnosis codes (724.2 and V57.1) are ICD-9-CM codes; legacy dx V22.0",
        "32  SERVICE FACILITY: CASCADE PT  18220 SW ROY ROGERS RD  SHERWOOD OR",
        "Tot visits 3  Deposit slip 20418",
    ],
)
def test_look_alikes_of_payer_paperwork_are_not_codes(icd_catalog: Catalog, text: str) -> None:
    assert keys(text, icd_catalog) == []


def test_contractors_will_edit_names_codes() -> None:
    text = "MLN Matters: effective 01/01/2026 contractors will edit 96365 with 99282."
    assert keys(text) == ["cpt:96365", "cpt:99282"]
    # a range of codes is two codes, not a hyphenated number
    assert keys("E/M 99202-99205 for new patients") == ["cpt:99202", "cpt:99205"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # an 835 line paid as another code, and one whose paid units are zero
        (
            "SVC*HC:99214:25*265*118.4**1*HC:99215:25~\nSVC*HC:20610:RT*215*0**0**1~",
            ["cpt:99214-25 x1", "cpt:99215-25", "cpt:20610-RT x1"],
        ),
        (
            "SV1*HC:J9267*310*UN*260***1~\nLIN**N4*00703476701~",
            ["hcpcs:J9267 x260", "ndc:00703476701"],
        ),
        (
            "code / mod / units / charge\n96110/59/1/13.29\nG0008//1/28.26",
            ["cpt:96110-59 x1", "hcpcs:G0008 x1"],
        ),
        (
            "Line\tCPT\tM1\tM2\tUnits\n1\t20550\tF7\t59\t1",
            ["cpt:20550-F7-59 x1"],
        ),
        (
            "Service Line 1\n  Date: 02-Jul-2026   Procedure: HC:66984   Modifiers: LT 79\n"
            "  Units Billed: 1   Units Paid: 0\n  Charge 2013.80  Paid 0.00",
            ["cpt:66984-LT-79 x1"],
        ),
        ("24D: 96127 / 59   24G: 2   24F: 19 13   24E: A", ["cpt:96127-59 x2"]),
        (
            "FL42 0521  FL44 99213 CG   FL45 030326  FL46 1  FL47 145.00\nFL67 E119   FL67A I10",
            ["cpt:99213-CG x1", "icd10cm:E11.9", "icd10cm:I10"],
        ),
        (
            "HI*ABK|I10*ABF|R059~\nSV1*HC|G0008*190.25*UN*1***1~",
            ["icd10cm:I10", "icd10cm:R05.9", "hcpcs:G0008 x1"],
        ),
        (
            "Lines: HC:99213:25 / HC:96372 UN 1 / HC:J1885 UN 2",
            ["cpt:99213-25", "cpt:96372 x1", "hcpcs:J1885 x2"],
        ),
        ('Line,Procedure,Mod1,Units\n"1","99232","GC","1.00"', ["cpt:99232-GC x1"]),
        ("Line 2  02/05/26  99204 57  units 1  billed $245.67", ["cpt:99204-57 x1"]),
        ("LS-88120  2  49505 (RT, 51)  1  380.00", ["cpt:49505-RT-51 x1"]),
        # box 24 as scanned: pointers, the charge's dollars and cents, then the units
        (
            "1  10 14 26  10 14 26  11   90686             A    28 00   1   1603915572\n"
            "3  10 14 26  10 14 26  11   99392  25         A   185 00   1   1603915572",
            ["cpt:90686 x1", "cpt:99392-25 x1"],
        ),
        ("  05-31-2026  00790 AA  11  1096.31  769.06  CO-45", ["cpt:00790-AA x11"]),
        ("Ln  Proc         Units\n1   98941 AT     1", ["cpt:98941-AT x1"]),
        (
            "Date |  Procedure |  Mod |  Units |  Billed\n06JAN26 |  J9035 |  JW |  80 |  $69.49",
            ["hcpcs:J9035-JW x80"],
        ),
        (
            "FROM         PROC    MODS       UN   CHG\n15-Jun-2026  L3908   LT,NU,KX   1    62.59",
            ["hcpcs:L3908-LT-NU-KX x1"],
        ),
        ("Ln1  96365        A   1  $210.00", ["cpt:96365 x1"]),
        ("(X) 97535  home skills training mod GO 59    x2", ["cpt:97535-GO-59 x2"]),
        ("29515  RT           112.00  1", ["cpt:29515-RT x1"]),
        (
            "24A 03 17 26  03 17 26  B 11  D 99214 25   E ABCD  F 165 00  G 1  J 1982736450",
            ["cpt:99214-25 x1"],
        ),
        (
            "we sent 97110GP, 97140GP59 and 97530GP",
            ["cpt:97110-GP", "cpt:97140-GP-59", "cpt:97530-GP"],
        ),
        # a header on two lines: "PROC/" over "REV" is the procedure's column
        (
            "SERVICE  PROC/  MOD  NO.   BILLED\nDATE     REV         SVCS  AMT\n"
            "08JAN26  76856  26   1     292.39",
            ["cpt:76856-26 x1"],
        ),
    ],
)
def test_remittance_and_claim_layouts(icd_catalog: Catalog, text: str, expected: list[str]) -> None:
    assert keys(text, icd_catalog) == expected


def test_a_modifier_of_the_loaded_hcpcs_release_is_read(icd_catalog: Catalog) -> None:
    # ZZ is a modifier only in the test's made-up release
    assert keys("Billed 99213-ZZ today", icd_catalog) == ["cpt:99213-ZZ"]
    assert keys("Billed 99213-ZZ today") == ["cpt:99213"]
    # written like a count, a release's X1 or UN modifier is not read as one
    assert keys("96127 X1 and 90471 UN 1", icd_catalog) == ["cpt:96127 x1", "cpt:90471 x1"]


def test_context_decides_ambiguous_token(icd_catalog: Catalog) -> None:
    assert keys("Injection J1100 x 4 units", icd_catalog) == ["hcpcs:J1100 x4"]
    assert keys("Primary dx J1100 for the flu", icd_catalog) == ["icd10cm:J11.00"]


def test_pcs_only_with_context() -> None:
    [found] = extract("ICD-10-PCS 0SR9019 for the hip")
    assert (found.system, found.code) == ("icd10pcs", "0SR9019")
    assert "no PCS catalog" in found.reason
    assert keys("Order 0SR9019 shipped") == []


def test_sources_are_merged_and_labelled() -> None:
    found = extract_sources(
        [("subject", "Question on 99214"), ("body", "Can 99214-25 go with 11102?")]
    )
    assert [(f.key, f.source) for f in found] == [
        ("cpt:99214-25", "subject"),
        ("cpt:11102", "body"),
    ]


def test_pdf_text_reads_the_text_layer_of_the_first_pages() -> None:
    assert pdf_text(make_pdf("Procedure 27447-RT\nDx M17.11")) == "Procedure 27447-RT\nDx M17.11"
    assert pdf_text(make_pdf("Procedure 27447-RT"), max_pages=0) == ""
    with pytest.raises(UnreadablePdf):
        pdf_text(b"%PDF-1.4 truncated")
