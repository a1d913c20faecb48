"""Stacks whose images differ in brightness: one set of statistics, or each image its own.

A time-lapse that bleaches, a Z-stack restored plane by plane whose planes
far from the focus are dim, frames with nothing in them: restore used to
normalise the whole stack with one set of percentiles, so a frame 20 times
dimmer than the first reached the network as the bottom twentieth of its
range. Restore now normalises every image the network restores (each time
point; each plane under a 2D model) by its own statistics. This script
restores the same noisy stacks both ways (the old way through
``normalization=dn.compute_normalization(stack)``, which is one set for the
whole stack) and prints PSNR per frame, against the clean stack.

Scenes are held out from every training set: crops of scikit-image's
``camera`` and ``cell`` (photos no model trains on) and the package's
``cells_3d`` phantoms with an out-of-focus blur along Z; Poisson noise at a
stated photon count for the brightest frame.

    python benchmarks/stack_statistics.py --threads 1 --markdown out.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import heading, machine, publish, set_threads  # noqa: E402

import napari_deconvnet as dn  # noqa: E402
from napari_deconvnet.core import phantoms  # noqa: E402


def _photo(name: str, n: int) -> np.ndarray:
    image = getattr(data, name)().astype(np.float64)
    if image.ndim == 3:
        image = image.mean(axis=-1)
    y, x = (np.array(image.shape) - n) // 2
    crop = image[y : y + n, x : x + n]
    crop = (crop - crop.min()) / np.ptp(crop)
    return 0.05 + 0.95 * crop


def stacks(n: int, seed: int) -> list[tuple[str, str, np.ndarray]]:
    """``(scene, condition, clean stack)`` for 2D models, frames along axis 0."""
    out = []
    for name in ("camera", "cell"):
        scene = _photo(name, n)
        for fade in (20, 4):
            decay = np.geomspace(1.0, 1.0 / fade, 8)
            out.append((name, f"bleaching {fade}x", np.stack([scene * d for d in decay])))
        blank = np.full_like(scene, 0.05)
        frames = [scene if t % 2 == 0 else blank for t in range(6)]
        out.append((name, "every other frame blank", np.stack(frames)))
        out.append((name, "steady", np.stack([scene] * 4)))
    for k in range(2):
        vol = phantoms.cells_3d(np.random.default_rng(seed + 10 + k), (24, n, n))
        out.append(
            (f"cells_3d #{k}", "Z-stack, planes", ndimage.gaussian_filter(vol, (2.5, 1, 1)))
        )
    return out


def _psnr(clean: np.ndarray, x: np.ndarray, whole_range: float) -> float:
    rng = float(np.ptp(clean))
    return dn.psnr(clean, x, data_range=rng if rng > 0 else whole_range)


def compare(model: str, clean: np.ndarray, noisy: np.ndarray, axes: str, **kw) -> dict:
    stats = dn.compute_normalization(noisy, model, axes=axes)
    shared = dn.restore(noisy, model, axes=axes, normalization=stats, precision="float32", **kw)
    own = dn.restore(noisy, model, axes=axes, precision="float32", **kw)
    whole = float(np.ptp(clean))
    rows = [
        (_psnr(c, n, whole), _psnr(c, a, whole), _psnr(c, b, whole))
        for c, n, a, b in zip(clean, noisy, shared, own, strict=True)
    ]
    r = np.array(rows)
    d = r[:, 2] - r[:, 1]
    return {
        "input": r[:, 0].mean(),
        "shared": r[:, 1].mean(),
        "own": r[:, 2].mean(),
        "mean": d.mean(),
        "worst": d.min(),
        "best": d.max(),
        "dimmest": d[int(np.argmin([np.ptp(c) + c.mean() for c in clean]))],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--photons", type=float, nargs="+", default=[20.0, 200.0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="one scene per kind, small images")
    ap.add_argument("--markdown", type=Path)
    args = ap.parse_args(argv)
    set_threads(args.threads)
    size = 48 if args.quick else args.size
    started = time.perf_counter()
    lines = []
    cases = stacks(size, args.seed)
    if args.quick:
        cases = [c for c in cases if c[0] in ("camera", "cells_3d #0")][:3]
    rng = np.random.default_rng(args.seed + 1)
    for photons in args.photons:
        for scene, condition, clean in cases:
            noisy = (rng.poisson(clean * photons) / photons).astype(np.float32)
            r = compare("denoise-2d", clean, noisy, "ZYX")
            lines.append(("denoise-2d", f"Poisson, {photons:g} photons", scene, condition, r))
    # a 2D deconvolution over a bleaching time-lapse, and a 3D model over time points
    psf = dn.make_psf("gaussian", sigma=1.6, ndim=2)
    for scene in ("camera", "cell"):
        base = _photo(scene, size)
        decay = np.geomspace(1.0, 1 / 20, 3 if args.quick else 6)
        clean = np.stack([base * d for d in decay])
        blurred = np.stack([ndimage.convolve(c, psf, mode="reflect") for c in clean])
        noisy = (rng.poisson(blurred * 200) / 200).astype(np.float32)
        r = compare("deconv-2d", clean, noisy, "ZYX", psf=psf)
        lines.append(("deconv-2d", "Gaussian PSF σ 1.6, 200 photons", scene, "bleaching 20x", r))
        if args.quick:
            break
    vol = phantoms.cells_3d(np.random.default_rng(args.seed + 20), (16, size, size))
    decay = np.geomspace(1.0, 1 / 20, 3 if args.quick else 4)
    clean = np.stack([vol * d for d in decay])
    noisy = (rng.poisson(clean * 200) / 200).astype(np.float32)
    r = compare("denoise-3d", clean, noisy, "TZYX")
    lines.append(("denoise-3d", "Poisson, 200 photons", "cells_3d", "bleaching 20x (volumes)", r))
    body = [
        "| model | noise | scene | stack | input | one set | own | mean | worst | best "
        "| dimmest frame |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    body += [
        f"| {m} | {noise} | {scene} | {cond} | {r['input']:.2f} | {r['shared']:.2f} | "
        f"**{r['own']:.2f}** | {r['mean']:+.2f} | {r['worst']:+.2f} | {r['best']:+.2f} | "
        f"{r['dimmest']:+.2f} |"
        for m, noise, scene, cond, r in lines
    ]
    means = np.array([r["mean"] for *_, r in lines])
    worst = min(r["worst"] for *_, r in lines)
    text = "\n\n".join(
        [
            heading(
                "A stack's images: one set of statistics, or each its own",
                "stack_statistics.py",
                argv,
            ),
            machine() + f"; networks in float32; {size}² frames; seed {args.seed}; "
            f"{time.perf_counter() - started:.0f} s in all. PSNR in dB per frame (each "
            "frame's own range; a blank frame the stack's), mean over the frames. *one "
            "set* = one set of statistics for the whole stack (before; "
            "`normalization=dn.compute_normalization(stack)`), *own* = each image its own "
            "(now, the default); *mean*, *worst*, *best*, *dimmest frame*: own − one set",
            "\n".join(body),
            f"Over all {len(lines)} rows: mean {means.mean():+.2f} dB, worst frame "
            f"{worst:+.2f} dB.",
        ]
    )
    publish(text, args.markdown, "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
