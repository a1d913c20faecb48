"""Restore speed of model files against each other, in one process.

A retrained model can change what a restore costs beside its network: a
deconvolution model's classical channel (Wiener or Richardson-Lucy
iterations) runs on every restore. This measures whole ``dn.restore`` calls
of each model on the same input, alternating the models round by round
(so that the machine's load falls on all of them alike), and prints the
median rate of each with its ratio to the first model, the baseline.

Usage::

    python benchmarks/model_speed.py deconv-3d runs/new/deconv-3d.safetensors
    python benchmarks/model_speed.py --shape 1024 1024 deconv-2d other.safetensors

The input is the package's cells phantom (``core.phantoms``), blurred by a
Gaussian PSF (sigma 2 planes and 1 pixel, or 1.5 pixels in 2D) with Poisson
noise at 50 photons; the PSF goes only to models that need one.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import napari_deconvnet as dn
from napari_deconvnet.core.noise import synthesize
from napari_deconvnet.core.phantoms import cells_2d, cells_3d
from napari_deconvnet.core.psf import blur


def sample_input(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    if len(shape) == 3:
        clean = cells_3d(rng, shape)
        psf = dn.make_psf("gaussian", shape=(17, 9, 9), sigma=(2.0, 1.0, 1.0))
    else:
        clean = cells_2d(rng, max(shape))[: shape[0], : shape[1]]
        psf = dn.make_psf("gaussian", shape=(11, 11), sigma=1.5)
    noisy = synthesize(blur(clean, psf), "poisson", peak=50.0, seed=0)
    return np.asarray(noisy, np.float32), psf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="shipped names or model files; first = baseline")
    parser.add_argument("--shape", type=int, nargs="+", default=[64, 256, 256])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--precision", default="float32", help="float32, bfloat16 or auto")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    image, psf = sample_input(tuple(args.shape))
    nets = [dn.load_model(m) for m in args.models]

    def run(net):
        kw = {"psf": psf} if net.metadata.get("needs_psf", False) else {}
        return dn.restore(image, net, precision=args.precision, **kw)

    for net in nets:  # warm-up (oneDNN kernels, FFT plans)
        run(net)
    seconds: list[list[float]] = [[] for _ in nets]
    for _ in range(args.repeats):
        for k, net in enumerate(nets):
            start = time.perf_counter()
            run(net)
            seconds[k].append(time.perf_counter() - start)
    size = image.size / 1e6
    unit = "MVox/s" if image.ndim == 3 else "MP/s"
    base = statistics.median(seconds[0])
    print(
        f"{'x'.join(map(str, image.shape))}, {torch.get_num_threads()} torch threads, "
        f"{args.precision}, median of {args.repeats} alternating rounds\n"
    )
    print(f"| model | conditioning | seconds | {unit} | speed vs {args.models[0]} |")
    print("|---|---|---:|---:|---:|")
    for name, net, s in zip(args.models, nets, seconds, strict=True):
        median = statistics.median(s)
        cond = net.metadata.get("conditioning", {})
        label = ", ".join(f"{k} {v}" for k, v in cond.items()) or "—"
        rate, ratio = size / median, base / median
        print(f"| `{name}` | {label} | {median:.2f} | {rate:.3f} | {ratio:.2f}× |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
