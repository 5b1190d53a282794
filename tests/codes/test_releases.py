"""Yearly ICD-10-CM releases: CMS's order file imported as a user does it, every release
kept, and a case checked by the release in effect on its date of service. On SQLite and
on PostgreSQL.

Two made-up fiscal years in CMS's layout: FY2025 (effective 2024-10-01) and FY2026
(effective 2025-10-01), which adds E11.A, deletes M54.5 and re-describes R51.9.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, func, inspect, select
from sqlmodel import Session, SQLModel

from consultant.codes.catalog import DELETED, NOT_YET_VALID, VALID
from consultant.codes.formats import ICD10CM
from consultant.codes.icd10cm_order import parse_icd10cm_order
from consultant.codes.lookup import attach_code_lookups
from consultant.codes.records import FileFormatError
from consultant.codes.releases import load_release
from consultant.codes.store import cached_catalog, read_catalog
from consultant.db import make_engine
from consultant.migrate import downgrade, upgrade
from consultant.models import CatalogCode, CodeLookup, CodeRelease, CodeVersion, Message, Ticket
from tests.codes.test_codes_cli import as_json, run
from tests.conftest import empty_database_like

FY2025 = date(2024, 10, 1)
FY2026 = date(2025, 10, 1)
OLD_HEADACHE = "Headache, unspecified"
NEW_HEADACHE = "Headache, not otherwise specified"
COMMON = [
    ("E11", False, "Type 2 diabetes mellitus"),
    ("E119", True, "Type 2 diabetes mellitus without complications"),
    ("E1165", True, "Type 2 diabetes mellitus with hyperglycemia"),
]
FY2025_ROWS = [*COMMON, ("M545", True, "Low back pain"), ("R519", True, OLD_HEADACHE)]
FY2026_ROWS = [
    *COMMON,
    ("E11A", True, "Type 2 diabetes mellitus without complications in remission"),
    ("R519", True, NEW_HEADACHE),
]


def order_line(number: int, code: str, billable: bool, description: str) -> str:
    """One line in CMS's fixed-width order-file layout."""
    flag = "1" if billable else "0"
    return f"{number:05d} {code:<7} {flag} {description[:60]:<60} {description}"


def order_file(rows: list[tuple[str, bool, str]], *, newline: str = "\r\n") -> bytes:
    lines = [order_line(n, *row) for n, row in enumerate(rows, start=1)]
    return (newline.join(lines) + newline).encode("latin-1")


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def import_release(desk: Any, path: str, effective: date, *extra: str) -> Any:
    command = ("codes", "import", "icd10cm", path, "--effective", effective.isoformat())
    return as_json(desk.consultant(*command, *extra, "--json"))


def checked(desk: Any, text: str) -> dict[str, dict[str, Any]]:
    result = as_json(run(desk, "codes", "extract", "-", "--json", stdin=text))
    return {code["code"]: code for code in result["codes"]}


# --- the command, as a user runs it -------------------------------------------------


def test_two_fiscal_years_imported_and_a_case_checked_by_its_date_of_service(
    desk: Any, tmp_path: Path
) -> None:
    fy2025 = write(tmp_path, "icd10cm_order_2025.txt", order_file(FY2025_ROWS))
    fy2026 = write(tmp_path, "icd10cm_order_2026.txt", order_file(FY2026_ROWS, newline="\n"))

    first = import_release(desk, fy2025, FY2025)
    second = import_release(desk, fy2026, FY2026)

    assert (first["release"], first["total"], first["compared_with"]) == ("2025", 5, None)
    assert (second["release"], second["effective_from"]) == ("2026", "2025-10-01")
    assert (second["added"], second["deleted"], second["redescribed"]) == (1, 1, 1)
    assert second["compared_with"] == "2024-10-01"
    before = checked(desk, "DOS 09/30/2025, dx M54.5, E11.A and R51.9")
    assert before["M54.5"]["status"] == VALID
    assert before["E11.A"]["status"] == NOT_YET_VALID
    assert before["E11.A"]["detail"] == "not yet valid: valid from 2025-10-01"
    assert before["R51.9"]["description"] == OLD_HEADACHE
    after = checked(desk, "Date of service: 2025-10-02. dx M54.5, E11.A and R51.9")
    assert after["M54.5"]["status"] == DELETED
    assert after["M54.5"]["detail"] == "deleted: valid for a date of service before 2025-10-01"
    assert after["E11.A"]["status"] == VALID
    assert after["R51.9"]["description"] == NEW_HEADACHE
    shown = run(desk, "codes", "extract", "-", stdin="DOS 10/02/2025 dx M54.5")
    assert shown.returncode == 0, shown.stderr
    assert "M54.5" in shown.stdout and DELETED in shown.stdout
    assert "in effect on 2025-10-02 (the date of service in the text)" in shown.stdout
    no_date = as_json(
        run(desk, "codes", "extract", "-", "--json", "--as-of", "2025-01-15", stdin="dx M54.5")
    )
    assert (no_date["checked_on"], no_date["date_of_service"]) == ("2025-01-15", None)
    assert no_date["codes"][0]["status"] == VALID


def test_codes_status_lists_the_releases_and_a_second_import_changes_nothing(
    desk: Any, tmp_path: Path
) -> None:
    fy2025 = write(tmp_path, "icd10cm_order_2025.txt", order_file(FY2025_ROWS))
    fy2026 = write(tmp_path, "icd10cm_order_2026.txt", order_file(FY2026_ROWS))
    import_release(desk, fy2026, FY2026)  # a newer release first: the order does not matter
    import_release(desk, fy2025, FY2025)
    listed = as_json(desk.consultant("codes", "status", "--json"))

    again = import_release(desk, fy2026, FY2026)

    assert again["already_loaded"] is True
    assert as_json(desk.consultant("codes", "status", "--json")) == listed
    [icd] = listed
    assert [
        (r["name"], r["effective_from"], r["effective_to"], r["count"], r["source"])
        for r in icd["releases"]
    ] == [
        ("2025", "2024-10-01", "2025-10-01", 5, "icd10cm_order_2025.txt"),
        ("2026", "2025-10-01", None, 5, "icd10cm_order_2026.txt"),
    ]
    text = desk.consultant("codes", "status")
    assert text.returncode == 0, text.stderr
    assert "2025       from 2024-10-01 to 2025-10-01" in text.stdout
    assert "2026       from 2025-10-01 onwards" in text.stdout


def test_the_zip_cms_publishes_is_read_for_its_order_file(desk: Any, tmp_path: Path) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as package:
        package.writestr("Code Descriptions/icd10cm-order-addenda-2026.txt", "not the file")
        package.writestr("Code Descriptions/icd10cm-order-2026.txt", order_file(FY2026_ROWS))
        package.writestr("README.txt", "ICD-10-CM FY2026")
    path = write(tmp_path, "icd10cm-CodesDescriptions-2026.zip", archive.getvalue())

    report = import_release(desk, path, FY2026)

    assert (report["release"], report["total"]) == ("2026", 5)
    assert checked(desk, "dx E11.A")["E11.A"]["status"] == VALID


def test_a_zip_without_an_order_file_is_refused(desk: Any, tmp_path: Path) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as package:
        package.writestr("icd10cm_tabular_2026.xml", "<ICD10CM.tabular/>")
    path = write(tmp_path, "icd10cm-table-index-2026.zip", archive.getvalue())

    result = desk.consultant("codes", "import", "icd10cm", path, "--effective", "2025-10-01")

    assert result.returncode == 1
    assert "exactly one icd10cm_order_YYYY.txt" in result.stderr
    assert "nothing was loaded" in result.stderr


MALFORMED = {
    "bad flag": (order_line(3, "E1165", True, "Hyperglycemia").replace(" 1 ", " 2 ", 1), "flag"),
    "short line": ("00003 E1165   1 Type 2 diabetes", "characters long"),
    "bad code": (order_line(3, "1E165", True, "Not a code"), "is not an ICD-10-CM code"),
}


@pytest.mark.parametrize("kind", MALFORMED)
def test_a_malformed_order_file_names_its_line_and_loads_nothing(
    desk: Any, tmp_path: Path, kind: str
) -> None:
    import_release(desk, write(tmp_path, "icd10cm_order_2025.txt", order_file(FY2025_ROWS)), FY2025)
    bad_line, reason = MALFORMED[kind]
    lines = order_file(FY2026_ROWS).decode().splitlines()
    lines[2] = bad_line
    path = write(tmp_path, "icd10cm_order_2026.txt", "\r\n".join(lines).encode())
    status_before = as_json(desk.consultant("codes", "status", "--json"))

    result = desk.consultant("codes", "import", "icd10cm", path, "--effective", "2025-10-01")

    assert result.returncode == 1
    assert "line 3:" in result.stderr and reason in result.stderr
    assert "nothing was loaded" in result.stderr
    assert as_json(desk.consultant("codes", "status", "--json")) == status_before
    assert checked(desk, "DOS 10/02/2025 dx M54.5")["M54.5"]["status"] == VALID


def test_effective_must_be_a_date(desk: Any, tmp_path: Path) -> None:
    path = write(tmp_path, "icd10cm_order_2026.txt", order_file(FY2026_ROWS))

    result = desk.consultant("codes", "import", "icd10cm", path, "--effective", "FY2026")

    assert result.returncode != 0
    assert "--effective 'FY2026' is not a date" in result.stderr


# --- the case lookup: date of service, else the day the case arrived -----------------


def case_with(session: Session, body: str, *, arrived: datetime) -> int:
    ticket = Ticket(subject="Coding question", requester="pat@clinic.example")
    session.add(ticket)
    session.flush()
    session.add(
        Message(
            ticket_id=ticket.id,
            direction="in",
            message_id=f"<{ticket.id}@clinic.example>",
            sender="pat@clinic.example",
            subject="Coding question",
            body_text=body,
            created_at=arrived,
        )
    )
    session.flush()
    assert ticket.id is not None
    return ticket.id


def load_both_years(session: Session) -> None:
    for rows, effective in ((FY2025_ROWS, FY2025), (FY2026_ROWS, FY2026)):
        records = parse_icd10cm_order(order_file(rows))
        load_release(session, ICD10CM, records, name=str(effective.year + 1), effective=effective,
                     source="test")  # fmt: skip


def test_a_case_is_checked_by_its_date_of_service_else_the_day_it_arrived(
    code_engine: Engine,
) -> None:
    october = datetime(2025, 10, 20, 9, 0, tzinfo=UTC)
    with Session(code_engine) as session:
        load_both_years(session)
        cases = {
            "before": case_with(session, "DOS 09/30/2025: dx M54.5, R51.9", arrived=october),
            "after": case_with(session, "seen on 10/2/25, dx M54.5 and R51.9", arrived=october),
            "arrived": case_with(
                session,
                "DOB 01/02/1950. dx M54.5, R51.9",
                arrived=datetime(2025, 9, 12, 9, 0, tzinfo=UTC),
            ),
        }
        attach_code_lookups(session, ticket_ids=list(cases.values()))
        session.commit()
        found = {
            (row.ticket_id, row.code): row for row in session.execute(select(CodeLookup)).scalars()
        }

    assert found[(cases["before"], "M54.5")].status == VALID
    assert found[(cases["before"], "R51.9")].description == OLD_HEADACHE
    assert found[(cases["after"], "M54.5")].status == DELETED
    assert "before 2025-10-01" in found[(cases["after"], "M54.5")].detail
    assert found[(cases["after"], "R51.9")].description == NEW_HEADACHE
    assert found[(cases["arrived"], "M54.5")].status == VALID  # arrived in September
    assert found[(cases["arrived"], "R51.9")].description == OLD_HEADACHE


def test_the_in_memory_catalog_follows_a_new_release(code_engine: Engine) -> None:
    with Session(code_engine) as session:
        records = parse_icd10cm_order(order_file(FY2026_ROWS))
        load_release(session, ICD10CM, records, name="2026", effective=FY2026, source="test")
        newest_only = cached_catalog(session)
        older = parse_icd10cm_order(order_file(FY2025_ROWS))
        load_release(session, ICD10CM, older, name="2025", effective=FY2025, source="test")
        both = cached_catalog(session)
        session.commit()

    september = date(2025, 9, 30)
    assert newest_only.status(ICD10CM, "R51.9", september).description == NEW_HEADACHE
    assert newest_only.status(ICD10CM, "M54.5", september).status == "unknown"
    assert both.status(ICD10CM, "R51.9", september).description == OLD_HEADACHE
    assert both.status(ICD10CM, "M54.5", september).status == VALID


def test_a_catalog_loaded_before_releases_were_kept_becomes_the_first_release(
    code_engine: Engine,
) -> None:
    from consultant.codes.store import load_codes

    with Session(code_engine) as session:
        load_codes(session, ICD10CM, "2024-10", parse_icd10cm_order(order_file(FY2025_ROWS)))
        records = parse_icd10cm_order(order_file(FY2026_ROWS))
        report = load_release(session, ICD10CM, records, name="2026", effective=FY2026,
                              source="test")  # fmt: skip
        session.commit()
        catalog = read_catalog(session)
        names = session.execute(select(CodeRelease.name).order_by(CodeRelease.effective_from))

        assert list(names.scalars()) == ["2024-10", "2026"]
    assert (report.added, report.deleted, report.redescribed) == (1, 1, 1)
    assert catalog.status(ICD10CM, "M54.5", date(2025, 10, 2)).status == DELETED


def test_a_corrected_file_for_the_same_date_replaces_that_release(code_engine: Engine) -> None:
    with Session(code_engine) as session:
        load_both_years(session)
        corrected = [row for row in FY2026_ROWS if row[0] != "E11A"] + [
            ("E1169", True, "Type 2 diabetes mellitus with other specified complication")
        ]
        records = parse_icd10cm_order(order_file(corrected))
        report = load_release(session, ICD10CM, records, name="2026 corrected",
                              effective=FY2026, source="test")  # fmt: skip
        session.commit()
        catalog = read_catalog(session)
        stored = set(session.execute(select(CatalogCode.code)).scalars())
        names = list(session.execute(select(CodeRelease.name)).scalars())

    assert (report.added, report.deleted, report.already_loaded) == (1, 1, False)
    assert "E11.A" not in stored and catalog.status(ICD10CM, "E11.A", FY2026).status == "unknown"
    assert catalog.status(ICD10CM, "E11.69", FY2026).status == VALID
    assert sorted(names) == ["2025", "2026 corrected"]


def test_revision_0005_goes_down_and_up_again(backend: str, tmp_path: Path) -> None:
    with empty_database_like(backend, tmp_path) as url:
        engine = make_engine(url)
        try:
            upgrade(engine, revision="0005")
            assert {"code_releases", "code_versions"} <= set(inspect(engine).get_table_names())
            assert downgrade(engine, revision="0004") == "0004"
            assert not {"code_releases", "code_versions"} & set(inspect(engine).get_table_names())
            upgrade(engine, revision="0005")
            with Session(engine) as session:
                load_both_years(session)
                session.commit()
                assert session.execute(select(func.count()).select_from(CodeRelease)).scalar() == 2
        finally:
            engine.dispose()


def test_a_release_differing_only_in_short_descriptions_starts_no_new_version(
    code_engine: Engine,
) -> None:
    without_short = [replace(r, short_description=None) for r in parse_icd10cm_order(
        order_file(FY2025_ROWS))]  # fmt: skip
    with Session(code_engine) as session:
        load_release(session, ICD10CM, without_short, name="2025", effective=FY2025, source="a")
        records = parse_icd10cm_order(order_file(FY2025_ROWS))
        report = load_release(session, ICD10CM, records, name="2026", effective=FY2026,
                              source="b")  # fmt: skip
        again = load_release(session, ICD10CM, without_short, name="2025", effective=FY2025,
                             source="a")  # fmt: skip
        session.commit()
        versions = session.execute(select(func.count()).select_from(CodeVersion)).scalar()

    assert (report.added, report.deleted, report.redescribed) == (0, 0, 0)
    assert again.already_loaded
    assert versions == len(FY2025_ROWS)


# --- the parser ----------------------------------------------------------------------


def test_the_parser_reads_cms_layout_into_dotted_codes() -> None:
    records = parse_icd10cm_order(order_file(FY2026_ROWS))

    assert [(r.code, r.billable) for r in records] == [
        ("E11", False),
        ("E11.9", True),
        ("E11.65", True),
        ("E11.A", True),
        ("R51.9", True),
    ]
    assert records[3].short_description == records[3].description[:60]


def test_a_code_listed_twice_is_refused() -> None:
    rows = [*FY2026_ROWS, FY2026_ROWS[1]]

    with pytest.raises(FileFormatError, match=r"line 6: code E11\.9 appears twice"):
        parse_icd10cm_order(order_file(rows))


# --- any order of loading gives the same history --------------------------------------

CODES = ["A00", "A00.0", "A00.1", "B99.8", "E11.9"]
release_content = st.dictionaries(
    st.sampled_from(CODES), st.sampled_from(["first wording", "second wording"]), max_size=5
)


def history(engine: Engine) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    with Session(engine) as session:
        versions = session.execute(
            select(CodeVersion.code, CodeVersion.valid_from, CodeVersion.valid_to,
                   CodeVersion.description)
        ).all()  # fmt: skip
        view = session.execute(
            select(CatalogCode.code, CatalogCode.description, CatalogCode.effective_date,
                   CatalogCode.deletion_date)
        ).all()  # fmt: skip
        return set(map(tuple, versions)), set(map(tuple, view))


def fresh_engine() -> Engine:
    engine = create_engine("sqlite://")
    SQLModel.metadata.create_all(engine)
    return engine


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    releases=st.lists(release_content.filter(bool), min_size=1, max_size=4),
    order=st.randoms(use_true_random=False),
)
def test_releases_loaded_in_any_order_and_again_give_the_same_history(
    releases: list[dict[str, str]], order: Any
) -> None:
    """Whatever order releases arrive in, and however often, the history is the one of
    loading them oldest first, once each."""
    dated = [(date(2020 + n, 10, 1), content) for n, content in enumerate(releases)]
    shuffled = dated + order.sample(dated, k=len(dated))
    order.shuffle(shuffled)
    engines = []
    for sequence in (dated, shuffled):
        engine = fresh_engine()
        with Session(engine) as session:
            for effective, content in sequence:
                records = [
                    parse_icd10cm_order(order_file([(code.replace(".", ""), True, text)]))[0]
                    for code, text in sorted(content.items())
                ]
                load_release(session, ICD10CM, records, name=str(effective.year),
                             effective=effective, source="test")  # fmt: skip
            session.commit()
        engines.append(engine)

    assert history(engines[0]) == history(engines[1])
    with Session(engines[1]) as session:
        catalog = read_catalog(session)
        count = session.execute(select(func.count()).select_from(CodeRelease)).scalar_one()
    assert count == len(dated)
    for effective, content in dated:
        for code in CODES:
            status = catalog.status(ICD10CM, code, effective)
            if code in content:
                assert (status.status, status.description) == (VALID, content[code])
            else:
                assert status.status != VALID


def test_codes_whose_second_character_is_a_letter_are_read() -> None:
    """CMS's releases hold codes such as QA0.01, outside the usual letter-digit shape."""
    [record] = parse_icd10cm_order(order_file([("QA001", True, "A code of a new chapter")]))

    assert (record.code, record.billable) == ("QA0.01", True)
