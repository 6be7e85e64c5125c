"""Series assembly and the series builder, against real studies and independent references.

References: SimpleITK's ImageSeriesReader (geometry of untilted series), pydicom's
``apply_modality_lut`` (voxel values), the files' own ImagePositionPatient /
ImageOrientationPatient / functional groups (tilt, decubitus, enhanced objects), the WG04
uncompressed references and dcmtk's ``dcmdjpeg`` (decoding).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut
from sqlalchemy import select

from ingest.assemble import assemble_series
from ingest.builder import SeriesBuilder
from ingest.catalog import Catalog, Instance, Series
from ingest.errors import VolumeBuildError
from ingest.pixels import decode_frames
from ingest.service import IngestService, StoreStatus
from volume_cache.zarr_store import TMP_PREFIX, VOLUMES_DIR, LocalVolumeStore, VolumeHandle


def _data_root() -> Path:
    env = os.environ.get("VOXCAST_TEST_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


DATA = _data_root()
if not DATA.is_dir():
    pytest.skip(f"test data {DATA} not available", allow_module_level=True)

SERIES_DIRS = {
    "philips_flat": "ct-phantom-philips-2studies/study1_S21570_S2010_5mm",
    "philips_tilt": "ct-phantom-philips-2studies/study2_S21610_S2010_tilt-18.5",
    "ge_tilt": "ct-head-gantrytilt-ge",
    "decubitus": "mr-t1-decubitus-siemens/HFDL_t1_fl2d_sag",
    "pet": "petct-acrin042/PT_AC",
    "scout": "petct-acrin042/CT_SCOUT",
    "philips_enhanced": "mr-enhanced-multiframe/Philips",
    "siemens_xa10": "mr-enhanced-multiframe/Siemens/XA10",
}
WG04 = DATA / "compressed-wg04"
WG04_EXTRA = WG04 / "pydicom-data_emri_multiframe"


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix != ".txt")


def _read(folder: Path) -> list[Dataset]:
    return [pydicom.dcmread(p) for p in _files(folder)]


def _ipp(ds: Dataset) -> np.ndarray:
    return np.asarray([float(v) for v in ds.ImagePositionPatient])


@dataclass
class Built:
    data_dir: Path
    catalog: Catalog
    service: IngestService
    builder: SeriesBuilder
    store: LocalVolumeStore
    uid: dict[str, str]

    def handle(self, name: str) -> VolumeHandle:
        with self.catalog.session() as session:
            series = session.scalars(select(Series).where(
                Series.series_instance_uid == self.uid[name])).one()
            assert series.volume_state == "ready", (series.volume_state, series.volume_error)
            return self.store.open(series.volume_path)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """All series of SERIES_DIRS imported through IngestService and built by SeriesBuilder."""
    data_dir = tmp_path_factory.mktemp("voxcast-data")
    catalog = Catalog(f"sqlite:///{data_dir / 'catalog.db'}")
    service = IngestService(data_dir=data_dir, catalog=catalog)
    store = LocalVolumeStore(data_dir)
    builder = SeriesBuilder(catalog, data_dir, store)
    uid: dict[str, str] = {}
    for name, rel in SERIES_DIRS.items():
        for path in _files(DATA / rel):
            outcome = service.store(path.read_bytes(), source="import", origin=path.name)
            assert outcome.ok, outcome.reason
            uid[name] = outcome.series_instance_uid
    results = {r.series_uid: r for r in builder.build_due(quiet_seconds=0.0)}
    assert set(uid.values()) <= set(results), "every imported series was due"
    assert all(r.state == "ready" for r in results.values()), results
    yield Built(data_dir, catalog, service, builder, store, uid)
    catalog.dispose()


# -- geometry against SimpleITK and the files' own attributes -------------------------------------


@pytest.mark.parametrize("name", ["philips_flat", "decubitus", "pet"])
def test_untilted_geometry_equals_simpleitk(built: Built, name: str) -> None:
    sitk = pytest.importorskip("SimpleITK")
    reader = sitk.ImageSeriesReader()
    folder = str(DATA / SERIES_DIRS[name])
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(folder, reader.GetGDCMSeriesIDs(folder)[0]))
    image = reader.Execute()
    geometry = built.handle(name).geometry(0)
    # SimpleITK is (x, y, z) ordered; ours is (z, y, x).
    assert geometry.shape == tuple(reversed(image.GetSize()))
    np.testing.assert_allclose(geometry.origin_lps, image.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(geometry.spacing_mm[::-1], image.GetSpacing(), atol=1e-3)
    sitk_direction = np.asarray(image.GetDirection()).reshape(3, 3)
    np.testing.assert_allclose(geometry.direction[:, ::-1], sitk_direction, atol=1e-3)
    assert not geometry.is_sheared


@pytest.mark.parametrize("name", ["philips_flat", "pet", "decubitus"])
def test_voxels_equal_pydicom_modality_lut(built: Built, name: str) -> None:
    handle = built.handle(name)
    level0 = handle.read_level(0)
    by_sop = {str(ds.SOPInstanceUID): ds for ds in _read(DATA / SERIES_DIRS[name])}
    uids = handle.metadata["slice_sop_instance_uids"]
    assert len(uids) == level0.shape[0] == len(by_sop)
    for k, uid in enumerate(uids):
        ds = by_sop[uid]
        expected = apply_modality_lut(ds.pixel_array, ds)
        if level0.dtype == np.float32:
            np.testing.assert_allclose(level0[k], expected, rtol=1e-6, atol=1e-6)
        else:
            np.testing.assert_array_equal(level0[k], expected)
    if name == "philips_flat":
        assert level0.dtype == np.int16 and handle.metadata["units"] == "HU"
    if name == "pet":
        assert level0.dtype == np.float32 and handle.metadata["rescale"]["per_slice"]


def test_tilted_philips_is_a_sheared_affine_through_every_ipp(built: Built) -> None:
    handle = built.handle("philips_tilt")
    geometry = handle.geometry(0)
    assert geometry.is_sheared and not handle.metadata["resampled"]
    by_sop = {str(ds.SOPInstanceUID): ds for ds in _read(DATA / SERIES_DIRS["philips_tilt"])}
    for k, uid in enumerate(handle.metadata["slice_sop_instance_uids"]):
        np.testing.assert_allclose(geometry.index_to_patient([k, 0, 0]), _ipp(by_sop[uid]),
                                   atol=0.01)
    ds = next(iter(by_sop.values()))
    tilt = abs(float(ds.GantryDetectorTilt))
    axis = geometry.direction[:, 0]
    angle = np.degrees(np.arccos(abs(float(axis @ geometry.slice_normal))))
    assert angle == pytest.approx(tilt, abs=0.05)


def test_ge_tilt_is_resampled_along_the_sheared_axis(built: Built) -> None:
    handle = built.handle("ge_tilt")
    meta = handle.metadata
    geometry = handle.geometry(0)
    datasets = _read(DATA / SERIES_DIRS["ge_tilt"])
    normal = geometry.slice_normal
    datasets.sort(key=lambda d: float(_ipp(d) @ normal))
    first, last = _ipp(datasets[0]), _ipp(datasets[-1])
    n = geometry.shape[0]
    assert meta["resampled"] is True and geometry.is_sheared
    np.testing.assert_allclose(geometry.index_to_patient([0, 0, 0]), first, atol=1e-6)
    np.testing.assert_allclose(geometry.index_to_patient([n - 1, 0, 0]), last, atol=0.01)
    positions = np.asarray(meta["original_slice_positions_mm"])
    gaps = np.diff(positions)
    assert len(positions) == len(datasets)
    np.testing.assert_allclose(gaps, np.diff([np.linalg.norm(_ipp(d) - first) for d in datasets]),
                               atol=1e-3)
    assert geometry.spacing_mm[0] == pytest.approx(positions[-1] / (n - 1))
    assert geometry.spacing_mm[0] <= gaps.min() * 1.01  # step = the smallest gap
    # Voxels: first and last slices are the originals; an interior one is the linear
    # interpolation of its two neighbours along the axis (values from pydicom).
    volume = handle.read_level(0)
    hu = [apply_modality_lut(d.pixel_array, d).astype(np.float64) for d in datasets]
    np.testing.assert_array_equal(volume[0], hu[0])
    np.testing.assert_array_equal(volume[-1], hu[-1])
    k = n // 2 + 1
    t = k * geometry.spacing_mm[0]
    j = int(np.searchsorted(positions, t, side="right") - 1)
    w = (t - positions[j]) / (positions[j + 1] - positions[j])
    expected = hu[j] * (1 - w) + hu[j + 1] * w
    assert np.abs(volume[k] - expected).max() <= 0.51
    assert meta["missing_slices"] == []


def test_decubitus_direction_cosines_come_from_the_files(built: Built) -> None:
    geometry = built.handle("decubitus").geometry(0)
    ds = _read(DATA / SERIES_DIRS["decubitus"])[0]
    iop = np.asarray([float(v) for v in ds.ImageOrientationPatient])
    np.testing.assert_allclose(geometry.direction[:, 2], iop[:3], atol=1e-6)  # along a row
    np.testing.assert_allclose(geometry.direction[:, 1], iop[3:], atol=1e-6)  # down a column
    np.testing.assert_allclose(geometry.direction[:, 0], np.cross(iop[:3], iop[3:]), atol=1e-6)
    assert ds.PatientPosition == "HFDL"


def test_one_image_series_is_a_one_slice_volume(built: Built) -> None:
    handle = built.handle("scout")
    geometry = handle.geometry(0)
    ds = _read(DATA / SERIES_DIRS["scout"])[0]
    assert geometry.shape == (1, int(ds.Rows), int(ds.Columns))
    np.testing.assert_allclose(geometry.origin_lps, _ipp(ds), atol=1e-6)
    np.testing.assert_allclose(geometry.affine[:3, 0],
                               geometry.slice_normal * float(ds.SliceThickness), atol=1e-6)
    np.testing.assert_array_equal(handle.read_level(0)[0], apply_modality_lut(ds.pixel_array, ds))


def test_pet_volume_carries_the_suv_factor(built: Built) -> None:
    meta = built.handle("pet").metadata
    assert meta["suv_bw_factor"] == pytest.approx(4.2111e-4, rel=1e-3)
    assert meta["units"] == "BQML" and meta["suv_reason"]


# -- enhanced multi-frame ------------------------------------------------------------------------


def _frame_ipps(ds: Dataset) -> list[np.ndarray]:
    return [_ipp(f.PlanePositionSequence[0]) for f in ds.PerFrameFunctionalGroupsSequence]


def test_philips_enhanced_64_frames_become_a_32_slice_volume(built: Built) -> None:
    handle = built.handle("philips_enhanced")
    geometry, volume, meta = handle.geometry(0), handle.read_level(0), handle.metadata
    ds = _read(DATA / SERIES_DIRS["philips_enhanced"])[0]
    frames = decode_frames(ds)
    per_frame = ds.PerFrameFunctionalGroupsSequence
    assert int(ds.NumberOfFrames) == 64 and volume.shape == (32, 64, 64)
    assert sum(x["frames"] for x in meta["excluded_frames"]) == 32
    ipps = _frame_ipps(ds)
    for k, frame_number in enumerate(meta["slice_frame_numbers"]):
        i = frame_number - 1
        np.testing.assert_allclose(geometry.index_to_patient([k, 0, 0]), ipps[i], atol=0.01)
        pvt = per_frame[i].PixelValueTransformationSequence[0]
        expected = frames[i] * float(pvt.RescaleSlope) + float(pvt.RescaleIntercept)
        np.testing.assert_allclose(volume[k], expected, rtol=1e-6)


def test_siemens_xa10_four_multiframe_files_become_one_stack(built: Built) -> None:
    handle = built.handle("siemens_xa10")
    geometry, meta = handle.geometry(0), handle.metadata
    datasets = _read(DATA / SERIES_DIRS["siemens_xa10"])
    assert sum(int(d.NumberOfFrames) for d in datasets) == 24
    assert geometry.shape == (6, 64, 64)
    assert sum(x["frames"] for x in meta["excluded_frames"]) == 18
    chosen = {str(d.SOPInstanceUID): d for d in datasets}
    volume = handle.read_level(0)
    for k, (uid, frame_number) in enumerate(zip(meta["slice_sop_instance_uids"],
                                                 meta["slice_frame_numbers"], strict=True)):
        ds = chosen[uid]
        np.testing.assert_allclose(geometry.index_to_patient([k, 0, 0]),
                                   _frame_ipps(ds)[frame_number - 1], atol=0.01)
        np.testing.assert_array_equal(volume[k], decode_frames(ds)[frame_number - 1])


def test_wg04_enhanced_ct_and_mr_become_volumes() -> None:
    ds = pydicom.dcmread(WG04_EXTRA / "eCT_Supplemental.dcm")
    volume = assemble_series([ds])
    normal = volume.geometry.slice_normal  # IOP (-1,0,0 / 0,1,0): the normal points to -z
    ipps = sorted(_frame_ipps(ds), key=lambda p: float(p @ normal))
    assert volume.shape == (2, 512, 512) and volume.dtype == np.int16
    for k, ipp in enumerate(ipps):
        np.testing.assert_allclose(volume.geometry.index_to_patient([k, 0, 0]), ipp, atol=0.01)
    shared = ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0]
    frames = decode_frames(ds)
    for k, number in enumerate(volume.metadata["slice_frame_numbers"]):
        np.testing.assert_array_equal(
            volume.data[k], frames[number - 1].astype(np.int32) * int(float(shared.RescaleSlope))
            + int(float(shared.RescaleIntercept)))
    mr = assemble_series([pydicom.dcmread(WG04_EXTRA / "emri_small.dcm")])
    assert mr.shape == (10, 64, 64)


def test_non_image_series_raise_volume_build_error() -> None:
    rwv = _read(DATA / "petct-acrin042" / "RWV")
    with pytest.raises(VolumeBuildError, match="no image pixel data"):
        assemble_series(rwv)
    seg = _read(DATA / "petct-acrin042" / "SEG")[:1]
    with pytest.raises(VolumeBuildError, match="SEG"):
        assemble_series(seg)


# -- decoding ------------------------------------------------------------------------------------


@pytest.mark.parametrize("image", ["CT1", "CT2", "MR1", "MR3", "NM1"])
@pytest.mark.parametrize("syntax", ["J2KR", "JPLL", "JLSL", "RLE"])
def test_lossless_wg04_decodes_to_the_uncompressed_reference(image: str, syntax: str) -> None:
    decoded = decode_frames(pydicom.dcmread(WG04 / f"{image}_{syntax}.dcm"))
    reference = decode_frames(pydicom.dcmread(WG04 / f"{image}_UNC.dcm"))
    np.testing.assert_array_equal(decoded, reference)


@pytest.mark.parametrize("image", ["MR1", "MR3", "NM1"])
def test_12_bit_jpeg_extended_decodes_like_dcmdjpeg(image: str, tmp_path: Path) -> None:
    src = WG04 / f"{image}_JPLY.dcm"
    decoded = decode_frames(pydicom.dcmread(src))
    reference = decode_frames(pydicom.dcmread(WG04 / f"{image}_UNC.dcm"))
    assert decoded.shape == reference.shape
    # Lossy: close to the reference, never equal to it by accident of a wrong decoder.
    diff = np.abs(decoded.astype(np.int64) - reference.astype(np.int64))
    assert 0 < diff.mean() < 0.01 * float(np.ptp(reference))
    dcmdjpeg = shutil.which("dcmdjpeg")
    if dcmdjpeg is None:
        pytest.skip("dcmtk's dcmdjpeg not installed: compared with the reference only")
    out = tmp_path / "out.dcm"
    subprocess.run([dcmdjpeg, str(src), str(out)], check=True, capture_output=True)
    np.testing.assert_array_equal(decoded, decode_frames(pydicom.dcmread(out)))


def test_12_bit_jpeg_extended_is_no_longer_quarantined(tmp_path: Path) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    service = IngestService(data_dir=tmp_path, catalog=catalog)
    for image in ("MR1", "MR3", "NM1"):
        outcome = service.store((WG04 / f"{image}_JPLY.dcm").read_bytes(), source="import")
        assert outcome.status is StoreStatus.STORED, outcome.reason
    catalog.dispose()


# -- builder -------------------------------------------------------------------------------------


def test_builder_fills_header_json(built: Built) -> None:
    with built.catalog.session() as session:
        rows = session.execute(select(Instance.sop_instance_uid, Instance.header_json)
                               .where(Instance.is_current.is_(True))).all()
    assert rows and all(header is not None for _, header in rows)
    for sop, header in rows[:20]:
        assert header is not None and json.loads(header)["00080018"]["Value"] == [sop]


def _small_builder(tmp_path: Path) -> tuple[Catalog, IngestService, SeriesBuilder]:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    service = IngestService(data_dir=tmp_path, catalog=catalog)
    return catalog, service, SeriesBuilder(catalog, tmp_path, LocalVolumeStore(tmp_path))


def _state(catalog: Catalog, uid: str) -> Series:
    with catalog.session() as session:
        return session.scalars(select(Series).where(Series.series_instance_uid == uid)).one()


def test_instances_arriving_during_a_build_leave_the_series_pending(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog, service, builder = _small_builder(tmp_path)
    files = _files(DATA / SERIES_DIRS["siemens_xa10"])
    for path in files[:3]:
        uid = service.store(path.read_bytes(), source="import").series_instance_uid
    original_write = builder.store.write

    def write_while_a_file_arrives(series_uid: str, volume: object) -> str:
        assert service.store(files[3].read_bytes(), source="import").ok
        return original_write(series_uid, volume)  # type: ignore[arg-type]

    monkeypatch.setattr(builder.store, "write", write_while_a_file_arrives)
    result = builder.build(uid)
    assert result.state == "pending" and not result.ok
    series = _state(catalog, uid)
    assert series.volume_state == "pending" and series.volume_path == ""
    assert not [p for p in (tmp_path / VOLUMES_DIR / uid).iterdir()]
    monkeypatch.undo()
    assert [r.state for r in builder.build_due(quiet_seconds=0.0)] == ["ready"]
    series = _state(catalog, uid)
    assert series.volume_state == "ready" and series.volume_build_seconds is not None
    assert builder.store.open(series.volume_path).geometry(0).shape == (6, 64, 64)
    catalog.dispose()


def test_build_error_is_recorded_and_rebuild_replaces_the_old_volume(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog, service, builder = _small_builder(tmp_path)
    path = _files(DATA / SERIES_DIRS["philips_enhanced"])[0]
    uid = service.store(path.read_bytes(), source="import").series_instance_uid
    first = builder.build(uid)
    assert first.ok
    assert builder.build(uid).ok  # rebuild: new path, the old folder is gone
    series = _state(catalog, uid)
    assert series.volume_path != first.volume_path
    assert not (tmp_path / first.volume_path).exists()

    def broken(*_args: object, **_kwargs: object) -> None:
        raise VolumeBuildError("slice positions do not lie on one line")

    monkeypatch.setattr("ingest.builder.assemble_series", broken)
    result = builder.build(uid)
    assert result.state == "failed" and "one line" in result.error
    series = _state(catalog, uid)
    assert series.volume_state == "failed" and "one line" in series.volume_error
    catalog.dispose()


def test_recover_requeues_interrupted_builds_and_removes_leftovers(tmp_path: Path) -> None:
    catalog, service, builder = _small_builder(tmp_path)
    path = _files(DATA / SERIES_DIRS["philips_enhanced"])[0]
    uid = service.store(path.read_bytes(), source="import").series_instance_uid
    published = builder.build(uid).volume_path
    folder = tmp_path / VOLUMES_DIR / uid
    (folder / f"{TMP_PREFIX}deadbeef.zarr").mkdir()  # a write cut short
    shutil.copytree(tmp_path / published, folder / "0123abcd.zarr")  # renamed, never committed
    with catalog.writing() as session:
        session.scalars(select(Series)).one().volume_state = "building"
    report = builder.recover()
    assert (report.series_reset, report.temporaries_removed, report.orphans_removed) == (1, 1, 1)
    assert sorted(p.name for p in folder.iterdir()) == [Path(published).name]
    assert _state(catalog, uid).volume_state == "pending"
    catalog.dispose()


def test_four_corner_text_and_window_presets_come_from_the_header(built: Built) -> None:
    meta = built.handle("ge_tilt").metadata
    ds = _read(DATA / SERIES_DIRS["ge_tilt"])[0]
    corner = meta["four_corner"]
    assert corner["patient_id"] == ds.PatientID
    assert corner["patient_name"] == str(ds.PatientName)
    assert corner["manufacturer_model_name"] == ds.ManufacturerModelName
    assert corner["kvp"] == pytest.approx(float(ds.KVP))
    expected_mas = (float(ds.XRayTubeCurrent) * float(ds.ExposureTime) / 1000.0
                    if "XRayTubeCurrent" in ds and "ExposureTime" in ds else float(ds.Exposure))
    assert corner["mas"] == pytest.approx(expected_mas)
    centers = [float(v) for v in np.atleast_1d(ds.WindowCenter)]
    widths = [float(v) for v in np.atleast_1d(ds.WindowWidth)]
    presets = [(p["center"], p["width"]) for p in meta["window_presets"]]
    assert all(pair in presets for pair in zip(centers, widths, strict=True))
    assert meta["gantry_tilt_deg"] == pytest.approx(float(ds.GantryDetectorTilt))


def test_background_builds_while_ingest_goes_on(tmp_path: Path) -> None:
    import threading

    catalog, service, builder = _small_builder(tmp_path)
    files = _files(DATA / SERIES_DIRS["decubitus"])
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop() -> None:
        while not stop.is_set():
            try:
                builder.build_due(quiet_seconds=0.0)
            except BaseException as exc:  # surfaced by the assertion below
                errors.append(exc)
                return

    worker = threading.Thread(target=loop)
    worker.start()
    try:
        for path in files:
            uid = service.store(path.read_bytes(), source="import").series_instance_uid
    finally:
        stop.set()
        worker.join(timeout=120)
    assert not errors
    builder.build_due(quiet_seconds=0.0)
    series = _state(catalog, uid)
    assert series.volume_state == "ready", series.volume_error
    handle = builder.store.open(series.volume_path)
    assert handle.geometry(0).shape == (len(files), 256, 256)
    assert len(set(handle.metadata["slice_sop_instance_uids"])) == len(files)
    assert [p.name for p in (tmp_path / VOLUMES_DIR / uid).iterdir()] == [
        Path(series.volume_path).name]
    catalog.dispose()


def test_rgb_image_becomes_a_luminance_slice() -> None:
    path = DATA / "odd-broken" / "pydicom" / "ExplVR_BigEnd.dcm"
    if not path.exists():
        pytest.skip(f"{path} not available")
    ds = pydicom.dcmread(path)
    volume = assemble_series([ds])
    rgb = ds.pixel_array.astype(np.float64)
    expected = np.rint(rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114)
    assert volume.shape == (1, int(ds.Rows), int(ds.Columns)) and volume.dtype == np.uint8
    assert np.abs(volume.data[0].astype(np.float64) - expected).max() <= 1
    assert volume.metadata["rescale"]["colour"]["photometric_interpretation"] == "RGB"
