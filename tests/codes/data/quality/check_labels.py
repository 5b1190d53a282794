"""Check every label of the extraction quality set against the code sets themselves.

A measurement is only as good as its labels. This script checks each case of
``development.jsonl`` and ``held_out.jsonl`` without using the extractor it measures:

* ICD-10-CM codes must exist in the release bundled by ``simple-icd-10-cm`` and be
  billable leaves (a case may name a deliberate non-billable heading in ``headers``);
* HCPCS Level II codes and HCPCS modifiers must be active in CMS's 2020 HCPCS file,
  read here by a parser of its own;
* CPT codes must be in the short list of common codes below (codes only: CPT
  descriptors are the AMA's and never appear in this project), CPT modifiers in the
  list of two-digit modifiers;
* every labelled code, modifier and unit count must be written in the text, every trap
  must be a substring of the text holding no labelled code, and every code-shaped token
  of the text must be accounted for (labelled, ambiguous or inside a trap), so that a
  forgotten code cannot pass as a false positive of the extractor.

Run it after adding cases::

    python tests/codes/data/quality/check_labels.py [--hcpcs PATH]

HCPCS labels are checked against CMS's full 2020 file when ``../shared`` has it, else
against ``hcpcs-2020-excerpt.txt``: the full file's own lines for every HCPCS code and
modifier the set labels (in CMS's layout, trailing blanks trimmed). A case that labels a
HCPCS code the excerpt lacks fails until the excerpt is rewritten from the full file::

    python tests/codes/data/quality/check_labels.py --hcpcs FULL_FILE --write-excerpt

It prints one line per problem and exits 1 when there is any.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[3]
FILES = (HERE / "development.jsonl", HERE / "held_out.jsonl")
HCPCS_FILE = REPO.parent / "shared" / "data" / "hcpcs-2020" / "HCPC2020_ANWEB_w_disclaimer.txt"
HCPCS_EXCERPT = HERE / "hcpcs-2020-excerpt.txt"

CATEGORIES = frozenset({"dotless", "modifiers", "units", "lookalikes", "plain"})
KINDS = frozenset(
    {
        "email",
        "note",
        "claim-line",
        "edi-837",
        "edi-835",
        "denial",
        "eob",
        "bulletin",
        "clearinghouse",
    }
)
FIELDS = frozenset({"id", "category", "kind", "text", "expected", "traps", "ambiguous", "headers"})
REQUIRED = ("id", "category", "kind", "text", "expected", "traps")

# Common CPT codes the set may label. Codes only, on purpose: no descriptors.
CPT_CODE_LIST = """
    00142 00731 00790 00811 01402 10060 10120 11042 11055 11056 11102 11103 11104 11719 11720
    11721 11730 11732 11750 12001 12002 12011 12032 17000 17003 17110 20550 20552 20553 20600
    20605 20610 20611 27130 27447 29125 29515 29827 29880 29881 36415 43239 45330 45378 45380
    45385 47562 49505 51702 51798 55700 57454 58300 59400 59510 62323 64483 64484 64493 64494
    64495 64615 64635 66984 67028 69210 70450 70551 71045 71046 72125 72148 73030 73562 73721
    74177 76700 76805 76856 77067 78452 80048 80053 80061 81001 81002 81003 82947 83036 84443
    85025 85610 86580 87635 87804 87880 88305 90471 90472 90686 90715 90732 90750 90791 90834
    90837 90853 92004 92014 92134 92250 93000 93005 93010 93306 93880 94010 94640 94760 95810
    95811 96110 96127 96365 96366 96372 96374 96375 96413 96415 97010 97012 97014 97035 97110
    97112 97116 97140 97161 97162 97163 97164 97530 97535 97597 97750 97810 97811 98940 98941
    98942 99000 99051 99202 99203 99204 99205 99211 99212 99213 99214 99215 99221 99222 99223
    99231 99232 99233 99238 99239 99281 99282 99283 99284 99285 99291 99292 99304 99305 99306
    99307 99308 99309 99310 99358 99381 99382 99383 99384 99385 99386 99387 99391 99392 99393
    99394 99395 99396 99397 99401 99406 99417 99439 99453 99454 99457 99458 99490 99495 99496
    99497 99498 1036F 2022F 3074F 3075F 3078F 3079F
"""
CPT_CODES = frozenset(CPT_CODE_LIST.split())
CPT_MODIFIER_LIST = """
    22 23 24 25 26 27 32 33 47 50 51 52 53 54 55 56 57 58 59 62 63 66 73 74 76 77 78 79 80 81 82
    90 91 92 93 95 96 97 99
"""
CPT_MODIFIERS = frozenset(CPT_MODIFIER_LIST.split())

ENTRY = re.compile(
    r"(?P<system>cpt|hcpcs|icd10cm|ndc):(?P<code>[0-9A-Z.]+)"
    r"(?P<mods>(?:-[0-9A-Z]{2})*)(?: x(?P<units>[1-9][0-9]{0,3}))?"
)
CPT_SHAPE = re.compile(r"\d{5}|\d{4}[FTU]")
HCPCS_SHAPE = re.compile(r"[A-CEGHJ-MP-V]\d{4}")
ICD_SHAPE = re.compile(r"[A-Z](?:\d[0-9A-Z]|[A-Z]\d)(?:\.[0-9A-Z]{1,4})?")  # QA0.0101 too
NDC_IN_TEXT = re.compile(r"(?<![\d-])(\d{4,5})-(\d{3,4})-(\d{1,2})(?![\d-])|(?<!\d)(\d{11})(?!\d)")

# Tokens that look like codes; each one in a text must be labelled or sit in a trap.
CODE_SHAPED = (
    re.compile(r"(?<![0-9A-Za-z.])\d{5}(?!\d)"),
    re.compile(r"(?<![0-9A-Za-z])[A-Z]\d{4}(?!\d)"),
    re.compile(r"(?<![0-9A-Za-z.])\d{4}[FTUMA](?![0-9A-Za-z])"),
    re.compile(r"(?<![0-9A-Za-z.])[A-Z]\d[0-9A-Z]\.[0-9A-Z]{1,4}(?![0-9A-Za-z])"),
)

WORD = re.compile(r"[0-9A-Za-z]+")


@dataclass(frozen=True, slots=True)
class HcpcsFile:
    """Active codes and modifiers of one HCPCS Level II release."""

    codes: frozenset[str]
    modifiers: frozenset[str]


def read_hcpcs(path: Path) -> HcpcsFile:
    """Active codes and modifiers of CMS's fixed-width HCPCS file.

    Record kind is column 11 (``3`` a code, ``7`` a modifier; ``4`` and ``8`` continue
    their descriptions), the code is columns 1-5 (modifiers right-aligned) and the
    termination date columns 285-292, blank while the code is active.
    """
    codes: set[str] = set()
    modifiers: set[str] = set()
    for line in path.read_text(encoding="cp1252").splitlines():
        if len(line) < 11:
            continue
        kind, code = line[10], line[0:5]
        terminated = line[284:292].strip()
        if kind == "3" and HCPCS_SHAPE.fullmatch(code) and not terminated:
            codes.add(code)
        elif kind == "7" and re.fullmatch(r"   [0-9A-Z]{2}", code) and not terminated:
            modifiers.add(code.strip())
    if not codes or not modifiers:
        raise ValueError(f"{path} does not look like CMS's HCPCS file")
    return HcpcsFile(frozenset(codes), frozenset(modifiers))


def dotted(code: str) -> str:
    """ICD-10-CM in its normal form: upper case, the dot after the third character."""
    bare = code.replace(".", "").upper()
    return bare if len(bare) <= 3 else f"{bare[:3]}.{bare[3:]}"


def ndcs_in(text: str) -> set[str]:
    """Every NDC written in the text, as its 11-digit billing form."""
    found = set()
    for match in NDC_IN_TEXT.finditer(text):
        if match.group(4):
            found.add(match.group(4))
            continue
        labeler, product, package = match.group(1), match.group(2), match.group(3)
        if len(labeler) + len(product) + len(package) in (10, 11):
            found.add(labeler.zfill(5) + product.zfill(4) + package.zfill(2))
    return found


class Checker:
    """Validates cases; the ICD-10-CM package is imported once, when first needed."""

    def __init__(self, hcpcs: HcpcsFile) -> None:
        self.hcpcs = hcpcs
        self._cm: ModuleType | None = None

    @property
    def cm(self) -> ModuleType:
        if self._cm is None:
            import simple_icd_10_cm

            self._cm = simple_icd_10_cm
        return self._cm

    # --- single codes ----------------------------------------------------------------

    def code_problem(self, system: str, code: str, headers: Iterable[str] = ()) -> str | None:
        """Why ``code`` is not a real code of ``system``, or None when it is."""
        if system == "cpt":
            if not CPT_SHAPE.fullmatch(code):
                return f"CPT {code} is not 5 characters of CPT shape"
            if code not in CPT_CODES:
                return f"CPT {code} is not in the list of common CPT codes"
        elif system == "hcpcs":
            if code not in self.hcpcs.codes:
                return f"HCPCS {code} is not an active code of the HCPCS file"
        elif system == "icd10cm":
            if code != dotted(code) or not ICD_SHAPE.fullmatch(code):
                return f"ICD-10-CM {code} is not in normal form (dot after the 3rd character)"
            if not self.cm.is_valid_item(code) or self.cm.is_chapter_or_block(code):
                return f"ICD-10-CM {code} does not exist"
            if not self.cm.is_leaf(code) and code not in headers:
                return f"ICD-10-CM {code} is a heading, not billable (list it in headers if meant)"
        elif system == "ndc":
            if not re.fullmatch(r"\d{11}", code):
                return f"NDC {code} is not 11 digits"
        else:
            return f"unknown system {system}"
        return None

    def modifier_problem(self, modifier: str) -> str | None:
        if modifier in CPT_MODIFIERS or modifier in self.hcpcs.modifiers:
            return None
        return f"modifier {modifier} is neither a CPT modifier nor an active HCPCS modifier"

    # --- one case --------------------------------------------------------------------

    def case_problems(self, case: dict[str, object]) -> list[str]:
        """Everything wrong with one case, each as a sentence naming the case."""
        case_id = case.get("id", "?")
        problems = [f"{case_id}: {p}" for p in self._case_problems(case)]
        return problems

    def _case_problems(self, case: dict[str, object]) -> list[str]:
        problems: list[str] = []
        missing = [name for name in REQUIRED if name not in case]
        if missing:
            return [f"missing fields {missing}"]
        unknown = set(case) - FIELDS
        if unknown:
            problems.append(f"unknown fields {sorted(unknown)}")
        text = case["text"]
        if not isinstance(text, str) or not text.strip():
            return [*problems, "text is empty"]
        if case["category"] not in CATEGORIES:
            problems.append(f"unknown category {case['category']!r}")
        if case["kind"] not in KINDS:
            problems.append(f"unknown kind {case['kind']!r}")
        expected = case["expected"]
        traps = case["traps"]
        ambiguous = case.get("ambiguous", [])
        headers = case.get("headers", [])
        if not isinstance(expected, list) or not isinstance(traps, list):
            return [*problems, "expected and traps must be lists"]
        if not isinstance(ambiguous, list) or not isinstance(headers, list):
            return [*problems, "ambiguous and headers must be lists"]

        labelled: dict[tuple[str, str], str] = {}
        for entry in expected:
            problems += self._entry_problems(entry, text, headers, labelled)
        for header in headers:
            if ("icd10cm", header) not in labelled:
                problems.append(f"header {header} is not among the expected codes")
            elif self.cm.is_valid_item(header) and self.cm.is_leaf(header):
                problems.append(f"header {header} is billable: no need to list it")

        readings_seen: list[str] = []
        for item in ambiguous:
            problems += self._ambiguous_problems(item, text, labelled, readings_seen)

        bare_codes = [code.replace(".", "") for _, code in labelled] + [
            str(item.get("text", "")) for item in ambiguous if isinstance(item, dict)
        ]
        for trap in traps:
            if not isinstance(trap, str) or not trap:
                problems.append(f"trap {trap!r} is not a non-empty string")
                continue
            if trap not in text:
                problems.append(f"trap {trap!r} is not in the text")
            inside = [code for code in bare_codes if code and code in trap.replace(".", "")]
            if inside:
                problems.append(f"trap {trap!r} holds labelled code(s) {inside}")
        if len(set(traps)) != len(traps):
            problems.append("a trap is listed twice")

        problems += self._unaccounted(text, labelled, ambiguous, traps)
        return problems

    def _entry_problems(
        self,
        entry: object,
        text: str,
        headers: list[str],
        labelled: dict[tuple[str, str], str],
    ) -> list[str]:
        if not isinstance(entry, str):
            return [f"expected entry {entry!r} is not a string"]
        match = ENTRY.fullmatch(entry)
        if not match:
            return [f"expected entry {entry!r} is not 'system:CODE[-MOD...][ xN]'"]
        system, code = match["system"], match["code"]
        modifiers = [m for m in match["mods"].split("-") if m]
        problems: list[str] = []
        problem = self.code_problem(system, code, headers)
        if problem:
            problems.append(problem)
        if (system, code) in labelled:
            problems.append(f"{system}:{code} is labelled twice (merge its modifiers and units)")
        labelled[(system, code)] = entry
        if (modifiers or match["units"]) and system not in ("cpt", "hcpcs"):
            problems.append(f"{entry}: only CPT and HCPCS codes carry modifiers or units")
        for modifier in modifiers:
            problem = self.modifier_problem(modifier)
            if problem:
                problems.append(f"{entry}: {problem}")
            elif modifier not in text:
                problems.append(f"{entry}: modifier {modifier} is not written in the text")
        if len(set(modifiers)) != len(modifiers):
            problems.append(f"{entry}: a modifier is repeated")
        if len(modifiers) > 4:
            problems.append(f"{entry}: more than four modifiers")
        if match["units"] and match["units"] not in text:
            problems.append(f"{entry}: unit count {match['units']} is not written in the text")
        if not self._written(system, code, text):
            problems.append(f"{system}:{code} is not written in the text")
        return problems

    def _written(self, system: str, code: str, text: str) -> bool:
        if system == "ndc":
            return code in ndcs_in(text)
        if system == "icd10cm":
            upper = text.upper()
            return code in upper or code.replace(".", "") in upper
        return code in text

    def _ambiguous_problems(
        self,
        item: object,
        text: str,
        labelled: dict[tuple[str, str], str],
        readings_seen: list[str],
    ) -> list[str]:
        if not isinstance(item, dict) or set(item) != {"text", "readings"}:
            return [f"ambiguous entry {item!r} must have exactly 'text' and 'readings'"]
        written, readings = item["text"], item["readings"]
        problems: list[str] = []
        if not isinstance(written, str) or written not in text:
            problems.append(f"ambiguous text {written!r} is not in the text")
        if not isinstance(readings, list) or len(readings) < 2:
            return [*problems, f"ambiguous {written!r} needs at least two readings"]
        systems = set()
        for reading in readings:
            match = ENTRY.fullmatch(reading) if isinstance(reading, str) else None
            if not match or match["mods"] or match["units"]:
                problems.append(f"ambiguous reading {reading!r} is not 'system:CODE'")
                continue
            system, code = match["system"], match["code"]
            systems.add(system)
            problem = self.code_problem(system, code)
            if problem:
                problems.append(f"ambiguous {written!r}: {problem}")
            if code.replace(".", "") != written:
                problems.append(f"ambiguous reading {reading} is not a reading of {written!r}")
            if (system, code) in labelled:
                problems.append(f"ambiguous reading {reading} is also expected")
            if reading in readings_seen:
                problems.append(f"ambiguous reading {reading} is listed twice")
            readings_seen.append(reading)
        if len(systems) < 2:
            problems.append(f"ambiguous {written!r}: readings must come from different systems")
        return problems

    def _unaccounted(
        self,
        text: str,
        labelled: dict[tuple[str, str], str],
        ambiguous: list[object],
        traps: list[object],
    ) -> list[str]:
        known = {code for _, code in labelled} | {code.replace(".", "") for _, code in labelled}
        known |= {str(item["text"]) for item in ambiguous if isinstance(item, dict)}
        ndcs = [code for system, code in labelled if system == "ndc"]
        trap_texts = [t for t in traps if isinstance(t, str)]
        problems = []
        for pattern in CODE_SHAPED:
            for match in pattern.finditer(text):
                token = match.group()
                word = WORD.match(text, match.start()).group().upper()  # S72001A, not S7200
                if token in known or word in known or any(token in t for t in trap_texts):
                    continue
                if any(token in ndc for ndc in ndcs):
                    continue
                problems.append(f"code-shaped {token!r} is neither labelled nor in a trap")
        return problems


def load(path: Path) -> list[dict[str, object]]:
    """The cases of one JSONL file; a line that is not a JSON object raises ValueError."""
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        case = json.loads(line)
        if not isinstance(case, dict):
            raise ValueError(f"{path.name}:{number}: not a JSON object")
        cases.append(case)
    return cases


def check_files(paths: Iterable[Path], hcpcs: HcpcsFile) -> list[str]:
    """Problems in all files together (ids must be unique across them)."""
    checker = Checker(hcpcs)
    problems: list[str] = []
    ids: Counter[str] = Counter()
    for path in paths:
        for case in load(path):
            ids[str(case.get("id"))] += 1
            problems += [f"{path.name}: {p}" for p in checker.case_problems(case)]
    problems += [f"id {case_id} is used {n} times" for case_id, n in ids.items() if n > 1]
    return problems


def labelled_hcpcs(paths: Iterable[Path]) -> set[str]:
    """Every HCPCS code, ambiguous reading and modifier the cases label."""
    found: set[str] = set()
    for path in paths:
        for case in load(path):
            ambiguous = [r for item in case.get("ambiguous", []) for r in item["readings"]]
            for entry in [*case["expected"], *ambiguous]:
                match = ENTRY.fullmatch(entry)
                if match and match["system"] == "hcpcs":
                    found.add(match["code"])
                if match:
                    found.update(m for m in match["mods"].split("-") if m)
    return found


def write_excerpt(full: Path, paths: Iterable[Path], excerpt: Path = HCPCS_EXCERPT) -> int:
    """Copy the full file's disclaimer and the lines of every labelled code and modifier
    (continuation lines included) to the excerpt; returns the number of record lines."""
    wanted = labelled_hcpcs(paths)
    lines = full.read_text(encoding="cp1252").splitlines()
    first_record = next(i for i, line in enumerate(lines) if line[10:11] in ("3", "7"))
    records = [line.rstrip() for line in lines[first_record:] if line[0:5].strip() in wanted]
    text = "\r\n".join([*(line.rstrip() for line in lines[:first_record]), *records]) + "\r\n"
    excerpt.write_bytes(text.encode("cp1252"))
    return len(records)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    default = HCPCS_FILE if HCPCS_FILE.exists() else HCPCS_EXCERPT
    parser.add_argument("--hcpcs", type=Path, default=default, help="CMS's HCPCS file")
    parser.add_argument(
        "--write-excerpt", action="store_true", help="rewrite the excerpt from --hcpcs"
    )
    parser.add_argument("files", nargs="*", type=Path, default=list(FILES))
    args = parser.parse_args(argv)
    if args.write_excerpt:
        count = write_excerpt(args.hcpcs, args.files)
        print(f"{count} record lines written to {HCPCS_EXCERPT.name}", file=sys.stderr)
    problems = check_files(args.files, read_hcpcs(args.hcpcs))
    for problem in problems:
        print(problem)
    total = sum(len(load(path)) for path in args.files)
    print(f"{total} cases, {len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
