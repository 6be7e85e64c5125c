"""The local Zarr volume store: round trip, pyramid levels, atomic publication, clean-up."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

from render_engine.geometry import VolumeGeometry
from volume_cache.errors import VolumeNotFoundError
from volume_cache.volume import Volume, VolumeError, level_factors
from volume_cache.zarr_store import (
    CHUNK_EDGE,
    TMP_PREFIX,
    VOLUMES_DIR,
    LocalVolumeStore,
    VolumeStoreError,
    remove_stale,
)

SERIES = "1.2.826.0.1.3680043.8.498.1"


def _data_root() -> Path:
    env = os.environ.get("VOXCAST_TEST_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def _volume(shape: tuple[int, int, int] = (70, 150, 130), *, dtype: Any = np.int16,
            spacing: tuple[float, float] = (0.7, 0.8), step: tuple[float, float, float] = (
                0.0, 0.4, 1.0)) -> Volume:
    """A sheared, anisotropic random volume: every voxel different, nothing symmetric."""
    geometry = VolumeGeometry.from_components(
        shape=shape, origin_lps=[-100.0, 20.5, 300.25], row_cosine=[1.0, 0.0, 0.0],
        column_cosine=[0.0, 0.8, -0.6], slice_step_lps=step, pixel_spacing_mm=spacing,
        frame_of_reference_uid="1.2.3.4")
    rng = np.random.default_rng(7)
    if np.issubdtype(dtype, np.integer):
        data = rng.integers(-1024, 3000, size=shape).astype(dtype)
    else:
        data = rng.normal(1000.0, 300.0, size=shape).astype(dtype)
    return Volume(geometry=geometry, data=data, metadata={
        "modality": "CT", "units": "HU", "window_presets": [{"center": 40.0, "width": 400.0}],
        "spacing_np": np.float32(0.5), "nan": float("nan"), "tuple": (1, 2)})


def _published(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(TMP_PREFIX))


def _block_mean(data: np.ndarray, f: tuple[int, int, int]) -> np.ndarray:
    shape = tuple(n // k for n, k in zip(data.shape, f, strict=True))
    cropped = data[: shape[0] * f[0], : shape[1] * f[1], : shape[2] * f[2]].astype(np.float64)
    mean = cropped.reshape(shape[0], f[0], shape[1], f[1], shape[2], f[2]).mean(axis=(1, 3, 5))
    return np.rint(mean) if np.issubdtype(data.dtype, np.integer) else mean


def test_round_trip_and_metadata(tmp_path: Path) -> None:
    store = LocalVolumeStore(tmp_path)
    volume = _volume()
    rel = store.write(SERIES, volume)
    assert rel.startswith(f"{VOLUMES_DIR}/{SERIES}/") and rel.endswith(".zarr")
    handle = store.open(rel)
    np.testing.assert_array_equal(handle.read_level(0), volume.data)
    assert handle.read_level(0).dtype == np.int16
    np.testing.assert_allclose(handle.geometry(0).affine, volume.geometry.affine)
    assert handle.geometry(0).frame_of_reference_uid == "1.2.3.4"
    meta = handle.metadata
    assert meta["modality"] == "CT" and meta["units"] == "HU" and meta["dtype"] == "int16"
    assert meta["window_presets"] == [{"center": 40.0, "width": 400.0}]
    assert meta["spacing_np"] == 0.5 and meta["nan"] is None and meta["tuple"] == [1, 2]
    region = handle.read_region(0, slice(3, 40), slice(10, 90, 3), slice(129, 130))
    np.testing.assert_array_equal(region, volume.data[3:40, 10:90:3, 129:130])
    # Zarr v3 group with blosc zstd and 64^3 chunks clipped to the shape.
    group_meta = json.loads((tmp_path / rel / "zarr.json").read_text())
    assert group_meta["zarr_format"] == 3 and group_meta["node_type"] == "group"
    array_meta = json.loads((tmp_path / rel / "0" / "zarr.json").read_text())
    assert array_meta["chunk_grid"]["configuration"]["chunk_shape"] == [64, 64, 64]
    codecs = json.dumps(array_meta["codecs"])
    assert "blosc" in codecs and "zstd" in codecs


def test_pyramid_levels_are_block_means_with_matching_geometry(tmp_path: Path) -> None:
    store = LocalVolumeStore(tmp_path)
    volume = _volume()
    handle = store.open(store.write(SERIES, volume))
    levels = handle.levels
    assert len(levels) >= 2
    assert max(levels[-1]["shape"]) <= CHUNK_EDGE and max(levels[-2]["shape"]) > CHUNK_EDGE
    previous = volume.data
    previous_geometry = volume.geometry
    for n, info in enumerate(levels[1:], start=1):
        f = tuple(a // b for a, b in zip(info["factors_zyx"], levels[n - 1]["factors_zyx"],
                                         strict=True))
        assert f == level_factors(previous_geometry.shape, previous_geometry.spacing_mm)
        data = handle.read_level(n)
        expected = _block_mean(previous, f)  # type: ignore[arg-type]
        assert data.shape == tuple(info["shape"]) == expected.shape
        np.testing.assert_array_equal(data, expected)
        # Voxel centres: a coarse voxel sits at the centre of its block of fine voxels.
        coarse = handle.geometry(n)
        block_centre = previous_geometry.index_to_patient((np.asarray(f) - 1) / 2.0)
        np.testing.assert_allclose(coarse.index_to_patient([0, 0, 0]), block_centre, atol=1e-9)
        np.testing.assert_allclose(coarse.affine[:3, :3],
                                   previous_geometry.affine[:3, :3] * np.asarray(f), atol=1e-12)
        np.testing.assert_allclose(info["spacing_mm"], coarse.spacing_mm)
        array_meta = json.loads((handle.path / str(n) / "zarr.json").read_text())
        chunks = array_meta["chunk_grid"]["configuration"]["chunk_shape"]
        assert chunks == [min(CHUNK_EDGE, s) for s in data.shape]
        previous, previous_geometry = data, coarse


def test_thick_slices_are_not_halved_until_rows_catch_up() -> None:
    # 4.8 mm slices, 1 mm pixels: halve rows and columns first (decubitus MR-like).
    assert level_factors((35, 256, 256), (4.8, 1.0, 1.0)) == (1, 2, 2)
    assert level_factors((35, 32, 32), (4.8, 4.0, 4.0)) == (2, 2, 2)
    assert level_factors((1, 512, 512), (1.0, 0.5, 0.5)) == (1, 2, 2)


def test_float_volume_and_one_slice_volume(tmp_path: Path) -> None:
    store = LocalVolumeStore(tmp_path)
    pet = _volume((20, 70, 70), dtype=np.float32)
    handle = store.open(store.write(SERIES, pet))
    np.testing.assert_array_equal(handle.read_level(0), pet.data)
    f = tuple(handle.levels[1]["factors_zyx"])
    np.testing.assert_allclose(handle.read_level(1), _block_mean(pet.data, f),  # type: ignore[arg-type]
                               rtol=1e-6)
    scout = _volume((1, 200, 90))
    handle = store.open(store.write(SERIES, scout))
    assert [lv["shape"][0] for lv in handle.levels] == [1] * len(handle.levels)
    assert max(handle.levels[-1]["shape"]) <= CHUNK_EDGE


def test_failed_write_leaves_nothing_visible(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalVolumeStore(tmp_path)
    import volume_cache.zarr_store as zs

    real_write_level = zs._write_level  # noqa: SLF001

    def crash_on_level_one(group: Any, index: int, level: Any) -> None:
        if index == 1:
            raise OSError("disk gone mid-write")
        real_write_level(group, index, level)

    monkeypatch.setattr(zs, "_write_level", crash_on_level_one)
    with pytest.raises(OSError, match="mid-write"):
        store.write(SERIES, _volume())
    folder = tmp_path / VOLUMES_DIR / SERIES
    assert list(folder.iterdir()) == []  # the temporary was discarded too

    # A hard crash (the process dies: no clean-up runs) leaves only a temporary.
    monkeypatch.setattr(zs, "_discard", lambda tmp: None)
    with pytest.raises(OSError):
        store.write(SERIES, _volume())
    leftovers = list(folder.iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(TMP_PREFIX)
    assert (leftovers[0] / "0" / "zarr.json").exists()  # level 0 was written
    assert _published(folder) == []
    with pytest.raises(VolumeStoreError):
        store.open(f"{VOLUMES_DIR}/{SERIES}/{leftovers[0].name}")
    assert remove_stale(tmp_path) == 1
    assert list(folder.iterdir()) == []
    monkeypatch.undo()
    rel = store.write(SERIES, _volume())  # the store still works afterwards
    assert _published(folder) == [Path(rel).name]


def test_remove_and_missing_volumes(tmp_path: Path) -> None:
    store = LocalVolumeStore(tmp_path)
    rel = store.write(SERIES, _volume((10, 20, 30)))
    assert store.remove(rel) is True
    assert store.remove(rel) is False
    assert list((tmp_path / VOLUMES_DIR / SERIES).iterdir()) == []
    with pytest.raises(VolumeNotFoundError):
        store.open(rel)
    assert store.remove_stale() == 0


@pytest.mark.parametrize("bad", ["../etc", "", ".tmp-x", "a/b", "/abs", ".."])
def test_unsafe_series_uids_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(VolumeStoreError):
        LocalVolumeStore(tmp_path).write(bad, _volume((2, 3, 4)))


@pytest.mark.parametrize("bad", ["", "x.zarr", "volumes/a", "volumes/../../etc/x.zarr",
                                 "/tmp/volumes/a/b.zarr", "volumes/a/b/c.zarr",
                                 "volumes/a/.tmp-b.zarr", "dicom/a/b.zarr"])
def test_paths_outside_the_volume_tree_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(VolumeStoreError):
        LocalVolumeStore(tmp_path).open(bad)


def test_volume_rejects_mismatched_data() -> None:
    geometry = _volume((4, 5, 6)).geometry
    with pytest.raises(VolumeError):
        Volume(geometry=geometry, data=np.zeros((4, 5, 7), np.int16))
    with pytest.raises(VolumeError):
        Volume(geometry=geometry, data=np.zeros((4, 5), np.int16))


def test_real_ct_series_round_trip(tmp_path: Path) -> None:
    folder = _data_root() / "ct-phantom-philips-2studies" / "study1_S21570_S2010_5mm"
    if not folder.is_dir():
        pytest.skip(f"test data {folder} not available")
    from ingest.assemble import assemble_series

    volume = assemble_series([pydicom.dcmread(p) for p in sorted(folder.iterdir())
                              if p.suffix != ".txt"])
    store = LocalVolumeStore(tmp_path)
    handle = store.open(store.write(str(volume.metadata["series_instance_uid"]), volume))
    np.testing.assert_array_equal(handle.read_level(0), volume.data)
    np.testing.assert_allclose(handle.geometry(0).affine, volume.geometry.affine)
    assert handle.metadata["slice_sop_instance_uids"] == volume.metadata["slice_sop_instance_uids"]
    assert handle.metadata["four_corner"]["kvp"] == volume.metadata["four_corner"]["kvp"]
    # Coarse level: mean of 2x2x... blocks of the HU data, per its recorded factors.
    f = tuple(handle.levels[1]["factors_zyx"])
    np.testing.assert_array_equal(handle.read_level(1), _block_mean(volume.data, f))  # type: ignore[arg-type]
