"""What medical codes look like, and the facts about them the desk keeps built in.

The code systems' shapes, the CPT section ranges used for routing, and short labels for
the common modifiers are facts about the code sets, written here in the desk's own words.
No CPT descriptor text lives in this project: CPT codes are described only by the section
they fall in, unless the user imports a licensed descriptor file.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

# --- code systems -------------------------------------------------------------------

CPT = "cpt"
HCPCS = "hcpcs"
ICD10CM = "icd10cm"
ICD10PCS = "icd10pcs"
MODIFIER = "modifier"
NDC = "ndc"

SYSTEM_NAMES: dict[str, str] = {
    CPT: "CPT (AMA)",
    HCPCS: "HCPCS Level II",
    ICD10CM: "ICD-10-CM",
    ICD10PCS: "ICD-10-PCS",
    MODIFIER: "CPT/HCPCS modifier",
    NDC: "National Drug Code",
}

CPT_CATEGORY_I = re.compile(r"\d{5}")
# Category II codes run 0001F-9007F; the other letter-suffixed kinds all start with 0.
CPT_LETTER_CODE = re.compile(r"\d{4}F|0\d{3}[TUMA]")
HCPCS_CODE = re.compile(r"[A-CEGHJ-MP-V]\d{4}")
# A letter, then a digit and any character, or (since the 2026 release's QA0.0101) a
# second letter and a digit.
ICD10CM_CATEGORY = r"[A-Z](?:\d[0-9A-Z]|[A-Z]\d)"
ICD10CM_DOTTED = re.compile(rf"{ICD10CM_CATEGORY}\.[0-9A-Z]{{1,4}}")
ICD10CM_DOTLESS = re.compile(rf"{ICD10CM_CATEGORY}[0-9A-Z]{{0,4}}")
ICD10PCS_CODE = re.compile(r"[0-9BCDFGHX][0-9A-HJ-NP-Z]{6}")

CPT_LETTER_KINDS: dict[str, str] = {
    "F": "Category II (performance measurement)",
    "T": "Category III (emerging technology)",
    "U": "Proprietary Laboratory Analyses (PLA)",
    "M": "Multianalyte Assays with Algorithmic Analyses (MAAA)",
    "A": "Immunization administration (letter-suffixed Category I)",
}


def dotted_icd10cm(code: str) -> str:
    """ICD-10-CM with its dot after the third character, as the catalog stores it."""
    code = code.replace(".", "").upper()
    return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"


def is_cpt(code: str) -> bool:
    return bool(CPT_CATEGORY_I.fullmatch(code) or CPT_LETTER_CODE.fullmatch(code))


def is_hcpcs(code: str) -> bool:
    return bool(HCPCS_CODE.fullmatch(code))


def is_icd10cm(code: str) -> bool:
    """Shape only: 3 to 7 characters, a letter first, a digit second or third, the dot
    optional after the 3rd."""
    bare = code.replace(".", "")
    return bool(ICD10CM_DOTLESS.fullmatch(bare)) and 3 <= len(bare) <= 7


# --- CPT sections -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CptRange:
    """A run of Category I codes and the section (and subsection) it belongs to."""

    first: int
    last: int
    section: str
    subsection: str


# Section boundaries as published facts about the code set; surgery is split by the
# body system its first digit names, which is how the desk routes surgical cases.
CPT_RANGES: tuple[CptRange, ...] = (
    CptRange(100, 1999, "Anesthesia", "Anesthesia"),
    CptRange(10004, 19999, "Surgery", "Integumentary system"),
    CptRange(20000, 29999, "Surgery", "Musculoskeletal system"),
    CptRange(30000, 39999, "Surgery", "Respiratory and cardiovascular systems"),
    CptRange(40000, 49999, "Surgery", "Digestive system"),
    CptRange(50000, 59999, "Surgery", "Urinary, genital and maternity care"),
    CptRange(60000, 69990, "Surgery", "Endocrine, nervous, eye and ear"),
    CptRange(70010, 79999, "Radiology", "Radiology"),
    CptRange(80047, 89398, "Pathology and Laboratory", "Pathology and Laboratory"),
    CptRange(90281, 96359, "Medicine", "Medicine"),
    CptRange(96360, 96379, "Medicine", "Hydration, injections and infusions"),
    CptRange(96380, 99091, "Medicine", "Medicine"),
    CptRange(99100, 99140, "Anesthesia", "Qualifying circumstances"),
    CptRange(99141, 99199, "Medicine", "Medicine"),
    CptRange(99202, 99499, "Evaluation and Management", "Evaluation and Management"),
    CptRange(99500, 99600, "Medicine", "Home health"),
    CptRange(99601, 99602, "Medicine", "Home infusion"),
    CptRange(99605, 99607, "Medicine", "Medication therapy management"),
)


RANGE_STARTS = [r.first for r in CPT_RANGES]


def cpt_range(code: str) -> CptRange | None:
    """The section a Category I code falls in; None when it falls in none (not a code)."""
    if not CPT_CATEGORY_I.fullmatch(code):
        return None
    number = int(code)
    index = bisect.bisect_right(RANGE_STARTS, number) - 1
    if index >= 0 and number <= CPT_RANGES[index].last:
        return CPT_RANGES[index]
    return None


def cpt_section(code: str) -> str | None:
    """'Section — subsection' for any CPT shape, or None when the code has no section."""
    if CPT_LETTER_CODE.fullmatch(code):
        return CPT_LETTER_KINDS[code[-1]]
    found = cpt_range(code)
    if found is None:
        return None
    if found.section == found.subsection:
        return found.section
    return f"{found.section} — {found.subsection}"


# --- modifiers ----------------------------------------------------------------------

# Two-digit CPT modifiers, each with a short label in the desk's own words.
CPT_MODIFIERS: dict[str, str] = {
    "22": "unusually extensive service",
    "23": "general anesthesia where none is usual",
    "24": "unrelated E/M in a postoperative period",
    "25": "separate, significant E/M on the day of a procedure",
    "26": "professional component only",
    "27": "several outpatient hospital E/M visits on one day",
    "32": "service required by a payer or agency",
    "33": "preventive service",
    "47": "anesthesia given by the surgeon",
    "50": "both sides in one session",
    "51": "several procedures in one session",
    "52": "service cut short by the physician's choice",
    "53": "procedure stopped for the patient's safety",
    "54": "surgery only, no pre- or post-operative care",
    "55": "post-operative care only",
    "56": "pre-operative care only",
    "57": "E/M that led to the decision for major surgery",
    "58": "planned or staged related procedure in the global period",
    "59": "distinct service, not usually reported together",
    "62": "two surgeons sharing one procedure",
    "63": "procedure on an infant under 4 kg",
    "66": "team surgery",
    "73": "outpatient procedure stopped before anesthesia",
    "74": "outpatient procedure stopped after anesthesia began",
    "76": "same procedure repeated by the same physician",
    "77": "same procedure repeated by another physician",
    "78": "unplanned return to the operating room in the global period",
    "79": "unrelated procedure in the global period",
    "80": "assistant surgeon",
    "81": "minimum assistant surgeon",
    "82": "assistant surgeon when no qualified resident was available",
    "90": "laboratory work done by an outside lab",
    "91": "repeat of a clinical lab test",
    "92": "alternative lab platform testing",
    "93": "audio-only telehealth service",
    "95": "synchronous audio-video telehealth service",
    "96": "habilitative service",
    "97": "rehabilitative service",
    "99": "several modifiers apply",
}

# Common HCPCS Level II modifiers (two characters), labelled in the desk's own words.
HCPCS_MODIFIERS: dict[str, str] = {
    "AA": "anesthesia personally performed by the anesthesiologist",
    "AD": "anesthesiologist supervising more than four procedures",
    "AI": "principal physician of record",
    "AS": "assistant at surgery who is a PA, NP or CNS",
    "AT": "acute chiropractic treatment",
    "CO": "outpatient therapy partly by a therapy assistant (OT)",
    "CQ": "outpatient therapy partly by a therapy assistant (PT)",
    "CR": "catastrophe or disaster related",
    "CS": "cost-sharing waived",
    "E1": "upper left eyelid",
    "E2": "lower left eyelid",
    "E3": "upper right eyelid",
    "E4": "lower right eyelid",
    "FA": "left hand, thumb",
    "F1": "left hand, second digit",
    "F2": "left hand, third digit",
    "F3": "left hand, fourth digit",
    "F4": "left hand, fifth digit",
    "F5": "right hand, thumb",
    "F6": "right hand, second digit",
    "F7": "right hand, third digit",
    "F8": "right hand, fourth digit",
    "F9": "right hand, fifth digit",
    "FS": "split or shared E/M visit",
    "FT": "unrelated E/M during a global or on the same day as another",
    "CG": "policy criteria applied",
    "GA": "waiver of liability (ABN) on file",
    "GC": "service partly by a resident under a teaching physician",
    "GE": "resident service without teaching physician presence (primary care exception)",
    "GK": "reasonable and necessary item that goes with a GA or GZ item",
    "GL": "upgrade given free of charge, no ABN",
    "GN": "speech-language pathology plan of care",
    "GO": "occupational therapy plan of care",
    "GP": "physical therapy plan of care",
    "GT": "telehealth via interactive audio and video",
    "GV": "attending physician not employed by the hospice",
    "GW": "service not related to the hospice condition",
    "GX": "voluntary notice of liability issued",
    "GY": "statutorily excluded or not a Medicare benefit",
    "GZ": "expected denial as not reasonable and necessary, no ABN",
    "JB": "drug given subcutaneously",
    "JW": "drug amount discarded",
    "JZ": "no drug amount discarded",
    "KH": "DMEPOS item, first month's rental or initial claim",
    "KI": "DMEPOS item, second or third month's rental",
    "KJ": "DMEPOS item, rental months four to fifteen",
    "KS": "glucose monitor supply for a patient not on insulin",
    "KX": "documentation on file meets the policy requirements",
    "LC": "left circumflex coronary artery",
    "LD": "left anterior descending coronary artery",
    "LM": "left main coronary artery",
    "LT": "left side",
    "NU": "new equipment purchased",
    "PN": "non-excepted service at an off-campus department",
    "PO": "excepted service at an off-campus department",
    "PT": "colorectal screening that became diagnostic",
    "Q5": "service by a substitute physician under a reciprocal arrangement",
    "Q6": "service by a locum tenens physician",
    "QK": "anesthesiologist directing two to four procedures",
    "QS": "monitored anesthesia care",
    "QW": "CLIA-waived test",
    "QX": "CRNA service with medical direction",
    "QY": "anesthesiologist directing one CRNA",
    "QZ": "CRNA service without medical direction",
    "RC": "right coronary artery",
    "RI": "ramus intermedius coronary artery",
    "RR": "equipment rented",
    "RT": "right side",
    "SA": "nurse practitioner rendering with a physician",
    "SB": "nurse midwife",
    "TA": "left foot, great toe",
    "T1": "left foot, second digit",
    "T2": "left foot, third digit",
    "T3": "left foot, fourth digit",
    "T4": "left foot, fifth digit",
    "T5": "right foot, great toe",
    "T6": "right foot, second digit",
    "T7": "right foot, third digit",
    "T8": "right foot, fourth digit",
    "T9": "right foot, fifth digit",
    "TC": "technical component only",
    "UE": "used equipment purchased",
    "XE": "separate encounter",
    "XP": "separate practitioner",
    "XS": "separate structure or organ",
    "XU": "unusual non-overlapping service",
}

KNOWN_MODIFIERS: dict[str, str] = {**CPT_MODIFIERS, **HCPCS_MODIFIERS}

# Modifiers that only ever go on an E/M code.
EM_ONLY_MODIFIERS: frozenset[str] = frozenset({"24", "25", "57", "FS", "FT"})


def is_em_code(code: str) -> bool:
    found = cpt_range(code)
    return found is not None and found.section == "Evaluation and Management"


# Modifiers that can bypass an NCCI pair edit whose modifier indicator is 1.
NCCI_BYPASS_MODIFIERS: frozenset[str] = frozenset(
    {"24", "25", "27", "57", "58", "59", "78", "79", "91", "XE", "XP", "XS", "XU"}
    | {"E1", "E2", "E3", "E4", "FA", "LC", "LD", "LM", "LT", "RC", "RI", "RT", "TA"}
    | {f"F{d}" for d in range(1, 10)}
    | {f"T{d}" for d in range(1, 10)}
)


def modifier_label(modifier: str) -> str | None:
    return KNOWN_MODIFIERS.get(modifier.upper())


# --- NDC ----------------------------------------------------------------------------


def ndc_as_11_digits(ndc: str) -> str:
    """The billing form (5-4-2) of an NDC written 4-4-2, 5-3-2, 5-4-1 or already 11 digits."""
    parts = re.split(r"[-\s]", ndc.strip())
    if len(parts) == 1:
        return parts[0]
    labeler, product, package = parts
    return labeler.zfill(5) + product.zfill(4) + package.zfill(2)
