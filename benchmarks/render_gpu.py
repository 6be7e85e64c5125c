"""Render-only timings of the kernels, CPU (numba) and, where present, GPU (cupy): plane, slab,
CPR, 3D MIP and volume rendering at 512².

    python -m benchmarks.render_gpu [--out DIR]

Synthetic chest-like phantoms (said so in the output): 135x512x512 (a chest CT's size) and
600x512x512.
Median ms over 30 frames after warm-up; the GPU figures include synchronisation, not the
upload of the volume. Writes render_gpu.json and render_gpu.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from render_engine.camera import Camera
from render_engine.cpr import sample_cpr
from render_engine.curved import CprView, CurvedPath
from render_engine.geometry import VolumeGeometry
from render_engine.kernels.backend import cupy_or_none, to_gpu
from render_engine.planes import Slab, standard_plane
from render_engine.raycast import BlockGrid, render_projection, render_volume
from render_engine.sampling import sample
from render_engine.transfer import preset as transfer_preset


def _time(fn: Any, sync: Any, frames: int = 30) -> float:
    fn()
    sync()
    samples = []
    for _ in range(frames):
        t = time.perf_counter()
        fn()
        sync()
        samples.append(time.perf_counter() - t)
    return float(np.median(samples) * 1000)


def _phantom(depth: int, rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """A synthetic chest-like CT in HU: air outside an elliptic body of soft tissue (40 ± 20),
    two lungs (-800), a spine and ribs-like ring (700), so that MIP and bone rendering meet
    the structure and the empty space real studies have."""
    y, x = np.mgrid[-256:256, -256:256].astype(np.float32)
    body = (x / 220) ** 2 + (y / 160) ** 2 <= 1
    lungs = ((np.abs(x) - 100) / 70) ** 2 + (y / 110) ** 2 <= 1
    spine = (x / 25) ** 2 + ((y - 110) / 25) ** 2 <= 1
    ring = np.abs(np.hypot(x / 1.35, y) - 145) < 6
    axial = np.full((512, 512), -1000.0, dtype=np.float32)
    axial[body] = 40.0
    axial[lungs & body] = -800.0
    axial[(spine | ring) & body] = 700.0
    vol = np.repeat(axial[None], depth, axis=0)
    vol += rng.normal(0, 20, size=vol.shape).astype(np.float32)
    return vol


def _cases(v: Any, grid: Any, geometry: VolumeGeometry, plane: Any, surface: Any, camera: Any,
           bone: Any) -> dict[str, Any]:
    return {
        "oblique MPR 512²": partial(sample, v, geometry, plane),
        "oblique slab MIP 20 mm 512²": partial(sample, v, geometry, plane,
                                               slab=Slab(thickness_mm=20)),
        f"CPR {surface.size_px[0]}x{surface.size_px[1]}": partial(sample_cpr, v, geometry,
                                                                  surface),
        "3D MIP 512²": partial(render_projection, v, geometry, camera, mode="mip", blocks=grid),
        "volume rendering 512² (ct-bone)": partial(render_volume, v, geometry, camera, bone,
                                                   blocks=grid),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--cpu-frames", type=int, default=10)
    args = parser.parse_args()
    cp = cupy_or_none()
    rows: list[dict[str, Any]] = []
    rng = np.random.default_rng(0)
    for depth in (135, 600):
        vol = _phantom(depth, rng)
        affine = np.eye(4)
        affine[:3, :3] = np.column_stack([[0, 0, 1.25], [0, 0.8, 0], [0.8, 0, 0]])
        geometry = VolumeGeometry(shape=vol.shape, affine=affine)  # type: ignore[arg-type]
        plane = standard_plane(geometry, "axial", size_px=(512, 512)).rotated_about(
            [1, 0.2, 0], 30)
        gvol = to_gpu(vol) if cp is not None else None
        camera = Camera.fit_volume(geometry, view="anterior", size_px=(512, 512)).orbited(30, 10)
        center = geometry.index_to_patient(np.array(vol.shape) / 2)
        t = np.linspace(0, np.pi, 12)
        path = CurvedPath(points_lps=np.column_stack(
            [center[0] + 80 * np.cos(t), center[1] + 60 * np.sin(t),
             center[2] + np.linspace(-40, 40, 12)]), kind="spline")
        surface = CprView(path=path, pixel_spacing_mm=0.5, width_px=512).surface()
        blocks = BlockGrid.of(vol, geometry)
        gblocks = BlockGrid.of(gvol, geometry) if gvol is not None else None
        bone = transfer_preset("ct-bone")

        scene = (geometry, plane, surface, camera, bone)
        cpu_cases = _cases(vol, blocks, *scene)
        gpu_cases = _cases(gvol, gblocks, *scene) if gvol is not None else {}
        for name, fn in cpu_cases.items():
            row: dict[str, Any] = {"volume": f"synthetic {depth}x512x512", "case": name}
            row["cpu_ms"] = _time(fn, lambda: None, args.cpu_frames)
            if cp is not None:
                row["gpu_ms"] = _time(gpu_cases[name], cp.cuda.Device().synchronize)
                row["gpu_fps"] = 1000.0 / row["gpu_ms"]
            rows.append(row)
            print(row, flush=True)
    machine = {"platform": platform.platform(), "python": platform.python_version(),
               "gpu": (cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
                       if cp is not None else None)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "render_gpu.json").write_text(json.dumps({"machine": machine, "rows": rows},
                                                         indent=2))
    lines = ["# Render kernels, render only (no encoding)", "", f"Machine: {machine}", "",
             "| volume | case | CPU ms | GPU ms | GPU frames/s |", "|---|---|---:|---:|---:|"]
    for r in rows:
        gpu = (f"{r['gpu_ms']:.3f} | {r['gpu_fps']:.0f}" if "gpu_ms" in r else "– | –")
        lines.append(f"| {r['volume']} | {r['case']} | {r['cpu_ms']:.2f} | {gpu} |")
    (args.out / "render_gpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
