"""Deconvolution from dim to bright: the network, refined to fit the data, against tuned RL.

``deconv-2d`` and ``deconv-3d`` trained at tens to a thousand photons per
pixel; brighter images come out as smooth as dim ones. ``dn.restore(...,
refine=noise)`` continues from the network's output with Richardson-Lucy
until the blurred estimate fits the data within the camera's noise
(:mod:`napari_deconvnet.core.refine`). This benchmark measures the network
alone and refined, from 100 to 1e5 photons per pixel (Poisson noise and
1 e- of read noise, the noise the refinement is told), on

- the general phantoms of ``deconv_scenes.py`` (beads and filaments; nuclei
  and membranes) and, in 2D, the spots and filaments in the dark of
  ``dark_scenes.py``;
- 2D: a Gaussian (sigma 2) and an Airy PSF (NA 0.8); 3D (``--3d``): a
  Gaussian twice as long along Z (sigma 2/1/1).

Baselines, each on the same images:
    Richardson-Lucy with its iteration count chosen from 5 to 320 on a
    validation scene (another seed, the same kind, PSF and photons), and
    Richardson-Lucy from a flat start stopped by the same rule as the
    refinement (the discrepancy principle with the true noise; at most 200
    iterations), a classical method that needs no tuning.

Test seeds 71-72 (general phantoms) and 91-92 (dark scenes), validation
seeds 79 and 97; no training script uses them.

Usage::

    python benchmarks/refine.py --threads 1 --markdown out.md
    python benchmarks/refine.py --3d --threads 1 --markdown out-3d.md
    python benchmarks/refine.py --quick
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import dark_scenes  # noqa: E402
import deconv_scenes  # noqa: E402
from _machine import heading, machine, publish, set_threads  # noqa: E402

import napari_deconvnet as dn  # noqa: E402
from napari_deconvnet.core.refine import REFINE_ITERATIONS  # noqa: E402

PHOTONS = (100.0, 1000.0, 1e4, 1e5)
RL_ITERATIONS = (5, 10, 20, 40, 80, 160, 320)
READ_NOISE = 1.0
SHAPES = {2: (192, 192), 3: (32, 96, 96)}
QUICK_SHAPES = {2: (96, 96), 3: (24, 64, 64)}


def noise_of(peak: float) -> dict:
    """The noise :func:`deconv_scenes.degrade` adds, in the images' units."""
    return {"noise": "poisson-gaussian", "gain": peak, "offset": 0.0, "read_noise": READ_NOISE}


def psfs(ndim: int) -> dict[str, np.ndarray]:
    if ndim == 3:
        return {
            "Gaussian σ 2/1/1": dn.make_psf("gaussian", shape=(13, 9, 9), sigma=(2.0, 1.0, 1.0))
        }
    return deconv_scenes.psfs(2)


def scenes(ndim: int, shape: tuple[int, ...], quick: bool) -> dict[str, tuple]:
    """kind -> (test scenes, validation scene)."""
    out = {}
    kinds = ("beads+filaments", "nuclei+membranes")
    for kind in kinds[:1] if quick else kinds:
        tests = [deconv_scenes.scene(kind, ndim, s, shape) for s in deconv_scenes.TEST_SEEDS]
        val = deconv_scenes.scene(kind, ndim, deconv_scenes.VALIDATION_SEED, shape)
        out[kind] = (tests[:1] if quick else tests, val)
    if ndim == 2 and not quick:
        for kind in ("spots, many", "filaments"):
            tests = [dark_scenes.scene(kind, s, 0.0, shape) for s in dark_scenes.TEST_SEEDS[:2]]
            val = dark_scenes.scene(kind, dark_scenes.VALIDATION_SEEDS[0], 0.0, shape)
            out[f"{kind} (dark)"] = (tests, val)
    return out


def rl(noisy: np.ndarray, psf: np.ndarray, iterations: int, **kw) -> np.ndarray:
    return dn.richardson_lucy(np.clip(noisy, 0, None), psf, iterations, **kw)


def run(ndim: int, quick: bool, model: str) -> list[dict]:
    shape = (QUICK_SHAPES if quick else SHAPES)[ndim]
    table = psfs(ndim)
    if quick:
        table = dict(list(table.items())[:1])
    rows = []
    for kind, (tests, val) in scenes(ndim, shape, quick).items():
        for pname, psf in table.items():
            for peak in PHOTONS[1::2] if quick else PHOTONS:
                noise = noise_of(peak)
                noisy_val = deconv_scenes.degrade(val, psf, peak, seed=7)
                best = max(
                    RL_ITERATIONS,
                    key=lambda n: deconv_scenes.psnr(val, rl(noisy_val, psf, n)),
                )
                per: dict[str, list[float]] = {
                    "input": [],
                    "rl": [],
                    "rl_stop": [],
                    "net": [],
                    "refined": [],
                }
                for i, clean in enumerate(tests):
                    noisy = deconv_scenes.degrade(clean, psf, peak, seed=100 + i)
                    out = dn.restore(noisy, model, psf=psf)
                    refined = dn.restore(noisy, model, psf=psf, refine=noise)
                    stopped = rl(noisy, psf, REFINE_ITERATIONS, noise=noise)
                    for key, image in (
                        ("input", noisy),
                        ("rl", rl(noisy, psf, best)),
                        ("rl_stop", stopped),
                        ("net", out),
                        ("refined", refined),
                    ):
                        per[key].append(deconv_scenes.psnr(clean, image))
                row = {"scene": kind, "psf": pname, "photons": peak, "iterations": best}
                row.update({k: float(np.mean(v)) for k, v in per.items()})
                rows.append(row)
                print(
                    f"{ndim}D {kind}, {pname}, {peak:g}: "
                    + " ".join(f"{k} {row[k]:.2f}" for k in per)
                    + f" (RL {best})",
                    flush=True,
                )
    return rows


def markdown(rows: list[dict], model: str, header: str) -> str:
    lines = [
        header,
        "",
        f"| scene | PSF | photons | input | RL (tuned: iterations) | RL, stopped at the noise "
        f"| {model} | {model}, refined | refined − {model} | refined − RL |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scene']} | {r['psf']} | {r['photons']:g} | {r['input']:.2f} | "
            f"{r['rl']:.2f} ({r['iterations']}) | {r['rl_stop']:.2f} | {r['net']:.2f} | "
            f"{r['refined']:.2f} | {r['refined'] - r['net']:+.2f} | "
            f"{r['refined'] - r['rl']:+.2f} |"
        )
    lines.append("")
    for peak in PHOTONS:
        chosen = [r for r in rows if r["photons"] == peak]
        if chosen:
            mean = {k: np.mean([r[k] for r in chosen]) for k in ("rl", "net", "refined")}
            lines.append(
                f"- {peak:g} photons: RL {mean['rl']:.2f} · {model} {mean['net']:.2f} · "
                f"refined {mean['refined']:.2f} dB "
                f"(refined − RL {mean['refined'] - mean['rl']:+.2f})"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--3d", dest="three", action="store_true", help="volumes, deconv-3d")
    parser.add_argument("--quick", action="store_true", help="small scenes, few conditions")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    ndim = 3 if args.three else 2
    model = f"deconv-{ndim}d"
    t0 = time.perf_counter()
    rows = run(ndim, args.quick, model)
    header = (
        heading(f"{ndim}D deconvolution from dim to bright, refined", "refine.py", argv)
        + f", {time.perf_counter() - t0:.0f} s, {machine()}. Mean PSNR dB over the test "
        "scenes; RL's iterations chosen on a validation scene; noise: Poisson with 1 e- of "
        "read noise, told to the refinement and to the stopped RL."
    )
    publish(markdown(rows, model, header), args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
