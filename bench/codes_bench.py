"""Benchmark the code path: extraction + validation per case, and catalog search.

Run it with ``python bench/codes_bench.py`` (``make bench`` where the Makefile has it).
It loads the full ICD-10-CM release (and CMS's 2020 HCPCS file when ``../shared`` has it)
into a fresh SQLite file and a fresh PostgreSQL database, then measures:

* extraction + validation of each case in ``tests/codes/data/labeled_cases.jsonl``
  against the in-memory catalog (the path every case email takes);
* ranked full-text search over the catalog on each database.

Targets: extraction + validation under 1 ms median for a typical case; search p95 under
10 ms. The results print as a Markdown table to paste into ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from sqlalchemy import Engine, text
from sqlmodel import Session

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.machine import heading  # noqa: E402
from consultant.codes.analysis import analyse  # noqa: E402
from consultant.codes.catalog import Catalog  # noqa: E402
from consultant.codes.formats import HCPCS, ICD10CM  # noqa: E402
from consultant.codes.hcpcs import parse_hcpcs  # noqa: E402
from consultant.codes.icd10cm import icd10cm_release, iter_icd10cm  # noqa: E402
from consultant.codes.records import CodeRecord  # noqa: E402
from consultant.codes.search import search_codes  # noqa: E402
from consultant.codes.store import load_codes, read_catalog  # noqa: E402
from consultant.db import make_engine  # noqa: E402
from consultant.migrate import upgrade  # noqa: E402
from tests.servers.postgres import scratch_engine  # noqa: E402

CASES = REPO / "tests" / "codes" / "data" / "labeled_cases.jsonl"
HCPCS_FILE = REPO.parent / "shared" / "data" / "hcpcs-2020" / "HCPC2020_ANWEB_w_disclaimer.txt"
QUERIES = [
    "type 2 diabetes with hyperglycemia",
    "home infusion",
    "fracture of neck of femur",
    "essential hypertension",
    "chronic kidney disease stage 4",
    "pneumonia",
    "major depressive disorder recurrent",
    "sepsis",
    "pressure ulcer of sacral region",
    "atrial fibrillation",
    "covid",
    "low back pain",
    "asthma exacerbation",
    "breast cancer",
    "heart failure",
    "encounter for screening colonoscopy",
    "opioid dependence",
    "osteoarthritis of knee",
    "migraine without aura",
    "urinary tract infection",
    "dexamethasone injection",
    "wheelchair",
    "insulin",
    "long term use of anticoagulants",
    "sprain of ankle",
]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


def load_catalog(engine: Engine, icd: list[CodeRecord], hcpcs: list[CodeRecord]) -> float:
    upgrade(engine)
    start = time.perf_counter()
    with Session(engine) as session:
        load_codes(session, ICD10CM, icd10cm_release(), icd)
        if hcpcs:
            load_codes(session, HCPCS, "2020", hcpcs)
        session.commit()
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    return time.perf_counter() - start


def bench_extraction(catalog: Catalog, rounds: int) -> dict[str, dict[str, float]]:
    cases = [json.loads(line)["text"] for line in CASES.read_text().splitlines()]
    groups = {
        "all cases": cases,
        "case emails (multi-line)": [c for c in cases if "\n" in c],
        "one-sentence cases": [c for c in cases if "\n" not in c],
        "long emails (8 cases joined)": [
            "\n\n".join(cases[i : i + 8]) for i in range(0, len(cases) - 7, 8)
        ],
    }
    today = date.today()
    results: dict[str, dict[str, float]] = {}
    for name, texts in groups.items():
        samples = [
            timed(lambda t=t: analyse([("body", t)], catalog, today))
            for _ in range(rounds)
            for t in texts
        ]
        results[name] = {
            "cases": len(texts),
            "chars": statistics.mean(len(t) for t in texts),
            "median": statistics.median(samples),
            "p99": percentile(samples, 0.99),
        }
    return results


def bench_search(engine: Engine, rounds: int) -> dict[str, float]:
    with Session(engine) as session:
        for query in QUERIES:  # warm the caches once
            search_codes(session, query)
        samples = [
            timed(lambda q=query: search_codes(session, q))
            for _ in range(rounds)
            for query in QUERIES
        ]
        hits = {query: len(search_codes(session, query)) for query in QUERIES}
    return {
        "p50": percentile(samples, 0.50),
        "p95": percentile(samples, 0.95),
        "max": max(samples),
        "queries": len(samples),
        "empty": sum(1 for n in hits.values() if n == 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=20, help="passes over the cases/queries")
    args = parser.parse_args()

    print("reading ICD-10-CM and HCPCS ...", file=sys.stderr)
    icd = list(iter_icd10cm())
    hcpcs = parse_hcpcs(HCPCS_FILE.read_bytes()) if HCPCS_FILE.exists() else []
    with tempfile.TemporaryDirectory() as folder, scratch_engine("cc_bench") as postgres:
        sqlite = make_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
        engines = {"SQLite": sqlite, "PostgreSQL": postgres}
        load_seconds = {}
        for name, engine in engines.items():
            print(f"loading into {name} ...", file=sys.stderr)
            load_seconds[name] = load_catalog(engine, icd, hcpcs)
        with Session(sqlite) as session:
            catalog_start = time.perf_counter()
            catalog = read_catalog(session)
            catalog_seconds = time.perf_counter() - catalog_start
        print("extraction + validation ...", file=sys.stderr)
        extraction = bench_extraction(catalog, args.rounds)
        print("search ...", file=sys.stderr)
        search = {name: bench_search(engine, args.rounds) for name, engine in engines.items()}
        with postgres.connect() as connection:
            postgres_version = connection.execute(text("SHOW server_version")).scalar()
        sqlite.dispose()

    codes = len(icd) + len(hcpcs)
    print(f"\n{heading()}\n")
    print(
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"PostgreSQL {postgres_version}. Catalog: {len(icd)} ICD-10-CM codes "
        f"({icd10cm_release()}) + {len(hcpcs)} HCPCS 2020 codes and modifiers = {codes} rows; "
        f"{args.rounds} rounds.\n"
    )
    print(
        "| extraction + validation (in-memory catalog) | cases | mean chars | median ms | p99 ms |"
    )
    print("|---|---:|---:|---:|---:|")
    for name, row in extraction.items():
        print(
            f"| {name} | {row['cases']:.0f} | {row['chars']:.0f} | "
            f"{row['median']:.3f} | {row['p99']:.3f} |"
        )
    print("\n| full-text search | SQLite | PostgreSQL |")
    print("|---|---:|---:|")
    for key, label in (("p50", "p50 ms"), ("p95", "p95 ms"), ("max", "max ms")):
        print(f"| {label} | {search['SQLite'][key]:.2f} | {search['PostgreSQL'][key]:.2f} |")
    print(
        f"| queries timed (empty results) | {search['SQLite']['queries']:.0f} "
        f"({search['SQLite']['empty']:.0f}) | {search['PostgreSQL']['queries']:.0f} "
        f"({search['PostgreSQL']['empty']:.0f}) |"
    )
    print(
        f"| first load of the catalog, s | {load_seconds['SQLite']:.1f} | "
        f"{load_seconds['PostgreSQL']:.1f} |"
    )
    print(f"\nReading the catalog into memory: {catalog_seconds:.2f} s (once per process).")


if __name__ == "__main__":
    main()
