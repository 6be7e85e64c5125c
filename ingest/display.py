"""Display metadata of a series: the text a viewer shows in the image corners."""

from __future__ import annotations

from typing import Any

from pydicom.dataset import Dataset

from ingest.dicom_io import functional_group, text, to_float


def four_corner(ds: Dataset) -> dict[str, Any]:
    """Text a viewer shows in the image corners (PS3.3 C.7.1.1, C.7.2.1, C.7.3.1, C.8.2.1)."""
    xray = functional_group(ds, 0, "CTXRayDetailsSequence")
    exposure = functional_group(ds, 0, "CTExposureSequence")
    measures = functional_group(ds, 0, "PixelMeasuresSequence")
    kvp = to_float(ds.get("KVP")) or (to_float(xray.get("KVP")) if xray else None)
    current, time_ms = to_float(ds.get("XRayTubeCurrent")), to_float(ds.get("ExposureTime"))
    mas = current * time_ms / 1000.0 if current is not None and time_ms is not None else None
    if mas is None:
        mas = to_float(ds.get("Exposure")) or to_float(ds.get("ExposureInmAs"))
    if mas is None and exposure is not None:
        mas = to_float(exposure.get("ExposureInmAs"))
    thickness = to_float(ds.get("SliceThickness"))
    if thickness is None and measures is not None:
        thickness = to_float(measures.get("SliceThickness"))
    return {
        "patient_name": text(ds, "PatientName"), "patient_id": text(ds, "PatientID"),
        "patient_sex": text(ds, "PatientSex"), "patient_age": text(ds, "PatientAge"),
        "patient_birth_date": text(ds, "PatientBirthDate"),
        "institution_name": text(ds, "InstitutionName"),
        "study_date": text(ds, "StudyDate"), "study_time": text(ds, "StudyTime"),
        "study_description": text(ds, "StudyDescription"),
        "series_description": text(ds, "SeriesDescription"),
        "series_number": text(ds, "SeriesNumber"),
        "manufacturer": text(ds, "Manufacturer"),
        "manufacturer_model_name": text(ds, "ManufacturerModelName"),
        "kvp": kvp, "mas": mas, "slice_thickness_mm": thickness,
    }
