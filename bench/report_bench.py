"""The reports at a million tickets, on PostgreSQL: each report read from the rollups,
as the page, the command and the API read it, and what keeping the rollups costs.

`python bench/report_bench.py [--tickets 1000000] [--runs 7]` fills a scratch database
with bench/web_bench.py's generator (tickets, messages, code lookups, clocks, events),
adds what the reports read besides (a ledger debit per case, half the accounts on a plan
of 20 cases a month; an assignment per owned case; first responses that took 0 to 25
business hours), then:

- **rebuild**: `consultant report rebuild`, every rollup from scratch;
- **each report** (`consultant.reports.figures.run_report`) for the last 30 days and for
  a whole year (the longest period a report takes), unfiltered, by plan, specialty and
  account, and filtered to one account: the median of `--runs` runs after one warm-up;
- **the page** `/reports?report=…` over HTTP (uvicorn as `consultant run` serves it),
  the same way: from request to the last byte;
- **refresh**: with nothing new, and after a busy minute's worth of new cases (200
  cases, 200 answers, 100 solves of old cases, their events).

Target: every report under 1 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bench.machine import heading  # noqa: E402
from bench.web_bench import CODER, LEAD, fill  # noqa: E402
from consultant import config, db, migrate  # noqa: E402
from consultant.db import session_scope  # noqa: E402
from consultant.models import utcnow  # noqa: E402
from consultant.reports.figures import REPORTS, run_report  # noqa: E402
from consultant.reports.query import read_query  # noqa: E402
from consultant.reports.rollups import rebuild, refresh  # noqa: E402
from consultant.web.server import WebServer  # noqa: E402
from tests.servers.ports import free_port  # noqa: E402
from tests.servers.postgres import scratch_database  # noqa: E402
from tests.web.conftest import make_coder, sign_in  # noqa: E402

EXTRAS = [
    "INSERT INTO plans (name, cases_per_period, sla_hours, followups_count, created_at) "
    "VALUES ('pro', 20, 24, false, now())",
    "UPDATE accounts SET plan_id = (SELECT id FROM plans WHERE name = 'pro') WHERE id % 2 = 0",
    """INSERT INTO quota_entries (account_id, ticket_id, kind, amount, period, key, created_at)
    SELECT account_id, id, 'debit', 1, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM'),
        'debit:ticket:' || id, created_at FROM tickets""",
    # Answered in 0 to 25 business hours, spread over the histogram's buckets.
    """UPDATE sla_clocks SET used_seconds = (ticket_id::bigint * 7919) % 90000
    WHERE stopped_at IS NOT NULL""",
    """INSERT INTO assignments (ticket_id, coder_id, reason, actor, started_at)
    SELECT id, coder_id, 'routed', 'desk', created_at FROM tickets WHERE coder_id IS NOT NULL""",
]
# A busy minute: new cases, answers to some of them, old cases solved; each with its event.
BUSY_MINUTE = [
    """INSERT INTO tickets (subject, requester, requester_name, account_id, status, specialty,
        coder_id, created_at, updated_at)
    SELECT 'New question on 99213', 'new' || n || '@clinic7.example', 'New', 7, 'open',
        'evaluation-management', 3 + n % 40, now(), now() FROM generate_series(1, 200) AS n""",
    """INSERT INTO messages (ticket_id, direction, message_id, sender, subject, body_text,
        is_automatic, coder_id, created_at)
    SELECT id, 'out', '<busy' || id || '@desk.example>', 'coder@desk.example', 'Re', 'Yes.',
        false, coder_id, now() FROM tickets ORDER BY id DESC LIMIT 200""",
    """UPDATE tickets SET status = 'solved', solved_at = now(), updated_at = now()
    WHERE id IN (SELECT id FROM tickets WHERE status = 'pending' ORDER BY id LIMIT 100)""",
    """INSERT INTO events (ticket_id, actor, kind, detail, created_at)
    SELECT id, 'desk', 'ticket.status', 'pending → solved', now() FROM tickets
    WHERE solved_at >= now() - interval '1 minute'""",
]


def median_ms(action: Callable[[], object], runs: int) -> float:
    action()  # warm-up
    spent = []
    for _ in range(runs):
        began = time.perf_counter()
        action()
        spent.append((time.perf_counter() - began) * 1000)
    return statistics.median(spent)


def variants(account: str) -> dict[str, dict[str, str]]:
    today = utcnow().date()
    year = {"since": (today - timedelta(days=365)).isoformat(), "until": today.isoformat()}
    return {
        "30 days": {},
        "365 days": year,
        "365 days, by account": {**year, "by": "account"},
        "365 days, one specialty": {**year, "specialty": "medicine-infusion"},
        "365 days, one account": {**year, "account": account},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with scratch_database("cc_bench_reports") as url:
        os.environ["CONSULTANT_DATABASE_URL"] = url
        os.environ["CONSULTANT_WEB"] = address = f"127.0.0.1:{free_port()}"
        config.get_settings.cache_clear()
        db.reset_engine()
        migrate.upgrade(db.get_engine())
        make_coder(CODER)
        make_coder(LEAD, role="lead")
        print(f"filling {args.tickets} tickets ...", file=sys.stderr)
        began = time.perf_counter()
        fill(args.tickets)
        with session_scope() as session:
            for sql in EXTRAS:
                session.execute(text(sql))
        generation = time.perf_counter() - began
        print("rebuilding the rollups ...", file=sys.stderr)
        with session_scope() as session:
            rebuilt = rebuild(session)
        with db.get_engine().connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        with session_scope() as session:
            version = session.execute(text("SHOW server_version")).scalar()
            counts = {
                table: session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                for table in (
                    "tickets", "messages", "quota_entries", "report_cases", "report_days",
                    "report_speed", "report_codes",
                )
            }  # fmt: skip
        account = "@clinic1234.example"
        figures: dict[str, dict[str, float]] = {}
        for label, params in variants(account).items():
            for name in REPORTS:
                if "by" in params and name not in ("volume", "speed"):
                    continue

                def run(name: str = name, params: dict[str, str] = params) -> None:
                    now = utcnow()
                    with session_scope() as session:
                        asked = read_query(session, today=now.date(), **params)
                        assert not asked.problems, asked.problems
                        run_report(session, name, asked.query, now=now)

                figures.setdefault(f"{name}, {label}", {})["function"] = median_ms(run, args.runs)
        server = WebServer(config.get_settings())
        server.start()
        try:
            lead = httpx.Client(base_url=f"http://{address}", follow_redirects=True, timeout=60)
            sign_in(lead, LEAD)  # type: ignore[arg-type]
            for label, params in variants(account).items():
                for name in REPORTS:
                    key = f"{name}, {label}"
                    if key not in figures:
                        continue

                    def get(name: str = name, params: dict[str, str] = params) -> None:
                        response = lead.get("/reports", params={"report": name, **params})
                        assert response.status_code == 200, response.text[:300]

                    figures[key]["page"] = median_ms(get, args.runs)
                    print(f"  {key}: {figures[key]}", file=sys.stderr)
        finally:
            server.stop()
        with session_scope() as session:
            quiet = refresh(session)
        with session_scope() as session:
            for sql in BUSY_MINUTE:
                session.execute(text(sql))
        with session_scope() as session:
            busy = refresh(session)
        db.reset_engine()
    print(f"\n{heading()}\n")
    print(
        f"Python {platform.python_version()}, PostgreSQL {version}. "
        + ", ".join(f"{v} {k}" for k, v in counts.items())
        + f"; generated in {generation / 60:.1f} min. Rebuild of every rollup: "
        + f"{rebuilt.seconds:.0f} s. Refresh with nothing new: {quiet.seconds * 1000:.0f} ms; "
        + f"after a busy minute ({busy.cases} cases touched, {busy.days} days re-derived): "
        + f"{busy.seconds * 1000:.0f} ms.\n"
    )
    print(f"| report, median of {args.runs} ms | function | page (HTTP) |\n|---|---:|---:|")
    for key, value in figures.items():
        print(f"| {key} | {value['function']:.0f} | {value.get('page', 0):.0f} |")


if __name__ == "__main__":
    main()
