"""``dn.adapt`` of ``deconv-2d`` to a two-channel image with one PSF per channel.

Two fluorophores imaged through one objective (``--scene``):

- ``sample`` (the default): the ``two_colour`` sample's generator at another
  seed (``--seed``, 1; the sample itself is seed 0): cells at 461 nm
  (200 photons) and filaments at 520 nm (30 photons), each blurred by the
  Airy PSF of its wavelength (NA 1.0, 65 nm pixels: the green one an eighth
  wider), Poisson noise, 256 x 256 (``--size``);
- ``photos``: a bright channel (scikit-image's camera photo, 20-300
  photons) blurred by a narrow Gaussian PSF (sigma 1.2 px) and a dim one
  (the moon, 5-60 photons) blurred by a wide one (sigma 2.4 px: a longer
  wavelength and some defocus), Poisson noise.

No clean data is used; every model restores the
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

    python benchmarks/adapt_channel_psfs.py                 # the sample's scene, 30 and 120 s
    python benchmarks/adapt_channel_psfs.py --scene photos --seed 0
    python benchmarks/adapt_channel_psfs.py --seconds 20 --size 96
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def sample_channels(size: int, seed: int = 1):
    """The two_colour sample's clean channels (photons), a Poisson draw, and its PSFs."""
    from napari_deconvnet.io.samples import TWO_COLOUR, two_colour_data

    degraded, clean, psf = two_colour_data((size, size), seed=seed)
    peaks = np.asarray(TWO_COLOUR["peaks"], np.float32)[:, None, None]
    return clean * peaks, degraded * peaks, [psf[0], psf[1]]


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
    parser.add_argument("--scene", choices=("sample", "photos"), default="sample")
    parser.add_argument("--size", type=int, default=None, help="256 (sample), 128 (photos)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    import napari_deconvnet as dn

    size = args.size or (256 if args.scene == "sample" else 128)
    make = sample_channels if args.scene == "sample" else two_channels
    clean, noisy, psfs = make(size, args.seed)
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
    what = (
        "two_colour sample generator (cells 461 nm, 200 photons; filaments 520 nm, 30 "
        f"photons; Airy PSFs), seed {args.seed}"
        if args.scene == "sample"
        else "camera 20-300 photons (Gaussian PSF sigma 1.2 px), moon 5-60 photons (sigma "
        f"2.4 px), seed {args.seed}"
    )
    print(
        f"two channels {size}x{size}: {what}; Poisson; restored with one PSF per channel; "
        f"shipped deconv-2d {shipped[0]:.2f} / {shipped[1]:.2f} dB\n"
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
