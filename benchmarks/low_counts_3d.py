"""denoise-3d at few photons against an oracle Gaussian filter, on scenes no training drew.

Session 44 found the shipped ``denoise-3d`` below a Gaussian filter whose
sigma was chosen on the truth at 1 photon (by up to 6.8 dB on sparse beads
and filaments), below its training range (2-1000 photons). This compares two
model files (the earlier weights and a candidate) with that oracle on four
32×96×96 scenes (general phantoms of seeds 201-203: nuclei+membranes,
beads+filaments, textures; ``cells_3d`` of seed 204; neither the training
scripts' streams nor their validation's), at 0.5-100 photons of pure Poisson
noise and at Gaussian sigma 10 and 30/255 (one noise draw each, seed 7).

    python benchmarks/low_counts_3d.py OLD.safetensors NEW.safetensors [--quick]

PSNR dB, data range 1, outputs clipped to [0, 1]. The oracle tries sigma
0.5-4 voxels on the noisy volume (in units of the peak) and keeps the best.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from scipy import ndimage

import napari_deconvnet as dn
from napari_deconvnet.core.noise import synthesize
from napari_deconvnet.core.phantoms import cells_3d, phantom

PHOTONS = (0.5, 1, 2, 3, 5, 10, 30, 100)
SIGMAS = (10, 30)  # /255
ORACLE_SIGMAS = (0.5, 0.75, 1, 1.5, 2, 3, 4)


def scenes(shape: tuple[int, int, int]) -> dict[str, np.ndarray]:
    return {
        "nuclei+membranes": phantom(shape, ("nuclei", "membranes"), 201, mix=2),
        "beads+filaments": phantom(shape, ("beads", "filaments"), 202, mix=2),
        "textures": phantom(shape, ("textures",), 203, mix=1),
        "cells": cells_3d(np.random.default_rng(204), shape),
    }


def psnr(out: np.ndarray, clean: np.ndarray) -> float:
    return float(10 * np.log10(1 / np.mean((np.clip(out, 0, 1) - clean) ** 2)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="one scene, one noise, 8×32×32")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    models = {"old": dn.load_model(args.old), "new": dn.load_model(args.new)}
    shape = (8, 32, 32) if args.quick else (32, 96, 96)
    noises = [("poisson", p) for p in PHOTONS] + [("gaussian", s) for s in SIGMAS]
    chosen = scenes(shape)
    if args.quick:
        noises, chosen = noises[1:2], dict(list(chosen.items())[1:2])
    print("| scene | noise | oracle Gaussian | old | new | new − old |")
    print("|---|---|---:|---:|---:|---:|")
    means: dict[str, list[float]] = {"old": [], "new": []}
    for name, clean in chosen.items():
        clean = np.clip(clean, 0, 1).astype(np.float32)
        for kind, value in noises:
            if kind == "poisson":
                noisy = synthesize(
                    clean, "poisson-gaussian", peak=float(value), read_noise=0.0, seed=7
                )
                label = f"{value} ph"
            else:
                noisy = synthesize(clean, "gaussian", sigma=value / 255, seed=7)
                label = f"σ {value}/255"
            noisy = np.asarray(noisy, np.float32)
            oracle = max(psnr(ndimage.gaussian_filter(noisy, s), clean) for s in ORACLE_SIGMAS)
            got = {k: psnr(dn.restore(noisy, m), clean) for k, m in models.items()}
            for k, v in got.items():
                means[k].append(v)
            print(
                f"| {name} | {label} | {oracle:.2f} | {got['old']:.2f} | {got['new']:.2f} "
                f"| {got['new'] - got['old']:+.2f} |",
                flush=True,
            )
    print(f"\nmean: old {np.mean(means['old']):.2f}, new {np.mean(means['new']):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
