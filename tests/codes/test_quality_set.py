"""Integrity of the extraction quality set in ``data/quality``.

The set measures the extractor (``bench/extraction_quality.py``); its scores are not
asserted here because they are not yet where they should be. What is asserted is that the
measurement can be trusted: both files parse, ids are unique across them, every case has
a known category, the held-out part is at least a third of a set of 520 cases or more,
and every label passes ``check_labels.py``'s validation against the code sets.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

QUALITY = Path(__file__).parent / "data" / "quality"
DEVELOPMENT = QUALITY / "development.jsonl"
HELD_OUT = QUALITY / "held_out.jsonl"
CATEGORIES = {"dotless", "modifiers", "units", "lookalikes", "plain"}
MIN_CASES = 520
MIN_PER_CATEGORY = 80


def check_labels() -> ModuleType:
    """The checker script, imported from its file (the data folder is not a package)."""
    name = "quality_check_labels"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, QUALITY / "check_labels.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def read(path: Path) -> list[dict[str, object]]:
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        case = json.loads(line)
        assert isinstance(case, dict), f"{path.name}:{number} is not a JSON object"
        cases.append(case)
    return cases


def test_both_files_parse_and_have_the_fields() -> None:
    for path in (DEVELOPMENT, HELD_OUT):
        for case in read(path):
            for field in ("id", "category", "kind", "text", "expected", "traps"):
                assert field in case, f"{path.name}: {case.get('id')} has no {field}"


def test_ids_are_unique_across_both_files() -> None:
    ids = Counter(str(case["id"]) for path in (DEVELOPMENT, HELD_OUT) for case in read(path))
    assert [case_id for case_id, n in ids.items() if n > 1] == []


def test_every_case_has_a_known_category_and_each_category_is_large() -> None:
    cases = read(DEVELOPMENT) + read(HELD_OUT)
    categories = Counter(str(case["category"]) for case in cases)
    assert set(categories) == CATEGORIES
    assert min(categories.values()) >= MIN_PER_CATEGORY, categories


def test_the_set_is_large_and_held_out_is_at_least_a_third() -> None:
    development, held_out = len(read(DEVELOPMENT)), len(read(HELD_OUT))
    total = development + held_out
    assert total >= MIN_CASES
    assert 3 * held_out >= total  # counts only: a failure must not print held-out cases


def test_every_label_passes_the_checker() -> None:
    checker = check_labels()
    hcpcs = checker.read_hcpcs(checker.HCPCS_EXCERPT)
    problems = checker.check_files((DEVELOPMENT, HELD_OUT), hcpcs)
    assert problems == []


def test_the_checker_catches_bad_labels() -> None:
    """The checker's own rules, on made-up cases: it must not pass what it should stop."""
    module = check_labels()
    checker = module.Checker(module.HcpcsFile(frozenset({"J1100", "J1885"}), frozenset({"GP"})))
    good = {
        "id": "t-1",
        "category": "dotless",
        "kind": "note",
        "text": "Dx E119, J1885 x2, 97110GP. Spokane WA 99205. Is J1100 right?",
        "expected": ["icd10cm:E11.9", "hcpcs:J1885 x2", "cpt:97110-GP"],
        "traps": ["99205"],
        "ambiguous": [{"text": "J1100", "readings": ["icd10cm:J11.00", "hcpcs:J1100"]}],
    }
    assert checker.case_problems(good) == []
    bad_labels = {
        "icd10cm:E119": "normal form",
        "icd10cm:E11": "heading",
        "icd10cm:E11.99": "does not exist",
        "hcpcs:J9999": "HCPCS",
        "cpt:99999": "common CPT",
        "cpt:97110-ZZ": "modifier ZZ",
        "hcpcs:J1885 x3": "unit count 3",
    }
    for label, reason in bad_labels.items():
        case = {**good, "expected": [*good["expected"][1:], label]}
        problems = " ".join(checker.case_problems(case))
        assert reason in problems, (label, problems)
    forgotten = {**good, "traps": []}
    assert "'99205' is neither labelled nor in a trap" in " ".join(checker.case_problems(forgotten))
    trap_on_code = {**good, "traps": ["99205", "J1885 x2"]}
    assert "holds labelled code" in " ".join(checker.case_problems(trap_on_code))
