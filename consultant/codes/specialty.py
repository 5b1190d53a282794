"""Which kind of coder a case needs, from the codes it mentions (or, failing that, words).

A pure function: procedure codes decide (the section most of them fall in, the first
mention breaking ties); a case with only diagnosis codes goes to a diagnosis coder; a
case with no codes at all is judged by keywords.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from consultant.codes import formats
from consultant.codes.formats import CPT, HCPCS, ICD10CM, ICD10PCS

EVALUATION_MANAGEMENT = "evaluation-management"
ANESTHESIA = "anesthesia"
SURGERY_INTEGUMENTARY = "surgery-integumentary"
SURGERY_MUSCULOSKELETAL = "surgery-musculoskeletal"
SURGERY_CARDIOVASCULAR = "surgery-respiratory-cardiovascular"
SURGERY_DIGESTIVE = "surgery-digestive"
SURGERY_URINARY_GENITAL = "surgery-urinary-genital-maternity"
SURGERY_NERVOUS = "surgery-endocrine-nervous-eye-ear"
RADIOLOGY = "radiology"
PATHOLOGY_LAB = "pathology-lab"
MEDICINE = "medicine"
HOME_HEALTH = "medicine-home-health"
INFUSION = "medicine-infusion"
HCPCS_SUPPLIES = "hcpcs-supplies-drugs-dme"
DIAGNOSIS_ONLY = "diagnosis-only"
GENERAL = "general"

SPECIALTIES = (
    EVALUATION_MANAGEMENT, ANESTHESIA, SURGERY_INTEGUMENTARY, SURGERY_MUSCULOSKELETAL,
    SURGERY_CARDIOVASCULAR, SURGERY_DIGESTIVE, SURGERY_URINARY_GENITAL, SURGERY_NERVOUS,
    RADIOLOGY, PATHOLOGY_LAB, MEDICINE, HOME_HEALTH, INFUSION, HCPCS_SUPPLIES,
    DIAGNOSIS_ONLY, GENERAL,
)  # fmt: skip

SURGERY_BY_FIRST_DIGIT = {
    "1": SURGERY_INTEGUMENTARY,
    "2": SURGERY_MUSCULOSKELETAL,
    "3": SURGERY_CARDIOVASCULAR,
    "4": SURGERY_DIGESTIVE,
    "5": SURGERY_URINARY_GENITAL,
    "6": SURGERY_NERVOUS,
}
SECTION_SPECIALTY = {
    "Anesthesia": ANESTHESIA,
    "Radiology": RADIOLOGY,
    "Pathology and Laboratory": PATHOLOGY_LAB,
    "Evaluation and Management": EVALUATION_MANAGEMENT,
    "Medicine": MEDICINE,
}
SUBSECTION_SPECIALTY = {
    "Home health": HOME_HEALTH,
    "Home infusion": HOME_HEALTH,
    "Hydration, injections and infusions": INFUSION,
}
LETTER_CODE_SPECIALTY = {"U": PATHOLOGY_LAB, "M": PATHOLOGY_LAB, "A": MEDICINE}

# Checked in order: the first group with any of its words wins.
KEYWORD_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (HOME_HEALTH, ("home health", "home infusion", "home visit", "hospice")),
    (INFUSION, ("infusion", "hydration", "injection", "chemo", "iv push")),
    (ANESTHESIA, ("anesthe", "anaesthe", "crna", "base units")),
    (RADIOLOGY, ("radiolog", "x-ray", "xray", "mri", "ct scan", "ultrasound", "mammo")),
    (PATHOLOGY_LAB, ("lab", "laboratory", "patholog", "panel", "specimen")),
    (HCPCS_SUPPLIES, ("dme", "durable medical", "wheelchair", "supply", "supplies", "j-code")),
    (SURGERY_MUSCULOSKELETAL, ("fracture", "arthroplasty", "arthroscop", "orthop")),
    (SURGERY_DIGESTIVE, ("colonoscop", "endoscop", "cholecystectomy", "hernia")),
    (SURGERY_INTEGUMENTARY, ("laceration", "debridement", "lesion excision", "wound repair")),
    (EVALUATION_MANAGEMENT, ("e/m", "office visit", "mdm", "new patient", "established patient")),
    (DIAGNOSIS_ONLY, ("diagnos", "icd-10", "icd10", "dx", "sequenc")),
)
KEYWORDS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (specialty, re.compile(r"(?i)\b(?:" + "|".join(map(re.escape, words)) + ")"))
    for specialty, words in KEYWORD_GROUPS
)


def procedure_specialty(system: str, code: str) -> str | None:
    """The specialty one procedure code belongs to; None for non-procedure codes."""
    if system == HCPCS:
        return HCPCS_SUPPLIES
    if system != CPT:
        return None
    if formats.CPT_LETTER_CODE.fullmatch(code):
        return LETTER_CODE_SPECIALTY.get(code[-1])
    found = formats.cpt_range(code)
    if found is None:
        return None
    if found.section == "Surgery":
        return SURGERY_BY_FIRST_DIGIT[code[0]]
    return SUBSECTION_SPECIALTY.get(found.subsection) or SECTION_SPECIALTY[found.section]


def specialty_for(codes: Iterable[tuple[str, str]], text: str = "") -> str:
    """The specialty for a case: its procedure codes' most common one, the first mention
    breaking ties; ``diagnosis-only`` with only ICD-10 codes; else from keywords."""
    codes = list(codes)
    votes = Counter[str]()
    first_seen: dict[str, int] = {}
    for position, (system, code) in enumerate(codes):
        specialty = procedure_specialty(system, code)
        if specialty is not None:
            votes[specialty] += 1
            first_seen.setdefault(specialty, position)
    if votes:
        return max(votes, key=lambda s: (votes[s], -first_seen[s]))
    if any(system in (ICD10CM, ICD10PCS) for system, _ in codes):
        return DIAGNOSIS_ONLY
    return specialty_from_keywords(text)


def specialty_from_keywords(text: str) -> str:
    for specialty, pattern in KEYWORDS:
        if pattern.search(text):
            return specialty
    return GENERAL
