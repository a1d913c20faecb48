"""Gaussian noise with impulses on top: the blind denoiser against medians and model chains.

Impulses (pixels set to the image's minimum or maximum: dead or saturated
pixels, transmission errors) often come with ordinary noise. The blind
denoisers were trained without them; restore replaces them first
(:mod:`napari_deconvnet.core.impulse_switch`). Named baselines:

3x3 median
    ``scipy.ndimage.median_filter(noisy, 3)``.
salt-and-pepper -> default
    The two shipped models in a chain: the ``salt-and-pepper`` model
    (impulses only replaced), then ``denoise-2d`` with the switch off.
default, switch off
    ``dn.restore(noisy, impulse_switch=False)``: what restore did before.

Scenes: 256² crops of the camera photo and a cells scene (seed 5); noise
seeds 1 (Gaussian) and 2 (impulses). PSNR (dB) against the clean scene,
every output clipped to [0, 1].

Usage::

    python benchmarks/mixed_noise.py --threads 1 --markdown out.md
    python benchmarks/mixed_noise.py --quick
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

import napari_deconvnet as dn
from napari_deconvnet.core.phantoms import cells_2d

#: (Gaussian sigma, impulse share)
NOISES = ((0.02, 0.05), (0.05, 0.05), (0.1, 0.05), (0.05, 0.2))
COLUMNS = ("noisy", "3x3 median", "salt-and-pepper -> default", "default, switch off", "default")


def scenes(size: int) -> dict[str, np.ndarray]:
    from skimage import data

    camera = data.camera()[100 : 100 + size, 100 : 100 + size] / 255
    return {
        "camera": camera.astype(np.float32),
        "cells": cells_2d(np.random.default_rng(5), size).astype(np.float32),
    }


def degrade(clean: np.ndarray, sigma: float, amount: float) -> np.ndarray:
    noisy = dn.synthesize(clean, "gaussian", sigma=sigma, seed=1)
    noisy = dn.synthesize(noisy, "salt-and-pepper", amount=amount, seed=2)
    return np.clip(noisy, 0, 1).astype(np.float32)


def run(size: int, noises) -> dict[str, dict[str, float]]:
    def score(clean, out):
        return float(dn.psnr(clean, np.clip(out, 0, 1), data_range=1))

    rows = {}
    for name, clean in scenes(size).items():
        for sigma, amount in noises:
            y = degrade(clean, sigma, amount)
            chain = dn.restore(
                dn.restore(y, "salt-and-pepper", precision="float32"),
                precision="float32",
                impulse_switch=False,
            )
            outs = {
                "noisy": y,
                "3x3 median": ndimage.median_filter(y, 3),
                "salt-and-pepper -> default": chain,
                "default, switch off": dn.restore(y, precision="float32", impulse_switch=False),
                "default": dn.restore(y, precision="float32"),
            }
            key = f"{name}, sigma {sigma:g} + {amount:.0%} impulses"
            rows[key] = {c: score(clean, o) for c, o in outs.items()}
            print(key, " ".join(f"{c}: {v:.2f}" for c, v in rows[key].items()), flush=True)
    return rows


def markdown(rows: dict[str, dict[str, float]], header: str) -> str:
    lines = [header, ""]
    lines.append("| scene, noise | " + " | ".join(COLUMNS) + " | default − best baseline |")
    lines.append("|---|" + "---:|" * (len(COLUMNS) + 1))
    for key, values in rows.items():
        best = max(values.values())
        cells = [
            f"**{values[c]:.2f}**" if values[c] == best else f"{values[c]:.2f}" for c in COLUMNS
        ]
        floor = max(v for c, v in values.items() if c != "default")
        lines.append(f"| {key} | " + " | ".join(cells) + f" | {values['default'] - floor:+.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one noise, 64² scenes")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    rows = run(64 if args.quick else 256, NOISES[:1] if args.quick else NOISES)
    command = " ".join(argv if argv is not None else sys.argv[1:])
    header = (
        f"# Gaussian noise with impulses ({time.strftime('%Y-%m-%d')})\n\n"
        f"`python benchmarks/mixed_noise.py {command}`, "
        f"{time.perf_counter() - t0:.0f} s. PSNR dB, float32."
    )
    text = markdown(rows, header)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
