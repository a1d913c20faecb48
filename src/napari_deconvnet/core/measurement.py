"""Measuring a result against a reference: SSIM map and mean, PSNR, slice by slice or by volume.

The Quality widget and ``napari-deconvnet evaluate`` both call
:func:`measure_iter` with the same :data:`PARAMS`, so they report the same
numbers for the same images and options.

Definitions (one for every front end):

- The image is cut into *parts* along its non-spatial axes: T and C always;
  Z too when measuring ``per="slice"``. A part is one YX plane
  (``per="slice"``) or one ZYX volume (``per="volume"``); RGB samples (S)
  stay in the part and are SSIM channels.
- The SSIM of a part is :func:`~napari_deconvnet.ssim` of that part: the
  mean of its SSIM map without a border of half the window (5 pixels for
  sigma 1.5), averaged over RGB samples. The mean SSIM is the plain mean of
  the parts' SSIMs.
- The PSNR is ``10 log10(data_range**2 / MSE)`` with the MSE over every
  pixel of the image (the parts' PSNRs are reported too).
- One `data_range` for every part: the given one, or the rule of
  :func:`~napari_deconvnet.ssim` applied to the whole reference. Except
  along a ``C`` axis: channels are images of their own (a dim channel beside
  a bright one, measured in the bright one's range, read 20 dB too high and
  an SSIM near 1 whatever its errors), so each channel's parts take that
  channel's range (:func:`channel_ranges`; a constant channel the whole
  reference's), and the PSNR over every pixel weighs each pixel's squared
  error by its channel's range: ``-10 log10(mean(error**2 / range**2))``,
  the plain formula when the ranges agree. A range may also be given per
  channel, as a sequence.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import chunked_as_dask, unmasked
from .axes import check_axes
from .data_range import check_data_range
from .generators import drain
from .metrics import psnr_of_mse, squared_error, ssim
from .specs import Param

__all__ = ["PARAMS", "Measurement", "channel_ranges", "measure", "measure_iter", "resolve_per"]

#: The SSIM window's side for sigma 1.5: a volume needs at least this many planes.
WINDOW = 11

PARAMS = (
    Param(
        "axes",
        "str",
        None,
        label="Axes",
        help="one letter per dimension from TZCYXS, e.g. TZYX; T and C are never spatial "
        "(default: YX, ZYX or YXS for 3-4 trailing samples, TZYX or TYXS, TZCYX)",
    ),
    Param(
        "per",
        "choice",
        "auto",
        choices=("auto", "slice", "volume"),
        label="Measure per",
        help="slice: 2D SSIM of each YX plane; volume: 3D SSIM of each ZYX volume; means "
        f"are averaged over them. auto: volume if there is a Z axis of {WINDOW} planes or "
        "more, else slice",
    ),
    Param(
        "data_range",
        "float",
        None,
        low=0.0,
        optional=True,
        label="Data range",
        help="span of possible intensities (max - min), e.g. 1.0 or 255 (default: 255 for "
        "8-bit references, 1 for boolean ones, else the whole reference's max - min; "
        "along a C axis, each channel's)",
    ),
)
_PARAM = {p.name: p for p in PARAMS}
# what check_axes reads of a model: SSIM planes are 2D, as a 2D model's (RGB may be guessed)


@dataclass(frozen=True)
class Measurement:
    """What :func:`measure` found.

    Attributes
    ----------
    ssim : float
        Mean SSIM: the mean of the parts' SSIMs (see the module's definitions).
    psnr : float
        PSNR in dB over every pixel; ``inf`` for identical images.
    ssim_map : ndarray or None
        The SSIM map, float32, the shape of the input (None with ``full=False``).
    ssims, psnrs : ndarray
        SSIM and PSNR of each part (plane or volume), float64, shaped like the
        non-spatial axes (``()`` for a single part).
    axes : str
        The image's axes.
    per : {"slice", "volume"}
        What a part was (``"auto"`` resolved).
    data_range : float or tuple of float
        The data range used for every part; along a ``C`` axis whose channels
        have ranges of their own, one per channel.
    """

    ssim: float
    psnr: float
    ssim_map: np.ndarray | None
    ssims: np.ndarray
    psnrs: np.ndarray
    axes: str
    per: str
    data_range: float | tuple[float, ...]

    def summary(self) -> dict[str, Any]:
        """JSON-able numbers and options (no map): ssim, psnr, axes, per, data_range, parts."""
        return {
            "ssim": self.ssim,
            "psnr": self.psnr,
            "axes": self.axes,
            "per": self.per,
            "data_range": list(self.data_range)
            if isinstance(self.data_range, tuple)
            else self.data_range,
            "parts": int(self.ssims.size),
            "ssims": self.ssims.tolist(),
            "psnrs": self.psnrs.tolist(),
        }


def channel_ranges(reference: Any, axes: str) -> tuple[float, ...] | None:
    """The data range of each channel of `reference` along the ``C`` of `axes`,
    by the rule of :func:`~napari_deconvnet.ssim` (a constant channel: the whole
    reference's); None without a ``C`` axis of two or more channels, or when
    every channel has the same range."""
    if "C" not in axes or reference.shape[axes.index("C")] < 2:
        return None
    at = axes.index("C")
    ranges = []
    for c in range(reference.shape[at]):
        channel = reference[(slice(None),) * at + (c,)]
        try:
            ranges.append(float(check_data_range(None, channel)))
        except ValueError:  # one value: the whole reference's range
            ranges.append(float(check_data_range(None, reference)))
    return None if len(set(ranges)) == 1 else tuple(ranges)


def _spans(data_range: Any, reference: Any, axes: str) -> tuple[float, tuple | None]:
    """The one range of every part, or (with a ``C`` axis) each channel's."""
    if isinstance(data_range, (list, tuple, np.ndarray)) and np.ndim(data_range) == 1:
        n = reference.shape[axes.index("C")] if "C" in axes else 0
        if len(data_range) != n:
            raise ValueError(
                f"data_range has {len(data_range)} values (one per channel) but the axes "
                f"{axes!r} have {n} channels along C; give one number, or one per channel"
            )
        if any(r is None for r in data_range):
            raise TypeError(
                f"data_range per channel must hold numbers, got {list(data_range)!r}; leave "
                "data_range=None for each channel's own range"
            )
        spans = tuple(
            float(check_data_range(_PARAM["data_range"].check(r), None)) for r in data_range
        )
        return spans[0], (spans if len(set(spans)) > 1 else None)
    if data_range is None:
        per_channel = channel_ranges(reference, axes)
        if per_channel is not None:
            return per_channel[0], per_channel
    span = float(check_data_range(_PARAM["data_range"].check(data_range), reference))
    return span, None


def resolve_per(per: str, axes: str, shape: Sequence[int]) -> str:
    """``"slice"`` or ``"volume"``: what `per` means for an image of `axes` and `shape`.

    Raises
    ------
    ValueError
        `per` is not one of the choices, or ``"volume"`` without a Z axis.
    """
    per = _PARAM["per"].check(per)
    if per == "auto":
        per = "volume" if "Z" in axes and shape[axes.index("Z")] >= WINDOW else "slice"
    if per == "volume" and "Z" not in axes:
        raise ValueError(
            f"per='volume' needs a Z axis, but the axes are {axes!r}; measure per='slice' "
            "or give axes with a Z"
        )
    spatial = "ZYX" if per == "volume" else "YX"
    extent = tuple(shape[axes.index(a)] for a in spatial)
    if min(extent) < WINDOW:
        # (the window's own message advised a win_size that measure does not take)
        names = ", ".join(spatial)
        other = " per='slice', or" if per == "volume" and min(extent[1:]) >= WINDOW else ""
        raise ValueError(
            f"per={per!r} measures SSIM with a window of {WINDOW} pixels along {names}, but "
            f"the {'volume is' if per == 'volume' else 'planes are'} {extent} ({names}); "
            f"measure{other} a region of at least {WINDOW} pixels along {names}"
        )
    return per


def measure_iter(
    result: Any,
    reference: Any,
    *,
    axes: str | None = None,
    per: str = "auto",
    data_range: float | None = None,
    full: bool = True,
) -> Generator[tuple[int, int], None, Measurement]:
    """Measure `result` against `reference` part by part, yielding ``(done, total)``.

    The generator form of :func:`measure`, for progress bars and workers: it
    yields after each plane or volume, and closing it (``gen.close()``, a
    worker's quit) stops the work there. Its return value (``StopIteration.value``,
    or ``yield from``) is the :class:`Measurement`.

    Parameters and Raises are those of :func:`measure`; they are checked
    before the first part is measured.
    """
    result, reference = unmasked(result, "result"), unmasked(reference, "reference")
    result, reference = chunked_as_dask(result), chunked_as_dask(reference)  # zarr arrays
    shape = tuple(getattr(result, "shape", ()))
    ref_shape = tuple(getattr(reference, "shape", ()))
    for name, image in (("result", result), ("reference", reference)):
        if not hasattr(image, "shape") or not hasattr(image, "dtype"):
            raise TypeError(
                f"the {name} must be a numpy or dask array, got {type(image).__name__}"
            )
    if shape != ref_shape:
        raise ValueError(
            f"the result has shape {shape} but the reference has shape {ref_shape}; "
            "compare images of the same shape"
        )
    if 0 in shape or len(shape) < 2:
        raise ValueError(f"measure needs images of 2 or more non-empty axes, got shape {shape}")
    axes = check_axes(_PARAM["axes"].check(axes), shape, 2)
    per = resolve_per(per, axes, shape)
    span, spans = _spans(data_range, reference, axes)
    spatial = "ZYX" if per == "volume" else "YX"
    lead = [i for i, a in enumerate(axes) if a not in spatial and a != "S"]
    kept = [a for a in axes if a in spatial or a == "S"]
    channel_axis = kept.index("S") if "S" in kept else None
    lead_shape = tuple(shape[i] for i in lead)

    ssims = np.empty(lead_shape, np.float64)
    psnrs = np.empty(lead_shape, np.float64)
    smap = np.empty(shape, np.float32) if full else None
    total, done = int(np.prod(lead_shape, dtype=np.int64)), 0
    error, count = 0.0, 0
    at = lead.index(axes.index("C")) if spans is not None else None
    for where in np.ndindex(lead_shape):
        if spans is not None:  # this part's channel's range
            span = spans[where[at]]
        index = [slice(None)] * len(shape)
        for axis, i in zip(lead, where, strict=True):
            index[axis] = i
        index = tuple(index)
        a, b = np.asarray(result[index]), np.asarray(reference[index])
        try:
            score, part_map = ssim(a, b, data_range=span, full=True, channel_axis=channel_axis)
        except ValueError as err:  # (the metrics' own names: "x (the result)", session 73)
            text = str(err).replace("x (the result)", "the result")
            raise ValueError(text.replace("y (the reference)", "the reference")) from None
        part_error, part_count = squared_error(a, b)
        ssims[where] = score
        psnrs[where] = psnr_of_mse(part_error / part_count, span)
        if spans is not None:  # in units of the channel's range
            part_error = part_error / span**2
        error, count = error + part_error, count + part_count
        if smap is not None:
            smap[index] = part_map
        done += 1
        yield done, total
    return Measurement(
        ssim=float(np.mean(ssims)),
        psnr=psnr_of_mse(error / count, span if spans is None else 1.0),
        ssim_map=smap,
        ssims=ssims,
        psnrs=psnrs,
        axes=axes,
        per=per,
        data_range=span if spans is None else spans,
    )


def measure(
    result: Any,
    reference: Any,
    *,
    axes: str | None = None,
    per: str = "auto",
    data_range: float | None = None,
    full: bool = True,
) -> Measurement:
    """SSIM map, mean SSIM and PSNR of a `result` against a `reference`, per slice or volume.

    Parameters
    ----------
    result, reference : (..., M, N) ndarray or dask array
        The image and the reference, of equal shape and any real dtype.
    axes : str, optional
        One letter per dimension from ``"TZCYXS"``. T (time) and C
        (channels) are never spatial; Z is spatial only per volume; S holds
        RGB samples, measured as SSIM channels. Default: ``"YX"``, ``"ZYX"``
        (``"YXS"`` if the last axis has 3 or 4 samples), ``"TZYX"``
        (``"TYXS"``), ``"TZCYX"``.
    per : {"auto", "slice", "volume"}, optional
        ``"slice"``: 2D SSIM of every YX plane; ``"volume"``: 3D SSIM of every
        ZYX volume. ``"auto"``: per volume when the image has a Z axis of at
        least 11 planes (the SSIM window), else per slice.
    data_range : float, optional
        Span of possible intensities, for every part. Default: 255 for uint8
        references, 1 for boolean ones, else the whole reference's max - min;
        along a ``C`` axis, each channel's own (see the module). A sequence
        gives one per channel of the ``C`` axis.
    full : bool, optional
        Keep the SSIM map (False: only the numbers, less memory).

    Returns
    -------
    Measurement
        ``ssim`` (the mean of the parts' SSIMs, each the mean of its map
        without a 5-pixel border, as :func:`~napari_deconvnet.ssim`), ``psnr``
        (over every pixel), ``ssim_map`` (float32, the input's shape), the
        parts' ``ssims`` and ``psnrs``, and the ``axes``, ``per`` and
        ``data_range`` used.

    Raises
    ------
    ValueError
        Shapes that differ, bad axes, ``per="volume"`` without Z, a zero,
        negative or non-finite `data_range`, a constant reference without
        one, NaN or infinite values, planes smaller than the window.
    TypeError
        Inputs that are not arrays, a non-numeric `data_range`.

    See Also
    --------
    measure_iter : the same, yielding progress.
    napari_deconvnet.ssim, napari_deconvnet.psnr : one image (every axis spatial).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> clean = rng.random((2, 32, 32)).astype(np.float32)  # two planes (ZYX)
    >>> noisy = clean + 0.1 * rng.standard_normal(clean.shape).astype(np.float32)
    >>> m = measure(noisy, clean, data_range=1.0)
    >>> m.per, m.ssims.shape, m.ssim_map.shape
    ('slice', (2,), (2, 32, 32))
    >>> bool(abs(m.ssim - m.ssims.mean()) < 1e-12)
    True
    """
    return drain(
        measure_iter(result, reference, axes=axes, per=per, data_range=data_range, full=full)
    )
