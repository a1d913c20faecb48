"""What loading a shipped model costs a restore of a small image.

``dn.restore(image, "deconv-2d")`` reads the model file, checks its SHA-256
and builds the network on every call; for a 256² image that was 13 ms of a
90 ms restore on one core. Shipped models are now kept once read
(``core.persistence._load_shipped``: each call gets its own deep copy, the
file's size and modification time are checked) and any file is built
without drawing random weights first. This times, in one process, each
shipped 2D model's restore with the cache emptied before every call (the
file read and checked each time, the baseline, though already without the
random initialisation the code before 2026-12-04 also paid: 5.7 against
13 ms a load) against the cached path,
alternating the two, best of ``--repeats``, and checks the outputs equal.

    python benchmarks/model_load.py [--sizes 128 256 512] [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _machine import machine

import napari_deconvnet as dn
from napari_deconvnet.core import persistence


def _image(size: int, impulses: bool) -> np.ndarray:
    from skimage import data

    rng = np.random.default_rng(0)
    x = data.brick().astype(np.float32)[:size, :size] / 255  # not a test image
    if impulses:  # 5 % salt and pepper
        hit = rng.random(x.shape) < 0.05
        x[hit] = rng.integers(0, 2, hit.sum())
        return x
    return (x + rng.normal(0, 0.05, x.shape)).astype(np.float32)


def _time(call, cold: bool) -> tuple[float, np.ndarray]:
    if cold:
        persistence._SHIPPED_CACHE.clear()
    start = time.perf_counter()
    out = call()
    return time.perf_counter() - start, out


def measure(model: str, size: int, repeats: int) -> dict:
    image = _image(size, impulses=model == "salt-and-pepper")
    needs_psf = dn.model_info(model)["metadata"].get("needs_psf")
    psf = dn.make_psf("gaussian", sigma=1.5) if needs_psf else None

    def call():
        return dn.restore(image, model, psf=psf)

    call()  # warm-up: imports, oneDNN kernels
    best = {True: np.inf, False: np.inf}
    outs = {}
    for _ in range(repeats):
        for cold in (True, False):
            seconds, outs[cold] = _time(call, cold)
            best[cold] = min(best[cold], seconds)
    return {
        "model": model,
        "size": size,
        "cold": best[True],
        "cached": best[False],
        "equal": bool(np.array_equal(outs[True], outs[False])),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument(
        "--models", nargs="+", default=["denoise-2d", "deconv-2d", "salt-and-pepper"]
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [measure(m, s, args.repeats) for m in args.models for s in args.sizes]
    print(f"# `python benchmarks/model_load.py` ({time.strftime('%Y-%m-%d')})\n")
    print(f"{machine()}; float32, best of {args.repeats}\n")
    print(
        "| model | image | file read each call (before) | kept once read (now) "
        "| speed-up | outputs equal |"
    )
    print("|---|---|---:|---:|---:|---|")
    for r in rows:
        mp = r["size"] ** 2 / 1e6
        print(
            f"| {r['model']} | {r['size']}² "
            f"| {r['cold'] * 1e3:.1f} ms ({r['cold'] / mp:.2f} s/MP) "
            f"| {r['cached'] * 1e3:.1f} ms ({r['cached'] / mp:.2f} s/MP) "
            f"| {r['cold'] / r['cached']:.2f}× | {r['equal']} |"
        )


if __name__ == "__main__":
    main()
