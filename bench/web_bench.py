"""The dashboard at a million tickets, on PostgreSQL: server time of the queue, the case
page and case search, and the first paint in Chromium.

`python bench/web_bench.py [--tickets 1000000] [--requests 200]` makes a scratch
PostgreSQL database (`CONSULTANT_TEST_POSTGRES_URL`, default the local server) at the
newest revision and fills it in SQL (`generate_series`, so a million cases take minutes):

- **tickets** with a mix of statuses (70 % closed, 10 % solved, 8 % pending, 7 % open,
  5 % new and unassigned), owners among 52 coders, specialties, accounts, subjects and
  requesters from word lists; each has a first-response clock, stopped for the answered
  ones, running for the others and due from 8 h ago (breached) to 88 h ahead (at risk in
  the last 6 h);
- **messages**: the customer's email for each case, and the coder's answer for each
  case past ``open`` (about 1.9 per case), in the order a desk writes them; bodies made of
  coding questions' sentences (one word, "onasemnogene", in 1 case in 1000);
- **code lookups**: 1 to 3 codes per case from 60 everyday codes, the common ones far more
  often (99213 is in about 1 case in 9);
- **events**: one per case.

The dashboard is served by uvicorn as `consultant run` serves it; a signed-in lead (and a
coder, whose search covers only their queue) asks over HTTP on the loopback: each queue
view, the case page, and search for several kinds of query, `--requests` times each after
10 warm-ups; the time from request to the last byte of the response, p50/p95. Chromium
(Playwright, Debian's `chromium`) then opens the queue, a case and a search and reports
`first-contentful-paint`, the median of 5 loads.

Targets: queue and case p95 < 50 ms; search p95 < 100 ms.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bench.machine import heading  # noqa: E402
from consultant import config, db, migrate  # noqa: E402
from consultant.codes.specialty import SPECIALTIES  # noqa: E402
from consultant.db import session_scope  # noqa: E402
from consultant.web.server import WebServer  # noqa: E402
from tests.servers.ports import free_port  # noqa: E402
from tests.servers.postgres import scratch_database  # noqa: E402
from tests.web.conftest import make_coder, sign_in  # noqa: E402

LEAD, CODER = "lead@desk.example", "coder@desk.example"
CODERS = 52
VIEWS = ("mine", "unassigned", "at-risk", "breached", "all")
PAINTS = 5
FIRST_PAINT = """new Promise(resolve => new PerformanceObserver(list => {
    const paint = list.getEntriesByName('first-contentful-paint')[0];
    if (paint) resolve(paint.startTime);
}).observe({type: 'paint', buffered: true}))"""

SUBJECTS = [
    "Can we bill 99213-25 with 20610?",
    "Home infusion 3.5 hours: 99601 and 99602?",
    "Modifier 59 or XU for this?",
    "Knee injection and office visit same day",
    "Dx code for type 2 diabetes follow-up",
    "Units for J3262 tocilizumab",
    "Prolonged services add-on question",
    "Telehealth visit place of service",
    "Wound debridement 97597 with 11042",
    "Annual wellness visit and problem visit",
    "Global period after minor surgery",
    "Chemotherapy administration sequence",
]
SENTENCES = [
    "The patient came in for a follow-up visit after the knee injection.",
    "Our nurse gave a home infusion that ran three and a half hours.",
    "Which modifier do we append when the visit is separately identifiable?",
    "The payer denied the claim citing an NCCI edit.",
    "We documented hydration and a therapeutic push on the same day.",
    "Is the add-on code reported once per visit or per hour?",
    "The physician performed arthrocentesis of the major joint.",
    "How many units of the drug should be billed for 162 mg?",
    "The diagnosis is type 2 diabetes without complications.",
    "Please confirm the place of service for a telehealth visit.",
    "The wound was debrided down to subcutaneous tissue, 24 sq cm.",
    "Can the annual wellness visit be billed with a problem-oriented visit?",
    "The procedure has a 10-day global period.",
    "We need the correct sequence for chemotherapy administration codes.",
    "The claim came back with a medically unlikely edit on the units.",
    "Thank you for the quick answer last time.",
]
ANSWERS = [
    "Report the E/M visit with modifier 25 when it is significant and separately identifiable.",
    "Bill 99601 for the first two hours and 99602 for each additional hour.",
    "Use XU when the service is distinct and the payer accepts the X modifiers.",
    "Report the units in 1 mg increments, rounded to the nearest unit.",
]
CODES = [
    "99213",
    "99214",
    "20610",
    "99601",
    "99602",
    "J3262",
    "E11.9",
    "M17.11",
    "96365",
    "96374",
    "99215",
    "97597",
    "11042",
    "G0439",
    "99397",
    "96413",
    "96415",
    "J1100",
    "Z79.4",
    "I10",
    "99212",
    "36415",
    "81002",
    "93000",
    "71046",
    "G2211",
    "99417",
    "99211",
    "96372",
    "J0696",
    "L97.412",
    "M25.561",
    "E78.5",
    "Z00.00",
    "99203",
    "99204",
    "99205",
    "20611",
    "20605",
    "J3301",
    "G0008",
    "90471",
    "90686",
    "99406",
    "99497",
    "99498",
    "96360",
    "96361",
    "96375",
    "J2405",
    "J7050",
    "Q5101",
    "96416",
    "J9355",
    "C50.911",
    "Z51.11",
    "D64.9",
    "N18.3",
    "R53.83",
    "G89.29",
]
FIRST_NAMES = ["Dana", "Lee", "Maria", "Sam", "Priya", "John", "Aiko", "Omar", "Ruth", "Ana"]
LAST_NAMES = ["Whitfield", "Nguyen", "Garcia", "Okafor", "Schmidt", "Rossi", "Kowalski"]


def sql_array(values: list[str]) -> str:
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def pick(array: list[str], seed: str) -> str:
    """An element of ``array`` chosen by the integer SQL expression ``seed``."""
    return f"({sql_array(array)})[1 + (({seed}) % {len(array)})]"


def fill(tickets: int) -> dict[str, float]:
    """The desk's rows, in SQL; seconds per step."""
    steps: dict[str, float] = {}
    statements = {
        "coders, plan, accounts": [
            f"INSERT INTO coders (email, name, role, specialties, capacity, timezone, "
            f"working_hours, active, created_at) SELECT 'coder' || n || '@desk.example', "
            f"'Coder ' || n, 'coder', {pick(list(SPECIALTIES), 'n')}, 10000, 'UTC', '', true, "
            f"now() FROM generate_series(3, {CODERS}) AS n",
            "INSERT INTO plans (name, cases_per_period, sla_hours, followups_count, created_at) "
            "VALUES ('standard', NULL, 24, false, now())",
            "INSERT INTO accounts (address, plan_id, timezone, created_at) SELECT "
            "'@clinic' || n || '.example', 1, 'UTC', now() FROM generate_series(1, 5000) AS n",
        ],
        # Search indexes built once after the load, not row by row.
        "tickets": [
            "DROP INDEX ix_tickets_search",
            "DROP INDEX ix_messages_search",
            f"""INSERT INTO tickets (subject, requester, requester_name, account_id, status,
                specialty, coder_id, due_at, first_response_at, solved_at, created_at,
                updated_at)
            SELECT {pick(SUBJECTS, "n * 7")},
                'billing' || (n % 20000) || '@clinic' || (n % 5000 + 1) || '.example',
                {pick(FIRST_NAMES, "n")} || ' ' || {pick(LAST_NAMES, "n / 10")},
                n % 5000 + 1, s.status, {pick(list(SPECIALTIES), "n * 3")},
                CASE WHEN s.status = 'new' THEN NULL ELSE 1 + n % {CODERS} END,
                CASE WHEN s.status IN ('new', 'open', 'pending')
                     THEN now() + make_interval(mins => ((n * 37) % 5760 - 480)::int) END,
                CASE WHEN s.status NOT IN ('new', 'open')
                     THEN now() - make_interval(hours => (({tickets} - n) / 100)::int) END,
                CASE WHEN s.status IN ('solved', 'closed')
                     THEN now() - make_interval(hours => (({tickets} - n) / 100)::int) END,
                now() - make_interval(hours => (({tickets} - n) / 100 + 2)::int),
                now() - make_interval(hours => (({tickets} - n) / 100)::int)
            FROM generate_series(1, {tickets}) AS n,
            LATERAL (SELECT CASE WHEN n % 100 < 70 THEN 'closed' WHEN n % 100 < 80 THEN 'solved'
                WHEN n % 100 < 88 THEN 'pending' WHEN n % 100 < 95 THEN 'open' ELSE 'new' END
                AS status) AS s""",
        ],
        # In the order they were written: a case's answer comes after the questions of the
        # cases that arrived meanwhile, as at a desk.
        "messages": [
            f"""INSERT INTO messages (ticket_id, direction, message_id, sender, subject,
                body_text, is_automatic, coder_id, created_at)
            SELECT ticket_id, direction, message_id, sender, subject, body_text, false,
                coder_id, created_at
            FROM (SELECT id AS ticket_id, 'in' AS direction,
                    '<case' || id || '@clinic.example>' AS message_id, requester AS sender,
                    subject, 'Hello, ' || {pick(SENTENCES, "id")} || ' '
                    || {pick(SENTENCES, "id / 3")} || ' ' || {pick(SENTENCES, "id / 7")}
                    || ' Codes: ' || {pick(CODES, "id / 11")} || ', '
                    || {pick(CODES, "id / 13")} || '.'
                    || CASE WHEN id % 1000 = 0 THEN ' Onasemnogene: one dose?' ELSE '' END
                    || ' Thanks, ' || requester_name AS body_text,
                    NULL::int AS coder_id, created_at
                FROM tickets
                UNION ALL
                SELECT id, 'out', '<answer' || id || '@desk.example>',
                    'coder' || coder_id || '@desk.example', 'Re: ' || subject,
                    {pick(ANSWERS, "id")} || ' ' || {pick(ANSWERS, "id / 5")}, coder_id,
                    updated_at
                FROM tickets WHERE status IN ('pending', 'solved', 'closed')) AS thread
            ORDER BY created_at, ticket_id""",
        ],
        "code lookups": [
            f"""INSERT INTO code_lookups (ticket_id, message_id, system, code, status,
                confidence, reason, source, modifiers, detail, alternatives, created_at)
            SELECT DISTINCT ON (m.ticket_id, c.code) m.ticket_id, m.id, 'cpt', c.code,
                'billable', 1.0, '', 'body', '', '', '', m.created_at
            FROM messages m,
            LATERAL (SELECT ({sql_array(CODES)})[1 + floor({len(CODES)} *
                power(((m.id * k * 2654435761) % 1000003) / 1000003.0, 2.2))::int] AS code
                FROM generate_series(1, 1 + m.id % 3) AS k) AS c
            WHERE m.direction = 'in'""",
        ],
        "clocks and events": [
            """INSERT INTO sla_clocks (ticket_id, target, target_seconds, used_seconds,
                running_since, due_at, next_check_at, warned_at, breached_at, stopped_at)
            SELECT id, 'first_response', 86400, 0, created_at, due_at, due_at,
                CASE WHEN due_at <= now() + interval '6 hours' THEN due_at - interval '6 hours'
                END,
                CASE WHEN due_at <= now() THEN due_at END, first_response_at
            FROM tickets""",
            """INSERT INTO events (ticket_id, actor, kind, detail, created_at)
            SELECT id, 'desk', 'ticket.created', NULL, created_at FROM tickets""",
        ],
        "search indexes, vacuum": [
            "CREATE INDEX ix_tickets_search ON tickets USING gin (search_vector)",
            "CREATE INDEX ix_messages_search ON messages USING gin (search_vector)",
        ],
    }
    for step, sqls in statements.items():
        began = time.perf_counter()
        print(f"  {step} ...", file=sys.stderr)
        with session_scope() as session:
            for sql in sqls:
                session.execute(text(sql))
        steps[step] = time.perf_counter() - began
    began = time.perf_counter()
    with db.get_engine().connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    steps["search indexes, vacuum"] += time.perf_counter() - began
    return steps


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(share * len(ordered)), len(ordered) - 1)]


def timed(client: httpx.Client, paths: list[str], name: str) -> dict[str, float]:
    """Milliseconds from request to the last byte, after 10 warm-ups."""
    for path in paths[:10]:
        client.get(path)
    spent = []
    for path in paths:
        began = time.perf_counter()
        response = client.get(path)
        spent.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
    figures = {"p50": percentile(spent, 0.5), "p95": percentile(spent, 0.95), "n": len(spent)}
    print(f"  {name}: p50 {figures['p50']:.1f} ms, p95 {figures['p95']:.1f} ms", file=sys.stderr)
    return figures


def searches(tickets: int) -> dict[str, str]:
    return {
        "case number (CC-n)": f"CC-{tickets // 2 + 17}",
        "code, common (99213)": "99213",
        "code, rare (C50.911)": "C50.911",
        "requester address": "billing1234@clinic1235.example",
        "requester name": "Whitfield",
        "one common word": "modifier",
        "two words": "knee injection",
        "a word in 1 case in 1000": "onasemnogene",
        "a word in no case": "zolgensma",
    }


def first_paint(dashboard: str, cookies: httpx.Cookies, paths: list[str]) -> dict[str, float]:
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is missing: scripts/test-services installs it"
    painted: dict[str, float] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        context = browser.new_context()
        context.add_cookies([{"name": k, "value": v, "url": dashboard} for k, v in cookies.items()])
        page = context.new_page()
        for path in paths:
            times = []
            for _ in range(PAINTS):
                page.goto(f"{dashboard}{path}", wait_until="load")
                times.append(page.evaluate(FIRST_PAINT))
            painted[path] = statistics.median(times)
        browser.close()
    return painted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(7)
    with scratch_database("cc_bench_web") as url:
        os.environ["CONSULTANT_DATABASE_URL"] = url
        os.environ["CONSULTANT_WEB"] = address = f"127.0.0.1:{free_port()}"
        config.get_settings.cache_clear()
        db.reset_engine()
        migrate.upgrade(db.get_engine())
        make_coder(CODER)
        make_coder(LEAD, role="lead")
        print(f"filling {args.tickets} tickets ...", file=sys.stderr)
        began = time.perf_counter()
        steps = fill(args.tickets)
        generation = time.perf_counter() - began
        with session_scope() as session:
            version = session.execute(text("SHOW server_version")).scalar()
            counts = {
                table: session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                for table in ("tickets", "messages", "code_lookups", "sla_clocks")
            }
        server = WebServer(config.get_settings())
        server.start()
        dashboard = f"http://{address}"
        results: dict[str, dict[str, float]] = {}
        try:
            lead = httpx.Client(base_url=dashboard, follow_redirects=True, timeout=60)
            coder = httpx.Client(base_url=dashboard, follow_redirects=True, timeout=60)
            sign_in(lead, LEAD)  # type: ignore[arg-type]
            sign_in(coder, CODER)  # type: ignore[arg-type]
            n = args.requests
            for view in VIEWS:
                name = f"queue: {view} (lead)"
                results[name] = timed(lead, [f"/queue?view={view}"] * n, name)
            name = "queue: mine (coder)"
            results[name] = timed(coder, ["/queue?view=mine"] * n, name)
            cases = [f"/tickets/{rng.randint(1, args.tickets)}" for _ in range(n)]
            results["case page (lead)"] = timed(lead, cases, "case page (lead)")
            for kind, query in searches(args.tickets).items():
                path = f"/search?q={query}"
                for who, client, times in (("lead", lead, n), ("coder", coder, n // 4)):
                    name = f"search: {kind} ({who})"
                    results[name] = timed(client, [path] * times, name)
            print("  first paint ...", file=sys.stderr)
            paint_paths = ["/queue?view=all", cases[0], "/search?q=modifier"]
            painted = first_paint(dashboard, lead.cookies, paint_paths)
        finally:
            server.stop()
            db.reset_engine()
    print(f"\n{heading()}\n")
    print(
        f"Python {platform.python_version()}, PostgreSQL {version}. "
        + ", ".join(f"{v} {k}" for k, v in counts.items())
        + f"; generated in {generation / 60:.1f} min ("
        + ", ".join(f"{k} {v:.0f} s" for k, v in steps.items())
        + ").\n"
    )
    print("| server time, ms | p50 | p95 | requests |\n|---|---:|---:|---:|")
    for name, figures in results.items():
        print(f"| {name} | {figures['p50']:.1f} | {figures['p95']:.1f} | {figures['n']:.0f} |")
    print("\n| first contentful paint in Chromium, ms (median of 5) | |\n|---|---:|")
    for path, value in painted.items():
        print(f"| `{path}` | {value:.0f} |")


if __name__ == "__main__":
    main()
