"""Train the shipped models (denoise-2d, denoise-3d, deconv-2d, deconv-3d, salt-and-pepper).

``denoise-2d`` (the default model) is trained by ``scripts/train_default.py``;
``--model denoise-2d`` here hands over to it. The others share this script:

``salt-and-pepper``
    2D; input channels are the image and its switching median (impulses at
    the image's min/max replaced by a median of clean neighbours), which the
    network refines; at inference only the impulses change. Impulse noise
    on 1-50% of the pixels (salt share 20-80%, salt and pepper at the
    region's min and max), sometimes on top of mild
    Gaussian noise.
``deconv-2d``
    2D, PSF-conditioned: input channels are the blurred noisy image and its
    Richardson-Lucy pre-deconvolution (30 iterations;
    :mod:`napari_deconvnet.core.conditioning`), which the network corrects.
    PSFs: Gaussian (sigma 0.7-3.5 px, sometimes anisotropic) and Airy disks
    (first zero 1.5-6 px); noise: Gaussian (sigma 0.001-0.05) or
    Poisson-Gaussian (peak 10-2000 photons, read noise up to 2 e-).
``denoise-3d``
    3D, 1 channel. Gaussian (sigma 5-50/255) or Poisson-Gaussian noise (peak
    2-1000 photons) on procedural 3D fluorescence volumes.
``deconv-3d``
    3D, PSF-conditioned like ``deconv-2d`` but through a Wiener
    pre-deconvolution (cheaper in 3D): anisotropic 3D Gaussians (sigma
    0.7-2.5 px laterally, 1-2.5x that axially) and widefield PSFs; Poisson-
    Gaussian or Gaussian noise.

Data: scikit-image's bundled images of ``train_default.TRAIN_IMAGES`` (never
the benchmark images camera, astronaut, coins, moon, chelsea/cat, cell) and
procedural phantoms drawn by this script's own generators (the benchmark uses
the package's sample generators with other seeds). 3D models see only 3D
phantoms: no 3D images ship with the libraries.

Reproducible: seeded generators, deterministic torch, a fixed step count
(``--steps``), every setting in the model's metadata and in the log written
next to the model (``<name>.log.json``). The same inference path as users'
(``dn.restore``) scores validation pairs made from held-out strips and unseen
phantoms; the best of the raw and EMA weights by validation PSNR is kept.

Usage::

    python scripts/train_models.py --model deconv-2d            # default steps
    python scripts/train_models.py --model all                  # the four models here
    python scripts/train_models.py --model salt-and-pepper --steps 200 --out /tmp/sp.safetensors
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_default as base  # noqa: E402  (sibling script: data and phantoms)

from napari_deconvnet.core.conditioning import conditioning_channels  # noqa: E402
from napari_deconvnet.core.model import DeconvNet, DeconvNetConfig  # noqa: E402
from napari_deconvnet.core.noise import synthesize  # noqa: E402
from napari_deconvnet.core.persistence import load_model, save_model  # noqa: E402
from napari_deconvnet.core.psf import blur, make_psf  # noqa: E402
from napari_deconvnet.core.tiling import restore  # noqa: E402

ROOT = base.ROOT
WEIGHTS = ROOT / "src" / "napari_deconvnet" / "weights"
NORM = {"method": "percentile", "low": 0.5, "high": 99.5}
#: How the deconvolution models see the PSF (core/conditioning.py): Richardson-Lucy
#: in 2D; in 3D the cheaper Wiener filter (30 RL iterations on a training region
#: cost ~2.5 s there, a step's budget many times over on this CPU)
CONDITIONING = {
    "salt-and-pepper": {"method": "switching-median", "largest": 7},
    "deconv-2d": {"method": "richardson-lucy", "iterations": 30},
    "deconv-3d": {"method": "wiener", "balance_scale": 1.0},
}


@dataclass
class Task:
    """What one shipped model learns and how it is trained."""

    name: str
    description: str
    ndim: int
    psf: bool
    steps: int
    batch_size: int
    patch: tuple[int, ...]
    region: tuple[int, ...]
    patches_per_region: int
    config: dict[str, Any] = field(default_factory=dict)
    photo_fraction: float = 0.5  # 2D: share of regions from photographs (rest phantoms)
    #: inference-only metadata, added to the saved file (validation runs without it)
    inference: dict[str, Any] = field(default_factory=dict)
    #: Poisson-Gaussian peak photons (log-uniform) and the largest read noise (e-)
    photons: tuple[float, float] = (10.0, 2000.0)
    read_noise: float = 2.0
    #: share of samples with Gaussian instead of Poisson-Gaussian noise
    gaussian_fraction: float = 0.5
    #: 3D Gaussian PSFs: axial sigma as a multiple of the lateral one
    axial_ratio: tuple[float, float] = (1.0, 2.5)
    #: share of samples with a camera offset and gain (sCMOS-like ADU)
    camera_fraction: float = 0.0


TASKS = {
    "salt-and-pepper": Task(
        name="salt-and-pepper",
        description=(
            "Impulse (salt-and-pepper) noise removal, 1-50% corrupted pixels (2D); refines a "
            "switching median"
        ),
        ndim=2,
        psf=False,
        steps=8000,
        batch_size=16,
        patch=(64, 64),
        region=(160, 160),
        patches_per_region=4,
        config={"depth": 2, "base_channels": 24},
        photo_fraction=0.8,
        # keep pixels that are not at the image's min/max: only impulses change
        inference={"impulse_switch": True},
    ),
    "deconv-2d": Task(
        name="deconv-2d",
        description=(
            "Non-blind 2D deconvolution for a given PSF (Gaussian, Airy/widefield) with "
            "Gaussian or Poisson noise; corrects a Richardson-Lucy pre-deconvolution"
        ),
        ndim=2,
        psf=True,
        steps=6000,
        batch_size=16,
        patch=(64, 64),
        region=(160, 160),
        patches_per_region=8,
        config={"depth": 2, "base_channels": 24},
        photo_fraction=0.5,
    ),
    "denoise-3d": Task(
        name="denoise-3d",
        description=(
            "Blind 3D denoiser for volumes with Gaussian or Poisson-Gaussian noise "
            "(sigma 5-50/255, peak 2-1000 photons)"
        ),
        ndim=3,
        psf=False,
        steps=2500,
        batch_size=4,
        patch=(24, 48, 48),
        region=(32, 96, 96),
        patches_per_region=4,
        config={"depth": 2, "base_channels": 16},
    ),
    "deconv-3d": Task(
        name="deconv-3d",
        description=(
            "Non-blind 3D deconvolution for a given PSF (anisotropic Gaussian, widefield) "
            "with Poisson-Gaussian (peak 5-1000 photons, camera offset) or Gaussian noise; "
            "Wiener-conditioned"
        ),
        ndim=3,
        psf=True,
        steps=5000,
        batch_size=4,
        patch=(24, 48, 48),
        region=(32, 96, 96),
        patches_per_region=4,
        config={"depth": 2, "base_channels": 16},
        photons=(5.0, 1000.0),
        read_noise=3.0,
        gaussian_fraction=0.2,
        axial_ratio=(1.0, 3.0),
        camera_fraction=0.3,
    ),
}


def model_config(task: Task) -> dict[str, Any]:
    return {
        "ndim": task.ndim,
        "in_channels": 2 if task.name in CONDITIONING else 1,
        "out_channels": 1,
        "convs_per_level": 2,
        "skip": "add",
        "residual": True,
        # a conditioned model corrects its pre-restoration channel
        "residual_input": 1 if task.name in CONDITIONING else None,
        "normalization": NORM,
        **task.config,
    }


# ---------------------------------------------------------------- 3D phantoms


def make_phantom_3d(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    """A fluorescence-like volume: textured cells with nuclei, spots, filaments."""
    nz, ny, nx = shape
    zz, yy, xx = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in shape), indexing="ij")
    smooth = ndimage.gaussian_filter(rng.standard_normal(shape), rng.uniform(4, 12), mode="wrap")
    image = rng.uniform(0, 0.2) * (smooth - smooth.min()) / (np.ptp(smooth) + 1e-12)
    for _ in range(rng.integers(1, 12)):
        c = rng.uniform(0, 1, 3) * np.array(shape)
        radii = rng.uniform(4, 22, 3) * np.array([rng.uniform(0.4, 1.0), 1, 1])
        r2 = ((zz - c[0]) / radii[0]) ** 2 + ((yy - c[1]) / radii[1]) ** 2
        r2 += ((xx - c[2]) / radii[2]) ** 2
        texture = ndimage.gaussian_filter(rng.standard_normal(shape), rng.uniform(0.8, 3))
        texture = 1 + rng.uniform(0, 0.6) * texture / (texture.std() + 1e-12) * 0.5
        image += (r2 < 1) * rng.uniform(0.15, 0.7) * texture
        if rng.random() < 0.6:
            image += (r2 < rng.uniform(0.1, 0.4)) * rng.uniform(0.1, 0.5)
    for sigma in rng.uniform(0.7, 2.5, size=rng.integers(0, 3)):  # spots
        spots = np.zeros(shape)
        n = rng.integers(5, 80)
        spots[tuple(rng.integers(0, s, n) for s in shape)] = rng.uniform(0.3, 1.0, n)
        image += ndimage.gaussian_filter(spots, sigma) * (2 * np.pi) ** 1.5 * sigma**3 * 0.5
    lines = np.zeros(shape)
    for _ in range(rng.integers(0, 15)):  # filaments: smooth random walks
        p = rng.uniform(0, 1, 3) * np.array(shape)
        d = rng.standard_normal(3)
        level = rng.uniform(0.3, 1.0)
        for _ in range(rng.integers(20, 200)):
            d = d / np.linalg.norm(d) + rng.normal(0, 0.15, 3)
            p = p + d / np.linalg.norm(d)
            if not all(0 <= v < s for v, s in zip(p, shape, strict=True)):
                break
            lines[tuple(int(v) for v in p)] = level
    image += ndimage.gaussian_filter(lines, rng.uniform(0.5, 1.2)) * 4
    image = ndimage.gaussian_filter(image, rng.uniform(0.4, 1.2))
    image = np.clip(image, 0, None) ** rng.uniform(0.7, 1.3)
    return (image / (image.max() + 1e-12)).astype(np.float32)


# ---------------------------------------------------------------- degradations


def random_psf(
    rng: np.random.Generator, ndim: int, axial_ratio: tuple[float, float] = (1.0, 2.5)
) -> tuple[np.ndarray, dict]:
    """A PSF from the training family, with its description."""
    if rng.random() < 0.5:
        lateral = rng.uniform(0.7, 3.5 if ndim == 2 else 2.5)
        sigma = [lateral * rng.uniform(0.85, 1.15), lateral]
        if ndim == 3:
            sigma = [lateral * rng.uniform(*axial_ratio), *sigma]
        # 3 sigma each side, at most 12 px (a 3D region is 32 planes deep)
        size = [2 * min(int(math.ceil(3 * s)), 12) + 1 for s in sigma]
        kernel = make_psf("gaussian", shape=size, sigma=sigma)
        return kernel, {"kind": "gaussian", "sigma": [round(s, 3) for s in sigma]}
    # Airy / widefield: NA 0.8-1.4, 520 nm; the pixel size sets the radius
    na = rng.uniform(0.8, 1.4)
    ri = 1.518 if na > 1.0 else 1.33
    zero = rng.uniform(1.5, 6.0 if ndim == 2 else 3.5)  # first zero, in pixels
    pixel = 0.61 * 520 / na / zero
    params = {"wavelength": 520.0, "na": na, "refractive_index": ri, "pixel_size": pixel}
    if ndim == 2:
        side = 2 * int(math.ceil(2.5 * zero)) + 1
        kernel = make_psf("airy", shape=(side, side), **params)
    else:
        side = 2 * int(math.ceil(2.0 * zero)) + 1
        params["z_step"] = pixel * rng.uniform(1.5, 3.0)
        kernel = make_psf("widefield", shape=(min(side, 15), side, side), **params)
    return kernel, {"kind": "airy" if ndim == 2 else "widefield", **params}


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
    if rng.random() < task.gaussian_fraction:
        sigma = (
            math.exp(rng.uniform(math.log(0.001), math.log(0.05)))
            if deconv
            else rng.uniform(5 / 255, 50 / 255)
        )
        return synthesize(clean, "gaussian", sigma=sigma, seed=seed), {
            "noise": "gaussian",
            "sigma": sigma,
        }
    low, high = task.photons if deconv else (2.0, 1000.0)
    peak = math.exp(rng.uniform(math.log(low), math.log(high)))
    read = rng.uniform(0, task.read_noise)
    noisy = synthesize(clean, "poisson-gaussian", peak=peak, read_noise=read, seed=seed)
    info = {"noise": "poisson-gaussian", "peak": peak, "read_noise": read}
    if rng.random() < task.camera_fraction:
        # camera units: electrons * gain + offset (ADU), as an sCMOS writes them
        # (degrade applies it to the image and the caller to the target)
        gain, offset = rng.uniform(0.5, 4.0), rng.uniform(50.0, 200.0)
        info["adu"] = (peak * gain, offset)
    return noisy, info


def degrade(rng, clean: np.ndarray, task: Task) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """(degraded image, PSF or None, record) for a clean region in [0, 1]."""
    psf, info = None, {}
    if task.psf:
        psf, info["psf"] = random_psf(rng, task.ndim, task.axial_ratio)
        clean = blur(clean, psf)
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


def network_input(noisy: np.ndarray, psf, net: DeconvNet) -> tuple[np.ndarray, float, float]:
    """(C, *spatial) normalised input as ``dn.restore`` builds it, with (offset, scale)."""
    lo, hi = np.percentile(noisy.astype(np.float64), [NORM["low"], NORM["high"]])
    scale = float(hi - lo) if hi > lo else 1.0
    channels = [noisy]
    if "conditioning" in net.metadata:
        channels.append(conditioning_channels(noisy[None], psf, net)[0])
    x = (np.stack(channels) - lo) / scale
    return x.astype(np.float32), float(lo), scale


# ---------------------------------------------------------------- sampling


class Sampler:
    def __init__(self, task: Task, images: dict, phantoms: list, net: DeconvNet, rng):
        self.task, self.images, self.phantoms = task, images, phantoms
        self.net, self.rng = net, rng
        self.names = list(images)
        w = np.array([base.TRAIN_IMAGES[n] for n in self.names], float)
        self.weights = w / w.sum() if len(w) else w

    def _region(self) -> np.ndarray:
        rng, task = self.rng, self.task
        if task.ndim == 3 or not self.names or rng.random() >= task.photo_fraction:
            source = self.phantoms[rng.integers(len(self.phantoms))]
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
            if crop.std() > 0.02 or rng.random() < 0.1:
                break
        if rng.random() < 0.5:  # random contrast and level
            lo = rng.uniform(0.0, 0.3)
            crop = lo + rng.uniform(0.4, 1.0 - lo) * crop
        return np.ascontiguousarray(crop, np.float32)

    def batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng, task = self.rng, self.task
        xs, ys = [], []
        while len(xs) < batch_size:
            clean = self._region()
            noisy, psf, info = degrade(rng, clean, task)
            x, lo, scale = network_input(noisy, psf, self.net)
            y = ((to_adu(clean, info) - lo) / scale)[None].astype(np.float32)
            if np.abs(y).max() > 10 or np.abs(x).max() > 50:
                # a nearly empty region (e.g. a few photons in the dark): its
                # percentiles blow the normalised values up and one such batch
                # can undo hundreds of steps; users' images are not like this
                continue
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


def validation_set(task: Task, strips: dict, seed: int) -> list[dict]:
    """Fixed degraded/clean pairs from held-out strips and unseen phantoms."""
    rng = np.random.default_rng([seed, 7])
    if task.ndim == 2:
        cleans = []
        for strip in strips.values():
            h = strip.shape[0]
            cleans += [strip[t : t + 128, :128] for t in (h // 4 - 64, 3 * h // 4 - 64)]
        cleans += [base.make_phantom(rng, 128) for _ in range(2)]
    else:
        cleans = [make_phantom_3d(rng, (32, 64, 64)) for _ in range(3)]
    pairs = []
    for k, clean in enumerate(cleans):
        for j in range(3):
            noisy, psf, info = degrade(np.random.default_rng([seed, 8, k, j]), clean, task)
            pairs.append({"clean": clean, "noisy": noisy, "psf": psf, "info": info})
    return pairs


def _psnr(clean: np.ndarray, out: np.ndarray) -> float:
    mse = float(np.mean((np.clip(out, 0, 1).astype(np.float64) - clean) ** 2))
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def evaluate(net: DeconvNet, pairs: list[dict]) -> dict:
    net.eval()
    device = str(next(net.parameters()).device)
    before, after = [], []
    for p in pairs:
        out = restore(p["noisy"], net, psf=p["psf"], device=device)
        before.append(_psnr(p["clean"], from_adu(p["noisy"], p["info"])))
        after.append(_psnr(p["clean"], from_adu(out, p["info"])))
    net.train()
    return {"val_psnr": float(np.mean(after)), "val_gain": float(np.mean(after) - np.mean(before))}


# ---------------------------------------------------------------- checkpoints


class Checkpoint:
    """Everything a run needs to continue after a kill: safetensors + JSON, no pickle.

    Written at every validation (temporary files, then renames), so a run killed
    at any moment resumes from its last validation with ``--resume``.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.tensors = self.folder / "state.safetensors"
        self.meta = self.folder / "state.json"

    def exists(self) -> bool:
        return self.tensors.exists() and self.meta.exists()

    def save(self, net, ema, opt, best_state, meta: dict) -> None:
        from safetensors.torch import save_file

        tensors = {f"net.{k}": v for k, v in net.state_dict().items()}
        tensors |= {f"ema.{k}": v for k, v in ema.state_dict().items()}
        if best_state is not None:
            tensors |= {f"best.{k}": v for k, v in best_state.items()}
        opt_state = opt.state_dict()
        for index, values in opt_state["state"].items():
            for key, value in values.items():
                tensors[f"opt.{index}.{key}"] = torch.as_tensor(value)
        tensors["torch_rng"] = torch.get_rng_state()
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        meta = {**meta, "param_groups": opt_state["param_groups"]}
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / "state.safetensors.partial"
        save_file(tensors, str(tmp))
        tmp_meta = self.folder / "state.json.partial"
        tmp_meta.write_text(json.dumps(meta, default=float))
        tmp.replace(self.tensors)
        tmp_meta.replace(self.meta)

    def load(self, net, ema, opt) -> dict:
        from safetensors.torch import load_file

        tensors = load_file(str(self.tensors))
        meta = json.loads(self.meta.read_text())

        def part(prefix: str) -> dict:
            return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

        net.load_state_dict(part("net."))
        ema.load_state_dict(part("ema."))
        state: dict = {}
        for key, value in part("opt.").items():
            index, name = key.split(".", 1)
            state.setdefault(int(index), {})[name] = value
        opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
        torch.set_rng_state(tensors["torch_rng"])
        meta["best_state"] = part("best.") or None
        return meta


# ---------------------------------------------------------------- training


def train_task(task: Task, args: argparse.Namespace, out: Path) -> dict:
    torch.manual_seed(args.seed)
    rng = np.random.default_rng([args.seed, list(TASKS).index(task.name)])
    steps = args.steps if args.steps is not None else task.steps
    t0 = time.perf_counter()
    images, strips = {}, {}
    if task.ndim == 2:
        for name in base.TRAIN_IMAGES:
            image = base.load_gray(name)
            if name in base.VALIDATION_STRIPS:
                cut = base.VALIDATION_STRIPS[name]
                strips[name] = image[:, -cut:]
                image = image[:, : -cut - 32]
            images[name] = image
        phantoms = [base.make_phantom(rng) for _ in range(args.phantoms)]
    else:
        phantoms = [make_phantom_3d(rng, (48, 128, 128)) for _ in range(args.phantoms)]
    metadata = {
        "name": task.name,
        "description": task.description,
        "needs_psf": task.psf,
    }
    if task.name in CONDITIONING:
        metadata["conditioning"] = CONDITIONING[task.name]
    net = DeconvNet(DeconvNetConfig(**model_config(task)))
    if args.init is not None:  # fine-tune a saved model of the same architecture
        net.load_state_dict(load_model(args.init).state_dict())
    net.metadata = metadata
    fmt = torch.channels_last if task.ndim == 2 else torch.channels_last_3d
    device = base.resolve_device(args.device)
    net = net.to(device, memory_format=fmt)
    ema = copy.deepcopy(net).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    pairs = validation_set(task, strips, args.seed)
    sampler = Sampler(task, images, phantoms, net, rng)
    print(f"[{task.name}] data ready in {time.perf_counter() - t0:.1f} s", flush=True)

    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    amp = args.precision == "bfloat16" and base.bf16_supported(device)
    start_eval = evaluate(net, pairs)
    history = [{"step": 0, "seconds": 0.0, **start_eval}]
    identity = start_eval["val_psnr"] - start_eval["val_gain"]
    print(f"[{task.name}] identity val psnr {identity:.2f}", flush=True)
    best = {"val_psnr": -np.inf}
    best_state = None
    if args.init is not None:  # the starting model competes too
        best, best_state = base.keep_best(best, None, 0, [("init", net, start_eval["val_psnr"])])
    start = time.perf_counter()
    running = []
    first = 1
    ckpt = Checkpoint(args.checkpoint or ROOT / "runs" / task.name)
    if args.resume and ckpt.exists():
        state = ckpt.load(net, ema, opt)
        if state["steps"] != steps:
            raise SystemExit(
                f"checkpoint {ckpt.folder} was made for {state['steps']} steps, not {steps}; "
                "pass the same --steps to resume"
            )
        first = state["step"] + 1
        history, best, running = state["history"], state["best"], state["running"]
        best_state = state["best_state"]
        rng.bit_generator.state = state["rng"]
        start -= state["seconds"]
        print(f"[{task.name}] resumed at step {first} from {ckpt.folder}", flush=True)
    for step in range(first, steps + 1):
        elapsed = time.perf_counter() - start
        progress = (step - 1) / steps
        if args.max_seconds is not None:  # a time budget: the schedule follows the clock
            progress = max(progress, elapsed / args.max_seconds)
            if elapsed >= args.max_seconds:
                step -= 1
                break
        lr = base.lr_at(progress, args.lr)
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = sampler.batch(task.batch_size)
        x = x.to(device, memory_format=fmt, non_blocking=True)
        y = y.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            pred = net(x)
        loss = F.mse_loss(pred.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        base.update_ema(ema, net, step, args.ema)
        running.append(loss.item())
        out_of_time = (
            args.max_seconds is not None and time.perf_counter() - start >= args.max_seconds
        )
        if step % args.val_every == 0 or step == steps or out_of_time:
            record = {
                "step": step,
                "seconds": round(time.perf_counter() - start, 1),
                "lr": lr,
                "train_loss": float(np.mean(running)),
                **evaluate(net, pairs),
                "ema_val_psnr": evaluate(ema, pairs)["val_psnr"],
            }
            running = []
            history.append(record)
            best, best_state = base.keep_best(
                best,
                best_state,
                step,
                [("raw", net, record["val_psnr"]), ("ema", ema, record["ema_val_psnr"])],
            )
            print(
                f"[{task.name}] step {step} {record['seconds']:.0f}s loss "
                f"{record['train_loss']:.5f} val {record['val_psnr']:.2f} "
                f"(+{record['val_gain']:.2f}) ema {record['ema_val_psnr']:.2f}",
                flush=True,
            )
            ckpt.save(
                net,
                ema,
                opt,
                best_state,
                {
                    "step": step,
                    "steps": steps,
                    "seconds": record["seconds"],
                    "history": history,
                    "best": best,
                    "running": running,
                    "rng": rng.bit_generator.state,
                },
            )
    seconds = time.perf_counter() - start
    steps = step  # what ran (a time budget may stop early)
    final = DeconvNet(DeconvNetConfig(**model_config(task)))
    final.load_state_dict({k: v.contiguous() for k, v in best_state.items()})
    final.eval()
    training = {
        "script": "scripts/train_models.py",
        "argv": args.argv,
        "seed": args.seed,
        "task": {k: v for k, v in vars(task).items() if k not in ("description",)},
        "settings": {
            "init": None if args.init is None else str(args.init),
            "device": str(device),
            "max_seconds": args.max_seconds,
            "steps": steps,
            "lr": args.lr,
            "ema": args.ema,
            "precision": args.precision,
            "phantoms": args.phantoms,
            "threads": args.threads,
            "val_every": args.val_every,
            "loss": "mse",
            "optimizer": "AdamW(weight_decay=1e-4)",
            "schedule": "cosine",
        },
        "data": {
            "images": base.TRAIN_IMAGES if task.ndim == 2 else {},
            "photo_fraction": task.photo_fraction if task.ndim == 2 else 0.0,
            "phantoms": args.phantoms,
            "held_out_for_validation": (
                {k: f"right {v} columns" for k, v in base.VALIDATION_STRIPS.items()}
                if task.ndim == 2
                else "unseen phantoms"
            ),
            "never_used": list(base.TEST_IMAGES),
        },
        "normalization": NORM,
        "steps": steps,
        "seconds": round(seconds, 1),
        "val_psnr_identity": identity,
        "best_val_psnr": float(best["val_psnr"]),
        "best_step": best["step"],
        "best_weights": best["weights"],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    final.metadata = {**metadata, **task.inference, "training": training}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_model(final, out)
    log_path = out.with_name(out.name.removesuffix(".safetensors") + ".log.json")
    tmp = log_path.with_suffix(".tmp")
    log = {"training": training, "history": history}
    tmp.write_text(json.dumps(log, indent=1, default=str) + "\n")
    tmp.replace(log_path)
    print(
        f"[{task.name}] saved {out} ({out.stat().st_size / 1e6:.2f} MB): val psnr "
        f"{best['val_psnr']:.2f} vs identity {identity:.2f}",
        flush=True,
    )
    return training


def main(argv: list[str] | None = None) -> int:
    names = ["denoise-2d", *TASKS, "all"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=names, required=True)
    parser.add_argument("--steps", type=int, default=None, help="override the task's step count")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="model file (one model only)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--ema", type=float, default=0.999)
    parser.add_argument("--precision", choices=("bfloat16", "float32"), default="bfloat16")
    parser.add_argument("--val-every", type=int, default=500)
    parser.add_argument("--phantoms", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... or auto")
    parser.add_argument(
        "--max-seconds", type=float, default=None, help="stop after this long (schedule by time)"
    )
    parser.add_argument("--init", type=Path, default=None, help="start from this model file")
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="checkpoint folder (default runs/<model>)"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from the checkpoint if there is one"
    )
    args, rest = parser.parse_known_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    if args.model == "denoise-2d":
        forward = rest + ["--seed", str(args.seed)]
        if args.steps is not None:
            forward += ["--steps", str(args.steps)]
        if args.max_seconds is not None:
            forward += ["--max-seconds", str(args.max_seconds)]
        forward += ["--device", args.device, "--threads", str(args.threads)]
        if args.out is not None:
            forward += ["--out", str(args.out)]
        return base.main(forward)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    chosen = list(TASKS) if args.model == "all" else [args.model]
    if args.out is not None and len(chosen) > 1:
        parser.error("--out names one model file; use it with one --model")
    for name in chosen:
        out = args.out or WEIGHTS / f"{name}.safetensors"
        train_task(TASKS[name], args, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
