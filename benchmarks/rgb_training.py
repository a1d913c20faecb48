"""RGB training in the colour space restore uses, against the other remedy.

``dn.restore`` sends an RGB image through a one-channel denoiser as luminance
and two chroma channels (``core/colour.py``). Training on RGB with
``axes="YXS"`` now maps its data there too (``train_setup.by_channel``), so a
model restores as it was trained. Before, RGB trained on red, green and blue
and restored in the other space. This script trains on a noisy crop of one
photo (scikit-image's coffee, Gaussian noise) and restores held-out crops of
two others (astronaut, cat), each way:

- ``opponent`` (the package now): ``dn.train(..., axes="YXS")``, restored
  with ``axes="YXS"``;
- ``rgb, as restored``: trained on red, green and blue (``axes="YXC"``),
  restored with ``axes="YXS"`` (what the package did before: the mismatch);
- ``rgb, channel by channel``: the same model restored with ``axes="YXC"``
  (the other way to remove the mismatch).

From scratch and fine-tuned from ``denoise-2d`` (the Train widget's default
start), a fixed step budget, seed 0, one torch thread. PSNR in dB against
the clean crop, outputs clipped to [0, 1]. Training pairs come from the
coffee photo only; the scored crops never enter training or validation.

Usage::

    python benchmarks/rgb_training.py                 # 60 steps, sigma 0.1
    python benchmarks/rgb_training.py --steps 4 --size 48   # a smoke run
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402


def crops(size: int, sigma: float, seed: int = 1):
    """(noisy, clean) training crop of coffee and held-out crops of astronaut and cat."""
    from skimage import data

    def crop(img, y, x, n):
        return (img[y : y + n, x : x + n] / 255).astype(np.float32)

    rng = np.random.default_rng(seed)
    train = crop(data.coffee(), 100, 100, int(size * 1.5))
    held = {"astronaut": crop(data.astronaut(), 50, 150, size),
            "cat": crop(data.chelsea(), 100, 200, size)}  # fmt: skip

    def noisy(c):
        return (c + rng.normal(0, sigma, c.shape)).astype(np.float32)

    return (noisy(train), train), {k: (noisy(c), c) for k, c in held.items()}


def psnr(out: np.ndarray, clean: np.ndarray) -> float:
    return float(10 * np.log10(1 / np.mean((np.clip(out, 0, 1) - clean) ** 2)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--size", type=int, default=128, help="held-out crop side")
    parser.add_argument("--sigma", type=float, default=0.1)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    import napari_deconvnet as dn

    (noisy, clean), held = crops(args.size, args.sigma)
    spe = max(1, args.steps // 6)
    options = dict(epochs=args.steps // spe, steps_per_epoch=spe, patch_size=32,
                   batch_size=8, seed=0, validation=0.1, device="cpu")  # fmt: skip
    rows = []
    for start in (None, "denoise-2d"):
        opponent = dn.train(noisy, clean, axes="YXS", model=start, **options).model
        rgb = dn.train(noisy, clean, axes="YXC", model=start, **options).model
        ways = {
            "opponent": (opponent, "YXS"),
            "rgb, as restored": (rgb, "YXS"),
            "rgb, channel by channel": (rgb, "YXC"),
        }
        for way, (model, axes) in ways.items():
            scores = [
                psnr(dn.restore(n, model, axes=axes, device="cpu"), c) for n, c in held.values()
            ]
            rows.append((start or "from scratch", way, *scores))
    print(
        f"{machine()}\n\nRGB training on a {noisy.shape[0]}² crop of coffee (Gaussian σ "
        f"{args.sigma}), {args.steps} steps of 8 patches of 32², scored on held-out crops "
        f"({args.size}²) of {' and '.join(held)}; PSNR (dB)\n"
    )
    print(f"| start | trained / restored | {' | '.join(held)} | mean |")
    print("|---|---|" + "---:|" * (len(held) + 1))
    for start, way, *scores in rows:
        cells = " | ".join(f"{s:.2f}" for s in scores)
        print(f"| {start} | {way} | {cells} | {np.mean(scores):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
