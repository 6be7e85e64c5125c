"""SUVbw factor: the ACRIN PET study (known fact and its own SUV-factor objects) and the
vendor rules of the QIBA pseudo-code on variants of that study's real header."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from ingest.suv import SuvResult, suv_bw_factor


def _data_root() -> Path:
    env = os.environ.get("VOXCAST_TEST_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


ACRIN = _data_root() / "petct-acrin042"
if not ACRIN.is_dir():
    pytest.skip(f"test data {ACRIN} not available", allow_module_level=True)


def _headers(folder: str) -> list[Dataset]:
    return [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted((ACRIN / folder).iterdir())]


@pytest.fixture(scope="module")
def pet() -> list[Dataset]:
    return _headers("PT_AC")


def _tm(seconds: float) -> str:
    s = int(round(seconds)) % 86400
    return f"{s // 3600:02d}{s % 3600 // 60:02d}{s % 60:02d}"


def _seconds(tm: str) -> float:
    return int(tm[0:2]) * 3600 + int(tm[2:4]) * 60 + float(tm[4:])


def _expected_bqml(ds: Dataset, decay_s: float) -> float:
    radio = ds.RadiopharmaceuticalInformationSequence[0]
    decayed = float(radio.RadionuclideTotalDose) * 2 ** (-decay_s / float(radio.RadionuclideHalfLife))
    return float(ds.PatientWeight) * 1000.0 / decayed


def test_acrin_pet_suvbw_factor(pet: list[Dataset]) -> None:
    result = suv_bw_factor(pet)
    assert result.factor == pytest.approx(4.2111e-4, rel=1e-3)
    assert result.method == "bqml-series-time"


def test_acrin_factor_matches_the_studys_own_suv_factor_objects(pet: list[Dataset]) -> None:
    """The RWV objects state SUVbw slopes; one of them is off by 1000 (a units slip)."""
    ours = suv_bw_factor(pet).factor
    assert ours is not None
    stated = []
    for rwv in _headers("RWV"):
        for item in rwv.ReferencedImageRealWorldValueMappingSequence:
            for mapping in item.RealWorldValueMappingSequence:
                if "SUVbw" in str(mapping.LUTLabel):
                    stated.append(float(mapping.RealWorldValueSlope))
    assert stated
    assert any(abs(s / ours - 1) < 1e-3 for s in stated)
    assert all(min(abs(s / ours - 1), abs(s * 1000 / ours - 1)) < 1e-3 for s in stated)


def test_non_attenuation_corrected_counts_have_no_factor() -> None:
    result = suv_bw_factor(_headers("PT_NAC"))
    assert result.factor is None and result.method == "none"
    assert "PROPCNTS" in result.reason or "attenuation" in result.reason


def test_result_rejects_a_non_positive_factor() -> None:
    with pytest.raises(ValueError):
        SuvResult(factor=0.0, reason="", method="none")


def test_ct_has_no_factor(pet: list[Dataset]) -> None:
    ct = copy.deepcopy(pet[0])
    ct.Modality = "CT"
    assert suv_bw_factor([ct]).factor is None


def test_decay_uses_series_time_minus_injection_time(pet: list[Dataset]) -> None:
    ds = pet[0]
    decay = _seconds(ds.SeriesTime) - _seconds(
        ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartTime)
    assert suv_bw_factor(pet).factor == pytest.approx(_expected_bqml(ds, decay), rel=1e-9)


def test_admin_decay_correction_means_no_decay(pet: list[Dataset]) -> None:
    ds = copy.deepcopy(pet[0])
    ds.DecayCorrection = "ADMIN"
    result = suv_bw_factor([ds])
    assert result.method == "bqml-admin"
    assert result.factor == pytest.approx(_expected_bqml(ds, 0.0), rel=1e-12)


def test_no_decay_correction_has_no_single_factor(pet: list[Dataset]) -> None:
    ds = copy.deepcopy(pet[0])
    ds.DecayCorrection = "NONE"
    result = suv_bw_factor([ds])
    assert result.factor is None and "NONE" in result.reason


def test_gml_is_already_suv(pet: list[Dataset]) -> None:
    ds = copy.deepcopy(pet[0])
    ds.Units = "GML"
    result = suv_bw_factor([ds])
    assert (result.factor, result.method) == (1.0, "gml")


def test_philips_cnts_private_suv_scale_factor(pet: list[Dataset]) -> None:
    ds = copy.deepcopy(pet[0])
    ds.Units = "CNTS"
    block = ds.private_block(0x7053, "Philips PET Private Group", create=True)
    block.add_new(0x00, "DS", "0.000123")
    result = suv_bw_factor([ds])
    assert result.method == "philips-suv-scale-factor"
    assert result.factor == pytest.approx(0.000123)


def test_philips_cnts_activity_scale_factor_then_bqml(pet: list[Dataset]) -> None:
    ds = copy.deepcopy(pet[0])
    ds.Units = "CNTS"
    block = ds.private_block(0x7053, "Philips PET Private Group", create=True)
    block.add_new(0x09, "DS", "2.5")
    result = suv_bw_factor([ds])
    base = suv_bw_factor(pet).factor
    assert result.method == "philips-activity-scale-factor" and base is not None
    assert result.factor == pytest.approx(2.5 * base, rel=1e-12)


def test_missing_weight_or_dose_gives_a_reason(pet: list[Dataset]) -> None:
    ds = copy.deepcopy(pet[0])
    del ds.PatientWeight
    assert "PatientWeight" in suv_bw_factor([ds]).reason
    ds = copy.deepcopy(pet[0])
    del ds.RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose
    assert "RadionuclideTotalDose" in suv_bw_factor([ds]).reason


def test_rewritten_series_time_falls_back_to_ge_private_then_acquisition(
        pet: list[Dataset]) -> None:
    """A post-processed series whose SeriesTime is later than its acquisitions (QIBA)."""
    original = suv_bw_factor(pet).factor
    rewritten = []
    for d in pet:
        d = copy.deepcopy(d)
        d.SeriesTime = _tm(_seconds(d.SeriesTime) + 3600)
        rewritten.append(d)
    result = suv_bw_factor(rewritten)
    assert result.method == "bqml-ge-private-scan-time"
    assert result.factor == pytest.approx(original, rel=1e-9)
    for d in rewritten:
        del d[0x0009, 0x100D]
    result = suv_bw_factor(rewritten)
    assert result.method == "bqml-earliest-acquisition"
    earliest = min(_seconds(d.AcquisitionTime) for d in rewritten)
    start = _seconds(pet[0].RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartTime)
    assert result.factor == pytest.approx(_expected_bqml(pet[0], earliest - start), rel=1e-9)


def test_injection_before_midnight_scan_after(pet: list[Dataset]) -> None:
    ds = copy.deepcopy(pet[0])
    ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartTime = "233000"
    ds.SeriesTime = ds.AcquisitionTime = "003000"
    assert suv_bw_factor([ds]).factor == pytest.approx(_expected_bqml(ds, 3600.0), rel=1e-9)


def test_start_datetime_is_preferred(pet: list[Dataset]) -> None:
    ds = copy.deepcopy(pet[0])
    radio = ds.RadiopharmaceuticalInformationSequence[0]
    radio.RadiopharmaceuticalStartDateTime = f"{ds.SeriesDate}080000"
    decay = _seconds(ds.SeriesTime) - 8 * 3600
    assert suv_bw_factor([ds]).factor == pytest.approx(_expected_bqml(ds, decay), rel=1e-9)
