"""Deconvolution with a measured PSF that still holds the camera's background.

A microscopist measures the PSF by imaging a sub-resolution bead and cropping
around it. Off the camera, that crop sits on the camera's offset (100 ADU on
most sCMOS cameras) with its noise: summed over the crop, the flat floor can
outweigh the bead, and the PSF normalised with it blurs far more than the
microscope. Restore now finds such a floor (``core.psf.psf_pedestal``: the
crop's border, level and weighing at least 2% of the sum) and removes it
(``remove_pedestal``), saying so.

This benchmark blurs held-out scenes (the quality benchmark's test photos
and phantoms; ``deconv_scenes.py``'s 3D kinds at test seed 71) with a true
PSF, adds Poisson-Gaussian noise (300 photons, read noise 1 e-) and gives
each method three PSFs: the exact one; the bead's crop as the camera gives
it (Poisson counts of offset + peak x PSF, plus read noise 1.5 ADU) with the
background check off, as before ("before"); and the same crop now
("now"). Richardson-Lucy's iteration count is tuned with the exact PSF on
``psf_shapes.py``'s tuning scenes (2D; 3D: 40 iterations, fixed) and kept
for the other two columns.

``--choose-cut`` is how the noise cut of ``remove_pedestal`` was chosen: on
validation scenes (``psf_shapes.py``'s validation strips, 3D seed 81) and
other beads, Richardson-Lucy's PSNR loss against the exact PSF for the dim
beads with each candidate (a plain cut at 3 deviations of the crop's noise,
or the crop smoothed by a 1-pixel Gaussian cut at 3, 4 or 5 deviations of
the smoothed noise); the best mean wins, the smaller cut on a tie (0.01 dB).

Usage::

    python benchmarks/psf_background.py --threads 1 --markdown out.md
    python benchmarks/psf_background.py --quick
    python benchmarks/psf_background.py --choose-cut --threads 1

The table gives mean PSNR (dB) against the clean scenes (outputs clipped to
[0, 1]).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "scripts"))

from _machine import machine, report, set_threads  # noqa: E402
from deconv_scenes import SCENES, degrade, psnr, scene  # noqa: E402  (the same noise, score)
from psf_shapes import scenes, tune  # noqa: E402

import napari_deconvnet as dn  # noqa: E402
from napari_deconvnet.core import psf as psf_module  # noqa: E402

PEAK = 300.0  # photons at the scenes' brightest point
#: (name, camera offset, bead peak above it): a bright bead on an sCMOS offset,
#: a dim one, and a CCD's larger offset
BEADS = (("bright bead, offset 100", 100.0, 3000.0), ("dim bead, offset 100", 100.0, 300.0),
         ("bead, offset 400", 400.0, 1000.0))  # fmt: skip
READ_NOISE_ADU = 1.5
SEED = 5  # the beads' noise
RL_3D = 40


def psfs(ndim: int) -> dict[str, np.ndarray]:
    """True PSFs in crops as a user would cut them around a bead."""
    if ndim == 2:
        return {
            "Gaussian σ 1.5": dn.make_psf("gaussian", (25, 25), sigma=1.5),
            "Gaussian σ 2.5": dn.make_psf("gaussian", (31, 31), sigma=2.5),
            "Airy NA 0.8": dn.make_psf("airy", (25, 25), na=0.8, pixel_size=80),
        }
    return {"Gaussian σ 2.5/1.2/1.2": dn.make_psf("gaussian", (21, 17, 17), sigma=(2.5, 1.2, 1.2))}


def bead_crop(psf: np.ndarray, offset: float, peak: float, seed: int) -> np.ndarray:
    """The bead's image as the camera gives it: offset, shot noise, read noise."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(offset + peak * psf / psf.max()).astype(np.float64)
    return counts + rng.normal(0.0, READ_NOISE_ADU, psf.shape)


@contextlib.contextmanager
def background_check_off() -> Iterator[None]:
    """Restore as before the background check (no pedestal is ever found)."""
    saved = psf_module.PEDESTAL_MIN_MASS
    psf_module.PEDESTAL_MIN_MASS = float("inf")
    try:
        yield
    finally:
        psf_module.PEDESTAL_MIN_MASS = saved


def mean_psnr(clean_set: list, noisy: list, fn: object, kernel: np.ndarray) -> float:
    """Mean PSNR of `fn(noisy, kernel)` over the scenes."""
    return float(np.mean([psnr(c, fn(y, kernel)) for c, y in zip(clean_set, noisy, strict=True)]))


def methods(ndim: int, psf: np.ndarray, iterations: int | None = None) -> dict[str, object]:
    """The deconvolution model and Richardson-Lucy (tuned with the exact PSF in 2D)."""
    model = "deconv-2d" if ndim == 2 else "deconv-3d"
    if iterations is None:
        iterations = int(tune(psf, PEAK, 128)["richardson-lucy"]) if ndim == 2 else RL_3D
    return {
        model: lambda y, k: dn.restore(y, model, psf=k),
        f"RL ({iterations} it.)": lambda y, k: dn.richardson_lucy(
            np.clip(y, 0, None), k, iterations
        ),
    }


def run(quick: bool) -> list[dict]:
    import warnings

    rows = []
    sets = {
        2: [c for _, c in scenes("test", 192, quick)],
        3: [scene(kind, 3, 71, (32, 64, 64)) for kind in list(SCENES)[: 1 if quick else 3]],
    }
    for ndim in (2, 3):
        clean_set = sets[ndim]
        noisy_sets = {}
        for name, true_psf in psfs(ndim).items():
            noisy = [degrade(c, true_psf, PEAK, seed=100 + i) for i, c in enumerate(clean_set)]
            noisy_sets[name] = noisy
            for method, fn in methods(ndim, true_psf).items():
                exact = mean_psnr(clean_set, noisy, fn, true_psf)
                for bead, offset, peak in BEADS[:1] if quick else BEADS:
                    crop = bead_crop(true_psf, offset, peak, SEED)
                    with background_check_off():
                        before = mean_psnr(clean_set, noisy, fn, crop)
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        now = mean_psnr(clean_set, noisy, fn, crop)
                    said = any("flat background" in str(w.message) for w in caught)
                    rows.append(dict(ndim=ndim, psf=name, method=method, bead=bead,
                                     exact=exact, before=before, now=now, said=said))  # fmt: skip
                    print(f"{ndim}D {name} {method} {bead}: exact {exact:.2f} before "
                          f"{before:.2f} now {now:.2f}", file=sys.stderr)  # fmt: skip
    return rows


#: (label, smoothing sigma, cut in deviations): the candidates of --choose-cut
CUTS = (("plain, 3", 0.0, 3.0), ("smoothed, 3", 1.0, 3.0), ("smoothed, 4", 1.0, 4.0),
        ("smoothed, 5", 1.0, 5.0))  # fmt: skip


@contextlib.contextmanager
def cut(smoothing: float, deviations: float) -> Iterator[None]:
    saved = psf_module.PEDESTAL_SMOOTHING, psf_module.PEDESTAL_NOISE_CUT
    psf_module.PEDESTAL_SMOOTHING, psf_module.PEDESTAL_NOISE_CUT = smoothing, deviations
    try:
        yield
    finally:
        psf_module.PEDESTAL_SMOOTHING, psf_module.PEDESTAL_NOISE_CUT = saved


def choose_cut() -> str:
    """Richardson-Lucy's loss against the exact PSF per candidate cut (validation)."""
    import warnings

    sets = {
        2: [c for _, c in scenes("validation", 192, False)][:4],
        3: [scene(kind, 3, 81, (32, 64, 64)) for kind in SCENES],
    }
    lines = ["| scenes | true PSF | bead crop | " + " | ".join(c[0] for c in CUTS) + " |",
             "|---|---|---|" + "---:|" * len(CUTS)]  # fmt: skip
    losses: dict[str, list[float]] = {c[0]: [] for c in CUTS}
    for ndim, clean_set in sets.items():
        for name, true_psf in psfs(ndim).items():
            iterations = RL_3D if ndim == 3 else int(tune(true_psf, PEAK, 128)["richardson-lucy"])
            noisy = [degrade(c, true_psf, PEAK, seed=200 + i) for i, c in enumerate(clean_set)]

            rl = methods(ndim, true_psf, iterations)[f"RL ({iterations} it.)"]

            def score(kernel: np.ndarray, clean_set=clean_set, noisy=noisy, rl=rl) -> float:
                return mean_psnr(clean_set, noisy, rl, kernel)

            exact = score(true_psf)
            for bead, offset, peak in BEADS[1:]:
                crop = bead_crop(true_psf, offset, peak, SEED + 11)
                row = []
                for label, smoothing, deviations in CUTS:
                    with cut(smoothing, deviations), warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        losses[label].append(score(crop) - exact)
                    row.append(f"{losses[label][-1]:+.2f}")
                lines.append(f"| {ndim}D | {name} | {bead} | " + " | ".join(row) + " |")
    means = {label: float(np.mean(v)) for label, v in losses.items()}
    lines.append("| mean | | | " + " | ".join(f"{means[c[0]]:+.2f}" for c in CUTS) + " |")
    best = max(means.values())
    # the first candidate within 0.01 dB of the best: the smaller cut of a tie
    chosen = next(c for c in CUTS if means[c[0]] >= best - 0.01)
    return (
        "\n".join(lines) + f"\n\nChosen: {chosen[0]} (smoothing {chosen[1]:g} px, "
        f"{chosen[2]:g} deviations)."
    )


def table(rows: list[dict]) -> str:
    lines = [
        "| scenes | true PSF | bead crop | method | exact PSF | crop, before | crop, now | "
        "now − before | now − exact | warned |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['ndim']}D | {r['psf']} | {r['bead']} | {r['method']} | {r['exact']:.2f} | "
            f"{r['before']:.2f} | **{r['now']:.2f}** | {r['now'] - r['before']:+.2f} | "
            f"{r['now'] - r['exact']:+.2f} | {'yes' if r['said'] else 'no'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one scene and bead per PSF")
    parser.add_argument("--choose-cut", action="store_true", help="the cut's choice (validation)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    start = time.perf_counter()
    script = "psf_background.py"
    if args.choose_cut:
        caption = (
            f"Machine: {machine()}. Richardson-Lucy's PSNR with the dim beads' crops minus "
            "with the exact PSF (dB), per candidate cut."
        )
        title = "The background cut, chosen on validation scenes"
        report(title, script, argv, caption, choose_cut(), args.markdown)
        return 0
    rows = run(args.quick)
    caption = (
        f"Machine: {machine()}; {time.perf_counter() - start:.0f} s. Scenes at {PEAK:g} "
        f"photons (read noise 1 e-); bead crops: Poisson counts of offset + peak × PSF, "
        f"read noise {READ_NOISE_ADU} ADU. PSNR in dB, mean over the scenes."
    )
    report("A measured PSF with its background", script, argv, caption, table(rows), args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
