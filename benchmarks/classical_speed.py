"""Speed of ``dn.richardson_lucy`` against scikit-image's, with equal results.

Each case times, in the same process and interleaved (so that a busy machine
slows both alike), a few runs of:

- ``skimage.restoration.richardson_lucy(image, psf, n, clip=False)`` on the
  image as a user would call it (float32 input, so scikit-image computes in
  float32 too): the baseline of the ratio;
- ``dn.richardson_lucy(image, psf, n)``: the default, which first extends the
  image by reflection (three PSF sizes per side) so that the borders show no
  artefact; it does more work than the baseline;
- ``dn.richardson_lucy(image, psf, n, pad=None)``: the same computation as the
  baseline.

Equality is checked against scikit-image on the same input: ``pad=None``
against the baseline, and the default against scikit-image on the
reflect-padded image, cropped back (the documented equivalence). Differences
are the maximum absolute difference divided by the image's maximum.

Times are medians over the repeats; a ratio is the median of the repeats'
ratios, each from runs made one after the other (on a machine shared with
other work, the load changes between repeats more than within one).

Usage::

    python benchmarks/classical_speed.py            # the README table
    python benchmarks/classical_speed.py --quick    # smaller sizes, one run each
    python benchmarks/classical_speed.py --threads 1
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import numpy as np
from _machine import machine

CASES = {
    # name: (image shape, PSF shape, Gaussian sigma per axis, iterations)
    "2D 2048², PSF 15², 30 it.": ((2048, 2048), (15, 15), (2.5, 2.5), 30),
    "3D 64×256×256, PSF 9×13×13, 10 it.": ((64, 256, 256), (9, 13, 13), (1.5, 2.0, 2.0), 10),
}
QUICK = {
    "2D 512², PSF 15², 30 it.": ((512, 512), (15, 15), (2.5, 2.5), 30),
    "3D 32×128×128, PSF 9×13×13, 10 it.": ((32, 128, 128), (9, 13, 13), (1.5, 2.0, 2.0), 10),
}


def _phantom(shape: tuple[int, ...]) -> np.ndarray:
    """Blurred blobs on a dim background with Poisson noise, float32 in [0, ~1]."""
    from scipy import ndimage

    rng = np.random.default_rng(0)
    x = ndimage.gaussian_filter(rng.random(shape, dtype=np.float32), 3.0)
    x = (x - x.min()) / (x.max() - x.min())
    x = np.where(x > 0.55, x, 0.0) + 0.05
    return (rng.poisson(x * 200) / 200).astype(np.float32)


def _skimage_padded(image, psf, iterations):
    """scikit-image on the reflect-padded image, cropped: what the default equals."""
    from skimage.restoration import richardson_lucy

    widths = [(3 * s, 3 * s) for s in psf.shape]
    padded = np.pad(image, widths, mode="reflect")
    out = richardson_lucy(padded, psf, num_iter=iterations, clip=False)
    crop = tuple(slice(3 * s, 3 * s + n) for s, n in zip(psf.shape, image.shape, strict=True))
    return out[crop]


def run(cases: dict, repeats: int, check_padded: bool) -> list[dict]:
    from skimage.restoration import richardson_lucy

    import napari_deconvnet as dn
    from napari_deconvnet.core.psf import blur

    rows = []
    for name, (shape, psf_shape, sigma, iterations) in cases.items():
        psf = dn.make_psf("gaussian", psf_shape, sigma=sigma).astype(np.float32)
        psf /= psf.sum()
        image = np.clip(blur(_phantom(shape), psf), 0, None).astype(np.float32)
        calls = {
            "skimage": partial(richardson_lucy, image, psf, num_iter=iterations, clip=False),
            "dn": partial(dn.richardson_lucy, image, psf, iterations, device="cpu"),
            "dn_nopad": partial(
                dn.richardson_lucy, image, psf, iterations, device="cpu", pad=None
            ),
        }
        times = {key: [] for key in calls}
        outs = {}
        for _ in range(repeats):
            for key, call in calls.items():
                t0 = time.perf_counter()
                outs[key] = call()
                times[key].append(time.perf_counter() - t0)
        peak = float(image.max())
        diff_nopad = float(np.abs(outs["dn_nopad"] - outs["skimage"]).max()) / peak
        diff_pad = None
        if check_padded:
            ref = _skimage_padded(image, psf, iterations)
            diff_pad = float(np.abs(outs["dn"] - ref).max()) / peak
        mid = {key: float(np.median(v)) for key, v in times.items()}
        base = np.array(times["skimage"])
        rows.append(
            {
                "case": name,
                "skimage_s": mid["skimage"],
                "dn_s": mid["dn"],
                "dn_nopad_s": mid["dn_nopad"],
                "ratio": float(np.median(base / np.array(times["dn"]))),
                "ratio_nopad": float(np.median(base / np.array(times["dn_nopad"]))),
                "diff_nopad": diff_nopad,
                "diff_padded": diff_pad,
            }
        )
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument(
        "--no-padded-check",
        action="store_true",
        help="skip scikit-image on the padded image (slow in 3D)",
    )
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    cases = QUICK if args.quick else CASES
    rows = run(cases, 1 if args.quick else args.repeats, not args.no_padded_check)
    print(f"Machine: {machine()}; scikit-image runs in one thread (scipy.signal.fftconvolve)\n")
    print(
        "| case | scikit-image | dn (reflect-padded, default) | ratio | dn `pad=None` | ratio | "
        "max diff `pad=None` vs skimage | max diff default vs skimage on padded |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        padded = "n/a" if r["diff_padded"] is None else f"{r['diff_padded']:.1e}"
        print(
            f"| {r['case']} | {r['skimage_s']:.2f} s | {r['dn_s']:.2f} s | {r['ratio']:.2f}× | "
            f"{r['dn_nopad_s']:.2f} s | {r['ratio_nopad']:.2f}× | {r['diff_nopad']:.1e} | "
            f"{padded} |"
        )


if __name__ == "__main__":
    main()
