"""Ray casting (MIP / MinIP / AvgIP and volume rendering) against independent references:
numpy reductions, analytic phantoms placed in patient space, projected areas, Lambert's law,
and the real ACRIN PET-CT study."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from ingest.assemble import assemble_series
from render_engine.camera import Camera
from render_engine.errors import RenderError
from render_engine.geometry import VolumeGeometry
from render_engine.kernels import cpu_raycast
from render_engine.raycast import (
    BlockGrid,
    camera_rays,
    classified_lut,
    default_step_mm,
    render_projection,
    render_volume,
)
from render_engine.transfer import TransferFunction, preset
from tests.conftest import data_path


def _geometry(shape: tuple[int, int, int], spacing_zyx: tuple[float, float, float], *,
              slice_shift_p: float = 0.0, origin: tuple[float, float, float] = (0, 0, 0),
              ) -> VolumeGeometry:
    """Axial stack: x → L, y → P, z → H; ``slice_shift_p`` leans the slice axis towards P
    (a gantry tilt, as a sheared affine)."""
    dz, dy, dx = spacing_zyx
    affine = np.eye(4)
    affine[:3, :3] = np.column_stack([[0.0, slice_shift_p, dz], [0.0, dy, 0.0], [dx, 0.0, 0.0]])
    affine[:3, 3] = origin
    return VolumeGeometry(shape=shape, affine=affine)


def _patient_grid(geometry: VolumeGeometry) -> np.ndarray:
    idx = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in geometry.shape],
                               indexing="ij"), axis=-1)
    return geometry.index_to_patient(idx)


def _center(geometry: VolumeGeometry) -> np.ndarray:
    return geometry.index_to_patient((np.array(geometry.shape) - 1) / 2.0)


def _v(*components: float) -> np.ndarray:
    return np.array(components, dtype=np.float64)


def _camera_like(camera: Camera, **changes: object) -> Camera:
    data = camera.to_json() | changes
    return Camera.from_json(data)


# -- camera -----------------------------------------------------------------------------------

def test_standard_views_face_the_patient_as_radiologists_expect() -> None:
    geometry = _geometry((40, 50, 60), (2.0, 1.0, 1.0))
    anterior = Camera.fit_volume(geometry, view="anterior", size_px=(64, 64))
    np.testing.assert_allclose(anterior.normal, [0, 1, 0], atol=1e-12)  # looks towards P
    np.testing.assert_allclose(anterior.up_dir, [0, 0, 1], atol=1e-12)  # head up
    right_of_patient = anterior.center_lps + [-20.0, 0.0, 0.0]
    assert anterior.project(right_of_patient)[1] < (64 - 1) / 2  # on the screen's left
    left = Camera.fit_volume(geometry, view="left", size_px=(64, 64))
    np.testing.assert_allclose(left.row_dir, [0, 1, 0], atol=1e-12)  # posterior to the right
    orbit = anterior.orbited(90.0)
    np.testing.assert_allclose(orbit.row_dir, left.row_dir, atol=1e-12)
    np.testing.assert_allclose(orbit.col_dir, left.col_dir, atol=1e-12)
    for view in ("posterior", "right", "superior", "inferior"):
        cam = Camera.fit_volume(geometry, view=view, size_px=(32, 32))
        assert abs(np.linalg.det(np.column_stack([cam.row_dir, cam.col_dir, cam.normal])) - 1) < 1e-9
    superior = Camera.fit_volume(geometry, view="superior", size_px=(32, 32))
    np.testing.assert_allclose(superior.up_dir, [0, -1, 0], atol=1e-12)  # anterior up
    with pytest.raises(KeyError, match="anterior"):
        Camera.fit_volume(geometry, view="oblique")


def test_orbit_turns_about_the_centre_and_elevation_raises_the_eye() -> None:
    geometry = _geometry((40, 50, 60), (2.0, 1.0, 1.0))
    cam = Camera.fit_volume(geometry, view="anterior", size_px=(64, 48))
    turned = cam.orbited(37.0, 21.0)
    basis = np.column_stack([turned.row_dir, turned.col_dir, turned.normal])
    np.testing.assert_allclose(basis.T @ basis, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(turned.center_lps, cam.center_lps)
    assert turned.normal[2] < 0  # looking down: the eye went up
    frames = cam.swivel(8)
    assert len(frames) == 8 and frames[0] == cam
    np.testing.assert_allclose(frames[2].row_dir, cam.orbited(90.0).row_dir, atol=1e-12)
    full = cam.orbited(360.0)
    np.testing.assert_allclose(full.row_dir, cam.row_dir, atol=1e-12)
    np.testing.assert_allclose(full.col_dir, cam.col_dir, atol=1e-12)
    # Azimuth moves the eye to the screen's right: the eye goes from A towards L.
    eye_side = -cam.orbited(30.0).normal
    assert eye_side[0] > 0 and eye_side[1] < 0


def test_zoom_pan_json_and_validation() -> None:
    geometry = _geometry((40, 50, 60), (2.0, 1.0, 1.0))
    cam = Camera.fit_volume(geometry, view="anterior", size_px=(64, 48))
    zoomed = cam.zoomed(2.0)
    assert zoomed.pixel_spacing_mm == pytest.approx(cam.pixel_spacing_mm / 2)
    point = cam.center_lps + 5.0 * cam.row_dir
    assert zoomed.project(point)[1] - (64 - 1) / 2 == pytest.approx(
        2 * (cam.project(point)[1] - (64 - 1) / 2))
    panned = cam.panned(right_px=10)
    assert panned.project(cam.center_lps)[1] == pytest.approx((64 - 1) / 2 - 10)
    persp = Camera.fit_volume(geometry, view="left", projection="perspective")
    assert Camera.from_json(persp.to_json()) == persp
    assert len({persp, Camera.from_json(persp.to_json()), cam}) == 2
    with pytest.raises(RenderError):
        Camera(center_lps=_v(0, 0, 0), row_dir=_v(1, 0, 0), col_dir=_v(1, 1, 0),
               pixel_spacing_mm=1.0, size_px=(8, 8))
    with pytest.raises(RenderError):
        Camera(center_lps=_v(0, 0, 0), row_dir=_v(1, 0, 0), col_dir=_v(0, 0, -1),
               pixel_spacing_mm=1.0, size_px=(8, 8), projection="fisheye")
    with pytest.raises(RenderError):  # both given and inconsistent
        Camera(center_lps=_v(0, 0, 0), row_dir=_v(1, 0, 0), col_dir=_v(0, 0, -1),
               pixel_spacing_mm=1.0, size_px=(8, 8), projection="perspective",
               view_angle_deg=30.0, distance_mm=100.0)
    with pytest.raises(RenderError):
        Camera.from_json({"center_lps": [0, 0, 0]})


def test_perspective_rays_go_through_their_pixels() -> None:
    geometry = _geometry((40, 50, 60), (2.0, 1.0, 1.0))
    cam = Camera.fit_volume(geometry, view="anterior", size_px=(40, 30),
                            projection="perspective", view_angle_deg=40.0)
    corners = geometry.index_to_patient(np.array(
        [[z, y, x] for z in (-0.5, 39.5) for y in (-0.5, 49.5) for x in (-0.5, 59.5)]))
    px = cam.project(corners)
    assert (px[:, 0] > -0.5).all() and (px[:, 0] < 29.5).all()  # the whole box is in view
    assert (px[:, 1] > -0.5).all() and (px[:, 1] < 39.5).all()
    origin, direction = cam.ray_for_pixel(7.0, 31.0)
    np.testing.assert_allclose(origin, cam.eye_lps)
    np.testing.assert_allclose(cam.project(origin + 123.0 * direction)[:2], [7.0, 31.0],
                               atol=1e-9)
    origins, directions = cam.ray_grid()
    assert origins.shape == directions.shape == (30, 40, 3)
    np.testing.assert_allclose(np.linalg.norm(directions, axis=-1), 1.0)


# -- transfer functions -----------------------------------------------------------------------

def test_presets_exist_and_are_clinically_sensible() -> None:
    for name in ("ct-bone", "ct-soft-tissue", "ct-vessels", "ct-lung", "pet"):
        tf = preset(name)
        table = tf.lut(256)
        assert table.shape == (256, 4) and table.dtype == np.float32
        assert ((table >= 0) & (table <= 1)).all()
    with pytest.raises(KeyError, match="ct-bone") as info:
        preset("ct-brain")
    assert "pet" in str(info.value)
    hu = np.linspace(-1024, 3071, 2000)
    for name in ("ct-bone", "ct-vessels", "ct-soft-tissue"):  # denser is never more transparent
        assert (np.diff(preset(name).opacity_at(hu)) >= 0).all(), name
    suv = np.linspace(0, 30, 500)
    assert (np.diff(preset("pet").opacity_at(suv)) >= 0).all()
    bone, vessels = preset("ct-bone"), preset("ct-vessels")
    assert bone.opacity_at(40) == 0 and bone.opacity_at(1000) > 0.5  # muscle hidden, bone shown
    assert vessels.opacity_at(50) == 0 and vessels.opacity_at(300) > 0.3  # lumen shown
    lung = preset("ct-lung")
    assert lung.opacity_at(-1000) == 0 and lung.opacity_at(40) == 0 and lung.opacity_at(-750) > 0
    pet = preset("pet")
    assert pet.opacity_at(1.0) == 0 and pet.opacity_at(6.0) > 0.1  # blood pool hidden, lesion not


def test_transfer_function_validation_and_json() -> None:
    tf = TransferFunction(color_points=((0, 0, 0, 0), (10, 1, 0.5, 0)),
                          opacity_points=((0, 0), (10, 1)), unit_distance_mm=2.0)
    np.testing.assert_allclose(tf.lut(3)[1], [0.5, 0.25, 0.0, 0.5])
    assert TransferFunction.from_json(tf.to_json()) == tf
    with pytest.raises(RenderError):
        TransferFunction(color_points=((10, 0, 0, 0), (0, 1, 1, 1)), opacity_points=((0, 0),))
    with pytest.raises(RenderError):
        TransferFunction(color_points=((0, 0, 0, 2),), opacity_points=((0, 0),))


# -- projections ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.int16, np.float32])
@pytest.mark.parametrize(("view", "axis", "spacing"), [("anterior", 1, (1.0, 1.0, 1.0)),
                                                       ("left", 2, (1.0, 0.5, 1.0)),
                                                       ("inferior", 0, (2.0, 1.0, 1.0))])
def test_axis_aligned_projections_equal_numpy_reductions(
        dtype: type, view: str, axis: int, spacing: tuple[float, float, float]) -> None:
    rng = np.random.default_rng(5)
    vol: np.ndarray = rng.integers(-1000, 1000, size=(14, 17, 19)).astype(dtype)
    geometry = _geometry(vol.shape, spacing, origin=(-9.0, 4.0, 30.0))  # type: ignore[arg-type]
    nz, ny, nx = vol.shape
    # One pixel per voxel across the rays, and a column more each side: rays that miss.
    (w, h), s, orient = {
        "anterior": ((nx, nz), 1.0, lambda r: r[::-1]),  # columns go to L, rows to F
        "left": ((ny, 2 * nz - 1), 0.5, lambda r: r[::-1]),  # columns to P, rows to F
        "inferior": ((nx, ny), 1.0, lambda r: r),  # columns to L, rows to P
    }[view]
    cam = _camera_like(Camera.fit_volume(geometry, view=view), pixel_spacing_mm=s,
                       size_px=[w + 2, h])
    for mode, reduce in (("mip", np.max), ("minip", np.min), ("avgip", np.mean)):
        got = render_projection(vol, geometry, cam, mode=mode, fill=-5000.0)
        if view == "left":  # rows every 0.5 mm across 1 mm slices: every other row is a slice
            got = got[::2]
        expected = orient(reduce(vol.astype(np.float64), axis=axis))
        np.testing.assert_array_equal(got[:, [0, -1]], -5000.0)
        np.testing.assert_allclose(got[:, 1:-1], expected, atol=2e-3)


def _blob_volume(geometry: VolumeGeometry, centers_lps: list[np.ndarray], sigma_mm: float,
                 peak: float = 1000.0) -> np.ndarray:
    grid = _patient_grid(geometry)
    vol = np.zeros(geometry.shape)
    for c in centers_lps:
        vol += peak * np.exp(-np.sum((grid - c) ** 2, axis=-1) / (2 * sigma_mm ** 2))
    return vol.astype(np.float32)


def _peak_position(image: np.ndarray) -> np.ndarray:
    """Centroid (row, column) of the pixels above half the maximum."""
    mask = image > 0.5 * image.max()
    rows, cols = np.nonzero(mask)
    weights = image[mask]
    return np.array([np.average(rows, weights=weights), np.average(cols, weights=weights)])


def test_a_point_projects_where_the_camera_geometry_says() -> None:
    geometry = _geometry((40, 64, 64), (2.5, 0.9, 0.9))
    center = _center(geometry)
    point = center + np.array([-12.0, 9.0, 14.0])  # patient's right, posterior, head
    vol = _blob_volume(geometry, [point], sigma_mm=4.0)
    anterior = Camera.fit_volume(geometry, view="anterior", size_px=(96, 96))
    for cam in (anterior, anterior.orbited(90.0), anterior.orbited(-30.0, 25.0),
                Camera.fit_volume(geometry, view="superior", size_px=(96, 96))):
        mip = render_projection(vol, geometry, cam)
        np.testing.assert_allclose(_peak_position(mip), cam.project(point)[:2], atol=0.3)
    mip = render_projection(vol, geometry, anterior)
    assert _peak_position(mip)[1] < 47.5  # the patient's right on the screen's left
    assert _peak_position(mip)[0] < 47.5  # the head up
    left = render_projection(vol, geometry, anterior.orbited(90.0))
    assert _peak_position(left)[1] > 47.5  # seen from the left, posterior is on the right
    persp = Camera.fit_volume(geometry, view="anterior", size_px=(96, 96),
                              projection="perspective", view_angle_deg=35.0)
    mip = render_projection(vol, geometry, persp.orbited(20.0))
    np.testing.assert_allclose(_peak_position(mip), persp.orbited(20.0).project(point)[:2],
                               atol=0.4)


def test_sphere_mip_is_the_same_at_every_angle() -> None:
    geometry = _geometry((50, 90, 84), (2.0, 0.8, 0.9))
    center = _center(geometry)
    sigma = 8.0
    vol = _blob_volume(geometry, [center], sigma_mm=sigma)
    cam0 = _camera_like(Camera.fit_volume(geometry, view="anterior"), pixel_spacing_mm=1.0,
                        size_px=[41, 41])
    rows, cols = np.mgrid[0:41, 0:41]
    rho2 = ((rows - 20) ** 2 + (cols - 20) ** 2) * 1.0
    analytic = 1000.0 * np.exp(-rho2 / (2 * sigma ** 2))
    images = []
    for az, el in ((0, 0), (33, 0), (90, 10), (151, -40), (260, 75)):
        mip = render_projection(vol, geometry, cam0.orbited(az, el))
        np.testing.assert_allclose(mip, analytic, atol=12.0)  # trilinear error of the blob
        images.append(mip)
    assert max(np.abs(a - images[0]).max() for a in images) < 15.0


def test_sheared_gantry_tilt_geometry_projects_right() -> None:
    tilted = _geometry((48, 60, 60), (1.5, 1.0, 1.0), slice_shift_p=0.55)  # a 20° tilt
    straight = _geometry((64, 90, 60), (1.5, 1.0, 1.0))
    assert tilted.is_sheared
    center = _center(tilted)
    points = [center + np.array([0.0, 8.0, 20.0]), center + np.array([5.0, -6.0, -18.0])]
    vol_t = _blob_volume(tilted, points, sigma_mm=4.0)
    cam = _camera_like(Camera.fit_volume(tilted, view="left"), pixel_spacing_mm=1.0,
                       size_px=[80, 90])
    mip = render_projection(vol_t, tilted, cam)
    for p in points:  # each blob where the camera puts it
        rc = np.round(cam.project(p)[:2]).astype(int)
        window = mip[rc[0] - 2:rc[0] + 3, rc[1] - 2:rc[1] + 3]
        assert window.max() == mip[max(rc[0] - 6, 0):rc[0] + 7, max(rc[1] - 6, 0):rc[1] + 7].max()
        assert window.max() > 900
    # The same patient-space phantom on an untilted grid gives the same image.
    vol_s = _blob_volume(straight, points, sigma_mm=4.0)
    ref = render_projection(vol_s, straight, cam)
    assert np.abs(mip - ref).max() < 40.0  # both grids' interpolation errors
    # Stacking the tilted slices without the shear puts the blobs elsewhere.
    naive_affine = tilted.affine.copy()
    naive_affine[:3, 0] = [0.0, 0.0, float(np.linalg.norm(tilted.affine[:3, 0]))]
    naive = VolumeGeometry(shape=tilted.shape, affine=naive_affine)
    assert np.abs(render_projection(vol_t, naive, cam) - ref).max() > 300.0


def test_block_skipping_never_changes_a_projection() -> None:
    rng = np.random.default_rng(11)
    vol = rng.normal(0, 50, size=(30, 40, 36)).astype(np.float32)
    vol[10:14, 5:9, 20:30] += 800  # a few bright and dark structures
    vol[20:25, 30:33, 3:9] -= 900
    geometry = _geometry(vol.shape, (2.0, 0.7, 0.8), slice_shift_p=0.5)  # type: ignore[arg-type]
    blocks = BlockGrid.of(vol, geometry)
    for cam in (Camera.fit_volume(geometry, view="anterior", size_px=(48, 40)).orbited(23, 31),
                Camera.fit_volume(geometry, view="right", size_px=(40, 48),
                                  projection="perspective").orbited(-50, 12)):
        rays = camera_rays(geometry, cam, default_step_mm(geometry))
        for mode, levels in ((cpu_raycast.MIP, blocks.maximum),
                             (cpu_raycast.MINIP, blocks.minimum)):
            fast = cpu_raycast.project(vol, rays, (cam.size_px[1], cam.size_px[0]), mode=mode,
                                       block_levels=levels, block_shifts=blocks.shifts)
            slow = cpu_raycast.project(vol, rays, (cam.size_px[1], cam.size_px[0]), mode=mode)
            np.testing.assert_array_equal(fast, slow)


def test_projection_errors() -> None:
    vol = np.zeros((4, 5, 6), dtype=np.float32)
    geometry = _geometry((4, 5, 6), (1.0, 1.0, 1.0))
    cam = Camera.fit_volume(geometry, size_px=(8, 8))
    with pytest.raises(KeyError):
        render_projection(vol, geometry, cam, mode="sum")
    with pytest.raises(RenderError):
        render_projection(vol[:3], geometry, cam)
    with pytest.raises(RenderError):
        render_projection(vol, geometry, cam, step_mm=0.0)
    other = BlockGrid.of(np.zeros((9, 9, 9), dtype=np.float32),
                         _geometry((9, 9, 9), (1.0, 1.0, 1.0)))
    with pytest.raises(RenderError, match="block grid"):
        render_projection(vol, geometry, cam, blocks=other)


# -- volume rendering -------------------------------------------------------------------------

_OPAQUE_WHITE = TransferFunction(color_points=((-10.0, 1, 1, 1), (10.0, 1, 1, 1)),
                                 opacity_points=((-10.0, 0.0), (10.0, 1.0)),
                                 ambient=0.1, diffuse=0.8, specular=0.0)


def _cube(geometry: VolumeGeometry, lo: tuple[int, int, int], hi: tuple[int, int, int]
          ) -> np.ndarray:
    vol = np.full(geometry.shape, -1000, dtype=np.int16)
    vol[lo[0]:hi[0] + 1, lo[1]:hi[1] + 1, lo[2]:hi[2] + 1] = 1000
    return vol


def _hull_area(points: np.ndarray) -> float:
    """Area of the convex hull of 2-D points (monotone chain, shoelace)."""
    pts = sorted(map(tuple, points))

    def half(seq: list[tuple[float, float]]) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for p in seq:
            while len(out) >= 2 and ((out[-1][0] - out[-2][0]) * (p[1] - out[-2][1])
                                     - (out[-1][1] - out[-2][1]) * (p[0] - out[-2][0])) <= 0:
                out.pop()
            out.append(p)
        return out

    hull = half(pts)[:-1] + half(pts[::-1])[:-1]
    x, y = np.array(hull).T
    return float(0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


@pytest.mark.parametrize(("az", "el"), [(0.0, 0.0), (30.0, 20.0), (45.0, -35.0), (110.0, 60.0)])
def test_opaque_cube_silhouette_has_the_projected_area(az: float, el: float) -> None:
    geometry = _geometry((30, 70, 64), (2.0, 0.8, 0.9))
    lo, hi = (6, 15, 14), (21, 52, 47)  # about 32 x 30 x 31 mm
    vol = _cube(geometry, lo, hi)
    cam = _camera_like(Camera.fit_volume(geometry, view="anterior"), pixel_spacing_mm=0.4,
                       size_px=[180, 180]).orbited(az, el)
    rgb = render_volume(vol, geometry, cam, _OPAQUE_WHITE, shading=False)
    area_mm2 = float((rgb[..., 0] > 0.5).sum()) * cam.pixel_spacing_mm ** 2
    # The surface lies half-way between voxel centres: the box of the voxels' extents, less
    # the rounding of its edges by trilinear interpolation (about 0.3 voxel at a 90° edge).
    box = np.array([[z, y, x] for z in (lo[0] - 0.5, hi[0] + 0.5)
                    for y in (lo[1] - 0.5, hi[1] + 0.5) for x in (lo[2] - 0.5, hi[2] + 0.5)])
    expected = _hull_area(cam.project(geometry.index_to_patient(box))[:, :2]) * (
        cam.pixel_spacing_mm ** 2)
    assert area_mm2 == pytest.approx(expected, rel=0.05)
    assert area_mm2 <= expected * 1.01  # never larger than the box (but for pixel edges)


def test_a_face_turned_to_the_light_is_brighter_as_lambert_says() -> None:
    geometry = _geometry((40, 60, 60), (1.5, 1.0, 1.0))
    lo, hi = (8, 15, 15), (31, 44, 44)
    vol = _cube(geometry, lo, hi)
    cam = _camera_like(Camera.fit_volume(geometry, view="anterior"), pixel_spacing_mm=0.5,
                       size_px=[160, 160]).orbited(25.0)
    rgb = render_volume(vol, geometry, cam, _OPAQUE_WHITE, shading=True)
    box_lo = geometry.index_to_patient(np.array(lo) - 0.5)
    box_hi = geometry.index_to_patient(np.array(hi) + 0.5)
    mid = (box_lo + box_hi) / 2
    front = mid.copy()
    front[1] = box_lo[1]  # the anterior face (normal A)
    side = mid.copy()
    side[0] = box_hi[0]  # the patient's left face (normal L)

    def brightness(point: np.ndarray) -> float:
        r, c = np.round(cam.project(point)[:2]).astype(int)
        return float(rgb[r - 2:r + 3, c - 2:c + 3, 0].mean())

    to_eye = -cam.normal
    for point, normal in ((front, [0, -1, 0]), (side, [1, 0, 0])):
        expected = 0.1 + 0.8 * abs(float(np.dot(normal, to_eye)))
        assert brightness(point) == pytest.approx(expected, abs=0.03)
    assert brightness(front) > brightness(side) + 0.3


def _material(tf: TransferFunction) -> tuple[float, float, float, float]:
    return (tf.ambient, tf.diffuse, tf.specular, tf.specular_power)


def _ball(geometry: VolumeGeometry, center: np.ndarray, radius_mm: float) -> np.ndarray:
    r = np.linalg.norm(_patient_grid(geometry) - center, axis=-1)
    return (2000.0 / (1.0 + np.exp((r - radius_mm) / 1.5)) - 1000.0).astype(np.float32)


def test_sheared_volumes_shade_like_straight_ones() -> None:
    tilted = _geometry((40, 64, 64), (2.0, 0.9, 0.9), slice_shift_p=0.75)
    center = _center(tilted)
    offset = _center(_geometry((40, 64, 64), (2.0, 0.9, 0.9)))  # centre with the origin at 0
    straight = _geometry((40, 64, 64), (2.0, 0.9, 0.9), origin=tuple(center - offset))
    cam = _camera_like(Camera.fit_volume(tilted, view="anterior"), pixel_spacing_mm=0.6,
                       size_px=[90, 90]).orbited(40.0, 15.0)
    tf = _OPAQUE_WHITE
    a = render_volume(_ball(tilted, center, 18.0), tilted, cam, tf)[..., 0]
    b = render_volume(_ball(straight, center, 18.0), straight, cam, tf)[..., 0]
    rows, cols = np.mgrid[0:90, 0:90]
    disc = (rows - 44.5) ** 2 + (cols - 44.5) ** 2 < (0.85 * 18.0 / 0.6) ** 2
    assert np.abs(a - b)[disc].max() < 0.05
    # Lambert on a sphere: brightest in the middle, darker towards the rim.
    assert a[45, 45] > 0.85 and a[45, 45] - a[45, 45 + 22] > 0.2
    # Taking gradients in index space (no inverse-transpose) shades the tilted ball wrongly.
    vol = _ball(tilted, center, 18.0)
    step = default_step_mm(tilted)
    rays = camera_rays(tilted, cam, step)
    rays[cpu_raycast.P_GRAD_TO_LPS:cpu_raycast.P_GRAD_TO_LPS + 9] = np.eye(3).ravel()
    lut = classified_lut(tf, step)
    naive = cpu_raycast.composite(vol, rays, (90, 90), lut=lut.table, lut_lo=lut.lo,
                                  lut_scale=lut.scale, material=_material(tf))[..., 0]
    assert np.abs(naive - b)[disc].max() > 0.15


def test_volume_rendering_options() -> None:
    geometry = _geometry((30, 40, 40), (2.0, 1.0, 1.0))
    vol = _cube(geometry, (10, 10, 10), (19, 29, 29))
    cam = Camera.fit_volume(geometry, view="anterior", size_px=(64, 64)).orbited(20, 10)
    bg = (0.2, 0.3, 0.4)
    rgb = render_volume(vol, geometry, cam, _OPAQUE_WHITE, background=bg)
    np.testing.assert_allclose(rgb[0, 0], bg, atol=1e-6)  # a ray through air only
    img = render_volume(vol, geometry, cam, _OPAQUE_WHITE, background=bg, dtype="uint8")
    assert img.dtype == np.uint8
    np.testing.assert_array_equal(img, np.clip(np.floor(rgb * 255 + 0.5), 0, 255))
    # Without early termination the image changes by at most the transparency left (1 %).
    soft = TransferFunction(color_points=((0, 1, 0.5, 0.2),), opacity_points=((-1000, 0),
                                                                              (1000, 0.3)))
    stop = render_volume(vol, geometry, cam, soft)
    full = render_volume(vol, geometry, cam, soft, alpha_stop=1.5)
    assert np.abs(stop - full).max() <= 0.0101
    # value_scale maps data units onto the transfer function's (e.g. Bq/ml onto SUV).
    scaled = render_volume(vol * 2, geometry, cam, _OPAQUE_WHITE, background=bg,
                           value_scale=0.5)
    np.testing.assert_allclose(scaled, rgb, atol=1e-3)
    with pytest.raises(RenderError):
        render_volume(vol, geometry, cam, _OPAQUE_WHITE, dtype="float16")
    with pytest.raises(RenderError):
        render_volume(vol, geometry, cam, _OPAQUE_WHITE, value_scale=0.0)


# -- the real PET-CT study --------------------------------------------------------------------

def _assembled(folder: str) -> tuple[np.ndarray, VolumeGeometry, dict[str, object]]:
    files = [p for p in data_path(*folder.split("/")).iterdir() if p.is_file()
             and p.suffix != ".txt"]
    volume = assemble_series([pydicom.dcmread(p) for p in files])
    return volume.data, volume.geometry, volume.metadata


@pytest.fixture(scope="module")
def acrin_pet() -> tuple[np.ndarray, VolumeGeometry, dict[str, object]]:
    return _assembled("petct-acrin042/PT_AC")


@pytest.fixture(scope="module")
def acrin_ct() -> tuple[np.ndarray, VolumeGeometry, dict[str, object]]:
    return _assembled("petct-acrin042/CT")


def test_pet_mip_at_azimuth_zero_is_the_max_along_the_ap_axis(acrin_pet: tuple) -> None:
    vol, geometry, meta = acrin_pet
    assert not geometry.is_sheared
    np.testing.assert_allclose(geometry.direction, [[0, 0, 1], [0, 1, 0], [1, 0, 0]], atol=1e-6)
    nz, ny, nx = vol.shape
    dx = geometry.spacing_mm[2]
    # Columns on the voxel columns; rows every dx mm, between the 3.27 mm slices.
    cam = _camera_like(Camera.fit_volume(geometry, view="anterior"), pixel_spacing_mm=dx,
                       size_px=[nx, 100])
    step = dx / 4  # below half the smallest spacing, and a whole fraction of the A-P spacing
    mip = render_projection(vol, geometry, cam, mode="mip", fill=-1.0, step_mm=step)
    # Reference: for each row, the slices interpolated linearly at its height, then numpy's
    # max along the A-P axis (y) at each column.
    z_index = geometry.patient_to_index(cam.pixel_to_patient(np.arange(100), nx // 2))[:, 0]
    ref = np.full((100, nx), -1.0, dtype=np.float64)
    for i, z in enumerate(z_index):
        if not -0.5 <= z <= nz - 0.5:
            continue
        zc = min(max(z, 0.0), nz - 1.0)
        z0 = min(int(zc), nz - 2)
        f = zc - z0
        plane = (1 - f) * vol[z0].astype(np.float64) + f * vol[z0 + 1]
        ref[i] = plane.max(axis=0)  # columns run along x (to L)
    assert (ref == -1.0).any() and (ref > 0).any()  # the image reaches past the volume
    np.testing.assert_allclose(mip, ref, rtol=1e-5, atol=1e-2)
    # Turning the camera half a turn mirrors the MIP; a quarter turn gives the lateral MIP.
    back = render_projection(vol, geometry, cam.orbited(180.0), fill=-1.0, step_mm=step)
    np.testing.assert_allclose(back, mip[:, ::-1], rtol=1e-5, atol=1e-2)
    suv = float(meta["suv_bw_factor"])  # type: ignore[arg-type]
    assert 10 < float(mip.max()) * suv < 60  # the hottest lesion, in SUVbw


def test_ct_rendering_with_empty_space_skipping_is_exact(acrin_ct: tuple) -> None:
    vol, geometry, _ = acrin_ct
    blocks = BlockGrid.of(vol, geometry)
    cam = Camera.fit_volume(geometry, view="anterior", size_px=(96, 96)).orbited(35.0, 15.0)
    step = default_step_mm(geometry)
    rays = camera_rays(geometry, cam, step)
    mip = render_projection(vol, geometry, cam, blocks=blocks)
    np.testing.assert_array_equal(mip, cpu_raycast.project(vol, rays, (96, 96)))
    tf = preset("ct-bone")
    fast = render_volume(vol, geometry, cam, tf, blocks=blocks)
    lut = classified_lut(tf, step)
    slow = cpu_raycast.composite(vol, rays, (96, 96), lut=lut.table, lut_lo=lut.lo,
                                 lut_scale=lut.scale, material=_material(tf))
    np.testing.assert_array_equal(fast, slow)
    bone = (fast.sum(axis=-1) > 0.3).mean()
    assert 0.1 < bone < 0.7  # ribs, spine and shoulders; not an empty or a filled frame
