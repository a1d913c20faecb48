"""Denoising z-stacks whose planes lie further apart than their pixels: 3D against 2D.

Confocal and widefield stacks are usually sampled at the pixel size in Y
and X and two to four times coarser in Z. ``denoise-3d`` was trained on
volumes sampled alike along every axis. This benchmark builds held-out
volumes at 96^3 (``cells_3d`` scenes of seeds 95 and 96, and the general
generator's nuclei and membranes, beads and filaments, seed 71: none used
in training), keeps every ``s``-th plane (``s``: the Z step over the pixel
size, 1 to 4; 24 planes), adds Poisson-Gaussian noise (5, 20 and 100
photons at the brightest voxel, read noise 1 e-) and restores the stack
with ``denoise-3d``, plane by plane with ``denoise-2d`` (the Restore
widget's default for a volume without a PSF, ``axes="ZYX"`` in Python),
and with the mean of the two outputs.

Usage::

    python benchmarks/anisotropy.py --threads 1 --markdown out.md
    python benchmarks/anisotropy.py --quick

The table gives mean PSNR (dB) against the clean stack (outputs clipped to
[0, 1]) per Z step and photon level.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _machine import heading, machine, publish, set_threads  # noqa: E402

import napari_deconvnet as dn  # noqa: E402
from napari_deconvnet.core.phantoms import cells_3d, phantom  # noqa: E402

STEPS = (1, 2, 3, 4)
PHOTONS = (5.0, 20.0, 100.0)
PLANES = 24
SIDE = 96
METHODS = ("denoise-3d", "denoise-2d planes", "mean of both")


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0, None)
    return (x / max(float(x.max()), 1e-6)).astype(np.float32)


def scenes(quick: bool) -> list[tuple[str, np.ndarray]]:
    """(name, isotropic clean volume in [0, 1]) of every held-out scene."""
    side = 48 if quick else SIDE
    shape = (side,) * 3
    out = [(f"cells {s}", _unit(cells_3d(np.random.default_rng(s), shape))) for s in (95, 96)]
    for kinds in (("nuclei", "membranes"), ("beads", "filaments")):
        rng = np.random.default_rng(71)
        out.append(("+".join(kinds) + " 71", _unit(phantom(shape, kinds, rng, mix=2))))
    return out[:2] if quick else out


def stack(volume: np.ndarray, step: int, planes: int) -> np.ndarray:
    """Every `step`-th plane of `volume` (the middle `planes` of them)."""
    kept = volume[::step]
    start = (kept.shape[0] - planes) // 2
    return kept[start : start + planes]


def degrade(clean: np.ndarray, peak: float, seed: int) -> np.ndarray:
    noisy = dn.synthesize(clean, "poisson-gaussian", peak=peak, read_noise=1.0, seed=seed)
    return np.asarray(noisy, np.float32)


def psnr(clean: np.ndarray, out: np.ndarray) -> float:
    return float(dn.psnr(clean, np.clip(out, 0, 1), data_range=1))


def run(quick: bool) -> list[dict]:
    data = scenes(quick)
    steps, photons = ((1, 3), PHOTONS[1:2]) if quick else (STEPS, PHOTONS)
    planes = 12 if quick else PLANES
    rows = []
    for step in steps:
        for peak in photons:
            per: dict[str, list[float]] = {"input": [], **{m: [] for m in METHODS}}
            for k, (_, volume) in enumerate(data):
                clean = stack(volume, step, planes)
                noisy = degrade(clean, peak, seed=300 + k)
                three = dn.restore(noisy, "denoise-3d", device="cpu")
                two = dn.restore(noisy, "denoise-2d", axes="ZYX", device="cpu")
                per["input"].append(psnr(clean, noisy))
                per["denoise-3d"].append(psnr(clean, three))
                per["denoise-2d planes"].append(psnr(clean, two))
                per["mean of both"].append(psnr(clean, (three + two) / 2))
            row = {"step": step, "photons": peak, **{k: float(np.mean(v)) for k, v in per.items()}}
            rows.append(row)
            print(
                f"Z step {step}, {peak:g} photons: " + " ".join(f"{k} {row[k]:.2f}" for k in per),
                flush=True,
            )
    return rows


def markdown(rows: list[dict], header: str) -> str:
    lines = [
        header,
        "",
        "| Z step / pixel | photons | input | denoise-3d | denoise-2d planes | mean of both "
        "| 3D − 2D | mean − best of the two |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        best = max(r["denoise-3d"], r["denoise-2d planes"])
        lines.append(
            f"| {r['step']} | {r['photons']:g} | {r['input']:.2f} | {r['denoise-3d']:.2f} | "
            f"{r['denoise-2d planes']:.2f} | {r['mean of both']:.2f} | "
            f"{r['denoise-3d'] - r['denoise-2d planes']:+.2f} | "
            f"{r['mean of both'] - best:+.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small volumes, few conditions")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    t0 = time.perf_counter()
    rows = run(args.quick)
    header = (
        heading("Denoising anisotropic z-stacks: 3D against 2D", "anisotropy.py", argv)
        + f", {time.perf_counter() - t0:.0f} s, {machine()}. Mean PSNR dB over the held-out "
        "stacks (every s-th plane of isotropic volumes)."
    )
    publish(markdown(rows, header), args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
