"""A dim scene beside a few very bright objects: does the restoration spoil the scene?

Fluorescence images often hold a handful of beads, a dividing cell or a
speck of debris tens to hundreds of times brighter than everything else.
``dn.restore`` normalises by the image's 0.5th and 99.5th percentiles, so
the scene then spans a few hundredths of the network's range and the
objects lie at or above 1. A network trained only on scenes that fill the
range restores such an image far worse than the same scene alone
(2026-12-03, shipped ``denoise-2d``, objects 100 times brighter: 37.2 dB
around them against 42.2 dB for the same scene and noise without them).
Since then ``dn.restore`` restores such images in two ranges
(:mod:`napari_deconvnet.core.dynamic_range`); the *one pass* column is the
restore as it was before (that module switched off), *shipped* the restore
as it is.

For each condition and seed, the scene is restored twice: with the objects,
and alone with its own noise draw of the same seed. The table gives the
PSNR of the scene around the objects (pixels 3 or more from where an object
exceeds 1e-3 of its peak; data range 1, the scene's level), with and without
the objects, and the difference (the *spoil*: 0 is a restoration that does
not care about the objects), and the PSNR of the objects themselves (their
pixels, data range = their contrast). Baselines: the input itself
(denoising) or 30 Richardson-Lucy iterations with the true PSF
(deconvolution), whose spoil is 0 by construction up to the noise draw, as
they are linear or scale with the image.

Held out from training: the scenes are scikit-image's ``cell`` and
``camera`` (test images that no training sees) and this file's own tissue
generator (discs on a smooth background); the objects are this file's own
beads and discs (not :func:`napari_deconvnet.core.phantoms.bright_objects`),
at contrasts 10 to 300, with seeds 0..n-1 of their own stream. With
``--3d``: ``denoise-3d`` and ``deconv-3d`` on 24×96×96 volumes of this
file's own generator (cells flattened along Z), beads with half their
extent along Z, 50 photons at the scene's level.

Usage::

    python benchmarks/bright_objects.py --threads 1
    python benchmarks/bright_objects.py --weights denoise-2d=new.safetensors \\
        --weights deconv-2d=new-deconv.safetensors      # shipped vs given weights
    python benchmarks/bright_objects.py --3d --threads 1
    python benchmarks/bright_objects.py --quick
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _machine import heading, machine, publish, set_threads  # noqa: E402

import napari_deconvnet as dn  # noqa: E402

SCENES = ("cell", "camera", "tissue")
#: The scene of the 3D models (``--3d``): 24×96×96 volumes of this file's own generator.
SCENES_3D = ("tissue-3d",)
CONTRASTS = (10.0, 30.0, 100.0, 300.0)
#: (model, condition label, PSF parameters or None, noise, its parameters)
CONDITIONS = (
    ("denoise-2d", "poisson 20", None, "poisson", {"peak": 20.0}),
    ("denoise-2d", "poisson 200", None, "poisson", {"peak": 200.0}),
    ("denoise-2d", "gaussian 0.05", None, "gaussian", {"sigma": 0.05}),
    (
        "deconv-2d",
        "gaussian psf 1.5, poisson 100",
        {"kind": "gaussian", "sigma": 1.5},
        "poisson",
        {"peak": 100.0},
    ),
    (
        "deconv-2d",
        "airy psf, poisson 1000",
        {"kind": "airy", "na": 1.2, "pixel_size": 80, "refractive_index": 1.518},
        "poisson",
        {"peak": 1000.0},
    ),
)
#: 3D: the volumes of :data:`SCENES_3D`, 50 photons at the scene's level.
CONDITIONS_3D = (
    ("denoise-3d", "poisson 50", None, "poisson", {"peak": 50.0}),
    (
        "deconv-3d",
        "gaussian psf 2/1.2/1.2, poisson 50",
        {"kind": "gaussian", "sigma": (2.0, 1.2, 1.2)},
        "poisson",
        {"peak": 50.0},
    ),
)
SIZE = 192
SHAPE_3D = (24, 96, 96)


def scene(name: str, rng: np.random.Generator) -> np.ndarray:
    """A 192² scene (24×96×96 for ``tissue-3d``) whose 99.5th percentile is 1 (dim 0.05 floor)."""
    if name == "tissue-3d":  # cells flattened along Z (coarser sampling), smooth background
        field = ndimage.gaussian_filter(rng.random(SHAPE_3D), 6)
        image = 0.3 * (field - field.min()) / np.ptp(field)
        zz, yy, xx = np.indices(SHAPE_3D)
        for _ in range(12):
            (cz, cy, cx), r = [rng.uniform(0, n) for n in SHAPE_3D], rng.uniform(4, 10)
            inside = ((zz - cz) / 0.5) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
            image += rng.uniform(0.3, 0.8) * inside
        image = ndimage.gaussian_filter(image, 1.0)
    elif name == "tissue":
        field = ndimage.gaussian_filter(rng.random((SIZE, SIZE)), 8)
        image = 0.3 * (field - field.min()) / np.ptp(field)
        yy, xx = np.mgrid[:SIZE, :SIZE]
        for _ in range(18):
            cy, cx, r = rng.uniform(0, SIZE, 2).tolist() + [rng.uniform(5, 15)]
            image += rng.uniform(0.3, 0.8) * (((yy - cy) ** 2 + (xx - cx) ** 2) < r * r)
        image = ndimage.gaussian_filter(image, 1.0)
    else:
        from skimage import data

        full = getattr(data, name)().astype(np.float64)
        y, x = rng.integers(0, full.shape[0] - SIZE), rng.integers(0, full.shape[1] - SIZE)
        image = full[y : y + SIZE, x : x + SIZE]
        image = image - image.min()
    image = image / np.percentile(image, 99.5)
    return (0.05 + 0.95 * np.clip(image, 0, None)).astype(np.float64)


def objects(rng: np.random.Generator, contrast: float, shape=(SIZE, SIZE)) -> np.ndarray:
    """Four to ten beads (Gaussian, sigma 1-2) and small discs (radius 3-6), peak `contrast`.

    In 3D (`shape` of three sizes) the same, with half the extent along Z."""
    out = np.zeros(shape)
    grid = np.indices(shape)
    stretch = (2.0, 1.0, 1.0)[-len(shape) :] if len(shape) == 3 else (1.0, 1.0)
    for _ in range(int(rng.integers(4, 11))):
        centre = [rng.uniform(min(8, n // 4), n - min(8, n // 4)) for n in shape]
        r2 = sum(((g - c) * k) ** 2 for g, c, k in zip(grid, centre, stretch, strict=True))
        if rng.random() < 0.7:
            part = np.exp(-0.5 * r2 / rng.uniform(1.0, 2.0) ** 2)
        else:
            part = ndimage.gaussian_filter((r2 < rng.uniform(3, 6) ** 2).astype(float), 0.7)
        out = np.maximum(out, rng.uniform(0.5, 1.0) * part / part.max())
    return contrast * out / out.max()


def degrade(clean, psf, noise, params, seed):
    blurred = clean if psf is None else ndimage.convolve(clean, psf, mode="reflect")
    rng = np.random.default_rng(seed)
    if noise == "poisson":
        return (rng.poisson(blurred * params["peak"]) / params["peak"]).astype(np.float32)
    return (blurred + rng.normal(0, params["sigma"], blurred.shape)).astype(np.float32)


def _psnr(a, b, mask, data_range):
    mse = float(np.mean((np.asarray(a, np.float64)[mask] - b[mask]) ** 2))
    return 10 * np.log10(data_range**2 / max(mse, 1e-20))


def _restore(image, net, one_pass: bool, precision: str, kw: dict) -> np.ndarray:
    """``dn.restore``; with `one_pass`, as before the two ranges (``core.dynamic_range``)."""
    from napari_deconvnet.core import restoration

    found = restoration.scene_range
    if one_pass:
        restoration.scene_range = lambda *args, **kwargs: None
    try:
        return dn.restore(image, net, precision=precision, **kw)
    finally:
        restoration.scene_range = found


def measure(conditions, scenes, contrasts, seeds, weights, precision) -> list[dict]:
    rows = []
    for model, label, psf_spec, noise, params in conditions:
        psf = None if psf_spec is None else dn.make_psf(**psf_spec)
        kw = {} if psf is None else {"psf": psf}
        variants = {"one pass": model, "shipped": model}
        if model in weights:
            variants["given"] = dn.load_model(weights[model])
        for contrast in contrasts:
            for name in scenes:
                acc: dict[str, list] = {}
                for seed in range(seeds):
                    index = (SCENES + SCENES_3D).index(name)
                    rng = np.random.default_rng([seed, index, int(contrast)])
                    base = scene(name, rng)
                    obj = objects(rng, contrast, base.shape)
                    around = ndimage.distance_transform_edt(obj < 1e-3 * contrast) >= 3
                    on = obj > 0.25 * contrast
                    noisy = degrade(base + obj, psf, noise, params, seed)
                    alone = degrade(base, psf, noise, params, seed)
                    if psf is None:
                        ref, ref_alone = noisy, alone
                    else:
                        ref = dn.richardson_lucy(noisy, psf, iterations=30)
                        ref_alone = dn.richardson_lucy(alone, psf, iterations=30)
                    values = {
                        "baseline": _psnr(ref, base + obj, around, 1.0),
                        "baseline alone": _psnr(ref_alone, base, around, 1.0),
                        "baseline objects": _psnr(ref, base + obj, on, contrast),
                    }
                    for key, net in variants.items():
                        out = _restore(noisy, net, key == "one pass", precision, kw)
                        out_alone = _restore(alone, net, key == "one pass", precision, kw)
                        values[key] = _psnr(out, base + obj, around, 1.0)
                        values[key + " alone"] = _psnr(out_alone, base, around, 1.0)
                        values[key + " objects"] = _psnr(out, base + obj, on, contrast)
                    for key, v in values.items():
                        acc.setdefault(key, []).append(v)
                rows.append(
                    {
                        "model": model,
                        "condition": label,
                        "contrast": contrast,
                        "scene": name,
                        **{k: float(np.mean(v)) for k, v in acc.items()},
                        "worst spoil": {
                            key: float(min(np.subtract(acc[key], acc[key + " alone"])))
                            for key in variants
                        },
                    }
                )
                print(f"{model} {label} x{contrast:g} {name}: done", file=sys.stderr, flush=True)
    return rows


def report(rows: list[dict], baseline_names: dict[str, str]) -> str:
    variants = [k for k in ("one pass", "shipped", "given") if any(k in r for r in rows)]
    head = ["model", "condition", "contrast", "scene", "baseline: around / spoil / objects"]
    head += [f"{v}: around / spoil (worst) / objects" for v in variants]
    lines = ["| " + " | ".join(head) + " |", "|---|---|---:|---|" + "---:|" * (1 + len(variants))]
    for r in rows:
        cells = [r["model"], r["condition"], f"{r['contrast']:g}", r["scene"]]
        cells.append(
            f"{baseline_names[r['model']]} {r['baseline']:.2f} / "
            f"{r['baseline'] - r['baseline alone']:+.2f} / {r['baseline objects']:.2f}"
        )
        for v in variants:
            if v not in r:
                cells.append("—")
                continue
            cells.append(
                f"{r[v]:.2f} / {r[v] - r[v + ' alone']:+.2f} ({r['worst spoil'][v]:+.2f}) / "
                f"{r[v + ' objects']:.2f}"
            )
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for v in variants:
        spoils = [r[v] - r[v + " alone"] for r in rows if v in r]
        gains = [r[v] - r["baseline"] for r in rows if v in r]
        lines.append(
            f"- {v}: mean spoil {np.mean(spoils):+.2f} dB (worst row {min(spoils):+.2f}); "
            f"around the objects {np.mean(gains):+.2f} dB over the baseline on average "
            f"(worst row {min(gains):+.2f})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["denoise-2d", "deconv-2d"])
    parser.add_argument("--scenes", nargs="+", default=list(SCENES), choices=list(SCENES))
    parser.add_argument("--contrasts", nargs="+", type=float, default=list(CONTRASTS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--weights",
        action="append",
        default=[],
        metavar="MODEL=PATH",
        help="also restore with these weights for that model (a 'given' column)",
    )
    parser.add_argument("--precision", default="float32", choices=("float32", "auto"))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--3d",
        dest="three_d",
        action="store_true",
        help="the 3D models (denoise-3d, deconv-3d) on this file's volumes instead",
    )
    parser.add_argument("--quick", action="store_true", help="one scene, contrast 100, 1 seed")
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    weights = dict(w.split("=", 1) for w in args.weights)
    table = CONDITIONS
    if args.three_d:
        table, args.scenes = CONDITIONS_3D, list(SCENES_3D)
        if args.models == parser.get_default("models"):
            args.models = ["denoise-3d", "deconv-3d"]
    if args.quick:
        args.scenes, args.contrasts, args.seeds = args.scenes[-1:], [100.0], 1
    conditions = [c for c in table if c[0] in args.models]
    if args.quick:
        conditions = [next(c for c in conditions if c[0] == m) for m in args.models]
    rows = measure(conditions, args.scenes, args.contrasts, args.seeds, weights, args.precision)
    given = ", ".join(f"{m}: {p}" for m, p in weights.items()) or "none"
    text = "\n\n".join(
        [
            heading("A dim scene beside very bright objects", "bright_objects.py", argv),
            machine() + f"; precision {args.precision}; seeds 0-{args.seeds - 1}; "
            f"given weights: {given}. PSNR in dB: *around* = the scene 3+ pixels from the "
            "objects (range 1), *spoil* = around minus the same scene restored without "
            "the objects, *objects* = their own pixels (range = contrast)",
            report(rows, {m: "input" if "denoise" in m else "RL-30" for m in args.models}),
        ]
    )
    publish(text, args.markdown, "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
