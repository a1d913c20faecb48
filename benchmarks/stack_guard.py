"""Stacks whose frames differ in noise: the light-noise guard per image, or by the middle one.

The blind denoisers blend a nearly clean image with their output by Stein's
risk (``core.light_noise``), so that fine texture they would take for noise
is kept. Restore used to measure one image of a stack, the middle one, and
blend every frame by its weight: a time-lapse whose exposure varies (an
exposure series, bright-field frames between fluorescence ones, a laser
turned up halfway) had its noisy frames left partly unrestored when the
middle frame was clean, and its clean frames smoothed when the middle frame
was noisy. Now every image is weighed on its own, as it would be alone.

This script restores each stack without the guard, then blends it both ways
(the middle frame's weight for all, as before; each frame's own, as
``dn.restore`` now does: checked equal to it) and prints PSNR per frame
against the clean stack. Scenes are held out from every training set
(scikit-image's ``camera``, ``cell`` and ``coins``, and the package's
``cells_3d`` phantoms for ``denoise-3d``).

    python benchmarks/stack_guard.py --threads 1 --markdown out.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import heading, machine, publish, set_threads  # noqa: E402

import napari_deconvnet as dn  # noqa: E402
from napari_deconvnet.core import phantoms  # noqa: E402
from napari_deconvnet.core.light_noise import guard_weight  # noqa: E402
from napari_deconvnet.core.restoration import private_model  # noqa: E402

#: (name, Gaussian sigmas in grey levels of 255 per frame): exposures that vary
PATTERNS = {
    "exposure series": (0.5, 1, 2, 4, 8, 16, 32),
    "noisy frames, clean middle": (25, 25, 1, 1, 1, 25, 25),
    "clean frames, noisy middle": (1, 1, 1, 25, 1, 1, 1),
    "alternating 1 / 15": (1, 15, 1, 15, 1, 15),
}


def _photo(name: str, n: int) -> np.ndarray:
    image = getattr(data, name)().astype(np.float64)
    y, x = (np.array(image.shape) - n) // 2
    crop = image[y : y + n, x : x + n]
    return (crop - crop.min()) / np.ptp(crop)


def _stats(x: np.ndarray, net) -> tuple[float, float]:
    """The normalisation restore gives one image alone."""
    found = dn.compute_normalization(x, net)
    return float(found["offset"]), float(found["scale"])


def compare(model: str, clean: np.ndarray, noisy: np.ndarray, axes: str) -> dict:
    """PSNR per frame: input, the middle frame's weight for all, each its own."""
    net = private_model(model)
    raw = dn.restore(noisy, net, axes=axes, precision="float32", light_noise_guard=False)
    own = dn.restore(noisy, net, axes=axes, precision="float32")

    def blended(t: int, w: float | None) -> np.ndarray:
        return raw[t] if w is None else noisy[t] + np.float32(w) * (raw[t] - noisy[t])

    weights = [guard_weight(net, f, *_stats(f, net)) for f in noisy]
    mine = np.stack([blended(t, w) for t, w in enumerate(weights)])
    agrees = float(np.abs(mine - own).max())
    middle = weights[len(noisy) // 2]
    before = np.stack([blended(t, middle) for t in range(len(noisy))])
    rows = np.array(
        [
            [dn.psnr(c, x, data_range=1.0) for x in (n, b, o)]
            for c, n, b, o in zip(clean, noisy, before, own, strict=True)
        ]
    )
    d = rows[:, 2] - rows[:, 1]
    return {
        "input": rows[:, 0].mean(),
        "middle": rows[:, 1].mean(),
        "own": rows[:, 2].mean(),
        "mean": d.mean(),
        "worst": d.min(),
        "best": d.max(),
        "blended": sum(w is not None for w in weights),
        "frames": len(noisy),
        "agrees": agrees,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="one scene, small frames")
    ap.add_argument("--markdown", type=Path)
    args = ap.parse_args(argv)
    set_threads(args.threads)
    size = 64 if args.quick else args.size
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    lines = []
    scenes = ("camera",) if args.quick else ("camera", "cell", "coins")
    patterns = list(PATTERNS.items())[: 2 if args.quick else None]
    for scene in scenes:
        base = _photo(scene, size)
        for name, sigmas in patterns:
            clean = np.stack([base] * len(sigmas))
            noise = np.stack([rng.normal(0, s / 255, base.shape) for s in sigmas])
            noisy = np.clip(clean + noise, 0, 1).astype(np.float32)
            lines.append(("denoise-2d", scene, name, compare("denoise-2d", clean, noisy, "TYX")))
    vol = phantoms.cells_3d(np.random.default_rng(args.seed + 5), (16, size // 2, size // 2))
    vol = (vol - vol.min()) / np.ptp(vol)
    sigmas = (1, 25, 1) if args.quick else (1, 1, 25, 25, 1)
    clean = np.stack([vol] * len(sigmas))
    noise = np.stack([rng.normal(0, s / 255, vol.shape) for s in sigmas])
    noisy = np.clip(clean + noise, 0, 1).astype(np.float32)
    name = "volumes σ " + "/".join(str(s) for s in sigmas)
    lines.append(("denoise-3d", "cells_3d", name, compare("denoise-3d", clean, noisy, "TZYX")))
    body = [
        "| model | scene | stack (Gaussian σ per frame, of 255) | frames blended | input "
        "| middle frame's weight | own | mean | worst | best |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for model, scene, name, r in lines:
        sig = PATTERNS.get(name)
        label = name if sig is None else f"{name} ({'/'.join(f'{s:g}' for s in sig)})"
        body.append(
            f"| {model} | {scene} | {label} | {r['blended']} of {r['frames']} | "
            f"{r['input']:.2f} | {r['middle']:.2f} | **{r['own']:.2f}** | {r['mean']:+.2f} | "
            f"{r['worst']:+.2f} | {r['best']:+.2f} |"
        )
    means = np.array([r["mean"] for *_, r in lines])
    agrees = max(r["agrees"] for *_, r in lines)
    text = "\n\n".join(
        [
            heading(
                "A stack's frames: the light-noise guard by the middle frame, or each its own",
                "stack_guard.py",
                argv,
            ),
            machine() + f"; networks in float32; {size}² frames; seed {args.seed}; "
            f"{time.perf_counter() - started:.0f} s in all. PSNR in dB per frame, mean over "
            "the frames. *middle frame's weight* = every frame blended by the middle "
            "frame's weight (before); *own* = each frame by its own (now, `dn.restore`'s "
            f"output: the blends recomputed here match it within {agrees:.1e}); *mean*, "
            "*worst*, *best*: own − middle, per frame",
            "\n".join(body),
            f"Over all {len(lines)} rows: mean {means.mean():+.2f} dB, worst frame "
            f"{min(r['worst'] for *_, r in lines):+.2f} dB, best "
            f"{max(r['best'] for *_, r in lines):+.2f} dB.",
        ]
    )
    publish(text, args.markdown, "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
