"""Gaussian noise with impulses on top: the blind denoiser against medians and model chains.

Impulses (pixels set to the image's minimum or maximum: dead or saturated
pixels, transmission errors) often come with ordinary noise. The blind
denoisers were trained without them; restore replaces them first
(:mod:`napari_deconvnet.core.impulse_switch`). Named baselines:

3x3 median
    ``scipy.ndimage.median_filter(noisy, 3)``.
salt-and-pepper -> default
    The two shipped models in a chain: the ``salt-and-pepper`` model
    (impulses only replaced), then ``denoise-2d`` with the switch off.
default, switch off
    ``dn.restore(noisy, impulse_switch=False)``: what restore did before.

Scenes: 256² crops of the camera photo and a cells scene (seed 5); noise
seeds 1 (Gaussian) and 2 (impulses). PSNR (dB) against the clean scene,
every output clipped to [0, 1].

``--hot``: a few impulses, far below salt-and-pepper rates, where each model
that restore switches for meets them. Hot pixels in camera units (50
photons, gain 2 ADU per electron, read noise 1.5 e-, offset 100, hot pixels
saturated at 4000 ADU; scored after mapping 100-200 ADU to 0-1) through
``denoise-2d``; impulses at 1.5 on a blurred image (Gaussian PSF sigma 2,
300 photons) through ``deconv-2d``. Named baselines: ``3x3 median ->
model`` (the image median-filtered first), ``switch off``, and ``no
impulses`` (the same image without them: the ceiling).

``--hot-values``: hot pixels of any value, as dark current makes them (each
raised by 0.5 to 10 times the scene's range, so that only the brightest is
the image's maximum), in the same two set-ups. Columns as ``--hot`` plus
``extremes only``: the switch as it was before outliers of other values
counted (``find_outliers`` answering None).

``--choose``: the outlier test's two constants (``OUTLIER_SPREAD``,
``OUTLIER_NOISE`` of ``core.impulse_switch``) on validation scenes that no
table here uses (cells of seeds 11 and 12 and the blurred filaments sample
of seed 31, with hot pixels of any value; and bead scenes blurred by a
Gaussian of sigma 0.4-0.6 pixel at 10-100 photons, sampled coarser than
Nyquist, where every outlier found is a bead taken for a hot pixel).

``--choose-halo``: the halo test (``HALO_NOISE`` and ``HALO_FALL`` of
``core.impulse_switch``: an outlier whose nearest neighbours stand above the
pixels around them, more than its diagonal ones, is a point-like object, not
a hot pixel) on the same validation scenes, plus bead
scenes with the beads centred on pixels (sigma 0.4-0.6 pixel, 100 and 1000
photons, with and without a background), where the peak pixel stands
furthest above its neighbours.

``--beads``: bead scenes without hot pixels, held out: 400 spots of sigma
0.3, 0.35 and 0.4 pixel at random sub-pixel places, integrated over the
pixels (a low-magnification objective on a large-pixel camera), seeds 40-43,
512², at 30, 300 and 1000 photons and at 100 and 1000 photons over a
background of 5 with read noise 1.5, through ``denoise-2d``: how many scenes
had beads taken for hot pixels before the halo test (none, centred or
off-centre) and now, the pixels replaced, and the mean PSNR (with the switch
off, before, now). ``--bead-size`` and ``--bead-count`` set the scenes' side
and spots: a smaller field holds fewer pixels, so fewer mistaken spots pass
the outlier count's 0.01%.

``--dense``: dense impulses (30% and 50%, with and without Gaussian noise of
0.02) on the same scenes, with the column ``default, one pass``: the switch
as it was before it asked the kept extreme pixels again
(``core.impulse_switch.SWITCH_PASSES`` empty).

``--choose-dense``: ``SWITCH_PASSES`` on validation scenes no table uses
(general phantoms of seeds 11 and 12, a cells scene of seed 13, each also
with its bright structures saturated, the phantoms also with their dim
background clipped at 0): the switching median's PSNR after 1 to 4 passes,
per impulse share, and as chosen (``SWITCH_PASSES``, and in the passes after
the first, extreme pixels with no more neighbours at their own extreme than
salt-and-pepper of that density gives: ``lone``). A pass can cost a
saturated structure its ends, so the passes start where their mean gain
outweighs that.

Usage::

    python benchmarks/mixed_noise.py --threads 1 --markdown out.md
    python benchmarks/mixed_noise.py --hot --threads 1 --markdown hot.md
    python benchmarks/mixed_noise.py --hot-values --threads 1 --markdown hot-values.md
    python benchmarks/mixed_noise.py --choose --threads 1 --markdown hot-choice.md
    python benchmarks/mixed_noise.py --choose-halo --threads 1 --markdown halo-choice.md
    python benchmarks/mixed_noise.py --beads --threads 1 --markdown beads.md
    python benchmarks/mixed_noise.py --beads --bead-size 128 --bead-count 60 --threads 1
    python benchmarks/mixed_noise.py --dense --threads 1 --markdown dense.md
    python benchmarks/mixed_noise.py --choose-dense --markdown dense-choice.md
    python benchmarks/mixed_noise.py --quick
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import heading, publish, set_threads  # noqa: E402

import napari_deconvnet as dn  # noqa: E402
from napari_deconvnet.core import impulse_switch  # noqa: E402
from napari_deconvnet.core.phantoms import cells_2d, phantom  # noqa: E402

#: (Gaussian sigma, impulse share)
NOISES = ((0.02, 0.05), (0.05, 0.05), (0.1, 0.05), (0.05, 0.2))
COLUMNS = ("noisy", "3x3 median", "salt-and-pepper -> default", "default, switch off", "default")
#: (Gaussian sigma, impulse share) of ``--dense``
DENSE = ((0.0, 0.3), (0.02, 0.3), (0.0, 0.5), (0.02, 0.5))
DENSE_COLUMNS = COLUMNS[:-1] + ("default, one pass", "default")
#: Impulse shares and passes ``--choose-dense`` tries
DENSE_SHARES = (0.05, 0.1, 0.15, 0.2, 0.3, 0.5)
DENSE_PASSES = (1, 2, 3, 4)


def scenes(size: int) -> dict[str, np.ndarray]:
    from skimage import data

    camera = data.camera()[100 : 100 + size, 100 : 100 + size] / 255
    return {
        "camera": camera.astype(np.float32),
        "cells": cells_2d(np.random.default_rng(5), size).astype(np.float32),
    }


def degrade(clean: np.ndarray, sigma: float, amount: float) -> np.ndarray:
    noisy = dn.synthesize(clean, "gaussian", sigma=sigma, seed=1)
    noisy = dn.synthesize(noisy, "salt-and-pepper", amount=amount, seed=2)
    return np.clip(noisy, 0, 1).astype(np.float32)


def run(size: int, noises, one_pass: bool = False) -> dict[str, dict[str, float]]:
    def score(clean, out):
        return float(dn.psnr(clean, np.clip(out, 0, 1), data_range=1))

    def once(y):
        kept = impulse_switch.SWITCH_PASSES
        impulse_switch.SWITCH_PASSES = ()
        try:
            return dn.restore(y, precision="float32")
        finally:
            impulse_switch.SWITCH_PASSES = kept

    rows = {}
    for name, clean in scenes(size).items():
        for sigma, amount in noises:
            y = degrade(clean, sigma, amount)
            chain = dn.restore(
                dn.restore(y, "salt-and-pepper", precision="float32"),
                precision="float32",
                impulse_switch=False,
            )
            outs = {
                "noisy": y,
                "3x3 median": ndimage.median_filter(y, 3),
                "salt-and-pepper -> default": chain,
                "default, switch off": dn.restore(y, precision="float32", impulse_switch=False),
                **({"default, one pass": once(y)} if one_pass else {}),
                "default": dn.restore(y, precision="float32"),
            }
            key = f"{name}, sigma {sigma:g} + {amount:.0%} impulses"
            rows[key] = {c: score(clean, o) for c, o in outs.items()}
            print(key, " ".join(f"{c}: {v:.2f}" for c, v in rows[key].items()), flush=True)
    return rows


#: (model, impulse share) of the ``--hot`` rows
HOT = (
    ("denoise-2d", 3e-4),
    ("denoise-2d", 1e-3),
    ("deconv-2d", 3e-4),
    ("deconv-2d", 5e-3),
)
HOT_COLUMNS = ("noisy", "3x3 median -> model", "switch off", "now", "no impulses")
HOT_PSF = {"kind": "gaussian", "sigma": 2.0}


def hot_degrade(clean: np.ndarray, model: str, share: float) -> tuple[np.ndarray, ...]:
    """(with impulses, without, data range (low, high)) for one ``--hot`` row."""
    rng = np.random.default_rng(4)
    if model == "denoise-2d":  # a camera frame in ADU with saturated hot pixels
        adu = (rng.poisson(clean * 50) + rng.normal(0, 1.5, clean.shape)) * 2 + 100
        plain = np.rint(adu).astype(np.float32)
        hot = plain.copy()
        hot[rng.random(clean.shape) < share] = 4000
        return hot, plain, (100.0, 200.0)
    psf = dn.make_psf(**HOT_PSF)
    plain = dn.synthesize(clean, "poisson", psf=psf, peak=300.0, seed=1).astype(np.float32)
    hot = plain.copy()
    hot[rng.random(clean.shape) < share] = 1.5
    return hot, plain, (0.0, 1.0)


#: (model, share) of the ``--hot-values`` rows
HOT_VALUES = (
    ("denoise-2d", 3e-4),
    ("denoise-2d", 3e-3),
    ("deconv-2d", 3e-4),
    ("deconv-2d", 3e-3),
)
HOT_VALUE_COLUMNS = (
    "noisy",
    "3x3 median -> model",
    "switch off",
    "extremes only",
    "now",
    "no impulses",
)


def hot_values_degrade(
    clean: np.ndarray, model: str, share: float, seed: int = 4, psf: dict | None = None
) -> tuple[np.ndarray, ...]:
    """(with hot pixels of any value, without, data range) for one ``--hot-values`` row."""
    rng = np.random.default_rng(seed)
    if model == "denoise-2d":  # camera units, as --hot
        adu = (rng.poisson(clean * 50) + rng.normal(0, 1.5, clean.shape)) * 2 + 100
        plain, (lo, hi) = np.rint(adu).astype(np.float32), (100.0, 200.0)
    else:
        kernel = dn.make_psf(**(psf or HOT_PSF))
        plain = dn.synthesize(clean, "poisson", psf=kernel, peak=300.0, seed=seed)
        plain, (lo, hi) = plain.astype(np.float32), (0.0, 1.0)
    hot = plain.copy()
    where = rng.random(clean.shape) < share
    hot[where] += (rng.uniform(0.5, 10, int(where.sum())) * (hi - lo)).astype(np.float32)
    return hot, plain, (lo, hi)


def _extremes_only(image: np.ndarray, model: str, **kw) -> np.ndarray:
    """Restore with the switch as it was before outliers of other values counted."""
    found = impulse_switch.find_outliers
    impulse_switch.find_outliers = lambda image: None
    try:
        return dn.restore(image, model, **kw)
    finally:
        impulse_switch.find_outliers = found


def run_hot(size: int, rows_wanted, values: bool = False) -> dict[str, dict[str, float]]:
    rows = {}
    for name, clean in scenes(size).items():
        for model, share in rows_wanted:
            degrade_hot = hot_values_degrade if values else hot_degrade
            hot, plain, (lo, hi) = degrade_hot(clean, model, share)
            kw = {"precision": "float32"}
            if model == "deconv-2d":
                kw["psf"] = dn.make_psf(**HOT_PSF)

            def score(out, clean=clean, lo=lo, hi=hi):
                return float(dn.psnr(clean, np.clip((out - lo) / (hi - lo), 0, 1), data_range=1))

            outs = {
                "noisy": hot,
                "3x3 median -> model": dn.restore(
                    ndimage.median_filter(hot, 3), model, impulse_switch=False, **kw
                ),
                "switch off": dn.restore(hot, model, impulse_switch=False, **kw),
                "now": dn.restore(hot, model, **kw),
                "no impulses": dn.restore(plain, model, **kw),
            }
            if values:
                outs["extremes only"] = _extremes_only(hot, model, **kw)
            key = f"{name}, `{model}`, {share:.2%} {'hot pixels' if values else 'impulses'}"
            rows[key] = {c: score(o) for c, o in outs.items()}
            print(key, " ".join(f"{c}: {v:.2f}" for c, v in rows[key].items()), flush=True)
    return rows


#: (OUTLIER_SPREAD, OUTLIER_NOISE) pairs ``--choose`` tries
CHOICES = tuple((spread, noise) for spread in (2.0, 3.0, 4.0, 5.0, 6.0) for noise in (5.0, 8.0))


def validation_scenes(size: int) -> dict[str, np.ndarray]:
    """Scenes for ``--choose`` only: none is in a table here."""
    from napari_deconvnet.io.samples import blurred_phantom_data

    filaments = blurred_phantom_data((size, size), 31)[1].astype(np.float32)
    filaments = (filaments - filaments.min()) / np.ptp(filaments)
    return {
        "cells 11": cells_2d(np.random.default_rng(11), size).astype(np.float32),
        "cells 12": cells_2d(np.random.default_rng(12), size).astype(np.float32),
        "filaments 31": filaments,
    }


def bead_scene(rng: np.random.Generator, size: int, sigma: float, count: int = 300):
    """Beads of random brightness at random sub-pixel places, blurred by a Gaussian of
    `sigma` pixels; maximum 1."""
    yy, xx = np.mgrid[:size, :size]
    image = np.zeros((size, size))
    for _ in range(count):
        cy, cx = rng.uniform(0, size, 2)
        image += rng.uniform(0.3, 1) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
    return image / image.max()


def centred_bead_scene(rng: np.random.Generator, size: int, sigma: float, count: int = 600):
    """Beads of random brightness centred on pixels (the peak pixel far above its
    neighbours: the hardest case for the outlier test), blurred by a Gaussian of
    `sigma` pixels; 99.5th percentile of the beads at 1."""
    image = np.zeros((size, size))
    image[rng.integers(0, size, count), rng.integers(0, size, count)] = rng.uniform(0.2, 1, count)
    image = ndimage.gaussian_filter(image, sigma)
    return image / np.percentile(image[image > 0.01 * image.max()], 99.5)


def _choice_cases(size: int, quick: bool) -> tuple[list, list, list]:
    """The validation cases of ``--choose`` and ``--choose-halo``: (hot-pixel cases,
    their ceilings, bead scenes), none in a table here."""
    cases = []
    for clean in validation_scenes(size).values():
        for model, share in HOT_VALUES[1::2] if quick else HOT_VALUES:
            psf = {"kind": "gaussian", "sigma": 1.5}
            hot, plain, (lo, hi) = hot_values_degrade(clean, model, share, seed=21, psf=psf)
            kw = {"precision": "float32"}
            if model == "deconv-2d":
                kw["psf"] = dn.make_psf(**psf)
            cases.append((clean, hot, plain, lo, hi, model, kw))
    beads = []
    for sigma in (0.4, 0.5, 0.6):
        for peak in (10, 30, 100):
            rng = np.random.default_rng(8)
            clean = bead_scene(rng, size, sigma) * 0.9 + 0.05
            beads.append(rng.poisson(clean * peak) + rng.normal(0, 2, clean.shape))
    ceiling = [_choice_score(dn.restore(c[2], c[5], **c[6]), c[0], c[3], c[4]) for c in cases]
    return cases, ceiling, beads


def _choice_score(out, clean, lo, hi):
    return float(dn.psnr(clean, np.clip((out - lo) / (hi - lo), 0, 1), data_range=1))


def _choice_row(cases, ceiling, beads) -> dict[str, float]:
    losses = [
        top - _choice_score(dn.restore(c[1], c[5], **c[6]), c[0], c[3], c[4])
        for c, top in zip(cases, ceiling, strict=True)
    ]
    taken = [impulse_switch.find_outliers(b.astype(np.float32)) for b in beads]
    return {
        "mean loss": float(np.mean(losses)),
        "worst loss": float(np.max(losses)),
        "bead scenes taken": float(sum(t is not None for t in taken)),
        "bead scenes": float(len(beads)),
    }


def choose(size: int, quick: bool = False) -> dict[str, dict[str, float]]:
    """Each pair of :data:`CHOICES` on the validation scenes: the mean and the worst loss
    against the same image without hot pixels, and the bead scenes where beads were taken."""
    cases, ceiling, beads = _choice_cases(size, quick)
    rows = {}
    kept = impulse_switch.OUTLIER_SPREAD, impulse_switch.OUTLIER_NOISE, impulse_switch.HALO_NOISE
    try:
        impulse_switch.HALO_NOISE = np.inf  # the test as it was chosen (2026-12-04)
        for spread, noise in CHOICES:
            impulse_switch.OUTLIER_SPREAD, impulse_switch.OUTLIER_NOISE = spread, noise
            key = f"spread {spread:g}, noise {noise:g}"
            rows[key] = _choice_row(cases, ceiling, beads)
            print(key, rows[key], flush=True)
    finally:
        (
            impulse_switch.OUTLIER_SPREAD,
            impulse_switch.OUTLIER_NOISE,
            impulse_switch.HALO_NOISE,
        ) = kept
    return rows


#: (``HALO_NOISE``, ``HALO_FALL``) pairs ``--choose-halo`` tries (inf: no halo test)
HALO_CHOICES = tuple(
    (noise, fall, np.inf) for noise in (2.0, 3.0, 4.0) for fall in (1.5, 2.5, 4.0)
)
HALO_CHOICES += tuple((2.0, 1.5, pair) for pair in (2.0, 3.0, 4.0, 6.0))
HALO_CHOICES += ((np.inf, 2.5, np.inf),)
#: ``HALO_SEPARABLE`` values tried with the chosen pair above
SEPARABLE_CHOICES = (1.5, 2.0, 3.0)


def choose_halo(size: int, quick: bool = False) -> dict[str, dict[str, float]]:
    """``HALO_NOISE`` on the validation scenes of :func:`choose`, plus bead scenes with
    the beads centred on pixels (sigma 0.4-0.6 pixel, peaks 100 and 1000 photons, on
    no background and on 5 photons with read noise 1.5): the loss on hot pixels,
    and the bead scenes where beads were taken for hot pixels."""
    cases, ceiling, beads = _choice_cases(size, quick)
    for sigma in (0.4, 0.5, 0.6):
        for peak in (100, 1000):
            for background, read in ((0.0, 0.0), (5.0, 1.5)):
                rng = np.random.default_rng(9)
                clean = centred_bead_scene(rng, size, sigma) * peak + background
                beads.append(rng.poisson(clean) + rng.normal(0, read, clean.shape))
    for sigma in (0.3, 0.4):  # beads off their pixels' centres, on no background
        for peak in (300, 1000):
            rng = np.random.default_rng(10)
            clean = integrated_bead_scene(rng, size, sigma, count=size * size // 400) * peak
            beads.append(rng.poisson(clean).astype(np.float64))
    rows = {}
    kept = impulse_switch.HALO_NOISE, impulse_switch.HALO_FALL, impulse_switch.HALO_PAIR_NOISE
    separable_kept = impulse_switch.HALO_SEPARABLE
    try:
        for noise, fall, pair in HALO_CHOICES:
            impulse_switch.HALO_NOISE, impulse_switch.HALO_FALL = noise, fall
            impulse_switch.HALO_PAIR_NOISE = pair
            key = "no halo test" if np.isinf(noise) else f"halo: noise {noise:g}, fall {fall:g}"
            key += "" if np.isinf(noise) else f", off-centre {pair:g}"
            rows[key] = _choice_row(cases, ceiling, beads)
            print(key, rows[key], flush=True)
        impulse_switch.HALO_NOISE, impulse_switch.HALO_FALL, impulse_switch.HALO_PAIR_NOISE = kept
        for separable in SEPARABLE_CHOICES:
            impulse_switch.HALO_SEPARABLE = separable
            key = f"halo as chosen, off-centre {kept[2]:g}, separable {separable:g}"
            rows[key] = _choice_row(cases, ceiling, beads)
            print(key, rows[key], flush=True)
    finally:
        impulse_switch.HALO_NOISE, impulse_switch.HALO_FALL, impulse_switch.HALO_PAIR_NOISE = kept
        impulse_switch.HALO_SEPARABLE = separable_kept
    return rows


#: (photons, background photons, read noise) of the ``--beads`` rows
BEAD_NOISES = (
    (30, 0.0, 0.0),
    (300, 0.0, 0.0),
    (1000, 0.0, 0.0),
    (100, 5.0, 1.5),
    (1000, 5.0, 1.5),
)
#: Seeds and spot sizes (sigma, pixels) of the ``--beads`` scenes
BEAD_SEEDS = (40, 41, 42, 43)
BEAD_SIGMAS = (0.3, 0.35, 0.4)


def integrated_bead_scene(rng: np.random.Generator, size: int, sigma: float, count: int = 400):
    """Beads at random sub-pixel places, each a Gaussian spot of `sigma` pixels
    integrated over the pixels' areas (what a camera records), random brightness
    from 0.2 to 1 of the brightest; maximum 1."""
    from scipy.special import erf

    image = np.zeros((size, size))
    edges = np.arange(size + 1, dtype=np.float64)
    for _ in range(count):
        cy, cx = rng.uniform(0, size, 2)
        py = np.diff(erf((edges - cy) / (np.sqrt(2) * sigma))) / 2
        px = np.diff(erf((edges - cx) / (np.sqrt(2) * sigma))) / 2
        image += rng.uniform(0.2, 1) * np.outer(py, px)
    return image / image.max()


#: The halo tests ``--beads`` compares: (HALO_NOISE, HALO_PAIR_NOISE) for each
#: column; None keeps the module's values (the test as it is)
BEAD_TESTS = {"before": (np.inf, np.inf), "centred": (None, np.inf), "now": (None, None)}


def run_beads(size: int, quick: bool = False, count: int = 400) -> dict[str, dict[str, float]]:
    """Bead scenes without hot pixels, held out (no choice looked at them): spots of
    sigma :data:`BEAD_SIGMAS` integrated over the pixels (:func:`integrated_bead_scene`,
    seeds :data:`BEAD_SEEDS`), through ``denoise-2d`` without a halo test (before),
    with session 48's all-four test alone (centred) and as it is (now, with the
    off-centre test): the scenes where beads were taken for hot pixels, the pixels
    replaced, and the PSNR of those scenes."""
    rows = {}
    kept = impulse_switch.HALO_NOISE, impulse_switch.HALO_PAIR_NOISE
    for photons, background, read in BEAD_NOISES[:1] if quick else BEAD_NOISES:
        taken = dict.fromkeys(BEAD_TESTS, 0)
        pixels = dict.fromkeys(BEAD_TESTS, 0)
        psnr: dict[str, list[float]] = {"switch off": [], **{k: [] for k in BEAD_TESTS}}
        scenes = [(s, g) for s in BEAD_SEEDS[: 1 if quick else None] for g in BEAD_SIGMAS]
        for seed, sigma in scenes:
            rng = np.random.default_rng(seed)
            clean = integrated_bead_scene(rng, size, sigma, count) * photons + background
            noisy = (rng.poisson(clean) + rng.normal(0, read, clean.shape)).astype(np.float32)
            out = dn.restore(noisy, "denoise-2d", precision="float32", impulse_switch=False)
            psnr["switch off"].append(float(dn.psnr(clean, out, data_range=photons)))
            for when, (halo, pair) in BEAD_TESTS.items():
                impulse_switch.HALO_NOISE = kept[0] if halo is None else halo
                impulse_switch.HALO_PAIR_NOISE = kept[1] if pair is None else pair
                try:
                    values = impulse_switch.detect_impulses(noisy, 0, 2)
                    if values is not None:
                        taken[when] += 1
                        pixels[when] += int(impulse_switch.impulse_mask(noisy, values).sum())
                    out = dn.restore(noisy, "denoise-2d", precision="float32")
                    psnr[when].append(float(dn.psnr(clean, out, data_range=photons)))
                finally:
                    impulse_switch.HALO_NOISE, impulse_switch.HALO_PAIR_NOISE = kept
        extra = f", background {background:g}, read noise {read:g}" if background else ""
        key = f"{photons} photons{extra}"
        rows[key] = {
            "scenes": float(len(scenes)),
            **{f"taken {k}": float(v) for k, v in taken.items()},
            **{f"pixels {k}": float(v) for k, v in pixels.items()},
            **{f"psnr {k}": float(np.mean(v)) for k, v in psnr.items()},
        }
        print(key, rows[key], flush=True)
    return rows


def markdown_beads(rows: dict[str, dict[str, float]], header: str) -> str:
    lines = [header, ""]
    lines.append(
        "| noise | bead scenes taken for hot pixels: before | centred | now "
        "| pixels replaced: before | centred | now | mean PSNR: switch off | before "
        "| centred | now |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, v in rows.items():
        n = f" of {v['scenes']:.0f}"
        taken = " | ".join(f"{v['taken ' + k]:.0f}{n}" for k in BEAD_TESTS)
        pixels = " | ".join(f"{v['pixels ' + k]:.0f}" for k in BEAD_TESTS)
        psnr = " | ".join(f"{v['psnr ' + k]:.2f}" for k in ("switch off", *BEAD_TESTS))
        lines.append(f"| {key} | {taken} | {pixels} | {psnr} |")
    return "\n".join(lines) + "\n"


def dense_validation_scenes(size: int) -> dict[str, np.ndarray]:
    """Scenes for ``--choose-dense`` only, each scaled to a maximum of 1."""
    out = {}
    for seed in (11, 12):
        p = phantom((size, size), rng=seed, mix=3)
        p = p / p.max()
        out[f"phantom {seed}"] = p
        out[f"phantom {seed}, saturated"] = np.clip(p * 2.0, 0, 1)
        out[f"phantom {seed}, clipped at 0"] = np.clip(p - 0.15, 0, None) / 0.85
    c = cells_2d(np.random.default_rng(13), size)
    out["cells 13"] = c / c.max()
    out["cells 13, saturated"] = np.clip(c / c.max() * 1.6, 0, 1)
    return {k: v.astype(np.float32) for k, v in out.items()}


def choose_dense(size: int, quick: bool = False) -> dict[str, dict[str, float]]:
    """The switch's PSNR after each count of :data:`DENSE_PASSES`, per impulse share:
    the mean over the validation scenes and the worst scene's change from one pass."""
    from napari_deconvnet.core.denoisers import denoise_switching_median

    rows = {}
    shares = DENSE_SHARES[1::2] if quick else DENSE_SHARES
    for share in shares:
        scores = {n: [] for n in DENSE_PASSES}
        for clean in dense_validation_scenes(size).values():
            y = dn.synthesize(clean, "salt-and-pepper", amount=share, seed=3, low=0.0, high=1.0)
            values = {"minimum": 0.0, "maximum": 1.0}
            mask = impulse_switch.impulse_mask(y, values)
            out = denoise_switching_median(y, 0.0, 1.0, impulse_switch.IMPULSE_LARGEST, mask=mask)
            for n in DENSE_PASSES:
                if n > 1:
                    left = impulse_switch._left_impulses(y, out, mask, values)
                    if left.any():
                        mask |= left
                        out = denoise_switching_median(
                            y, 0.0, 1.0, impulse_switch.IMPULSE_LARGEST, mask=mask
                        )
                scores[n].append(float(dn.psnr(clean, out, data_range=1)))
            chosen = impulse_switch.detect_impulses(y[None], 1, 2)  # passes and lone pixels
            out = impulse_switch.switch_impulses(y[None], chosen, 2)[0]
            scores.setdefault("chosen", []).append(float(dn.psnr(clean, out, data_range=1)))
            label = f"as chosen: {chosen.get('passes', 1)}, lone up to {chosen.get('lone', '-')}"
        first = np.array(scores[1])
        for n in scores:
            if n == "chosen":
                key = f"{share:.0%} impulses, {label}"
            else:
                key = f"{share:.0%} impulses, {n} pass{'es' if n > 1 else ''}"
            rows[key] = {
                "mean": float(np.mean(scores[n])),
                "mean gain": float(np.mean(np.array(scores[n]) - first)),
                "worst gain": float(np.min(np.array(scores[n]) - first)),
            }
            print(key, rows[key], flush=True)
    return rows


def markdown_dense_choice(rows: dict[str, dict[str, float]], header: str) -> str:
    lines = [header, ""]
    lines.append("| impulses, passes | mean PSNR | mean gain over one pass | worst scene's gain |")
    lines.append("|---|---:|---:|---:|")
    for key, v in rows.items():
        lines.append(
            f"| {key} | {v['mean']:.2f} | {v['mean gain']:+.2f} | {v['worst gain']:+.2f} |"
        )
    return "\n".join(lines) + "\n"


def markdown_choice(rows: dict[str, dict[str, float]], header: str) -> str:
    lines = [header, ""]
    lines.append(
        "| outlier test | mean loss to no hot pixels (dB) | worst loss (dB) | bead scenes taken |"
    )
    lines.append("|---|---:|---:|---:|")
    for key, v in rows.items():
        lines.append(
            f"| {key} | {v['mean loss']:.2f} | {v['worst loss']:.2f} | "
            f"{v['bead scenes taken']:.0f} of {v['bead scenes']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def markdown_hot(rows: dict[str, dict[str, float]], header: str) -> str:
    values = any("extremes only" in v for v in rows.values())
    columns = HOT_VALUE_COLUMNS if values else HOT_COLUMNS
    lines = [header, ""]
    lines.append("| scene, model, impulses | " + " | ".join(columns) + " | now − switch off |")
    lines.append("|---|" + "---:|" * (len(columns) + 1))
    for key, v in rows.items():
        cells = [f"{v[c]:.2f}" for c in columns]
        lines.append(f"| {key} | " + " | ".join(cells) + f" | {v['now'] - v['switch off']:+.2f} |")
    return "\n".join(lines) + "\n"


def markdown(rows: dict[str, dict[str, float]], header: str) -> str:
    columns = DENSE_COLUMNS if any("default, one pass" in v for v in rows.values()) else COLUMNS
    lines = [header, ""]
    lines.append("| scene, noise | " + " | ".join(columns) + " | default − best baseline |")
    lines.append("|---|" + "---:|" * (len(columns) + 1))
    for key, values in rows.items():
        best = max(values.values())
        cells = [
            f"**{values[c]:.2f}**" if values[c] == best else f"{values[c]:.2f}" for c in columns
        ]
        floor = max(v for c, v in values.items() if c != "default")
        lines.append(f"| {key} | " + " | ".join(cells) + f" | {values['default'] - floor:+.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one noise, 64² scenes")
    parser.add_argument(
        "--hot", action="store_true", help="a few hot pixels or impulses, per switched model"
    )
    parser.add_argument(
        "--hot-values", action="store_true", help="hot pixels of any value, per switched model"
    )
    parser.add_argument(
        "--choose", action="store_true", help="the outlier test's constants, on validation"
    )
    parser.add_argument(
        "--choose-halo", action="store_true", help="the outliers' halo test, on validation"
    )
    parser.add_argument(
        "--beads", action="store_true", help="bead scenes without hot pixels (held out)"
    )
    parser.add_argument(
        "--dense", action="store_true", help="30%% and 50%% impulses: the switch's passes"
    )
    parser.add_argument(
        "--choose-dense", action="store_true", help="the switch's passes, on validation"
    )
    parser.add_argument(
        "--bead-size",
        type=int,
        default=512,
        help="--beads: scene side (pixels); 128 with --bead-count 25 is the density of 512",
    )
    parser.add_argument("--bead-count", type=int, default=400, help="--beads: spots per scene")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    t0 = time.perf_counter()
    render = markdown_hot
    if args.choose_dense:
        rows = choose_dense(128 if args.quick else 256, args.quick)
        title, render = "Choosing the switch's passes (validation scenes)", markdown_dense_choice
    elif args.dense:
        render = markdown
        rows = run(64 if args.quick else 256, DENSE[:1] if args.quick else DENSE, one_pass=True)
        title = "Dense impulses"
    elif args.choose:
        rows = choose(128 if args.quick else 256, args.quick)
        title, render = "Choosing the outlier test (validation scenes)", markdown_choice
    elif args.beads:
        size = 128 if args.quick else args.bead_size
        rows = run_beads(size, args.quick, args.bead_count)
        title, render = "Point-like beads taken for hot pixels (held out)", markdown_beads
    elif args.choose_halo:
        rows = choose_halo(128 if args.quick else 256, args.quick)
        title, render = "Choosing the outliers' halo test (validation scenes)", markdown_choice
    elif args.hot or args.hot_values:
        size = 128 if args.quick else 256  # 0.03% of 64² would be one pixel
        table = HOT_VALUES if args.hot_values else HOT
        rows = run_hot(size, table[1::2] if args.quick else table, values=args.hot_values)
        title = "Hot pixels of any value" if args.hot_values else "A few hot pixels or impulses"
    else:
        render = markdown
        rows = run(64 if args.quick else 256, NOISES[:1] if args.quick else NOISES)
        title = "Gaussian noise with impulses"
    header = (
        heading(title, "mixed_noise.py", argv)
        + f", {time.perf_counter() - t0:.0f} s. PSNR dB, float32."
    )
    publish(render(rows, header), args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
