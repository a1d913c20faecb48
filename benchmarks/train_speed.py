"""Training throughput of ``dn.train`` against a plain PyTorch loop, in one run.

Both train the default-size network (``DeconvNetConfig()``: depth 2, 16 base
channels) on the CPU with the same settings: 64 px patches, batches of 16,
AdamW (lr 3e-3, weight decay 1e-4) with a cosine schedule, gradient clipping
at 1.0, channels-last tensors, random flips and 90-degree rotations, MSE, and
the normalisation of ``dn.restore``. The baseline is the loop one writes by
hand: the whole image is normalised once in memory and patches are sliced
from it. The engine reads every patch from the raw image (lazily, as it must
for dask data), keeps validation patches apart and reports events.

Two measures:

- **throughput**: training patches per second over a fixed number of steps
  (the engine's validation is turned off, so both do the same work);
- **time to PSNR**: seconds of training (evaluation excluded) until the
  restored held-out image reaches a fixed PSNR; the engine validates every
  epoch as it does by default.

Runs alternate engine and baseline, and the best of ``--repeats`` is kept,
because the CPU may be shared.

Usage::

    python benchmarks/train_speed.py              # the README table
    python benchmarks/train_speed.py --quick      # fewer steps
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import platform
import threading
import time

import numpy as np
import torch
import torch.nn.functional as F

import napari_deconvnet as dn
from napari_deconvnet.core.model import DeconvNet, DeconvNetConfig

PATCH, BATCH, LR, WD, CLIP = 64, 16, 3e-3, 1e-4, 1.0


def phantom(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Blobs and sharp disks in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    img = np.zeros(shape, np.float32)
    for _ in range(40):
        cy, cx = rng.random(2) * shape
        r = 3 + 25 * rng.random()
        img += (0.2 + 0.8 * rng.random()) * np.exp(
            -((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)
        )
    for _ in range(80):
        cy, cx = rng.random(2) * shape
        r = 1.5 + 5 * rng.random()
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] += 0.5 * rng.random()
    return img / img.max()


def data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    clean = phantom((512, 512), seed)
    noisy = clean + np.random.default_rng(seed + 100).normal(0, 0.1, clean.shape)
    return noisy.astype(np.float32), clean.astype(np.float32)


def plain_loop(noisy, clean, steps, seed, evaluate=None, every=None, target=None):
    """The hand-written baseline; returns (training seconds, seconds to target or None)."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    lo, hi = np.percentile(noisy, [0.5, 99.5])
    scale = np.float32(hi - lo)
    x_all, y_all = (noisy - np.float32(lo)) / scale, (clean - np.float32(lo)) / scale
    net = DeconvNet(DeconvNetConfig()).to(memory_format=torch.channels_last).train()
    opt = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=WD)
    h, w = noisy.shape
    clock, reached = 0.0, None
    for step in range(steps):
        t0 = time.perf_counter()
        warm = 0.05
        p = step / steps
        factor = (
            max(p / warm, 0.01)
            if p < warm
            else 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * (p - warm) / (1 - warm)))
        )
        for group in opt.param_groups:
            group["lr"] = LR * factor
        xs, ys = [], []
        for _ in range(BATCH):
            i, j = rng.integers(h - PATCH + 1), rng.integers(w - PATCH + 1)
            a, b = x_all[i : i + PATCH, j : j + PATCH], y_all[i : i + PATCH, j : j + PATCH]
            k, flip = rng.integers(4), rng.integers(2)
            a, b = np.rot90(a, k), np.rot90(b, k)
            if flip:
                a, b = a[:, ::-1], b[:, ::-1]
            xs.append(np.ascontiguousarray(a))
            ys.append(np.ascontiguousarray(b))
        xb = torch.from_numpy(np.stack(xs))[:, None].contiguous(memory_format=torch.channels_last)
        yb = torch.from_numpy(np.stack(ys))[:, None]
        loss = F.mse_loss(net(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), CLIP)
        opt.step()
        loss.item()
        clock += time.perf_counter() - t0
        if evaluate is not None and (step + 1) % every == 0 and reached is None:
            if evaluate(net) >= target:
                reached = clock
                break
    return clock, reached


def engine(noisy, clean, steps, seed, evaluate=None, every=None, target=None):
    """dn.train with the same settings; returns (training seconds, seconds to target or None)."""
    state = {"clock": 0.0, "last": None, "reached": None, "paused": 0.0}
    stop = threading.Event()

    def callback(event):
        now = time.perf_counter()
        if event.kind == "start":
            state["begin"] = now
        if evaluate is not None and event.kind == "epoch" and state["reached"] is None:
            trained = now - state["begin"] - state["paused"]
            value = evaluate(event.model)
            state["paused"] += time.perf_counter() - now
            if value >= target:
                state["reached"] = trained
                stop.set()

    t0 = time.perf_counter()
    dn.train(
        noisy,
        clean,
        epochs=1 if evaluate is None else steps // every,
        steps_per_epoch=steps if evaluate is None else every,
        patch_size=PATCH,
        batch_size=BATCH,
        lr=LR,
        weight_decay=WD,
        clip_norm=CLIP,
        validation=0 if evaluate is None else 0.1,
        seed=seed,
        device="cpu",
        preview=False,
        callback=callback,
        stop=stop,
    )
    total = time.perf_counter() - t0 - state["paused"]
    return total, state["reached"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = 20 if args.quick else 60
    repeats = 1 if args.quick else args.repeats
    noisy, clean = data(0)
    test_noisy, test_clean = data(1)
    noisy_psnr = dn.psnr(test_noisy, test_clean, data_range=1.0)
    target = noisy_psnr + 6.0

    def evaluate(net) -> float:
        restored = dn.restore(test_noisy, copy.deepcopy(net).cpu(), device="cpu")
        return dn.psnr(restored, test_clean, data_range=1.0)

    engine(noisy, clean, 3, 0)  # warm-up: oneDNN kernels, imports
    plain_loop(noisy, clean, 3, 0)
    speed = {"engine": [], "plain": []}
    for _ in range(repeats):
        speed["engine"].append(engine(noisy, clean, steps, 0)[0])
        speed["plain"].append(plain_loop(noisy, clean, steps, 0)[0])
    to_psnr = {"engine": [], "plain": []}
    budget, every = (200, 20) if args.quick else (600, 20)
    for _ in range(1 if args.quick else 2):
        to_psnr["engine"].append(engine(noisy, clean, budget, 0, evaluate, every, target)[1])
        to_psnr["plain"].append(plain_loop(noisy, clean, budget, 0, evaluate, every, target)[1])

    def best(values):
        values = [v for v in values if v is not None]
        return min(values) if values else None

    e, p = best(speed["engine"]), best(speed["plain"])
    te, tp = best(to_psnr["engine"]), best(to_psnr["plain"])
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"python {platform.python_version()}"
    )
    print(
        f"default network, CPU, patch {PATCH}, batch {BATCH}, {steps} steps, best of {repeats}; "
        f"PSNR target {target:.1f} dB (noisy {noisy_psnr:.1f} dB, sigma 0.1, 512² phantom)\n"
    )
    print("| measure | dn.train | plain PyTorch loop | time ratio (dn.train / plain) |")
    print("|---|---|---|---|")
    print(
        f"| throughput (patches/s) | {steps * BATCH / e:.1f} | {steps * BATCH / p:.1f} | "
        f"{e / p:.2f} |"
    )

    def fmt(v):
        return "not reached" if v is None else f"{v:.1f}"

    ratio = f"{te / tp:.2f}" if te and tp else "n/a"
    print(f"| seconds to {target:.1f} dB | {fmt(te)} | {fmt(tp)} | {ratio} |")


if __name__ == "__main__":
    main()
