"""2D deconvolution of objects in the dark (beads, spots, thin filaments), against tuned RL.

A bead slide, single molecules or an smFISH field has no background once
the camera's offset is subtracted: sparse objects on black. Richardson-Lucy
serves such images well (its estimate stays positive, and the black stays
black), and the deconvolution network was trained on scenes with a dim
background. This benchmark blurs such scenes, with and without a flat
background of 10 % of the peak for comparison, adds Poisson-Gaussian noise
(read noise 1 e-, ``deconv_scenes.degrade``) and scores each model against
the input and Richardson-Lucy.

Baseline
    Richardson-Lucy (``dn.richardson_lucy``), its iteration count chosen per
    PSF, photon level and background from :data:`RL_ITERATIONS` on *tuning*
    scenes (seed :data:`TUNING_SEED`, one of each kind), never on the scored
    ones.

Scenes (``--images``), 128² (``--3d``: 24×64×64), maximum 1, each of its own seed
    ``spots, few`` (12 spots; 30 in 3D) and ``spots, many`` (150; 300):
    Gaussian spots of sigma 0.3-1.0 pixel at random sub-pixel places,
    integrated over the pixels (``core.dark_scenes.integrated_spots``);
    ``filaments``: 3 to 6 straight segments of sigma 0.5 pixel. ``test``: seeds :data:`TEST_SEEDS`;
    ``validation``: :data:`VALIDATION_SEEDS`, for choosing weights or recipes.

Usage::

    python benchmarks/dark_scenes.py --threads 1 --markdown out.md
    python benchmarks/dark_scenes.py --images validation --models deconv-2d cand.safetensors
    python benchmarks/dark_scenes.py --3d --threads 1 --markdown out-3d.md
    python benchmarks/dark_scenes.py --quick

The table gives mean PSNR (dB) against the clean scene (outputs clipped to
[0, 1]) and each model minus tuned RL.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

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
from deconv_scenes import degrade, psnr  # noqa: E402  (the same noise and score)

import napari_deconvnet as dn  # noqa: E402
from napari_deconvnet.core.dark_scenes import integrated_spots  # noqa: E402

TEST_SEEDS = (91, 92, 93, 94, 95, 96)
VALIDATION_SEEDS = (97, 98)
TUNING_SEED = 99
#: Scene shapes (``--3d``: volumes of 24 planes)
SHAPES = {2: (128, 128), 3: (24, 64, 64)}
QUICK_SHAPES = {2: (64, 64), 3: (16, 48, 48)}
KINDS = ("spots, few", "spots, many", "filaments")
#: Spots of the two spot kinds per scene of :data:`SHAPES` (fewer in a smaller one)
SPOTS = {2: (12, 150), 3: (30, 300)}
BACKGROUNDS = (0.0, 0.1)
PHOTONS = {2: (100.0, 1000.0), 3: (50.0, 500.0)}
RL_ITERATIONS = (5, 10, 20, 40, 80, 160)


def psfs(ndim: int = 2) -> dict[str, np.ndarray]:
    """2D: a Gaussian (sigma 1.5) and an Airy disk (first zero 3 pixels); 3D: a
    Gaussian twice as long along Z (sigma 2, 1, 1) and the quality benchmark's
    widefield PSF (NA 1.2 water, 100 nm pixels)."""
    if ndim == 3:
        widefield = dn.make_psf(
            "widefield",
            shape=(15, 15, 15),
            wavelength=520.0,
            na=1.2,
            refractive_index=1.33,
            pixel_size=100.0,
        )
        return {
            "Gaussian σ 2/1/1": dn.make_psf("gaussian", shape=(13, 9, 9), sigma=(2.0, 1.0, 1.0)),
            "widefield NA 1.2": np.asarray(widefield, np.float32),
        }
    pixel = 0.61 * 520 / 1.0 / 3.0
    airy = dn.make_psf("airy", shape=(15, 15), wavelength=520.0, na=1.0, pixel_size=pixel)
    return {
        "Gaussian σ 1.5": dn.make_psf("gaussian", shape=(13, 13), sigma=1.5),
        "Airy, zero at 3 px": np.asarray(airy, np.float32),
    }


def scene(kind: str, seed: int, background: float, shape: tuple[int, ...]) -> np.ndarray:
    """One scene of `kind` in the dark (or over a flat `background`), maximum 1."""
    from scipy import ndimage
    from skimage.draw import line_nd

    ndim = len(shape)
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    if kind.startswith("spots"):
        count = SPOTS[ndim][0 if kind.endswith("few") else 1]
        count = max(2, round(count * np.prod(shape) / np.prod(SHAPES[ndim])))
        objects = integrated_spots(rng, shape, count, rng.uniform(0.3, 1.0))
    else:
        objects = np.zeros(shape)
        for _ in range(int(rng.integers(3, 7))):
            ends = [rng.uniform(0, np.array(shape) - 1) for _ in range(2)]
            line = line_nd(ends[0], ends[1], endpoint=True)
            objects[line] = np.maximum(objects[line], rng.uniform(0.3, 1.0))
        objects = ndimage.gaussian_filter(objects, 0.5)
    objects = objects / objects.max()
    return (background + (1 - background) * objects).astype(np.float32)


def tune(psf: np.ndarray, peak: float, background: float, shape: tuple[int, ...]) -> int:
    """RL's iteration count with the best mean PSNR on the tuning scenes."""
    pairs = []
    for k, kind in enumerate(KINDS):
        clean = scene(kind, TUNING_SEED, background, shape)
        pairs.append((clean, degrade(clean, psf, peak, seed=TUNING_SEED * 10 + k)))
    scores = [
        np.mean([psnr(c, dn.richardson_lucy(np.clip(y, 0, None), psf, n)) for c, y in pairs])
        for n in RL_ITERATIONS
    ]
    return RL_ITERATIONS[int(np.argmax(scores))]


def run(images: str, models: list[str], quick: bool, ndim: int = 2) -> list[dict]:
    shape = (QUICK_SHAPES if quick else SHAPES)[ndim]
    seeds = (TEST_SEEDS if images == "test" else VALIDATION_SEEDS)[: 1 if quick else None]
    table = psfs(ndim)
    if quick:
        table = dict(list(table.items())[:1])
    nets = {m: dn.load_model(m) for m in models}
    rows = []
    for pname, psf in table.items():
        for peak in PHOTONS[ndim][:1] if quick else PHOTONS[ndim]:
            for background in BACKGROUNDS:
                iterations = tune(psf, peak, background, shape)
                for kind in KINDS:
                    per: dict[str, list[float]] = {"input": [], "richardson-lucy": []}
                    per.update({m: [] for m in models})
                    for seed in seeds:
                        clean = scene(kind, seed, background, shape)
                        noisy = degrade(clean, psf, peak, seed=seed)
                        per["input"].append(psnr(clean, noisy))
                        rl = dn.richardson_lucy(np.clip(noisy, 0, None), psf, iterations)
                        per["richardson-lucy"].append(psnr(clean, rl))
                        for m, net in nets.items():
                            out = dn.restore(noisy, net, psf=psf, device="cpu")
                            per[m].append(psnr(clean, out))
                    row = {
                        "psf": pname,
                        "photons": peak,
                        "background": background,
                        "kind": kind,
                        "iterations": iterations,
                    }
                    row.update({k: float(np.mean(v)) for k, v in per.items()})
                    rows.append(row)
                    print(
                        f"{kind}, {pname}, {peak:g} photons, background {background:g}: "
                        + " ".join(f"{k} {row[k]:.2f}" for k in per)
                        + f" (RL {iterations})",
                        flush=True,
                    )
    return rows


def markdown(rows: list[dict], models: list[str], header: str) -> str:
    names = [model_name(m) for m in models]
    lines = [
        header,
        "",
        *model_table_head(
            "scene | PSF | photons | background | input | RL (tuned: iterations)",
            "|---|---|---:|---:|---:|---:|",
            names,
            "RL",
        ),
    ]
    for r in rows:
        lines.append(
            f"| {r['kind']} | {r['psf']} | {r['photons']:g} | {r['background']:g} | "
            f"{r['input']:.2f} | {r['richardson-lucy']:.2f} ({r['iterations']}) | "
            + model_cells([r[m] for m in models], r["richardson-lucy"])
        )
    for background in BACKGROUNDS:
        chosen = [r for r in rows if r["background"] == background]
        if not chosen:
            continue
        means = " · ".join(
            f"{n} {np.mean([r[m] for r in chosen]):.2f} "
            f"({np.mean([r[m] - r['richardson-lucy'] for r in chosen]):+.2f} vs RL)"
            for n, m in zip(names, models, strict=True)
        )
        rl = np.mean([r["richardson-lucy"] for r in chosen])
        where = "in the dark" if background == 0 else f"over a background of {background:g}"
        lines.append(f"\nMean {where}: RL {rl:.2f} · {means} dB.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", choices=("test", "validation"), default="test")
    parser.add_argument(
        "--models",
        nargs="+",
        default=None,
        help="shipped model names or .safetensors files (each given the PSF); "
        "default deconv-2d (deconv-3d with --3d)",
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
        heading(f"{ndim}D deconvolution of objects in the dark", "dark_scenes.py", argv)
        + f", {time.perf_counter() - t0:.0f} s, {machine()}. Mean PSNR dB over the "
        f"{args.images} scenes; RL tuned on other scenes (seed {TUNING_SEED})."
    )
    publish(markdown(rows, models, header), args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
