"""A CARE-style learned baseline for the quality benchmark: a plain supervised UNet.

The network follows the CARE recipe of Weigert et al. [1]_ in its simplest
form: two 3x3 convolutions with ReLU per level, max-pooling down,
nearest-neighbour upsampling and concatenation up, a 1x1 output convolution
added to the input (residual), in 2D or 3D. It is trained from scratch for a
fixed wall-clock budget with Adam and the MSE on (degraded, clean) patch pairs,
with percentile normalisation: both images of a pair are mapped by the
degraded image's 1st and 99.8th percentiles (CSBDeep's defaults), and a result
is mapped back by the same affine map.

It is written here, not imported from CSBDeep or CAREamics, so that the
benchmark needs nothing beyond torch and runs on the CPU.

References
----------
.. [1] M. Weigert et al., "Content-aware image restoration: pushing the
       limits of fluorescence microscopy", Nat. Methods 15, 1090-1097 (2018).
       :DOI:`10.1038/s41592-018-0216-7`
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

PERCENTILES = (1.0, 99.8)


class UNet(nn.Module):
    """Plain UNet with a residual output, for ``(B, 1, H, W)`` or ``(B, 1, D, H, W)``."""

    def __init__(
        self, ndim: int = 2, base: int = 24, depth: int = 2, residual: bool = True
    ) -> None:
        super().__init__()
        self.residual = residual
        conv = nn.Conv2d if ndim == 2 else nn.Conv3d
        pool = nn.MaxPool2d if ndim == 2 else nn.MaxPool3d

        def block(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(
                conv(c_in, c_out, 3, padding=1),
                nn.ReLU(inplace=True),
                conv(c_out, c_out, 3, padding=1),
                nn.ReLU(inplace=True),
            )

        widths = [base * 2**level for level in range(depth + 1)]
        self.ndim, self.depth = ndim, depth
        self.down = nn.ModuleList(
            [block(1 if i == 0 else widths[i - 1], widths[i]) for i in range(depth)]
        )
        self.pool = pool(2)
        self.bottom = block(widths[depth - 1], widths[depth])
        self.up = nn.ModuleList(
            [block(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(depth))]
        )
        self.out = conv(widths[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips, h = [], x
        for level in self.down:
            h = level(h)
            skips.append(h)
            h = self.pool(h)
        h = self.bottom(h)
        for level, skip in zip(self.up, reversed(skips), strict=True):
            h = nn.functional.interpolate(h, scale_factor=2, mode="nearest")
            h = level(torch.cat([h, skip], dim=1))
        return x + self.out(h) if self.residual else self.out(h)


def parameter_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def _stats(image: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(image, PERCENTILES)
    return float(lo), float(hi - lo) if hi > lo else 1.0


def _random_box(shape: tuple[int, ...], patch: tuple[int, ...], rng: np.random.Generator):
    """A uniformly placed window of size `patch` inside an array of `shape`."""
    corner = [int(rng.integers(n - p + 1)) for n, p in zip(shape, patch, strict=True)]
    return tuple(slice(c, c + p) for c, p in zip(corner, patch, strict=True))


def _augment(a: np.ndarray, b: np.ndarray, rng: np.random.Generator):
    """The same random flips and 90-degree rotation (in the YX plane) of two patches."""
    k = int(rng.integers(4))
    a, b = np.rot90(a, k, axes=(-2, -1)), np.rot90(b, k, axes=(-2, -1))
    for axis in range(a.ndim):
        if rng.random() < 0.5:
            a, b = np.flip(a, axis), np.flip(b, axis)
    return np.ascontiguousarray(a), np.ascontiguousarray(b)


def train_care(
    draw: Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]],
    *,
    ndim: int,
    seconds: float,
    patch: tuple[int, ...],
    batch: int,
    base: int,
    seed: int = 0,
    pool: int = 32,
    lr: float = 1e-3,
    steps: int | None = None,
) -> tuple[UNet, dict]:
    """Train a :class:`UNet` on pairs from `draw` for `seconds` of wall time.

    With `steps`, it trains for exactly that many optimizer steps instead
    (the cosine runs over the steps), whatever the wall time: a budget that
    a loaded machine cannot shrink.

    `draw(rng)` returns one ``(degraded, clean)`` training region of at least
    `patch` size (never a test image). A pool of `pool` normalised regions is
    kept; every step replaces one of them by a new draw (fresh noise), then
    takes `batch` random, augmented patches from the pool. The learning rate
    follows a cosine over the time budget. Returns the network (eval mode, on
    the CPU) and a record: steps, seconds, parameters, last losses.
    """
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    net = UNet(ndim, base=base).train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)

    def region() -> tuple[np.ndarray, np.ndarray]:
        degraded, clean = draw(rng)
        lo, scale = _stats(degraded)
        return (degraded - lo) / scale, (clean - lo) / scale

    start = time.perf_counter()
    regions = [region() for _ in range(pool)]
    done, losses = 0, []
    while _progress(start, seconds, done, steps) < 1.0 or done == 0:
        progress = _progress(start, seconds, done, steps)
        for group in opt.param_groups:
            group["lr"] = lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))
        regions[done % pool] = region()
        xs, ys = [], []
        for _ in range(batch):
            x, y = regions[int(rng.integers(pool))]
            box = _random_box(x.shape, patch, rng)
            a, b = _augment(x[box], y[box], rng)
            xs.append(a)
            ys.append(b)
        xb = torch.from_numpy(np.stack(xs)[:, None]).float()
        yb = torch.from_numpy(np.stack(ys)[:, None]).float()
        loss = nn.functional.mse_loss(net(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        done += 1
    record = {
        "steps": done,
        "budget": f"{steps} steps" if steps else f"{seconds:g} s",
        "seconds": time.perf_counter() - start,
        "parameters": parameter_count(net),
        "loss": float(np.mean(losses[-20:])),
        "patch": list(patch),
        "batch": batch,
    }
    return net.eval(), record


def _progress(start: float, seconds: float, done: int, steps: int | None) -> float:
    """How far through its budget a run is, 0 to 1: steps when given, else wall time."""
    if steps:
        return done / steps
    return (time.perf_counter() - start) / seconds


def train_n2v(
    images: list[np.ndarray],
    *,
    ndim: int,
    steps: int,
    patch: tuple[int, ...],
    batch: int,
    base: int,
    seed: int = 0,
    lr: float = 4e-4,
) -> tuple[UNet, dict]:
    """A Noise2Void baseline: the plain UNet trained on the noisy images themselves.

    The recipe of Krull et al. (CVPR 2019) in its plain form, as CAREamics and
    the n2v package run it by default: no clean data, each image normalised by
    its own percentiles, random augmented patches, one pixel per 6**2 (4**3 in
    3D) cell replaced by a random neighbour within radius 2 (the package's
    tested :func:`~napari_deconvnet.core.patches.blind_spot`), MSE at the
    replaced pixels only, Adam with a cosine over `steps`, no residual output
    (a residual would hand the network the replaced value). It is trained on
    the very images it then restores, as N2V is meant to be used.
    """
    from napari_deconvnet.core.patches import blind_spot

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = UNet(ndim, base=base, residual=False).train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    normalised = []
    for image in images:
        lo, scale = _stats(image)
        normalised.append(((image - lo) / scale).astype(np.float32))
    start, losses = time.perf_counter(), []
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        xs = []
        for _ in range(batch):
            x = normalised[int(rng.integers(len(normalised)))]
            box = _random_box(x.shape, patch, rng)
            xs.append(_augment(x[box], x[box], rng)[0])
        xb = torch.from_numpy(np.stack(xs)[:, None]).float()
        masked, mask = blind_spot(xb, gen)
        loss = ((net(masked) - xb)[mask] ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    record = {
        "steps": steps,
        "budget": f"{steps} steps",
        "seconds": time.perf_counter() - start,
        "parameters": parameter_count(net),
        "loss": float(np.mean(losses[-20:])),
        "patch": list(patch),
        "batch": batch,
        "trained_on": "the task's noisy test images (no clean data)",
    }
    return net.eval(), record


def predict(net: UNet, image: np.ndarray) -> np.ndarray:
    """Restore a whole image: normalise, reflect-pad to the UNet's grid, run, map back."""
    lo, scale = _stats(image)
    grid = 2**net.depth
    pad = [(0, -n % grid) for n in image.shape]
    x = np.pad((image - lo) / scale, pad, mode="reflect").astype(np.float32)
    with torch.inference_mode():
        y = net(torch.from_numpy(x)[None, None])[0, 0].numpy()
    crop = tuple(slice(0, n) for n in image.shape)
    return (y[crop] * scale + lo).astype(np.float32)
