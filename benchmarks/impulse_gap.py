"""Salt and pepper beyond the data: the ``salt-and-pepper`` model with its levels moved or not.

Impulses at a type's limits (salt at 65535 over 12-bit data, at 255 over a
dark photo) lie far beyond the data the model was trained to see between
them. Restore moves them to one float32 step beyond the data's own range
(:mod:`napari_deconvnet.core.impulse_gap`). Named baselines:

never moved
    The model as it was before session 71 (``impulse_gap`` returning None).
switching median
    ``dn.denoise_switching_median`` with the impulse levels (the model's own
    second input channel).

Scenes: 256² crops of scikit-image photos scaled to 0-1000 (uint16); salt
``g`` ranges above the data's maximum and pepper ``g`` below its minimum
(at 0 at most), 5 % and 30 % of the pixels (seed 1). PSNR (dB) against the
clean crop over its range. The rule was chosen on camera and moon
(``--images camera moon``); coins is the check.

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
    head = ("image", "impulses", "gap (ranges)", "switching median", "never moved", "moved")
    print("| " + " | ".join(head) + " | moved − never |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in args.images:
        clean = scene(name)
        span = float(clean.max()) - float(clean.min())
        for fraction in FRACTIONS:
            for gap in GAPS:
                noisy = corrupt(clean, gap, fraction)
                lo, hi = float(noisy.min()), float(noisy.max())
                median = dn.denoise_switching_median(noisy.astype(np.float32), lo, hi)
                moved = dn.restore(noisy, model, device="cpu")
                with mock.patch.object(impulse_gap, "_inner_levels", lambda *a: None):
                    never = dn.restore(noisy, model, device="cpu")
                scores = [dn.psnr(clean, r, data_range=span) for r in (median, never, moved)]
                print(
                    f"| {name} | {fraction:.0%} | {gap:g} | {scores[0]:.2f} | {scores[1]:.2f} "
                    f"| {scores[2]:.2f} | {scores[2] - scores[1]:+.2f} |"
                )
    print(f"\n{time.perf_counter() - t0:.0f} s, float32, {dn.__version__}")


if __name__ == "__main__":
    main()
