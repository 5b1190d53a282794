"""Rules the extractor keeps for every text, checked on texts hypothesis writes: a code in
ordinary prose comes back with its modifiers and units however they are written, and a
number behind a label that says what it is (ZIP, claim number, phone, amount) never does."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from consultant.codes.catalog import Catalog
from consultant.codes.extract import extract

PROCEDURES = {
    "cpt": ["99213", "99214", "97110", "97140", "96372", "20610", "27447", "45378", "93000"],
    "hcpcs": ["J1885", "J3301", "G0283", "J0585", "L3908", "E0601", "A4253"],
}
# Letter modifiers other than the ones that are also English words ("AS", "PT", ...),
# which are read only after a hyphen.
LETTER_MODIFIERS = ["GP", "GO", "KX", "RT", "LT", "JW", "JZ", "XS", "XU", "NU", "RR", "QW"]
DIGIT_MODIFIERS = ["25", "59", "26", "51", "76", "91", "95"]
PROSE = [
    *("please", "review", "the", "line", "we", "sent", "for", "this", "patient", "last"),
    *("week", "and", "tell", "us", "whether", "payer", "rejected", "it", "again", "so"),
    *("our", "team", "can", "fix", "what", "went", "wrong", "before", "Friday", "Thanks"),
    *("Hello", "Medicare", "Also", "Question"),
]
BEFORE = [" ", ": ", " (", "\n", ", ", " - "]
AFTER = [" ", ". ", ", ", ")\n", "; ", "? ", "\n"]
UNIT_SPELLINGS = [
    *("x{n}", " x{n}", " x {n}", " X{n}", " \u00d7{n}", " {n} units", " units: {n}"),
    *(" ({n}u)", " {n}u", " (x{n})", " ({n} units)"),
]
LABELS = [
    "ZIP",
    "zip code",
    "Claim #",
    "claim no.",
    "claim number",
    "Phone:",
    "phone",
    "fax",
    "Fax:",
    "$",
    "member ID",
    "check #",
    "Tax ID",
    "NPI",
    "account",
    "Transmittal",
    "CR",
    "cost center",
    "GL",
    "Accession #:",
    "Change Request (CR)",
    "badge",
    "Submitter",
    "Payer ID",
    "Auth #",
    "ICN",
    "Invoice",
    "Lot",
    "PO Box",
]
# Labels written after the number they label.
AFTER_LABELS = [
    "ZIP",
    "claim #",
    "member ID",
    "cost center",
    "cost ctr",
    "acct no",
    "check no.",
    "batch",
    "invoice",
    "ticket",
    "ref",
    "PO box",
    "transmittal",
]
# Table headers naming an identifier column.
ID_HEADERS = ["Claim#", "Acct", "Pt Acct", "claim_id", "MemberNbr", "ICN", "Batch ID", "Invoice No"]


def prose(words: list[str]) -> str:
    return " ".join(words)


@st.composite
def coded_line(draw: st.DrawFn) -> tuple[str, str]:
    """A text with one procedure code, its modifiers and units, and the key it must give."""
    system = draw(st.sampled_from(sorted(PROCEDURES)))
    code = draw(st.sampled_from(PROCEDURES[system]))
    modifiers = draw(
        st.lists(st.sampled_from(LETTER_MODIFIERS + DIGIT_MODIFIERS), max_size=4, unique=True)
    )
    written = code
    for index, modifier in enumerate(modifiers):
        separators = ["-", " ", " - ", "\u2013"]
        if index == 0 and modifier.isalpha():
            separators.append("")  # glued on: 97110GP
        written += draw(st.sampled_from(separators)) + modifier
    units = draw(st.none() | st.integers(1, 99))
    if units is not None:
        written += draw(st.sampled_from(UNIT_SPELLINGS)).format(n=units)
    before = prose(draw(st.lists(st.sampled_from(PROSE), max_size=8)))
    after = prose(draw(st.lists(st.sampled_from(PROSE), max_size=8)))
    text = before + draw(st.sampled_from(BEFORE)) + written + draw(st.sampled_from(AFTER)) + after
    key = f"{system}:{code}" + "".join(f"-{m}" for m in modifiers)
    return text, key + (f" x{units}" if units else "")


@st.composite
def labelled_number(draw: st.DrawFn) -> str:
    """A text with a number that its label says is not a code: many fall in CPT ranges."""
    label = draw(st.sampled_from(LABELS))
    number = str(draw(st.integers(10000, 99999)))
    if label.lower().startswith(("phone", "fax")):
        number = draw(
            st.sampled_from(
                [f"555-{number[:3]}-0{number[3:]}", f"({number[:3]}) 555-01{number[3:]}", number]
            )
        )
    gap = (
        ""
        if label == "$"
        else draw(st.sampled_from([" ", "  ", ": " if label[-1] != ":" else " "]))
    )
    before = prose(draw(st.lists(st.sampled_from(PROSE), max_size=6)))
    after = prose(draw(st.lists(st.sampled_from(PROSE), max_size=6)))
    return f"{before} {label}{gap}{number} {after}".strip()


@given(coded_line())
def test_a_code_in_prose_keeps_its_modifiers_and_units(line: tuple[str, str]) -> None:
    text, key = line
    assert [found.key for found in extract(text)] == [key]


@given(text=labelled_number())
def test_a_labelled_number_is_never_a_code(icd_catalog: Catalog, text: str) -> None:
    found = extract(text, known=icd_catalog.has, loaded=icd_catalog.loaded)
    assert [f.key for f in found] == []


@st.composite
def number_labelled_after(draw: st.DrawFn) -> str:
    """A number with its label written after it: "39931 (ZIP)", "97110 - acct no."."""
    label = draw(st.sampled_from(AFTER_LABELS))
    number = str(draw(st.integers(10000, 99999)))
    form = draw(st.sampled_from(["{n} ({label})", "{n} - {label}", "{n} = {label}"]))
    before = prose(draw(st.lists(st.sampled_from(PROSE), max_size=6)))
    end = draw(st.sampled_from([".", "", ",", "\n"]))
    return f"{before} {form.format(n=number, label=label)}{end}".strip()


@given(text=number_labelled_after())
def test_a_number_labelled_after_it_is_never_a_code(icd_catalog: Catalog, text: str) -> None:
    found = extract(text, known=icd_catalog.has, loaded=icd_catalog.loaded)
    assert [f.key for f in found] == []


@st.composite
def table_with_identifier_column(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A pipe, tab, comma or space-aligned table: an identifier column of CPT-range
    numbers, a code column, a modifier column and a units column."""
    id_header = draw(st.sampled_from(ID_HEADERS))
    separator = draw(st.sampled_from(["|", "\t", ",", "  "]))
    row = st.tuples(
        st.integers(10000, 99999),
        st.sampled_from(PROCEDURES["cpt"]),
        st.sampled_from(["", *LETTER_MODIFIERS]),
        st.integers(1, 9),
    )
    rows = draw(st.lists(row, min_size=1, max_size=4, unique_by=lambda r: r[1]))

    def line(cells: list[str]) -> str:
        if separator == "  ":  # columns aligned by padding, as a report prints them
            return "".join(cell.ljust(12) for cell in cells).rstrip()
        return separator.join(cells)

    lines = [line([id_header, "CPT", "Mod", "Units"])]
    keys = []
    for number, code, modifier, units in rows:
        lines.append(line([str(number), code, modifier, str(units)]))
        keys.append(f"cpt:{code}" + (f"-{modifier}" if modifier else "") + f" x{units}")
    return "\n".join(lines), keys


@given(table=table_with_identifier_column())
def test_a_table_column_header_decides_its_cells(table: tuple[str, list[str]]) -> None:
    text, keys = table
    assert sorted(f.key for f in extract(text)) == sorted(keys)


@st.composite
def keyed_identifier_line(draw: st.DrawFn) -> str:
    """A key-value line keyed by an identifier label, among lines keyed otherwise."""
    key = draw(
        st.sampled_from(
            [
                "Batch ID",
                "Cost Center",
                "Group No",
                "Patient Acct",
                "Claim Nbr",
                "Facility ZIP",
                "Member ID",
                "Check #",
            ]
        )
    )
    separator = draw(st.sampled_from([": ", " = ", " - ", "\t", ":\t"]))
    numbers = draw(st.lists(st.integers(10000, 99999), min_size=1, max_size=3))
    value = ", ".join(str(n) for n in numbers)
    return (
        f"Claim detail\nDOS{separator}03/12/2026\n{key}{separator}{value}\nStatus{separator}pending"
    )


@given(text=keyed_identifier_line())
def test_a_line_keyed_by_an_identifier_holds_no_code(text: str) -> None:
    assert [f.key for f in extract(text)] == []


@st.composite
def scanned_box_24_line(draw: st.DrawFn) -> tuple[str, str]:
    """A CMS-1500 box 24 line as OCR gives it: dates, place of service, the code and its
    modifiers, pointer letters, the charge with its dollars and cents apart, the units
    and the rendering NPI."""
    system = draw(st.sampled_from(sorted(PROCEDURES)))
    code = draw(st.sampled_from(PROCEDURES[system]))
    modifiers = draw(
        st.lists(st.sampled_from(LETTER_MODIFIERS + DIGIT_MODIFIERS), max_size=3, unique=True)
    )
    pointers = draw(st.sampled_from(["A", "AB", "B", "ABC", "D"]))
    dollars, cents = draw(st.integers(1, 9999)), draw(st.integers(0, 99))
    units = draw(st.integers(1, 99))
    gap = draw(st.sampled_from(["  ", "   ", "     "]))
    line = gap.join(
        [
            "24  03 02 26  03 02 26  11",
            " ".join([code, *modifiers]),
            pointers,
            f"{dollars} {cents:02d}",
            str(units),
            "1295037741",
        ]
    )
    key = f"{system}:{code}" + "".join(f"-{m}" for m in modifiers)
    return line, f"{key} x{units}"


@given(scanned_box_24_line())
def test_a_scanned_box_24_line_gives_its_code_modifiers_and_units(
    line: tuple[str, str],
) -> None:
    text, key = line
    assert [found.key for found in extract(text)] == [key]


@st.composite
def modifier_said_absent(draw: st.DrawFn) -> tuple[str, str]:
    """A sentence that says a modifier is not on a code, in the ways payers say it."""
    system = draw(st.sampled_from(sorted(PROCEDURES)))
    code = draw(st.sampled_from(PROCEDURES[system]))
    modifier = draw(st.sampled_from(LETTER_MODIFIERS + DIGIT_MODIFIERS))
    form = draw(
        st.sampled_from(
            [
                "{code} was billed without modifier {m}",
                "{code} denied, modifier {m} missing",
                "we dropped the {m} modifier from {code}",
                "{code} went out w/o modifier {m}",
                "removed modifier {m} from {code}",
            ]
        )
    )
    before = prose(draw(st.lists(st.sampled_from(PROSE), max_size=6)))
    return f"{before} {form.format(code=code, m=modifier)}.".strip(), f"{system}:{code}"


@given(modifier_said_absent())
def test_a_modifier_said_to_be_absent_is_on_no_code(case: tuple[str, str]) -> None:
    text, key = case
    assert [found.key for found in extract(text)] == [key]
