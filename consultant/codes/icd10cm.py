"""ICD-10-CM records from the ``simple-icd-10-cm`` package (the April 2026 release).

The package parses CMS's tabular XML at import time (about 3 s), so it is imported only
here, only when the catalog is being loaded. Chapters and blocks (``A00-A09``) are not
codes and are left out; a category's parent is therefore ``None``. A code is billable
when it is a leaf of the tree.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

from consultant.codes.formats import ICD10CM
from consultant.codes.records import CodeRecord

RELEASE = "2026-04"


def _package() -> ModuleType:
    import simple_icd_10_cm

    return simple_icd_10_cm


def icd10cm_release() -> str:
    """The release the installed package bundles, from its data file's name."""
    cm = _package()
    name = getattr(cm, "_all_codes_package_file_name", "")
    parts = name.removesuffix(".txt").split("-")  # code-list-April-2026.txt
    return f"{parts[-1]}-{parts[-2]}" if len(parts) >= 2 else RELEASE


def notes_text(code: str) -> str:
    """The notes a coder needs, one labelled paragraph each, for display and search."""
    cm = _package()
    sections = [
        ("Includes", "\n".join(cm.get_includes(code))),
        ("Inclusion terms", "\n".join(cm.get_inclusion_term(code))),
        ("Excludes1", "\n".join(cm.get_excludes1(code))),
        ("Excludes2", "\n".join(cm.get_excludes2(code))),
        ("Code first", cm.get_code_first(code)),
        ("Use additional code", cm.get_use_additional_code(code)),
        ("Code also", cm.get_code_also(code)),
        ("Notes", cm.get_notes(code)),
        ("7th character", _seventh_character_text(cm, code)),
    ]
    return "\n\n".join(f"{label}:\n{body}" for label, body in sections if body)


def _seventh_character_text(cm: ModuleType, code: str) -> str:
    rules = cm.get_seven_chr_def(code)
    note = cm.get_seven_chr_note(code)
    lines = [note] if note else []
    lines += [f"{char} {meaning}" for char, meaning in rules.items()]
    return "\n".join(lines)


def iter_icd10cm() -> Iterator[CodeRecord]:
    """Every category, subcategory and full code, in the tabular list's order."""
    cm = _package()
    for code in cm.get_all_codes(with_dots=True):
        if cm.is_chapter_or_block(code):
            continue
        parent = cm.get_parent(code)
        yield CodeRecord(
            system=ICD10CM,
            code=code,
            description=cm.get_description(code),
            billable=cm.is_leaf(code),
            parent=None if cm.is_chapter_or_block(parent) else parent,
            notes=notes_text(code),
            effective_date=None,
        )
