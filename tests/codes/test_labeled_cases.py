"""Precision and recall of extraction over the hand-labelled case set.

``data/labeled_cases.jsonl`` holds realistic case sentences and emails written for this
project (made-up people and places), each with the codes a coder would write down —
``system:code``, then ``-MODIFIER`` for each attached modifier and `` xN`` for units.
Many hold traps: ZIP codes, phone numbers, dates, amounts, claim and member numbers,
times, vitals and NDCs. A code counts as found only when its modifiers and units match.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from consultant.codes.catalog import Catalog
from consultant.codes.extract import extract

CASES = Path(__file__).parent / "data" / "labeled_cases.jsonl"
MIN_PRECISION = 0.98
MIN_RECALL = 0.95


def load_cases() -> list[dict[str, object]]:
    return [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines()]


def test_the_set_is_large_and_has_traps() -> None:
    cases = load_cases()
    assert len(cases) >= 200
    assert sum(1 for case in cases if not case["expected"]) >= 30


def test_precision_and_recall(icd_catalog: Catalog, capsys: pytest.CaptureFixture[str]) -> None:
    true_positive = false_positive = false_negative = 0
    misses: list[str] = []
    for case in load_cases():
        found = {f.key for f in extract(str(case["text"]), known=icd_catalog.has)}
        expected = set(case["expected"])  # type: ignore[arg-type]
        true_positive += len(found & expected)
        false_positive += len(found - expected)
        false_negative += len(expected - found)
        if found != expected:
            extra, missing = sorted(found - expected), sorted(expected - found)
            misses.append(f"{case['id']}: extra {extra} missing {missing}")
    precision = true_positive / (true_positive + false_positive)
    recall = true_positive / (true_positive + false_negative)
    with capsys.disabled():
        print(f"\nlabelled cases: precision {precision:.3f}, recall {recall:.3f}")
        for miss in misses:
            print("  " + miss)
    assert precision >= MIN_PRECISION, misses
    assert recall >= MIN_RECALL, misses
