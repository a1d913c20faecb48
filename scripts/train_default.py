"""Train the shipped default model ``denoise-2d``: a blind 2D denoiser.

Reproducible: everything random is drawn from generators seeded by ``--seed``
and torch runs with deterministic algorithms. By default the wall-clock budget
(``--max-seconds``) decides how many steps are taken and the learning rate
follows a cosine over that time; ``--steps N`` instead trains exactly N steps
with the cosine over steps, which gives the same weights on every run (with the
same thread count and CPU). Training runs in bfloat16 autocast on CPUs that
support it (``--precision float32`` otherwise); validation and the saved model
are float32.

Engine
    The package's own training loop (:func:`napari_deconvnet.core.fit.fit`,
    the :class:`~napari_deconvnet.core.trainer.Trainer` that
    ``dn.train`` runs): AdamW, the cosine schedule (by the clock under a time
    budget), gradient clipping, the weights' moving average (EMA) validated
    beside them, the best of raw and EMA weights by validation PSNR kept,
    and with ``--checkpoint DIR`` an autosave that ``--resume`` continues.

Data
    Grayscale images bundled with scikit-image (never the benchmark images
    camera, astronaut, coins, moon, chelsea/cat and cell) plus the package's
    procedural fluorescence-like phantoms
    (:func:`napari_deconvnet.core.phantoms.cells_2d`: blobs, filaments, cells
    on a smooth background). The right-hand strips of two photographs are held out for
    validation and never used for gradient steps.
Degradation
    Per region: Gaussian noise (sigma uniform in [5, 50]/255) or camera
    Poisson-Gaussian noise (peak log-uniform in [2, 1000] photons, read noise
    up to 2 electrons, random camera gain and offset), both from
    :func:`napari_deconvnet.core.noise.synthesize`, after a random contrast
    change; some Gaussian regions are quantised to 8 bits (with clipping).
Normalisation (the inference contract)
    ``dn.restore`` maps the 0.5 and 99.5 percentiles of the whole noisy image
    to 0 and 1. Here a 192-256 px region is cropped, degraded, and both noisy
    and clean are normalised with the percentiles of the noisy region; the
    training patches (with flips and 90-degree rotations) come from it.

Noise-level conditioning (``--noise-channel``)
    Trains ``denoise-2d-nl``, the same network told the noise level: a
    second input channel (:class:`~napari_deconvnet.core.kinds.NoiseConditioned`)
    holds the image plus the noise standard deviation that the variance line
    fitted by ``dn.estimate_noise`` to the noisy region predicts at each
    pixel, estimated exactly as ``dn.restore`` estimates it on a whole image.
    With ``--init`` a one-channel model (the shipped ``denoise-2d``) is
    widened: the new channel's first-layer weights start at zero, so training
    starts from the blind model's exact output.

Usage::

    python scripts/train_default.py --max-seconds 1200 --seed 0
    python scripts/train_default.py --noise-channel \
        --init src/napari_deconvnet/weights/denoise-2d.safetensors \
        --lr 5e-4 --threads 1 --max-seconds 6000 --checkpoint /tmp/nl --resume
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from skimage import color, data, transform
from skimage.metrics import peak_signal_noise_ratio

from napari_deconvnet.core.dark_scenes import sparse_scene
from napari_deconvnet.core.devices import resolve_device
from napari_deconvnet.core.fit import fit
from napari_deconvnet.core.kinds import NoiseConditioned
from napari_deconvnet.core.model import DeconvNet, DeconvNetConfig
from napari_deconvnet.core.noise import synthesize
from napari_deconvnet.core.normalization import percentiles
from napari_deconvnet.core.persistence import load_model
from napari_deconvnet.core.phantoms import (
    BRIGHT_CONTRAST,
    bright_objects,
    cells_2d,
    dead_leaves,
    phantom,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _train_common import (  # noqa: E402  (sibling module: the engine's helpers)
    add_bright_objects_flag,
    add_sparse_spot_share_flag,
    autosave_path,
    best_record,
    engine_precision,
    init_record,
    reporter,
    save_with_log,
    start_weights,
    validation_score,
    versions,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "src" / "napari_deconvnet" / "weights" / "denoise-2d.safetensors"
NL_OUT = ROOT / "src" / "napari_deconvnet" / "weights" / "denoise-2d-nl.safetensors"
#: The conditioning record of the noise-level model (``--noise-channel``).
NOISE_CONDITIONING = {"method": "noise-level", "window": 3}

CONFIG = dict(
    ndim=2,
    in_channels=1,
    out_channels=1,
    depth=2,
    base_channels=24,
    convs_per_level=2,
    skip="add",
    residual=True,
    normalization={"method": "percentile", "low": 0.5, "high": 99.5},
)
#: Benchmark images: never trained on. ``cat`` is the same picture as ``chelsea``.
TEST_IMAGES = ("camera", "astronaut", "coins", "moon", "chelsea", "cat", "cell")
#: Training images and their sampling weights (photographs weigh more).
TRAIN_IMAGES = {
    "coffee": 2.0,
    "rocket": 2.0,
    "stereo_motorcycle": 2.0,
    "retina": 1.5,
    "immunohistochemistry": 1.5,
    "grass": 1.5,
    "gravel": 1.5,
    "brick": 1.5,
    "clock": 1.0,
    "hubble_deep_field": 1.0,
    "colorwheel": 0.25,
    "logo": 0.25,
    "page": 0.25,
    "text": 0.25,
    "horse": 0.25,
    "shepp_logan_phantom": 0.25,
    "microaneurysms": 0.5,
}
#: Right-hand strips of these images are held out for validation.
VALIDATION_STRIPS = {"rocket": 160, "stereo_motorcycle": 160}
PHANTOM_WEIGHT = 0.2  # fraction of regions drawn from phantoms
#: Side of the dead-leaves scenes (``--dead-leaves``) that regions are cropped from.
DEAD_LEAVES_SIDE = 384


def dead_leaves_pool(share: float, count: int, seed: int) -> tuple[float, list] | None:
    """``(share, scenes)`` for a Sampler: `count` dead-leaves scenes on their own stream.

    ``None`` at share 0, so that a run without ``--dead-leaves`` draws as before.
    """
    if share <= 0:
        return None
    rng = np.random.default_rng([seed, 7])  # its own stream: the other scenes stay as they were
    side = DEAD_LEAVES_SIDE
    return share, [dead_leaves(rng, (side, side)) for _ in range(count)]


def dark_scene_pool(
    share: float, shape: tuple[int, ...], spot_share: float, seed: int
) -> tuple[float, list] | None:
    """``(share, scenes)`` for a sampler: :data:`DARK_SCENES` scenes of objects in the
    dark (``--sparse-scenes``; core.dark_scenes.sparse_scene) of `shape`, on their own
    stream; ``None`` at share 0, so that a run without them draws as before."""
    if share <= 0:
        return None
    rng = np.random.default_rng([seed, 16])  # its own stream: the other scenes stay as they were
    return share, [sparse_scene(rng, shape, spot_share) for _ in range(DARK_SCENES)]


def dead_leaves_record(share: float, count: int) -> dict:
    """The training record's entry for ``--dead-leaves``."""
    return {
        "share_of_photograph_regions": share,
        "scenes": count if share > 0 else 0,
        "side": DEAD_LEAVES_SIDE,
        "generator": "napari_deconvnet.core.phantoms.dead_leaves",
    }


SIGMA_RANGE = (5 / 255, 50 / 255)
PEAK_RANGE = (2.0, 1000.0)
#: Light noise (``--light-noise``): nearly clean images, which a denoiser must not blur.
LIGHT_SIGMA_RANGE = (0.5 / 255, 5 / 255)  # log-uniform
LIGHT_PEAK_RANGE = (1000.0, 30000.0)  # photons, log-uniform
READ_NOISE_MAX = 2.0  # electrons
#: Photon counting (``--low-counts``): pure Poisson counts (no read noise, a camera
#: gain and offset) at a few photons, where most pixels are 0 or 1 count.
LOW_COUNT_PEAK_RANGE = (1.0, 10.0)  # photons, log-uniform
#: Speckle (``--speckle``): multiplicative noise y = x (1 + sigma n), sigma log-uniform.
SPECKLE_SIGMA_RANGE = (0.02, 0.35)
NORM = CONFIG["normalization"]


# ---------------------------------------------------------------- data


def load_gray(name: str) -> np.ndarray:
    """A scikit-image sample as float32 gray in [0, 1]."""
    assert name not in TEST_IMAGES, name
    image = getattr(data, name)()
    if name == "stereo_motorcycle":
        image = image[0]
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 4:
        image = color.rgba2rgb(image)
    if image.ndim == 3:
        image = color.rgb2gray(image)
    image = image.astype(np.float64)
    if image.max() > 1.0:
        image = image / 255.0
    return np.clip(image, 0, 1).astype(np.float32)


#: The phantoms of the training data (the package's generator; benchmarks import this name).
make_phantom = cells_2d


def degrade(
    rng: np.random.Generator,
    clean: np.ndarray,
    light: float = 0.0,
    counts: float = 0.0,
    speckle: float = 0.0,
    dark: bool = False,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """(noisy, clean) in a random intensity scale, with the noise record.

    With probability `light` the noise is light (:data:`LIGHT_SIGMA_RANGE`,
    :data:`LIGHT_PEAK_RANGE`): a nearly clean image, whose detail the
    denoiser must keep. With probability `counts` it is photon counting:
    pure Poisson counts at :data:`LOW_COUNT_PEAK_RANGE` through a camera gain
    and offset; with probability `speckle` multiplicative noise
    (:data:`SPECKLE_SIGMA_RANGE`) in a random scale. At ``light=counts=speckle=0``
    the draws are those of earlier runs. A `dark` region (objects on black,
    ``--sparse-scenes``) keeps its black: no level is added.
    """
    if not dark and rng.random() < 0.5:  # random contrast and level
        low = rng.uniform(0.0, 0.3)
        clean = low + rng.uniform(0.4, 1.0 - low) * clean
    seed = int(rng.integers(2**63))
    special = float(rng.random()) if counts + speckle > 0 else 1.0
    if special < speckle:
        sigma = math.exp(rng.uniform(*np.log(SPECKLE_SIGMA_RANGE)))
        noisy = synthesize(clean, "speckle", sigma=sigma, seed=seed)
        scale, offset = 10 ** rng.uniform(-2, 3), rng.uniform(0, 1) * 100
        noisy, clean = noisy * scale + offset, clean * scale + offset
        info = {"noise": "speckle", "sigma": sigma, "scale": scale, "offset": offset}
        info["light"] = False
        return noisy.astype(np.float32), clean.astype(np.float32), info
    if special < speckle + counts:
        peak = math.exp(rng.uniform(*np.log(LOW_COUNT_PEAK_RANGE)))
        gain = math.exp(rng.uniform(np.log(0.5), np.log(5.0)))  # electrons per ADU
        offset = rng.uniform(0, 500)
        signal = clean * (peak / gain)
        noisy = synthesize(
            signal, "poisson-gaussian", gain=gain, offset=offset, read_noise=0.0, seed=seed
        )
        info = {"noise": "poisson", "peak": peak, "gain": gain, "offset": offset, "light": False}
        return noisy.astype(np.float32), (signal + offset).astype(np.float32), info
    is_light = light > 0 and bool(rng.random() < light)
    if rng.random() < 0.5:
        if is_light:
            sigma = math.exp(rng.uniform(*np.log(LIGHT_SIGMA_RANGE)))
        else:
            sigma = rng.uniform(*SIGMA_RANGE)
        noisy = synthesize(clean, "gaussian", sigma=sigma, seed=seed)
        info = {"noise": "gaussian", "sigma": sigma}
        if rng.random() < 0.2 and clean.max() <= 1.0:  # an 8-bit image: quantised, clipped
            noisy = np.clip(np.rint(noisy * 255), 0, 255) / 255
            info["uint8"] = True
        scale, offset = 10 ** rng.uniform(-2, 3), rng.uniform(-1, 1) * 100
        noisy, clean = noisy * scale + offset, clean * scale + offset
        info["scale"] = scale
    else:
        peak = math.exp(rng.uniform(*np.log(LIGHT_PEAK_RANGE if is_light else PEAK_RANGE)))
        gain = math.exp(rng.uniform(np.log(0.5), np.log(5.0)))  # electrons per ADU
        offset = rng.uniform(0, 500)
        read = rng.uniform(0, READ_NOISE_MAX)
        signal = clean * (peak / gain)  # expected ADU above the offset
        noisy = synthesize(
            signal, "poisson-gaussian", gain=gain, offset=offset, read_noise=read, seed=seed
        )
        clean = signal + offset
        info = {"noise": "poisson-gaussian", "peak": peak, "gain": gain, "read_noise": read}
    info["light"] = is_light
    return noisy.astype(np.float32), clean.astype(np.float32), info


def normalize(noisy: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """The inference contract: whole-image percentiles of the noisy image to 0 and 1.

    `others` (the clean image, a conditioning channel) take the same mapping.
    """
    lo, hi = percentiles(noisy, [NORM["low"], NORM["high"]])  # dequantised on a lattice
    scale = hi - lo if hi > lo else 1.0
    return tuple(((a - lo) / scale).astype(np.float32) for a in (noisy, *others))


def input_stack(noisy: np.ndarray, kind: NoiseConditioned | None) -> np.ndarray:
    """The network's input channels in the image's scale: the image, and its noise map."""
    if kind is None:
        return noisy[None]
    return np.stack([noisy, kind.input_channels(noisy[None], None)[0]])


class Sampler:
    """Training batches: regions cropped, degraded and normalised, then patches."""

    def __init__(
        self,
        images,
        phantoms,
        rng,
        patch,
        region,
        patches_per_region,
        kind=None,
        sparse=None,
        light=0.0,
        counts=0.0,
        speckle=0.0,
        bright=0.0,
        leaves=None,
        dark=None,
    ):
        self.kind = kind
        #: (share, scenes): that share of phantom regions is cropped from these scenes of
        #: objects in the dark (``--sparse-scenes``; core.dark_scenes.sparse_scene)
        self.dark = dark
        #: whether the last region came from those scenes
        self.in_dark = False
        #: (share, scenes): that share of photograph regions is cropped from these
        #: dead-leaves scenes (core.phantoms.dead_leaves) instead
        self.leaves = leaves
        #: share of regions with bright objects added (core.phantoms.bright_objects)
        self.bright = bright
        self.light = light
        self.counts = counts
        self.speckle = speckle
        #: (share, scenes): that share of phantom regions comes from these scenes
        self.sparse = sparse
        self.images = images
        self.names = list(images)
        weights = np.array([TRAIN_IMAGES[n] for n in self.names])
        self.weights = weights / weights.sum()
        self.phantoms = phantoms
        self.rng = rng
        self.patch = patch
        self.region = region
        self.per_region = patches_per_region

    def reseed(self, seed: Any) -> None:
        """A fresh random stream (a resumed run draws new regions)."""
        self.rng = np.random.default_rng(seed)

    def _region(self) -> np.ndarray:
        rng = self.rng
        size = int(rng.integers(self.region[0], self.region[1] + 1))
        self.in_dark = False
        if rng.random() < PHANTOM_WEIGHT:
            pool = self.phantoms
            if self.sparse is not None and rng.random() < self.sparse[0]:
                pool = self.sparse[1]
            if self.dark is not None and rng.random() < self.dark[0]:  # no draw without
                pool, self.in_dark = self.dark[1], True
            source = pool[rng.integers(len(pool))]
            zoom = 1.0
        elif self.leaves and rng.random() < self.leaves[0]:  # no draw at 0: runs as before
            source = self.leaves[1][rng.integers(len(self.leaves[1]))]
            zoom = 1.0
        else:
            source = self.images[self.names[rng.choice(len(self.names), p=self.weights)]]
            zoom = rng.uniform(0.5, 1.0) if rng.random() < 0.3 else 1.0
        for _ in range(10):  # avoid mostly empty regions (retina and hubble borders)
            h, w = source.shape
            side = min(int(round(size / zoom)), h, w)
            y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
            crop = source[y : y + side, x : x + side]
            if crop.std() > 0.02 or rng.random() < 0.1 or (self.in_dark and crop.max() > 0.05):
                break
        if self.in_dark:  # objects in the dark stay there: a random contrast, no level
            crop = rng.uniform(0.4, 1.0) * crop
        if zoom != 1.0:
            out = max(self.patch, int(round(side * zoom)))
            crop = transform.resize(crop, (out, out), anti_aliasing=True, order=1)
        return crop.astype(np.float32)

    def batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng, p = self.rng, self.patch
        xs, ys = [], []
        while len(xs) < batch_size:
            region = self._region()
            if self.bright > 0 and rng.random() < self.bright:  # no draw at 0: runs as before
                region = region + bright_objects(rng, region.shape)[0]
            dark = self.in_dark
            noisy, clean, _ = degrade(rng, region, self.light, self.counts, self.speckle, dark)
            stack = input_stack(noisy, self.kind)
            *channels, clean = normalize(*stack, clean)
            stack = np.stack(channels)
            if dark and (np.abs(clean).max() > 10 or np.abs(stack).max() > 50):
                # a nearly empty region (a few photons in the dark): its percentiles
                # blow the normalised values up, and one such batch can undo many steps
                continue
            h, w = noisy.shape
            for _ in range(min(self.per_region, batch_size - len(xs))):
                y, x = rng.integers(0, h - p + 1), rng.integers(0, w - p + 1)
                a, b = stack[:, y : y + p, x : x + p], clean[None, y : y + p, x : x + p]
                k, flip = int(rng.integers(4)), rng.random() < 0.5
                a, b = np.rot90(a, k, axes=(1, 2)), np.rot90(b, k, axes=(1, 2))
                if flip:
                    a, b = a[..., ::-1], b[..., ::-1]
                xs.append(np.ascontiguousarray(a))
                ys.append(np.ascontiguousarray(b))
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


#: Validation noises: ``standard`` (what the shipped ``denoise-2d`` was chosen on) and
#: ``wide``, which adds light noise at both ends, for a loss (``balanced-mse``) meant
#: to serve light noise as well as heavy.
VALIDATION_NOISES = {
    "standard": [
        ("gaussian-25", "gaussian", {"sigma": 25 / 255}),
        ("gaussian-50", "gaussian", {"sigma": 50 / 255}),
        ("poisson-gaussian-30", "poisson-gaussian", {"peak": 30.0, "read_noise": 1.0}),
    ],
}
VALIDATION_NOISES["wide"] = [
    ("gaussian-10", "gaussian", {"sigma": 10 / 255}),
    *VALIDATION_NOISES["standard"],
    ("poisson-gaussian-300", "poisson-gaussian", {"peak": 300.0, "read_noise": 1.0}),
]
#: ``full``: ``wide`` and light noise (for ``--light-noise``), where blurring detail costs.
VALIDATION_NOISES["full"] = [
    ("gaussian-2", "gaussian", {"sigma": 2 / 255}),
    *VALIDATION_NOISES["wide"],
    ("poisson-gaussian-5000", "poisson-gaussian", {"peak": 5000.0, "read_noise": 1.0}),
]


#: Validation of sparse scenes (``--sparse-phantoms``): few photons, no read noise.
SPARSE_NOISES = [
    ("poisson-10", "poisson", {"peak": 10.0}),
    ("poisson-20", "poisson", {"peak": 20.0}),
]
#: Validation of scenes of objects in the dark (``--sparse-scenes``): how many, and
#: their noise (pure photon counts, as from a photon-counting detector)
DARK_VALIDATION_SCENES = 3
DARK_NOISES = [
    ("dark-poisson-30", "poisson", {"peak": 30.0}),
    ("dark-poisson-300", "poisson", {"peak": 300.0}),
]
#: ``--sparse-scenes``: scenes of objects in the dark drawn before training (256 px)
DARK_SCENES = 64
#: Validation of photon counting (``--low-counts``): the sparse scenes at 2 photons.
COUNT_NOISES = [("poisson-2", "poisson", {"peak": 2.0})]
#: Validation of speckle (``--speckle``): the held-out strips at 10%.
SPECKLE_NOISES = [("speckle-10", "speckle", {"sigma": 0.1})]
#: Validation of bright objects (``--bright-objects``): the two general scenes with
#: objects 30 and 300 times brighter, scored on their surroundings only.
BRIGHT_NOISES = [
    ("bright-30-poisson-20", "poisson", {"peak": 20.0}, 30.0),
    ("bright-300-poisson-100", "poisson", {"peak": 100.0}, 300.0),
    ("bright-100-gaussian-10", "gaussian", {"sigma": 10 / 255}, 100.0),
]
#: Surroundings: where the bright objects are below this share of their peak.
BRIGHT_SURROUNDINGS = 1e-3
#: The structures of the two sparse validation scenes (dark background, 160 px).
SPARSE_KINDS = (("beads", "filaments"), ("nuclei", "membranes"))


def sparse_phantom(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """A scene of the package's general generator: one to three structures on a dim background.

    Beads, filaments, nuclei, membranes or textures
    (:func:`napari_deconvnet.core.phantoms.phantom`): mostly dark, with isolated
    structures, the scenes where a photon-starved pixel must not become a spot.
    """
    return phantom((size, size), rng=rng)


def validation_set(
    strips: dict[str, np.ndarray],
    seed: int,
    noises: str = "standard",
    sharp: bool = False,
    sparse: bool = False,
    counts: bool = False,
    speckle: bool = False,
    bright: bool = False,
    dark: bool = False,
) -> list[dict]:
    """Fixed noisy/clean pairs from held-out strips and unseen phantoms.

    With `sharp`, one more phantom is a sharp scene (spots and filaments down to
    a pixel): the structures a run with ``--sharp-phantoms`` learns are then
    weighed in the choice of its weights too. With `sparse`, two scenes of the
    general generator (beads and filaments; nuclei and membranes) are added at
    10 and 20 photons with pure Poisson noise (:data:`SPARSE_NOISES`), so that
    weights which turn isolated photons into spots are not chosen. With
    `counts`, those two scenes also at 2 photons (:data:`COUNT_NOISES`); with
    `speckle`, the held-out strips with 10% speckle (:data:`SPECKLE_NOISES`);
    with `bright`, those two scenes with bright objects (:data:`BRIGHT_NOISES`),
    scored on the pixels around the objects (a ``"mask"``), where a network
    that never saw such contrast spoils the dim scene. With `dark`,
    :data:`DARK_VALIDATION_SCENES` scenes of objects in the dark
    (core.dark_scenes.sparse_scene) at :data:`DARK_NOISES`.
    Each addition draws from its own stream: the other pairs stay as they were.
    """
    rng = np.random.default_rng([seed, 1])
    crops = []
    for name, strip in strips.items():
        h = strip.shape[0]
        for top in (h // 4 - 80, 3 * h // 4 - 80):
            crops.append((name, strip[top : top + 160, :160]))
    for i in range(2):
        crops.append((f"phantom{i}", make_phantom(rng, 160)))
    if sharp:
        crops.append(("sharp-phantom", make_phantom(rng, 160, sharp=1.0)))
    pairs = []
    for k, (name, clean) in enumerate(crops):
        for j, (label, noise, params) in enumerate(VALIDATION_NOISES[noises]):
            noisy = synthesize(clean, noise, seed=1000 * seed + 10 * k + j, **params)
            pairs.append({"image": name, "noise": label, "clean": clean, "noisy": noisy})
    if sparse:  # each addition its own stream: the other pairs stay as they were
        pairs += _general_pairs([seed, 2], SPARSE_NOISES, 1000 * seed + 500, "sparse")
    if counts:
        pairs += _general_pairs([seed, 4], COUNT_NOISES, 1000 * seed + 700, "counts")
    if speckle:
        for k, (name, clean) in enumerate(crops[:4]):  # the held-out photograph strips
            for j, (label, noise, params) in enumerate(SPECKLE_NOISES):
                noisy = synthesize(clean, noise, seed=1000 * seed + 800 + 10 * k + j, **params)
                pairs.append({"image": name, "noise": label, "clean": clean, "noisy": noisy})
    if bright:
        rng = np.random.default_rng([seed, 6])
        for k, kinds in enumerate(SPARSE_KINDS):
            scene = phantom((160, 160), kinds, rng, mix=2)
            for j, (label, noise, params, contrast) in enumerate(BRIGHT_NOISES):
                objects, peak = bright_objects(rng, scene.shape, contrast=contrast)
                clean = scene + objects
                noisy = synthesize(clean, noise, seed=1000 * seed + 900 + 10 * k + j, **params)
                mask = objects < BRIGHT_SURROUNDINGS * peak
                name = f"bright-{'+'.join(kinds)}"
                pairs.append(
                    {"image": name, "noise": label, "clean": clean, "noisy": noisy, "mask": mask}
                )
    if dark:
        rng = np.random.default_rng([seed, 15])
        for k in range(DARK_VALIDATION_SCENES):
            clean = sparse_scene(rng, (160, 160))
            for j, (label, noise, params) in enumerate(DARK_NOISES):
                noisy = synthesize(clean, noise, seed=1000 * seed + 950 + 10 * k + j, **params)
                pairs.append({"image": f"dark{k}", "noise": label, "clean": clean, "noisy": noisy})
    return pairs


def _general_pairs(stream: list[int], noises: list, first_seed: int, prefix: str) -> list[dict]:
    """The two general scenes (:data:`SPARSE_KINDS`, 160 px) drawn from `stream`, each
    degraded by every noise of `noises` (noise seeds from `first_seed`)."""
    rng = np.random.default_rng(stream)
    pairs = []
    for k, kinds in enumerate(SPARSE_KINDS):
        clean = phantom((160, 160), kinds, rng, mix=2)
        for j, (label, noise, params) in enumerate(noises):
            noisy = synthesize(clean, noise, seed=first_seed + 10 * k + j, **params)
            name = f"{prefix}-{'+'.join(kinds)}"
            pairs.append({"image": name, "noise": label, "clean": clean, "noisy": noisy})
    return pairs


# ---------------------------------------------------------------- inference


@torch.inference_mode()
def denoise(model: DeconvNet, noisy: np.ndarray) -> np.ndarray:
    """Whole-image inference exactly as the normalisation contract states."""
    lo, hi = percentiles(noisy, [NORM["low"], NORM["high"]])
    scale = hi - lo if hi > lo else 1.0
    device = next(model.parameters()).device
    metadata = getattr(model, "metadata", None)
    kind = NoiseConditioned(metadata) if model.config.in_channels == 2 else None
    stack = ((input_stack(noisy, kind) - lo) / scale).astype(np.float32)
    x = torch.from_numpy(stack)[None].to(device)
    return model(x)[0, 0].float().cpu().numpy() * scale + lo


def pair_psnr(pair: dict, image: np.ndarray) -> float:
    """PSNR of `image` against the pair's clean image (range 1), on its ``"mask"`` if any."""
    clean = pair["clean"]
    if "mask" in pair:  # bright objects: the scene around them
        clean, image = clean[pair["mask"]], image[pair["mask"]]
    return float(peak_signal_noise_ratio(clean, image, data_range=1))


def evaluate(model: DeconvNet, pairs: list[dict]) -> dict:
    model.eval()
    psnr, gain = [], []
    for pair in pairs:
        after = pair_psnr(pair, denoise(model, pair["noisy"]))
        before = pair_psnr(pair, pair["noisy"])
        psnr.append(after)
        gain.append(after - before)
    model.train()
    return {"val_psnr": float(np.mean(psnr)), "val_gain": float(np.mean(gain))}


def camera_gain(model: DeconvNet) -> dict:
    """PSNR gain on skimage's camera with N(0, 25/255) noise (seed 0): a report only."""
    clean = data.camera().astype(np.float32) / 255
    noisy = clean + np.random.default_rng(0).normal(0, 25 / 255, clean.shape).astype(np.float32)
    before = float(peak_signal_noise_ratio(clean, noisy, data_range=1))
    result = {"noisy_psnr": before}
    try:
        import napari_deconvnet as dn

        out = dn.restore(noisy, model=model, device="cpu")
        result["inference"] = "napari_deconvnet.restore"
    except (ImportError, AttributeError):
        out = denoise(model, noisy)
        result["inference"] = "scripts/train_default.py:denoise"
    result["restored_psnr"] = float(peak_signal_noise_ratio(clean, out, data_range=1))
    result["gain_db"] = result["restored_psnr"] - before
    return result


def _jsonable(value):
    if isinstance(value, Path):
        try:
            return str(value.resolve().relative_to(ROOT))
        except ValueError:
            return str(value)
    return list(value) if isinstance(value, tuple) else value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-seconds", type=float, default=1200.0)
    parser.add_argument("--steps", type=int, default=None, help="fixed step count (no time limit)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--region", type=int, nargs=2, default=(192, 256))
    parser.add_argument("--patches-per-region", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--clip-norm", type=float, default=1.0)
    parser.add_argument("--loss", choices=("l1", "mse", "balanced-mse", "hdr-mse"), default="mse")
    parser.add_argument("--ema", type=float, default=0.999)
    parser.add_argument("--precision", choices=("bfloat16", "float32"), default="bfloat16")
    parser.add_argument("--val-every", type=int, default=200, help="steps between validations")
    parser.add_argument(
        "--validation",
        choices=tuple(VALIDATION_NOISES),
        default="standard",
        help="validation noises; wide adds gaussian 10/255 and 300 photons, full also "
        "gaussian 2/255 and 5000 photons",
    )
    parser.add_argument("--phantoms", type=int, default=48)
    parser.add_argument(
        "--sharp-phantoms",
        type=float,
        default=0.0,
        help="share of sharp phantoms (spots and filaments down to a pixel, no scene "
        "smoothing; core.phantoms.cells_2d sharp=); above 0 the validation gains a sharp one",
    )
    parser.add_argument(
        "--sparse-phantoms",
        type=float,
        default=0.0,
        help="share of phantom regions drawn from the general generator (core.phantoms.phantom: "
        "beads, filaments, nuclei, membranes, textures on a dim background); above 0 the "
        "validation gains two such scenes at 10 and 20 photons",
    )
    parser.add_argument(
        "--light-noise",
        type=float,
        default=0.0,
        help="share of regions with light noise (gaussian 0.5-5/255, 1000-30000 photons): "
        "nearly clean images, whose detail the model must keep",
    )
    parser.add_argument(
        "--low-counts",
        type=float,
        default=0.0,
        help="share of regions with photon counting: pure Poisson counts at 1-10 photons "
        "(no read noise) through a camera gain and offset; above 0 the validation gains "
        "two sparse scenes at 2 photons",
    )
    parser.add_argument(
        "--speckle",
        type=float,
        default=0.0,
        help="share of regions with speckle (multiplicative noise, sigma 2-35%% of the "
        "intensity); above 0 the validation gains the held-out strips at 10%%",
    )
    add_bright_objects_flag(parser, "two scenes with such objects")
    parser.add_argument(
        "--sparse-scenes",
        type=float,
        default=0.0,
        help="share of phantom regions cropped from scenes of objects in the dark "
        "(core.dark_scenes.sparse_scene: spots from sub-pixel to well sampled, thin "
        "filaments, on an exactly black background, no level added); the validation gains "
        f"{DARK_VALIDATION_SCENES} such scenes at 30 and 300 photons",
    )
    add_sparse_spot_share_flag(parser)
    parser.add_argument(
        "--dead-leaves",
        type=float,
        default=0.0,
        help="share of photograph regions drawn from core.phantoms.dead_leaves (occluding "
        "shapes of every size, textured, softly blurred: photograph-like scenes beyond the "
        "few bundled photographs) instead; the validation is unchanged",
    )
    parser.add_argument(
        "--dead-leaves-scenes",
        type=int,
        default=160,
        help="dead-leaves scenes drawn before training (384 px each), from which those "
        "regions are cropped",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... or auto")
    parser.add_argument("--init", type=Path, default=None, help="start from this model file")
    parser.add_argument(
        "--base-channels",
        type=int,
        default=None,
        help="feature channels at full resolution (24 otherwise); with a narrower --init the "
        "new channels start ignored, so training starts from its output "
        "(core.model.widen_channels)",
    )
    parser.add_argument(
        "--noise-channel",
        action="store_true",
        help="train denoise-2d-nl: a second input channel tells the noise level",
    )
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="autosave folder (best model + resume)"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from the checkpoint if there is one"
    )
    args = parser.parse_args(argv)
    if args.noise_channel and args.out == DEFAULT_OUT:
        args.out = NL_OUT
    argv = sys.argv[1:] if argv is None else list(argv)
    # with --steps, --max-seconds limits only when it was given explicitly
    args.time_limit = any(a.startswith("--max-seconds") for a in argv)
    device = resolve_device(args.device)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    # warn_only: CUDA has no deterministic max_pool3d backward (3D models stopped there)
    torch.use_deterministic_algorithms(True, warn_only=True)
    rng = np.random.default_rng(args.seed)
    precision = engine_precision(args.precision, device)

    t0 = time.perf_counter()
    images, strips = {}, {}
    for name in TRAIN_IMAGES:
        image = load_gray(name)
        if name in VALIDATION_STRIPS:
            cut = VALIDATION_STRIPS[name]
            strips[name] = image[:, -cut:]
            image = image[:, : -cut - 32]  # a gap: no shared context with validation
        images[name] = image
    if not 0.0 <= args.sharp_phantoms <= 1.0:
        parser.error(f"--sharp-phantoms must be in [0, 1], got {args.sharp_phantoms}")
    if not 0.0 <= args.light_noise <= 1.0:
        parser.error(f"--light-noise must be in [0, 1], got {args.light_noise}")
    if not 0.0 <= args.sparse_phantoms <= 1.0:
        parser.error(f"--sparse-phantoms must be in [0, 1], got {args.sparse_phantoms}")
    for flag in ("low_counts", "speckle", "bright_objects", "dead_leaves", "sparse_scenes"):
        share = getattr(args, flag)
        if not 0.0 <= share <= 1.0:
            parser.error(f"--{flag.replace('_', '-')} must be in [0, 1], got {share}")
    if args.low_counts + args.speckle > 1.0:
        parser.error("--low-counts and --speckle together must not exceed 1")
    phantoms = [make_phantom(rng, sharp=args.sharp_phantoms) for _ in range(args.phantoms)]
    sparse = None
    if args.sparse_phantoms > 0:  # their own stream: the default scenes stay as they were
        sparse_rng = np.random.default_rng([args.seed, 3])
        sparse = (args.sparse_phantoms, [sparse_phantom(sparse_rng) for _ in range(args.phantoms)])
    leaves = dead_leaves_pool(args.dead_leaves, args.dead_leaves_scenes, args.seed)
    if not 0.0 <= args.sparse_spot_share <= 1.0:
        parser.error(f"--sparse-spot-share must be in [0, 1], got {args.sparse_spot_share}")
    dark = dark_scene_pool(args.sparse_scenes, (256, 256), args.sparse_spot_share, args.seed)
    pairs = validation_set(
        strips,
        args.seed,
        args.validation,
        sharp=args.sharp_phantoms > 0,
        sparse=args.sparse_phantoms > 0,
        counts=args.low_counts > 0,
        speckle=args.speckle > 0,
        bright=args.bright_objects > 0,
        dark=dark is not None,
    )
    name = "denoise-2d-nl" if args.noise_channel else "denoise-2d"
    kind_metadata = (
        {"kind": NoiseConditioned.name, "conditioning": NOISE_CONDITIONING}
        if args.noise_channel
        else {}
    )
    kind = NoiseConditioned(kind_metadata) if args.noise_channel else None
    sampler = Sampler(
        images,
        phantoms,
        rng,
        args.patch,
        args.region,
        args.patches_per_region,
        kind,
        sparse,
        args.light_noise,
        args.low_counts,
        args.speckle,
        args.bright_objects,
        leaves,
        dark,
    )
    print(f"data ready in {time.perf_counter() - t0:.1f} s", flush=True)

    config = dict(CONFIG, in_channels=2, residual_input=0) if args.noise_channel else CONFIG
    if args.base_channels:
        config = dict(config, base_channels=args.base_channels)
    net = DeconvNet(DeconvNetConfig(**config))
    net.metadata = dict(kind_metadata)
    if args.init is not None:  # fine-tune a saved model (widened for the noise channel)
        net.load_state_dict(start_weights(load_model(args.init), net))
    noisy_psnr = float(np.mean([pair_psnr(p, p["noisy"]) for p in pairs]))
    noise_range = "sigma 5-50/255, peak 2-1000 photons"
    if args.light_noise > 0:  # nearly clean images too (LIGHT_SIGMA_RANGE, LIGHT_PEAK_RANGE)
        noise_range = "sigma 0.5-50/255, peak 2-30000 photons"
    if args.low_counts > 0:
        noise_range = noise_range.replace("peak 2-", "peak 1-")
    kinds = "Gaussian, Poisson-Gaussian and speckle" if args.speckle > 0 else None
    kinds = kinds or "Gaussian and Poisson-Gaussian"
    if args.speckle > 0:
        noise_range += ", speckle 2-35%"
    description = f"Blind 2D denoiser for {kinds} noise ({noise_range})"
    if args.noise_channel:
        description = (
            "2D denoiser told the noise level (a noise map estimated from the image) for "
            f"{kinds} noise ({noise_range})"
        )

    def training_record(*, config, history, best_entry, stop_reason, seconds, steps, improved):
        return {
            "script": "scripts/train_default.py",
            "engine": "napari_deconvnet.core.fit",
            "argv": argv,
            "seed": args.seed,
            "settings": {k: _jsonable(v) for k, v in vars(args).items()},
            "engine_settings": {
                k: _jsonable(v) for k, v in config.to_dict().items() if k != "validation"
            },
            "precision": precision,
            "data": {
                "images": TRAIN_IMAGES,
                "held_out_for_validation": {
                    k: f"right {v} columns" for k, v in VALIDATION_STRIPS.items()
                },
                "never_used": list(TEST_IMAGES),
                "phantoms": args.phantoms,
                "phantom_fraction": PHANTOM_WEIGHT,
                "sharp_phantoms": args.sharp_phantoms,
                "sparse_phantoms": args.sparse_phantoms,
                "bright_objects": {
                    "share": args.bright_objects,
                    "contrast_log_uniform": list(BRIGHT_CONTRAST),
                },
                "dead_leaves": dead_leaves_record(args.dead_leaves, args.dead_leaves_scenes),
                "sparse_scenes": {
                    "share_of_phantom_regions": args.sparse_scenes,
                    "scenes": DARK_SCENES if dark else 0,
                    "generator": "napari_deconvnet.core.dark_scenes.sparse_scene",
                    "spot_share": args.sparse_spot_share,
                    "validation": [label for label, _, _ in DARK_NOISES] if dark else [],
                },
            },
            "noise": {
                "gaussian_sigma": list(SIGMA_RANGE),
                "poisson_gaussian_peak_photons": list(PEAK_RANGE),
                "read_noise_electrons_max": READ_NOISE_MAX,
                "mix": "50% gaussian (20% of those quantised to 8 bits), 50% poisson-gaussian",
                "light_noise": {
                    "share": args.light_noise,
                    "gaussian_sigma_log_uniform": list(LIGHT_SIGMA_RANGE),
                    "poisson_gaussian_peak_photons_log_uniform": list(LIGHT_PEAK_RANGE),
                },
                "low_counts": {
                    "share": args.low_counts,
                    "poisson_peak_photons_log_uniform": list(LOW_COUNT_PEAK_RANGE),
                    "read_noise_electrons": 0.0,
                },
                "speckle": {
                    "share": args.speckle,
                    "sigma_log_uniform": list(SPECKLE_SIGMA_RANGE),
                },
            },
            "normalization": NORM,
            "steps": steps,
            "seconds": round(seconds, 1),
            "stop_reason": stop_reason,
            "improved": improved,
            "val_psnr_noisy": noisy_psnr,
            "final_val_psnr": history[-1].get("val_psnr"),
            "final_ema_val_psnr": history[-1].get("ema_val_psnr"),
            **best_record(best_entry, args.init is not None),
            **init_record(args.init),
            **versions(),
            "threads": args.threads,
        }

    def metadata(**record) -> dict:
        return {
            "name": name,
            **kind_metadata,
            "description": description,
            "training": training_record(**record),
        }

    limited = args.steps is None or args.time_limit
    result = fit(
        net,
        sampler,
        evaluate=validation_score(evaluate, pairs),
        metadata=metadata,
        steps=args.steps,
        max_seconds=args.max_seconds if limited else None,
        validate_every=args.val_every,
        batch_size=args.batch_size,
        patch_size=(args.patch, args.patch),
        lr=args.lr,
        weight_decay=args.weight_decay,
        clip_norm=args.clip_norm,
        loss=args.loss,
        ema=args.ema,
        device=device,
        precision=precision,
        autosave=autosave_path(args.checkpoint, name, args.resume),
        resume=args.resume,
        seed=args.seed,
        callback=reporter(name),
    )
    final = result.model
    final.metadata["training"]["camera_sigma25"] = camera = camera_gain(final)
    print(f"camera {camera}", flush=True)
    log_path = save_with_log(
        final, args.out, final.metadata["training"], result.history, init=args.init
    )
    print(f"saved {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) and {log_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
