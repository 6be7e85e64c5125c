"""The reference renderers of the render benchmark: VTK and SimpleITK on VoxCast's grids.

Every reference is set up once per case (pipeline objects, images, transforms) and then called
once per frame; a call returns the same kind of array VoxCast returns, so the benchmark can
check the values before it times anything.

Frames. SimpleITK images carry the volume's geometry (origin, spacing, direction), so they live
in patient space (LPS mm) like VoxCast. VTK images are wrapped around the very same voxels
(no copy) with origin 0, the volume's spacing and no direction: VTK's world is then the
volume's index axes in mm, ``world = Dᵀ (lps - origin)`` with ``D`` the unit index axes
(x = columns, y = rows, z = slices). :class:`WorldFrame` maps planes and cameras into it. A
sheared (gantry-tilted) or left-handed volume cannot be put into VTK this way and is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

# The PyPI VTK wheel tries an X display first and warns before it falls back to EGL; go to EGL
# directly (must be set before VTK creates its first render window).
os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

import SimpleITK as sitk  # noqa: E402
import vtk  # noqa: E402
from vtkmodules.util import numpy_support  # noqa: E402

from render_engine.camera import Camera  # noqa: E402
from render_engine.geometry import VolumeGeometry  # noqa: E402
from render_engine.planes import Plane  # noqa: E402
from render_engine.transfer import TransferFunction  # noqa: E402

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


def configure_threads(threads: int) -> dict[str, Any]:
    """Give VTK (multithreader and SMP) and SimpleITK ``threads`` threads; what was set."""
    vtk.vtkMultiThreader.SetGlobalDefaultNumberOfThreads(threads)
    vtk.vtkSMPTools.SetBackend("STDThread")
    vtk.vtkSMPTools.Initialize(threads)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    return {"vtk": vtk.vtkVersion.GetVTKVersion(), "vtk threads": threads,
            "vtk SMP backend": vtk.vtkSMPTools.GetBackend(),
            "SimpleITK": sitk.Version.VersionString(),
            "SimpleITK threads": sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()}


@dataclass(frozen=True, slots=True)
class WorldFrame:
    """VTK's world of a volume: its index axes (x, y, z) in mm, voxel (0, 0, 0) at 0."""

    origin_lps: F64
    axes: F64  # columns: unit LPS directions of x (columns), y (rows), z (slices)
    spacing_xyz: tuple[float, float, float]

    @classmethod
    def of(cls, geometry: VolumeGeometry) -> WorldFrame:
        """Raises ``ValueError`` for a sheared or left-handed volume."""
        m = geometry.affine[:3, :3]
        cols = np.column_stack([m[:, 2], m[:, 1], m[:, 0]])
        spacing = np.linalg.norm(cols, axis=0)
        axes = cols / spacing
        if not np.allclose(axes.T @ axes, np.eye(3), atol=1e-6) or np.linalg.det(axes) < 0:
            raise ValueError("the VTK reference needs an orthogonal, right-handed volume")
        return cls(origin_lps=geometry.affine[:3, 3].copy(), axes=axes,
                   spacing_xyz=(float(spacing[0]), float(spacing[1]), float(spacing[2])))

    def point(self, lps: npt.ArrayLike) -> F64:
        return np.asarray((np.asarray(lps, dtype=np.float64) - self.origin_lps) @ self.axes)

    def vector(self, lps: npt.ArrayLike) -> F64:
        return np.asarray(np.asarray(lps, dtype=np.float64) @ self.axes)


def vtk_image(volume: npt.NDArray[np.generic], frame: WorldFrame) -> vtk.vtkImageData:
    """A vtkImageData over the voxels of ``volume`` (z, y, x), C-contiguous, without a copy.

    The caller keeps ``volume`` alive as long as the image is used.
    """
    if not volume.flags.c_contiguous:
        raise ValueError("volume must be C-contiguous")
    nz, ny, nx = volume.shape
    image = vtk.vtkImageData()
    image.SetDimensions(nx, ny, nz)
    image.SetSpacing(*frame.spacing_xyz)
    image.SetOrigin(0.0, 0.0, 0.0)
    scalars = numpy_support.numpy_to_vtk(volume.reshape(-1), deep=False)
    image.GetPointData().SetScalars(scalars)
    return image


def sitk_image(volume: npt.NDArray[np.generic], geometry: VolumeGeometry) -> sitk.Image:
    """A SimpleITK image (a copy of the voxels) with the volume's patient geometry."""
    frame = WorldFrame.of(geometry)
    image = sitk.GetImageFromArray(volume)
    image.SetOrigin(tuple(float(v) for v in frame.origin_lps))
    image.SetSpacing(frame.spacing_xyz)
    image.SetDirection(tuple(float(v) for v in frame.axes.ravel()))
    return image


def _vtk_scalars_2d(algorithm: vtk.vtkAlgorithm) -> F32:
    out = algorithm.GetOutput()
    w, h, _ = out.GetDimensions()
    return np.asarray(numpy_support.vtk_to_numpy(out.GetPointData().GetScalars()).reshape(h, w))


# -- planes and slabs --------------------------------------------------------------------------

class VtkReslice:
    """vtkImageReslice (or, with ``slab_samples``, vtkImageSlabReslice, MIP) of one plane.

    Trilinear, float32 output (what VoxCast returns), NaN outside, output extent = the plane's
    pixels. A slab takes ``slab_samples`` samples (odd) across ``thickness_mm``: VTK samples
    ``2·int(T / (2·r)) + 1`` points ``r`` apart for a slab resolution ``r``, so ``r`` is set to
    ``T / (n - 1)`` (a hair less, against rounding) and the samples are exactly VoxCast's.
    ``optimization=False`` turns off VTK's permutation fast path (see the benchmark's notes).
    """

    def __init__(self, image: vtk.vtkImageData, frame: WorldFrame, plane: Plane, *,
                 thickness_mm: float = 0.0, slab_samples: int = 1, smp: bool = False,
                 optimization: bool = True) -> None:
        slab = thickness_mm > 0 and slab_samples > 1
        r = vtk.vtkImageSlabReslice() if slab else vtk.vtkImageReslice()
        r.SetInputData(image)
        r.SetInterpolationModeToLinear()
        r.SetResliceAxesDirectionCosines(*frame.vector(plane.row_dir),
                                         *frame.vector(plane.col_dir),
                                         *frame.vector(plane.normal))
        r.SetResliceAxesOrigin(*frame.point(plane.pixel_to_patient(0, 0)))
        s = plane.pixel_spacing_mm
        w, h = plane.size_px
        r.SetOutputSpacing(s, s, 1.0)
        r.SetOutputOrigin(0.0, 0.0, 0.0)
        r.SetOutputExtent(0, w - 1, 0, h - 1, 0, 0)
        r.SetOutputDimensionality(2)
        r.SetOutputScalarType(vtk.VTK_FLOAT)
        r.SetBackgroundLevel(float("nan"))
        r.SetEnableSMP(smp)
        r.SetOptimization(int(optimization))
        if slab:
            r.SetBlendModeToMax()
            r.SetSlabThickness(thickness_mm)
            r.SetSlabResolution(thickness_mm / (slab_samples - 1) * (1.0 - 1e-9))
        self.algorithm = r
        self.settings = {"class": r.GetClassName(), "interpolation": "linear",
                         "output": f"{w}x{h} float32", "threads": r.GetNumberOfThreads(),
                         "SMP": smp, "optimization": optimization}
        if slab:
            r.UpdateInformation()
            self.settings.update(slab_thickness_mm=thickness_mm,
                                 slab_resolution_mm=r.GetSlabResolution(),
                                 slab_samples=r.GetNumBlendSamplePoints(), blend="max")

    def __call__(self) -> F32:
        self.algorithm.Modified()
        self.algorithm.Update()
        return _vtk_scalars_2d(self.algorithm)


class VtkCurvedReslice:
    """vtkImageReslice through a displacement-grid transform: VTK's way to sample an arbitrary
    surface (here a CPR's pixel positions ``grid_lps``, (h, w, 3)) trilinearly.

    The output grid is (w, h) with unit spacing; the displacement at output pixel (i, j) is
    the VTK world position of that CPR pixel minus (j, i, 0), so the transform is exact at
    every output pixel (linear interpolation of the grid at its own nodes).
    """

    def __init__(self, image: vtk.vtkImageData, frame: WorldFrame, grid_lps: F64) -> None:
        h, w = grid_lps.shape[:2]
        disp = frame.point(grid_lps)
        disp[..., 0] -= np.arange(w)[None, :]
        disp[..., 1] -= np.arange(h)[:, None]
        self._disp = np.ascontiguousarray(disp.reshape(-1, 3))
        grid = vtk.vtkImageData()
        grid.SetDimensions(w, h, 1)
        grid.GetPointData().SetScalars(numpy_support.numpy_to_vtk(self._disp, deep=False))
        transform = vtk.vtkGridTransform()
        transform.SetDisplacementGridData(grid)
        transform.SetInterpolationModeToLinear()
        r = vtk.vtkImageReslice()
        r.SetInputData(image)
        r.SetResliceTransform(transform)
        r.SetInterpolationModeToLinear()
        r.SetOutputSpacing(1.0, 1.0, 1.0)
        r.SetOutputOrigin(0.0, 0.0, 0.0)
        r.SetOutputExtent(0, w - 1, 0, h - 1, 0, 0)
        r.SetOutputScalarType(vtk.VTK_FLOAT)
        r.SetBackgroundLevel(float("nan"))
        self.algorithm = r
        self._keep = (grid, transform)
        self.settings = {"class": "vtkImageReslice + vtkGridTransform (displacement per pixel)",
                         "interpolation": "linear", "output": f"{w}x{h} float32",
                         "threads": r.GetNumberOfThreads()}

    def __call__(self) -> F32:
        self.algorithm.Modified()
        self.algorithm.Update()
        return _vtk_scalars_2d(self.algorithm)


def _sitk_grid(plane: Plane, depth: int = 1, first_offset_mm: float = 0.0,
               step_mm: float = 1.0) -> sitk.Image:
    w, h = plane.size_px
    grid = sitk.Image(w, h, depth, sitk.sitkFloat32)
    origin = plane.pixel_to_patient(0, 0) + first_offset_mm * plane.normal
    grid.SetOrigin(tuple(float(v) for v in origin))
    grid.SetSpacing((plane.pixel_spacing_mm, plane.pixel_spacing_mm, step_mm))
    grid.SetDirection(tuple(float(v) for v in np.column_stack(
        [plane.row_dir, plane.col_dir, plane.normal]).ravel()))
    return grid


class SitkPlane:
    """``sitk.Resample`` onto the plane's grid (linear, float32, NaN outside); with slab
    ``offsets_mm`` onto the stack of planes at those offsets, then the maximum over them."""

    def __init__(self, image: sitk.Image, plane: Plane,
                 offsets_mm: F64 | None = None) -> None:
        self.image = image
        if offsets_mm is None or len(offsets_mm) == 1:
            self.grid, self.slab = _sitk_grid(plane), False
        else:
            step = float(offsets_mm[1] - offsets_mm[0])
            self.grid = _sitk_grid(plane, len(offsets_mm), float(offsets_mm[0]), step)
            self.slab = True
        self.settings = {"call": "Resample(image, grid, Transform(), sitkLinear, NaN, "
                                 "sitkFloat32)" + (" + numpy nanmax over the stack"
                                                   if self.slab else ""),
                         "threads": sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()}

    def __call__(self) -> F32:
        out = sitk.Resample(self.image, self.grid, sitk.Transform(), sitk.sitkLinear,
                            float("nan"), sitk.sitkFloat32)
        values = sitk.GetArrayViewFromImage(out)
        if not self.slab:
            return np.array(values[0])
        with np.errstate(invalid="ignore"):
            return np.asarray(np.fmax.reduce(values, axis=0), dtype=np.float32)


class SitkCurved:
    """``sitk.Resample`` through a displacement field that puts output pixel (i, j) of a
    (w, h) unit grid onto the CPR pixel ``grid_lps[i, j]`` (exact at the grid's nodes)."""

    def __init__(self, image: sitk.Image, grid_lps: F64) -> None:
        h, w = grid_lps.shape[:2]
        nodes = np.zeros((h, w, 3))
        nodes[..., 0] = np.arange(w)[None, :]
        nodes[..., 1] = np.arange(h)[:, None]
        field = sitk.GetImageFromArray((grid_lps - nodes)[None].astype(np.float64),
                                       isVector=True)
        self.transform = sitk.DisplacementFieldTransform(field)
        self.grid = sitk.Image(w, h, 1, sitk.sitkFloat32)
        self.image = image
        self.settings = {"call": "Resample(image, grid, DisplacementFieldTransform, "
                                 "sitkLinear, NaN, sitkFloat32)"}

    def __call__(self) -> F32:
        out = sitk.Resample(self.image, self.grid, self.transform, sitk.sitkLinear,
                            float("nan"), sitk.sitkFloat32)
        return np.array(sitk.GetArrayViewFromImage(out)[0])


# -- ray casting -------------------------------------------------------------------------------

class VtkRayCaster:
    """vtkFixedPointVolumeRayCastMapper in an offscreen render window, VoxCast's camera.

    ``transfer`` given: volume rendering with its colours, opacities (per unit distance) and
    shading material; else MIP through a grey ramp over ``grey_range`` (opaque), so the image is
    the windowed maximum. Orthographic camera: parallel projection, parallel scale = half the
    image height in mm, view up = the camera's up, so VTK's pixel centres are VoxCast's. Rays
    are sampled every ``step_mm`` (automatic adjustment off), one ray per pixel.
    """

    def __init__(self, image: vtk.vtkImageData, frame: WorldFrame, camera: Camera, *,
                 step_mm: float, transfer: TransferFunction | None = None,
                 grey_range: tuple[float, float] = (-1024.0, 3071.0), threads: int = 0) -> None:
        if camera.is_perspective:
            raise ValueError("the VTK reference is set up for orthographic cameras")
        mapper = vtk.vtkFixedPointVolumeRayCastMapper()
        mapper.SetInputData(image)
        mapper.SetAutoAdjustSampleDistances(0)
        mapper.SetSampleDistance(step_mm)
        mapper.SetImageSampleDistance(1.0)
        if threads:
            mapper.SetNumberOfThreads(threads)
        prop = vtk.vtkVolumeProperty()
        prop.SetInterpolationTypeToLinear()
        colours = vtk.vtkColorTransferFunction()
        opacity = vtk.vtkPiecewiseFunction()
        if transfer is not None:
            mapper.SetBlendModeToComposite()
            for value, r, g, b in transfer.color_points:
                colours.AddRGBPoint(value, r, g, b)
            for value, a in transfer.opacity_points:
                opacity.AddPoint(value, a)
            prop.SetScalarOpacityUnitDistance(transfer.unit_distance_mm)
            prop.ShadeOn()
            prop.SetAmbient(transfer.ambient)
            prop.SetDiffuse(transfer.diffuse)
            prop.SetSpecular(transfer.specular)
            prop.SetSpecularPower(transfer.specular_power)
        else:
            mapper.SetBlendModeToMaximumIntensity()
            colours.AddRGBPoint(grey_range[0], 0.0, 0.0, 0.0)
            colours.AddRGBPoint(grey_range[1], 1.0, 1.0, 1.0)
            opacity.AddPoint(-1e5, 1.0)
            opacity.AddPoint(1e5, 1.0)
            prop.ShadeOff()
        prop.SetColor(colours)
        prop.SetScalarOpacity(opacity)
        volume = vtk.vtkVolume()
        volume.SetMapper(mapper)
        volume.SetProperty(prop)
        renderer = vtk.vtkRenderer()
        renderer.AddVolume(volume)
        renderer.SetBackground(0.0, 0.0, 0.0)
        window = vtk.vtkRenderWindow()
        window.SetOffScreenRendering(1)
        window.AddRenderer(renderer)
        w, h = camera.size_px
        window.SetSize(w, h)
        cam = renderer.GetActiveCamera()
        cam.ParallelProjectionOn()
        focal = frame.point(camera.center_lps)
        bounds = np.array(image.GetBounds()).reshape(3, 2)
        distance = 2.0 * float(np.linalg.norm(bounds[:, 1] - bounds[:, 0])) + 1.0
        cam.SetFocalPoint(*focal)
        cam.SetPosition(*(focal - distance * frame.vector(camera.normal)))
        cam.SetViewUp(*frame.vector(-camera.col_dir))
        cam.SetParallelScale(camera.pixel_spacing_mm * h / 2.0)
        renderer.ResetCameraClippingRange()
        self.window, self.mapper = window, mapper
        self._keep = (prop, colours, opacity, volume, renderer)
        self._grab = vtk.vtkWindowToImageFilter()
        self._grab.SetInput(window)
        self._grab.ReadFrontBufferOff()
        self.settings = {"class": mapper.GetClassName(), "window": f"{w}x{h} offscreen",
                         "blend": "composite, shaded" if transfer is not None else "MIP",
                         "sample_distance_mm": mapper.GetSampleDistance(),
                         "auto_adjust_sample_distances": 0, "image_sample_distance": 1.0,
                         "interpolation": "linear", "threads": mapper.GetNumberOfThreads()}

    def render(self) -> None:
        """One frame: ``Render()`` only (what is timed)."""
        self.window.Render()

    def window_class(self) -> str:
        return str(self.window.GetClassName())

    def opengl_renderer(self) -> str:
        for line in str(self.window.ReportCapabilities()).splitlines():
            if "renderer string" in line:
                return line.split(":", 1)[1].strip()
        return "unknown"

    def image(self) -> npt.NDArray[np.uint8]:
        """The last frame as RGB uint8 (h, w, 3), row 0 at the top."""
        self._grab.Modified()
        self._grab.Update()
        out = self._grab.GetOutput()
        w, h, _ = out.GetDimensions()
        rgba = numpy_support.vtk_to_numpy(out.GetPointData().GetScalars()).reshape(h, w, -1)
        return np.ascontiguousarray(rgba[::-1, :, :3])


# -- ROI statistics ----------------------------------------------------------------------------

def _vtk_plane_image(values: F32) -> tuple[vtk.vtkImageData, F32]:
    data = np.ascontiguousarray(values, dtype=np.float32)
    image = vtk.vtkImageData()
    image.SetDimensions(data.shape[1], data.shape[0], 1)
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(data.reshape(-1), deep=False))
    return image, data


class VtkRoiStats:
    """vtkImageAccumulate over an ellipse stencil (vtkROIStencilSource) of a view's values:
    count, mean, standard deviation, min, max and a ``bins`` histogram over ``value_range``.

    Pixel (row i, column j) is at (x=j, y=i), as in VoxCast's measurements.
    """

    def __init__(self, values: F32, center_xy: tuple[float, float],
                 radii_xy: tuple[float, float], value_range: tuple[float, float],
                 bins: int) -> None:
        self.image, self._data = _vtk_plane_image(values)
        stencil = vtk.vtkROIStencilSource()
        stencil.SetShapeToEllipsoid()
        (cx, cy), (rx, ry) = center_xy, radii_xy
        stencil.SetBounds(cx - rx, cx + rx, cy - ry, cy + ry, 0.0, 0.0)
        stencil.SetInformationInput(self.image)
        acc = vtk.vtkImageAccumulate()
        acc.SetInputData(self.image)
        stencil.Update()
        acc.SetStencilData(stencil.GetOutput())
        lo, hi = value_range
        acc.SetComponentOrigin(lo, 0.0, 0.0)
        acc.SetComponentSpacing((hi - lo) / bins, 1.0, 1.0)
        acc.SetComponentExtent(0, bins - 1, 0, 0, 0, 0)
        self.algorithm, self._stencil = acc, stencil
        self.settings = {"class": "vtkImageAccumulate + vtkROIStencilSource (ellipsoid)",
                         "bins": bins}

    def __call__(self) -> dict[str, float]:
        acc = self.algorithm
        acc.Modified()
        acc.Update()
        return {"count": float(acc.GetVoxelCount()), "mean": acc.GetMean()[0],
                "std": acc.GetStandardDeviation()[0], "min": acc.GetMin()[0],
                "max": acc.GetMax()[0]}


class SitkRoiStats:
    """LabelStatisticsImageFilter (histogram on, for the median) of a view's values over a
    label mask of the ROI (made once, outside the timed call)."""

    def __init__(self, values: F32, mask: npt.NDArray[np.bool_]) -> None:
        self.image = sitk.GetImageFromArray(np.ascontiguousarray(values, dtype=np.float32))
        self.labels = sitk.GetImageFromArray(mask.astype(np.uint8))
        self.filter = sitk.LabelStatisticsImageFilter()
        self.filter.SetUseHistograms(True)
        self.settings = {"class": "LabelStatisticsImageFilter (histograms on: its own bins)"}

    def __call__(self) -> dict[str, float]:
        f = self.filter
        f.Execute(self.image, self.labels)
        return {"count": float(f.GetCount(1)), "mean": f.GetMean(1), "std": f.GetSigma(1),
                "min": f.GetMinimum(1), "max": f.GetMaximum(1), "median": f.GetMedian(1)}
