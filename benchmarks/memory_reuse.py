"""Restores that keep freed feature maps for reuse (core.memory) against the allocator alone.

Each case runs in fresh processes, one torch thread, float32, alternating
``NAPARI_DECONVNET_REUSE_MEMORY=1`` (the default) and ``=0`` (glibc left
alone), and reports the median wall time, the kernel (system) time, the
peak resident memory and the largest difference between the two outputs:

- ``stream-3d``: ``dn.restore_to_zarr`` of a 64x512x256 ``denoise-3d``
  volume in 64x128x128 blocks (8 blocks);
- ``ensemble-3d``: ``dn.restore(..., ensemble=8)`` of a 32x128x128 volume;
- ``stream-2d``: ``dn.restore_to_zarr`` of a 4096² ``uint16`` photo in the
  default 1024² blocks (16 blocks).

Usage::

    python benchmarks/memory_reuse.py --repeats 3
    python benchmarks/memory_reuse.py --quick          # small sizes, one round
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import heading, machine, publish  # noqa: E402

CASES = ("stream-3d", "ensemble-3d", "stream-2d")


def _noisy_volume(shape: tuple[int, int, int], seed: int) -> np.ndarray:
    from napari_deconvnet.io.samples import phantom_volume_data

    clean = phantom_volume_data(shape, seed)[1]
    rng = np.random.default_rng(seed)
    return (clean + rng.normal(0, 0.1, clean.shape)).astype(np.float32)


def _noisy_photo(side: int) -> np.ndarray:
    from skimage import data

    camera = data.camera().astype(np.float32)
    clean = np.tile(camera, (-(-side // 512),) * 2)[:side, :side]
    rng = np.random.default_rng(0)
    return np.clip(clean + rng.normal(0, 20, clean.shape), 0, 65535).astype(np.uint16)


def child(case: str, quick: bool, out: str) -> dict:
    """One restore in this process; its output saved to `out` (.npy)."""
    import torch

    import napari_deconvnet as dn

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="memory_reuse_"))
    try:
        if case == "stream-3d":
            shape = (16, 128, 64) if quick else (64, 512, 256)
            block = (16, 32, 32) if quick else (64, 128, 128)
            x = _noisy_volume(shape, 9101)
            start = time.perf_counter()
            path = dn.restore_to_zarr(
                x, work / "out.ome.zarr", "denoise-3d", chunks=block, precision="float32"
            )
            seconds = time.perf_counter() - start
            import zarr

            y = np.asarray(zarr.open(path, mode="r")["0"])
        elif case == "ensemble-3d":
            x = _noisy_volume((16, 32, 32) if quick else (32, 128, 128), 9102)
            start = time.perf_counter()
            y = dn.restore(x, "denoise-3d", ensemble=8, precision="float32")
            seconds = time.perf_counter() - start
        else:
            x = _noisy_photo(256 if quick else 4096)
            start = time.perf_counter()
            path = dn.restore_to_zarr(
                x,
                work / "out.ome.zarr",
                "denoise-2d",
                chunks=64 if quick else None,
                precision="float32",
            )
            seconds = time.perf_counter() - start
            import zarr

            y = np.asarray(zarr.open(path, mode="r")["0"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    np.save(out, y)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "seconds": seconds,
        "system_seconds": usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "range": float(np.ptp(y)),
    }


def run(case: str, reuse: bool, quick: bool, out: Path) -> dict:
    env = dict(os.environ, NAPARI_DECONVNET_REUSE_MEMORY="1" if reuse else "0")
    env.setdefault("NAPARI_DECONVNET_CPU_BFLOAT16", "0")
    command = [sys.executable, __file__, "--child", case, "--output", str(out)]
    if quick:
        command.append("--quick")
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(cases: list[str], repeats: int, quick: bool) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            runs: dict[bool, list[dict]] = {True: [], False: []}
            for r in range(repeats):
                for reuse in (True, False):
                    out = Path(tmp) / f"{case}-{reuse}-{r}.npy"
                    runs[reuse].append(run(case, reuse, quick, out))
            kept, alone = (np.load(Path(tmp) / f"{case}-{b}-0.npy") for b in (True, False))
            row = {"case": case, "max_diff": float(np.max(np.abs(kept - alone)))}
            row["max_diff_of_range"] = row["max_diff"] / max(runs[False][0]["range"], 1e-12)
            for reuse, name in ((True, "kept"), (False, "alone")):
                for key in ("seconds", "system_seconds", "peak_rss_mb"):
                    row[f"{name}_{key}"] = statistics.median(v[key] for v in runs[reuse])
            row["speedup"] = row["alone_seconds"] / row["kept_seconds"]
            rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| case | allocator alone | buffers kept | speed-up | system time (alone / kept) "
        "| peak RSS (alone / kept) | max diff (of range) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['alone_seconds']:.2f} s | {r['kept_seconds']:.2f} s | "
            f"**{r['speedup']:.2f}×** | {r['alone_system_seconds']:.1f} / "
            f"{r['kept_system_seconds']:.1f} s | {r['alone_peak_rss_mb']:.0f} / "
            f"{r['kept_peak_rss_mb']:.0f} MB | {r['max_diff_of_range']:.1e} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    parser.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.quick, args.output)))
        return 0
    import torch

    torch.set_num_threads(1)  # the machine line: what each measured process runs
    rows = measure(args.cases, args.repeats, args.quick)
    text = "\n\n".join(
        [
            heading(
                "Kept feature maps (core.memory) against the allocator alone",
                "memory_reuse.py",
                argv,
            ),  # fmt: skip
            f"Machine: {machine()}; fresh processes, one torch thread, float32, alternating; "
            f"medians of {args.repeats}",
            table(rows),
        ]
    )
    publish(text, args.out, "\n")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
