"""What a restore costs besides the network: the CPU side that bounds a GPU.

On an NVIDIA H200 (README *GPU*) ``denoise-2d`` restored 4096² at 29 MP/s in
float32 and no faster in half precision: the card waited for the CPU side
(reading tiles, normalising, assembling). This times ``dn.restore`` with the
network replaced by a no-op of the same output shape, so only that side is
left, for two ways of reading a tile with its reflected halo:

- ``index gather`` (the baseline, the code before 2026-12-04): index arrays
  of :func:`~napari_deconvnet.core.tiling.reflect_index` through ``np.ix_``,
  then a stacking copy;
- ``slice + pad`` (now): :func:`~napari_deconvnet.core.tiling.reflected_block`,
  a view padded by ``np.pad(mode="reflect")``, no copy for a one-tile batch.

Each case alternates the two, best of ``--repeats``, in one process; the
outputs are checked equal. ``tile=n`` is a GPU's plan (the whole image, one
tile); ``tile=512`` a CPU's.

    python benchmarks/restore_overhead.py [--sizes 2048 4096] [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _machine import machine

import napari_deconvnet as dn
from napari_deconvnet.core import tiling


def _no_network(net, x, *, halo, grid, center=False):
    """The network's output shape, no work."""
    if center:
        inner = tuple(slice(halo, s - halo) for s in x.shape[2:])
        return x[(slice(None), slice(0, 1), *inner)].clone()
    return x[:, :1].clone()


def _index_gather(image, windows):
    """The baseline: index arrays, then the copy np.stack made of each tile."""
    spatial = image.shape[1:]
    index = [tiling.reflect_index(a, b, n) for (a, b), n in zip(windows, spatial, strict=True)]
    return image[np.ix_(np.arange(image.shape[0]), *index)].copy()


def measure(size: int, tile: int, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, size, dtype=np.float32)[None]
    image = (rng.random((size, size), dtype=np.float32) * 0.1 + ramp).astype(np.float32)
    net = dn.load_model("denoise-2d")
    kwargs = dict(device="cpu", precision="float32", tile=tile)
    ways = {"index gather": _index_gather, "slice + pad": tiling.reflected_block}
    real_forward, real_block = tiling.forward_tiles, tiling.reflected_block
    times: dict[str, list[float]] = {k: [] for k in ways}
    outs = {}
    tiling.forward_tiles = _no_network
    try:
        dn.restore(image[:512, :512], net, **{**kwargs, "tile": 256})  # imports, warm-up
        for _ in range(repeats):
            for name, way in ways.items():
                tiling.reflected_block = way
                t0 = time.perf_counter()
                outs[name] = dn.restore(image, net, **kwargs)
                times[name].append(time.perf_counter() - t0)
    finally:
        tiling.forward_tiles, tiling.reflected_block = real_forward, real_block
    a, b = outs.values()
    return {
        "case": f"{size}² tile {tile}",
        "mp": size * size / 1e6,
        "seconds": {k: min(v) for k, v in times.items()},
        "equal": bool(np.array_equal(a, b)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="256² only, one repeat")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sizes, repeats = ([256], 1) if args.quick else (args.sizes, args.repeats)
    rows = []
    for size in sizes:
        for tile in (size, 512 if size > 512 else 128):
            rows.append(measure(size, tile, repeats))
    print(f"\n{machine()}; `denoise-2d`, no-op network, float32\n")
    print("| case | index gather (before) | slice + pad (now) | speed-up | outputs equal |")
    print("|---|---:|---:|---:|---|")
    for r in rows:
        before, now = r["seconds"]["index gather"], r["seconds"]["slice + pad"]
        print(
            f"| {r['case']} | {before:.3f} s ({r['mp'] / before:.1f} MP/s) "
            f"| {now:.3f} s ({r['mp'] / now:.1f} MP/s) | {before / now:.2f}× | {r['equal']} |"
        )
    return 0 if all(r["equal"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
