"""DICOM JSON (PS3.18 F.2) of catalog rows: the attributes QIDO-RS returns per level."""

from __future__ import annotations

import re
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword

from ingest.catalog import Instance, Patient, Series, Study

HEX_TAG = re.compile(r"[0-9A-Fa-f]{8}")


def json_tag(key: str) -> str:
    """The DICOM JSON object key (8 upper-case hex digits) of a keyword or hex tag."""
    return key.upper() if HEX_TAG.fullmatch(key) else f"{tag_for_keyword(key):08X}"


def json_element(keyword: str, value: Any) -> dict[str, Any]:
    """One DICOM JSON element (PS3.18 F.2.2) for a catalog value; empty → no Value."""
    vr = dictionary_VR(keyword)
    if value is None or value == "" or value == []:
        return {"vr": vr}
    if vr == "PN":  # component groups, PS3.5 §6.2.1 / PS3.18 F.2.2
        groups = str(value).split("=")
        names = dict(zip(("Alphabetic", "Ideographic", "Phonetic"), groups, strict=False))
        return {"vr": vr, "Value": [{k: v for k, v in names.items() if v}]}
    if vr in ("IS", "US", "UL", "SS", "SL"):
        return {"vr": vr, "Value": [int(value)]}
    values = value if isinstance(value, list) else str(value).split("\\")
    return {"vr": vr, "Value": values}


def put(out: dict[str, Any], keyword: str, value: Any) -> None:
    out[json_tag(keyword)] = json_element(keyword, value)


def study_json(study: Study, patient: Patient, counts: tuple[int, int] | None = None,
                modalities: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kw, value in (("StudyDate", study.study_date), ("StudyTime", study.study_time),
                      ("AccessionNumber", study.accession_number),
                      ("InstanceAvailability", "ONLINE"),
                      ("ReferringPhysicianName", study.referring_physician_name),
                      ("StudyDescription", study.study_description),
                      ("PatientName", patient.patient_name), ("PatientID", patient.patient_id),
                      ("PatientBirthDate", patient.birth_date), ("PatientSex", patient.sex),
                      ("StudyInstanceUID", study.study_instance_uid),
                      ("StudyID", study.study_id)):
        put(out, kw, value)
    if patient.issuer_of_patient_id:
        put(out, "IssuerOfPatientID", patient.issuer_of_patient_id)
    if counts is not None:
        put(out, "ModalitiesInStudy", sorted(modalities or []))
        put(out, "NumberOfStudyRelatedSeries", counts[0])
        put(out, "NumberOfStudyRelatedInstances", counts[1])
    return out


def series_json(series: Series, n_instances: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kw, value in (("Modality", series.modality),
                      ("SeriesDescription", series.series_description),
                      ("SeriesInstanceUID", series.series_instance_uid),
                      ("SeriesNumber", series.series_number),
                      ("InstanceAvailability", "ONLINE")):
        put(out, kw, value)
    if n_instances is not None:
        put(out, "NumberOfSeriesRelatedInstances", n_instances)
    if series.body_part_examined:
        put(out, "BodyPartExamined", series.body_part_examined)
    return out


def instance_json(inst: Instance) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kw, value in (("SOPClassUID", inst.sop_class_uid),
                      ("SOPInstanceUID", inst.sop_instance_uid),
                      ("InstanceAvailability", "ONLINE"),
                      ("InstanceNumber", inst.instance_number),
                      ("NumberOfFrames", inst.number_of_frames)):
        put(out, kw, value)
    if inst.rows is not None and inst.columns is not None:
        put(out, "Rows", inst.rows)
        put(out, "Columns", inst.columns)
    put(out, "AvailableTransferSyntaxUID", inst.transfer_syntax_uid)
    return out
