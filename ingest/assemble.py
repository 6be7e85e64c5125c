"""Series assembly: the image frames of one series → one :class:`Volume` in patient space.

Frames come from classic single-frame objects (CT/MR/PET Image, PS3.3 C.7.6.2 Image Plane)
and from enhanced multi-frame objects (PS3.3 C.7.6.16 Multi-frame Functional Groups: Plane
Position/Orientation, Pixel Measures, Pixel Value Transformation, Frame VOI LUT, Frame
Content), including a series of several multi-frame files.

1. Frames are grouped by orientation and matrix; the largest group is kept.
2. Frames sharing a position (temporal positions, echoes, magnitude/phase, …) are split by
   the first key that separates them (enhanced Dimension Index Values without the in-stack
   position, Stack ID, temporal position, echo, image type, b-value, trigger time,
   acquisition number); the largest duplicate-free sub-stack is kept.
3. Slices are sorted by the position projected on the slice normal (row x column cosine).
   Everything left out is recorded in ``metadata["excluded_frames"]`` instead of failing.
4. Geometry: origin = first slice's ImagePositionPatient; slice step = (last IPP − first IPP)
   / (n − 1). A gantry tilt therefore gives a sheared affine, exact to every IPP.
5. Non-uniform spacing along that (possibly sheared) axis: linear resampling onto a uniform
   grid spanning exactly the first and last IPP, with step = the *smallest* gap (as dcm2niix
   does): the finest sampling of the acquisition is never thrown away, original slices that
   fall on the grid are kept exactly, and the cost is bounded by ``MAX_RESAMPLED_SLICES``.
   (The median would average away the thin slices of a mixed protocol, e.g. the 4 mm
   posterior-fossa slices of a 4/7 mm head CT.) Gaps that are whole multiples of the median
   gap are reported as missing slices.
6. Values: Modality LUT / rescale (PS3.3 C.11.1) applied per frame. CT gives int16 when the
   rescale is integral and the range fits, else float32; PET float32 activity with the SUVbw
   factor (:mod:`ingest.suv`) in the metadata; MR and others stored values, float32 when a
   rescale applies. Colour frames (RGB, YBR, PALETTE COLOR) become luminance (ITU-R BT.601
   weights, same bit depth): volumes are scalar — windowing, MIP and SUV are defined on one
   channel — while the true-colour originals stay available through WADO-RS.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut

from ingest.dicom_io import first_item, functional_group, text, to_float
from ingest.display import four_corner
from ingest.errors import VolumeBuildError
from ingest.pixels import PixelDecodeError, decode_frames, frame_count
from ingest.suv import suv_bw_factor
from render_engine.errors import GeometryError
from render_engine.geometry import VolumeGeometry
from volume_cache.volume import Volume

log = logging.getLogger(__name__)

MAX_RESAMPLED_SLICES = 2048
_NOT_IMAGES = {"SEG", "SR", "RWV", "KO", "PR", "REG", "RTSTRUCT", "RTPLAN", "DOC"}
_POSITION_POINTERS = {0x00209057, 0x00200032}  # In-Stack Position Number, IPP
_SPLIT_KEYS = ("dimension", "stack_id", "temporal_position", "echo", "image_type", "b_value",
               "trigger_time", "acquisition_number")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Frame:
    """One 2-D frame: where its pixels are and the attributes that place and scale it."""

    ds_index: int
    frame_index: int  # 0-based within its data set
    sop_instance_uid: str
    order: tuple[int, int, int]  # (InstanceNumber, data set index, frame index)
    position: npt.NDArray[np.float64] | None  # IPP, LPS mm
    row_cosine: npt.NDArray[np.float64] | None
    column_cosine: npt.NDArray[np.float64] | None
    pixel_spacing: tuple[float, float]  # (between rows, between columns), mm
    spacing_known: bool
    thickness_mm: float | None
    slope: float
    intercept: float
    matrix: tuple[int, int, int]  # rows, columns, samples
    windows: tuple[tuple[float, float, str], ...]
    keys: dict[str, Any] = field(default_factory=dict)


# -- attribute access ---------------------------------------------------------------------------


def _floats(value: Any, n: int) -> npt.NDArray[np.float64] | None:
    try:
        out = np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return out if out.shape == (n,) and np.isfinite(out).all() else None


def _windows(src: Dataset | None) -> tuple[tuple[float, float, str], ...]:
    if src is None or "WindowCenter" not in src or "WindowWidth" not in src:
        return ()
    centers = [src.WindowCenter] if isinstance(src.WindowCenter, str | float | int) else list(
        src.WindowCenter)
    widths = [src.WindowWidth] if isinstance(src.WindowWidth, str | float | int) else list(
        src.WindowWidth)
    expl = src.get("WindowCenterWidthExplanation", "")
    names = [expl] if isinstance(expl, str) else list(expl)
    out = []
    for i, (c, w) in enumerate(zip(centers, widths, strict=False)):
        fc, fw = to_float(c), to_float(w)
        if fc is not None and fw is not None and fw > 0:
            out.append((fc, fw, str(names[i]) if i < len(names) else ""))
    return tuple(out)


def _frames_of(ds: Dataset, ds_index: int) -> list[_Frame]:
    """The frames of one data set (PS3.3 C.7.6.16 for enhanced, C.7.6.2 for classic)."""
    n = frame_count(ds)
    enhanced = "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds
    rows, cols = int(ds.Rows), int(ds.Columns)
    matrix = (rows, cols, int(ds.get("SamplesPerPixel", 1) or 1))
    sop = str(ds.get("SOPInstanceUID", ""))
    inst = int(to_float(ds.get("InstanceNumber")) or 0)
    pointers = [int(item.DimensionIndexPointer) for item in ds.get("DimensionIndexSequence", [])
                if "DimensionIndexPointer" in item]
    top_iop = _floats(ds.get("ImageOrientationPatient"), 6)
    top_ipp = _floats(ds.get("ImagePositionPatient"), 3)
    detector = first_item(ds, "DetectorInformationSequence")  # NM (PS3.3 C.8.4.11)
    if detector is not None and top_ipp is None:
        top_ipp = _floats(detector.get("ImagePositionPatient"), 3)
        top_iop = _floats(detector.get("ImageOrientationPatient"), 6)
    between = to_float(ds.get("SpacingBetweenSlices"))
    frames = []
    for k in range(n):
        if enhanced:
            pos_item = functional_group(ds, k, "PlanePositionSequence")
            ori_item = functional_group(ds, k, "PlaneOrientationSequence")
            meas = functional_group(ds, k, "PixelMeasuresSequence")
            pvt = functional_group(ds, k, "PixelValueTransformationSequence")
            content = functional_group(ds, k, "FrameContentSequence")
            ipp = _floats(pos_item.get("ImagePositionPatient"), 3) if pos_item else None
            iop = _floats(ori_item.get("ImageOrientationPatient"), 6) if ori_item else None
            spacing = _floats(meas.get("PixelSpacing"), 2) if meas else None
            thick = to_float(meas.get("SliceThickness")) if meas else None
            slope = to_float((pvt or ds).get("RescaleSlope"))
            intercept = to_float((pvt or ds).get("RescaleIntercept"))
            windows = _windows(functional_group(ds, k, "FrameVOILUTSequence"))
            ftype = None
            for kw in ("MRImageFrameTypeSequence", "CTImageFrameTypeSequence",
                       "PETFrameTypeSequence"):
                item = functional_group(ds, k, kw)
                if item is not None:
                    ftype = tuple(item.get("FrameType", ()))
            raw_dims = content.get("DimensionIndexValues") if content else None
            dims = [raw_dims] if isinstance(raw_dims, int) else list(raw_dims or [])
            dim_key = tuple(v for v, p in zip(dims, pointers, strict=False)
                            if p not in _POSITION_POINTERS) if pointers else None
            echo = functional_group(ds, k, "MREchoSequence")
            diffusion = functional_group(ds, k, "MRDiffusionSequence")
            keys = {
                "dimension": dim_key,
                "stack_id": content.get("StackID") if content else None,
                "temporal_position": content.get("TemporalPositionIndex") if content else None,
                "echo": to_float(echo.get("EffectiveEchoTime")) if echo else None,
                "image_type": ftype,
                "b_value": to_float(diffusion.get("DiffusionBValue")) if diffusion else None,
            }
        else:
            ipp, iop = top_ipp, top_iop
            if ipp is not None and iop is not None and n > 1:  # NM tomo: frames are slices
                gap = between or to_float(ds.get("SliceThickness"))
                ipp = ipp + np.cross(iop[:3], iop[3:]) * gap * k if gap else None
            spacing = _floats(ds.get("PixelSpacing"), 2)
            if spacing is None:
                spacing = _floats(ds.get("ImagerPixelSpacing"), 2)
            thick = to_float(ds.get("SliceThickness"))
            slope, intercept = to_float(ds.get("RescaleSlope")), to_float(ds.get("RescaleIntercept"))
            windows = _windows(ds)
            keys = {
                "temporal_position": ds.get("TemporalPositionIdentifier"),
                "echo": ds.get("EchoNumbers") or to_float(ds.get("EchoTime")),
                "image_type": tuple(ds.get("ImageType", ())),
                "b_value": to_float(ds.get("DiffusionBValue")),
                "trigger_time": to_float(ds.get("TriggerTime")),
                "acquisition_number": ds.get("AcquisitionNumber"),
            }
        row_c = iop[:3] / np.linalg.norm(iop[:3]) if iop is not None else None
        col_c = iop[3:] / np.linalg.norm(iop[3:]) if iop is not None else None
        if spacing is None or not bool((spacing > 0).all()):
            spacing, known = np.ones(2), False
        else:
            known = True
        frames.append(_Frame(
            ds_index=ds_index, frame_index=k, sop_instance_uid=sop, order=(inst, ds_index, k),
            position=ipp if iop is not None else None, row_cosine=row_c, column_cosine=col_c,
            pixel_spacing=(float(spacing[0]), float(spacing[1])),
            spacing_known=known, thickness_mm=thick,
            slope=1.0 if slope is None else slope, intercept=intercept or 0.0,
            matrix=matrix, windows=windows, keys={k2: _hashable(v) for k2, v in keys.items()}))
    return frames


def _hashable(value: Any) -> Any:
    if isinstance(value, list | tuple) or (hasattr(value, "__iter__")
                                           and not isinstance(value, str | bytes)):
        return tuple(_hashable(v) for v in value)
    return value if value is None or isinstance(value, int | float | str) else str(value)


# -- stack selection ----------------------------------------------------------------------------


def _same_plane(a: _Frame, b: _Frame) -> bool:
    if a.matrix != b.matrix or (a.position is None) != (b.position is None):
        return False
    if not np.allclose(a.pixel_spacing, b.pixel_spacing, rtol=1e-3, atol=1e-4):
        return False
    if a.row_cosine is None or b.row_cosine is None or b.column_cosine is None:
        return a.row_cosine is None and b.row_cosine is None
    return bool(np.abs(a.row_cosine - b.row_cosine).max() < 1e-3
                and np.abs(a.column_cosine - b.column_cosine).max() < 1e-3)  # type: ignore[operator]


def _normal(f: _Frame) -> npt.NDArray[np.float64]:
    assert f.row_cosine is not None and f.column_cosine is not None
    n = np.cross(f.row_cosine, f.column_cosine)
    return n / np.linalg.norm(n)


def _has_duplicates(frames: Sequence[_Frame], normal: npt.NDArray[np.float64]) -> bool:
    if frames[0].position is None:
        return False
    proj = np.sort([float(f.position @ normal) for f in frames])  # type: ignore[operator]
    return bool(len(proj) > 1 and np.min(np.diff(proj)) < 0.01)


def _select_stack(frames: list[_Frame]) -> tuple[list[_Frame], list[dict[str, Any]]]:
    """Largest consistent stack (module docstring, steps 1-3) and what was left out."""
    left_out: list[dict[str, Any]] = []
    groups: list[list[_Frame]] = []
    for f in sorted(frames, key=lambda fr: fr.order):
        for g in groups:
            if _same_plane(g[0], f):
                g.append(f)
                break
        else:
            groups.append([f])
    groups.sort(key=lambda g: -len(g))  # stable: ties keep acquisition order
    chosen = groups[0]
    for g in groups[1:]:
        left_out.append({"reason": "different orientation, matrix or pixel spacing",
                         "frames": len(g), "sop_instance_uids": sorted(
                             {f.sop_instance_uid for f in g})[:50]})
    if chosen[0].position is None:
        return chosen, left_out
    normal = _normal(chosen[0])
    if _has_duplicates(chosen, normal):
        best: list[_Frame] | None = None
        best_key = ""
        for key in (*_SPLIT_KEYS, "all"):
            parts: dict[Any, list[_Frame]] = defaultdict(list)
            for f in chosen:
                parts[tuple(f.keys.get(k) for k in _SPLIT_KEYS) if key == "all"
                      else f.keys.get(key)].append(f)
            if len(parts) < 2 or any(_has_duplicates(p, normal) for p in parts.values()):
                continue
            largest = max(parts.values(), key=len)  # first of equals: acquisition order
            if best is None or len(largest) > len(best):
                best, best_key = largest, key
        if best is None:  # nothing separates them: first frame per position
            seen: dict[int, _Frame] = {}
            for f in chosen:
                seen.setdefault(round(float(f.position @ normal) / 0.01), f)  # type: ignore[operator]
            best, best_key = list(seen.values()), "first-per-position"
        if len(best) < len(chosen):
            left_out.append({"reason": f"duplicate positions, split by {best_key}",
                             "frames": len(chosen) - len(best)})
        chosen = best
    chosen.sort(key=lambda f: float(f.position @ normal))  # type: ignore[operator]
    return chosen, left_out


# -- values -------------------------------------------------------------------------------------


def _luminance(rgb: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """ITU-R BT.601 luma of an (..., 3) RGB array, rounded back to its dtype."""
    y = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    return np.rint(y).astype(rgb.dtype) if np.issubdtype(rgb.dtype, np.integer) else y


def _values(stack: list[_Frame], datasets: Sequence[Dataset],
            modality: str) -> tuple[npt.NDArray[Any], dict[str, Any]]:
    """Modality values (PS3.3 C.11.1) of the stack's frames, ``(n, rows, cols)``."""
    decoded: dict[int, npt.NDArray[Any]] = {}
    raw: list[npt.NDArray[Any]] = []
    colour = ""
    lut = False
    for f in stack:
        ds = datasets[f.ds_index]
        if f.ds_index not in decoded:
            try:
                decoded[f.ds_index] = decode_frames(ds)
            except PixelDecodeError as exc:
                raise VolumeBuildError(f"instance {f.sop_instance_uid}: {exc}") from exc
        frame = decoded[f.ds_index][f.frame_index]
        photometric = str(ds.get("PhotometricInterpretation", "")).upper()
        if photometric == "PALETTE COLOR":
            frame = apply_color_lut(frame, ds)
        if frame.ndim == 3:
            colour = photometric
            frame = _luminance(frame)
        elif "ModalityLUTSequence" in ds:
            lut = True
            frame = np.asarray(apply_modality_lut(frame, ds), dtype=np.float32)
        raw.append(frame)
    slopes = np.array([f.slope for f in stack])
    intercepts = np.array([f.intercept for f in stack])
    identity = bool(colour or lut or (np.all(slopes == 1.0) and np.all(intercepts == 0.0)))
    stored = np.result_type(*[r.dtype for r in raw])
    lo = min(float(r.min()) * s + i if s >= 0 else float(r.max()) * s + i
             for r, s, i in zip(raw, slopes, intercepts, strict=True))
    hi = max(float(r.max()) * s + i if s >= 0 else float(r.min()) * s + i
             for r, s, i in zip(raw, slopes, intercepts, strict=True))
    integral = bool(np.all(slopes == np.round(slopes)) and np.all(intercepts == np.round(intercepts)))
    fits16 = -32768 <= lo and hi <= 32767
    if modality == "PT":
        dtype: np.dtype[Any] = np.dtype(np.float32)
    elif identity and (modality != "CT" or not fits16 or colour):
        dtype = np.dtype(stored)
    elif integral and fits16 and np.issubdtype(stored, np.integer):
        dtype = np.dtype(np.int16)
    else:
        dtype = np.dtype(np.float32)
    out = np.empty((len(stack), *raw[0].shape), dtype=dtype)
    wide = np.int64 if np.dtype(stored).itemsize >= 4 else np.int32
    for k, (r, s, i) in enumerate(zip(raw, slopes, intercepts, strict=True)):
        if identity:
            out[k] = r
        elif dtype == np.int16:
            out[k] = r.astype(wide) * int(s) + int(i)
        else:
            out[k] = r.astype(np.float64) * s + i
    per_slice = bool(np.ptp(slopes) > 0 or np.ptp(intercepts) > 0)
    info = {
        "applied": not identity,
        "slope": float(slopes[0]), "intercept": float(intercepts[0]),
        "per_slice": per_slice,
        "slopes": slopes.tolist() if per_slice else None,
        "intercepts": intercepts.tolist() if per_slice else None,
        "modality_lut_sequence": lut,
        "stored_dtype": str(np.dtype(stored)),
        "dtype": str(dtype),
    }
    if colour:
        info["colour"] = {"photometric_interpretation": colour,
                          "converted_to": "luminance (ITU-R BT.601)"}
    return out, info


# -- geometry -----------------------------------------------------------------------------------


def _geometry(stack: list[_Frame], data: npt.NDArray[Any], for_uid: str | None
              ) -> tuple[VolumeGeometry, npt.NDArray[Any], dict[str, Any]]:
    """Affine (module docstring, steps 4-5), the possibly resampled data, and notes."""
    first = stack[0]
    n, rows, cols = data.shape
    notes: dict[str, Any] = {"resampled": False, "geometry_source": "image-plane"}
    if first.position is None or first.row_cosine is None or first.column_cosine is None:
        notes["geometry_source"] = "synthetic (no Image Plane attributes)"
        geometry = VolumeGeometry.from_components(
            shape=(n, rows, cols), origin_lps=np.zeros(3), row_cosine=[1.0, 0.0, 0.0],
            column_cosine=[0.0, 1.0, 0.0], slice_step_lps=[0.0, 0.0, first.thickness_mm or 1.0],
            pixel_spacing_mm=first.pixel_spacing, frame_of_reference_uid=None)
        return geometry, data, notes
    normal = _normal(first)
    p = np.array([f.position for f in stack], dtype=np.float64)
    if n == 1:
        step = normal * (first.thickness_mm if first.thickness_mm and first.thickness_mm > 0
                         else 1.0)
    else:
        delta = p[-1] - p[0]
        length = float(np.linalg.norm(delta))
        u = delta / length
        s = (p - p[0]) @ u
        off_line = float(np.linalg.norm(p - p[0] - s[:, None] * u, axis=1).max())
        if off_line > max(0.05, 0.1 * min(first.pixel_spacing)):
            raise VolumeBuildError(f"slice positions do not lie on one line "
                                   f"({off_line:.3f} mm off it)")
        gaps = np.diff(s)
        h = length / (n - 1)
        deviation = float(np.abs(s - h * np.arange(n)).max())
        notes["missing_slices"] = _missing(gaps)
        if deviation <= max(0.02, 0.02 * h):
            along = float(delta @ normal) * normal
            # Rounding noise in IPP (< 0.01 mm off the normal over the whole stack) is not a
            # tilt: keep the axis orthogonal then, every IPP still within 0.01 mm.
            step = (along if np.linalg.norm(delta - along) < 0.01 else delta) / (n - 1)
            notes["max_position_error_mm"] = float(np.linalg.norm(
                p - p[0] - np.arange(n)[:, None] * step, axis=1).max())
        else:
            data, step = _resample(data, s, u, float(gaps.min()))
            notes.update({
                "resampled": True,
                "resampling": "linear along the slice axis, step = smallest gap",
                "original_slice_positions_mm": s.tolist(),
                "original_slice_spacings_mm": gaps.tolist(),
                "original_ipp": p.tolist(),
                "slice_step_mm": float(np.linalg.norm(step)),
            })
    try:
        geometry = VolumeGeometry.from_components(
            shape=data.shape, origin_lps=p[0], row_cosine=first.row_cosine,
            column_cosine=first.column_cosine, slice_step_lps=step,
            pixel_spacing_mm=first.pixel_spacing, frame_of_reference_uid=for_uid)
    except GeometryError as exc:
        raise VolumeBuildError(f"degenerate geometry: {exc}") from exc
    return geometry, data, notes


def _missing(gaps: npt.NDArray[np.float64]) -> list[dict[str, Any]]:
    """Gaps that are a whole multiple (>= 2) of the median gap: slices missing there."""
    if len(gaps) < 2:
        return []
    typical = float(np.median(gaps))
    out = []
    for i, g in enumerate(gaps):
        ratio = float(g) / typical
        k = round(ratio)
        if k >= 2 and abs(ratio - k) < 0.1:
            out.append({"after_slice": i, "gap_mm": float(g), "missing": k - 1})
    return out


def _resample(data: npt.NDArray[Any], s: npt.NDArray[np.float64], u: npt.NDArray[np.float64],
              smallest_gap: float) -> tuple[npt.NDArray[Any], npt.NDArray[np.float64]]:
    """Linear interpolation of slices at ``s`` (mm along ``u``) onto a uniform grid from 0 to
    ``s[-1]`` inclusive; returns the new data and the slice step vector (LPS mm)."""
    length = float(s[-1])
    count = min(MAX_RESAMPLED_SLICES, max(2, int(round(length / smallest_gap)) + 1))
    t = np.linspace(0.0, length, count)
    j = np.clip(np.searchsorted(s, t, side="right") - 1, 0, len(s) - 2)
    w = (t - s[j]) / (s[j + 1] - s[j])
    out = np.empty((count, *data.shape[1:]), dtype=data.dtype)
    integer = np.issubdtype(data.dtype, np.integer)
    for k in range(count):
        if w[k] < 1e-6:
            out[k] = data[j[k]]
        elif w[k] > 1.0 - 1e-6:
            out[k] = data[j[k] + 1]
        else:
            v = data[j[k]].astype(np.float32) * (1.0 - w[k]) + data[j[k] + 1] * w[k]
            out[k] = np.rint(v) if integer else v
    return out, u * (length / (count - 1))


# -- metadata -----------------------------------------------------------------------------------


def _units(ds: Dataset, modality: str, rescaled: bool) -> str:
    if modality == "CT":
        return "HU"
    if modality == "PT":
        return text(ds, "Units")
    return text(ds, "RescaleType") if rescaled else ""


def _window_presets(stack: list[_Frame]) -> list[dict[str, Any]]:
    seen: list[tuple[float, float, str]] = []
    for f in stack:
        for w in f.windows:
            if w not in seen:
                seen.append(w)
        if len(seen) >= 8:
            break
    return [{"center": c, "width": w, "explanation": e} for c, w, e in seen]


# -- entry point --------------------------------------------------------------------------------


def assemble_series(datasets: list[Dataset], *, series_uid: str | None = None) -> Volume:
    """Assemble the instances of one series (full data sets, pixels included) into a volume.

    ``data`` is ``(z, y, x)`` with dtype per the module docstring (step 6); the geometry maps
    index to LPS mm. Raises :class:`VolumeBuildError` for a series without image frames
    (SR, RWV, SEG, …), undecodable pixel data, or slices that do not lie on one line.
    """
    uid = series_uid or (text(datasets[0], "SeriesInstanceUID") if datasets else None)
    images = [(i, ds) for i, ds in enumerate(datasets)
              if any(kw in ds for kw in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))
              and "Rows" in ds and "Columns" in ds]
    if not images:
        raise VolumeBuildError("series has no image pixel data (not an image series)",
                               series_uid=uid)
    ref = images[0][1]
    modality = text(ref, "Modality").upper()
    if modality in _NOT_IMAGES:
        raise VolumeBuildError(f"{modality} objects are not image volumes", series_uid=uid)
    frames: list[_Frame] = []
    unusable = 0
    for i, ds in images:
        if int(ds.get("BitsAllocated", 16) or 16) == 1:
            unusable += 1
            continue
        try:
            frames.extend(_frames_of(ds, i))
        except (AttributeError, KeyError, TypeError, ValueError, IndexError):
            unusable += 1
    if not frames:
        raise VolumeBuildError("no usable image frames", series_uid=uid)
    stack, left_out = _select_stack(frames)
    if unusable:
        left_out.append({"reason": "unreadable frame attributes or 1-bit pixels",
                         "frames": unusable})
    ref = datasets[stack[0].ds_index]
    try:
        data, rescale = _values(stack, datasets, modality)
        for_uid = text(ref, "FrameOfReferenceUID") or None
        geometry, data, notes = _geometry(stack, data, for_uid)
    except VolumeBuildError as exc:
        raise VolumeBuildError(str(exc), series_uid=uid) from exc
    for item in notes.get("missing_slices", []):
        log.warning("series assembly: %d slice(s) missing after slice %d (gap %.2f mm)",
                    item["missing"], item["after_slice"], item["gap_mm"])
    if left_out:
        log.info("series assembly: left out %s", ", ".join(
            f"{x['frames']} frame(s) ({x['reason']})" for x in left_out))
    multi = any(frame_count(datasets[f.ds_index]) > 1 for f in stack)
    metadata: dict[str, Any] = {
        "modality": modality,
        "sop_class_uid": text(ref, "SOPClassUID"),
        "series_instance_uid": uid,
        "study_instance_uid": text(ref, "StudyInstanceUID"),
        "frame_of_reference_uid": geometry.frame_of_reference_uid,
        "units": _units(ref, modality, bool(rescale["applied"])),
        "photometric_interpretation": text(ref, "PhotometricInterpretation"),
        "invert": text(ref, "PhotometricInterpretation").upper() == "MONOCHROME1",
        "rescale": rescale,
        "window_presets": _window_presets(stack),
        "four_corner": four_corner(ref),
        "slice_sop_instance_uids": [f.sop_instance_uid for f in stack],
        "slice_frame_numbers": [f.frame_index + 1 for f in stack] if multi else None,
        "pixel_spacing_known": stack[0].spacing_known,
        "gantry_tilt_deg": to_float(ref.get("GantryDetectorTilt")),
        "sheared": geometry.is_sheared,
        "excluded_frames": left_out,
        "value_range": [float(data.min()), float(data.max())],
        **notes,
    }
    if modality == "PT":
        used = sorted({f.ds_index for f in stack})
        suv = suv_bw_factor([datasets[i] for i in used])
        metadata.update({"suv_bw_factor": suv.factor, "suv_reason": suv.reason,
                         "suv_method": suv.method})
    return Volume(geometry=geometry, data=data, metadata=metadata)
