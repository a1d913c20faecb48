"""RGB images restored by one-channel denoisers in an opponent colour space.

A one-channel network restores an RGB image (axes with ``S``) one sample at
a time. In red, green and blue the same structures repeat three times and
the noise of each is on its own, so each channel is denoised from a third
of the evidence. The orthonormal opponent transform

.. math::

    L = (R + G + B) / \\sqrt 3, \\quad
    C_1 = (R - B) / \\sqrt 2, \\quad
    C_2 = (R - 2 G + B) / \\sqrt 6

gathers the structures in the luminance ``L`` and leaves two chroma
channels that are smooth and low in contrast; being orthonormal it keeps
white noise white, with the same standard deviation in each channel
(the transform BM3D's colour variant uses for the same reason). The network
restores the three channels, each normalised by its own statistics, and
the result is mapped back. Measured with ``denoise-2d`` on three RGB images
it never saw (scikit-image's coffee, rocket and immunohistochemistry,
Gaussian sigma 15/25/50): +0.2 to +2.1 dB over channel by channel, level
(-0.06 dB) on the nearly grey rocket at sigma 50.

Only denoisers of the plain kind use it: impulse noise (``salt-and-pepper``)
hits each RGB channel on its own and would be spread over all three; a
noise-conditioned model measures its noise per channel, and deconvolution
models condition on a per-channel pre-deconvolution. Fixed
``normalization=`` statistics given in RGB units keep the channels as they
are; those :func:`~napari_deconvnet.compute_normalization` returns for such
an image are of its luminance and chroma, marked ``"colour": "opponent"``
(:func:`opponent_statistics`), and restore that image as without them.

A fourth sample is opacity (alpha: RGBA), a mask and not an image: every
restore keeps it as it is, whatever the model (:func:`alpha_axis`); so is
the second of a grey image with opacity (two samples, PNG's LA). Restored
as a fifth image it was changed by up to 19 grey levels (``salt-and-pepper``)
and 519 (``deconv-2d``, a disc cut out of a photo) of 255.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import is_dask
from .kinds import Plain, kind_of

__all__ = [
    "OPPONENT",
    "alpha_axis",
    "from_opponent",
    "join_alpha",
    "opponent_axis",
    "opponent_statistics",
    "split_alpha",
    "to_opponent",
]

#: Rows: luminance and two chroma directions, orthonormal (``OPPONENT @ OPPONENT.T == I``).
OPPONENT = np.array(
    [
        [1 / np.sqrt(3), 1 / np.sqrt(3), 1 / np.sqrt(3)],
        [1 / np.sqrt(2), 0.0, -1 / np.sqrt(2)],
        [1 / np.sqrt(6), -2 / np.sqrt(6), 1 / np.sqrt(6)],
    ]
)


def opponent_statistics(normalization: Any) -> bool:
    """Whether fixed statistics are of an RGB image's luminance and chroma.

    :func:`~napari_deconvnet.compute_normalization` marks them
    ``"colour": "opponent"`` where restore maps the image to that space;
    any other value of the key is refused.
    """
    if not isinstance(normalization, dict) or "colour" not in normalization:
        return False
    if normalization["colour"] != "opponent":
        raise ValueError(
            f"normalization['colour'] must be 'opponent' (statistics of an RGB image's "
            f"luminance and chroma, as compute_normalization returns them), got "
            f"{normalization['colour']!r}; leave the key out for statistics in RGB units"
        )
    return True


def opponent_axis(image: Any, net: Any, axes: str, normalization: Any = None) -> int | None:
    """The RGB axis of `image` that restore maps to the opponent space, or None.

    Only for a one-channel network of the plain kind and an ``S`` axis of 3
    or 4 samples, without fixed statistics or with statistics of the
    opponent channels (:func:`opponent_statistics`); those on an image that
    is not restored that way are refused.
    """
    opponent = opponent_statistics(normalization)
    if normalization is not None and not opponent:
        return None
    axis = axes.index("S") if "S" in axes else None
    if axis is not None and image.shape[axis] not in (3, 4):
        axis = None
    if axis is not None and (type(kind_of(net)) is not Plain or net.config.in_channels != 1):
        axis = None
    if opponent and axis is None:
        raise ValueError(
            "these normalization statistics are of an RGB image's luminance and chroma "
            "('colour': 'opponent', from compute_normalization of an RGB image), but this "
            "restore is not done in that space (it needs an S axis of 3 or 4 samples and a "
            "one-channel denoiser of the plain kind); compute them for this image and model"
        )
    return axis


def _mix(x: Any, axis: int, matrix: np.ndarray) -> Any:
    """``matrix`` applied to the first three samples along `axis` (a fourth kept)."""
    xp = _module(x)
    rgb = [x[(slice(None),) * axis + (i,)].astype(np.float32) for i in range(3)]
    mixed = [sum(float(matrix[k, j]) * rgb[j] for j in range(3)) for k in range(3)]
    if x.shape[axis] == 4:
        mixed.append(x[(slice(None),) * axis + (3,)].astype(np.float32))
    return xp.stack(mixed, axis=axis)


def _module(x: Any) -> Any:
    if is_dask(x):
        import dask.array as da

        return da
    return np


def to_opponent(x: Any, axis: int) -> Any:
    """RGB(A) samples along `axis` to luminance and chroma (float32; numpy or dask)."""
    return _mix(x, axis, OPPONENT)


def from_opponent(x: Any, axis: int) -> Any:
    """The inverse of :func:`to_opponent` (the transpose: the matrix is orthonormal)."""
    return _mix(x, axis, OPPONENT.T)


def alpha_axis(shape: Any, axes: str, normalization: Any = None) -> int | None:
    """The ``S`` axis of an image whose last sample is opacity, or None.

    Such an image is RGBA (4 samples) or grey with opacity (2 samples, as
    PNG's LA). None too with fixed ``normalization=`` statistics in RGB
    units, which name their channels (opacity among them) and so keep the
    old behaviour; those of the opponent channels
    (:func:`opponent_statistics`) are of the colours alone, and one set
    (one offset and one scale) for a grey image with opacity is of its grey
    alone, as :func:`~napari_deconvnet.compute_normalization` returns them.
    """
    if "S" not in axes:
        return None
    axis = axes.index("S")
    samples = shape[axis]
    if samples not in (2, 4):
        return None
    if normalization is None or opponent_statistics(normalization):
        return axis
    return axis if samples == 2 and _one_set(normalization) else None


def _one_set(normalization: Any) -> bool:
    """Whether fixed statistics hold one offset and one scale (a grey image's)."""
    try:
        return all(np.asarray(normalization[k]).size == 1 for k in ("offset", "scale"))
    except (KeyError, TypeError, ValueError):
        return False  # malformed: the restore's own checks say what is wrong


def split_alpha(x: Any, axis: int) -> tuple[Any, Any]:
    """``(colours, alpha)``: every sample along `axis` but the last, and the last
    (opacity), each keeping the axis."""
    lead = (slice(None),) * axis
    last = x.shape[axis] - 1
    return x[(*lead, slice(0, last))], x[(*lead, slice(last, last + 1))]


def join_alpha(restored: Any, alpha: Any, axis: int) -> Any:
    """The restored RGB samples with the untouched opacity appended (float32, numpy or dask)."""
    return _module(restored).concatenate([restored, alpha.astype(np.float32)], axis=axis)
