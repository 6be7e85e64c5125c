"""The on-grid fast path of plane sampling: the same values as the interpolating kernel."""

from __future__ import annotations

import itertools

import numpy as np

from render_engine.geometry import VolumeGeometry
from render_engine.kernels import cpu_sampling
from render_engine.planes import Orientation, standard_plane
from render_engine.sampling import grid_copy, index_steps, sample


def test_grid_copy_equals_the_kernel_for_every_axis_order_and_direction() -> None:
    rng = np.random.default_rng(0)
    volume = rng.integers(-1000, 1000, (7, 9, 11)).astype(np.int16)
    for cols, rows in itertools.permutations(range(3), 2):
        for sc, sr in itertools.product((1, -1), repeat=2):
            for _ in range(20):
                d_col, d_row = np.zeros(3), np.zeros(3)
                d_col[cols], d_row[rows] = sc, sr
                origin = rng.integers(-4, 13, 3).astype(float)  # partly outside, too
                h, w = (int(v) for v in rng.integers(1, 15, 2))
                got = grid_copy(volume, origin, d_col, d_row, (h, w), np.nan)
                reference = cpu_sampling.sample_plane(volume, origin, d_col, d_row, (h, w),
                                                      order=1, fill=np.nan)
                assert got is not None
                np.testing.assert_array_equal(got, reference)


def test_off_grid_planes_are_left_to_the_kernel() -> None:
    volume = np.zeros((4, 5, 6), dtype=np.int16)
    steps = (np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0]))
    assert grid_copy(volume, np.array([1.0, 0.5, 0.0]), *steps, (3, 3), 0.0) is None
    assert grid_copy(volume, np.zeros(3), np.array([0.0, 0.0, 0.5]), steps[1], (3, 3),
                     0.0) is None
    assert grid_copy(volume, np.zeros(3), np.array([0.0, 0.6, 0.8]), steps[1], (3, 3),
                     0.0) is None


def test_an_acquired_slice_at_its_own_resolution_is_the_stored_slice() -> None:
    rng = np.random.default_rng(1)
    volume = rng.normal(0, 100, (5, 32, 40)).astype(np.float32)
    affine = np.eye(4)
    affine[:3, :3] = np.column_stack([[0.0, 0.0, 2.5], [0.0, 0.7, 0.0], [0.7, 0.0, 0.0]])
    geometry = VolumeGeometry(shape=volume.shape, affine=affine)
    plane = standard_plane(geometry, Orientation.ACQUISITION, slice_index=3)
    origin, d_col, d_row, _ = index_steps(geometry, plane)
    assert grid_copy(volume, origin, d_col, d_row, plane.size_px[::-1], np.nan) is not None
    np.testing.assert_array_equal(sample(volume, geometry, plane, fill=np.nan), volume[3])
