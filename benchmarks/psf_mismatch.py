"""Deconvolution with a misjudged PSF: given wider or narrower than the true blur (2D, 3D).

A user's PSF is rarely exact. A Gaussian's sigma is guessed from a bead or a
formula, a theoretical PSF is narrower than the aberrated real one, a
measured one is broadened by the bead's own size. This benchmark blurs
scenes with a true PSF, adds Poisson-Gaussian noise (read noise 1 e-) and
gives every method the true PSF magnified by a factor (given width / true
width, :func:`napari_deconvnet.core.phantoms.scaled_psf`): 0.7 to 1.45.

Baselines
    Richardson-Lucy (``dn.richardson_lucy``) with its iteration count, and
    Wiener-Hunt (``dn.wiener``) with its balance, each chosen per true PSF,
    factor and photon level from a grid on *tuning* scenes, given the same
    misjudged PSF: the best a user could do who tuned them on similar data
    with the PSF they believe in. Neither is tuned on the scenes it is
    scored on (``psf_shapes.py``'s tuning scenes and scoring sets).

Scenes (``--images``)
    ``test``: centre crops of the quality benchmark's test photos and two
    general phantoms; ``validation``: the held-out strips of the
    deconvolution model's training photos and phantoms of other seeds, for
    choosing weights or recipes without looking at the test scenes.

``--3d``
    ``deconv-3d`` on 32x64x64 volumes of ``deconv_scenes.py``'s three kinds
    (beads and filaments, nuclei and membranes, the cells scenes it was
    trained on; test seed 71, validation seed 81, tuning seed 79), blurred
    by an anisotropic Gaussian (sigma 2.5/1.2/1.2 px) and a widefield PSF
    (NA 1.2 water, 100 nm pixels, 250 nm planes), each magnified along every
    axis by the factor.

Usage::

    python benchmarks/psf_mismatch.py --threads 1 --markdown out.md
    python benchmarks/psf_mismatch.py --images validation --models deconv-2d cand.safetensors
    python benchmarks/psf_mismatch.py --quick
    python benchmarks/psf_mismatch.py --3d --threads 1 --markdown out3d.md

The table gives mean PSNR (dB) against the clean scene (outputs clipped to
[0, 1]); the summary lines give each model's mean over the too-narrow,
exact and too-wide factors, and its margin over the better tuned classical
method.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "scripts"))

from _machine import (  # noqa: E402
    heading,
    machine,
    model_cells,
    model_name,
    model_table_head,
    publish,
    set_threads,
)
from deconv_scenes import SCENES, degrade, psnr, scene  # noqa: E402  (the same noise, score)
from psf_shapes import GRIDS, classical, scenes, tuning_scenes  # noqa: E402

import napari_deconvnet as dn  # noqa: E402
from napari_deconvnet.core.phantoms import scaled_psf  # noqa: E402

#: Given width over true width: a PSF believed narrower (< 1) or wider (> 1) than it is.
FACTORS = (0.7, 0.85, 1.0, 1.15, 1.3, 1.45)
PHOTONS = (30.0, 300.0, 3000.0)
SIDE = 192
#: volumes of ``--3d``, and its test, validation and tuning seeds
SHAPE_3D = (32, 64, 64)
SEEDS_3D = {"test": 71, "validation": 81, "tuning": 79}


def true_psfs(ndim: int = 2) -> dict[str, np.ndarray]:
    """The blurs the scenes get: in 2D two Gaussians and an Airy disk of the training
    family; in 3D an anisotropic Gaussian and a widefield PSF."""
    if ndim == 3:
        return {
            "Gaussian σ 2.5/1.2/1.2": dn.make_psf("gaussian", sigma=(2.5, 1.2, 1.2)),
            "widefield NA 1.2 water": dn.make_psf(
                "widefield",
                shape=(21, 15, 15),
                na=1.2,
                refractive_index=1.33,
                pixel_size=100,
                z_step=250,
            ),
        }
    return {
        "Gaussian σ 1.5": dn.make_psf("gaussian", sigma=1.5),
        "Gaussian σ 2.5": dn.make_psf("gaussian", sigma=2.5),
        "Airy NA 0.8": dn.make_psf("airy", na=0.8, wavelength=520, pixel_size=80),
    }


def volumes(split: str, quick: bool) -> list[tuple[str, np.ndarray]]:
    """(name, clean volume in [0, 1]) of each scene kind for `split` (``--3d``)."""
    shape = (32, 48, 48) if quick else SHAPE_3D
    kinds = list(SCENES)[-1:] if quick else list(SCENES)
    if split == "tuning":  # the classical methods' parameters: two kinds, never scored
        kinds = [k for k in SCENES if k != "nuclei+membranes"][: 1 if quick else 2]
    seed = SEEDS_3D[split]
    return [(f"{kind} {seed}", scene(kind, 3, seed, shape)) for kind in kinds]


def given_psf(psf: np.ndarray, factor: float) -> np.ndarray:
    """The PSF a user gives: `psf` itself at factor 1, else magnified by `factor`."""
    return np.asarray(psf, np.float32) if factor == 1.0 else scaled_psf(psf, factor)


def tune(
    psf: np.ndarray, given: np.ndarray, peak: float, tuning: list[np.ndarray]
) -> dict[str, float]:
    """Per classical method, the grid value with the best mean PSNR on the `tuning`
    scenes blurred by `psf` and deconvolved with `given`."""
    pairs = [(c, degrade(c, psf, peak, seed=500 + i)) for i, c in enumerate(tuning)]
    best = {}
    for method, grid in GRIDS.items():
        scores = [
            np.mean([psnr(c, classical(method, y, given, v)) for c, y in pairs]) for v in grid
        ]
        best[method] = grid[int(np.argmax(scores))]
    return best


def run(images: str, models: list[str], quick: bool, ndim: int = 2) -> list[dict]:
    side = 96 if quick else SIDE
    if ndim == 3:
        data = volumes(images, quick)
        tuning = [v for _, v in volumes("tuning", quick)]
    else:
        data = scenes(images, side, quick)
        tuning = tuning_scenes(side)
    table = true_psfs(ndim)
    factors, photons = FACTORS, PHOTONS
    if quick:
        table = {k: table[k] for k in list(table)[:1]}
        factors, photons = (1.0, 1.45), PHOTONS[1:2]
    nets = {m: dn.load_model(m) for m in models}
    rows = []
    for pname, psf in table.items():
        for peak in photons:
            noisy = [degrade(clean, psf, peak, seed=2000 + k) for k, (_, clean) in enumerate(data)]
            for factor in factors:
                given = given_psf(psf, factor)
                params = tune(psf, given, peak, tuning)
                per: dict[str, list[float]] = {"input": [], "richardson-lucy": [], "wiener": []}
                per.update({m: [] for m in models})
                for (_, clean), y in zip(data, noisy, strict=True):
                    per["input"].append(psnr(clean, y))
                    for method in GRIDS:
                        per[method].append(
                            psnr(clean, classical(method, y, given, params[method]))
                        )
                    for m, net in nets.items():
                        per[m].append(psnr(clean, dn.restore(y, net, psf=given, device="cpu")))
                row = {"psf": pname, "photons": peak, "factor": factor, "params": params}
                row.update({k: float(np.mean(v)) for k, v in per.items()})
                rows.append(row)
                print(
                    f"{pname}, {peak:g} photons, given ×{factor:g}: "
                    + " ".join(f"{k} {row[k]:.2f}" for k in per)
                    + f" (RL {params['richardson-lucy']}, Wiener {params['wiener']})",
                    flush=True,
                )
    return rows


def summary(rows: list[dict], models: list[str]) -> dict[str, dict[str, float]]:
    """Per model: mean PSNR and mean margin over the better classical method, for the
    too-narrow (< 1), exact (1) and too-wide (> 1) factors, and over all of them."""
    groups = {
        "narrow": [r for r in rows if r["factor"] < 1],
        "exact": [r for r in rows if r["factor"] == 1],
        "wide": [r for r in rows if r["factor"] > 1],
        "all": rows,
    }
    out: dict[str, dict[str, float]] = {}
    for m in models:
        out[m] = {}
        for g, chosen in groups.items():
            if not chosen:
                continue
            out[m][g] = float(np.mean([r[m] for r in chosen]))
            margins = [r[m] - max(r["richardson-lucy"], r["wiener"]) for r in chosen]
            out[m][f"{g} margin"] = float(np.mean(margins))
    return out


def by_factor(rows: list[dict], models: list[str], names: list[str]) -> list[str]:
    """The table's means per given width (over true PSFs and photon levels), as lines."""
    lines = [
        "| given width × | input | RL (tuned) | Wiener (tuned) | "
        + " | ".join(names)
        + " | "
        + " | ".join(f"{n} − best classical" for n in names)
        + " |",
        "|---:|---:|---:|---:|" + "---:|" * (2 * len(models)),
    ]
    for factor in sorted({r["factor"] for r in rows}):
        chosen = [r for r in rows if r["factor"] == factor]
        mean = {k: float(np.mean([r[k] for r in chosen])) for k in ("input", *GRIDS, *models)}
        margin = {
            m: float(np.mean([r[m] - max(r["richardson-lucy"], r["wiener"]) for r in chosen]))
            for m in models
        }
        lines.append(
            f"| {factor:g} | {mean['input']:.2f} | {mean['richardson-lucy']:.2f} | "
            f"{mean['wiener']:.2f} | "
            + " | ".join(f"{mean[m]:.2f}" for m in models)
            + " | "
            + " | ".join(f"{margin[m]:+.2f}" for m in models)
            + " |"
        )
    return lines


def markdown(rows: list[dict], models: list[str], header: str) -> str:
    names = [model_name(m) for m in models]
    lines = [
        header,
        "",
        *model_table_head(
            "true PSF | photons | given width × | input | RL (tuned: iterations) | "
            "Wiener (tuned: balance)",
            "|---|---:|---:|---:|---:|---:|",
            names,
            "best classical",
        ),
    ]
    for r in rows:
        best = max(r["richardson-lucy"], r["wiener"])
        lines.append(
            f"| {r['psf']} | {r['photons']:g} | {r['factor']:g} | {r['input']:.2f} | "
            f"{r['richardson-lucy']:.2f} ({r['params']['richardson-lucy']}) | "
            f"{r['wiener']:.2f} ({r['params']['wiener']:g}) | "
            + model_cells([r[m] for m in models], best)
        )
    lines += ["", *by_factor(rows, models, names)]
    means = summary(rows, models)
    lines.append("")
    for label, group in (
        ("given too narrow (× < 1)", "narrow"),
        ("exact (× 1)", "exact"),
        ("given too wide (× > 1)", "wide"),
        ("all factors", "all"),
    ):
        if group not in means[models[0]]:
            continue
        parts = [
            f"{n} {means[m][group]:.2f} ({means[m][f'{group} margin']:+.2f} over the best "
            "classical)"
            for n, m in zip(names, models, strict=True)
        ]
        lines.append(f"- Mean PSNR, {label}: " + " · ".join(parts) + " dB.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", choices=("test", "validation"), default="test")
    parser.add_argument(
        "--models",
        nargs="+",
        default=None,
        help="shipped model names or .safetensors files (each given the misjudged PSF; "
        "default: deconv-2d, or deconv-3d with --3d)",
    )
    parser.add_argument("--3d", dest="three_d", action="store_true", help="volumes, deconv-3d")
    parser.add_argument("--quick", action="store_true", help="small scenes, few conditions")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    t0 = time.perf_counter()
    ndim = 3 if args.three_d else 2
    models = args.models or [f"deconv-{ndim}d"]
    rows = run(args.images, models, args.quick, ndim)
    header = (
        heading(f"{ndim}D deconvolution with a misjudged PSF", "psf_mismatch.py", argv)
        + f", {time.perf_counter() - t0:.0f} s, {machine()}. Mean PSNR dB over the "
        f"{args.images} {'volumes' if ndim == 3 else 'scenes'}; the true PSF blurs, every "
        "method is given it magnified by the factor; RL and Wiener tuned with that PSF "
        "on other scenes."
    )
    publish(markdown(rows, models, header), args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
