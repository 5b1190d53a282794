"""The catalog in the database: idempotent loads, the in-memory copy, full-text search.
Each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from consultant.codes.catalog import DELETED, HEADER, VALID
from consultant.codes.formats import HCPCS, ICD10CM
from consultant.codes.hcpcs import parse_hcpcs
from consultant.codes.ncci import parse_mue, parse_ptp
from consultant.codes.records import CodeRecord
from consultant.codes.search import search_codes
from consultant.codes.store import cached_catalog, load_codes, load_mue, load_ptp
from consultant.models import CatalogCode, CodeSystem
from tests.codes.conftest import AS_OF, hcpcs_fixture_bytes
from tests.codes.test_parsers import MUE_FIXTURE, PTP_FIXTURE


def count_codes(session: Session) -> int:
    return session.execute(select(func.count()).select_from(CatalogCode)).scalar_one()


def test_loading_twice_changes_nothing(
    code_engine: Engine, diabetes_records: list[CodeRecord]
) -> None:
    with Session(code_engine) as session:
        first = load_codes(session, ICD10CM, "2026-04", diabetes_records)
        session.commit()
        stamp = session.execute(select(CodeSystem.loaded_at)).scalar_one()
    with Session(code_engine) as session:
        second = load_codes(session, ICD10CM, "2026-04", diabetes_records)
        session.commit()
        assert session.execute(select(CodeSystem.loaded_at)).scalar_one() == stamp
        assert count_codes(session) == len(diabetes_records)
    assert (first.added, first.changed) == (len(diabetes_records), 0)
    assert (second.added, second.changed, second.unchanged) == (0, 0, len(diabetes_records))


def test_a_changed_record_is_updated_in_place(code_engine: Engine) -> None:
    records = parse_hcpcs(hcpcs_fixture_bytes())
    edited = [replace(r, description="Edited wording") if r.code == "J9990" else r for r in records]
    with Session(code_engine) as session:
        load_codes(session, HCPCS, "test", records)
        report = load_codes(session, HCPCS, "test", edited)
        session.commit()
        row = session.execute(select(CatalogCode).where(CatalogCode.code == "J9990")).scalar_one()
    assert (report.added, report.changed) == (0, 1)
    assert row.description == "Edited wording"


def test_in_memory_catalog_follows_loads(
    code_engine: Engine, diabetes_records: list[CodeRecord]
) -> None:
    with Session(code_engine) as session:
        assert not cached_catalog(session).loaded(ICD10CM)
        load_codes(session, ICD10CM, "2026-04", diabetes_records)
        load_codes(session, HCPCS, "test", parse_hcpcs(hcpcs_fixture_bytes()))
        load_ptp(session, "test", parse_ptp(PTP_FIXTURE.encode()))
        load_mue(session, "test", parse_mue(MUE_FIXTURE.encode()))
        session.commit()
        catalog = cached_catalog(session)
        assert cached_catalog(session) is catalog  # nothing changed: no second read
    assert catalog.status(ICD10CM, "E11.9", AS_OF).status == VALID
    assert catalog.status(ICD10CM, "E11", AS_OF).status == HEADER
    assert catalog.status(HCPCS, "G9990", AS_OF).status == DELETED
    assert catalog.modifiers["LT"].startswith("Left side")
    assert catalog.active_edits("97530", "97140", AS_OF)
    assert catalog.mue["97110"].max_units == 6


def test_search_ranks_descriptions_and_reads_notes(
    code_engine: Engine, diabetes_records: list[CodeRecord]
) -> None:
    with Session(code_engine) as session:
        assert search_codes(session, "diabetes") == []  # nothing loaded yet
        load_codes(session, ICD10CM, "2026-04", diabetes_records)
        load_codes(session, HCPCS, "test", parse_hcpcs(hcpcs_fixture_bytes()))
        session.commit()
        ketoacidosis = search_codes(session, "type 2 diabetes ketoacidosis")
        from_notes = search_codes(session, "insulin secretory defect")
        drugs = search_codes(session, "injection", system=HCPCS)
    assert ketoacidosis[0].code.startswith("E11.1")
    assert all(hit.code.startswith("E11.1") for hit in ketoacidosis)
    assert "E11" in [hit.code for hit in from_notes]
    assert {hit.code for hit in drugs} == {"J9990", "J1100"}
