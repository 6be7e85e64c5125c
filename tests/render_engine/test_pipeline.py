"""``render(state, volumes)``: view operations, windows, colour maps, fusion and masks against
independent numpy computations on small volumes whose values are known."""

from __future__ import annotations

import numpy as np
import pytest

from render_engine.colour import WINDOW_PRESETS, colormap_lut
from render_engine.errors import GeometryError
from render_engine.geometry import VolumeGeometry
from render_engine.kernels.window import window_to_uint8
from render_engine.pipeline import FrameOfReferenceError, RenderVolume, render
from render_engine.planes import Orientation, Plane, Slab
from render_engine.sampling import sample
from render_engine.view import Layer, Mask, ViewState, ViewStateError, Window, magnifier


def _axial(shape: tuple[int, int, int], spacing: tuple[float, float, float],
           origin: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> VolumeGeometry:
    affine = np.eye(4)
    dz, dy, dx = spacing
    affine[:3, :3] = np.column_stack([[0, 0, dz], [0, dy, 0], [dx, 0, 0]])
    affine[:3, 3] = origin
    return VolumeGeometry(shape=shape, affine=affine)


def _source(*volumes: RenderVolume):  # type: ignore[no-untyped-def]
    by_uid = {v.series_uid: v for v in volumes}
    return lambda uid: by_uid[uid]


@pytest.fixture(scope="module")
def ct() -> RenderVolume:
    rng = np.random.default_rng(7)
    data = rng.integers(-1000, 1500, size=(21, 33, 31)).astype(np.int16)
    return RenderVolume(series_uid="1.2.3", data=data, geometry=_axial(data.shape, (2.0, 1.0, 1.0)),
                        modality="CT", units="HU", frame_of_reference_uid="1.9")


@pytest.fixture(scope="module")
def pet() -> RenderVolume:
    data = np.zeros((11, 17, 16), dtype=np.float32)
    data[4:7, 6:10, 5:9] = 20000.0  # Bq/ml; a hot box
    return RenderVolume(series_uid="1.2.4", data=data,
                        geometry=_axial(data.shape, (4.0, 2.0, 2.0), origin=(-0.5, -0.5, -1.0)),
                        modality="PT", units="SUVbw", scale=2.5e-4, frame_of_reference_uid="1.9")


def test_a_slice_index_shows_that_slice(ct: RenderVolume) -> None:
    state = ViewState(series_uid="1.2.3", orientation=Orientation.AXIAL, slice_index=5,
                      size_px=(31, 33), window=Window(center=0, width=2000))
    frame = render(state, _source(ct))
    np.testing.assert_allclose(frame.values, ct.data[5].astype(np.float32), atol=1e-3)
    assert frame.plane.pixel_spacing_mm == pytest.approx(1.0)
    assert frame.units == "HU"
    expected = window_to_uint8(ct.data[5].astype(np.float32), center=0, width=2000)
    assert np.array_equal(frame.pixels, expected)


def test_position_mm_is_the_patient_coordinate_along_the_normal(ct: RenderVolume) -> None:
    state = ViewState(series_uid="1.2.3", orientation="axial", position_mm=14.0, size_px=(31, 33))
    np.testing.assert_allclose(render(state, _source(ct)).values, ct.data[7], atol=1e-3)


def test_view_operations_are_plane_changes(ct: RenderVolume) -> None:
    base = ViewState(series_uid="1.2.3", orientation="axial", slice_index=4, size_px=(31, 33))
    ref = render(base, _source(ct)).values
    flipped = ViewState(series_uid="1.2.3", orientation="axial", slice_index=4, size_px=(31, 33),
                        flip_horizontal=True, flip_vertical=True)
    np.testing.assert_allclose(render(flipped, _source(ct)).values, ref[::-1, ::-1], atol=1e-3)
    square = ViewState(series_uid="1.2.3", orientation="axial", slice_index=4, size_px=(33, 33))
    turned = ViewState(series_uid="1.2.3", orientation="axial", slice_index=4, size_px=(33, 33),
                       rotation_deg=90)
    a = render(square, _source(ct)).values
    b = render(turned, _source(ct)).values
    np.testing.assert_allclose(b, np.rot90(a, k=-1), atol=1e-3, equal_nan=True)  # clockwise
    zoomed = ViewState(series_uid="1.2.3", orientation="axial", slice_index=4, size_px=(31, 33),
                       zoom=2.0, pan_px=(3.0, -2.0))
    frame = render(zoomed, _source(ct))
    assert frame.plane.pixel_spacing_mm == pytest.approx(0.5)
    # Pan moves the view window right/up by screen pixels: the centre shows (col 15+1.5, row 16-1).
    assert frame.values[16, 15] == pytest.approx(
        float(sample(ct.data, ct.geometry, frame.plane)[16, 15]))
    center = frame.plane.pixel_to_patient(16, 15)
    np.testing.assert_allclose(center, [15 + 1.5, 16 - 1.0, 8.0])


def test_orbit_tilts_the_plane_about_its_centre(ct: RenderVolume) -> None:
    state = ViewState(series_uid="1.2.3", orientation="axial", slice_index=10, size_px=(31, 33),
                      orbit_deg=(30.0, 0.0))
    plane = state.plane_for(ct.geometry)
    base = ViewState(series_uid="1.2.3", orientation="axial", slice_index=10,
                     size_px=(31, 33)).plane_for(ct.geometry)
    np.testing.assert_allclose(plane.center_lps, base.center_lps)
    np.testing.assert_allclose(plane.col_dir, base.col_dir, atol=1e-12)  # the screen-up axis
    assert float(plane.normal @ base.normal) == pytest.approx(np.cos(np.radians(30)))
    frame = render(state, _source(ct))
    np.testing.assert_array_equal(frame.values, sample(ct.data, ct.geometry, plane, fill=np.nan))


def test_presets_and_invert(ct: RenderVolume, pet: RenderVolume) -> None:
    lung = WINDOW_PRESETS["ct-lung"]
    state = ViewState(series_uid="1.2.3", orientation="axial", slice_index=3, preset="ct-lung")
    frame = render(state, _source(ct))
    assert (frame.window.center, frame.window.width) == (lung.center, lung.width)
    assert np.array_equal(frame.pixels, window_to_uint8(frame.values, center=lung.center,
                                                         width=lung.width))
    inverted = render(ViewState(series_uid="1.2.3", orientation="axial", slice_index=3,
                                preset="ct-lung", invert=True), _source(ct))
    assert np.array_equal(inverted.pixels, 255 - frame.pixels)
    # The PET preset is black on white by itself; the viewer's invert turns it back.
    suv = render(ViewState(series_uid="1.2.4", orientation="axial", slice_index=5,
                           preset="pet-suv-0-5"), _source(pet))
    assert suv.units == "SUVbw" and np.nanmax(suv.values) == pytest.approx(5.0)
    assert suv.pixels.min() == 0 and suv.pixels[np.isfinite(suv.values)].max() == 255
    plain = render(ViewState(series_uid="1.2.4", orientation="axial", slice_index=5,
                             preset="pet-suv-0-5", invert=True), _source(pet))
    assert np.array_equal(plain.pixels, 255 - suv.pixels)


def test_colour_map_is_its_table(ct: RenderVolume) -> None:
    grey = render(ViewState(series_uid="1.2.3", orientation="axial", slice_index=3),
                  _source(ct)).pixels
    hot = render(ViewState(series_uid="1.2.3", orientation="axial", slice_index=3,
                           colormap="hot-iron"), _source(ct)).pixels
    assert hot.shape == grey.shape + (3,)
    assert np.array_equal(hot, colormap_lut("hot-iron")[grey])
    assert colormap_lut("hot-iron")[255].tolist() == [255, 255, 255]
    assert colormap_lut("grey")[128].tolist() == [128, 128, 128]


def test_fusion_samples_pet_on_the_ct_plane(ct: RenderVolume, pet: RenderVolume) -> None:
    layer = Layer(series_uid="1.2.4", window=Window(center=2.5, width=5), colormap="hot-iron",
                  opacity=0.4)
    state = ViewState(series_uid="1.2.3", orientation="axial", position_mm=20.0,
                      size_px=(31, 33), window=Window(center=40, width=400), layers=(layer,))
    frame = render(state, _source(ct, pet))
    # Independent reference: sample the PET on the same plane, window, colour, blend.
    pet_values = sample(pet.data, pet.geometry, frame.plane, fill=np.nan) * np.float32(2.5e-4)
    over = colormap_lut("hot-iron")[window_to_uint8(pet_values, center=2.5, width=5)]
    base = np.repeat(window_to_uint8(frame.values, center=40, width=400)[..., None], 3, axis=2)
    a = np.where(np.isfinite(pet_values), 0.4, 0.0)[..., None]
    expected = np.rint(base + a * (over.astype(np.float32) - base)).astype(np.uint8)
    assert np.abs(frame.pixels.astype(int) - expected).max() <= 1
    # The hot box (SUV 5, white in hot iron) shows where it lies in patient space: x 9..17 mm.
    assert frame.pixels[15, 12].tolist() != frame.pixels[15, 25].tolist()
    other = RenderVolume(series_uid="9.9", data=pet.data, geometry=pet.geometry,
                         frame_of_reference_uid="2.2")
    bad = ViewState(series_uid="1.2.3", orientation="axial", layers=(Layer(series_uid="9.9"),))
    with pytest.raises(FrameOfReferenceError):
        render(bad, _source(ct, other))


def test_masks_hide_pixels_and_lps_masks_follow_the_anatomy(ct: RenderVolume) -> None:
    rect = Mask(shape="rectangle", center_px=(5.0, 5.0), half_size_px=(2.0, 3.0))
    state = ViewState(series_uid="1.2.3", orientation="axial", slice_index=3, size_px=(31, 33),
                      masks=(rect,), window=Window(center=-5000, width=10))  # all white
    pixels = render(state, _source(ct)).pixels
    assert (pixels[2:9, 3:8] == 0).all() and pixels[2:9, 3:8].size == 35
    assert (pixels[9:, :] == 255).all() and (pixels[:, 8:] == 255).all()
    oval = Mask(shape="ellipse", center_lps=(20.0, 10.0, 6.0), half_size_mm=(4.0, 2.0))
    for zoom in (1.0, 2.0):
        s = ViewState(series_uid="1.2.3", orientation="axial", slice_index=3, size_px=(31, 33),
                      zoom=zoom, masks=(oval,), window=Window(center=-5000, width=10))
        frame = render(s, _source(ct))
        hidden = frame.pixels == 0
        # Area in mm² is independent of zoom (π·4·2 ≈ 25 mm²), within the pixel quantisation.
        assert hidden.sum() * frame.plane.pixel_spacing_mm ** 2 == pytest.approx(
            np.pi * 8, rel=0.2)
        row, col, _ = frame.plane.patient_to_pixel(np.array([20.0, 10.0, 6.0]))
        assert hidden[int(round(row)), int(round(col))]


def test_magnifier_is_a_finer_plane_around_a_point(ct: RenderVolume) -> None:
    state = ViewState(series_uid="1.2.3", orientation="axial", slice_index=6, size_px=(31, 33))
    lens = magnifier(state, ct.geometry, at_px=(10.0, 12.0), factor=4.0, size_px=(21, 21))
    a = render(state, _source(ct))
    b = render(lens, _source(ct))
    assert b.plane.pixel_spacing_mm == pytest.approx(a.plane.pixel_spacing_mm / 4)
    assert b.values[10, 10] == pytest.approx(a.values[12, 10], abs=1e-3)


def test_render_is_pure(ct: RenderVolume) -> None:
    state = ViewState(series_uid="1.2.3", orientation="sagittal", size_px=(40, 30),
                      slab=Slab(thickness_mm=6, mode="mip"), rotation_deg=17, zoom=1.3)
    a, b = render(state, _source(ct)), render(state, _source(ct))
    assert np.array_equal(a.pixels, b.pixels) and np.array_equal(a.values, b.values,
                                                                 equal_nan=True)


@pytest.mark.parametrize("kwargs", [
    {},  # neither plane nor orientation
    {"orientation": "axial", "plane": Plane(center_lps=np.zeros(3), row_dir=np.array([1, 0, 0]),
                                            col_dir=np.array([0, 1, 0]), pixel_spacing_mm=1,
                                            size_px=(4, 4))},
    {"orientation": "axial", "position_mm": 1.0, "slice_index": 2.0},
    {"orientation": "axial", "size_px": (0, 10)},
    {"orientation": "axial", "zoom": 0.0},
    {"orientation": "axial", "preset": "ct-unknown"},
    {"orientation": "axial", "colormap": "viridis"},
    {"orientation": "oblique"},
])
def test_bad_view_states_are_refused(kwargs: dict) -> None:
    with pytest.raises((ViewStateError, GeometryError)):
        ViewState(series_uid="1.2.3", **kwargs)


def test_bad_masks_and_layers_are_refused() -> None:
    with pytest.raises(ViewStateError):
        Mask(shape="rectangle", center_px=(1, 1), half_size_px=(0, 1))
    with pytest.raises(ViewStateError):
        Mask(shape="ellipse", center_px=(1, 1), half_size_px=(1, 1), center_lps=(0, 0, 0),
             half_size_mm=(1, 1))
    with pytest.raises(ViewStateError):
        Layer(series_uid="1.2", opacity=1.5)
    with pytest.raises(ViewStateError):
        Window(center=0, width=0.5)


def test_a_cpr_view_renders_its_surface_with_fusion_and_zoom(ct: RenderVolume,
                                                             pet: RenderVolume) -> None:
    from render_engine.curved import CprView, CurvedPath

    # A straight centreline along P at x = 15, z = 20: the straightened CPR is an axial strip.
    path = CurvedPath(points_lps=[[15.0, 4.0, 20.0], [15.0, 28.0, 20.0]], kind="polyline")
    cpr = CprView(path=path, pixel_spacing_mm=1.0, width_px=21, up_lps=(0.0, 0.0, 1.0))
    state = ViewState(series_uid="1.2.3", cpr=cpr, window=Window(center=0, width=2000),
                      layers=(Layer(series_uid="1.2.4", window=Window(center=2.5, width=5)),))
    frame = render(state, _source(ct, pet))
    assert frame.plane is None and frame.pixels.shape == (frame.values.shape + (3,))
    h, w = frame.values.shape
    assert w == 21 and h * 1.0 == pytest.approx(24.0, abs=1.0)
    # The centre column is the centreline: voxels (z=10, y, x=15) of the CT.
    grid = frame.surface.grid_lps() if not isinstance(frame.surface, Plane) else None
    assert grid is not None
    idx = ct.geometry.patient_to_index(grid[:, w // 2])
    np.testing.assert_allclose(idx[:, [0, 2]], [[10.0, 15.0]] * h, atol=1e-9)
    column = ct.data[10, :, 15].astype(np.float64)
    expected = np.interp(idx[:, 1], np.arange(column.size), column)  # linear along y
    np.testing.assert_allclose(frame.values[:, w // 2], expected, atol=1e-3)
    assert "cpr" in frame.geometry_json()
    zoomed = render(ViewState(series_uid="1.2.3", cpr=cpr, zoom=2.0), _source(ct))
    assert zoomed.values.shape[0] == pytest.approx(2 * h, abs=2)
    with pytest.raises(ViewStateError):
        ViewState(series_uid="1.2.3", cpr=cpr, orientation="axial")
    with pytest.raises(ViewStateError):
        ViewState(series_uid="1.2.3", cpr=cpr).plane_for(ct.geometry)


def test_3d_views_cast_rays_through_the_camera_plane(ct: RenderVolume, pet: RenderVolume) -> None:
    from render_engine.camera import Camera
    from render_engine.raycast import render_projection
    from render_engine.view import Render3D

    mip = ViewState(series_uid="1.2.4", orientation="coronal", size_px=(40, 48),
                    render3d=Render3D(method="mip"), preset="pet-suv-0-5", orbit_deg=(30, 0))
    frame = render(mip, _source(pet))
    assert frame.plane is not None and frame.units == "SUVbw"
    camera = Camera(center_lps=frame.plane.center_lps, row_dir=frame.plane.row_dir,
                    col_dir=frame.plane.col_dir, pixel_spacing_mm=frame.plane.pixel_spacing_mm,
                    size_px=frame.plane.size_px)
    reference = render_projection(pet.data, pet.geometry, camera, mode="mip", fill=np.nan)
    np.testing.assert_allclose(frame.values, reference * np.float32(2.5e-4), rtol=1e-6)
    assert np.nanmax(frame.values) == pytest.approx(5.0, rel=1e-3)  # the hot box, SUV 5
    # A full turn is the same view.
    turned = render(ViewState(series_uid="1.2.4", orientation="coronal", size_px=(40, 48),
                              render3d=Render3D(method="mip"), orbit_deg=(390, 0)),
                    _source(pet))
    again = render(ViewState(series_uid="1.2.4", orientation="coronal", size_px=(40, 48),
                             render3d=Render3D(method="mip"), orbit_deg=(30, 0)), _source(pet))
    np.testing.assert_allclose(turned.values, again.values, atol=1e-4, equal_nan=True)
    vr = render(ViewState(series_uid="1.2.3", orientation="coronal", size_px=(40, 30),
                          render3d=Render3D(method="vr", preset="ct-bone")), _source(ct))
    assert vr.pixels.shape == (30, 40, 3) and vr.pixels.dtype == np.uint8
    assert vr.pixels.max() > 0 and np.isnan(vr.values).all()
    with pytest.raises(ViewStateError):
        Render3D(method="vr", preset="ct-teeth")


def test_warm_up_renders_every_kind_of_view() -> None:
    from render_engine.pipeline import warm_up

    assert warm_up() > 0.0
