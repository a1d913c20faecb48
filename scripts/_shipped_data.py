"""The training data of ``scripts/train_models.py``: degradations, batches, validation pairs.

Clean regions come from scikit-image photographs (``train_default``) and the
package's phantoms (:mod:`napari_deconvnet.core.phantoms`); each is blurred
by a PSF of the training family (:func:`~napari_deconvnet.core.phantoms.random_psf`)
for the deconvolution models, given the task's noise, put into camera units
for some, and normalised exactly as ``dn.restore`` normalises its input (the
conditioning channel included).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import train_default as base

from napari_deconvnet.core.dark_scenes import sparse_scene
from napari_deconvnet.core.kinds import kind_of
from napari_deconvnet.core.model import DeconvNet
from napari_deconvnet.core.noise import synthesize
from napari_deconvnet.core.normalization import percentiles
from napari_deconvnet.core.phantoms import (
    bright_objects,
    cells_3d,
    misjudged_psf,
    phantom,
    random_psf,
)
from napari_deconvnet.core.psf import blur
from napari_deconvnet.core.tiling import restore

if TYPE_CHECKING:
    from train_models import Task

NORM = {"method": "percentile", "low": 0.5, "high": 99.5}

#: 3D training scenes (the package's generator)
make_phantom_3d = cells_3d
#: Light noise for the denoisers (``--light-noise``), as ``train_default`` draws it
LIGHT_SIGMA_RANGE = base.LIGHT_SIGMA_RANGE
LIGHT_PEAK_RANGE = base.LIGHT_PEAK_RANGE
#: ... and for the deconvolution models, whose training already reaches sigma 0.001:
#: nearly noiseless data, where many Richardson-Lucy iterations are the bar
LIGHT_DECONV_SIGMA_RANGE = (1e-4, 1e-3)
LIGHT_DECONV_PEAK_RANGE = (2000.0, 100000.0)


#: Pure photon counts for denoise-3d (``--low-counts``): peak photons, log-uniform,
#: below and into the bottom of its Poisson range (2-1000), no read noise
LOW_COUNT_PEAKS = (0.5, 4.0)
#: ... and its validation pairs: the scenes at 1 and 3 photons, and nearly clean,
#: where the first such run lost 0.15-0.78 dB on held-out scenes (Gaussian 1-2/255,
#: 10,000 photons) while the light pairs above (2/255, 5000 photons) gained
VALIDATION_COUNTS_3D = (
    {"noise": "poisson-gaussian", "peak": 1.0, "read_noise": 0.0},
    {"noise": "poisson-gaussian", "peak": 3.0, "read_noise": 0.0},
    {"noise": "gaussian", "sigma": 1 / 255},
    {"noise": "poisson-gaussian", "peak": 10000.0, "read_noise": 1.5},
)


def mix_general_phantoms(phantoms: list, share: float, seed: int) -> list:
    """Replace that share of `phantoms` by scenes of the general generator, same shapes.

    :func:`napari_deconvnet.core.phantoms.phantom` (beads, filaments, nuclei,
    membranes, textures; one to three on a dim background) draws from its
    own stream, so the other scenes are those of a run without them.
    """
    rng = np.random.default_rng([seed, 11])
    return [phantom(p.shape, rng=rng) if rng.random() < share else p for p in phantoms]


# ---------------------------------------------------------------- degradations


def add_noise(rng: np.random.Generator, clean: np.ndarray, task: Task) -> tuple[np.ndarray, dict]:
    seed = int(rng.integers(2**63))
    if task.name == "salt-and-pepper":
        amount = float(np.exp(rng.uniform(np.log(0.01), np.log(0.5))))
        noisy = clean
        info: dict[str, Any] = {"noise": "salt-and-pepper", "amount": amount}
        if rng.random() < 0.2:
            sigma = rng.uniform(0, 10 / 255)
            noisy = synthesize(clean, "gaussian", sigma=sigma, seed=seed + 1)
            info["sigma"] = sigma
        noisy = synthesize(
            noisy,
            "salt-and-pepper",
            amount=amount,
            salt_vs_pepper=rng.uniform(0.2, 0.8),
            low=float(clean.min()),
            high=float(clean.max()),
            seed=seed,
        )
        return noisy, info
    deconv = task.psf
    # a light-noise draw only when asked for: earlier runs' draws stay as they were
    light = task.light_noise > 0 and bool(rng.random() < task.light_noise)
    # likewise photon counting (denoise-3d): few photons, each one an isolated voxel
    # of a sparse scene, the case where a network trained from 2 photons up lost
    low_counts = getattr(task, "low_counts", 0.0)
    if not light and low_counts > 0 and rng.random() < low_counts:
        peak = math.exp(rng.uniform(*np.log(LOW_COUNT_PEAKS)))
        noisy = synthesize(clean, "poisson-gaussian", peak=peak, read_noise=0.0, seed=seed)
        info = {"noise": "poisson-gaussian", "peak": peak, "read_noise": 0.0}
        return noisy, _camera(rng, task, info)
    if rng.random() < task.gaussian_fraction:
        if deconv:
            lo_s, hi_s = LIGHT_DECONV_SIGMA_RANGE if light else (0.001, 0.05)
            sigma = math.exp(rng.uniform(math.log(lo_s), math.log(hi_s)))
        elif light:
            sigma = math.exp(rng.uniform(*np.log(LIGHT_SIGMA_RANGE)))
        else:
            sigma = rng.uniform(5 / 255, 50 / 255)
        return synthesize(clean, "gaussian", sigma=sigma, seed=seed), {
            "noise": "gaussian",
            "sigma": sigma,
        }
    if deconv:
        low, high = LIGHT_DECONV_PEAK_RANGE if light else task.photons
    else:
        low, high = LIGHT_PEAK_RANGE if light else (2.0, 1000.0)
    peak = math.exp(rng.uniform(math.log(low), math.log(high)))
    read = rng.uniform(0, task.read_noise)
    noisy = synthesize(clean, "poisson-gaussian", peak=peak, read_noise=read, seed=seed)
    info = {"noise": "poisson-gaussian", "peak": peak, "read_noise": read}
    return noisy, _camera(rng, task, info)


def _camera(rng: np.random.Generator, task: Task, info: dict) -> dict:
    """`info` with, for a ``task.camera_fraction`` share of draws, a camera's gain and offset.

    Camera units: electrons * gain + offset (ADU), as an sCMOS writes them
    (:func:`degrade` applies it to the image and the caller to the target).
    """
    if rng.random() < task.camera_fraction:
        gain, offset = rng.uniform(0.5, 4.0), rng.uniform(50.0, 200.0)
        info["adu"] = (info["peak"] * gain, offset)
    return info


def degrade(rng, clean: np.ndarray, task: Task) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """(degraded image, PSF or None, record) for a clean region in [0, 1]."""
    psf, info = None, {}
    if task.psf:
        psf, info["psf"] = random_psf(rng, task.ndim, task.axial_ratio, wide=task.wide_psfs)
        clean = blur(clean, psf)
        if task.psf_mismatch > 0 and rng.random() < task.psf_mismatch:  # no draw at 0
            # the network is given a PSF wider or narrower than the blur's
            psf, factor = misjudged_psf(rng, psf)
            info["psf_given_width"] = round(factor, 3)
    noisy, noise = add_noise(rng, clean, task)
    info.update(noise)
    noisy = np.asarray(noisy, np.float32)
    if "adu" in info:
        noisy = to_adu(noisy, info)
    return noisy, psf, info


def to_adu(image: np.ndarray, info: dict) -> np.ndarray:
    """Camera units of an image in [0, 1] units (identity without a camera model)."""
    if "adu" not in info:
        return image
    scale, offset = info["adu"]
    return (image * scale + offset).astype(np.float32)


def from_adu(image: np.ndarray, info: dict) -> np.ndarray:
    if "adu" not in info:
        return image
    scale, offset = info["adu"]
    return ((image - offset) / scale).astype(np.float32)


def network_input(
    noisy: np.ndarray, psf, net: DeconvNet, device: Any = None
) -> tuple[np.ndarray, float, float]:
    """(C, *spatial) normalised input as ``dn.restore`` builds it, with (offset, scale).

    `device` (the training device) computes the kind's channels there, as a
    restore on that device does: Wiener and Richardson-Lucy on a GPU rather
    than on one CPU core (None: the CPU).
    """
    lo, hi = percentiles(noisy, [NORM["low"], NORM["high"]])
    scale = float(hi - lo) if hi > lo else 1.0
    channels = [noisy[None]]
    if "conditioning" in net.metadata:  # the kind's extra channels, (C, *spatial)
        extra = {} if device is None else {"device": device}
        channels.append(kind_of(net).channel_stack(noisy[None], psf, **extra)[0])
    x = (np.concatenate(channels) - lo) / scale
    return x.astype(np.float32), float(lo), scale


# ---------------------------------------------------------------- sampling


def range_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE in each sample's clean range: targets carry ``1 / range**2`` as channel 1.

    (``Sampler(range_power=p)`` makes the weight ``1 / range**p``; p=1 is milder.)

    Inputs and targets are normalised by the noisy image's percentiles, which
    noise stretches: a few-photon volume's clean target spans a small part of
    the unit range, so plain MSE weighs it little, where the benchmark's PSNR
    (data range of the clean image) weighs every sample alike. The weighted
    mean over the batch keeps plain MSE's scale.
    """
    weight = target[:, 1:2].flatten(1)[:, 0]
    per_sample = (pred - target[:, :1]).square().flatten(1).mean(1)
    return (per_sample * weight).sum() / weight.sum()


def range_hdr_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """:func:`range_mse` of intensities mapped as ``hdr-mse`` maps them
    (:func:`napari_deconvnet.core.losses.hdr_mse`: the identity up to 1, logarithmic
    above), for training with bright objects (``--bright-objects``), whose samples
    carry the range of the scene around the objects."""
    from napari_deconvnet.core.losses import _tone

    weight = target[:, 1:2].flatten(1)[:, 0]
    per_sample = (_tone(pred) - _tone(target[:, :1])).square().flatten(1).mean(1)
    return (per_sample * weight).sum() / weight.sum()


class Sampler:
    def __init__(
        self,
        task: Task,
        images: dict,
        phantoms: list,
        net: DeconvNet,
        rng,
        range_weight: bool = False,
        range_power: float = 2.0,
        device: Any = None,
        leaves: tuple[float, list] | None = None,
        sparse: tuple[float, list] | None = None,
    ):
        self.task, self.images, self.phantoms = task, images, phantoms
        self.net, self.rng = net, rng
        #: where the conditioning channels are computed (None: the CPU)
        self.device = device
        self.objects = None
        #: targets get a second channel, 1 / (clean range)**range_power (for
        #: :func:`range_mse`; 2 is PSNR's unit, 1 a milder push toward dim samples)
        self.range_weight, self.range_power = range_weight, float(range_power)
        self.names = list(images)
        w = np.array([base.TRAIN_IMAGES[n] for n in self.names], float)
        self.weights = w / w.sum() if len(w) else w
        #: (share, scenes): that share of photograph regions is cropped from these
        #: dead-leaves scenes (``--dead-leaves``; core.phantoms.dead_leaves) instead
        self.leaves = leaves
        #: (share, scenes): that share of phantom regions is cropped from these scenes
        #: of objects in the dark (``--sparse-scenes``; core.dark_scenes.sparse_scene)
        self.sparse = sparse

    def reseed(self, seed: Any) -> None:
        """A fresh random stream (a resumed run draws new regions)."""
        self.rng = np.random.default_rng(seed)

    def _region(self) -> np.ndarray:
        rng, task = self.rng, self.task
        dark = False
        if task.ndim == 3 or not self.names or rng.random() >= task.photo_fraction:
            source = self.phantoms[rng.integers(len(self.phantoms))]
            if self.sparse and rng.random() < self.sparse[0]:  # no draw without: as before
                source, dark = self.sparse[1][rng.integers(len(self.sparse[1]))], True
        elif self.leaves and rng.random() < self.leaves[0]:  # no draw without: as before
            source = self.leaves[1][rng.integers(len(self.leaves[1]))]
        else:
            source = self.images[self.names[rng.choice(len(self.names), p=self.weights)]]
        short = [max(0, r - s) for s, r in zip(source.shape, task.region, strict=True)]
        if any(short):  # a small image: mirrored up to the region size
            source = np.pad(source, [(0, n) for n in short], mode="symmetric")
        for _ in range(10):
            region = task.region
            sizes = zip(source.shape, region, strict=True)
            starts = [rng.integers(0, n - r + 1) for n, r in sizes]
            crop = source[tuple(slice(a, a + r) for a, r in zip(starts, region, strict=True))]
            if crop.std() > 0.02 or rng.random() < 0.1 or (dark and crop.max() > 0.05):
                break
        if dark:  # objects in the dark stay there: a random contrast, no level
            crop = rng.uniform(0.4, 1.0) * crop
        elif rng.random() < 0.5:  # random contrast and level
            lo = rng.uniform(0.0, 0.3)
            crop = lo + rng.uniform(0.4, 1.0 - lo) * crop
        #: the bright objects added to this region (``--bright-objects``), or None
        self.objects = None
        if task.bright_objects > 0 and rng.random() < task.bright_objects:  # no draw at 0
            self.objects = bright_objects(rng, crop.shape)[0]
            crop = crop + self.objects
        return np.ascontiguousarray(crop, np.float32)

    def batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng, task = self.rng, self.task
        xs, ys = [], []
        while len(xs) < batch_size:
            clean = self._region()
            noisy, psf, info = degrade(rng, clean, task)
            x, lo, scale = network_input(noisy, psf, self.net, self.device)
            y = ((to_adu(clean, info) - lo) / scale)[None].astype(np.float32)
            # bright objects lie far above 1 by design: the check looks around them
            scene = slice(None)
            if self.objects is not None:
                scene = self.objects < 1e-3 * self.objects.max()
            if np.abs(y[:, scene]).max() > 10 or np.abs(x[:, scene]).max() > 50:
                # a nearly empty region (e.g. a few photons in the dark): its
                # percentiles blow the normalised values up and one such batch
                # can undo hundreds of steps; users' images are not like this
                continue
            if self.range_weight:  # the scene's range: bright objects left out
                spread = max(float(y[:, scene].max() - y[:, scene].min()), 0.05)
                y = np.concatenate([y, np.full_like(y, 1.0 / spread**self.range_power)])
            for _ in range(min(task.patches_per_region, batch_size - len(xs))):
                shape = y.shape[1:]
                sizes = zip(shape, task.patch, strict=True)
                starts = [rng.integers(0, n - p + 1) for n, p in sizes]
                window = (slice(None),) + tuple(
                    slice(a, a + p) for a, p in zip(starts, task.patch, strict=True)
                )
                a, b = x[window], y[window]
                k = int(rng.integers(4))
                a, b = np.rot90(a, k, axes=(-2, -1)), np.rot90(b, k, axes=(-2, -1))
                for axis in range(1, a.ndim):
                    if rng.random() < 0.5:
                        a, b = np.flip(a, axis), np.flip(b, axis)
                xs.append(np.ascontiguousarray(a))
                ys.append(np.ascontiguousarray(b))
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


# ---------------------------------------------------------------- validation


#: The noise of the 3D validation pairs: every unseen phantom gets each of
#: these, so the validation score weighs the photon range evenly (9 randomly
#: drawn pairs, the earlier set, were 7 widefield PSFs and mostly well exposed)
VALIDATION_NOISE_3D = (
    {"noise": "poisson-gaussian", "peak": 8.0, "read_noise": 1.5},
    {"noise": "poisson-gaussian", "peak": 20.0, "read_noise": 1.5},
    {"noise": "poisson-gaussian", "peak": 50.0, "read_noise": 1.5},
    {"noise": "poisson-gaussian", "peak": 150.0, "read_noise": 1.5},
    {"noise": "poisson-gaussian", "peak": 800.0, "read_noise": 1.5},
    {"noise": "gaussian", "sigma": 0.01},
)
#: With ``Task.general_validation``: light noise too, where blurring detail costs
VALIDATION_NOISE_LIGHT = (
    {"noise": "poisson-gaussian", "peak": 5000.0, "read_noise": 1.5},
    {"noise": "gaussian", "sigma": 2 / 255},
)
#: ... and two scenes of the general generator (structures of each, dim background)
GENERAL_VALIDATION_KINDS = (("nuclei", "textures"), ("filaments", "beads"))


def _stratified_3d(task: Task, seed: int, phantoms: int = 3, dark: bool = False) -> list[dict]:
    """3D pairs: every noise of :data:`VALIDATION_NOISE_3D` on each unseen phantom
    (`phantoms` of the default scenes and one sharp one, and with `dark` one scene
    of objects in the dark), blurred (deconvolution) by one Gaussian and one
    widefield PSF of the training family drawn per phantom; a third of the Poisson
    pairs in camera units."""
    rng = np.random.default_rng([seed, 7])
    cleans = [make_phantom_3d(rng, (32, 64, 64)) for _ in range(phantoms)]
    cleans.append(make_phantom_3d(rng, (32, 64, 64), sharp=1.0))
    noises = VALIDATION_NOISE_3D
    if task.general_validation:
        general = np.random.default_rng([seed, 12])
        for kinds in GENERAL_VALIDATION_KINDS:
            cleans.append(np.clip(phantom((32, 64, 64), kinds, general, mix=2), 0, 1))
        if not task.psf:
            noises = VALIDATION_NOISE_3D + VALIDATION_NOISE_LIGHT
    if getattr(task, "low_counts", 0) > 0:
        noises = noises + VALIDATION_COUNTS_3D
    if dark:  # their own stream: the other pairs stay as they were
        cleans.append(sparse_scene(np.random.default_rng([seed, 15]), (32, 64, 64)))
    pairs = []
    for k, clean in enumerate(cleans):
        blurs: list[tuple[Any, dict]] = [(None, {})]
        if task.psf:
            draw = np.random.default_rng([seed, 9, k])
            blurs = []
            for family in ("gaussian", "widefield"):
                while True:  # the family's own parameter draw
                    psf, record = random_psf(draw, 3, task.axial_ratio)
                    if record["kind"] == family:
                        blurs.append((psf, {"psf": record}))
                        break
        for b, (psf, record) in enumerate(blurs):
            blurred = clean if psf is None else blur(clean, psf)
            for j, noise in enumerate(noises):
                params = {key: v for key, v in noise.items() if key != "noise"}
                noisy = synthesize(blurred, noise["noise"], seed=[seed, 10, k, b, j], **params)
                info = {**record, **noise}
                if noise["noise"] == "poisson-gaussian" and (k + b + j) % 3 == 0:
                    info["adu"] = (noise["peak"] * 2.0, 100.0)  # gain 2 ADU/e-, offset 100
                noisy = to_adu(np.asarray(noisy, np.float32), info)
                pairs.append({"clean": clean, "noisy": noisy, "psf": psf, "info": info})
    return pairs


def validation_set(task: Task, strips: dict, seed: int, *, dark: bool = False) -> list[dict]:
    """Fixed degraded/clean pairs from held-out strips and unseen phantoms.

    2D: three random degradations of each (held-out strips, two phantoms and a
    sharp one, and with ``task.general_validation`` two scenes of the general
    generator, :data:`GENERAL_VALIDATION_KINDS`; with `dark` (``--sparse-scenes``)
    :data:`DARK_VALIDATION_SCENES` scenes of objects in the dark); 3D: the
    stratified set of :func:`_stratified_3d` (with `dark`, one such volume more).
    """
    if task.ndim == 3:
        return _stratified_3d(task, seed, dark=dark)
    rng = np.random.default_rng([seed, 7])
    cleans = []
    for strip in strips.values():
        h = strip.shape[0]
        cleans += [strip[t : t + 128, :128] for t in (h // 4 - 64, 3 * h // 4 - 64)]
    cleans += [base.make_phantom(rng, 128) for _ in range(2)]
    cleans.append(base.make_phantom(rng, 128, sharp=1.0))  # sub-resolution structures
    if task.general_validation:  # their own stream: the other pairs stay as they were
        general = np.random.default_rng([seed, 12])
        for kinds in GENERAL_VALIDATION_KINDS:
            cleans.append(np.clip(phantom((128, 128), kinds, general, mix=2), 0, 1))
    if dark:  # their own stream likewise
        scenes = np.random.default_rng([seed, 15])
        cleans += [sparse_scene(scenes, (128, 128)) for _ in range(DARK_VALIDATION_SCENES)]
    pairs = []
    for k, clean in enumerate(cleans):
        for j in range(3):
            noisy, psf, info = degrade(np.random.default_rng([seed, 8, k, j]), clean, task)
            pairs.append({"clean": clean, "noisy": noisy, "psf": psf, "info": info})
    if task.bright_objects > 0:
        pairs += bright_pairs(task, seed)
    return pairs


#: Validation scenes of objects in the dark with ``--sparse-scenes``
DARK_VALIDATION_SCENES = 3


#: Validation with ``--bright-objects``: objects this many times brighter than the scene
BRIGHT_VALIDATION_CONTRAST = (30.0, 300.0)


def bright_pairs(task: Task, seed: int) -> list[dict]:
    """The general validation scenes with bright objects (:data:`BRIGHT_VALIDATION_CONTRAST`),
    each degraded twice by the task, scored where the objects are below 1e-3 of
    their peak (a ``"mask"``): the dim scene a network that never saw such contrast
    spoils around them (2D: 128², 3D: 32×64×64)."""
    shape = (128, 128) if task.ndim == 2 else (32, 64, 64)
    rng = np.random.default_rng([seed, 13])
    pairs = []
    for k, kinds in enumerate(GENERAL_VALIDATION_KINDS):
        scene = np.clip(phantom(shape, kinds, rng, mix=2), 0, 1)
        for j, contrast in enumerate(BRIGHT_VALIDATION_CONTRAST):
            objects, peak = bright_objects(rng, shape, contrast=contrast)
            clean = (scene + objects).astype(np.float32)
            noisy, psf, info = degrade(np.random.default_rng([seed, 14, k, j]), clean, task)
            mask = objects < 1e-3 * peak
            pairs.append({"clean": clean, "noisy": noisy, "psf": psf, "info": info, "mask": mask})
    return pairs


def identity_psnr(pair: dict) -> float:
    """:func:`unit_psnr` of the degraded image itself (on the pair's mask, if any)."""
    clean, noisy = pair["clean"], from_adu(pair["noisy"], pair["info"])
    if "mask" in pair:
        clean, noisy = clean[pair["mask"]], noisy[pair["mask"]]
    return unit_psnr(clean, noisy)


def unit_psnr(clean: np.ndarray, out: np.ndarray) -> float:
    """PSNR of `out` (clipped to [0, 1]) against `clean`, data range 1."""
    mse = float(np.mean((np.clip(out, 0, 1).astype(np.float64) - clean) ** 2))
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def evaluate(net: DeconvNet, pairs: list[dict]) -> dict:
    net.eval()
    device = str(next(net.parameters()).device)
    before, after = [], []
    for p in pairs:
        out = restore(p["noisy"], net, psf=p["psf"], device=device)
        clean, noisy, out = p["clean"], from_adu(p["noisy"], p["info"]), from_adu(out, p["info"])
        if "mask" in p:  # bright objects: the scene around them
            clean, noisy, out = clean[p["mask"]], noisy[p["mask"]], out[p["mask"]]
        before.append(unit_psnr(clean, noisy))
        after.append(unit_psnr(clean, out))
    net.train()
    return {"val_psnr": float(np.mean(after)), "val_gain": float(np.mean(after) - np.mean(before))}
