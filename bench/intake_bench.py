"""Benchmark intake end to end: a mailbox of case emails → tickets → acknowledgements.

Run it with ``python bench/intake_bench.py`` (or ``make bench``). It starts a private
Dovecot, a private Redis, an SMTP sink and a fresh PostgreSQL database (the local server,
``CONSULTANT_TEST_POSTGRES_URL``), loads the ICD-10-CM catalog, registers the senders'
clinics on the unlimited plan, and starts two Celery worker processes. Then, side by side
in each round:

- **floor**: one process reads the same mailbox with imapclient (``BODY.PEEK[]`` in the
  poller's batch size) and parses every email with mail-parser — the least any desk must
  do per email;
- **end to end**: ``consultant poll`` is started on a folder holding the emails, with the
  workers warmed up; the clock stops when the sink has received one acknowledgement per
  email. Every email must end as exactly one ticket and one acknowledgement, or the round
  fails. A second clock stops when all work is done: the workers take code lookups last
  (workers/app.py), so they finish after the acknowledgements;
- **end to end, poller already running**: the same, for a desk that is up: the poller
  watches an empty folder, in IDLE, when the emails are moved into it with one UID MOVE;
  the clock runs from the MOVE. It leaves out the poller's start (about a second) and
  includes Dovecot's IDLE delay (below).

``--compare PATH`` runs the desk's processes from another checkout too (a git worktree of
an older commit, say), alternating with this one in every round, so that two versions
are compared under the same machine load.

Afterwards, with the desk idle and the poller in IDLE, single emails are appended one at
a time and the time from the end of the APPEND to the acknowledgement at the sink is
recorded (median, p90). Dovecot itself holds back IDLE notifications for 500 ms
(NOTIFY_DELAY_MSECS in its index-mailbox-check.c), which is part of that figure. Prints a
Markdown report for ``bench/README.md``.
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
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

import mailparser
import redis
from imapclient import IMAPClient
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.case_emails import CLINIC_DOMAINS, DESK_ADDRESS, generate  # noqa: E402
from tests.conftest import running_celery_worker  # noqa: E402
from tests.servers.dovecot import DovecotServer  # noqa: E402
from tests.servers.postgres import scratch_database  # noqa: E402
from tests.servers.redis_server import RedisServer  # noqa: E402
from tests.servers.smtp_sink import SmtpSink  # noqa: E402

USER, PASSWORD = "desk", "bench-password"
BATCH = 200  # the poller's default CONSULTANT_IMAP_BATCH_SIZE
DESK_TABLES = (
    "events, code_lookups, attachments, messages, outbox, quota_entries, tickets, "
    "inbound_emails, mailboxes"
)  # emptied between rounds; plans, accounts and the code catalog stay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument(
        "--threads", type=int, default=0, help="threads per worker (0: one prefork child each)"
    )
    parser.add_argument("--latency-samples", type=int, default=40)
    parser.add_argument(
        "--compare",
        type=Path,
        help="another checkout of the desk (e.g. a git worktree of an older commit), "
        "measured end to end in the same rounds, alternating with this one",
    )
    args = parser.parse_args()

    desks = {"this checkout": REPO, **({"compared": args.compare} if args.compare else {})}
    emails = generate(args.emails)
    floors: list[float] = []
    rates: dict[str, list[Rates]] = {name: [] for name in desks}
    running_rates: dict[str, list[Rates]] = {name: [] for name in desks}
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ccb")))
        folder.chmod(0o755)  # Dovecot's auth process runs as its own user and must get in
        dovecot = stack.enter_context(DovecotServer(folder / "dc", users={USER: PASSWORD}))
        redis = stack.enter_context(RedisServer())
        sink = stack.enter_context(SmtpSink())
        database = stack.enter_context(scratch_database("cc_bench"))
        env = desk_env(database, redis=redis, sink=sink, data_dir=folder / "var")
        prepare_database(env)
        workers = {"count": args.workers, "threads": args.threads, "logs": folder}
        for round_number in range(1, args.rounds + 1):
            for name, code in desks.items():
                mailbox = f"Round{round_number}-{len(floors)}-{code.name}"
                load_mailbox(dovecot, mailbox, emails)
                if name == "this checkout":
                    floors.append(measure_floor(dovecot, mailbox))
                load_mailbox(dovecot, f"{mailbox}-moved", emails)
                with celery_workers(env, code=code, **workers):
                    warm_up(dovecot, env, sink, code=code)
                    rate = measure_end_to_end(dovecot, mailbox, env, sink, code=code)
                    running = measure_running_desk(
                        dovecot, f"{mailbox}-moved", env, sink, code=code
                    )
                rates[name].append(rate)
                running_rates[name].append(running)
                print(
                    f"round {round_number}, {name}: {rate}, poller running {running}; "
                    f"floor {floors[-1]:.0f}/s"
                )
        with celery_workers(env, code=REPO, **workers):
            warm_up(dovecot, env, sink, code=REPO)
            latencies = measure_latency(dovecot, env, sink, samples=args.latency_samples)
    report(args, emails, floors, rates, running_rates, latencies)


# --- the desk under test ---------------------------------------------------------------


def desk_env(
    database: str, *, redis: RedisServer, sink: SmtpSink, data_dir: Path
) -> dict[str, str]:
    """The desk's environment. Its processes keep their bytecode cache, as an installed
    desk does: without it the poller compiles its modules anew at every start."""
    inherited = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {
        **inherited,
        "CONSULTANT_DATABASE_URL": database,
        "CONSULTANT_BROKER_URL": redis.url,
        "CONSULTANT_SMTP_URL": sink.url,
        "CONSULTANT_DESK_ADDRESS": DESK_ADDRESS,
        "CONSULTANT_DATA_DIR": str(data_dir),
        "CONSULTANT_IMAP_URL": "",
    }


def from_checkout(env: dict[str, str], code: Path) -> dict[str, Any]:
    """Popen arguments that run the desk's code from ``code`` (ahead of the installed one)."""
    return {"env": {**env, "PYTHONPATH": str(code)}, "cwd": code}


def consultant(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "consultant", *args],
        **from_checkout(env, REPO),
        check=True,
        stdout=subprocess.DEVNULL,
    )


def prepare_database(env: dict[str, str]) -> None:
    consultant(env, "db", "init")
    consultant(env, "codes", "load", "icd10cm")
    for domain in CLINIC_DOMAINS:
        consultant(env, "accounts", "add", f"@{domain}", "--plan", "unlimited")


def wait_until_idle(broker_url: str) -> None:
    """Until no task waits or runs: the code lookups trail the acknowledgements."""
    broker = redis.Redis.from_url(broker_url)
    while any(broker.llen(queue) for queue in ("intake", "codes", "mail")) or broker.hlen(
        "unacked"
    ):
        time.sleep(0.01)
    broker.close()


def empty_desk_tables(database: str) -> None:
    engine = create_engine(database)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {DESK_TABLES} RESTART IDENTITY CASCADE"))
    engine.dispose()


@contextmanager
def celery_workers(
    env: dict[str, str], *, code: Path, count: int, threads: int, logs: Path
) -> Iterator[None]:
    """``count`` worker processes on all three queues: each with one prefork child, or
    with ``threads`` threads (which overlap their waits on the database and the relay)."""
    pool = ["--pool", "threads", "--concurrency", str(threads)] if threads else ["-c", "1"]
    with ExitStack() as workers:
        for n in range(count):
            options = [*pool, "-n", f"bench{n}@%h"]
            workers.enter_context(
                running_celery_worker(env, logs / f"worker{n}.log", pool=options, code=code)
            )
        yield


@contextmanager
def poller(
    env: dict[str, str], mailbox_url: str, *, code: Path
) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "consultant", "poll"],
        **from_checkout({**env, "CONSULTANT_IMAP_URL": mailbox_url}, code),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


# --- what is measured ------------------------------------------------------------------


def warm_up(dovecot: DovecotServer, env: dict[str, str], sink: SmtpSink, *, code: Path) -> None:
    """A few emails end to end first, as a running desk has already done: each worker reads
    the code catalog into memory once (about a second) and opens its connections. Leaves
    the desk's tables and the sink empty."""
    emails = generate(20, seed=3)
    folder = f"Warmup-{time.monotonic_ns()}"
    load_mailbox(dovecot, folder, emails)
    empty_desk_tables(env["CONSULTANT_DATABASE_URL"])
    sink.clear()
    with poller(env, dovecot.url(USER, folder), code=code):
        sink.wait_for(len(emails), timeout=120)
    wait_until_idle(env["CONSULTANT_BROKER_URL"])
    empty_desk_tables(env["CONSULTANT_DATABASE_URL"])
    sink.clear()


def load_mailbox(dovecot: DovecotServer, mailbox: str, emails: list[bytes]) -> None:
    with dovecot.client(USER) as imap:
        imap.create_folder(mailbox)
    for start in range(0, len(emails), 250):
        dovecot.append_many(USER, emails[start : start + 250], folder=mailbox)


def measure_floor(dovecot: DovecotServer, mailbox: str) -> float:
    """Emails/s for one process to fetch the folder and parse every email."""
    started = time.perf_counter()
    with IMAPClient(dovecot.host, port=dovecot.port, ssl=False) as imap:
        imap.login(USER, PASSWORD)
        imap.select_folder(mailbox, readonly=True)
        uids = imap.search(["ALL"])
        for start in range(0, len(uids), BATCH):
            fetched = imap.fetch(uids[start : start + BATCH], [b"BODY.PEEK[]"])
            for data in fetched.values():
                mailparser.parse_from_bytes(data[b"BODY[]"])
    return len(uids) / (time.perf_counter() - started)


@dataclass(frozen=True)
class Rates:
    """Emails/s of one run: until the last acknowledgement, and until all work is done."""

    acknowledged: float
    done: float

    def __str__(self) -> str:
        return f"{self.acknowledged:.0f}/s ({self.done:.0f}/s all done)"


def measure_end_to_end(
    dovecot: DovecotServer, mailbox: str, env: dict[str, str], sink: SmtpSink, *, code: Path
) -> Rates:
    """Emails/s from starting the poller to the last acknowledgement at the sink."""
    count = emails_in(dovecot, mailbox)
    started = time.perf_counter()
    with poller(env, dovecot.url(USER, mailbox), code=code):
        rates = measure_until_done(env, sink, count=count, started=started)
    settle(env, sink, count=count)
    return rates


def measure_until_done(env: dict[str, str], sink: SmtpSink, *, count: int, started: float) -> Rates:
    """Rates from ``started`` to the ``count``-th acknowledgement and to an idle desk."""
    sink.wait_for(count, timeout=600)
    acknowledged = time.perf_counter() - started
    wait_until_idle(env["CONSULTANT_BROKER_URL"])
    return Rates(acknowledged=count / acknowledged, done=count / (time.perf_counter() - started))


def measure_running_desk(
    dovecot: DovecotServer, mailbox: str, env: dict[str, str], sink: SmtpSink, *, code: Path
) -> Rates:
    """Emails/s for a desk whose poller is already running: the emails are moved into the
    folder it watches with one UID MOVE, and the clock runs from the MOVE to the last
    acknowledgement. This leaves out the poller's start and counts Dovecot's IDLE delay."""
    watched = f"{mailbox}-watched"
    with dovecot.client(USER) as imap:
        imap.create_folder(watched)
    with poller(env, dovecot.url(USER, watched), code=code), dovecot.client(USER) as imap:
        time.sleep(3)  # started, caught up with the empty folder and in IDLE
        imap.select_folder(mailbox)
        uids = imap.search(["ALL"])
        started = time.perf_counter()
        imap.move(uids, watched)
        rates = measure_until_done(env, sink, count=len(uids), started=started)
    settle(env, sink, count=len(uids))
    return rates


def settle(env: dict[str, str], sink: SmtpSink, *, count: int) -> None:
    """Check the run, then leave the desk's tables and the sink empty for the next."""
    database = env["CONSULTANT_DATABASE_URL"]
    check_exactly_once(database, sink, count=count)
    wait_until_idle(env["CONSULTANT_BROKER_URL"])
    empty_desk_tables(database)
    sink.clear()


def emails_in(dovecot: DovecotServer, mailbox: str) -> int:
    with dovecot.client(USER) as imap:
        return int(imap.select_folder(mailbox, readonly=True)[b"EXISTS"])


def check_exactly_once(database: str, sink: SmtpSink, *, count: int) -> None:
    time.sleep(2)  # a duplicate would arrive now
    answered = [_header(received.raw, "In-Reply-To") for received in sink.messages]
    engine = create_engine(database)
    with engine.connect() as connection:
        tickets = connection.execute(text("SELECT count(*) FROM tickets")).scalar_one()
    engine.dispose()
    if len(answered) != count or len(set(answered)) != count or tickets != count:
        raise SystemExit(
            f"not exactly once: {tickets} tickets, {len(answered)} acks "
            f"for {len(set(answered))} emails, {count} sent"
        )


def measure_latency(
    dovecot: DovecotServer, env: dict[str, str], sink: SmtpSink, *, samples: int
) -> list[float]:
    """Seconds from each email's APPEND to its acknowledgement, one email at a time."""
    latencies = []
    emails = generate(samples, seed=11)
    with dovecot.client(USER) as imap:
        imap.create_folder("Live")
    with poller(env, dovecot.url(USER, "Live"), code=REPO), dovecot.client(USER) as imap:
        time.sleep(3)  # the poller has caught up and is in IDLE
        for raw in emails:
            waiting = len(sink.messages)
            message_id = _header(raw, "Message-ID")
            started = time.perf_counter()
            imap.append("Live", raw)
            while not any(
                _header(r.raw, "In-Reply-To") == message_id for r in sink.messages[waiting:]
            ):
                if time.perf_counter() - started > 30:
                    raise SystemExit(f"no acknowledgement for {message_id} within 30 s")
                time.sleep(0.002)
            latencies.append(time.perf_counter() - started)
            time.sleep(0.2)
    return latencies


def _header(raw: bytes, name: str) -> str:
    return str(BytesHeaderParser().parsebytes(raw, headersonly=True)[name] or "").strip()


# --- the report ------------------------------------------------------------------------


def report(
    args: argparse.Namespace,
    emails: list[bytes],
    floors: list[float],
    rates: dict[str, list[Rates]],
    running_rates: dict[str, list[Rates]],
    latencies: list[float],
) -> None:
    floor = statistics.median(floors)
    latencies = sorted(latencies)
    size = statistics.median(len(raw) for raw in emails)
    pool = f"{args.threads} threads" if args.threads else "one prefork child"
    print(
        f"\n### {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — "
        f"{platform.machine()}, {os.cpu_count()} cores"
    )
    print(
        f"\n{len(emails)} case emails (median {size / 1024:.1f} KB), {args.rounds} rounds, "
        f"{args.workers} Celery worker processes ({pool} each), PostgreSQL + Redis, "
        f"Python {platform.python_version()}.\n"
    )
    print(
        "| | emails/s (median) | rounds | ratio to the floor "
        "| all work done (codes looked up), emails/s |"
    )
    print("|---|---:|---|---:|---:|")
    print(
        "| floor: imapclient fetch + mail-parser, one process | "
        f"{floor:,.0f} | {_listed(floors)} | | |"
    )
    runs = {
        "mailbox → tickets → acks at the sink": rates,
        "poller already running: emails moved in → acks": running_rates,
    }
    for what, measured_by_desk in runs.items():
        for name, measured in measured_by_desk.items():
            rate = statistics.median(run.acknowledged for run in measured)
            done = statistics.median(run.done for run in measured)
            print(
                f"| end to end ({name}), {what} | {rate:,.0f} "
                f"| {_listed([run.acknowledged for run in measured])} | {rate / floor:.3f} "
                f"| {done:,.0f} |"
            )
    print(
        f"\nIDLE → acknowledgement at the sink, {len(latencies)} emails one at a time: "
        f"median {statistics.median(latencies) * 1000:.0f} ms, "
        f"p90 {statistics.quantiles(latencies, n=10)[-1] * 1000:.0f} ms, "
        f"max {latencies[-1] * 1000:.0f} ms."
    )


def _listed(values: list[float]) -> str:
    return ", ".join(f"{value:,.0f}" for value in values)


if __name__ == "__main__":
    main()
