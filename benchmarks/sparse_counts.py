"""Blind denoising of sparse photon counts: spots on black, as a counting detector gives them.

Single-molecule, bead and smFISH frames from a photon-counting detector (or
a camera's frame converted to photons, offset subtracted) are integers,
mostly exact zeros, with a few spots of tens to thousands of photons. A blind
denoiser must first measure the noise (``dn.estimate_noise``); where an
image has no smooth area above zero that measurement has nothing to stand
on, and a restore that takes the spots' edges for noise smooths the spots
away. This benchmark scores ``dn.restore`` with the blind denoisers on such
frames against their input and a Gaussian filter, and reports the gain the
estimate read (the truth is one photon per count).

Baseline
    A Gaussian filter (``scipy.ndimage.gaussian_filter``), its sigma chosen
    per row from :data:`FILTER_SIGMAS` on a *tuning* frame (seed
    :data:`TUNING_SEED`), never on the scored ones; sigma 0 is the input.

Frames (``core.dark_scenes.integrated_spots``)
    2D: 128² with 60 spots; 3D (``--3d``, ``denoise-3d``): 24×64×64 with 150
    spots. Spots of about the given sigma (0.8-1.2 times it) at random
    sub-pixel places, integrated over the pixels, brightest spot at the
    given photon count, on black or over a flat background of 10 % of it;
    Poisson counts, no read noise. Seeds :data:`TEST_SEEDS`.

Usage::

    python benchmarks/sparse_counts.py --threads 1 --markdown out.md
    python benchmarks/sparse_counts.py --3d --threads 1 --markdown out-3d.md
    python benchmarks/sparse_counts.py --quick

The table gives mean PSNR (dB) against the clean frame (scaled by the peak
photon count, outputs unclipped) and the model minus its input.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _machine import (  # noqa: E402
    heading,
    machine,
    model_cells,
    model_name,
    model_table_head,
    publish,
    set_threads,
)

import napari_deconvnet as dn  # noqa: E402
from napari_deconvnet.core import metrics  # noqa: E402
from napari_deconvnet.core.dark_scenes import integrated_spots  # noqa: E402

TEST_SEEDS = (61, 62, 63)
TUNING_SEED = 69
SHAPES = {2: (128, 128), 3: (24, 64, 64)}
QUICK_SHAPES = {2: (64, 64), 3: (16, 32, 32)}
SPOTS = {2: 60, 3: 150}
SIGMAS = (0.35, 0.7, 1.2)
PHOTONS = (30, 100, 300, 1000)
BACKGROUNDS = (0.0, 0.1)
FILTER_SIGMAS = (0.0, 0.5, 0.75, 1.0, 1.5)


def frame(seed: int, shape: tuple[int, ...], sigma: float, photons: float, background: float):
    """The clean frame (peak 1) and its photon counts (float32 integers)."""
    rng = np.random.default_rng([seed, int(sigma * 100), int(photons), int(background * 100)])
    spots = integrated_spots(
        rng, shape, SPOTS[len(shape)] * shape[-1] // SHAPES[len(shape)][-1], sigma
    )
    clean = background + (1 - background) * spots / spots.max()
    return clean, rng.poisson(clean * photons).astype(np.float32)


def psnr(clean: np.ndarray, counts: np.ndarray, photons: float) -> float:
    """PSNR of counts (or a restoration of them) scaled by the peak `photons`, range 1."""
    return float(metrics.psnr(counts / photons, clean, data_range=1.0))


def tuned_filter(shape, sigma, photons, background) -> float:
    clean, counts = frame(TUNING_SEED, shape, sigma, photons, background)
    scores = {
        s: psnr(clean, ndimage.gaussian_filter(counts, s) if s else counts, photons)
        for s in FILTER_SIGMAS
    }
    return max(scores, key=scores.get)


def _median_gain(gains: list[float]) -> float:
    """The median of the gains read (NaN where a model without a gain was read)."""
    known = [g for g in gains if not np.isnan(g)]
    return float(np.median(known)) if known else float("nan")


def run(models: list[str], quick: bool, ndim: int) -> list[dict]:
    shape = (QUICK_SHAPES if quick else SHAPES)[ndim]
    seeds = TEST_SEEDS[:1] if quick else TEST_SEEDS
    nets = {m: dn.load_model(m) for m in models}
    rows = []
    for background in BACKGROUNDS:
        for sigma in SIGMAS[:1] if quick else SIGMAS:
            for photons in PHOTONS[1:3] if quick else PHOTONS:
                width = tuned_filter(shape, sigma, photons, background)
                per: dict[str, list[float]] = {"input": [], "filter": [], "gain": []}
                read: list[str] = []
                per.update({m: [] for m in models})
                for seed in seeds:
                    clean, counts = frame(seed, shape, sigma, photons, background)
                    per["input"].append(psnr(clean, counts, photons))
                    smoothed = ndimage.gaussian_filter(counts, width) if width else counts
                    per["filter"].append(psnr(clean, smoothed, photons))
                    est = dn.estimate_noise(counts, impulses=False)
                    read.append(est["noise"])
                    per["gain"].append(float(est.get("gain", np.nan)))
                    for m, net in nets.items():
                        out = dn.restore(counts, net, device="cpu")
                        per[m].append(psnr(clean, out, photons))
                row = {
                    "sigma": sigma,
                    "photons": photons,
                    "background": background,
                    "width": width,
                }
                row.update(
                    {
                        k: _median_gain(v) if k == "gain" else float(np.mean(v))
                        for k, v in per.items()
                    }
                )
                row["read"] = max(set(read), key=read.count)  # the model read most often
                rows.append(row)
                print(
                    f"sigma {sigma:g}, {photons:g} photons, background {background:g}: "
                    + " ".join(f"{k} {row[k]:.3g}" for k in per)
                    + f" ({row['read']})",
                    flush=True,
                )
    return rows


def markdown(rows: list[dict], models: list[str], header: str) -> str:
    names = [model_name(m) for m in models]
    lines = [
        header,
        "",
        *model_table_head(
            "spot sigma (px) | photons | background | noise read (true: Poisson, gain 1) | "
            "input | Gaussian filter (tuned σ)",
            "|---:|---:|---:|---:|---:|---:|",
            names,
            "input",
        ),
    ]
    for r in rows:
        gain = r["read"] + ("" if np.isnan(r["gain"]) else f", gain {r['gain']:.3g}")
        lines.append(
            f"| {r['sigma']:g} | {r['photons']:g} | {r['background']:g} | {gain} | "
            f"{r['input']:.2f} | {r['filter']:.2f} ({r['width']:g}) | "
            + model_cells([r[m] for m in models], r["input"])
        )
    for background in BACKGROUNDS:
        chosen = [r for r in rows if r["background"] == background]
        if not chosen:
            continue
        where = "in the dark" if background == 0 else f"over a background of {background:g}"
        worst = " · ".join(
            f"{n} {np.mean([r[m] - r['input'] for r in chosen]):+.2f} "
            f"(worst {min(r[m] - r['input'] for r in chosen):+.2f})"
            for n, m in zip(names, models, strict=True)
        )
        lines.append(f"\nMean against the input {where}: {worst} dB.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="+", default=None, help="default denoise-2d (denoise-3d with --3d)"
    )
    parser.add_argument("--3d", dest="three_d", action="store_true", help="volumes, denoise-3d")
    parser.add_argument("--quick", action="store_true", help="small frames, few conditions")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    t0 = time.perf_counter()
    ndim = 3 if args.three_d else 2
    models = args.models or [f"denoise-{ndim}d"]
    rows = run(models, args.quick, ndim)
    header = (
        heading(f"{ndim}D blind denoising of sparse photon counts", "sparse_counts.py", argv)
        + f", {time.perf_counter() - t0:.0f} s, {machine()}. Mean PSNR dB over seeds "
        f"{', '.join(map(str, TEST_SEEDS))}; the filter's sigma tuned on seed {TUNING_SEED}; "
        "noise read: the model `dn.estimate_noise` reads most often, and its median gain."
    )
    publish(markdown(rows, models, header), args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
