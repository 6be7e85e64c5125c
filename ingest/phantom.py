"""A synthetic PET-CT phantom study, so that a newcomer without data still sees VoxCast work.

Its patient name is ``SYNTHETIC^PHANTOM`` and its PatientID ``VOXCAST-SYNTHETIC``: it can never
be mistaken for a real patient. Geometry and values are exact and known: a water cylinder
(0 HU) with two lungs (-800 HU), a spine (700 HU) and a 20 mm sphere (60 HU) on CT; on PET,
background activity of SUV 1 and the sphere at SUV 8. UIDs are derived deterministically, so
generating it twice gives the same study (the second import reports duplicates).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian, generate_uid

PATIENT_NAME = "SYNTHETIC^PHANTOM"
PATIENT_ID = "VOXCAST-SYNTHETIC"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
PET_STORAGE = "1.2.840.10008.5.1.4.1.1.128"

# Acquisition: CT 96 slices 256x256 at 1.5 x 1.5 x 2.5 mm; PET 48 slices 96x96 at 4 x 4 x 5 mm.
CT_SHAPE, CT_PIXEL_MM, CT_SLICE_MM = (96, 256, 256), 1.5, 2.5
PT_SHAPE, PT_PIXEL_MM, PT_SLICE_MM = (48, 96, 96), 4.0, 5.0
WEIGHT_KG, DOSE_BQ, HALF_LIFE_S = 70.0, 370e6, 6586.2
# Injection at 09:00:00, series start at 10:00:00: the dose decays for 3600 s before the scan.
UPTAKE_S = 3600.0
DECAYED_DOSE_BQ = DOSE_BQ * 2.0 ** (-UPTAKE_S / HALF_LIFE_S)
SPHERE_CENTER_LPS, SPHERE_RADIUS_MM = np.array([30.0, -10.0, -120.0]), 10.0
BACKGROUND_SUV, SPHERE_SUV = 1.0, 8.0


def _uid(*parts: str) -> str:
    return str(generate_uid(entropy_srcs=["voxcast-synthetic-phantom", *parts]))


def _grid(shape: tuple[int, int, int], pixel_mm: float, slice_mm: float) -> tuple[np.ndarray, ...]:
    """LPS coordinates of every voxel of an axial stack centred on (0, 0, -120) mm."""
    nz, ny, nx = shape
    x = (np.arange(nx) - (nx - 1) / 2) * pixel_mm
    y = (np.arange(ny) - (ny - 1) / 2) * pixel_mm
    z = -120.0 + (np.arange(nz) - (nz - 1) / 2) * slice_mm
    return np.meshgrid(z, y, x, indexing="ij")


def _ct_hu() -> np.ndarray:
    z, y, x = _grid(CT_SHAPE, CT_PIXEL_MM, CT_SLICE_MM)
    hu = np.full(CT_SHAPE, -1000, dtype=np.int16)
    body = (x / 160) ** 2 + (y / 110) ** 2 <= 1
    hu[body] = 0
    for side in (-1, 1):
        lung = ((x - side * 70) / 50) ** 2 + ((y + 5) / 65) ** 2 <= 1
        hu[lung & body] = -800
    hu[(x ** 2 + (y - 75) ** 2) <= 18 ** 2] = 700
    sphere = ((x - SPHERE_CENTER_LPS[0]) ** 2 + (y - SPHERE_CENTER_LPS[1]) ** 2
              + (z - SPHERE_CENTER_LPS[2]) ** 2) <= SPHERE_RADIUS_MM ** 2
    hu[sphere] = 60
    return hu


def _pet_bqml() -> np.ndarray:
    """Activity concentration (Bq/ml), decay-corrected to the series start (DecayCorrection START)."""
    z, y, x = _grid(PT_SHAPE, PT_PIXEL_MM, PT_SLICE_MM)
    suv = np.zeros(PT_SHAPE, dtype=np.float64)
    suv[(x / 160) ** 2 + (y / 110) ** 2 <= 1] = BACKGROUND_SUV
    sphere = ((x - SPHERE_CENTER_LPS[0]) ** 2 + (y - SPHERE_CENTER_LPS[1]) ** 2
              + (z - SPHERE_CENTER_LPS[2]) ** 2) <= SPHERE_RADIUS_MM ** 2
    suv[sphere] = SPHERE_SUV
    # SUVbw = C[Bq/ml] * weight[g] / dose decayed to the series start [Bq].
    return suv * DECAYED_DOSE_BQ / (WEIGHT_KG * 1000.0)


def _base(modality: str, series_uid: str, series_number: int, description: str,
          study_uid: str, for_uid: str, now: dt.datetime) -> Dataset:
    ds = Dataset()
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.PatientWeight = WEIGHT_KG
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = now.strftime("%Y%m%d")
    ds.StudyTime = "090000"
    ds.StudyID = "1"
    ds.AccessionNumber = "SYNTH0001"
    ds.StudyDescription = "SYNTHETIC PET-CT PHANTOM"
    ds.ReferringPhysicianName = ""
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.Modality = modality
    ds.SeriesDate = ds.StudyDate
    ds.SeriesTime = "100000"
    ds.AcquisitionTime = "100000"
    ds.FrameOfReferenceUID = for_uid
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer = "VoxCast"
    ds.ManufacturerModelName = "Synthetic phantom"
    ds.InstitutionName = "VoxCast synthetic data"
    ds.BodyPartExamined = "CHEST"
    ds.PatientPosition = "HFS"
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    return ds


def _place(ds: Dataset, k: int, shape: tuple[int, int, int], pixel_mm: float,
           slice_mm: float) -> None:
    """Image-plane attributes of slice ``k`` of an axial stack laid out as in :func:`_grid`."""
    _, ny, nx = shape
    z = -120.0 + (k - (shape[0] - 1) / 2) * slice_mm
    ds.ImagePositionPatient = [-(nx - 1) / 2 * pixel_mm, -(ny - 1) / 2 * pixel_mm, z]
    ds.SliceLocation = z
    ds.PixelSpacing = [pixel_mm, pixel_mm]
    ds.SliceThickness = slice_mm
    ds.InstanceNumber = k + 1
    ds.Rows, ds.Columns = ny, nx


def _write(ds: Dataset, sop_class: str, sop_uid: str, path: Path) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.preamble = b"\0" * 128
    pydicom.dcmwrite(path, ds, enforce_file_format=True)


def write_phantom_study(folder: Path) -> Path:
    """Write the phantom's CT and PET series as Part-10 files under ``folder``; returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime(2026, 1, 15, 9, 0, 0)
    study_uid, for_uid = _uid("study"), _uid("for")
    ct_uid, pt_uid = _uid("series", "CT"), _uid("series", "PT")

    hu = _ct_hu()
    for k in range(CT_SHAPE[0]):
        ds = _base("CT", ct_uid, 2, "SYNTHETIC CT 2.5mm", study_uid, for_uid, now)
        _place(ds, k, CT_SHAPE, CT_PIXEL_MM, CT_SLICE_MM)
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = 0
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.WindowCenter = [40, -600]
        ds.WindowWidth = [400, 1500]
        ds.WindowCenterWidthExplanation = ["MEDIASTINUM", "LUNG"]
        ds.KVP = 120
        ds.XRayTubeCurrent = 200
        ds.ExposureTime = 500
        ds.PixelData = hu[k].tobytes()
        _write(ds, CT_STORAGE, _uid("CT", str(k)), folder / f"CT{k + 1:04d}.dcm")

    activity = _pet_bqml()
    for k in range(PT_SHAPE[0]):
        ds = _base("PT", pt_uid, 3, "SYNTHETIC PET AC", study_uid, for_uid, now)
        _place(ds, k, PT_SHAPE, PT_PIXEL_MM, PT_SLICE_MM)
        ds.PixelRepresentation = 0
        # One slope per slice, as scanners do: stored = activity / slope, exactly representable.
        peak = float(activity[k].max()) or 1.0
        slope = peak / 32767.0
        ds.RescaleSlope = f"{slope:.10g}"
        ds.RescaleIntercept = 0
        stored = np.round(activity[k] / float(ds.RescaleSlope)).astype(np.uint16)
        ds.Units = "BQML"
        ds.DecayCorrection = "START"
        ds.CorrectedImage = ["ATTN", "DECY"]
        ds.SeriesType = ["WHOLE BODY", "IMAGE"]
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.ImageIndex = k + 1
        ds.NumberOfSlices = PT_SHAPE[0]
        ds.FrameReferenceTime = 0
        ds.ActualFrameDuration = 180000
        ds.CountsSource = "EMISSION"
        ds.DecayFactor = 1
        info = Dataset()
        info.Radiopharmaceutical = "Fluorodeoxyglucose"
        info.RadiopharmaceuticalStartTime = "090000"
        info.RadiopharmaceuticalStartDateTime = now.strftime("%Y%m%d") + "090000"
        info.RadionuclideTotalDose = DOSE_BQ
        info.RadionuclideHalfLife = HALF_LIFE_S
        info.RadionuclidePositronFraction = 0.97
        ds.RadiopharmaceuticalInformationSequence = [info]
        ds.PixelData = stored.tobytes()
        _write(ds, PET_STORAGE, _uid("PT", str(k)), folder / f"PT{k + 1:04d}.dcm")
    return folder
