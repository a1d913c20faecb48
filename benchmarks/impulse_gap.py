"""Salt and pepper beyond the data: the ``salt-and-pepper`` model with its levels moved or not.

Impulses at a type's limits (salt at 65535 over 12-bit data, at 255 over a
dark photo) lie far beyond the data the model was trained to see between
them. Restore moves a level more than ``IMPULSE_GAP`` (a tenth) of the
data's range beyond the data to one float32 step beyond it, unless its
pixels are mostly inside areas of that value (a masked background, padding,
a blank frame; :mod:`napari_deconvnet.core.impulse_gap`). Named baselines:

never moved
    The model as it was before session 71 (``impulse_gap`` returning None).
always moved
    Every level moved whatever its distance (``IMPULSE_GAP = 0``), areas
    still kept.
switching median
    ``dn.denoise_switching_median`` with the impulse levels (the model's own
    second input channel).

Scenes: 256² crops of scikit-image photos scaled to 0-1000 (uint16); salt
``g`` ranges above the data's maximum and pepper ``g`` below its minimum
(at 0 at most), 5 % and 30 % of the pixels (seed 1). The rule was chosen on
camera and moon; coins is the check (a first version moved every level,
areas too: the masked rows lost 3 to 5 dB). ``masked``: 192² crops whose background
is set to 0 by an Otsu threshold (coins, cell) or below 0.3 (camera), with
``dn.synthesize``'s impulses at 0 and the maximum (5 % and 20 %), where a
level is also a large area of legitimate pixels. PSNR (dB) against the clean
crop over its range.

    python benchmarks/impulse_gap.py --threads 1 [--images camera moon coins]
"""

from __future__ import annotations

import argparse
import time
import warnings
from unittest import mock

import numpy as np
import torch
from skimage import data

import napari_deconvnet as dn
from napari_deconvnet.core import impulse_gap

GAPS = (0.0, 0.1, 0.45, 1.0, 4.0)
FRACTIONS = (0.05, 0.3)


def scene(name: str) -> np.ndarray:
    image = getattr(data, name)()
    if image.ndim == 3:
        image = image[..., 0]
    return (image[96:352, 96:352].astype(np.float64) / 255 * 1000).astype(np.uint16)


def corrupt(clean: np.ndarray, gap: float, fraction: float) -> np.ndarray:
    low, high = int(clean.min()), int(clean.max())
    span = high - low
    rng = np.random.default_rng(1)
    noisy = clean.copy()
    u = rng.random(clean.shape)
    noisy[u < fraction / 2] = max(0, low - round(gap * span))
    noisy[(u >= fraction / 2) & (u < fraction)] = high + round(gap * span)
    return noisy


def masked_scenes() -> dict[str, np.ndarray]:
    from skimage import filters

    coins = data.coins()[:192, 100:292].astype(np.float32)
    cell = np.asarray(data.cell()[:192, :192], np.float32)
    camera = data.camera()[128:320, 160:352].astype(np.float32) / 255
    return {
        "coins, masked": np.where(coins > filters.threshold_otsu(coins), coins, 0) / 255,
        "cell, masked": np.where(cell > filters.threshold_otsu(cell), cell, 0) / cell.max(),
        "camera, below 0.3 zeroed": np.where(camera < 0.3, 0, camera),
    }


def _three(noisy: np.ndarray, model: object) -> list[np.ndarray]:
    """The restores never moved, by the rule, and always moved."""
    with mock.patch.object(impulse_gap, "_inner_levels", lambda *a: None):
        never = dn.restore(noisy, model, device="cpu")
    rule = dn.restore(noisy, model, device="cpu")
    with mock.patch.object(impulse_gap, "IMPULSE_GAP", 0.0):
        always = dn.restore(noisy, model, device="cpu")
    return [never, rule, always]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--images", nargs="+", default=["camera", "moon", "coins"])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    model = dn.load_model("salt-and-pepper")
    t0 = time.perf_counter()
    head = ("image", "impulses", "gap (ranges)", "switching median", "never moved")
    print("| " + " | ".join(head) + " | rule (beyond 0.1 range) | always moved |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in args.images:
        clean = scene(name)
        span = float(clean.max()) - float(clean.min())
        for fraction in FRACTIONS:
            for gap in GAPS:
                noisy = corrupt(clean, gap, fraction)
                lo, hi = float(noisy.min()), float(noisy.max())
                median = dn.denoise_switching_median(noisy.astype(np.float32), lo, hi)
                scores = [
                    dn.psnr(clean, r, data_range=span) for r in [median, *_three(noisy, model)]
                ]
                print(
                    f"| {name} | {fraction:.0%} | {gap:g} | "
                    + " | ".join(f"{v:.2f}" for v in scores)
                    + " |"
                )
    for name, clean in masked_scenes().items():
        for fraction in (0.05, 0.2):
            noisy = np.asarray(dn.synthesize(clean, "salt-and-pepper", amount=fraction, seed=0))
            lo, hi = float(noisy.min()), float(noisy.max())
            median = dn.denoise_switching_median(noisy.astype(np.float32), lo, hi)
            outs = [median, *_three(noisy, model)]
            scores = [dn.psnr(clean, np.clip(r, 0, 1), data_range=1.0) for r in outs]
            print(
                f"| {name} | {fraction:.0%} | (background at 0) | "
                + " | ".join(f"{v:.2f}" for v in scores)
                + " |"
            )
    print(f"\n{time.perf_counter() - t0:.0f} s, float32, {dn.__version__}")


if __name__ == "__main__":
    main()
