"""Render-only timings of plane and slab sampling, CPU (numba) and, where present, GPU (cupy).

    python -m benchmarks.render_gpu [--out DIR]

Synthetic volumes (said so in the output): 135x512x512 (a chest CT's size) and 600x512x512.
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

from render_engine.geometry import VolumeGeometry
from render_engine.kernels.backend import cupy_or_none, to_gpu
from render_engine.planes import Slab, standard_plane
from render_engine.sampling import sample


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--cpu-frames", type=int, default=10)
    args = parser.parse_args()
    cp = cupy_or_none()
    rows: list[dict[str, Any]] = []
    rng = np.random.default_rng(0)
    for depth in (135, 600):
        vol = rng.normal(0, 300, size=(depth, 512, 512)).astype(np.float32)
        affine = np.eye(4)
        affine[:3, :3] = np.column_stack([[0, 0, 1.25], [0, 0.8, 0], [0.8, 0, 0]])
        geometry = VolumeGeometry(shape=vol.shape, affine=affine)  # type: ignore[arg-type]
        plane = standard_plane(geometry, "axial", size_px=(512, 512)).rotated_about(
            [1, 0.2, 0], 30)
        cases = {"oblique MPR 512²": None, "oblique slab MIP 20 mm 512²": Slab(thickness_mm=20)}
        gvol = to_gpu(vol) if cp is not None else None
        for name, slab in cases.items():
            row: dict[str, Any] = {"volume": f"synthetic {depth}x512x512", "case": name}
            row["cpu_ms"] = _time(partial(sample, vol, geometry, plane, slab=slab),
                                  lambda: None, args.cpu_frames)
            if cp is not None:
                row["gpu_ms"] = _time(partial(sample, gvol, geometry, plane, slab=slab),
                                      cp.cuda.Device().synchronize)
                row["gpu_fps"] = 1000.0 / row["gpu_ms"]
            rows.append(row)
            print(row, flush=True)
    machine = {"platform": platform.platform(), "python": platform.python_version(),
               "gpu": (cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
                       if cp is not None else None)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "render_gpu.json").write_text(json.dumps({"machine": machine, "rows": rows},
                                                         indent=2))
    lines = ["# Plane and slab sampling, render only", "", f"Machine: {machine}", "",
             "| volume | case | CPU ms | GPU ms | GPU frames/s |", "|---|---|---:|---:|---:|"]
    for r in rows:
        gpu = (f"{r['gpu_ms']:.3f} | {r['gpu_fps']:.0f}" if "gpu_ms" in r else "– | –")
        lines.append(f"| {r['volume']} | {r['case']} | {r['cpu_ms']:.2f} | {gpu} |")
    (args.out / "render_gpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
