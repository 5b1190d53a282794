"""Benchmark the outbox: emails per second from queued rows to a local SMTP sink.

Run it with ``python bench/outbox_bench.py`` (or ``make bench``). For SQLite and for
PostgreSQL it queues acknowledgements for N cases (not timed), then times sending them
all (claim, deliver over SMTP, mark sent), once keeping the relay connection open between
emails and once opening a new connection per email, alternating the two over several
rounds so that both see the same machine load. Prints a Markdown table for
``bench/README.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from consultant import config, db  # noqa: E402
from consultant.db import session_scope  # noqa: E402
from consultant.inbound import Arrival, store_arrival  # noqa: E402
from consultant.mail import smtp  # noqa: E402
from consultant.models import Account  # noqa: E402
from consultant.outbox import due_outbox_ids, send_outbox_emails  # noqa: E402
from consultant.pipeline import process_inbound  # noqa: E402
from consultant.quota import plan_named  # noqa: E402
from tests.cases import case_email  # noqa: E402
from tests.conftest import empty_tables  # noqa: E402
from tests.servers.postgres import scratch_database  # noqa: E402
from tests.servers.smtp_sink import SmtpSink  # noqa: E402


def point_desk_at(url: str, sink: SmtpSink, data_dir: Path) -> None:
    os.environ.update(
        CONSULTANT_DATABASE_URL=url,
        CONSULTANT_SMTP_URL=sink.url,
        CONSULTANT_DATA_DIR=str(data_dir),
        CONSULTANT_DESK_ADDRESS="desk@desk.example",
        CONSULTANT_BROKER_URL="",
    )
    config.get_settings.cache_clear()
    db.reset_engine()


def queue_acknowledgements(count: int) -> None:
    """``count`` processed cases from an unlimited account: ``count`` pending emails."""
    with session_scope() as session:
        session.add(Account(address="@clinic.example", plan_id=plan_named(session, "unlimited").id))
    for n in range(count):
        raw = case_email(f"biller{n}@clinic.example")
        with session_scope() as session:
            inbound_id = store_arrival(session, Arrival(raw=raw, source="smtp"))
        assert inbound_id is not None
        process_inbound(inbound_id=inbound_id)


def time_sending(*, reuse: bool) -> float:
    """Seconds to send every due email: claimed a batch at a time, each delivered and marked."""
    smtp.IDLE_SECONDS = 20.0 if reuse else -1.0  # -1: every email finds its connection stale
    started = time.perf_counter()
    for result in send_outbox_emails(outbox_ids=due_outbox_ids(limit=100_000)):
        assert result.status == "sent"
    return time.perf_counter() - started


def measure(url: str, sink: SmtpSink, *, emails: int, rounds: int) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {"reuse": [], "reconnect": []}
    with tempfile.TemporaryDirectory() as data_dir:
        for _ in range(rounds):
            for mode in ("reuse", "reconnect"):
                empty_tables(url)
                point_desk_at(url, sink, Path(data_dir))
                queue_acknowledgements(emails)
                sink.clear()
                seconds = time_sending(reuse=mode == "reuse")
                assert len(sink.messages) == emails
                rates[mode].append(emails / seconds)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    results: dict[str, dict[str, list[float]]] = {}
    with SmtpSink() as sink, tempfile.TemporaryDirectory() as folder:
        results["SQLite"] = measure(
            f"sqlite:///{folder}/bench.db", sink, emails=args.emails, rounds=args.rounds
        )
        with scratch_database("cc_bench") as url:
            results["PostgreSQL"] = measure(url, sink, emails=args.emails, rounds=args.rounds)
            db.reset_engine()  # let the database be dropped

    print(f"Outbox → local SMTP sink, {args.emails} emails x {args.rounds} rounds per cell")
    print(
        f"{datetime.now(UTC):%Y-%m-%d}, {'this machine'}: "
        f"{os.cpu_count()} cores, Python {platform.python_version()}\n"
    )
    print(
        "| database | connection kept open (emails/s, median) | new connection per email | ratio |"
    )
    print("|---|---:|---:|---:|")
    for name, rates in results.items():
        reuse, reconnect = statistics.median(rates["reuse"]), statistics.median(rates["reconnect"])
        print(f"| {name} | {reuse:,.0f} | {reconnect:,.0f} | {reuse / reconnect:.2f}x |")


if __name__ == "__main__":
    main()
