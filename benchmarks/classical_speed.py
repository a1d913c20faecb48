"""Speed of ``dn.richardson_lucy`` against scikit-image's, with equal results.

Each case times, in the same process and interleaved (so that a busy machine
slows both alike), a few runs of:

- ``skimage.restoration.richardson_lucy(image, psf, n, clip=False)`` on the
  image as a user would call it (float32 input, so scikit-image computes in
  float32 too): the baseline of the ratio;
- ``dn.richardson_lucy(image, psf, n)``: the default, which treats the image
  as extended by its mirror image so that the borders show no artefact (for
  a PSF symmetric along each axis, as these Gaussians, it runs on the image
  alone, folding what falls beyond the borders back onto it);
- ``dn.richardson_lucy(image, psf, n, pad=None)``: the same computation as the
  baseline.

Equality is checked against scikit-image on the same input: ``pad=None``
against the baseline. With ``--padded-check``, the default is also compared
with scikit-image on the image extended by reflection by three PSF sizes,
cropped back: the previous default, of which the present one is the limit
as that padding widens (``tests/test_rl_speed_paths.py`` checks the default
against a float64 reference of its own rule). Differences are the maximum
absolute difference divided by the image's maximum.

Times are the best of the repeats (the least disturbed by other work on a
shared machine); a ratio is scikit-image's best over ours. Both run in one
thread (torch's threads are set to 1 unless ``--threads`` says otherwise;
scikit-image's ``fftconvolve`` uses one).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/classical_speed.py   # the README table
    python benchmarks/classical_speed.py --case 3D --repeats 5
    python benchmarks/classical_speed.py --quick    # smaller sizes, one run each
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
    """Time each case; return rows of best times, ratios and differences."""
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
        best = {key: min(v) for key, v in times.items()}
        rows.append(
            {
                "case": name,
                "skimage_s": best["skimage"],
                "dn_s": best["dn"],
                "dn_nopad_s": best["dn_nopad"],
                "ratio": best["skimage"] / best["dn"],
                "ratio_nopad": best["skimage"] / best["dn_nopad"],
                "diff_nopad": diff_nopad,
                "diff_padded": diff_pad,
            }
        )
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--case", choices=["2D", "3D"], default=None, help="only this case")
    parser.add_argument(
        "--padded-check",
        action="store_true",
        help="also compare the default with scikit-image on the image reflected by three "
        "PSF sizes (the previous default; slow in 3D)",
    )
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    cases = QUICK if args.quick else CASES
    if args.case:
        cases = {k: v for k, v in cases.items() if k.startswith(args.case)}
    rows = run(cases, 1 if args.quick else args.repeats, args.padded_check)
    print(
        f"Machine: {machine()}; torch threads {torch.get_num_threads()}; scikit-image in "
        f"one thread (scipy.signal.fftconvolve); best of {1 if args.quick else args.repeats}\n"
    )
    print(
        "| case | scikit-image | dn (default, mirror borders) | ratio | dn `pad=None` | ratio | "
        "max diff `pad=None` vs skimage | max diff default vs previous default |"
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
