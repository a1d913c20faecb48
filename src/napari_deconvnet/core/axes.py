"""Named axes and how an image maps onto the network's input.

An image's axes are one letter per dimension from ``"TZCYXS"``: T time,
Z depth, C channel, Y/X rows/columns, S RGB samples. :class:`Layout` turns an
array with such axes into the network's ``(N, C, *spatial)`` input (the
axes the model does not process spatially become the batch ``N``) and back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .kinds import kind_of

__all__ = [
    "ANISOTROPY_CAUTION",
    "AXES",
    "Layout",
    "anisotropy_note",
    "check_axes",
    "check_image",
    "infer_axes",
    "z_step_ratio",
]

#: The axis letters an image may use.
AXES = "TZCYXS"


def check_image(image: Any) -> None:
    """Refuse what cannot be restored: non-arrays, complex or non-numeric data, empty arrays.

    Raises
    ------
    TypeError
        `image` has no dtype and shape, or a complex or non-numeric dtype.
    ValueError
        `image` is empty.
    """
    dtype = getattr(image, "dtype", None)
    shape = getattr(image, "shape", None)
    if dtype is None or shape is None:
        raise TypeError(
            f"image must be a numpy or dask array, got {type(image).__name__}; "
            "convert it with numpy.asarray first"
        )
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.complexfloating):
        raise TypeError(
            f"image has complex dtype {dtype}; only real data is accepted "
            "(bool, integer or float): pass image.real or abs(image)"
        )
    if not (
        dtype.kind == "b" or np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)
    ):
        raise TypeError(f"image dtype {dtype} is not numeric; use bool, integer or float data")
    if any(isinstance(n, float) and math.isnan(n) for n in shape):
        raise ValueError(
            f"image has unknown chunk sizes (shape {tuple(shape)}), as a dask array filtered "
            "by a boolean mask does; call image.compute_chunk_sizes() first"
        )
    if len(shape) == 0:  # one value: it said "empty"
        raise ValueError(
            "image is a single value (a 0-D array); restore needs an image of at least 2 "
            "dimensions (Y and X)"
        )
    if 0 in shape:
        raise ValueError(f"image is empty (shape {tuple(shape)}); nothing to restore")


def spatial_ndim(model: Any) -> int:
    """The spatial dimensionality an operation works on: 2 or 3.

    `model` is a network (its ``config.ndim``) or the number itself, for
    operations without a network (classical methods, measurement).
    """
    ndim = (
        model if isinstance(model, int) else getattr(getattr(model, "config", None), "ndim", None)
    )
    if ndim not in (2, 3):
        raise ValueError(f"an operation works on 2 or 3 spatial dimensions, not {ndim!r}")
    return ndim


def infer_axes(shape: Sequence[int], model: Any) -> str:
    """Default axes for an array of `shape` processed by `model` (a network, or 2 or 3).

    ``2-D`` -> ``"YX"``. ``3-D`` -> ``"ZYX"`` (with a 2D model, plane by plane),
    or ``"YXS"`` for a 2D model when the last axis has 3 or 4 samples (RGB/RGBA).
    ``4-D`` -> ``"TZYX"``, or ``"TYXS"`` for a 2D model and 3-4 trailing samples.
    ``5-D`` -> ``"TZCYX"`` (ImageJ order).
    """
    ndim = len(shape)
    if ndim < 2:  # no axes would do: "pass axes=" sent the user to a dead end
        raise ValueError(
            f"a {ndim}-D array (shape {tuple(shape)}) is no image: restore needs at least 2 "
            "dimensions (Y and X); a line profile can be restored as a one-row image, "
            "array[None]"
        )
    rgb = ndim > 0 and shape[-1] in (3, 4) and spatial_ndim(model) == 2
    table = {2: "YX", 3: "YXS" if rgb else "ZYX", 4: "TYXS" if rgb else "TZYX", 5: "TZCYX"}
    if ndim not in table:
        raise ValueError(
            f"cannot guess the axes of a {ndim}-D image; pass axes= with one letter per "
            f"dimension from {AXES!r}, e.g. 'TZCYX'"
        )
    return table[ndim]


def check_samples(axes: str, shape: tuple[int, ...]) -> None:
    """Refuse an 'S' axis of more than 4 values (restore and training alike)."""
    if "S" in axes and shape[axes.index("S")] > 4:
        raise ValueError(
            f"axes {axes!r} mark an axis of {shape[axes.index('S')]} values as 'S', the "
            "samples of a colour pixel (3: RGB, 4: RGBA, 2: grey with opacity, 1: grey); "
            f"mark channels with 'C' (axes={axes.replace('S', 'C')!r})"
        )


def check_axes(axes: Any, shape: Sequence[int], model: Any) -> str:
    """`axes` validated for an image of `shape` and `model` (upper case); None infers them.

    Raises
    ------
    TypeError
        `axes` is not a string.
    ValueError
        Wrong length, unknown or repeated letters, no Y or X, both C and S,
        or no Z for a 3D model.
    """
    if axes is None:
        return infer_axes(shape, model)
    if not isinstance(axes, str):
        raise TypeError(f"axes must be a string such as 'ZYX', got {type(axes).__name__}")
    axes = axes.upper()
    if len(axes) != len(shape):
        raise ValueError(
            f"axes {axes!r} has {len(axes)} letters but the image has {len(shape)} dimensions "
            f"(shape {tuple(shape)}); pass one letter per axis from {AXES!r}, e.g. "
            f"{infer_axes(shape, model)!r}"
        )
    bad = sorted(set(axes) - set(AXES))
    if bad:
        raise ValueError(f"axes {axes!r} has unknown letters {bad}; use letters from {AXES!r}")
    if len(set(axes)) != len(axes):
        raise ValueError(f"axes {axes!r} repeats a letter; each axis letter may appear once")
    if "Y" not in axes or "X" not in axes:
        raise ValueError(f"axes {axes!r} must contain 'Y' and 'X'")
    if "C" in axes and "S" in axes:
        raise ValueError(f"axes {axes!r} has both 'C' and 'S'; use one channel axis")
    check_samples(axes, shape)
    if spatial_ndim(model) == 3 and "Z" not in axes:
        raise ValueError(
            f"this model restores 3D volumes and needs a 'Z' axis, but axes are {axes!r}; "
            "use a 2D model for 2D images"
            + (
                f", or name the time axis Z (axes={axes.replace('T', 'Z')!r}) to restore the "
                "time points as the planes of one volume"
                if "T" in axes
                else ""
            )
        )
    return axes


class Layout:
    """How an array with named axes maps onto ``(N, C, *spatial)`` network input.

    Attributes
    ----------
    axes : str
        The image's axes, as checked.
    perm, inverse : tuple of int
        The transposition to the layout ``(*batch, [channel], *spatial)`` and back.
    stat_axis : int or None
        The channel axis (C or S) in the transposed layout: normalisation
        statistics are per channel along it.
    n_batch_axes : int
        Leading axes of the transposed layout processed independently.
    has_channel : bool
        Whether the model takes the channel axis as its input channels.
    spatial_shape, net_shape, transposed_shape : tuple of int
        The spatial axes' sizes, the network's input shape (without the
        model kind's extra channels) and the transposed array's shape.
    psf : ndarray or None
        The validated PSF, set by the restore that uses the layout.
    psf_shift : tuple of int or None
        Whole pixels per spatial axis by which the PSF as given lay off its
        origin (:func:`~napari_deconvnet.core.psf.recentre_psf`): ``psf`` is
        then the recentred kernel and the network reads its input that much
        further, so that the result lies where the object does.
    psf_fraction : tuple of float or None
        What remains of that offset (under half a pixel per axis): the image
        channel is resampled by it (:func:`~napari_deconvnet.core.psf.subpixel_shift`).
    """

    def __init__(self, axes: str, shape: Sequence[int], model: Any) -> None:
        cfg = model.config
        spatial = "ZYX"[3 - cfg.ndim :]
        missing = [a for a in spatial if a not in axes]
        if missing:
            raise ValueError(
                f"this model is {cfg.ndim}D and needs the axes {spatial!r}, but the image's "
                f"axes are {axes!r} (shape {tuple(shape)}, no {''.join(missing)!r}); pass a "
                f"{cfg.ndim}D image (e.g. axes={spatial!r}) or use a {len(axes)}D model such "
                f"as {'deconv-2d' if kind_of(model).needs_psf else 'denoise-2d'!r}"
            )
        channel = next((a for a in axes if a in "CS"), None)
        n_channels = shape[axes.index(channel)] if channel else 1
        # the extra input channels of a model's kind are made from the image
        in_channels = cfg.in_channels - kind_of(model).extra_channels
        if in_channels > 1:
            if channel is None or n_channels != in_channels:
                raise ValueError(
                    f"this model takes {in_channels} channels per pixel but the image "
                    f"{'has ' + str(n_channels) if channel else 'has no channel axis'} "
                    f"(axes {axes!r}, shape {tuple(shape)}); mark the channel axis with 'C' or 'S'"
                )
            model_channel = channel
        else:
            model_channel = None
        if cfg.out_channels != in_channels:
            raise ValueError(
                f"model maps {in_channels} to {cfg.out_channels} channels; restore needs "
                "a model whose output has as many channels as its input"
            )
        batch = [a for a in axes if a not in spatial and a != model_channel]
        order = batch + ([model_channel] if model_channel else []) + list(spatial)
        self.perm = tuple(axes.index(a) for a in order)
        self.inverse = tuple(int(i) for i in np.argsort(self.perm))
        self.stat_axis = order.index(channel) if channel else None
        self.n_batch_axes = len(batch)
        self.has_channel = model_channel is not None
        self.spatial_shape = tuple(shape[axes.index(a)] for a in spatial)
        n = int(np.prod([shape[axes.index(a)] for a in batch], dtype=np.int64))
        c = n_channels if model_channel else 1
        self.net_shape = (n, c, *self.spatial_shape)
        self.transposed_shape = tuple(shape[i] for i in self.perm)
        self.axes = axes
        self.psf = None
        self.psf_shift: tuple[int, ...] | None = None
        self.psf_fraction: tuple[float, ...] | None = None


#: Z step over pixel size from which restoring with the shipped ``denoise-3d`` is
#: reported: at a Z step of 2 pixels it is 1.3 to 2.4 dB below 2D slices with
#: ``denoise-2d`` at 20-100 photons, at 4 pixels 1.9 to 5.2 dB
#: (``benchmarks/anisotropy.py``; it was trained on volumes sampled alike along
#: every axis)
ANISOTROPY_CAUTION = 1.8


def zyx_positions(n: int, axes: str | None) -> tuple[int | None, int, int] | None:
    """Where Z (None without one), Y and X are among `n` per-axis values (a scale,
    units; RGB samples excluded) of an image with `axes`.

    None: the last three axes (two for `n` = 2) are Z, Y and X. None comes back
    when `axes` do not describe `n` values with a Y and an X, or `n` < 2.

    >>> zyx_positions(4, "TZYX"), zyx_positions(3, "YXS"), zyx_positions(2, None)
    ((1, 2, 3), None, (None, 0, 1))
    """
    if axes is not None:
        letters = axes.upper().replace("S", "")
        if len(letters) != n or "Y" not in letters or "X" not in letters:
            return None
        z = letters.index("Z") if "Z" in letters else None
        return z, letters.index("Y"), letters.index("X")
    if n < 2:
        return None
    return (n - 3 if n >= 3 else None), n - 2, n - 1


def z_step_ratio(scale: Sequence[float] | None, axes: str | None) -> float | None:
    """Z scale over Y scale of an image with `scale` (one per axis, RGB samples
    excluded) and `axes` (None: its last three axes are Z, Y and X).

    None without a scale, a Z axis or a positive Y scale.
    """
    if scale is None:
        return None
    values = [float(v) for v in scale]
    where = zyx_positions(len(values), axes)
    if where is None or where[0] is None:
        return None
    z, y, _ = where
    if not (math.isfinite(values[y]) and values[y] > 0 and math.isfinite(values[z])):
        return None
    return values[z] / values[y]


def anisotropy_note(model_name: str | None, ratio: float | None) -> str | None:
    """Why restoring planes `ratio` pixels apart with `model_name` is a poor choice, or None.

    Only the shipped ``denoise-3d`` (trained on volumes sampled alike along every
    axis) from :data:`ANISOTROPY_CAUTION` on.
    """
    if model_name != "denoise-3d" or ratio is None or ratio < ANISOTROPY_CAUTION:
        return None
    return (
        f"its planes lie {ratio:.2g}x further apart than its pixels (its scale), and "
        "denoise-3d was trained on volumes sampled alike along every axis: on such stacks "
        "it is measured 1.3 to 5.2 dB below denoise-2d plane by plane (README: anisotropic "
        "z-stacks). It runs as asked; denoise-2d in 2D slices is the better choice."
    )
