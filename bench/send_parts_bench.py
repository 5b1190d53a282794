"""Benchmark what sending one acknowledgement costs, part by part, in CPU per email.

Run it with ``python bench/send_parts_bench.py [--emails 2000] [--chunk 50]`` on Linux
(it reads each process's CPU from ``/proc``). The SMTP sink runs in a process of its
own, as in the end-to-end benchmark, so its CPU is counted apart from the sender's. On
a fresh PostgreSQL database it processes the emails into acknowledgements (not timed),
then measures, in chunks of ``--chunk`` emails taken in turn so that every part sees the
same machine load:

- **sink**: the aiosmtpd sink receiving one email (its process's CPU);
- **smtplib**: handing one acknowledgement's bytes to the sink with smtplib alone (one
  connection kept open), the least any sender in Python pays;
- **send**: ``send_outbox_emails`` — claim, deliver over the desk's connections, mark —
  in the sender and in PostgreSQL (the CPU of every ``postgres`` process: run it on an
  otherwise quiet server);
- **mark**: marking one email ``sent`` again as the sender does, in its own commit, on
  the sender's side and PostgreSQL's.

Prints each part's CPU over all chunks per email as a Markdown table for
``bench/README.md`` (means, not medians: ``/proc`` counts in 10 ms ticks, which only
add up right over many chunks).
"""

from __future__ import annotations

import argparse
import os
import platform
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy import select

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.case_emails import DESK_ADDRESS, generate  # noqa: E402
from bench.worker_bench import in_batches, prepare  # noqa: E402
from consultant import db, outbox  # noqa: E402
from consultant.db import autocommit_connection, session_scope  # noqa: E402
from consultant.inbound import Arrival, store_arrivals  # noqa: E402
from consultant.models import OutboxStatus  # noqa: E402
from consultant.pipeline import process_inbound_emails  # noqa: E402
from tests.servers.postgres import scratch_database  # noqa: E402

PARTS = ("sink", "smtplib", "send", "send: PostgreSQL", "mark", "mark: PostgreSQL")
_TICKS = os.sysconf("SC_CLK_TCK")
_SINK = (
    "import signal\n"
    "from tests.servers.smtp_sink import SmtpSink\n"
    "sink = SmtpSink().__enter__()\n"
    "print(sink.port, flush=True)\n"
    "signal.pause()\n"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=2000)
    parser.add_argument("--chunk", type=int, default=100)
    args = parser.parse_args()

    samples: dict[str, list[float]] = {part: [] for part in PARTS}
    with (
        sink_process() as (sink_pid, sink_port),
        scratch_database("cc_send_parts_bench") as url,
        tempfile.TemporaryDirectory() as data_dir,
    ):
        prepare(url, _Relay(f"smtp://127.0.0.1:{sink_port}"), Path(data_dir))
        raws, outbox_ids = queued_acknowledgements(generate(args.emails))
        with smtplib.SMTP("127.0.0.1", sink_port) as client:
            client.ehlo()
            for start in range(0, len(outbox_ids), args.chunk):
                chunk = outbox_ids[start : start + args.chunk]
                measure_chunk(samples, chunk, raws[start : start + len(chunk)], client, sink_pid)
        db.reset_engine()
    report(args, samples)


class _Relay:
    """What :func:`bench.worker_bench.prepare` needs to know of the sink: its URL."""

    def __init__(self, url: str) -> None:
        self.url = url


@contextmanager
def sink_process() -> Iterator[tuple[int, int]]:
    """The test suite's aiosmtpd sink in a process of its own: (process id, port)."""
    process = subprocess.Popen(
        [sys.executable, "-c", _SINK], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        yield process.pid, int(process.stdout.readline())
    finally:
        process.terminate()
        process.wait(timeout=10)


def queued_acknowledgements(emails: list[bytes]) -> tuple[list[bytes], list[int]]:
    """Process the emails; their acknowledgements' bytes and outbox ids, in order."""
    with session_scope() as session:
        inbound_ids = store_arrivals(session, [Arrival(raw=raw, source="imap") for raw in emails])
    outcomes = in_batches(process_inbound_emails, inbound_ids)
    outbox_ids = sorted(row_id for outcome in outcomes for row_id in outcome.outbox_ids)
    with session_scope() as session:
        raws = session.execute(
            select(outbox._OUTBOX.c.raw)
            .where(outbox._OUTBOX.c.id.in_(outbox_ids))
            .order_by(outbox._OUTBOX.c.id)
        ).scalars()
        return list(raws), outbox_ids


def measure_chunk(
    samples: dict[str, list[float]],
    outbox_ids: list[int],
    raws: list[bytes],
    client: smtplib.SMTP,
    sink_pid: int,
) -> None:
    """One sample of every part, in CPU milliseconds per email of this chunk."""
    count = len(outbox_ids)
    sink_before = process_cpu(sink_pid)
    smtplib_cpu, _ = cpu_of(lambda: send_with_smtplib(client, raws))
    samples["smtplib"].append(smtplib_cpu / count)
    samples["sink"].append((process_cpu(sink_pid) - sink_before) / count)
    send_cpu, send_pg = cpu_of(
        lambda: in_batches(lambda ids: outbox.send_outbox_emails(outbox_ids=ids), outbox_ids)
    )
    samples["send"].append(send_cpu / count)
    samples["send: PostgreSQL"].append(send_pg / count)
    mark_cpu, mark_pg = cpu_of(lambda: mark_sent_again(outbox_ids))
    samples["mark"].append(mark_cpu / count)
    samples["mark: PostgreSQL"].append(mark_pg / count)


def send_with_smtplib(client: smtplib.SMTP, raws: list[bytes]) -> None:
    for raw in raws:
        client.sendmail(DESK_ADDRESS, ["customer@clinic.example"], raw)


def mark_sent_again(outbox_ids: list[int]) -> None:
    """Each row marked ``sent`` again by the sender's own code, a commit each."""
    with autocommit_connection() as connection:
        for outbox_id in outbox_ids:
            email = SimpleNamespace(id=outbox_id)
            outbox._finish(connection, email, OutboxStatus.SENT, error=None)  # type: ignore[arg-type]


def cpu_of(job: Callable[[], object]) -> tuple[float, float]:
    """Milliseconds of this process's CPU and of PostgreSQL's that ``job`` took."""
    process, database = time.process_time(), postgres_cpu()
    job()
    return (time.process_time() - process) * 1000, (postgres_cpu() - database) * 1000


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS * 1000


def postgres_cpu() -> float:
    """Seconds of CPU used so far by every process whose command is ``postgres``."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(b"postgres"):
                total += process_cpu(int(entry.name)) / 1000
        except OSError:  # it ended while we looked
            continue
    return total


def report(args: argparse.Namespace, samples: dict[str, list[float]]) -> None:
    now = datetime.now(UTC)
    chunks = len(samples["send"])
    print(f"### {now:%Y-%m-%d %H:%M} UTC — {platform.machine()}, {os.cpu_count()} cores\n")
    print(f"{args.emails} acknowledgements, {chunks} chunks of {args.chunk}, PostgreSQL.\n")
    print("| part | CPU ms per email (mean) |")
    print("|---|---:|")
    for part in PARTS:
        print(f"| {part} | {statistics.mean(samples[part]):.3f} |")


if __name__ == "__main__":
    main()
