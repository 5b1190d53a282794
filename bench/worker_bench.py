"""Benchmark a worker's three jobs, one process, no broker: what each costs per email.

Run it with ``python bench/worker_bench.py [--emails 1000] [--rounds 3]``. On a fresh
PostgreSQL database (``CONSULTANT_TEST_POSTGRES_URL``, default the local server) holding
the ICD-10-CM catalog, each round stores the emails (not timed) and then times, in the
batches the Celery tasks carry:

- **process**: ``process_inbound_emails`` — parse, classify, thread, account, ticket,
  charge, message, acknowledgement;
- **look up codes**: ``look_up_codes`` for the new tickets;
- **send**: ``send_outbox_emails`` to a local SMTP sink.

Wall and CPU milliseconds per email are reported (median over the rounds); the
difference is time spent waiting, mostly on the database. The end-to-end benchmark
(intake_bench.py) runs the same code under Celery beside the poller, Dovecot and the
sink, on the same two cores. Prints a Markdown table for ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.case_emails import CLINIC_DOMAINS, DESK_ADDRESS, generate  # noqa: E402
from bench.intake_bench import DESK_TABLES  # noqa: E402
from consultant import config, db  # noqa: E402
from consultant.codes.lookup import look_up_codes  # noqa: E402
from consultant.codes.store import warm_catalog  # noqa: E402
from consultant.db import session_scope  # noqa: E402
from consultant.dispatch import IDS_PER_TASK  # noqa: E402
from consultant.inbound import Arrival, store_arrivals  # noqa: E402
from consultant.outbox import send_outbox_emails  # noqa: E402
from consultant.pipeline import process_inbound_emails  # noqa: E402
from tests.servers.postgres import scratch_database  # noqa: E402
from tests.servers.smtp_sink import SmtpSink  # noqa: E402

JOBS = ("process", "look up codes", "send")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    emails = generate(args.emails)
    timings: dict[str, list[tuple[float, float]]] = {job: [] for job in JOBS}
    with (
        scratch_database("cc_worker_bench") as url,
        SmtpSink() as sink,
        tempfile.TemporaryDirectory() as data_dir,
    ):
        prepare(url, sink, Path(data_dir))
        for _ in range(args.rounds):
            for job, timing in run_round(emails, sink).items():
                timings[job].append(timing)
            empty_desk_tables()
        db.reset_engine()
    report(args, emails, timings)


def prepare(url: str, sink: SmtpSink, data_dir: Path) -> None:
    os.environ.update(
        CONSULTANT_DATABASE_URL=url,
        CONSULTANT_SMTP_URL=sink.url,
        CONSULTANT_DATA_DIR=str(data_dir),
        CONSULTANT_DESK_ADDRESS=DESK_ADDRESS,
        CONSULTANT_BROKER_URL="",
    )
    config.get_settings.cache_clear()
    db.reset_engine()
    desk = [sys.executable, "-m", "consultant"]
    quiet = {"check": True, "stdout": subprocess.DEVNULL, "cwd": REPO}
    subprocess.run([*desk, "db", "init"], **quiet)  # type: ignore[call-overload]
    subprocess.run([*desk, "codes", "load", "icd10cm"], **quiet)  # type: ignore[call-overload]
    for domain in CLINIC_DOMAINS:
        add = [*desk, "accounts", "add", f"@{domain}", "--plan", "unlimited"]
        subprocess.run(add, **quiet)  # type: ignore[call-overload]
    warm_catalog()


def run_round(emails: list[bytes], sink: SmtpSink) -> dict[str, tuple[float, float]]:
    """(wall, CPU) milliseconds per email of each job."""
    with session_scope() as session:
        inbound_ids = store_arrivals(session, [Arrival(raw=raw, source="imap") for raw in emails])
    outcomes, process = timed(lambda: in_batches(process_inbound_emails, inbound_ids))
    tickets = [outcome.ticket_id for outcome in outcomes if outcome.ticket_id is not None]
    outbox = [row_id for outcome in outcomes for row_id in outcome.outbox_ids]
    _, lookups = timed(lambda: in_batches(look_up_codes, tickets))
    _, send = timed(lambda: in_batches(lambda ids: send_outbox_emails(outbox_ids=ids), outbox))
    sink.wait_for(len(emails), timeout=60)
    sink.clear()
    count = len(emails)
    return {
        job: (wall / count * 1000, cpu / count * 1000)
        for job, (wall, cpu) in zip(JOBS, (process, lookups, send), strict=True)
    }


def in_batches(job: Callable[[list[int]], Any], ids: list[int]) -> list[Any]:
    """Run ``job`` over ``ids`` in the batches a task carries; the results, concatenated."""
    results: list[Any] = []
    for start in range(0, len(ids), IDS_PER_TASK):
        result = job(ids[start : start + IDS_PER_TASK])
        results.extend(result if isinstance(result, list) else [result])
    return results


def timed(job: Callable[[], list[Any]]) -> tuple[list[Any], tuple[float, float]]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = job()
    return result, (time.perf_counter() - wall, time.process_time() - cpu)


def empty_desk_tables() -> None:
    with session_scope() as session:
        session.execute(text(f"TRUNCATE {DESK_TABLES} RESTART IDENTITY CASCADE"))


def report(
    args: argparse.Namespace,
    emails: list[bytes],
    timings: dict[str, list[tuple[float, float]]],
) -> None:
    now = datetime.now(UTC)
    print(f"### {now:%Y-%m-%d %H:%M} UTC — {platform.machine()}, {os.cpu_count()} cores\n")
    print(
        f"{len(emails)} case emails, {args.rounds} rounds, batches of {IDS_PER_TASK}, "
        f"PostgreSQL, Python {platform.python_version()}.\n"
    )
    print("| job | wall ms per email (median) | CPU ms per email (median) |")
    print("|---|---:|---:|")
    for job in JOBS:
        wall = statistics.median(w for w, _ in timings[job])
        cpu = statistics.median(c for _, c in timings[job])
        print(f"| {job} | {wall:.2f} | {cpu:.2f} |")
    total_wall = sum(statistics.median(w for w, _ in timings[job]) for job in JOBS)
    print(f"| all three | {total_wall:.2f} | |")


if __name__ == "__main__":
    main()
