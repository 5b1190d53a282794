"""Benchmark yearly ICD-10-CM releases: importing a full-size order file, and what keeping
two releases costs the per-case check.

Run it with ``python bench/code_releases_bench.py``. It writes the bundled ICD-10-CM
release as CMS's order file (about 98,000 lines), and a second fiscal year made from it
(300 codes deleted, 300 added, 300 re-described), then on a fresh SQLite file and a
fresh PostgreSQL database times ``consultant codes import icd10cm``'s work: the first
release, the next one, and the next one again (which must write nothing). It then times
extraction + validation of the labeled cases against the in-memory catalog with one
release and with both, and the date-of-service scan alone.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.machine import heading  # noqa: E402
from consultant.codes.analysis import analyse  # noqa: E402
from consultant.codes.catalog import Catalog  # noqa: E402
from consultant.codes.formats import ICD10CM  # noqa: E402
from consultant.codes.icd10cm import iter_icd10cm  # noqa: E402
from consultant.codes.icd10cm_order import parse_icd10cm_order  # noqa: E402
from consultant.codes.records import CodeRecord  # noqa: E402
from consultant.codes.releases import load_release  # noqa: E402
from consultant.codes.service_date import date_of_service  # noqa: E402
from consultant.codes.store import read_catalog  # noqa: E402
from consultant.db import make_engine  # noqa: E402
from consultant.migrate import upgrade  # noqa: E402
from tests.servers.postgres import scratch_engine  # noqa: E402

CASES = REPO / "tests" / "codes" / "data" / "labeled_cases.jsonl"
FY_THIS, FY_NEXT = date(2025, 10, 1), date(2026, 10, 1)
CHANGED = 300


def order_file(records: list[CodeRecord]) -> bytes:
    """The records in CMS's fixed-width order-file layout, CRLF line ends."""
    lines = [
        f"{n:05d} {r.code.replace('.', ''):<7} {int(r.billable)} "
        f"{(r.short_description or r.description)[:60]:<60} {r.description}"
        for n, r in enumerate(records, start=1)
    ]
    return ("\r\n".join(lines) + "\r\n").encode("latin-1", errors="replace")


def next_year(records: list[CodeRecord]) -> list[CodeRecord]:
    """A later release: some billable codes deleted, some new, some re-described."""
    billable = [r for r in records if r.billable]
    deleted = {r.code for r in billable[::97][:CHANGED]}
    redescribed = {r.code for r in billable[13::97][:CHANGED]}
    kept = [
        replace(r, description=r.description + ", revised") if r.code in redescribed else r
        for r in records
        if r.code not in deleted
    ]
    added = [
        CodeRecord(ICD10CM, f"{r.code[:3]}.Z{n % 10}", f"New code {n} under {r.code[:3]}")
        for n, r in enumerate(billable[7::211][:CHANGED])
    ]
    known = {r.code for r in kept}
    new = {r.code: r for r in added if r.code not in known}
    return kept + list(new.values())


def timed_load(engine: Engine, data: bytes, effective: date) -> tuple[float, str]:
    start = time.perf_counter()
    records = parse_icd10cm_order(data)
    with Session(engine) as session:
        report = load_release(
            session, ICD10CM, records, name=str(effective.year + 1), effective=effective,
            source="bench",
        )  # fmt: skip
        session.commit()
    return time.perf_counter() - start, report.summary()


def per_case_ms(catalog: Catalog, texts: list[str], rounds: int) -> float:
    samples = [
        timed(lambda t=t: analyse([("body", t)], catalog, FY_NEXT))
        for _ in range(rounds)
        for t in texts
    ]
    return statistics.median(samples)


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    print("writing the order files ...", file=sys.stderr)
    this_year = [r for r in iter_icd10cm()]
    files = {FY_THIS: order_file(this_year), FY_NEXT: order_file(next_year(this_year))}
    lines = files[FY_THIS].count(b"\n")
    texts = [json.loads(line)["text"] for line in CASES.read_text().splitlines()]
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as folder, scratch_engine("cc_bench_rel") as postgres:
        sqlite = make_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
        catalogs: dict[str, Catalog] = {}
        for name, engine in (("SQLite", sqlite), ("PostgreSQL", postgres)):
            upgrade(engine)
            for label, effective in (
                ("first", FY_THIS),
                ("next", FY_NEXT),
                ("next again", FY_NEXT),
            ):
                print(f"{name}: importing the {label} release ...", file=sys.stderr)
                seconds, summary = timed_load(engine, files[effective], effective)
                rows.append(
                    (name, f"{label} release ({summary.split(';')[-1].strip()})", f"{seconds:.1f}")
                )
            if name == "SQLite":
                with Session(engine) as session:
                    start = time.perf_counter()
                    catalogs["both"] = read_catalog(session)
                    rows.append((name, "read the catalog into memory (two releases)",
                                 f"{time.perf_counter() - start:.1f}"))  # fmt: skip
        sqlite.dispose()
    one = Catalog()
    one.add_codes(ICD10CM, "one", this_year)
    one.index_headings()
    print(f"\n{heading()}\n")
    print(f"Order file: {lines} lines, {len(files[FY_THIS]) // 1024} KiB.\n")
    print("| import (codes import icd10cm's work) | database | seconds |")
    print("|---|---|---:|")
    for name, label, seconds in rows:
        print(f"| {label} | {name} | {seconds} |")
    scan = statistics.median(timed(lambda t=t: date_of_service([t])) for t in texts)
    print("\n| per case (labeled cases, median) | ms |")
    print("|---|---:|")
    for label, catalog in (("one release", one), ("two releases", catalogs["both"])):
        print(f"| extraction + validation, {label} | {per_case_ms(catalog, texts, 10):.3f} |")
    print(f"| of which the date-of-service scan | {scan:.4f} |")


if __name__ == "__main__":
    main()
