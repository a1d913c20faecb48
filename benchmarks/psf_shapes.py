"""2D deconvolution with PSF shapes beyond the training family, against tuned RL and Wiener.

``deconv-2d`` learned Gaussian PSFs (at most 15 % longer along one axis) and
Airy disks. Real 2D blurs are often neither: an astigmatic or scanned PSF is
elongated at some angle, an out-of-focus lens makes a disk, drift during the
exposure a streak. This benchmark blurs scenes with a fixed set of such
PSFs (and, for reference, two of the family), adds Poisson-Gaussian noise
(read noise 1 e-) and scores every method on them.

Baselines
    Richardson-Lucy (``dn.richardson_lucy``) with its iteration count, and
    Wiener-Hunt (``dn.wiener``) with its balance, each chosen per PSF and
    photon level from a grid on *tuning* scenes (a phantom of seed 79 and a
    crop of a photo no model tests on), then applied unchanged. Neither is
    ever tuned on the scenes it is scored on.

Scenes (``--images``)
    ``test``: centre crops of the quality benchmark's test photos (camera,
    astronaut, coins, moon, chelsea, cell; no model trained on them) and
    general phantoms of seeds 71-72. ``validation``: the held-out strips of
    the deconvolution model's training photos and phantoms of seeds 81-82,
    for choosing weights or recipes without looking at the test scenes.

Usage::

    python benchmarks/psf_shapes.py --threads 1 --markdown out.md
    python benchmarks/psf_shapes.py --images validation --models deconv-2d cand.safetensors
    python benchmarks/psf_shapes.py --quick

The table gives mean PSNR (dB) against the clean scene (outputs clipped to
[0, 1]); the last columns are each model minus the better tuned classical
method.
"""

from __future__ import annotations

import argparse
import math
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
from deconv_scenes import degrade, psnr  # noqa: E402  (the same noise and score)

import napari_deconvnet as dn  # noqa: E402
from napari_deconvnet.core.phantoms import _rotated_gaussian, phantom  # noqa: E402

TEST_PHOTOS = ("camera", "astronaut", "coins", "moon", "chelsea", "cell")
TEST_SEEDS = (71, 72)
VALIDATION_SEEDS = (81, 82)
TUNING_SEED = 79
SIDE = 192
PHOTONS = (30.0, 300.0)
RL_ITERATIONS = (1, 2, 3, 5, 10, 20, 40, 80)
WIENER_BALANCES = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


def _elongated(long: float, short: float, degrees: float) -> np.ndarray:
    size = 2 * int(math.ceil(3 * long)) + 1
    k = _rotated_gaussian((long, short), math.radians(degrees), size)
    return (k / k.sum()).astype(np.float32)


def _disk(radius: float) -> np.ndarray:
    half = int(math.ceil(radius)) + 1
    r = np.arange(-half, half + 1)
    y, x = np.meshgrid(r, r, indexing="ij")
    k = (x**2 + y**2 <= radius**2).astype(np.float64)
    return (k / k.sum()).astype(np.float32)


def _streak(length: int, degrees: float) -> np.ndarray:
    half = length // 2 + 1
    k = np.zeros((2 * half + 1,) * 2)
    a = math.radians(degrees)
    for t in np.linspace(-(length - 1) / 2, (length - 1) / 2, length):
        k[half + int(round(t * math.sin(a))), half + int(round(t * math.cos(a)))] += 1
    return (k / k.sum()).astype(np.float32)


def psfs() -> dict[str, tuple[str, np.ndarray]]:
    """name -> (family, normalised PSF): two of the training family, six beyond it."""
    return {
        "Gaussian σ 2": ("trained", dn.make_psf("gaussian", sigma=2.0)),
        "Airy NA 0.8": ("trained", dn.make_psf("airy", na=0.8, wavelength=520, pixel_size=80)),
        "elongated σ 3 × 1, 30°": ("beyond", _elongated(3.0, 1.0, 30)),
        "elongated σ 2 × 1.2, 100°": ("beyond", _elongated(2.0, 1.2, 100)),
        "defocus disk r 3": ("beyond", _disk(3.0)),
        "defocus disk r 4.5": ("beyond", _disk(4.5)),
        "streak 7 px, 20°": ("beyond", _streak(7, 20)),
        "streak 13 px, 120°": ("beyond", _streak(13, 120)),
    }


def _unit(image: np.ndarray) -> np.ndarray:
    image = np.clip(np.asarray(image, np.float32), 0, None)
    return image / max(float(image.max()), 1e-6)


def _crop(image: np.ndarray, side: int) -> np.ndarray:
    top, left = [max(0, (n - side) // 2) for n in image.shape]
    return np.ascontiguousarray(image[top : top + side, left : left + side])


def _photo(name: str) -> np.ndarray:
    from skimage import color, data

    image = getattr(data, name)()
    if image.ndim == 3:
        image = color.rgb2gray(image[..., :3])
    return _unit(image)


def _phantom(seed: int, side: int) -> np.ndarray:
    kinds = (("beads", "filaments"), ("nuclei", "membranes"), ("textures", "filaments"))
    rng = np.random.default_rng(seed)
    return _unit(phantom((side, side), kinds[seed % 3], rng, mix=2))


def scenes(images: str, side: int, quick: bool) -> list[tuple[str, np.ndarray]]:
    """(name, clean scene in [0, 1]) pairs to score on."""
    if images == "test":
        photos = TEST_PHOTOS[:1] if quick else TEST_PHOTOS
        out = [(n, _crop(_photo(n), side)) for n in photos]
        seeds = TEST_SEEDS
    else:
        from train_default import VALIDATION_STRIPS, load_gray

        out = []
        for name, cut in VALIDATION_STRIPS.items():
            strip = load_gray(name)[:, -cut:]
            out.append((f"{name} (held-out strip)", _unit(_crop(strip, min(side, cut)))))
        out = out[:1] if quick else out
        seeds = VALIDATION_SEEDS
    out += [(f"phantom {s}", _phantom(s, side)) for s in (seeds[:1] if quick else seeds)]
    return out


def tuning_scenes(side: int) -> list[np.ndarray]:
    """Scenes the classical methods' parameters are chosen on (never scored)."""
    return [_phantom(TUNING_SEED, side), _crop(_photo("coffee"), side)]


def classical(method: str, noisy: np.ndarray, psf: np.ndarray, value: float) -> np.ndarray:
    if method == "richardson-lucy":
        return dn.richardson_lucy(np.clip(noisy, 0, None), psf, int(value))
    return dn.wiener(noisy, psf, value)


GRIDS = {"richardson-lucy": RL_ITERATIONS, "wiener": WIENER_BALANCES}


def tune(psf: np.ndarray, peak: float, side: int) -> dict[str, float]:
    """The grid value with the best mean PSNR on the tuning scenes, per classical method."""
    scenes_ = tuning_scenes(side)
    pairs = [(c, degrade(c, psf, peak, seed=TUNING_SEED + i)) for i, c in enumerate(scenes_)]
    best = {}
    for method, grid in GRIDS.items():
        scores = [np.mean([psnr(c, classical(method, y, psf, v)) for c, y in pairs]) for v in grid]
        best[method] = grid[int(np.argmax(scores))]
    return best


def run(images: str, models: list[str], quick: bool) -> list[dict]:
    side = 96 if quick else SIDE
    data = scenes(images, side, quick)
    table = psfs()
    if quick:
        table = {k: table[k] for k in list(table)[1:3]}
    photons = PHOTONS[:1] if quick else PHOTONS
    nets = {m: dn.load_model(m) for m in models}
    rows = []
    for pname, (family, psf) in table.items():
        for peak in photons:
            params = tune(psf, peak, side)
            per: dict[str, list[float]] = {"input": [], "richardson-lucy": [], "wiener": []}
            per.update({m: [] for m in models})
            for k, (_, clean) in enumerate(data):
                noisy = degrade(clean, psf, peak, seed=1000 + k)
                per["input"].append(psnr(clean, noisy))
                for method in GRIDS:
                    per[method].append(psnr(clean, classical(method, noisy, psf, params[method])))
                for m, net in nets.items():
                    per[m].append(psnr(clean, dn.restore(noisy, net, psf=psf, device="cpu")))
            row = {"psf": pname, "family": family, "photons": peak, "params": params}
            row.update({k: float(np.mean(v)) for k, v in per.items()})
            rows.append(row)
            print(
                f"{pname}, {peak:g} photons: "
                + " ".join(f"{k} {row[k]:.2f}" for k in per)
                + f" (RL {params['richardson-lucy']}, Wiener {params['wiener']})",
                flush=True,
            )
    return rows


def markdown(rows: list[dict], models: list[str], header: str) -> str:
    names = [model_name(m) for m in models]
    lines = [
        header,
        "",
        *model_table_head(
            "PSF | family | photons | input | RL (tuned: iterations) | Wiener (tuned: balance)",
            "|---|---|---:|---:|---:|---:|",
            names,
            "best classical",
        ),
    ]
    for r in rows:
        best = max(r["richardson-lucy"], r["wiener"])
        lines.append(
            f"| {r['psf']} | {r['family']} | {r['photons']:g} | {r['input']:.2f} | "
            f"{r['richardson-lucy']:.2f} ({r['params']['richardson-lucy']}) | "
            f"{r['wiener']:.2f} ({r['params']['wiener']:g}) | "
            + model_cells([r[m] for m in models], best)
        )
    for family in ("trained", "beyond"):
        chosen = [r for r in rows if r["family"] == family]
        if not chosen:
            continue
        means = " · ".join(
            f"{n} {np.mean([r[m] - max(r['richardson-lucy'], r['wiener']) for r in chosen]):+.2f}"
            for n, m in zip(names, models, strict=True)
        )
        lines.append(f"\nMean over the {family} PSFs, model − best classical: {means} dB.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", choices=("test", "validation"), default="test")
    parser.add_argument(
        "--models",
        nargs="+",
        default=["deconv-2d"],
        help="shipped model names or .safetensors files (each given the PSF)",
    )
    parser.add_argument("--quick", action="store_true", help="small scenes, few conditions")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    t0 = time.perf_counter()
    rows = run(args.images, args.models, args.quick)
    header = (
        heading("2D deconvolution with PSFs beyond the training family", "psf_shapes.py", argv)
        + f", {time.perf_counter() - t0:.0f} s, {machine()}. Mean PSNR dB over the "
        f"{args.images} scenes; RL and Wiener tuned on other scenes (seed {TUNING_SEED}, "
        "a coffee crop)."
    )
    publish(markdown(rows, args.models, header), args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
