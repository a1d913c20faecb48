"""``dn.adapt`` of ``deconv-2d`` to a two-channel image with one PSF per channel.

Two fluorophores imaged through one objective: a bright channel
(scikit-image's camera photo, 20-300 photons) blurred by a narrow Gaussian
PSF (sigma 1.2 px) and a dim one (the moon, 5-60 photons) blurred by a wide
one (sigma 2.4 px: a longer wavelength and some defocus), Poisson noise,
128 x 128 (``--size``). No clean data is used; every model restores the
image with one PSF per channel (``dn.restore(..., psf=[narrow, wide],
axes="CYX")``), and each channel's PSNR is measured in its own range. Ways
of adapting, each in the same total budget:

- ``one PSF per channel``: ``dn.adapt("deconv-2d", image, psf=[narrow, wide],
  axes="CYX")``: each synthetic pair takes one channel's brightness and PSF
  (session 62);
- ``split, half each``: the channels adapted one by one, each with its own
  PSF and half the budget (two models; what a user did before, after
  napari's *Split Stack*);
- ``narrow PSF for both``: the pairs blurred by the first channel's PSF only
  (one PSF for the whole stack, the only other way to adapt one model then).

The shipped ``deconv-2d``, unadapted, is the reference. One torch thread; the
same seed for every way.

Usage::

    python benchmarks/adapt_channel_psfs.py                 # 30 and 120 s
    python benchmarks/adapt_channel_psfs.py --seconds 20 --size 96
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def two_channels(size: int, seed: int = 0):
    """The clean two-channel image (photons), its blurred Poisson draw, and the PSFs."""
    from skimage import data
    from skimage.transform import resize

    import napari_deconvnet as dn
    from napari_deconvnet.core.psf import blur

    narrow = dn.make_psf("gaussian", shape=(13, 13), sigma=1.2)
    wide = dn.make_psf("gaussian", shape=(21, 21), sigma=2.4)
    bright = resize(data.camera().astype(np.float32) / 255, (size, size))
    dim = resize(data.moon().astype(np.float32) / 255, (size, size))
    clean = np.stack([bright * 280 + 20, dim * 55 + 5]).astype(np.float32)
    blurred = np.stack([blur(clean[0], narrow), blur(clean[1], wide)])
    noisy = np.random.default_rng(seed).poisson(np.clip(blurred, 0, None)).astype(np.float32)
    return clean, noisy, [narrow, wide]


def channel_psnrs(models, noisy: np.ndarray, clean: np.ndarray, psfs) -> list[float]:
    """Each channel's PSNR (own range); `models` is one model or one per channel."""
    import napari_deconvnet as dn

    if isinstance(models, list):
        out = np.stack([dn.restore(noisy[c], m, psf=psfs[c]) for c, m in enumerate(models)])
    else:
        out = dn.restore(noisy, models, psf=psfs, axes="CYX")
    return [
        float(dn.psnr(clean[c], out[c], data_range=float(np.ptp(clean[c]))))
        for c in range(len(clean))
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[30.0, 120.0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    import napari_deconvnet as dn

    clean, noisy, psfs = two_channels(args.size, args.seed)
    shipped = channel_psnrs("deconv-2d", noisy, clean, psfs)
    rows = []
    for seconds in args.seconds:
        ways = {
            "one PSF per channel": lambda s=seconds: dn.adapt(
                "deconv-2d", noisy, psf=psfs, axes="CYX", seconds=s, seed=args.seed
            ),
            "split, half each": lambda s=seconds: [
                dn.adapt("deconv-2d", noisy[c], psf=psfs[c], seconds=s / 2, seed=args.seed)
                for c in range(2)
            ],
            "narrow PSF for both": lambda s=seconds: dn.adapt(
                "deconv-2d", noisy, psf=psfs[0], seconds=s, seed=args.seed
            ),
        }
        for way, run in ways.items():
            started = time.perf_counter()
            model = run()
            spent = time.perf_counter() - started
            rows.append((seconds, way, *channel_psnrs(model, noisy, clean, psfs), spent))
    print(
        f"two channels {args.size}x{args.size}: camera 20-300 photons (Gaussian PSF sigma "
        "1.2 px), moon 5-60 photons (sigma 2.4 px), Poisson; restored with one PSF per "
        f"channel; shipped deconv-2d {shipped[0]:.2f} / {shipped[1]:.2f} dB\n"
    )
    print(
        "| budget | adapted with | channel 0 (dB) | channel 1 (dB) | mean − shipped | "
        "seconds spent |"
    )
    print("|---:|---|---:|---:|---:|---:|")
    for seconds, way, first, second, spent in rows:
        gain = (first + second - sum(shipped)) / 2
        print(
            f"| {seconds:g} s | {way} | {first:.2f} | {second:.2f} | {gain:+.2f} | {spent:.0f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
