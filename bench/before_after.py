"""The at-risk queue and word search, before and after a change, side by side on one
million-ticket PostgreSQL database.

`python bench/before_after.py --before REV [--tickets 1000000] [--calls 20]` fills a
scratch database as `bench/web_bench.py` does, then times `tickets.list_tickets` (the
at-risk view, 51 rows) and `search.search_cases` for a lead and for a coder, as they are
in the working tree and as they were at git revision REV (read with `git show`), taking
turns, after 3 warm-ups: p50 and p95 in ms. The two versions run against the same rows
in the same process, so the machine's load falls on both alike.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlmodel import Session, select

from bench import web_bench
from bench.machine import heading
from consultant import config, db, migrate, search, tickets
from consultant.db import session_scope
from consultant.models import Coder, utcnow
from tests.servers.postgres import scratch_database

WORDS = ("modifier", "knee injection", "onasemnogene", "zolgensma", "Whitfield")


def module_at(revision: str, path: str, name: str, folder: Path) -> ModuleType:
    """``path`` as it was at ``revision``, imported as ``name``."""
    source = subprocess.run(
        ["git", "show", f"{revision}:{path}"], check=True, capture_output=True, text=True
    ).stdout
    file = folder / f"{name}.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def timed(call: Callable[[Session], Any], calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        with session_scope() as session:
            began = time.perf_counter()
            call(session)
            times.append((time.perf_counter() - began) * 1000)
    return times


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(0.95 * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--before", required=True, help="the git revision to compare with")
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, scratch_database("cc_bench_ab") as url:
        old_tickets = module_at(
            args.before, "consultant/tickets.py", "tickets_before", Path(folder)
        )
        old_search = module_at(args.before, "consultant/search.py", "search_before", Path(folder))
        os.environ["CONSULTANT_DATABASE_URL"] = url
        config.get_settings.cache_clear()
        db.reset_engine()
        migrate.upgrade(db.get_engine())
        web_bench.make_coder(web_bench.CODER)
        web_bench.make_coder(web_bench.LEAD, role="lead")
        began = time.perf_counter()
        web_bench.fill(args.tickets)
        filled = time.perf_counter() - began
        with session_scope() as session:
            coder_id = session.exec(select(Coder.id).where(Coder.email == web_bench.CODER)).one()
        cases: dict[str, tuple[Callable[..., Any], ModuleType, ModuleType]] = {
            "at-risk queue (lead)": (
                lambda m: lambda s: m.list_tickets(s, now=utcnow(), sla="at-risk", limit=51),
                tickets,
                old_tickets,
            )
        }
        for words in WORDS:
            for who, scope in (("lead", None), ("coder", coder_id)):
                cases[f"search {words!r} ({who})"] = (
                    lambda m, w=words, c=scope: lambda s: m.search_cases(s, w, coder_id=c),
                    search,
                    old_search,
                )
        rows = []
        for name, (make, after, before) in cases.items():
            timed(make(after), 3), timed(make(before), 3)  # warm-ups
            results: dict[str, list[float]] = {"before": [], "after": []}
            for _ in range(args.calls):  # taking turns, so both see the same load
                results["before"] += timed(make(before), 1)
                results["after"] += timed(make(after), 1)
            rows.append((name, results))
        db.reset_engine()
    print(f"\n{heading()}\n\n{args.tickets} tickets, filled in {filled / 60:.1f} min; "
          f"before: {args.before}; {args.calls} calls each.\n")  # fmt: skip
    print("| | before p50 | before p95 | after p50 | after p95 |\n|---|---:|---:|---:|---:|")
    for name, results in rows:
        b, a = results["before"], results["after"]
        print(
            f"| {name} | {statistics.median(b):.1f} | {p95(b):.1f} | "
            f"{statistics.median(a):.1f} | {p95(a):.1f} |"
        )


if __name__ == "__main__":
    main()
