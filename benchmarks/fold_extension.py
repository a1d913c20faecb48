"""Richardson-Lucy's FFT path: the mirror extension by slices against gathers.

Non-separable PSFs (Airy disks, widefield PSFs, measured ones) convolve by
real FFTs of the image extended by the PSF's half-width of its mirror image
(:class:`napari_deconvnet.core.deconv_operators.FoldedFFT`), twice per
iteration. The extension used to be two ``index_select`` gathers per
convolution (the last axis' one strided and slow), then a copy into the FFT
buffer; it is now written into that buffer by slice copies
(:func:`~napari_deconvnet.core.deconv_operators.extend_by_reflection`). Both
give the same values, so the outputs are compared for equality.

Each case runs both ways in one process, alternating (``gather`` is the
previous code path, kept for kernels wider than one reflection), and prints
the median seconds and their ratio. One torch thread by default.

Usage::

    python benchmarks/fold_extension.py                 # the README table
    python benchmarks/fold_extension.py --quick         # small sizes (the test)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _machine import heading, machine, publish, set_threads

import napari_deconvnet as dn
from napari_deconvnet.core import deconv_operators


def cases(quick: bool) -> dict[str, Callable[[], np.ndarray]]:
    """Named restores whose Richardson-Lucy runs the FFT path."""
    from skimage import data, transform

    side, planes, lateral = (128, 16, 48) if quick else (1024, 32, 128)
    photo = data.camera().astype(np.float32) / 255
    image = transform.resize(photo, (side, side)).astype(np.float32) + 0.01
    volume = np.stack([transform.resize(photo, (lateral, lateral))] * planes)
    volume = volume.astype(np.float32) + 0.01
    airy = dn.make_psf("airy", wavelength=520.0, na=0.8, pixel_size=110.0)
    widefield = dn.make_psf(
        "widefield",
        shape=(15, 15, 15),
        wavelength=520.0,
        na=1.2,
        refractive_index=1.33,
        pixel_size=100.0,
    )
    net = dn.load_model("deconv-2d")
    net_3d = dn.load_model("deconv-3d")
    return {
        f"`dn.richardson_lucy`, {side}², Airy PSF {airy.shape[0]}², 30 it.": lambda: (
            dn.richardson_lucy(image, airy, iterations=30)
        ),
        f"`deconv-2d` restore, {side}², Airy PSF (its 30 RL iterations included)": lambda: (
            dn.restore(image, net, psf=airy, precision="float32")
        ),
        f"`dn.richardson_lucy`, {planes}×{lateral}×{lateral}, widefield PSF 15³, 20 it.": lambda: (
            dn.richardson_lucy(volume, widefield, iterations=20)
        ),
        f"`deconv-3d` restore, {planes}×{lateral}×{lateral}, widefield PSF 15³": lambda: (
            dn.restore(volume, net_3d, psf=widefield, precision="float32")
        ),
    }


def run(quick: bool, repeats: int) -> list[dict]:
    """Each case by gathers and by slices, alternating; medians, ratio, equality."""
    original = deconv_operators.FoldedFFT.__init__

    def gathering(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.sliced = False

    rows = []
    for name, case in cases(quick).items():
        seconds: dict[str, list[float]] = {"gather": [], "slices": []}
        outputs: dict[str, np.ndarray] = {}
        try:
            for _ in range(repeats):
                for way in ("gather", "slices"):
                    init = gathering if way == "gather" else original
                    deconv_operators.FoldedFFT.__init__ = init
                    t0 = time.perf_counter()
                    outputs[way] = case()
                    seconds[way].append(time.perf_counter() - t0)
        finally:
            deconv_operators.FoldedFFT.__init__ = original
        old, new = (float(np.median(seconds[k])) for k in ("gather", "slices"))
        rows.append(
            {
                "case": name,
                "gather": old,
                "slices": new,
                "ratio": old / new,
                "equal": bool(np.array_equal(outputs["gather"], outputs["slices"])),
            }
        )
    return rows


def table(rows: list[dict], repeats: int) -> str:
    lines = [
        f"Machine: {machine()}\n",
        f"Median of {repeats} alternating runs per way, in one process.\n",
        "| case | gathers (before) | slices (now) | speed-up | outputs equal |",
        "|---|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['gather']:.3f} s | {r['slices']:.3f} s | "
            f"**{r['ratio']:.2f}×** | {'yes' if r['equal'] else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    rows = run(args.quick, args.repeats)
    title = "Richardson-Lucy's mirror extension: slices against gathers"
    text = heading(title, "fold_extension.py", argv) + "\n\n" + table(rows, args.repeats)
    publish(text, args.markdown)
    return 0 if all(r["equal"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
