"""The default learning rate of a new 3D network: 3e-3 (dn.train's 2D default) against 1e-3.

A new network of ``deconv-3d``'s size (depth 2, 16 base channels) learns
3D Poisson-Gaussian denoising (10 photons, read noise 0.5) from scratch on
two of the quality benchmark's phantom volumes (training seeds, not test
volumes), 6 epochs of 50 steps × 4 patches of 16×48×48, once per learning
rate, and is scored (PSNR dB, clipped to [0, 1]) on a third volume with
its own noise. ``benchmarks/finetune_deconv3d.py --scratch 0 --lr ...``
is the deconvolution counterpart.

    OMP_NUM_THREADS=1 python benchmarks/lr_3d.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import quality as q  # noqa: E402
from _machine import machine  # noqa: E402

import napari_deconvnet as dn  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    train = [q._volume((32, 96, 96), s) for s in (9101, 9102)]
    test = q._volume((32, 96, 96), 9201)
    rng = np.random.default_rng(5)
    noisy = (rng.poisson(test * 10) / 10 + rng.normal(0, 0.05, test.shape)).astype(np.float32)

    def psnr(a: np.ndarray) -> float:
        return float(10 * np.log10(1 / np.mean((np.clip(a, 0, 1) - test) ** 2)))

    print(f"Machine: {machine()}\n")
    print(f"noisy input: {psnr(noisy):.2f} dB\n")
    print("| lr | kept epoch | PSNR (dB) |\n|---|---:|---:|")
    for lr in (3e-3, 1e-3):
        result = dn.train(
            train,
            noise={"model": "poisson-gaussian", "peak": 10, "read_noise": 0.5},
            epochs=6,
            steps_per_epoch=50,
            patch_size=(16, 48, 48),
            batch_size=4,
            network={"ndim": 3, "depth": 2, "base_channels": 16},
            lr=lr,
            seed=0,
            device="cpu",
        )
        print(f"| {lr:g} | {result.best_epoch} | {psnr(dn.restore(noisy, result.model)):.2f} |")


if __name__ == "__main__":
    main()
