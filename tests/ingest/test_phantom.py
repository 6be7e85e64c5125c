"""The synthetic phantom study: generated, imported and assembled with known values."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from ingest import phantom
from ingest.queries import get_series, get_study, list_studies
from streaming.runtime import Runtime
from streaming.settings import Settings
from tests.conftest import REPO, voxcast_executable


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    data_dir = tmp_path_factory.mktemp("phantom")
    result = subprocess.run([*voxcast_executable(), "phantom", "--data-dir", str(data_dir)],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "144 instances stored" in result.stdout and "2 series built" in result.stdout
    return Runtime(Settings(data_dir=data_dir))


def _volume(runtime: Runtime, modality: str) -> tuple[np.ndarray, np.ndarray, dict]:
    studies = list_studies(runtime.catalog, patient_id=phantom.PATIENT_ID)
    assert [s["patient_name"] for s in studies] == [phantom.PATIENT_NAME]
    series = next(s for s in get_study(runtime.catalog, studies[0]["study_uid"])["series"]
                  if s["modality"] == modality)
    handle = runtime.volumes.open(get_series(runtime.catalog, series["series_uid"])["volume_path"])
    return handle.read_level(0), handle.geometry(0).affine, handle.metadata


def _value_at(data: np.ndarray, affine: np.ndarray, point_lps: np.ndarray) -> float:
    index = np.linalg.solve(affine[:3, :3], np.asarray(point_lps) - affine[:3, 3])
    k, j, i = (int(round(v)) for v in index)
    return float(data[k, j, i])


def test_ct_values_in_hounsfield_units(runtime: Runtime) -> None:
    data, affine, meta = _volume(runtime, "CT")
    assert data.shape == phantom.CT_SHAPE and meta["units"] == "HU"
    np.testing.assert_allclose(np.linalg.norm(affine[:3, :3], axis=0),
                               [phantom.CT_SLICE_MM, phantom.CT_PIXEL_MM, phantom.CT_PIXEL_MM])
    assert _value_at(data, affine, phantom.SPHERE_CENTER_LPS) == 60
    assert _value_at(data, affine, np.array([70.0, -5.0, -120.0])) == -800  # left lung (+x = L)
    assert _value_at(data, affine, np.array([0.0, 75.0, -120.0])) == 700  # spine (posterior)
    assert _value_at(data, affine, np.array([0.0, -90.0, -120.0])) == 0  # water, anterior
    assert _value_at(data, affine, np.array([0.0, -130.0, -120.0])) == -1000  # air


def test_pet_suv_from_the_radiopharmaceutical_attributes(runtime: Runtime) -> None:
    data, affine, meta = _volume(runtime, "PT")
    factor = meta["suv_bw_factor"]
    # Independent: SUVbw factor = weight[g] / (dose decayed over the uptake time)[Bq].
    expected = phantom.WEIGHT_KG * 1000.0 / (
        phantom.DOSE_BQ * 2.0 ** (-phantom.UPTAKE_S / phantom.HALF_LIFE_S))
    assert factor == pytest.approx(expected, rel=1e-6)
    assert _value_at(data, affine, phantom.SPHERE_CENTER_LPS) * factor == pytest.approx(
        phantom.SPHERE_SUV, rel=1e-3)
    assert _value_at(data, affine, np.array([0.0, -80.0, -120.0])) * factor == pytest.approx(
        phantom.BACKGROUND_SUV, rel=1e-3)


def test_generation_is_deterministic(tmp_path: Path) -> None:
    a = phantom.write_phantom_study(tmp_path / "a")
    b = phantom.write_phantom_study(tmp_path / "b")
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir()) and len(names) == 144
    assert all((a / n).read_bytes() == (b / n).read_bytes() for n in names)
