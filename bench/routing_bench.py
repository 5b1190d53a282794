"""Routing and the escalation sweep on PostgreSQL, at a busy desk's size.

`python bench/routing_bench.py [--cases 10000] [--coders 50] [--open 100000]` makes a
scratch PostgreSQL database (`CONSULTANT_TEST_POSTGRES_URL`, default the local server)
at the newest revision, then measures:

- **routing**: the cases, all new with a specialty, routed as the codes task routes them
  (`consultant.routing.assign.route`, 25 ids per call, one transaction each) among the
  coders (every specialty covered, mixed capacities): milliseconds per case, p50/p95 of
  the calls divided by their size;
- **one escalation sweep** (`consultant.escalation.sweep`) over that many open tickets
  with running clocks, when 1 % of them have reached their 75 % mark, and when none has
  (the minute-by-minute steady state): seconds, median of 5 runs for the latter.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import insert, text  # noqa: E402

from bench.machine import heading  # noqa: E402
from consultant import config, db, migrate  # noqa: E402
from consultant.codes.specialty import SPECIALTIES  # noqa: E402
from consultant.db import session_scope  # noqa: E402
from consultant.escalation import sweep  # noqa: E402
from consultant.models import Coder, SlaClock, Ticket, utcnow  # noqa: E402
from consultant.routing.assign import route  # noqa: E402
from tests.servers.postgres import scratch_database  # noqa: E402

IDS_PER_CALL = 25  # what consultant.dispatch puts in one codes task


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(share * len(ordered)), len(ordered) - 1)]


def use_database(url: str) -> None:
    os.environ["CONSULTANT_DATABASE_URL"] = url
    config.get_settings.cache_clear()
    db.reset_engine()
    migrate.upgrade(db.get_engine())


def add_coders(count: int, cases: int) -> None:
    """Coders covering every specialty, capacities 1x to 3x the even share."""
    share = cases // count + 1
    rows = [
        {
            "email": f"coder{n}@desk.example",
            "name": f"Coder {n}",
            "role": "coder",
            "specialties": ",".join(SPECIALTIES[(n + k) % len(SPECIALTIES)] for k in (0, 5)),
            "capacity": share * (1 + n % 3),
            "timezone": "UTC",
            "working_hours": "" if n % 2 else "Mon-Fri 08:00-17:00",
            "active": True,
            "created_at": utcnow(),
        }
        for n in range(count)
    ]
    with session_scope() as session:
        session.execute(insert(Coder), rows)


def add_tickets(count: int, *, status: str = "new", owner: int | None = None) -> list[int]:
    now = utcnow()
    rows = [
        {
            "subject": f"case {n}",
            "requester": "billing@clinic.example",
            "requester_name": "",
            "status": status,
            "specialty": SPECIALTIES[n % len(SPECIALTIES)],
            "coder_id": owner,
            "created_at": now,
            "updated_at": now,
        }
        for n in range(count)
    ]
    with session_scope() as session:
        return list(session.scalars(insert(Ticket).returning(Ticket.id), rows))


def bench_routing(cases: int) -> dict[str, float]:
    ids = add_tickets(cases)
    per_case = []
    start = time.perf_counter()
    for first in range(0, len(ids), IDS_PER_CALL):
        chunk = ids[first : first + IDS_PER_CALL]
        began = time.perf_counter()
        route(chunk)
        per_case.append((time.perf_counter() - began) * 1000 / len(chunk))
    total = time.perf_counter() - start
    with session_scope() as session:
        placed = session.execute(
            text("SELECT count(*) FROM tickets WHERE coder_id IS NOT NULL")
        ).scalar()
    return {
        "p50": percentile(per_case, 0.5),
        "p95": percentile(per_case, 0.95),
        "total_s": total,
        "placed": float(placed or 0),
    }


def bench_sweep(open_tickets: int) -> dict[str, float]:
    """Open tickets with running clocks; 1 % at their 75 % mark for the first sweep."""
    with session_scope() as session:
        owner = session.execute(text("SELECT min(id) FROM coders")).scalar()
    ids = add_tickets(open_tickets, status="open", owner=owner)
    now = utcnow()
    due = set(ids[::100])
    rows = [
        {
            "ticket_id": ticket_id,
            "target": "first_response",
            "target_seconds": 24 * 3600,
            "used_seconds": 0.0,
            "running_since": now - timedelta(hours=19 if ticket_id in due else 1),
            "due_at": now + timedelta(hours=5 if ticket_id in due else 23),
            "next_check_at": now - timedelta(minutes=1)
            if ticket_id in due
            else now + timedelta(hours=17),
        }
        for ticket_id in ids
    ]
    with session_scope() as session:
        for first in range(0, len(rows), 10_000):
            session.execute(insert(SlaClock), rows[first : first + 10_000])
        session.execute(text("ANALYZE"))
    began = time.perf_counter()
    first = sweep(now=now)
    busy = time.perf_counter() - began
    quiet = []
    for minute in range(1, 6):
        began = time.perf_counter()
        sweep(now=now + timedelta(minutes=minute))
        quiet.append(time.perf_counter() - began)
    return {"busy_s": busy, "warned": float(first.warned), "quiet_s": statistics.median(quiet)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--coders", type=int, default=50)
    parser.add_argument("--open", type=int, default=100_000)
    args = parser.parse_args()
    with scratch_database("cc_bench_routing") as url:
        use_database(url)
        add_coders(args.coders, args.cases)
        print(f"routing {args.cases} cases among {args.coders} coders ...", file=sys.stderr)
        routing = bench_routing(args.cases)
        print(f"sweeping {args.open} open tickets ...", file=sys.stderr)
        swept = bench_sweep(args.open)
        with session_scope() as session:
            version = session.execute(text("SHOW server_version")).scalar()
        db.reset_engine()
    print(f"\n{heading()}\n")
    print(f"Python {platform.python_version()}, PostgreSQL {version}.\n")
    print("| routing | value |\n|---|---:|")
    print(f"| cases / coders | {args.cases} / {args.coders} |")
    print(f"| ms per case, p50 | {routing['p50']:.2f} |")
    print(f"| ms per case, p95 | {routing['p95']:.2f} |")
    print(f"| all cases, s | {routing['total_s']:.1f} |")
    print(f"| cases placed | {routing['placed']:.0f} |")
    print("\n| escalation sweep over open tickets | value |\n|---|---:|")
    print(f"| open tickets with running clocks | {args.open} |")
    print(f"| one sweep, {swept['warned']:.0f} at-risk reminders due, s | {swept['busy_s']:.3f} |")
    print(f"| one sweep, nothing due (median of 5), s | {swept['quiet_s']:.3f} |")


if __name__ == "__main__":
    main()
