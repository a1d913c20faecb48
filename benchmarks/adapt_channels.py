"""``dn.adapt`` on a two-channel image whose channels differ in brightness.

A bright channel (scikit-image's camera photo at 20-820 photons) and a dim one
(the moon at 5-45 photons), Poisson noise, 96 x 96 (``--size``), adapted
together from ``denoise-2d`` (``dn.adapt(..., noise="auto")``) for each budget,
then restored with ``axes="CYX"`` (each channel normalised by its own
statistics, as ``dn.restore`` does for a stack). Two ways of drawing the
synthetic pairs:

- ``each image's level``: each pair at the brightness and statistics of one
  channel (:func:`napari_deconvnet.core.adapt.image_levels`, since session 61);
- ``stack's level (before)``: every pair at the whole stack's brightness and
  statistics (the baseline: the behaviour before, obtained by switching
  ``image_levels`` off).

Each channel's PSNR is measured in its own range (as ``dn.measure`` measures a
``C`` axis). One torch thread; the same seed for both ways.

Usage::

    python benchmarks/adapt_channels.py                    # 12, 30 and 120 s
    python benchmarks/adapt_channels.py --seconds 12 --size 64
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def two_channels(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The clean two-channel image (photons) and a Poisson draw of it."""
    from skimage import data
    from skimage.transform import resize

    bright = resize(data.camera().astype(np.float32) / 255, (size, size))
    dim = resize(data.moon().astype(np.float32) / 255, (size, size))
    clean = np.stack([bright * 800 + 20, dim * 40 + 5]).astype(np.float32)
    noisy = np.random.default_rng(seed).poisson(clean).astype(np.float32)
    return clean, noisy


def channel_psnrs(model, noisy: np.ndarray, clean: np.ndarray) -> list[float]:
    import napari_deconvnet as dn

    out = dn.restore(noisy, model, axes="CYX")
    return [
        float(dn.psnr(clean[c], out[c], data_range=float(np.ptp(clean[c]))))
        for c in range(len(clean))
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[12.0, 30.0, 120.0])
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    import importlib

    import napari_deconvnet as dn

    # (the module: napari_deconvnet.core re-exports the function adapt under its name)
    adapt_module = importlib.import_module("napari_deconvnet.core.adapt")

    clean, noisy = two_channels(args.size, args.seed)
    shipped = channel_psnrs("denoise-2d", noisy, clean)
    levels = adapt_module.image_levels
    rows = []
    for seconds in args.seconds:
        for way, switch in (("each image's level", levels), ("stack's level (before)", None)):
            adapt_module.image_levels = switch or (lambda *a, **k: None)
            try:
                started = time.perf_counter()
                model = dn.adapt("denoise-2d", noisy, seconds=seconds, seed=args.seed)
                spent = time.perf_counter() - started
            finally:
                adapt_module.image_levels = levels
            bright, dim = channel_psnrs(model, noisy, clean)
            kept = not model.metadata["training"].get("improved", True)
            rows.append((seconds, way, bright, dim, kept, spent))
    print(
        f"two channels {args.size}x{args.size}: bright 20-820 photons, dim 5-45, Poisson; "
        f"shipped denoise-2d {shipped[0]:.2f} / {shipped[1]:.2f} dB (bright / dim)\n"
    )
    print(
        "| budget | pairs drawn at | bright channel (dB) | dim channel (dB) | dim − shipped "
        "| start kept |"
    )
    print("|---:|---|---:|---:|---:|---|")
    for seconds, way, bright, dim, kept, _ in rows:
        print(
            f"| {seconds:g} s | {way} | {bright:.2f} | {dim:.2f} | {dim - shipped[1]:+.2f} | "
            f"{'yes' if kept else 'no'} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
