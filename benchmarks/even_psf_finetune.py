"""Fine-tune deconv-2d on synthetic pairs with an even-sized PSF, then restore held-out
images with it: PSNR and the residual shift of the result (session 69 registration).

An 8 x 8 Gaussian PSF (sigma 1.6, centred between pixels), Gaussian noise sigma 0.01;
``dn.train(mode="synthetic", model="deconv-2d")`` on scikit-image's camera photo for the
given seconds (one torch thread), then the shipped and the fine-tuned model restore three
other photos (astronaut, coffee, brick; 192 x 192), never seen in training.

Usage::

    python benchmarks/even_psf_finetune.py --seconds 240
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def even_psf() -> np.ndarray:
    """An 8 x 8 Gaussian (sigma 1.6) centred between pixels, summing to 1."""
    yy, xx = np.mgrid[:8, :8] - 3.5
    psf = np.exp(-(yy**2 + xx**2) / (2 * 1.6**2))
    return psf / psf.sum()


def photos() -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    """The training photo and the held-out test photos, in [0, 1]."""
    from skimage import data, transform

    train = transform.resize(
        data.camera().astype(np.float32) / 255, (256, 256), anti_aliasing=True
    )
    tests = [
        ("astronaut", data.astronaut()[..., 1] / 255.0),
        ("coffee", data.coffee()[..., 0] / 255.0),
        ("brick", data.brick() / 255.0),
    ]
    resized = [
        (name, transform.resize(im, (192, 192), anti_aliasing=True).astype(np.float32))
        for name, im in tests
    ]
    return train.astype(np.float32), resized


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=240.0, help="fine-tuning budget")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from skimage.registration import phase_cross_correlation

    import napari_deconvnet as dn

    psf = even_psf()
    train, tests = photos()
    start = time.perf_counter()
    result = dn.train(train, mode="synthetic", psf=psf, noise={"model": "gaussian", "sigma": 0.01},
                      model="deconv-2d", max_seconds=args.seconds, patch_size=64, batch_size=8,
                      seed=0, device="cpu", validation=0.1)  # fmt: skip
    print(f"fine-tuned for {time.perf_counter() - start:.0f} s: {result.message}\n")
    print("| model | " + " | ".join(name for name, _ in tests) + " | mean | largest shift (px) |")
    print("|---|" + "---:|" * (len(tests) + 2))
    for label, model in (("shipped", "deconv-2d"), ("fine-tuned", result.model)):
        psnrs, shifts = [], []
        for i, (_, clean) in enumerate(tests):
            noisy = dn.synthesize(clean, "gaussian", psf=psf, sigma=0.01, seed=10 + i)
            out = dn.restore(noisy, model, psf=psf, device="cpu")
            psnrs.append(dn.psnr(out, clean, data_range=1.0))
            shifts.append(
                float(np.abs(phase_cross_correlation(clean, out, upsample_factor=20)[0]).max())
            )
        row = " | ".join(f"{p:.2f}" for p in psnrs)
        print(f"| {label} | {row} | {np.mean(psnrs):.2f} | {max(shifts):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
