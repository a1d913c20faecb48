"""How self-supervised training should hide the noise: Noise2Void or Neighbor2Neighbor.

The choice of ``dn.train``'s default ``blind_spot`` for self-supervised runs,
made on validation images that no benchmark tests on: four of
scikit-image's (brick, grass, gravel, rocket in grey, 256 x 512 crops) with
Gaussian noise (sigma 0.1 of the range), and a phantom of nuclei,
filaments and beads (seed 11) at 10 photons with read noise 1.5 and an
offset of 100. Each is trained on its left half and scored on its right
half (PSNR over the clean half's range), as a user trains on one field of
view and restores another:

- from scratch (the default network), 300 steps of 8 patches of 64²;
- fine-tuning the shipped ``default`` model, 100 steps;

each with ``blind_spot="random"`` (Noise2Void) and
``"neighbor2neighbor"``, the same steps, batch, seed and default
validation (10 % of the image, scored by SURE), one torch thread. "start
kept" means no checkpoint beat the start on that validation.

    python benchmarks/self_supervised_choice.py [--steps 300] [--fine-tune-steps 100]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from _machine import machine

import napari_deconvnet as dn
from napari_deconvnet.core.phantoms import phantom

METHODS = ("random", "neighbor2neighbor")


def cases(quick: bool = False) -> list[tuple[str, np.ndarray, np.ndarray]]:
    from skimage import color, data

    def grey(a: np.ndarray) -> np.ndarray:
        return color.rgb2gray(a) if a.ndim == 3 else a.astype(np.float32) / 255

    shape = (64, 128) if quick else (256, 512)
    rng = np.random.default_rng(5)
    out = []
    images = {"brick": data.brick(), "grass": data.grass(), "gravel": data.gravel()}
    images["rocket"] = data.rocket()
    for name, image in images.items():
        clean = np.asarray(grey(image), np.float32)[: shape[0], : shape[1]]
        noisy = clean + rng.normal(0, 0.1, clean.shape)
        out.append((f"{name}, Gaussian 0.1", clean, noisy.astype(np.float32)))
        if quick:
            break
    scene = 10 * phantom(shape, ["nuclei", "filaments", "beads"], rng=11, mix=2)
    noisy = rng.poisson(scene) + rng.normal(0, 1.5, scene.shape) + 100
    out.append(("phantom, 10 photons", scene + 100, noisy.astype(np.float32)))
    return out


def psnr(a: np.ndarray, clean: np.ndarray) -> float:
    """PSNR over the clean image's own range (the phantom sits on an offset)."""
    return float(dn.psnr(a, clean, data_range=float(clean.max() - clean.min())))


def run(noisy, clean, method: str, start: str | None, steps: int, patch: int) -> tuple:
    half = noisy.shape[1] // 2
    t0 = time.perf_counter()
    result = dn.train(
        noisy[:, :half],
        model=start,
        mode="self-supervised",
        blind_spot=method,
        epochs=max(1, steps // 50),
        steps_per_epoch=min(50, steps),
        batch_size=8,
        patch_size=patch,
        seed=0,
        device="cpu",
        preview=False,
    )
    seconds = time.perf_counter() - t0
    out = dn.restore(noisy[:, half:], result.model, device="cpu")
    return psnr(out, clean[:, half:]), seconds, result.improved


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="from scratch")
    parser.add_argument("--fine-tune-steps", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="two small images, few steps")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=UserWarning)
    patch = 32 if args.quick else 64
    setups = [
        ("new network", None, args.steps),
        ("fine-tuning default", "default", args.fine_tune_steps),
    ]
    print(f"# `python benchmarks/self_supervised_choice.py` ({time.strftime('%Y-%m-%d')})\n")
    print(f"{machine()}; steps from scratch {args.steps}, fine-tuning {args.fine_tune_steps}\n")
    print(
        "| image, noise | noisy | set-up | Noise2Void (random) | Neighbor2Neighbor | difference |"
    )
    print("|---|---:|---|---:|---:|---:|")
    for name, clean, noisy in cases(args.quick):
        half = noisy.shape[1] // 2
        before = psnr(noisy[:, half:], clean[:, half:])
        for label, start, steps in setups:
            cells = []
            scores = []
            for method in METHODS:
                score, seconds, improved = run(noisy, clean, method, start, steps, patch)
                kept = "" if improved else ", start kept"
                cells.append(f"{score:.2f} ({seconds:.0f} s{kept})")
                scores.append(score)
            print(
                f"| {name} | {before:.2f} | {label} | {cells[0]} | {cells[1]} "
                f"| {scores[1] - scores[0]:+.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
