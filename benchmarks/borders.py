"""Deconvolution of images blurred otherwise than a camera's frame at their borders: before
and after 2026-12-05.

``scipy.signal.fftconvolve(x, psf, mode="same")`` (and ``convolve2d``'s
default fill, ``ndimage.convolve(mode="constant")``) blur as if the scene were
zero beyond the frame: the image dims toward every side. FFTs without
padding (``ndimage.convolve(mode="wrap")``) blur periodically: each side
gets the opposite one's light. The restore extended sides by their mirror
image and the deconvolution models sharpened both into artefacts. Now such
sides are found and the image is extended there as it was blurred
(``core.borders``; ``dn.restore(..., borders="auto")``, the default).

Four ways of blurring each scene: **zero** (fftconvolve, "same"), **wrap**
(periodic), **mirror** (``dn.synthesize``'s blur: the scene mirrored at the
borders, as the benchmark's tasks) and **crop** (a field larger by the PSF's
size blurred, then cropped: what a camera records). Only *zero* and *wrap*
should change. Columns: PSNR dB against the clean scene (mean over the
scenes), the restore before (``borders="mirror"``) and now, sides taken as
dark or periodic (of all), and now's time over before's (same process,
alternating).

Images: ``--images validation`` (default): scikit-image's bundled images
that no benchmark tests on (brick, grass, gravel, rocket, page, text, horse,
clock, immunohistochemistry, hubble_deep_field, retina, coffee; 256² crops,
gray) and four cells phantoms; ``--images test``: the quality benchmark's
photos (camera, astronaut, coins, moon, chelsea, cell) and four other cells
phantoms. ``--3d``: `deconv-3d` on 32x96x96 phantom volumes (nuclei,
filaments, beads, membranes) with anisotropic Gaussian and widefield PSFs.
Noise: Gaussian 0.01 and 0.03 of the range on photos, Poisson at 100 photons
on phantoms.

``--offset 1`` adds a camera offset of once the scene's range after the blur
(darkness beyond a zero-padded blur is then that level: found by
``core.borders.dark_level``).

    python benchmarks/borders.py [--quick] [--threads 1] [--images test] [--3d] [--offset 1]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _machine import heading, machine, publish, set_threads
from scipy.signal import fftconvolve

import napari_deconvnet as dn
from napari_deconvnet.core import phantoms
from napari_deconvnet.core.borders import find_borders

VALIDATION = (
    "brick grass gravel rocket page text horse clock immunohistochemistry "
    "hubble_deep_field retina coffee"
).split()
TEST = ("camera", "astronaut", "coins", "moon", "chelsea", "cell")
PSFS_2D = {
    "gaussian 1": {"kind": "gaussian", "sigma": 1.0},
    "gaussian 2": {"kind": "gaussian", "sigma": 2.0},
    "gaussian 3.5": {"kind": "gaussian", "sigma": 3.5},
    "airy": {"kind": "airy"},
}
PSFS_3D = {
    "gaussian z 2x": {"kind": "gaussian", "sigma": (3.0, 1.5, 1.5)},
    "widefield": {"kind": "widefield", "shape": (15, 21, 21)},
}
MODES = ("zero", "wrap", "mirror", "crop")


def photo(name: str, size: int) -> np.ndarray:
    from skimage import data, img_as_float

    image = img_as_float(getattr(data, name)())
    if image.ndim == 3:
        image = image[..., :3].mean(-1)
    return image[:size, :size].astype(np.float64)


def scenes(which: str, size: int, three_d: bool) -> list[tuple[str, np.ndarray, str]]:
    """(name, clean scene, noise) for each scene."""
    if three_d:
        seeds = range(20, 24) if which == "validation" else range(40, 44)
        kinds = ("nuclei", "filaments", "beads", "membranes")
        return [
            (f"{k} {s}", phantoms.phantom((32, size, size), k, s).astype(np.float64), "poisson")
            for k, s in zip(kinds, seeds, strict=True)
        ]
    names = VALIDATION if which == "validation" else TEST
    out = [
        (n, photo(n, size), noise) for n in names for noise in ("gaussian 0.01", "gaussian 0.03")
    ]
    seeds = range(4) if which == "validation" else range(10, 14)
    out += [
        (f"cells {s}", phantoms.cells_2d(np.random.default_rng(s), size), "poisson") for s in seeds
    ]
    return out


def blurred(clean: np.ndarray, psf: np.ndarray, mode: str) -> np.ndarray:
    if mode == "zero":
        return fftconvolve(clean, psf, mode="same")
    if mode == "wrap":
        from scipy import ndimage

        return ndimage.convolve(clean, psf, mode="wrap")
    if mode == "mirror":
        return np.asarray(dn.synthesize(clean, "none", psf=psf), np.float64)
    pad = [(s, s) for s in psf.shape]
    big = np.pad(clean, pad, mode="reflect")
    return fftconvolve(big, psf, mode="same")[tuple(slice(s, -s) for s in psf.shape)]


def noisy(image: np.ndarray, noise: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if noise == "poisson":
        return (rng.poisson(np.clip(image, 0, None) * 100) / 100).astype(np.float32)
    sigma = float(noise.split()[1])
    return (image + rng.normal(0, sigma, image.shape)).astype(np.float32)


def measure(args: argparse.Namespace) -> list[dict]:
    model = "deconv-3d" if args.three_d else "deconv-2d"
    psfs = PSFS_3D if args.three_d else PSFS_2D
    cases = scenes(args.images, args.size, args.three_d)
    if args.quick:
        cases, psfs = cases[:1], dict(list(psfs.items())[1:2])
    rows = []
    for psf_name, spec in psfs.items():
        psf = dn.make_psf(
            spec["kind"],
            spec.get("shape"),
            **{k: v for k, v in spec.items() if k not in ("kind", "shape")},
        )
        for mode in args.modes:
            scores = {"input": [], "before": [], "now": []}
            times = {"before": 0.0, "now": 0.0}
            sides = found = 0
            for i, (_, clean, noise) in enumerate(cases):
                r = float(clean.max() - clean.min())
                # a camera's offset (--offset, in units of the scene's range) after the blur
                y = noisy(blurred(clean, psf, mode), noise, 1000 + i) + np.float32(args.offset * r)
                dark, periodic, _ = find_borders(y[None], psf)
                found += sum(2 if p else sum(d) for p, d in zip(periodic, dark, strict=True))
                sides += 2 * clean.ndim
                scores["input"].append(float(dn.psnr(clean, y - args.offset * r, data_range=r)))
                for key, flag in (
                    (("before", "mirror"), ("now", "auto"))
                    if i % 2
                    else (("now", "auto"), ("before", "mirror"))
                ):
                    t = time.perf_counter()
                    out = dn.restore(y, model, psf=psf, precision="float32", borders=flag)
                    times[key] += time.perf_counter() - t
                    out = out - np.float32(args.offset * r)
                    scores[key].append(float(dn.psnr(clean, out, data_range=r)))
            row = {"psf": psf_name, "mode": mode, "n": len(cases), "sides": f"{found}/{sides}"}
            row |= {k: float(np.mean(v)) for k, v in scores.items()}
            row["worst"] = float(np.min(np.subtract(scores["now"], scores["before"])))
            row["time"] = times["now"] / times["before"]
            rows.append(row)
            print(row, flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one scene, one PSF (a smoke test)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--images", choices=("validation", "test"), default="validation")
    parser.add_argument("--3d", dest="three_d", action="store_true", help="deconv-3d on volumes")
    parser.add_argument("--size", type=int, default=None, help="scene side (256; 96 in 3D)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    parser.add_argument(
        "--offset",
        type=float,
        default=0.0,
        help="a camera offset added after the blur and the noise, in units of the scene's "
        "range (darkness beyond a zero-padded blur is then that level, not zero)",
    )
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    args = parser.parse_args(argv)
    args.size = args.size or (96 if args.three_d else 256)
    if args.quick:
        args.size = 48 if args.three_d else 96
    set_threads(args.threads)
    start = time.perf_counter()
    rows = measure(args)
    model = "deconv-3d" if args.three_d else "deconv-2d"
    lines = [
        heading(
            "Deconvolution of images blurred otherwise at their borders",
            "borders.py",
            argv,
        )
        + f", {time.perf_counter() - start:.0f} s",
        "",
        f"{machine()}; `{model}`, float32, {args.images} scenes"
        + (f", offset {args.offset:g} x the range" if args.offset else "")
        + "; PSNR dB (mean)",
        "",
        "| PSF | blur | scenes | input | before | now | now − before | worst scene "
        "| sides found | time now / before |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['psf']} | {r['mode']} | {r['n']} | {r['input']:.2f} | {r['before']:.2f} "
            f"| {r['now']:.2f} | {r['now'] - r['before']:+.2f} | {r['worst']:+.2f} | {r['sides']} "
            f"| {r['time']:.2f} |"
        )
    publish("\n".join(lines), args.out, "\n")


if __name__ == "__main__":
    main()
