"""Refining a deconvolution network's output until it fits the data (``restore(refine=...)``).

A deconvolution network trained at tens to a thousand photons per pixel
smooths as much at ten or a hundred times more light: its output then leaves
residuals ``image - H x`` several times the noise, and a tuned Richardson-Lucy
beat ``deconv-2d`` there by up to 6.6 dB (``benchmarks/refine.py``). Given the
image's noise (a calibrated camera's), Richardson-Lucy iterations started
from the network's output sharpen it until the data are fitted within that
noise and no further (Morozov's discrepancy principle: the mean of
``(image - H x)**2 / variance`` at most 1, over the pixels where ``H x``
expects at least one photon; see :func:`~.classical.richardson_lucy`). Where
the network's output already fits (every scene at 100 photons), nothing
changes; at 1e4 to 1e5 photons the benchmark's rows gained up to 4.9 dB.

Only a known noise is accepted. Estimated from the image, the noise of
objects in the dark reads as a weak Gaussian (the dark background's), the
residual of every good estimate then seems too large, and the iterations run
to their cap, sharpening noise: -0.9 to -8.5 dB on 9 of 36 rows of spots and
filaments in a first trial, where the true noise lost nowhere.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np

from .classical import _noise_line, richardson_lucy_iter
from .kinds import kind_of

__all__ = ["REFINE_ITERATIONS", "check_refine", "refine_iter"]

#: The most Richardson-Lucy iterations a refinement runs (an image at 1e5
#: photons per pixel needed 100 to 200; at 1e4, 2 to 50)
REFINE_ITERATIONS = 200


def check_refine(refine: Any, net: Any) -> dict[str, Any] | None:
    """`refine` checked against the model: None, or the noise dict it describes.

    Raises
    ------
    TypeError
        `refine` is neither None nor a dict.
    ValueError
        A model without a PSF input (the refinement needs the blur), or a
        dict that is not a noise with a positive variance line.
    """
    if refine is None:
        return None
    if not isinstance(refine, dict):
        raise TypeError(
            "refine must be None or the image's noise as estimate_noise returns it, e.g. "
            "{'noise': 'poisson', 'gain': 1.0} or {'noise': 'poisson-gaussian', 'gain': g, "
            "'offset': o, 'read_noise': r} in the image's units; got "
            f"{type(refine).__name__}"
        )
    if not kind_of(net).needs_psf:
        raise ValueError(
            "refine is for deconvolution models (a psf), which fit their output to the "
            "blurred data; this model takes no PSF"
        )
    _noise_line(refine)  # raises on a description that is not a positive variance line
    return refine


def refine_iter(
    image: np.ndarray,
    restored: np.ndarray,
    psf: np.ndarray,
    noise: dict[str, Any],
    perm: tuple[int, ...],
    device: Any = "auto",
    iterations: int = REFINE_ITERATIONS,
) -> Generator[tuple[int, int], None, np.ndarray]:
    """Richardson-Lucy from `restored` until it fits `image` within `noise`.

    `perm` puts the axes the PSF blurs last (a restore's
    :class:`~napari_deconvnet.core.axes.Layout`); every image of the leading
    axes is refined and stopped on its own. Yields ``(done, iterations)``;
    returns float32 in `image`'s layout.
    """
    data = np.clip(np.asarray(image, np.float32).transpose(perm), 0, None)
    start = np.asarray(restored, np.float32).transpose(perm)
    gen = richardson_lucy_iter(
        data, psf, iterations, start=start, noise=noise, pad="reflect", device=device
    )
    out = yield from gen
    return np.ascontiguousarray(out.transpose(np.argsort(perm)))
