"""Spatially correlated noise through a blind denoiser: a pixel-shuffled restore.

The shipped denoisers were trained on white noise, pixel by pixel
independent. Noise that neighbouring pixels share (an image resampled by
registration, deskewing or upscaling, a camera's demosaicing and filtering,
a smoothed or binned-then-interpolated acquisition) looks to them like
structure: on held-out photos with Gaussian noise smoothed by a 0.7-pixel
Gaussian, ``denoise-2d`` gained 0.1-0.2 dB where it gains 6-13 dB on white
noise of the same strength, and on an image upscaled twice (bilinear) it
changed nothing at all.

Taking every second pixel along Y and X (the four "pixel-shuffled"
sub-images of Zhou et al.'s PD denoising, 2020) puts correlated neighbours
two pixels apart, where they share far less: each sub-image is restored on
its own (as an image of its own: its statistics, guards and decisions), and
the four are put back in place.

That costs detail on white noise (2-6 dB on the same photos), so when asked
for (``decorrelate=True``) it is used only where it pays, for each image on
its own (:func:`decide`):

1. a cheap screen (:func:`screen_ratio`): the finest diagonal wavelet
   coefficients' noise estimate of the four sub-images against the image's
   own; correlated noise cancels in the image's own, so the ratio is 1.0-1.7
   for white noise and 1.7-7 for correlated noise (:data:`SCREEN_RATIO`);
2. for the images that pass: both restores are run, and the pixel-shuffled
   one is kept when it takes away at least :data:`RESIDUAL_RATIO` (6) times as
   much as the plain one (root mean square of input minus output) and at
   least :data:`MIN_RESIDUAL` of the image's range: the plain restore then
   left the noise in place (a clean textured image passes the screen, but
   neither restore takes much away from it).

The thresholds were chosen on validation photos (scikit-image's coffee,
rocket, immunohistochemistry, brick, grass, text and Hubble deep field, none
of the quality benchmark's test photos); ``benchmarks/correlated_noise.py``
measures the result on held-out photos and microscopy scenes.

It is not on by default: no measurement tried (the residual's spectrum or
tails, noise estimates of the sub-images, flat-region screens) tells a
nearly clean, finely textured photo from correlated noise reliably. The
coins photo with white noise of 0.5-1/255 passes both stages, and its
pixel-shuffled restore loses 18-21 dB of its texture.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from ._validation import optional_flag
from .kinds import kind_of

__all__ = [
    "FACTOR",
    "MIN_RESIDUAL",
    "MIN_SIDE",
    "NOT_APPLIED",
    "RESIDUAL_RATIO",
    "SCREEN_RATIO",
    "VOLUME_MIN_RESIDUAL",
    "VOLUME_RESIDUAL_RATIO",
    "VOLUME_SCREEN_RATIO",
    "assemble",
    "decide",
    "decorrelation_applies",
    "screen_ratio",
    "shuffled",
    "thresholds",
    "warn_not_applied",
]

#: Sub-images take every FACTOR-th pixel along Y and X.
FACTOR = 2
#: Images whose sub-images' diagonal noise estimate is at least this many times
#: the image's own are restored both ways (:func:`screen_ratio`).
SCREEN_RATIO = 1.8
#: The pixel-shuffled restore is kept when it takes away at least this many
#: times as much as the plain one...
RESIDUAL_RATIO = 6.0
#: ...and at least this fraction of the image's range (its 0.5th to 99.5th
#: percentile): 5 grey levels of 255. Both chosen on validation photos
#: (``benchmarks/correlated_noise.py --choose``: 4-12 and 0.02-0.05 tried; 4 and
#: 6 tied, the stricter kept; 0.02 is the grid's lowest, below which nearly
#: clean textured photos would come close).
MIN_RESIDUAL = 0.02
#: Images with a side under this many pixels are not screened.
MIN_SIDE = 32
#: A 3D model's volumes (screened by their planes' mean): the screen, residual ratio
#: and least residual, chosen on validation volumes
#: (``benchmarks/correlated_noise.py --choose-volumes``: fluorescence phantoms with
#: white, smoothed, registered and one-axis noise at 5-1000 photons, and nearly clean
#: textured volumes). Fluorescence volumes hold little fine texture, so a lower screen
#: catches the correlation a deskew leaves along one axis (screen 1.3-1.6).
VOLUME_SCREEN_RATIO = 1.3
VOLUME_RESIDUAL_RATIO = 6.0
VOLUME_MIN_RESIDUAL = 0.0


def decorrelation_applies(net: Any, axes: str, requested: bool | None) -> bool:
    """Whether a restore with `net` of an image with `axes` screens for correlated noise.

    Only when asked (``requested`` True; None and False: never): the choice
    of :func:`decide` is not safe enough to be automatic (a nearly clean,
    finely textured photo can pass both stages and lose its texture, see
    the module's notes). Asked for, it needs a one-channel plain denoiser
    (no PSF, no conditioning; 2D or 3D): anything else raises a ValueError
    that says so. A 3D model's volume is one image: screened by its planes'
    mean, restored as the four sub-volumes of every second pixel along Y and
    X (every plane; the Z sampling is left alone). Channels (``C``) are screened and restored each
    as a gray image; an RGB image (``S``) as one, screened by the mean of its
    samples, its sub-images restored in colour (a colour camera's demosaicing
    shares each colour's noise between neighbours).
    """
    requested = optional_flag(requested, "decorrelate")
    if not requested:
        return False
    metadata = getattr(net, "metadata", {}) or {}
    config = net.config
    plain = kind_of(metadata).name == "plain" and config.in_channels == 1
    if not plain or config.out_channels != 1:
        raise ValueError(
            "decorrelate=True needs a one-channel denoiser without conditioning (the plain "
            f"kind, e.g. denoise-2d or denoise-3d); this model is {kind_of(metadata).name!r}, "
            f"{config.ndim}D, with {config.in_channels} input channels"
        )
    return True


def thresholds(volumes: bool = False) -> tuple[float, float, float]:
    """The screen, residual ratio and least residual: a 3D model's volumes' own
    (:data:`VOLUME_SCREEN_RATIO`...) or the gray and colour images' ones."""
    if volumes:
        return VOLUME_SCREEN_RATIO, VOLUME_RESIDUAL_RATIO, VOLUME_MIN_RESIDUAL
    return SCREEN_RATIO, RESIDUAL_RATIO, MIN_RESIDUAL


#: What a restore that cannot decorrelate (dask input, a streamed restore) says when asked
NOT_APPLIED = (
    "decorrelate=True is not applied to a dask image or a streamed restore (the "
    "choice needs the whole image in memory): restored without it; pass a numpy "
    "array to decorrelate"
)


def warn_not_applied(requested: bool | None, stacklevel: int = 2) -> None:
    """Check `requested` (``decorrelate=``) for a restore that never decorrelates, and
    say so with a UserWarning when it is True (it was ignored silently)."""
    if optional_flag(requested, "decorrelate"):
        warnings.warn(NOT_APPLIED, UserWarning, stacklevel=stacklevel + 1)


def shuffled(image: np.ndarray, factor: int = FACTOR, start: int = 0) -> list[np.ndarray]:
    """The ``factor**2`` sub-images of an image: every `factor`-th pixel along its axes
    `start` and ``start + 1`` (Y and X; axes before them, such as a volume's Z, and
    after them, such as RGB samples, whole), row offset first."""
    lead = (slice(None),) * start
    return [
        np.ascontiguousarray(image[(*lead, slice(i, None, factor), slice(j, None, factor))])
        for i in range(factor)
        for j in range(factor)
    ]


def assemble(
    parts: list[np.ndarray], shape: tuple[int, ...], factor: int = FACTOR, start: int = 0
) -> np.ndarray:
    """The image of `shape` whose :func:`shuffled` sub-images are `parts` (float32)."""
    out = np.empty(shape, np.float32)
    lead = (slice(None),) * start
    for k, part in enumerate(parts):
        i, j = divmod(k, factor)
        out[(*lead, slice(i, None, factor), slice(j, None, factor))] = part
    return out


def screen_ratio(image: np.ndarray) -> float:
    """Noise of the sub-images over the image's own, by finest diagonal wavelets.

    About 1 for white noise; correlated noise cancels in the image's own
    finest diagonal coefficients more than in the sub-images', where the
    correlated pixels lie further apart. Texture raises it too (coarser
    sampling, larger differences), hence the second stage of :func:`decide`.
    0.0 for images too small or too flat to tell.
    """
    from .noise_estimation import diagonal_mad_sigma

    image = np.asarray(image, np.float64)
    if image.ndim != 2 or min(image.shape) < MIN_SIDE:
        return 0.0
    own = diagonal_mad_sigma(image)
    if not own > 0:
        return 0.0
    subs = [diagonal_mad_sigma(part) for part in shuffled(image)]
    return float(np.mean(subs)) / own


def decide(
    image: np.ndarray,
    plain: np.ndarray,
    pixel_shuffled: np.ndarray,
    ratio: float = RESIDUAL_RATIO,
    least: float = MIN_RESIDUAL,
) -> bool:
    """Whether the pixel-shuffled restore of `image` replaces the plain one: it takes
    away at least `ratio` times as much and at least `least` of the image's range."""
    x = np.asarray(image, np.float64)
    low, high = np.percentile(x, (0.5, 99.5))
    span = float(high - low)
    if not span > 0:
        return False
    kept = math.sqrt(float(np.mean((x - plain) ** 2)))
    taken = math.sqrt(float(np.mean((x - pixel_shuffled) ** 2)))
    return taken >= ratio * kept and taken >= least * span
