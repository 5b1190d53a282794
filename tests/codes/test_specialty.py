import pytest

from consultant.codes import specialty as s


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ([("cpt", "99214")], s.EVALUATION_MANAGEMENT),
        ([("cpt", "00840")], s.ANESTHESIA),
        ([("cpt", "11042")], s.SURGERY_INTEGUMENTARY),
        ([("cpt", "27447"), ("cpt", "99213")], s.SURGERY_MUSCULOSKELETAL),
        ([("cpt", "33533")], s.SURGERY_CARDIOVASCULAR),
        ([("cpt", "45380")], s.SURGERY_DIGESTIVE),
        ([("cpt", "59400")], s.SURGERY_URINARY_GENITAL),
        ([("cpt", "64483")], s.SURGERY_NERVOUS),
        ([("cpt", "71046")], s.RADIOLOGY),
        ([("cpt", "80053"), ("cpt", "0241U")], s.PATHOLOGY_LAB),
        ([("cpt", "97110")], s.MEDICINE),
        ([("cpt", "96365"), ("cpt", "96366")], s.INFUSION),
        ([("cpt", "99601"), ("cpt", "99602")], s.HOME_HEALTH),
        ([("hcpcs", "E0601")], s.HCPCS_SUPPLIES),
        ([("icd10cm", "E11.9")], s.DIAGNOSIS_ONLY),
        ([("cpt", "99213"), ("cpt", "20610"), ("cpt", "20611")], s.SURGERY_MUSCULOSKELETAL),
    ],
)
def test_specialty_from_codes(codes: list[tuple[str, str]], expected: str) -> None:
    assert s.specialty_for(codes) == expected


def test_first_mention_breaks_ties() -> None:
    assert s.specialty_for([("cpt", "71046"), ("cpt", "99213")]) == s.RADIOLOGY


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("How long can a home infusion visit run?", s.HOME_HEALTH),
        ("Question about anesthesia base units for a CRNA", s.ANESTHESIA),
        ("Which wheelchair supply code?", s.HCPCS_SUPPLIES),
        ("Sequencing question for a diagnosis", s.DIAGNOSIS_ONLY),
        ("Hello there", s.GENERAL),
    ],
)
def test_specialty_from_keywords(text: str, expected: str) -> None:
    assert s.specialty_for([], text) == expected
