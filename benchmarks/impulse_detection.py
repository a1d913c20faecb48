"""What looking for hot pixels and impulses costs a restore, before and after 2026-12-05.

Every restore with a denoiser or a deconvolution model first asks whether
the input holds impulses (salt-and-pepper, a camera's hot or dead pixels:
``core.impulse_switch.detect_impulses``, on a central crop of at most 512²
or 24×192×192). On photon counts most of that time went to the 8-neighbour
rank filters (``core.noise_estimation.ring_ranks``): a full sorting network
on chunks of 2**18 values, each minimum and maximum into a freshly allocated
array. They now evaluate only the compare-exchanges the requested ranks need,
into ten buffers of 2**14 values reused from chunk to chunk, and the outlier
test computes its neighbours' ranks once where it computed them twice.

This times, in one process and alternating the two, the detection with the
previous filters (a copy of them below: the baseline) and with today's, then
the whole ``dn.restore`` both ways and without the detection
(``impulse_switch=False``) for scale; best of ``--repeats``. The answers (and
the restored images) must be equal.

    python benchmarks/impulse_detection.py [--repeats 5] [--threads 1] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from _machine import heading, machine, publish, set_threads

import napari_deconvnet as dn
from napari_deconvnet.core import impulse_switch, noise_estimation


def previous_ring_ranks(planes: np.ndarray, ranks: tuple[int, ...]) -> list[np.ndarray]:
    """The ring filters as they were: Batcher's full network, allocating, 2**18 at a time."""
    planes = np.asarray(planes)
    n, h, w = planes.shape
    outs = [np.empty_like(planes) for _ in ranks]
    rows = max(1, 2**18 // max(w, 1))
    for k in range(n):
        padded = np.pad(planes[k], 1, mode="symmetric")
        for r0 in range(0, h, rows):
            r1 = min(h, r0 + rows)
            v = [
                padded[r0 + 1 + dy : r1 + 1 + dy, 1 + dx : w + 1 + dx]
                for dy in (-1, 0, 1)
                for dx in (-1, 0, 1)
                if dy or dx
            ]
            for layer in noise_estimation._SORT8:
                for i, j in layer:
                    v[i], v[j] = np.minimum(v[i], v[j]), np.maximum(v[i], v[j])
            for out, rank in zip(outs, ranks, strict=True):
                out[k, r0:r1] = v[rank]
    return outs


@contextlib.contextmanager
def previous_code() -> Iterator[None]:
    """The previous filters, and the outlier mask computing its ranks itself again."""
    mask = impulse_switch.outlier_mask
    saved = noise_estimation.ring_ranks
    noise_estimation.ring_ranks = previous_ring_ranks
    impulse_switch.outlier_mask = lambda image, outliers, ranks=None: mask(image, outliers)
    try:
        yield
    finally:
        noise_estimation.ring_ranks = saved
        impulse_switch.outlier_mask = mask


def images(quick: bool) -> dict[str, np.ndarray]:
    """Inputs a restore meets: fluorescence photon counts (2D, 3D; the package's
    phantoms, whose dark background makes the outlier test look closer), a photo
    with Gaussian noise, and a camera frame with hot pixels of any value."""
    from skimage import data

    from napari_deconvnet.core.phantoms import phantom

    rng = np.random.default_rng(0)
    side = 256 if quick else 512
    nuclei = phantom((side, side), "nuclei", 3)
    brick = data.brick().astype(np.float32)[:side, :side] / 255  # not a test image
    out = {
        f"{side}² nuclei, Poisson, 30 photons": rng.poisson(nuclei * 30).astype(np.float32),
        f"{side}² photo, Gaussian noise σ 0.05": (brick + rng.normal(0, 0.05, brick.shape)).astype(
            np.float32
        ),
    }
    membranes = phantom((side, side), "membranes", 4)
    hot = rng.poisson(membranes * 100).astype(np.float32)
    flat = rng.choice(hot.size, hot.size // 1000, replace=False)
    hot.reshape(-1)[flat] = rng.uniform(150, 400, flat.size)  # hot pixels of any value
    out[f"{side}² membranes, 100 photons, 0.1 % hot pixels"] = hot
    z, s = (8, 96) if quick else (24, 192)
    volume = phantom((z, s, s), "nuclei", 5)
    out[f"{z}×{s}×{s} nuclei, Poisson, 20 photons"] = rng.poisson(volume * 20).astype(np.float32)
    return out


def timed(call: Callable[[], object], previous: bool) -> tuple[float, object]:
    """Seconds and result of one `call`, with the previous code when `previous`."""
    with previous_code() if previous else contextlib.nullcontext():
        start = time.perf_counter()
        result = call()
        return time.perf_counter() - start, result


def measure(name: str, x: np.ndarray, repeats: int) -> dict:
    ndim = x.ndim
    model = "denoise-3d" if ndim == 3 else "denoise-2d"

    def detect() -> object:
        return impulse_switch.detect_impulses(x, 0, ndim)

    def restore(switch: bool | None = None) -> np.ndarray:
        return dn.restore(x, model, impulse_switch=switch)

    restore()  # warm-up: imports, oneDNN kernels, the model file
    times: dict[str, float] = {k: np.inf for k in ("detect0", "detect1", "r0", "r1", "off")}
    answers, outs = {}, {}
    for _ in range(repeats):  # alternating, so that a busy moment hits both
        for previous in (True, False):
            key = "0" if previous else "1"
            t, answers[key] = timed(detect, previous)
            times["detect" + key] = min(times["detect" + key], t)
            t, outs[key] = timed(restore, previous)
            times["r" + key] = min(times["r" + key], t)
        t, _ = timed(lambda: restore(False), False)
        times["off"] = min(times["off"], t)
    same = _same(answers["0"], answers["1"]) and np.array_equal(outs["0"], outs["1"])
    found = answers["1"] is not None
    return {"image": name, "model": model, "found": found, "equal": same} | times


def _same(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is b
    return a == b


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="small images (a smoke test)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    rows = [measure(name, x, args.repeats) for name, x in images(args.quick).items()]
    lines = [
        heading("Looking for impulses before a restore", "impulse_detection.py", argv),
        "",
        f"{machine()}; best of {args.repeats}, alternating previous and current code",
        "",
        "| image | model | impulses found | detection before | detection now | speed-up "
        "| restore before | restore now | speed-up | restore without detection | equal |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['image']} | {r['model']} | {'yes' if r['found'] else 'no'} "
            f"| {r['detect0'] * 1e3:.1f} ms | {r['detect1'] * 1e3:.1f} ms "
            f"| {r['detect0'] / r['detect1']:.2f}× "
            f"| {r['r0'] * 1e3:.0f} ms | {r['r1'] * 1e3:.0f} ms | {r['r0'] / r['r1']:.2f}× "
            f"| {r['off'] * 1e3:.0f} ms | {r['equal']} |"
        )
    publish("\n".join(lines), args.out, "\n")


if __name__ == "__main__":
    main()
