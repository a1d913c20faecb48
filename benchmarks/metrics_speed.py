"""Speed of ``dn.ssim`` (full map) and ``dn.psnr`` against scikit-image, on the CPU.

Both compute the Gaussian SSIM of Wang et al. (sigma 1.5, population
covariance) of a float32 image against a noisy copy, in the same process,
alternately, best of ``--repeats`` runs each (so that a busy machine slows
both alike). The speed-up is
``skimage seconds / napari-deconvnet seconds``; the maximum difference
between the two maps is printed too (the target is 1e-4).

Usage::

    python benchmarks/metrics_speed.py             # 2048², the README table
    python benchmarks/metrics_speed.py --sizes 512 2048 4096
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _machine import machine


def _best_pair(baseline, ours, repeats: int) -> tuple[float, object, float, object]:
    """Best-of-`repeats` seconds of two functions, run alternately (fair on a busy CPU)."""
    out_a, out_b = baseline(), ours()  # warm-up
    best_a = best_b = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out_a = baseline()
        t1 = time.perf_counter()
        out_b = ours()
        t2 = time.perf_counter()
        best_a, best_b = min(best_a, t1 - t0), min(best_b, t2 - t1)
    return best_a, out_a, best_b, out_b


def bench(size: int, repeats: int) -> list[dict]:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    import napari_deconvnet as dn

    rng = np.random.default_rng(0)
    reference = rng.random((size, size), dtype=np.float32)
    image = (reference + 0.1 * rng.standard_normal((size, size), dtype=np.float32)).astype(
        np.float32
    )

    def ours_ssim():
        return dn.ssim(image, reference, data_range=1.0, full=True)

    def skimage_ssim():
        return structural_similarity(
            image,
            reference,
            data_range=1.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            full=True,
        )

    rows = []
    t_sk, (m_sk, map_sk), t_dn, (m_dn, map_dn) = _best_pair(skimage_ssim, ours_ssim, repeats)
    rows.append(
        {
            "what": f"SSIM full map, {size}² float32",
            "skimage": t_sk,
            "ours": t_dn,
            "diff": max(abs(m_sk - m_dn), float(np.abs(map_sk - map_dn).max())),
        }
    )
    t_sk, p_sk, t_dn, p_dn = _best_pair(
        lambda: peak_signal_noise_ratio(reference, image, data_range=1.0),
        lambda: dn.psnr(image, reference, data_range=1.0),
        repeats,
    )
    rows.append(
        {
            "what": f"PSNR, {size}² float32",
            "skimage": t_sk,
            "ours": t_dn,
            "diff": abs(p_sk - p_dn),
        }
    )
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    rows = [row for size in args.sizes for row in bench(size, args.repeats)]
    print(f"Machine: {machine()}\n")
    print("| Operation | scikit-image (s) | napari-deconvnet (s) | Speed-up | Max difference |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['what']} | {r['skimage']:.3f} | {r['ours']:.3f} | "
            f"{r['skimage'] / r['ours']:.1f}× | {r['diff']:.1e} |"
        )


if __name__ == "__main__":
    main()
