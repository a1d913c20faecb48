"""Restoration quality: classical methods, a CARE baseline and the shipped models.

Every task degrades clean test images in a known way; every method restores
them; the table gives PSNR (dB) and SSIM (Wang et al., Gaussian window)
against the clean image, averaged over the task's test images. Every output,
the degraded input (``identity``) included, is clipped to [0, 1] before it is
scored, with a data range of 1, for all methods alike.

Test images (never used to train or tune anything)
    scikit-image's camera, astronaut (gray), coins, moon, chelsea (gray) and
    cell, divided by 255; 2D fluorescence phantoms (cells from
    ``fluorescence_phantom_data`` plus filaments and beads from
    ``blurred_phantom_data``, seeds :data:`TEST_PHANTOM_SEEDS`); 3D phantoms
    from ``phantom_volume_data`` (seeds :data:`TEST_VOLUME_SEEDS`). All are
    float32 in [0, 1]; 1 is the peak intensity (``peak`` photons).
Tasks (:data:`TASKS`)
    Gaussian noise of sigma 15, 25 and 50 / 255 on the photos;
    Poisson-Gaussian camera noise (peak 5, 20 and 100 photons, read noise
    1 electron, scored in units of the peak) on the 2D phantoms; a Gaussian
    PSF (sigma 2 px) with Gaussian noise (sigma 0.01) on the photos; an Airy
    PSF (first zero at 3.6 px) with Poisson noise (peak 200) on the 2D
    phantoms; 5 % and 20 % salt-and-pepper noise on the photos; an
    anisotropic Gaussian 3D PSF (sigma 2 planes, 1.5 px) with Poisson noise
    (peak 100) on the 3D phantoms; the same volumes at 10, 20 and 50 photons
    with read noise (1 e-) through a 2x axially elongated Gaussian PSF (sigma
    3 planes, 1.5 px) and at 20 photons through a widefield PSF (NA 1.2,
    water); Poisson-Gaussian noise at peaks 2 and 20 (read noise 1.5 e-) in
    sCMOS camera units (gain 2 ADU/e-, offset 100 ADU) on the 2D phantoms,
    which the shipped model restores in ADU. Images are blurred (reflected
    borders) and then made noisy by :func:`napari_deconvnet.synthesize`.
Methods
    ``nlm``, ``tv``, ``wavelet`` (``dn.denoise_*``) and ``bm3d`` for
    denoising; ``median`` and ``switching-median`` (impulses, the pixels at 0
    or 1, replaced by the median of the other pixels in the smallest 3x3 to
    7x7 window that has any) for salt-and-pepper; ``richardson-lucy`` (fed
    the degraded image clipped at 0) and ``wiener`` for deconvolution; a
    CARE-style UNet (``benchmarks/_care.py``) trained per task for
    ``--care-seconds``; and ``ours``: ``dn.restore`` with the shipped model of
    the task (``denoise-2d``, ``deconv-2d`` with the PSF, ``salt-and-pepper``,
    ``deconv-3d`` with the PSF; ``ours-denoise-3d`` is ``denoise-3d`` on the
    3D task, ``ours-denoise-2d-nl`` the noise-conditioned ``denoise-2d-nl``
    on the 2D denoising tasks). A model that is not shipped yet is reported
    as ``n/a``. ``--methods`` runs some methods only; ``--merge`` then joins
    the runs method by method.
    ``bm3d`` gets the true sigma on Gaussian tasks. On Poisson-Gaussian tasks
    all classical denoisers (``bm3d`` included) run on the generalised
    Anscombe transform of the photon counts, where the noise is close to
    Gaussian with sigma 1, and the result goes back through the closed-form
    approximation of the exact unbiased inverse of Mäkinen and Foi [1]_ less
    the read-noise variance.
Tuning
    The parameters of ``nlm``, ``tv``, ``wavelet`` (as multiples of the noise
    sigma), ``median`` (window), ``richardson-lucy`` (iterations) and
    ``wiener`` (balance, or its own estimate) are chosen by a grid search
    for the best mean PSNR on training data with the task's degradation:
    crops of scikit-image photos from ``scripts/train_default.TRAIN_IMAGES``
    (never a test image), phantoms from ``train_default.make_phantom`` and
    the sample generators with other seeds. CARE trains on the same sources.
Speed
    Seconds per megapixel (megavoxel in 3D) of restoring the test images on
    ``--device`` (tuning and CARE training excluded), mean over the tasks
    where the method applies. Models are loaded before the clock starts, and
    the torch-based methods are warmed up on a small crop first. ``--quick``
    uses one torch thread unless ``--threads`` says otherwise.

Usage::

    python benchmarks/quality.py                  # the README table and figure (hours)
    python benchmarks/quality.py --quick          # 64 px crops, tiny grids: under a minute
    python benchmarks/quality.py --tasks gaussian-25 salt-and-pepper-20 --care-seconds 60
    # a candidate's columns, the shipped file left in place (its sha256 is recorded)
    python benchmarks/quality.py --methods identity ours --care-seconds 0 \
        --weights denoise-2d=runs/cand/denoise-2d.safetensors --json cand.json

References
----------
.. [1] M. Mäkinen and A. Foi, "A closed-form approximation of the exact
       unbiased inverse of the Anscombe variance-stabilizing transformation",
       IEEE Trans. Image Process. 20, 2697-2698 (2011).
       :DOI:`10.1109/TIP.2011.2121085`
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _machine import machine

import napari_deconvnet as dn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from train_default import TEST_IMAGES, TRAIN_IMAGES, load_gray, make_phantom  # noqa: E402

TEST_PHOTOS = ("camera", "astronaut", "coins", "moon", "chelsea", "cell")
TEST_PHANTOM_SEEDS = (9001, 9002, 9003)
TEST_VOLUME_SEEDS = (9101, 9102)
#: Training photos: CARE draws regions from them, tuning uses crops of the first ones.
TRAIN_PHOTOS = tuple(name for name, weight in TRAIN_IMAGES.items() if weight >= 1.0)
TUNE_PHOTOS = ("coffee", "rocket", "brick", "stereo_motorcycle")
TRAIN_PHANTOM_SEEDS = (8001, 8002, 8003, 8004)
TRAIN_VOLUME_SEEDS = (8101, 8102, 8103)
FIGURE_TASKS = ("gaussian-25", "deconv-airy-poisson", "salt-and-pepper-20", "3d-poisson-blur")
DEFAULT_FIGURE = ROOT / "docs" / "quality_benchmark.png"

METHODS = (
    "identity",
    "nlm",
    "tv",
    "wavelet",
    "bm3d",
    "median",
    "switching-median",
    "richardson-lucy",
    "wiener",
    "care",
    "n2v",
    "ours",
    "ours-x8",
    "ours-ft",
    "ours-denoise-2d-nl",
    "ours-denoise-3d",
)
#: ``ours-x8``: the task's shipped model with ``ensemble=8`` (the mean of eight
#: rotated and mirrored views; eight times the time). Run only when asked for
#: with --methods.
ENSEMBLE = {"ours-x8": 8}
#: Shipped models reported beside the task's own ("ours"): ``ours-<model>``.
EXTRA_MODELS = ("ours-denoise-2d-nl", "ours-denoise-3d")
LEARNED = ("care", "n2v", "ours", *ENSEMBLE, "ours-ft", *EXTRA_MODELS)
#: ``ours-ft``: the task's shipped model fine-tuned by ``dn.train`` on synthetic
#: pairs of CARE's training images with the task's degradation (what a user with
#: clean data and a known microscope does), for --ft-steps (2D) / --ft-steps-3d.
FT_FAMILIES = ("denoise", "deconv")
#: Noise2Void needs pixel-independent noise it can learn from the data alone:
#: it is run on the Poisson tasks (the issue-11 baseline for them).
N2V_NOISES = ("poisson", "poisson-gaussian")
FAMILY_METHODS = {
    "denoise": ("identity", "nlm", "tv", "wavelet", "bm3d", "care", "n2v", "ours", "ours-ft"),
    "impulse": ("identity", "median", "switching-median", "care", "ours"),
    "deconv": ("identity", "richardson-lucy", "wiener", "care", "ours", "ours-ft"),
}
#: Tuning grids, (full, quick). Denoiser values multiply the noise sigma.
GRIDS: dict[str, tuple[list[dict], list[dict]]] = {
    "nlm": ([{"h": f} for f in (0.5, 0.7, 0.9, 1.1, 1.4)], [{"h": f} for f in (0.7, 1.1)]),
    "tv": (
        [{"weight": f} for f in (0.4, 0.6, 0.8, 1.0, 1.3, 1.7, 2.2)],
        [{"weight": f} for f in (0.6, 1.2)],
    ),
    "wavelet": (
        [{"sigma": f, "wavelet": w} for w in ("db1", "sym4") for f in (0.6, 0.8, 1.0, 1.25, 1.5)],
        [{"sigma": f, "wavelet": "db1"} for f in (0.8, 1.2)],
    ),
    "median": ([{"size": s} for s in (3, 5, 7)], [{"size": s} for s in (3, 5)]),
    "richardson-lucy": (
        [{"iterations": n} for n in (5, 10, 20, 40, 80, 160)],
        [{"iterations": n} for n in (5, 20)],
    ),
    "wiener": (
        [{"balance": b} for b in (None, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3)],
        [{"balance": b} for b in (None, 1e-2)],
    ),
}
RL_ITERATIONS_3D = [{"iterations": n} for n in (1, 2, 3, 5, 10, 20, 40, 80)]


@dataclass(frozen=True)
class Task:
    """A degradation of one kind of test data, and the shipped model that undoes it."""

    name: str
    data: str  # "photos", "phantoms" or "volumes"
    family: str  # a key of FAMILY_METHODS
    noise: str  # a noise model of dn.synthesize
    params: dict = field(default_factory=dict)
    psf: tuple | None = None  # (kind, shape, params) for dn.make_psf
    model: str = "denoise-2d"
    #: sCMOS-like camera units: (gain in ADU per electron, offset in ADU). The
    #: shipped model sees the image in ADU and is scored after the exact
    #: inverse map; the other methods get the image in units of the peak
    #: (they are told the camera's gain and offset).
    camera: tuple[float, float] | None = None

    def to_adu(self, image: np.ndarray) -> np.ndarray:
        gain, offset = self.camera
        return (image * self.params["peak"] * gain + offset).astype(np.float32)

    def from_adu(self, image: np.ndarray) -> np.ndarray:
        gain, offset = self.camera
        return ((image - offset) / (self.params["peak"] * gain)).astype(np.float32)

    @property
    def ndim(self) -> int:
        return 3 if self.data == "volumes" else 2

    @property
    def methods(self) -> tuple[str, ...]:
        if self.ndim == 3:
            extra: tuple[str, ...] = ("ours-denoise-3d",)
        else:
            extra = ("ours-denoise-2d-nl",) if self.family == "denoise" else ()
        return FAMILY_METHODS[self.family] + extra

    def make_psf(self) -> np.ndarray | None:
        if self.psf is None:
            return None
        kind, shape, params = self.psf
        return dn.make_psf(kind, shape=shape, **params)

    def sigma(self) -> float:
        """Noise sigma seen by the classical denoisers (1 in the Anscombe domain)."""
        return self.params["sigma"] if self.noise == "gaussian" else 1.0


TASKS = (
    *(
        Task(f"gaussian-{s}", "photos", "denoise", "gaussian", {"sigma": s / 255})
        for s in (15, 25, 50)
    ),
    *(
        Task(
            f"poisson-gaussian-{p}",
            "phantoms",
            "denoise",
            "poisson-gaussian",
            {"peak": float(p), "read_noise": 1.0},
        )
        for p in (5, 20, 100)
    ),
    Task(
        "deconv-gaussian",
        "photos",
        "deconv",
        "gaussian",
        {"sigma": 0.01},
        ("gaussian", (15, 15), {"sigma": 2.0}),
        "deconv-2d",
    ),
    # first zero of the Airy disk: 0.61 * 520 / 0.8 / 110 = 3.6 px
    Task(
        "deconv-airy-poisson",
        "phantoms",
        "deconv",
        "poisson",
        {"peak": 200.0},
        ("airy", None, {"wavelength": 520.0, "na": 0.8, "pixel_size": 110.0}),
        "deconv-2d",
    ),
    *(
        Task(
            f"salt-and-pepper-{a}",
            "photos",
            "impulse",
            "salt-and-pepper",
            {"amount": a / 100, "low": 0.0, "high": 1.0},
            model="salt-and-pepper",
        )
        for a in (5, 20)
    ),
    Task(
        "3d-poisson-blur",
        "volumes",
        "deconv",
        "poisson",
        {"peak": 100.0},
        ("gaussian", (9, 13, 13), {"sigma": (2.0, 1.5, 1.5)}),
        "deconv-3d",
    ),
    # Added for issue 11 (appended, so the earlier tasks keep their seeds):
    # 3D at tens of photons with read noise and a 2x axially elongated PSF ...
    *(
        Task(
            f"3d-lowlight-{p}",
            "volumes",
            "deconv",
            "poisson-gaussian",
            {"peak": float(p), "read_noise": 1.0},
            ("gaussian", (15, 13, 13), {"sigma": (3.0, 1.5, 1.5)}),
            "deconv-3d",
        )
        for p in (10, 20, 50)
    ),
    # ... a widefield PSF (NA 1.2 water, 100 nm pixels, 250 nm planes) ...
    Task(
        "3d-widefield-20",
        "volumes",
        "deconv",
        "poisson-gaussian",
        {"peak": 20.0, "read_noise": 1.0},
        (
            "widefield",
            (15, 15, 15),
            {"wavelength": 520.0, "na": 1.2, "refractive_index": 1.33, "pixel_size": 100.0},
        ),
        "deconv-3d",
    ),
    # ... and sCMOS data as it comes off the camera: offset 100 ADU, gain 2.
    *(
        Task(
            f"camera-{p}",
            "phantoms",
            "denoise",
            "poisson-gaussian",
            {"peak": float(p), "read_noise": 1.5},
            camera=(2.0, 100.0),
        )
        for p in (2, 20)
    ),
)
TASK_NAMES = tuple(t.name for t in TASKS)


@dataclass(frozen=True)
class Sizes:
    """Everything that --quick shrinks."""

    crop: int | None  # centre crop of the test photos (None: whole)
    n_test: int | None  # test images per task (None: all)
    phantom: int  # side of the 2D test phantoms
    volume: tuple[int, int, int]
    tune: int  # side of the tuning crops
    n_tune: int
    tune_volume: tuple[int, int, int]
    train_photos: tuple[str, ...]
    train_phantoms: int  # of each generator
    train_phantom_size: int
    n_train_volumes: int
    care_patch: tuple[int, int]
    care_batch: tuple[int, int]  # 2D, 3D
    care_patch_3d: tuple[int, int, int]
    care_pool: int
    figure_crop: int


FULL = Sizes(
    crop=None,
    n_test=None,
    phantom=256,
    volume=(32, 128, 128),
    tune=192,
    n_tune=4,
    tune_volume=(32, 96, 96),
    train_photos=TRAIN_PHOTOS,
    train_phantoms=4,
    train_phantom_size=256,
    n_train_volumes=3,
    care_patch=(64, 64),
    care_batch=(16, 4),
    care_patch_3d=(16, 48, 48),
    care_pool=32,
    figure_crop=160,
)
QUICK = Sizes(
    crop=64,
    n_test=2,
    phantom=64,
    volume=(16, 64, 64),
    tune=64,
    n_tune=2,
    tune_volume=(16, 48, 48),
    train_photos=TUNE_PHOTOS[:2],
    train_phantoms=1,
    train_phantom_size=96,
    n_train_volumes=1,
    care_patch=(32, 32),
    care_batch=(4, 1),
    care_patch_3d=(16, 32, 32),
    care_pool=4,
    figure_crop=64,
)


# ------------------------------------------------------------------- data


def _centre(image: np.ndarray, side: int | None) -> np.ndarray:
    if side is None:
        return image
    box = tuple(
        slice(max(0, (n - side) // 2), max(0, (n - side) // 2) + side) for n in image.shape
    )
    return np.ascontiguousarray(image[box])


def _photo(name: str) -> np.ndarray:
    from skimage import color, data

    image = getattr(data, name)()
    image = color.rgb2gray(image) if image.ndim == 3 else image / 255.0
    return np.asarray(image, np.float32)


def _phantom(size: int, seed: int) -> np.ndarray:
    """Cells (fluorescence sample) with filaments and beads (blurred sample), max 1."""
    from napari_deconvnet.io.samples import (
        FLUORESCENCE_CAMERA,
        blurred_phantom_data,
        fluorescence_phantom_data,
    )

    _, cells = fluorescence_phantom_data((size, size), seed)
    cells = (cells - FLUORESCENCE_CAMERA["offset"]) / FLUORESCENCE_CAMERA["peak"]
    _, filaments, _ = blurred_phantom_data((size, size), seed)
    image = np.clip(0.8 * cells + 0.6 * filaments, 0, None)
    return (image / image.max()).astype(np.float32)


def _volume(shape: tuple[int, int, int], seed: int) -> np.ndarray:
    from napari_deconvnet.io.samples import phantom_volume_data

    return phantom_volume_data(shape, seed)[1]


def load_test_set(kind: str, sizes: Sizes) -> list[tuple[str, np.ndarray]]:
    """(name, clean image) pairs of one kind of test data."""
    if kind == "photos":
        assert set(TEST_PHOTOS) <= set(TEST_IMAGES)
        out = [(n, _centre(_photo(n), sizes.crop)) for n in TEST_PHOTOS]
    elif kind == "phantoms":
        out = [(f"phantom-{s}", _phantom(sizes.phantom, s)) for s in TEST_PHANTOM_SEEDS]
    else:
        out = [(f"volume-{s}", _volume(sizes.volume, s)) for s in TEST_VOLUME_SEEDS]
    return out[: sizes.n_test]


def training_set(kind: str, sizes: Sizes, *, tuning: bool) -> list[np.ndarray]:
    """Clean training images (never test images): tuning crops or CARE sources."""
    if kind == "photos":
        names = TUNE_PHOTOS[: sizes.n_tune] if tuning else sizes.train_photos
        assert not set(names) & set(TEST_IMAGES), names
        images = [load_gray(n) for n in names]
        return [_centre(im, sizes.tune) for im in images] if tuning else images
    if kind == "phantoms":
        side = sizes.tune if tuning else sizes.train_phantom_size
        n = sizes.n_tune // 2 if tuning else sizes.train_phantoms
        n = max(n, 1)
        rng = np.random.default_rng(TRAIN_PHANTOM_SEEDS[0] + int(tuning))
        made = [make_phantom(rng, side) for _ in range(n)]
        sampled = [_phantom(side, s + 10 * int(tuning)) for s in TRAIN_PHANTOM_SEEDS[:n]]
        return made + sampled
    if tuning:
        return [_volume(sizes.tune_volume, TRAIN_VOLUME_SEEDS[0] + 10)]
    return [_volume(sizes.volume, s) for s in TRAIN_VOLUME_SEEDS[: sizes.n_train_volumes]]


def degrade(task: Task, clean: np.ndarray, seed: Any, psf: np.ndarray | None) -> np.ndarray:
    """Blur by the task's PSF (if any), then draw its noise."""
    blurred = clean if psf is None else blur(clean, psf)
    return add_noise(task, blurred, seed)


def blur(clean: np.ndarray, psf: np.ndarray) -> np.ndarray:
    return np.asarray(dn.synthesize(clean, "none", psf=psf), np.float32)


def add_noise(task: Task, blurred: np.ndarray, seed: Any) -> np.ndarray:
    return np.asarray(dn.synthesize(blurred, task.noise, seed=seed, **task.params), np.float32)


# ---------------------------------------------------------------- methods


def _anscombe(y: np.ndarray, task: Task) -> np.ndarray:
    """Generalised Anscombe transform of the photon counts (noise sigma about 1)."""
    peak, read = task.params["peak"], task.params["read_noise"]
    return 2 * np.sqrt(np.maximum(y * peak + 3 / 8 + read**2, 0)).astype(np.float32)


def _anscombe_inverse(d: np.ndarray, task: Task) -> np.ndarray:
    """Closed-form approximation of the exact unbiased inverse, in units of the peak."""
    peak, read = task.params["peak"], task.params["read_noise"]
    d = np.maximum(d.astype(np.float64), math.sqrt(1.5))  # its zero; not monotone below
    c = math.sqrt(1.5)
    counts = d**2 / 4 + c / (4 * d) - 11 / (8 * d**2) + 5 * c / (8 * d**3) - 1 / 8 - read**2
    return (np.maximum(counts, 0) / peak).astype(np.float32)


def _denoise(method: str, image: np.ndarray, sigma: float, p: dict) -> np.ndarray:
    if method == "nlm":
        return dn.denoise_nlm(image, sigma=sigma, h=p["h"] * sigma)
    if method == "tv":
        return dn.denoise_tv(image, weight=p["weight"] * sigma)
    if method == "wavelet":
        return dn.denoise_wavelet(image, sigma=p["sigma"] * sigma, wavelet=p["wavelet"])
    return dn.denoise_bm3d(image, sigma=sigma)


def apply(method: str, task: Task, image: np.ndarray, params: dict, ctx: dict) -> np.ndarray:
    """One method's restoration of one degraded image (not clipped)."""
    from scipy import ndimage

    if method == "identity":
        return image
    if method in ("nlm", "tv", "wavelet", "bm3d"):
        if task.noise == "poisson-gaussian":
            return _anscombe_inverse(_denoise(method, _anscombe(image, task), 1.0, params), task)
        return _denoise(method, image, task.sigma(), params)
    if method == "median":
        return ndimage.median_filter(image, size=params["size"], mode="reflect")
    if method == "switching-median":
        return dn.denoise_switching_median(image, task.params["low"], task.params["high"])
    if method == "richardson-lucy":
        return dn.richardson_lucy(
            np.clip(image, 0, None), ctx["psf"], params["iterations"], device=ctx["device"]
        )
    if method == "wiener":
        return dn.wiener(image, ctx["psf"], params["balance"])
    if method in ("care", "n2v"):
        from _care import predict

        return predict(ctx[method], image)
    net = ctx["nets"][method]
    own = ("ours", "ours-ft", *ENSEMBLE)
    psf = ctx["psf"] if method in own and task.family == "deconv" else None
    views = ENSEMBLE.get(method, 1)
    if task.camera is None:
        return dn.restore(image, net, psf=psf, device=ctx["device"], ensemble=views)
    out = dn.restore(task.to_adu(image), net, psf=psf, device=ctx["device"], ensemble=views)
    return task.from_adu(out)


def score(output: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    out = np.clip(output, 0, 1).astype(np.float32)
    return float(dn.psnr(out, clean, data_range=1.0)), float(dn.ssim(out, clean, data_range=1.0))


def tune(method: str, task: Task, pairs, ctx: dict, quick: bool) -> tuple[dict, float | None]:
    """The grid point with the best mean PSNR on training pairs, and that PSNR."""
    if method not in GRIDS:
        return {}, None
    grid = GRIDS[method][1 if quick else 0]
    if method == "richardson-lucy" and task.ndim == 3 and not quick:
        grid = RL_ITERATIONS_3D
    best, best_psnr = grid[0], -np.inf
    for params in grid:
        value = np.mean(
            [
                dn.psnr(np.clip(apply(method, task, y, params, ctx), 0, 1), x, data_range=1.0)
                for y, x in pairs
            ]
        )
        if value > best_psnr:
            best, best_psnr = params, float(value)
    return best, best_psnr


# ------------------------------------------------------------------- CARE


def care_draw(task: Task, sources: list[tuple[np.ndarray, np.ndarray]], region: tuple):
    """A CARE `draw(rng)`: a random region of a (clean, blurred) source, fresh noise."""

    def draw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        clean, blurred = sources[int(rng.integers(len(sources)))]
        shape = [min(r, n) for r, n in zip(region, clean.shape, strict=True)]
        corner = [int(rng.integers(n - s + 1)) for n, s in zip(clean.shape, shape, strict=True)]
        box = tuple(slice(c, c + s) for c, s in zip(corner, shape, strict=True))
        seed = int(rng.integers(2**63))
        return add_noise(task, np.ascontiguousarray(blurred[box]), seed), clean[box]

    return draw


def care_steps(task: Task, args) -> int | None:
    """The CARE step budget of a task: --care-steps(-3d), or None for --care-seconds."""
    return args.care_steps_3d if task.ndim == 3 else args.care_steps


def train_care_for(task: Task, sources, sizes: Sizes, args, seed: int):
    from _care import train_care

    patch = sizes.care_patch_3d if task.ndim == 3 else sizes.care_patch
    region = tuple(2 * p for p in patch)
    return train_care(
        care_draw(task, sources, region),
        ndim=task.ndim,
        seconds=args.care_seconds,
        steps=care_steps(task, args),
        patch=patch,
        batch=sizes.care_batch[task.ndim - 2],
        base=12 if task.ndim == 3 else 24,
        seed=seed,
        pool=sizes.care_pool,
    )


def train_n2v_for(task: Task, degraded: list[np.ndarray], sizes: Sizes, args, seed: int):
    from _care import train_n2v

    patch = sizes.care_patch_3d if task.ndim == 3 else sizes.care_patch
    return train_n2v(
        degraded,
        ndim=task.ndim,
        steps=args.n2v_steps,
        patch=patch,
        batch=sizes.care_batch[task.ndim - 2],
        base=12 if task.ndim == 3 else 24,
        seed=seed,
    )


def fine_tune_for(task: Task, images: list[np.ndarray], psf, sizes: Sizes, steps: int, seed: int):
    """``ours-ft``: the task's shipped model fine-tuned with ``dn.train`` (synthetic pairs).

    The clean training images CARE draws from, degraded afresh every batch
    by the task's own noise model and PSF (``dn.train``'s synthetic mode,
    the same ``synthesize`` the benchmark degrades with); CARE's patch and
    batch sizes; the fine-tuning defaults (lr, L2-SP, rehearsal, the
    never-worse-than-the-start validation on 10% of the images).
    """
    patch = sizes.care_patch_3d if task.ndim == 3 else sizes.care_patch
    batch = sizes.care_batch[task.ndim - 2]
    epochs = max(1, steps // 50)
    t0 = time.perf_counter()
    result = dn.train(
        list(images),
        model=task.model,
        noise={"model": task.noise, **task.params},
        psf=psf,
        epochs=epochs,
        steps_per_epoch=max(1, steps // epochs),
        patch_size=patch,
        batch_size=batch,
        seed=seed,
        device="cpu",
        preview=False,
    )
    net = result.model
    record = {
        "steps": epochs * max(1, steps // epochs),
        "batch": batch,
        "seconds": time.perf_counter() - t0,
        "parameters": sum(p.numel() for p in net.parameters()),
        "from": task.model,
        "best_epoch": result.best_epoch,
    }
    return net, record


def shipped_steps(model: str) -> dict | None:
    """Optimizer steps (every stage's) and batch size of a shipped model's training."""
    try:
        training = dn.model_info(model)["metadata"]["training"]
    except (KeyError, ValueError, TypeError):
        return None
    settings = {**training.get("settings", {}), **training.get("task", {})}
    # a model trained in stages (--init): the steps of every stage
    steps, stage = training.get("steps"), training.get("init_record")
    while steps is not None and stage:
        steps = None if stage.get("steps") is None else steps + stage["steps"]
        stage = stage.get("init_record")
    return {"steps": steps, "batch": settings.get("batch_size")}


# -------------------------------------------------------------------- run


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_task(task: Task, index: int, args, sizes: Sizes, cache: dict) -> dict:
    """Tune, train and evaluate every method of one task; the JSON record."""
    psf = task.make_psf()
    if task.data not in cache:
        cache[task.data] = {
            "test": load_test_set(task.data, sizes),
            "tune": training_set(task.data, sizes, tuning=True),
            "train": training_set(task.data, sizes, tuning=False),
        }
    data = cache[task.data]
    names = [n for n, _ in data["test"]]
    cleans = [x for _, x in data["test"]]
    degraded = [
        degrade(task, x, np.random.default_rng([args.seed, index, 0, i]), psf)
        for i, x in enumerate(cleans)
    ]
    tune_pairs = [
        (degrade(task, x, np.random.default_rng([args.seed, index, 1, i]), psf), x)
        for i, x in enumerate(data["tune"])
    ]
    ctx: dict[str, Any] = {"psf": psf, "device": args.device, "nets": {}}
    record: dict[str, Any] = {
        "images": names,
        "shape": [list(x.shape) for x in cleans],
        "degradation": {"noise": task.noise, **task.params, "psf": task.psf},
        "methods": {},
    }
    keep: dict[str, np.ndarray] = {"clean": cleans[0]}  # and each method's first output
    asked = tuple(m for m in ENSEMBLE if args.methods and m in args.methods)
    for method in task.methods + asked:
        if args.methods and method not in args.methods:
            continue
        t_method = time.perf_counter()
        entry: dict[str, Any] = {"status": "ok"}
        if method in ("ours", *ENSEMBLE) or method in EXTRA_MODELS:
            own = method == "ours" or method in ENSEMBLE
            model = task.model if own else method.removeprefix("ours-")
            entry["model"] = model
            if model not in dn.list_models():
                record["methods"][method] = {**entry, "status": "n/a", "reason": "not shipped"}
                _log(f"  {task.name} {method}: n/a ({model} is not shipped yet)")
                continue
            source = args.weights.get(model, model)  # --weights: a candidate file instead
            if source != model:
                entry["weights"] = str(source)
            ctx["nets"][method] = dn.load_model(source)
        if method == "bm3d" and importlib.util.find_spec("bm3d") is None:
            record["methods"][method] = {**entry, "status": "n/a", "reason": "bm3d not installed"}
            _log(f"  {task.name} bm3d: n/a (pip install bm3d)")
            continue
        if method == "care":
            if args.care_seconds <= 0 and not care_steps(task, args):
                record["methods"][method] = {**entry, "status": "n/a", "reason": "skipped"}
                continue
            sources = [(x, x if psf is None else blur(x, psf)) for x in data["train"]]
            ctx["care"], entry["training"] = train_care_for(
                task, sources, sizes, args, args.seed * 1000 + index
            )
            entry["training"]["ours"] = shipped_steps(task.model)
        if method == "ours-ft":
            steps = args.ft_steps_3d if task.ndim == 3 else args.ft_steps
            why = None
            if not steps:
                why = "skipped (--ft-steps 0)"
            elif task.camera is not None:
                why = "not run on camera (ADU) tasks"
            elif task.model not in dn.list_models():
                why = f"{task.model} is not shipped"
            if why:
                record["methods"][method] = {**entry, "status": "n/a", "reason": why}
                continue
            entry["model"] = task.model
            ctx["nets"][method], entry["training"] = fine_tune_for(
                task, data["train"], psf, sizes, steps, args.seed * 1000 + index
            )
        if method == "n2v":
            if task.noise not in N2V_NOISES or args.n2v_steps <= 0:
                continue
            ctx["n2v"], entry["training"] = train_n2v_for(
                task, degraded, sizes, args, args.seed * 1000 + index
            )
        entry["params"], entry["tuning_psnr"] = tune(method, task, tune_pairs, ctx, args.quick)
        if method in ("richardson-lucy", *LEARNED):  # torch: threads, allocator, FFT plans
            apply(method, task, _centre(degraded[0], 32), entry["params"], ctx)  # warm-up
        entry.update(psnr=[], ssim=[], seconds=[], megapixels=[])
        for i, (y, x) in enumerate(zip(degraded, cleans, strict=True)):
            t0 = time.perf_counter()
            out = apply(method, task, y, entry["params"], ctx)
            entry["seconds"].append(time.perf_counter() - t0)
            entry["megapixels"].append(y.size / 1e6)
            p, s = score(out, x)
            entry["psnr"].append(p)
            entry["ssim"].append(s)
            if i == 0:
                keep[method] = np.clip(out, 0, 1)
        entry["mean_psnr"] = float(np.mean(entry["psnr"]))
        entry["mean_ssim"] = float(np.mean(entry["ssim"]))
        entry["seconds_per_megapixel"] = float(
            np.sum(entry["seconds"]) / np.sum(entry["megapixels"])
        )
        record["methods"][method] = entry
        _log(
            f"  {task.name} {method}: {entry['mean_psnr']:.2f} dB {_params(entry['params'])} "
            f"({time.perf_counter() - t_method:.1f} s)"
        )
    if task.name in FIGURE_TASKS:
        cache.setdefault("figure", {})[task.name] = keep
    return record


# ----------------------------------------------------------------- report


def _cell(entry: dict | None) -> str:
    if entry is None:
        return "—"
    if entry["status"] != "ok":
        return "n/a"
    return f"{entry['mean_psnr']:.2f} / {entry['mean_ssim']:.3f}"


def markdown(results: dict) -> str:
    tasks = results["tasks"]
    methods = [m for m in METHODS if any(m in r["methods"] for r in tasks.values())]
    s = results["settings"]
    lines = [
        "## Restoration quality",
        "",
        f"Machine: {results['machine']}",
        "",
        *(
            [
                f"Baselines (every column but ours*) from {', '.join(results['baselines'])}, "
                f"run on {results['baselines_machine']}; the s/MP of columns from "
                "different runs compare across machines and loads, not within one run.",
                "",
            ]
            if results.get("baselines")
            else []
        ),
        f"Settings: {'quick (tiny crops and grids)' if s['quick'] else 'full'} run, "
        f"seed {s['seed']}, CARE trained {_care_budget(s)} per task, device "
        f"{s['device']}, {s['minutes']:.1f} min in all. Parameters tuned on training images "
        "only. Every output is clipped to [0, 1] before scoring (data range 1).",
        "",
        "PSNR (dB) / SSIM, mean over the task's test images; the best PSNR of a row is bold. "
        "—: not applicable; n/a: model not shipped, CARE skipped or bm3d not installed.",
        "",
        "| task | " + " | ".join(methods) + " |",
        "|---|" + "---:|" * len(methods),
    ]
    for name, record in tasks.items():
        entries = record["methods"]
        scored = {m: e["mean_psnr"] for m, e in entries.items() if e["status"] == "ok"}
        best = max(scored, key=scored.get) if scored else None
        cells = []
        for m in methods:
            text = _cell(entries.get(m))
            cells.append(f"**{text}**" if m == best else text)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Seconds per megapixel (megavoxel in 3D) of restoring the test images, mean over the "
        "tasks where a method applies (tuning and training excluded).",
        "",
        "| method | s / MP | tasks |",
        "|---|---:|---|",
    ]
    for m in methods:
        if m == "identity":
            continue
        rates = {
            n: r["methods"][m]["seconds_per_megapixel"]
            for n, r in tasks.items()
            if r["methods"].get(m, {}).get("status") == "ok"
        }
        if rates:
            lines.append(f"| {m} | {np.mean(list(rates.values())):.3g} | {', '.join(rates)} |")
    lines += ["", "| task | tuned parameters | CARE / N2V training |", "|---|---|---|"]
    for name, record in tasks.items():
        params = "; ".join(
            f"{m} {_params(e['params'])}" for m, e in record["methods"].items() if e.get("params")
        )
        texts = []
        for learned in ("care", "n2v", "ours-ft"):
            run = record["methods"].get(learned, {}).get("training")
            if not run:
                continue
            text = (
                f"{learned}: {run['steps']} steps × {run.get('batch', '?')} in "
                f"{run['seconds']:.0f} s, {run['parameters']:,} parameters"
            )
            if run.get("from"):
                text += f", fine-tuned from {run['from']}"
            ours = run.get("ours")
            if ours and ours.get("steps"):
                text += f" (ours: {ours['steps']} steps × {ours.get('batch') or '?'})"
            texts.append(text)
        lines.append(f"| {name} | {params or '—'} | {'; '.join(texts) or '—'} |")
    return "\n".join(lines) + "\n"


def _care_budget(settings: dict) -> str:
    steps, steps_3d = settings.get("care_steps"), settings.get("care_steps_3d")
    if steps or steps_3d:
        return f"{steps or settings['care_seconds']} steps (2D), {steps_3d or '—'} steps (3D)"
    return f"{settings['care_seconds']:g} s"


def _params(params: dict) -> str:
    def text(value: Any) -> str:
        if value is None:
            return "auto"
        return f"{value:g}" if isinstance(value, float) else str(value)

    return ", ".join(f"{k}={text(v)}" for k, v in params.items())


def figure(path: Path, panels: dict, tasks: dict, crop: int) -> None:
    """Clean, degraded, best classical and ours, side by side, for the figure tasks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [n for n in FIGURE_TASKS if n in panels]
    fig, axes = plt.subplots(len(rows), 4, figsize=(12, 3.2 * len(rows)), squeeze=False)
    for row, name in zip(axes, rows, strict=True):
        keep, entries = panels[name], tasks[name]["methods"]
        classical = {
            m: e["mean_psnr"]
            for m, e in entries.items()
            if m not in ("identity", *LEARNED) and e["status"] == "ok"
        }
        best = max(classical, key=classical.get)
        columns = [("clean", None), ("degraded", "identity"), (best, best), ("ours", "ours")]
        for ax, (label, method) in zip(row, columns, strict=True):
            ax.set_axis_off()
            if method is None:
                image, title = keep["clean"], f"{name}\nclean"
            elif method in keep:
                image, title = keep[method], f"{label}: {entries[method]['psnr'][0]:.2f} dB"
            else:
                model = entries[method].get("model")
                ax.text(0.5, 0.5, f"{model}\nnot shipped yet", ha="center", va="center")
                ax.set_title(label)
                continue
            if image.ndim == 3:
                image = image[image.shape[0] // 2]
            ax.imshow(_centre(image, crop), cmap="gray", vmin=0, vmax=1)
            ax.set_title(title)
    fig.suptitle("PSNR of the whole first test image (3D: the middle plane is shown)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _panels_path(json_path: Path) -> Path:
    return json_path.with_name(json_path.stem + ".panels.npz")


def depends_on_weights(method: str) -> bool:
    """``ours`` and ``ours-*`` restore with the shipped weights; the baselines do not."""
    return method == "ours" or method.startswith("ours-")


def baselines_only(run: dict) -> dict:
    """`run` without the columns that depend on the shipped weights, nor their digests.

    The classical methods, CARE and N2V depend only on the seed, the task and
    the settings, so their numbers from a run made with older weights stand
    beside the present weights' (``--baselines``).
    """
    tasks = {}
    for name, record in run["tasks"].items():
        methods = {m: r for m, r in record["methods"].items() if not depends_on_weights(m)}
        tasks[name] = {**record, "methods": methods}
    return {**run, "tasks": tasks, "weights": {}}


def load_panels(paths: list[Path], n_baselines: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """The figure crops saved beside the runs' JSON files, later runs winning.

    The first `n_baselines` runs give only their baselines' crops: their
    ``ours*`` crops are of other weights.
    """
    panels: dict[str, dict[str, np.ndarray]] = {}
    for i, p in enumerate(paths):
        npz = _panels_path(Path(p))
        if npz.is_file():
            with np.load(npz) as saved:
                for key in saved.files:
                    task, method = key.split("/", 1)
                    if i < n_baselines and depends_on_weights(method):
                        continue
                    panels.setdefault(task, {})[method] = saved[key]
    return panels


def merge(
    paths: list[Path], markdown_path, json_path, figure_path, baselines: list[Path] = ()
) -> dict:
    """One report from several runs (e.g. tasks run in separate processes).

    The runs must share the seed and settings; a task's noise draws depend only
    on the seed and the task, so split runs give the numbers of one run.
    `baselines` are runs whose weight-independent columns come first (their
    ``ours*`` columns are dropped: they may be of older weights); a task in
    both must have the same images, shape and degradation.
    """
    runs = [baselines_only(json.loads(Path(p).read_text())) for p in baselines]
    runs += [json.loads(Path(p).read_text()) for p in paths]
    paths = [*baselines, *paths]
    # what may differ between the runs joined (ours-ft's budget is in its own records)
    own = ("minutes", "methods", "ft_steps", "ft_steps_3d")
    settings = {k: v for k, v in runs[0]["settings"].items() if k not in own}
    for p, run in zip(paths, runs, strict=True):
        other = {k: v for k, v in run["settings"].items() if k not in own}
        if other != settings:
            raise SystemExit(f"{p} was run with other settings ({other} != {settings})")
    found: dict[str, dict] = {}
    for path, run in zip(paths, runs, strict=True):  # later runs win
        for name, record in run["tasks"].items():
            # which run each column came from (speeds compare only within one run)
            record = {
                **record,
                "methods": {
                    m: {"run": Path(path).name, **e} for m, e in record["methods"].items()
                },
            }
            if name in found:
                same = ("images", "shape", "degradation")
                if any(found[name].get(k) != record.get(k) for k in same):
                    raise SystemExit(f"{name}: the runs restored different test data")
                found[name] = {**found[name], "methods": {**found[name]["methods"]}}
                found[name]["methods"].update(record["methods"])
            else:
                found[name] = record
    tasks = {t.name: found[t.name] for t in TASKS if t.name in found}
    settings["minutes"] = sum(run["settings"]["minutes"] for run in runs)
    weights = {name: digest for run in runs for name, digest in run.get("weights", {}).items()}
    for run in runs:
        for name, digest in run.get("weights", {}).items():
            if weights[name] != digest:
                raise SystemExit(f"the runs used different {name} files; merge runs of one build")
    main_run = runs[len(baselines)] if len(runs) > len(baselines) else runs[0]
    results = {"machine": main_run["machine"], "weights": weights, "settings": settings}
    if baselines:
        results["baselines"] = [Path(b).name for b in baselines]
        results["baselines_machine"] = runs[0]["machine"]
    results["tasks"] = tasks
    panels = load_panels(paths, len(baselines))
    text = markdown(results)
    print(text)
    if markdown_path:
        markdown_path.write_text(text)
    if json_path:
        json_path.write_text(json.dumps(results, indent=1))
    if figure_path and panels:
        crop = QUICK.figure_crop if settings["quick"] else FULL.figure_crop
        figure(figure_path, panels, tasks, crop)
    return results


def weight_hashes(overrides: dict[str, Path] | None = None) -> dict[str, str]:
    """sha256 of every shipped weights file: which models these numbers are for.

    A model given by ``--weights NAME=PATH`` is listed with that file's hash
    (and its path), since its column was made with it.
    """
    import hashlib

    folder = Path(dn.__file__).parent / "weights"
    out = {
        f.name: hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(folder.glob("*.safetensors"))
    }
    for name, path in (overrides or {}).items():
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        out[f"{name}.safetensors"] = f"{digest} ({path}, not the shipped file)"
    return out


def _weights_arg(text: str) -> tuple[str, Path]:
    """``NAME=PATH`` of ``--weights``."""
    name, sep, path = text.partition("=")
    if not sep or name not in dn.list_models() or not Path(path).is_file():
        raise argparse.ArgumentTypeError(
            f"--weights takes NAME=PATH with a shipped model's name and an existing file, "
            f"got {text!r}"
        )
    return name, Path(path)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny crops and grids (seconds)")
    parser.add_argument("--tasks", nargs="+", choices=TASK_NAMES, default=list(TASK_NAMES))
    parser.add_argument("--seed", type=int, default=0, help="noise draws and CARE training")
    parser.add_argument(
        "--care-seconds",
        type=float,
        default=None,
        help="CARE training time per task (default 480, quick 2; 0 skips CARE)",
    )
    parser.add_argument(
        "--care-steps",
        type=int,
        help="train the 2D CARE baseline for exactly this many steps (load-independent; "
        "overrides --care-seconds)",
    )
    parser.add_argument(
        "--care-steps-3d", type=int, help="the same for the 3D CARE baseline (e.g. ours: 1200)"
    )
    parser.add_argument(
        "--n2v-steps",
        type=int,
        help="steps of the Noise2Void baseline on the Poisson tasks (default: --care-steps, "
        "or 0 = skipped when CARE is time-budgeted)",
    )
    parser.add_argument(
        "--ft-steps",
        type=int,
        default=None,
        help="ours-ft: fine-tuning steps of the shipped model per 2D task (default 300, "
        "quick 2; 0 skips)",
    )
    parser.add_argument(
        "--ft-steps-3d", type=int, default=None, help="the same per 3D task (default 150)"
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=METHODS,
        help="run only these methods (e.g. a new model's column, joined by --merge)",
    )
    parser.add_argument("--device", default="cpu", help="for dn.restore and Richardson-Lucy")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: torch's own; quick: 1, so a busy CPU does not stall it)",
    )
    parser.add_argument("--markdown", type=Path, help="also write the tables here")
    parser.add_argument("--json", type=Path, help="write every number here")
    parser.add_argument(
        "--figure", type=Path, help=f"crops side by side (default {DEFAULT_FIGURE} unless --quick)"
    )
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        help="combine earlier runs' --json files (and their .panels.npz) into one report",
    )
    parser.add_argument(
        "--baselines",
        type=Path,
        nargs="+",
        default=[],
        help="with --merge: take the classical, CARE and N2V columns of these runs "
        "(made with other weights; their ours* columns are dropped), e.g. the fair "
        "baselines' run beside a fresh run of --methods ours",
    )
    parser.add_argument(
        "--weights",
        type=_weights_arg,
        nargs="+",
        default=[],
        metavar="NAME=PATH",
        help="restore with these files in place of the shipped models of those names "
        "(a candidate's columns, e.g. denoise-2d=runs/cand.safetensors); ours-ft still "
        "starts from the shipped file",
    )
    args = parser.parse_args(argv)
    args.weights = dict(args.weights)
    if args.merge:
        return merge(args.merge, args.markdown, args.json, args.figure, args.baselines)
    if args.care_seconds is None:
        args.care_seconds = 2.0 if args.quick else 480.0
    if args.ft_steps is None:
        args.ft_steps = 2 if args.quick else 300
    if args.ft_steps_3d is None:
        args.ft_steps_3d = 2 if args.quick else 150
    if args.n2v_steps is None:
        args.n2v_steps = args.care_steps or (3 if args.quick else 0)
    if args.threads or args.quick:
        import torch

        torch.set_num_threads(args.threads or 1)
    # the README's figure only from a run of all its tasks (a run of some tasks replaced
    # it with a figure of those alone, session 69); --figure names one for any run
    whole = set(FIGURE_TASKS) <= set(args.tasks)
    figure_path = args.figure or (DEFAULT_FIGURE if whole and not args.quick else None)
    sizes = QUICK if args.quick else FULL
    start = time.perf_counter()
    cache: dict = {}
    tasks = {}

    def record() -> dict:
        return {
            "machine": machine(),
            "weights": weight_hashes(args.weights),
            "settings": {
                "quick": args.quick,
                "seed": args.seed,
                "care_seconds": args.care_seconds,
                "care_steps": args.care_steps,
                "care_steps_3d": args.care_steps_3d,
                "n2v_steps": args.n2v_steps,
                "device": args.device,
                "methods": args.methods,
                "minutes": (time.perf_counter() - start) / 60,
            },
            "tasks": tasks,
        }

    for index, task in enumerate(TASKS):
        if task.name in args.tasks:
            t0 = time.perf_counter()
            tasks[task.name] = run_task(task, index, args, sizes, cache)
            _log(f"{task.name}: done in {time.perf_counter() - t0:.1f} s")
            if args.json:  # the tasks so far: a long run killed midway keeps them
                args.json.write_text(json.dumps(record(), indent=1))
    results = record()
    text = markdown(results)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
        if cache.get("figure"):
            np.savez_compressed(
                _panels_path(args.json),
                **{f"{t}/{m}": a for t, keep in cache["figure"].items() for m, a in keep.items()},
            )
    if figure_path and cache.get("figure") and not args.methods:  # (a partial run: no figure)
        figure(figure_path, cache["figure"], tasks, sizes.figure_crop)
    return results


if __name__ == "__main__":
    main()
