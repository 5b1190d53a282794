"""Measure extraction quality: precision, recall and look-alikes on the quality set.

Run it with ``python bench/extraction_quality.py``. It reads
``tests/codes/data/quality/development.jsonl`` and ``held_out.jsonl`` (see the README
there), runs the extractor the labelled-case test runs — ``consultant.codes.extract.extract``
with the in-memory catalog's ``has`` (full ICD-10-CM release; CMS's 2020 HCPCS file when
``../shared`` has it) — and compares each found code's ``key`` (``system:code``, then
``-MOD`` per modifier, then `` xN`` for units) with the case's labels, exactly.

For each split, per category and overall, it prints:

* **precision / recall**: exact keys, so a code found with a wrong modifier or unit count
  is one false positive and one miss; the "codes only" columns compare ``system:code``
  alone and show how much of the loss is modifiers and units;
* **trap hits**: look-alike substrings (ZIP codes, phone numbers, claim numbers, CARC/RARC
  codes, ...) that came back as a code;
* **ambiguous handled**: dotless strings that are both an ICD-10-CM and a HCPCS code with
  nothing in the text to decide, for which the extractor offered every reading (once,
  as one code with the other readings beside it). Readings of ambiguous strings count
  neither as hits nor as false positives.

``--errors`` lists the development cases the extractor gets wrong and sorts the errors
into kinds. It never lists held-out cases: the extractor must not be tuned on them. The
held-out file is scored only with ``--held-out``, to be run once a change is finished;
every such run is a measurement of the held-out set, and bench/README.md counts them.
The held-out figures are printed for the whole file and for each batch of it.

``--batch FILE`` scores a new batch of development cases, with ``--errors`` if wanted,
before they are appended and before anything is tuned on them: that first score is the
honest estimate of how the extractor does on a writer it has not seen.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.machine import heading  # noqa: E402
from consultant.codes.catalog import Catalog  # noqa: E402
from consultant.codes.extract import FoundCode, extract  # noqa: E402
from consultant.codes.formats import HCPCS, ICD10CM  # noqa: E402
from consultant.codes.hcpcs import parse_hcpcs  # noqa: E402
from consultant.codes.icd10cm import icd10cm_release, iter_icd10cm  # noqa: E402

DATA = REPO / "tests" / "codes" / "data" / "quality"
SPLITS = {"development": DATA / "development.jsonl", "held-out": DATA / "held_out.jsonl"}
CATEGORIES = ("dotless", "modifiers", "units", "lookalikes", "plain")
HCPCS_FILE = REPO.parent / "shared" / "data" / "hcpcs-2020" / "HCPC2020_ANWEB_w_disclaimer.txt"
# The held-out file's batches, by the numbers of their ids (see the quality set's README):
# each batch is measured on its own too, as they were written at different times.
HELD_OUT_BATCHES = (
    ("written 2026-12-07 20:06", range(1000, 2000)),
    ("written late 2026-12-07", range(4300, 6000)),
    ("written 2026-12-08", range(7000, 8000)),
)


def held_out_batch(case_id: str) -> str:
    number = int(case_id.rsplit("-", 1)[1])
    return next((name for name, ids in HELD_OUT_BATCHES if number in ids), "other")


def base(key: str) -> str:
    """``system:code`` of a key, without modifiers or units."""
    system, rest = key.split(":", 1)
    return f"{system}:{rest.split(' ')[0].split('-')[0]}"


def units(key: str) -> str | None:
    """The unit count of a key (`` x4``), or None when it has none."""
    return key.split(" x", 1)[1] if " x" in key else None


def bare(code: str) -> str:
    return code.replace(".", "").upper()


@dataclass(frozen=True, slots=True)
class Case:
    """One labelled case, as the quality set's README describes it."""

    id: str
    category: str
    text: str
    expected: frozenset[str]
    traps: tuple[str, ...]
    ambiguous: tuple[tuple[str, frozenset[str]], ...]  # (text, its readings)

    @classmethod
    def from_json(cls, line: str) -> Case:
        raw = json.loads(line)
        return cls(
            id=raw["id"],
            category=raw["category"],
            text=raw["text"],
            expected=frozenset(raw["expected"]),
            traps=tuple(raw["traps"]),
            ambiguous=tuple(
                (item["text"], frozenset(item["readings"])) for item in raw.get("ambiguous", [])
            ),
        )


@dataclass(slots=True)
class Tally:
    """Counts for a group of cases; precision and recall are derived from them."""

    cases: int = 0
    expected: int = 0
    found: int = 0
    hits: int = 0
    expected_codes: int = 0
    found_codes: int = 0
    code_hits: int = 0
    traps: int = 0
    trap_hits: int = 0
    ambiguous: int = 0
    ambiguous_handled: int = 0

    def add(self, other: Tally) -> None:
        for name in (f.name for f in fields(self)):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @staticmethod
    def ratio(part: int, whole: int) -> str:
        return f"{part / whole:.3f}" if whole else "n/a"

    def row(self, label: str) -> str:
        return (
            f"| {label} | {self.cases} | {self.expected} | {self.found} | "
            f"{self.ratio(self.hits, self.found)} | {self.ratio(self.hits, self.expected)} | "
            f"{self.ratio(self.code_hits, self.found_codes)} | "
            f"{self.ratio(self.code_hits, self.expected_codes)} | "
            f"{self.trap_hits}/{self.traps} | {self.ambiguous_handled}/{self.ambiguous} |"
        )


@dataclass(slots=True)
class Scored:
    """One case against the extractor: the tally and what went wrong."""

    tally: Tally
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    traps_hit: list[str] = field(default_factory=list)
    ambiguous_missed: list[str] = field(default_factory=list)


def trap_hit(trap: str, text: str, codes: Iterable[FoundCode]) -> bool:
    """Whether a reported code came from the trap: its span overlaps one of the trap's
    occurrences, or its code is written inside the trap (a later mention, merged)."""
    spans = []
    start = text.find(trap)
    while start != -1:
        spans.append((start, start + len(trap)))
        start = text.find(trap, start + 1)
    flat = bare(trap)
    for code in codes:
        if any(code.start < end and begin < code.end for begin, end in spans):
            return True
        if bare(code.code) in flat:
            return True
    return False


def score(case: Case, found: list[FoundCode]) -> Scored:
    """Exact and code-only matches, trap hits and ambiguous strings of one case."""
    readings = {reading for _, both in case.ambiguous for reading in both}
    scored = [f for f in found if base(f.key) not in readings]
    keys = {f.key for f in scored}
    expected_bases = {base(k) for k in case.expected}
    found_bases = {base(k) for k in keys}
    # a trap is hit by a code that should not be there at all, not by a right code with
    # a wrong modifier (no trap holds a labelled code: the checker sees to that)
    spurious = [f for f in scored if base(f.key) not in expected_bases]
    traps_hit = [t for t in case.traps if trap_hit(t, case.text, spurious)]
    offered = {base(f.key) for f in found} | {a for f in found for a in f.alternatives}
    missed = [text for text, both in case.ambiguous if not both <= offered]
    tally = Tally(
        cases=1,
        expected=len(case.expected),
        found=len(keys),
        hits=len(keys & case.expected),
        expected_codes=len(expected_bases),
        found_codes=len(found_bases),
        code_hits=len(found_bases & expected_bases),
        traps=len(case.traps),
        trap_hits=len(traps_hit),
        ambiguous=len(case.ambiguous),
        ambiguous_handled=len(case.ambiguous) - len(missed),
    )
    return Scored(
        tally,
        missing=sorted(case.expected - keys),
        extra=sorted(keys - case.expected),
        traps_hit=traps_hit,
        ambiguous_missed=missed,
    )


def error_kinds(case: Case, scored: Scored) -> list[str]:
    """Name each error of a case by what went wrong, for the development summary."""
    text = case.text.upper()
    expected_bases = {base(k) for k in case.expected}
    kinds: list[str] = []
    extra_by_base = {base(k): k for k in scored.extra}
    missing_bases = {base(k) for k in scored.missing}
    for key in scored.missing:
        found = extra_by_base.get(base(key))
        system, code = base(key).split(":", 1)
        if found is not None:
            if key.split(" ")[0] != found.split(" ")[0]:
                kinds.append("code found, modifiers wrong")
            if units(key) != units(found):
                kinds.append("code found, units wrong")
        elif system == ICD10CM and "." in code and code not in text and bare(code) in text:
            kinds.append("dotless ICD-10-CM missed")
        else:
            kinds.append(f"{system} missed")
    for key in scored.extra:
        if base(key) in missing_bases:
            continue
        system, code = base(key).split(":", 1)
        if system == HCPCS and f"{ICD10CM}:{code[:3]}.{code[3:]}" in expected_bases:
            kinds.append("dotless ICD-10-CM also reported as HCPCS")
        elif any(bare(code) in bare(t) for t in scored.traps_hit):
            kinds.append(f"look-alike reported as {system}")
        else:
            kinds.append(f"spurious {system}")
    kinds += ["ambiguous code not offered both ways"] * len(scored.ambiguous_missed)
    return kinds


def load_catalog(hcpcs_file: Path) -> tuple[Catalog, str]:
    catalog = Catalog()
    catalog.add_codes(ICD10CM, icd10cm_release(), iter_icd10cm())
    hcpcs_note = "no HCPCS file"
    if hcpcs_file.exists():
        records = parse_hcpcs(hcpcs_file.read_bytes())
        catalog.add_codes(HCPCS, "2020", records)
        hcpcs_note = f"{len(records)} HCPCS 2020 codes and modifiers"
    return catalog, hcpcs_note


HEADER = (
    "| {title} | cases | expected | found | precision | recall | precision (codes only) "
    "| recall (codes only) | trap hits | ambiguous handled |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def timing(catalog: Catalog, splits: dict[str, Path], rounds: int = 5) -> str:
    """Median and p99 milliseconds of one ``extract`` call per case, over every scored
    case, after one warm-up pass: the figure the desk's < 1 ms target is about."""
    texts = [
        Case.from_json(line).text
        for path in splits.values()
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    for text in texts:
        extract(text, known=catalog.has, loaded=catalog.loaded)
    times = []
    for _ in range(rounds):
        for text in texts:
            begin = time.perf_counter()
            extract(text, known=catalog.has, loaded=catalog.loaded)
            times.append((time.perf_counter() - begin) * 1000)
    times.sort()
    mean_chars = sum(map(len, texts)) / len(texts)
    return (
        f"Time per case ({len(texts)} cases, mean {mean_chars:.0f} characters, {rounds} rounds): "
        f"median {statistics.median(times):.3f} ms, p99 {times[int(0.99 * len(times))]:.3f} ms.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--errors", action="store_true", help="list development cases the extractor gets wrong"
    )
    parser.add_argument(
        "--held-out", action="store_true", help="score the held-out file too (once, at the end)"
    )
    parser.add_argument("--hcpcs", type=Path, default=HCPCS_FILE, help="CMS's HCPCS file")
    parser.add_argument(
        "--batch",
        type=Path,
        help="score a new batch of development cases instead, before tuning on it",
    )
    args = parser.parse_args()
    splits = SPLITS if args.held_out else {"development": SPLITS["development"]}
    if args.batch is not None:
        if args.batch.resolve() == SPLITS["held-out"].resolve() or args.held_out:
            parser.error("--batch scores development cases only: never the held-out file")
        splits = {"development": args.batch}

    print("reading ICD-10-CM and HCPCS ...", file=sys.stderr)
    catalog, hcpcs_note = load_catalog(args.hcpcs)
    totals: dict[str, dict[str, Tally]] = {}
    overall = Tally()
    kinds: Counter[str] = Counter()
    wrong: list[str] = []
    batches: dict[str, dict[str, Tally]] = {}
    for split, path in splits.items():
        per_category = {category: Tally() for category in CATEGORIES}
        for line in path.read_text(encoding="utf-8").splitlines():
            case = Case.from_json(line)
            found = extract(case.text, known=catalog.has, loaded=catalog.loaded)
            scored = score(case, found)
            per_category[case.category].add(scored.tally)
            if split == "held-out":
                batch = batches.setdefault(
                    f"held-out, {held_out_batch(case.id)}", {c: Tally() for c in CATEGORIES}
                )
                batch[case.category].add(scored.tally)
            failed = scored.missing or scored.extra or scored.ambiguous_missed
            if split == "development" and failed:
                kinds.update(error_kinds(case, scored))
                wrong.append(
                    f"{case.id}: missing {scored.missing} extra {scored.extra}"
                    + (f" traps {scored.traps_hit}" if scored.traps_hit else "")
                    + (f" ambiguous {scored.ambiguous_missed}" if scored.ambiguous_missed else "")
                )
        totals[split] = per_category

    print(f"\n{heading()}\n")
    print(
        f"Python {platform.python_version()}. Extractor: `consultant.codes.extract.extract` with "
        f"the in-memory catalog (ICD-10-CM {icd10cm_release()}, {hcpcs_note}). Exact keys: "
        "code, modifiers in order, units.\n"
    )
    for split, per_category in [*totals.items(), *sorted(batches.items())]:
        print(HEADER.format(title=split))
        split_total = Tally()
        for category, tally in per_category.items():
            print(tally.row(category))
            split_total.add(tally)
        print(split_total.row(f"**{split}, all**"))
        if split in totals:
            overall.add(split_total)
        print()
    print(timing(catalog, splits))
    if len(totals) > 1:
        print(HEADER.format(title="both splits"))
        print(overall.row("**all cases**"))
    print("\n| error kind (development) | count |\n|---|---:|")
    for kind, count in kinds.most_common():
        print(f"| {kind} | {count} |")
    if args.errors:
        print("\nDevelopment cases with errors:")
        for line in wrong:
            print("  " + line)


if __name__ == "__main__":
    main()
