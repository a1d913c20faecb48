"""Deconvolution off the training scenes: the shipped models on general phantoms, against RL.

``deconv-2d`` and ``deconv-3d`` were trained on the package's cells scenes
(:func:`napari_deconvnet.core.phantoms.cells_2d` / ``cells_3d``: smooth blobs
and filaments on a background) and, in 2D, photographs. Microscopists also
deconvolve beads, thin filaments, nuclei and membranes on a dark background.
This benchmark restores scenes of the general generator
(:func:`napari_deconvnet.core.phantoms.phantom`) and, for reference, the cells
scenes the models know, blurred by PSFs of several families and degraded by
Poisson-Gaussian noise (read noise 1 e-).

Baselines
    Richardson-Lucy (``dn.richardson_lucy``) with its iteration count chosen
    from 5, 10, 20, 40 and 80 on *validation* scenes (other seeds, the same
    kind, PSF and photon level), then applied to the test scenes: a tuned
    classical method, never tuned on a test scene. Wiener-Hunt
    (``dn.wiener``) with the balance it estimates from the image.

Scenes
    Test seeds 71-72, validation seed 79 (``numpy.random.default_rng``),
    neither used by any training script. 2D scenes 192², volumes 48×96×96.

Usage::

    python benchmarks/deconv_scenes.py --threads 1 --markdown out.md
    python benchmarks/deconv_scenes.py --dims 2 --quick

The table gives mean PSNR (dB) against the clean scene (outputs clipped to
[0, 1]) and ours minus tuned RL.
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
from napari_deconvnet.core.phantoms import cells_2d, cells_3d, phantom  # noqa: E402

#: Scene kinds: the general generator's structures, and the cells scenes trained on
SCENES = {
    "beads+filaments": ("beads", "filaments"),
    "nuclei+membranes": ("nuclei", "membranes"),
    "cells (trained on)": None,
}
TEST_SEEDS = (71, 72)
VALIDATION_SEED = 79
RL_ITERATIONS = (5, 10, 20, 40, 80)
PHOTONS = (30.0, 1000.0)
SHAPES = {2: (192, 192), 3: (48, 96, 96)}


def psfs(ndim: int) -> dict[str, np.ndarray]:
    """The PSF families of each dimension (normalised arrays)."""
    if ndim == 2:
        return {
            "Gaussian σ 2": dn.make_psf("gaussian", sigma=2.0),
            "Airy NA 0.8": dn.make_psf("airy", na=0.8, wavelength=520, pixel_size=80),
        }
    return {
        "Gaussian σ 3/1.2/1.2": dn.make_psf("gaussian", sigma=(3.0, 1.2, 1.2)),
        "Gaussian σ 1.5": dn.make_psf("gaussian", sigma=(1.5, 1.5, 1.5)),
        "widefield NA 1.4 oil": dn.make_psf(
            "widefield",
            shape=(31, 21, 21),
            na=1.4,
            refractive_index=1.518,
            pixel_size=100,
            z_step=300,
        ),
    }


def scene(kind: str, ndim: int, seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """One clean scene in [0, 1]."""
    rng = np.random.default_rng(seed)
    structures = SCENES[kind]
    if structures is None:
        clean = cells_2d(rng, shape[0]) if ndim == 2 else cells_3d(rng, shape)
    else:
        clean = phantom(shape, structures, rng, mix=2)
    clean = np.clip(clean, 0, None)
    return (clean / max(float(clean.max()), 1e-6)).astype(np.float32)


def degrade(clean: np.ndarray, psf: np.ndarray, peak: float, seed: int) -> np.ndarray:
    noisy = dn.synthesize(clean, "poisson-gaussian", psf=psf, peak=peak, read_noise=1.0, seed=seed)
    return np.asarray(noisy, np.float32)


def psnr(clean: np.ndarray, out: np.ndarray) -> float:
    return float(dn.psnr(clean, np.clip(out, 0, 1), data_range=1))


def rl(noisy: np.ndarray, psf: np.ndarray, iterations: int) -> np.ndarray:
    return dn.richardson_lucy(np.clip(noisy, 0, None), psf, iterations)


def run(
    ndim: int, quick: bool, model: str | None = None, seeds: tuple[int, ...] = TEST_SEEDS
) -> list[dict]:
    """One row per (scene kind, PSF, photons): mean PSNR of each method over the test scenes."""
    model = model or f"deconv-{ndim}d"
    shape = SHAPES[ndim] if not quick else ((96, 96) if ndim == 2 else (40, 64, 64))
    seeds = seeds[:1] if quick else seeds
    kinds = list(SCENES)[:1] + list(SCENES)[-1:] if quick else list(SCENES)
    psf_set = psfs(ndim)
    if quick:
        psf_set = dict(list(psf_set.items())[:1])
    photons = PHOTONS[:1] if quick else PHOTONS
    rows = []
    for kind in kinds:
        tests = [scene(kind, ndim, s, shape) for s in seeds]
        validation = scene(kind, ndim, VALIDATION_SEED, shape)
        for pname, psf in psf_set.items():
            for peak in photons:
                noisy_val = degrade(validation, psf, peak, seed=VALIDATION_SEED)
                scores = {n: psnr(validation, rl(noisy_val, psf, n)) for n in RL_ITERATIONS}
                best_n = max(scores, key=scores.get)
                row = {"scene": kind, "psf": pname, "photons": peak, "rl_iterations": best_n}
                row["model"] = str(model)
                per = {"ours": [], "RL (tuned)": [], "Wiener": [], "input": []}
                for seed, clean in zip(seeds, tests, strict=True):
                    noisy = degrade(clean, psf, peak, seed=seed)
                    per["input"].append(psnr(clean, noisy))
                    per["ours"].append(psnr(clean, dn.restore(noisy, model, psf=psf)))
                    per["RL (tuned)"].append(psnr(clean, rl(noisy, psf, best_n)))
                    per["Wiener"].append(psnr(clean, dn.wiener(noisy, psf)))
                row.update({k: float(np.mean(v)) for k, v in per.items()})
                rows.append(row)
                print(
                    f"{ndim}D {kind}, {pname}, {peak:g} photons: "
                    + " ".join(f"{k} {row[k]:.2f}" for k in per)
                    + f" (RL {best_n} iterations)",
                    flush=True,
                )
    return rows


def markdown(rows_by_dim: dict[int, list[dict]], header: str) -> str:
    lines = [header, ""]
    for ndim, rows in rows_by_dim.items():
        lines += [
            f"**{ndim}D** (`{rows[0].get('model', f'deconv-{ndim}d')}`)" if rows else "",
            "",
            "| scene | PSF | photons | input | Wiener | RL (tuned: iterations) | ours | "
            "ours − RL |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            lines.append(
                f"| {r['scene']} | {r['psf']} | {r['photons']:g} | {r['input']:.2f} | "
                f"{r['Wiener']:.2f} | {r['RL (tuned)']:.2f} ({r['rl_iterations']}) | "
                f"{r['ours']:.2f} | {r['ours'] - r['RL (tuned)']:+.2f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 3], choices=(2, 3))
    parser.add_argument("--quick", action="store_true", help="small scenes, few conditions")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument(
        "--model",
        help="a .safetensors file (a candidate) in place of the shipped deconv-Nd; "
        "with one of --dims",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=list(TEST_SEEDS),
        help=f"test scenes' seeds (default {' '.join(map(str, TEST_SEEDS))}): other seeds "
        "check that the table holds off its own scenes",
    )
    args = parser.parse_args(argv)
    if VALIDATION_SEED in args.seeds:
        parser.error(f"seed {VALIDATION_SEED} is the validation scene's (RL's iterations)")
    if args.model and len(args.dims) != 1:
        parser.error("--model restores one dimensionality: give --dims 2 or --dims 3")
    set_threads(args.threads)
    t0 = time.perf_counter()
    seeds = tuple(args.seeds)
    rows = {ndim: run(ndim, args.quick, args.model, seeds) for ndim in args.dims}
    header = (
        heading("Deconvolution off the training scenes", "deconv_scenes.py", argv)
        + f", {time.perf_counter() - t0:.0f} s, "
        f"{machine()}. Mean PSNR dB over test seeds {', '.join(map(str, seeds))}; "
        f"RL's iterations chosen on validation seed {VALIDATION_SEED}."
    )
    publish(markdown(rows, header), args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
