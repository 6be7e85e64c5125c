"""Decoding pixel data to stored values, whatever the transfer syntax.

pydicom's pixel handlers (pylibjpeg, GDCM, Pillow plugins) decode almost every syntax. The
one family they refuse is 12-bit JPEG Extended (1.2.840.10008.1.2.4.51, PS3.5 A.4.1 with
process 4): pylibjpeg-libjpeg rejects the scan parameters, pydicom refuses 12-bit precision
for GDCM and Pillow. For those, :func:`decode_frames` falls back to SimpleITK, whose bundled
GDCM carries a 12-bit IJG libjpeg; its output equals dcmtk's ``dcmdjpeg`` bit for bit on the
NEMA WG04 ``*_JPLY`` images.

Values returned are *stored values* (PS3.3 C.7.6.3.1.4 — before the Modality LUT / rescale of
C.11.1): no rescale, no VOI, no inversion for MONOCHROME1. Colour images are returned as RGB
(pydicom converts YBR_FULL / YBR_FULL_422 to RGB, PS3.3 C.7.6.3.1.2).
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import get_decoder
from pydicom.pixels.utils import pixel_dtype
from pydicom.uid import UID, JPEGExtended12Bit

from ingest.errors import IngestError

# Attributes SimpleITK/GDCM would apply to the pixels; removed from the copy it decodes, so
# that the fallback also returns stored values.
_GDCM_APPLIED = ("RescaleSlope", "RescaleIntercept", "RescaleType", "ModalityLUTSequence")


# Only these go to the SimpleITK fallback: a native decoder fed arbitrary broken bytes of
# other syntaxes is a risk to the process, and pydicom already said why it cannot decode them.
_FALLBACK_SYNTAXES = frozenset({JPEGExtended12Bit})


class PixelDecodeError(IngestError, ValueError):
    """Pixel data cannot be decoded by any available decoder."""


def frame_count(ds: Dataset) -> int:
    """NumberOfFrames (PS3.3 C.7.6.6), 1 when absent or empty."""
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def decode_frames(ds: Dataset) -> npt.NDArray[np.generic]:
    """All frames of ``ds`` as stored values.

    Returns shape ``(frames, rows, cols)``, or ``(frames, rows, cols, samples)`` when
    SamplesPerPixel > 1 (RGB order, see module docstring); dtype as pydicom gives it for the
    Image Pixel module (``uint8``/``int16``/``uint16``/…; float for Float Pixel Data).
    Raises :class:`PixelDecodeError` when neither pydicom nor the SimpleITK fallback decodes.
    """
    if not any(kw in ds for kw in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise PixelDecodeError("data set has no pixel data")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = _decode_with_pydicom(ds)
    except Exception as first:
        if _ts(ds) not in _FALLBACK_SYNTAXES:
            raise PixelDecodeError(f"pixel data not decodable: {type(first).__name__}: {first}"
                                   ) from first
        try:
            arr = _decode_with_simpleitk(ds)
        except Exception as second:
            raise PixelDecodeError(
                f"pixel data not decodable ({_ts(ds).name}): pydicom: {first}; "
                f"SimpleITK: {type(second).__name__}: {second}") from second
    out = _frames_shape(ds, np.asarray(arr))
    if not out.dtype.isnative:  # Explicit VR Big Endian: hand out native byte order
        out = out.astype(out.dtype.newbyteorder("="))
    return out


def _decode_with_pydicom(ds: Dataset) -> npt.NDArray[np.generic]:
    """pydicom's decoder for the transfer syntax (not ``ds.pixel_array``, which would keep a
    second copy of every frame cached on the data set)."""
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    if ts:
        try:
            decoder = get_decoder(UID(str(ts)))
        except NotImplementedError:
            decoder = None
        if decoder is not None:
            return np.asarray(decoder.as_array(ds)[0])
    return np.asarray(ds.pixel_array)


def _ts(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    return UID(str(meta.get("TransferSyntaxUID", "1.2.840.10008.1.2") if meta is not None
                   else "1.2.840.10008.1.2"))


def _frames_shape(ds: Dataset, arr: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    """Normalise pydicom's shapes (it drops the frame axis for one frame) to frames-first."""
    frames = frame_count(ds)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    rows, cols = int(ds.Rows), int(ds.Columns)
    want: tuple[int, ...] = (frames, rows, cols) if samples == 1 else (frames, rows, cols, samples)
    if arr.shape == want:
        return arr
    if arr.size == int(np.prod(want)):
        return arr.reshape(want)
    raise PixelDecodeError(f"decoded shape {arr.shape} does not match {want}")


def _decode_with_simpleitk(ds: Dataset) -> npt.NDArray[np.generic]:
    """Decode through SimpleITK's GDCM (see module docstring): write a copy, read it back.

    The copy drops the Modality LUT attributes (GDCM would apply them) so the result is the
    stored values; it is then cast to the dtype the Image Pixel module specifies.
    """
    import SimpleITK as sitk  # heavy import, needed only for the rare syntaxes above

    copy = Dataset()
    for elem in ds:
        if elem.keyword not in _GDCM_APPLIED:
            copy.add(elem)
    copy.file_meta = FileMetaDataset(ds.file_meta)
    with tempfile.TemporaryDirectory(prefix="voxcast-decode-") as tmp:
        path = Path(tmp) / "instance.dcm"
        dcmwrite(path, copy, enforce_file_format=True)
        image = sitk.ReadImage(str(path))
        arr = sitk.GetArrayFromImage(image)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    frames = frame_count(ds)
    shape = (frames, int(ds.Rows), int(ds.Columns)) + ((samples,) if samples > 1 else ())
    arr = arr.reshape(shape)
    try:
        dtype = pixel_dtype(ds)
    except Exception:
        return arr
    if arr.dtype != dtype:
        info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
        if info is not None and (arr.min() < info.min or arr.max() > info.max):
            raise PixelDecodeError(f"decoded values do not fit {dtype}")
        arr = arr.astype(dtype)
    return arr
