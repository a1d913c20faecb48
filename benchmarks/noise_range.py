"""Denoisers across the noise range: from nearly clean to far past their training.

The blind denoisers are trained on Gaussian noise of sigma 5-50/255 and on
2-1000 photons. Users also hand them nearly clean images (a good camera, a
bright sample) and very dark ones. A denoiser that blurs a nearly clean image
makes it worse than doing nothing; this benchmark measures where that
happens, against two named baselines:

noisy
    Doing nothing (the input as it is). A denoiser below it hurts.
BM3D (true noise)
    The ``bm3d`` package given the true sigma, or for photon noise sigma 1
    after the generalised Anscombe transform of the known counts and read
    noise (``benchmarks/quality.py``'s code), for speckle (``--noises
    speckle``: multiplicative Gaussian noise) in the log domain with the true
    relative sigma: an oracle's budget, beside our blind models. Plane by
    plane in 3D.

Scenes (2D): 192² centre crops of two benchmark photographs that no
training sees (camera, astronaut in grey); the package's general phantoms
(:func:`napari_deconvnet.core.phantoms.phantom`, one of each of nuclei,
membranes, filaments+beads); cells scenes (:func:`~napari_deconvnet.core.
phantoms.cells_2d`). 3D: ``cells_3d`` and general phantoms, 24×96×96.
Seeds 71-73: neither the training scripts' streams nor their validation's;
no recipe or checkpoint is chosen on them.

Usage::

    python benchmarks/noise_range.py --threads 1 --models denoise-2d cand.safetensors
    python benchmarks/noise_range.py --dims 3 --models-3d denoise-3d denoise-2d
    python benchmarks/noise_range.py --quick

PSNR (dB) against the clean scene, every output clipped to [0, 1], mean over
the scenes of a kind; the last columns are each model minus the better of
*noisy* and *BM3D*. Models run as ``dn.restore`` runs them (the shipped
denoisers with their light-noise guard, :mod:`napari_deconvnet.core.light_noise`);
``--unguarded`` adds each without it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import quality  # noqa: E402  (noise models, BM3D with the Anscombe transform)
from sharp_scenes import bm3d, label, run_and_report, scene_options  # noqa: E402

import napari_deconvnet as dn  # noqa: E402
from napari_deconvnet.core.phantoms import cells_2d, cells_3d, phantom  # noqa: E402

SIGMAS = (1, 2, 5, 10, 25, 50, 75)  # /255
PHOTONS = (2, 10, 100, 1000, 10000)
SPECKLES = (3, 5, 10, 20)  # multiplicative noise: standard deviation, % of the intensity
COUNTS = (1, 2, 5, 10, 20, 100)  # pure photon counts (no read noise): photons at the peak
NOISE_KINDS = ("gaussian", "poisson", "speckle", "counts")
GENERAL_KINDS = ("nuclei", "membranes", ("filaments", "beads"))


def noises(quick: bool, kinds: Sequence[str] = ("gaussian", "poisson")) -> list[quality.Task]:
    sigmas, photons = ((1, 25), (10, 10000)) if quick else (SIGMAS, PHOTONS)
    speckles = (10,) if quick else SPECKLES
    out = []
    if "gaussian" in kinds:
        out += [
            quality.Task(f"gaussian-{s}", "any", "denoise", "gaussian", {"sigma": s / 255})
            for s in sigmas
        ]
    if "poisson" in kinds:
        out += [
            quality.Task(
                f"poisson-{p}",
                "any",
                "denoise",
                "poisson-gaussian",
                {"peak": float(p), "read_noise": 1.0},
            )
            for p in photons
        ]
    if "counts" in kinds:  # read noise 0: counts on a lattice, mostly zeros at a few photons
        out += [
            quality.Task(
                f"counts-{p}",
                "any",
                "denoise",
                "poisson-gaussian",
                {"peak": float(p), "read_noise": 0.0},
            )
            for p in ((2,) if quick else COUNTS)
        ]
    if "speckle" in kinds:
        out += [
            quality.Task(f"speckle-{s}%", "any", "denoise", "speckle", {"sigma": s / 100})
            for s in speckles
        ]
    return out


#: log-domain BM3D: intensities below this are raised to it before the log
SPECKLE_FLOOR = 1e-3


def baseline_bm3d(task: quality.Task, noisy: np.ndarray) -> np.ndarray:
    """BM3D with the true noise; for speckle in the log domain (homomorphic).

    Multiplicative noise ``x (1 + sigma n)`` becomes nearly additive noise of
    standard deviation ``sigma`` after a logarithm; BM3D removes it there,
    given ``sigma``, and the exponential maps back. Planes in 3D.
    """
    if task.noise != "speckle":
        return bm3d(task, noisy)
    logged = np.log(np.maximum(noisy, SPECKLE_FLOOR)).astype(np.float32)
    planes = logged if logged.ndim == 3 else logged[None]
    out = [dn.denoise_bm3d(p, sigma=task.params["sigma"]) for p in planes]
    out = np.exp(np.stack(out) if logged.ndim == 3 else out[0])
    return out.astype(np.float32)


def _unit(image: np.ndarray) -> np.ndarray:
    """In [0, 1] with the top at 1 (phantoms put their 99.5th percentile at 1)."""
    image = np.clip(image, 0, None)
    return (image / max(float(image.max()), 1e-12)).astype(np.float32)


def scenes(ndim: int, kind: str, seeds: list[int], size: int, depth: int) -> list[np.ndarray]:
    """The clean scenes of one kind."""
    if kind == "photos":
        from skimage import color, data

        out = []
        for image in (data.camera(), color.rgb2gray(data.astronaut())):
            image = np.asarray(image, np.float32)
            image = image / 255 if image.max() > 1 else image
            h, w = image.shape
            y, x = (h - size) // 2, (w - size) // 2
            out.append(image[y : y + size, x : x + size].copy())
        return out
    shape = (size, size) if ndim == 2 else (depth, size, size)
    if kind == "general":
        return [
            _unit(phantom(shape, kinds, seed, mix=None if isinstance(kinds, str) else 2))
            for seed, kinds in zip(seeds, GENERAL_KINDS, strict=False)
        ]
    rng_of = np.random.default_rng
    if ndim == 2:
        return [_unit(cells_2d(rng_of(seed), size)) for seed in seeds]
    return [_unit(cells_3d(rng_of(seed), shape)) for seed in seeds]


def run(args: argparse.Namespace) -> dict:
    results: dict = {"settings": {k: str(v) for k, v in vars(args).items()}}
    for ndim in args.dims:
        names = args.models if ndim == 2 else args.models_3d
        models = {label(m): (dn.load_model(m), None) for m in names}
        if args.unguarded:  # the same models without the light-noise guard
            models.update({f"{k} (unguarded)": (v[0], False) for k, v in list(models.items())})
        kinds = [k for k in args.scenes if not (ndim == 3 and k == "photos")]
        columns = ["noisy", *(["BM3D (true noise)"] if args.bm3d else []), *models]
        rows = {}
        for kind in kinds:
            cleans = scenes(ndim, kind, args.seeds, args.size, args.depth)
            for task in noises(args.quick, args.noises):
                per: dict[str, list] = {c: [] for c in columns}
                for i, clean in enumerate(cleans):
                    noisy = quality.add_noise(task, clean, [71, i])
                    per["noisy"].append(dn.psnr(clean, np.clip(noisy, 0, 1), data_range=1))
                    if args.bm3d:
                        out = np.clip(baseline_bm3d(task, noisy), 0, 1)
                        per["BM3D (true noise)"].append(dn.psnr(clean, out, data_range=1))
                    for name, (net, guard) in models.items():
                        axes = "ZYX" if ndim == 3 else None
                        out = dn.restore(
                            noisy,
                            net,
                            axes=axes,
                            precision=args.precision,
                            light_noise_guard=guard,
                        )
                        per[name].append(dn.psnr(clean, np.clip(out, 0, 1), data_range=1))
                key = f"{kind} / {task.name}"
                rows[key] = {c: float(np.mean(v)) for c, v in per.items()}
                print(
                    f"{ndim}D {key}: " + " ".join(f"{c} {v:.2f}" for c, v in rows[key].items()),
                    flush=True,
                )
        results[f"{ndim}d"] = {"columns": columns, "models": list(models), "rows": rows}
    return results


def markdown(results: dict, header: str) -> str:
    lines = [header, ""]
    for key in ("2d", "3d"):
        if key not in results:
            continue
        part = results[key]
        cols, models = part["columns"], part["models"]
        baselines = [c for c in cols if c not in models]
        lines += [f"**{key.upper()}** (PSNR dB, mean over the scenes of a kind)", ""]
        extra = [f"{m} − best baseline" for m in models]
        lines.append("| scenes / noise | " + " | ".join(cols + extra) + " |")
        lines.append("|---|" + "---:|" * (len(cols) + len(extra)))
        for row, values in part["rows"].items():
            best = max(values[c] for c in cols)
            cells = [
                f"**{values[c]:.2f}**" if values[c] == best else f"{values[c]:.2f}" for c in cols
            ]
            floor = max(values[c] for c in baselines)
            cells += [f"{values[m] - floor:+.2f}" for m in models]
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    scene_options(parser, [71, 72, 73])
    parser.add_argument("--scenes", nargs="+", default=["photos", "general", "cells"])
    parser.add_argument(
        "--unguarded",
        action="store_true",
        help="also each model without the light-noise guard (core.light_noise)",
    )
    parser.add_argument("--quick", action="store_true", help="two noises, small scenes")
    parser.add_argument(
        "--noises",
        nargs="+",
        choices=NOISE_KINDS,
        default=["gaussian", "poisson"],
        help="noise kinds (rows): gaussian (sigma 1-75/255), poisson (2-10000 photons, read "
        "noise 1), speckle (multiplicative, 3-20%% of the intensity), counts (1-100 photons, "
        "no read noise)",
    )
    args = parser.parse_args(argv)
    return run_and_report(
        args, argv, run, markdown, "Denoisers across the noise range", "noise_range.py"
    )


if __name__ == "__main__":
    sys.exit(main())
