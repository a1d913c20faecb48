"""N2V2 options against Noise2Void checkerboard artifacts: held-out PSNR and artifact measures.

Self-supervised training from scratch for a fixed number of steps (so the
result does not depend on the machine's load), one torch thread, then a
restore of a held-out half of the same image:

- a phantom (nuclei and filaments, peak 20 photons) with Poisson-Gaussian
  camera noise (read noise 2, offset 100);
- scikit-image's ``camera`` with Gaussian noise (sigma 0.1 of the range).

Rows: the Noise2Void baseline (random-neighbour replacement, max-pooling, a
skip connection at every scale) on our default network and without its
residual input, then on the latter each N2V2 fix alone (median replacement,
max-blur-pooling, no top-level skip) and all of them (Höck et al. 2022,
:arXiv:`2211.08512`); last, Neighbor2Neighbor (Huang et al. 2021,
:arXiv:`2101.02824`, ``blind_spot="neighbor2neighbor"``) on our default
network: no blind spot, one neighbour sub-image mapped to the other. Each
row gets the same number of steps and batch.

Columns, on the held-out half (data range of the clean image):

- **PSNR** (dB) and its gain over the noisy input;
- **Nyquist** (dB): the restored image's power on the Nyquist lines
  (vertical or horizontal frequency N/2, where a 2-pixel checkerboard
  lives) over the clean image's power there; 0 dB means as much as the
  clean image, more means a checkerboard (the noisy input has much more);
- **grid** (dB): the error's pattern locked to the network's 4-pixel
  pooling grid (the error averaged over every 4x4 cell position, its mean
  removed), RMS relative to the data range, as an excess over what an
  error of the same RMS without such a pattern gives (its RMS over the
  square root of the number of 4x4 cells); about 0 dB without a
  checkerboard (within about 2 dB from run to run), more with one.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/n2v2.py              # 300 steps, seed 0
    OMP_NUM_THREADS=1 python benchmarks/n2v2.py --steps 100 --seeds 1   # quick look
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

import napari_deconvnet as dn
from napari_deconvnet.core.phantoms import phantom

try:
    from _machine import machine
except ImportError:  # run from elsewhere
    import sys

    sys.path.insert(0, os.path.dirname(__file__))
    from _machine import machine

PATCH, BATCH, STEPS_PER_EPOCH = 64, 8, 50
CAMERA = dict(gain=1.0, offset=100.0, read_noise=2.0)
PEAK = 20.0
SIGMA = 0.1

# The fixes are measured on a network without the residual input (output =
# input + correction), as N2V2 uses it: with median replacement the identity
# already predicts a masked pixel (its input is the median of its neighbours),
# and without the top skip the correction cannot cancel full-resolution noise;
# both then learn to pass the noisy image through (0.0 dB in a first run).
VARIANTS = {
    "N2V (our default network)": dict(
        blind_spot="random", pool="max", top_skip=True, residual=True
    ),
    "N2V, no residual": dict(blind_spot="random", pool="max", top_skip=True, residual=False),
    "+ median replacement": dict(blind_spot="median", pool="max", top_skip=True, residual=False),
    "+ blur-pool": dict(blind_spot="random", pool="blur", top_skip=True, residual=False),
    "+ no top skip": dict(blind_spot="random", pool="max", top_skip=False, residual=False),
    "all N2V2 fixes": dict(blind_spot="median", pool="blur", top_skip=False, residual=False),
    # no blind spot: the network maps one neighbour sub-image to the other
    "Neighbor2Neighbor (our default network)": dict(
        blind_spot="neighbor2neighbor", pool="max", top_skip=True, residual=True
    ),
}


def phantom_task(seed: int) -> tuple[np.ndarray, np.ndarray]:
    clean = PEAK * phantom((256, 512), ["nuclei", "filaments"], rng=seed, mix=2)
    noisy = dn.synthesize(clean, "poisson-gaussian", seed=seed + 1000, **CAMERA)
    return np.asarray(noisy, np.float32), (clean + CAMERA["offset"]).astype(np.float32)


def camera_task(seed: int) -> tuple[np.ndarray, np.ndarray]:
    from skimage.data import camera

    clean = camera()[::2].astype(np.float32) / 255.0  # 256 x 512
    rng = np.random.default_rng(seed + 2000)
    noisy = clean + SIGMA * rng.standard_normal(clean.shape).astype(np.float32)
    return noisy, clean


TASKS = {
    "phantom, Poisson-Gaussian": phantom_task,
    "camera, Gaussian 0.1": camera_task,
}


def nyquist_db(restored: np.ndarray, clean: np.ndarray) -> float:
    """Power on the Nyquist lines of `restored` over that of `clean`, in dB."""

    def power(a: np.ndarray) -> float:
        spec = np.abs(np.fft.fft2(a - a.mean())) ** 2
        h, w = a.shape
        return float(spec[h // 2].sum() + spec[:, w // 2].sum() - spec[h // 2, w // 2])

    return 10 * np.log10(power(restored) / power(clean))


def grid_db(restored: np.ndarray, clean: np.ndarray, period: int = 4) -> float:
    """RMS of the error's pattern on the `period`-pixel grid over the no-pattern level, in dB.

    ``pattern[i, j]`` is the error averaged over all pixels at offset
    ``(i, j)`` in their ``period x period`` cell. Without a grid-locked
    component its RMS is about ``rms(error) / sqrt(cells)``; the ratio to
    that, in dB, is returned (the same value as the RMS relative to the data
    range plus PSNR plus ``10 log10(cells)``).
    """
    err = restored - clean
    h, w = (s - s % period for s in err.shape)
    err = err[:h, :w]
    cells = err.reshape(h // period, period, w // period, period)
    pattern = cells.mean(axis=(0, 2))
    pattern = pattern - pattern.mean()
    floor = np.sqrt((err**2).mean() / (h * w / period**2))
    return 20 * np.log10(float(np.sqrt((pattern**2).mean()) / floor))


def measure(restored: np.ndarray, clean: np.ndarray) -> dict[str, float]:
    data_range = float(clean.max() - clean.min())
    return {
        "psnr": float(dn.psnr(restored, clean, data_range=data_range)),
        "nyquist": nyquist_db(restored, clean),
        "grid": grid_db(restored, clean),
    }


def run(noisy: np.ndarray, clean: np.ndarray, variant: dict, steps: int, seed: int) -> dict:
    w = noisy.shape[1] // 2
    network = {k: variant[k] for k in ("pool", "top_skip", "residual")}
    t0 = time.perf_counter()
    result = dn.train(
        noisy[:, :w],
        mode="self-supervised",
        network=network,
        blind_spot=variant["blind_spot"],
        epochs=max(1, steps // STEPS_PER_EPOCH),
        steps_per_epoch=STEPS_PER_EPOCH,
        patch_size=PATCH,
        batch_size=BATCH,
        validation=None,
        seed=seed,
        device="cpu",
        preview=False,
    )
    seconds = time.perf_counter() - t0
    out = dn.restore(noisy[:, w:], result.model, device="cpu")
    return {**measure(out, clean[:, w:]), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps per run")
    parser.add_argument("--seeds", type=int, default=1, help="runs per cell (seeds 0..n-1)")
    parser.add_argument("--variants", default=None, help="comma-separated row numbers (0-6)")
    parser.add_argument("--tasks", default=None, help="comma-separated task numbers (0-1)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = list(VARIANTS)
    if args.variants:
        names = [names[int(i)] for i in args.variants.split(",")]
    print(f"Machine: {machine()}; {time.strftime('%Y-%m-%d')}")
    print(
        f"Self-supervised from scratch, {args.steps} steps of {BATCH} patches of {PATCH}^2, "
        f"default network (depth 2, 16 channels), mean of {args.seeds} seed(s); held-out half.\n"
    )
    print("| image, noise | variant | PSNR (dB) | gain (dB) | Nyquist (dB) | grid (dB) | s/run |")
    print("|---|---|---|---|---|---|---|")
    tasks = list(TASKS)
    if args.tasks:
        tasks = [tasks[int(i)] for i in args.tasks.split(",")]
    for task in tasks:
        make = TASKS[task]
        noisy, clean = make(0)
        w = noisy.shape[1] // 2
        base = measure(noisy[:, w:], clean[:, w:])
        print(
            f"| {task} | noisy input | {base['psnr']:.2f} | | {base['nyquist']:+.1f} | "
            f"{base['grid']:+.1f} | |",
            flush=True,
        )
        for name in names:
            runs = [run(noisy, clean, VARIANTS[name], args.steps, s) for s in range(args.seeds)]
            mean = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
            spread = ""
            if len(runs) > 1:
                psnrs = [r["psnr"] for r in runs]
                spread = f" ({min(psnrs):.2f}-{max(psnrs):.2f})"
            print(
                f"| {task} | {name} | {mean['psnr']:.2f}{spread} | "
                f"{mean['psnr'] - base['psnr']:+.2f} | {mean['nyquist']:+.1f} | "
                f"{mean['grid']:+.1f} | {mean['seconds']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
