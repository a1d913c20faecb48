"""One PSF per channel: a multi-channel image deconvolved channel by channel.

Each fluorophore of a multi-channel stack is imaged at its own emission
wavelength, so each channel has its own point-spread function (a widefield
PSF at 520 nm is about an eighth wider than at 460 nm, and chromatic
aberration can shift it along Z). Every restore path takes a list (or tuple)
of PSFs, one per index of the image's ``C`` axis, in place of one PSF:

>>> import numpy as np
>>> from napari_deconvnet.core.channel_psfs import per_channel
>>> per_channel([np.ones((3, 3)), "airy"]), per_channel(np.ones((3, 3)))
(True, False)

Each item is anything one PSF may be: an array or tensor, a
:func:`~napari_deconvnet.make_psf` name, or a dict such as ``{"kind":
"widefield", "wavelength": 520}``. A list of numbers (or of lists of
numbers) stays what it was before: one PSF written as nested lists.

:func:`by_channel` runs one restore per channel, with that channel's PSF and
its share of fixed statistics, and stacks the results back along ``C``;
progress is the channels' in turn. Each channel is restored exactly as it
would be alone (a deconvolution model already restores the channels of a
``C`` axis one by one), so the result equals the channel-by-channel loop a
user would write.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

import numpy as np

from ._validation import is_dask, is_tensor

__all__ = [
    "by_channel",
    "channel_axis",
    "checked_channel_axis",
    "of_channel",
    "per_channel",
    "psf_channel",
    "psf_words",
    "psf_for_channel",
    "split_statistics",
]


#: The channel whose PSF :func:`by_channel` is restoring with (None outside it): notes
#: on a PSF name it (session 73: "the PSF's centre lies off its middle pixel" did not
#: say which of two channels' PSFs)
_CHANNEL: ContextVar[int | None] = ContextVar("psf_channel", default=None)


def psf_words(alone: str = "the PSF") -> str:
    """``"channel 1's PSF"`` while :func:`by_channel` restores channel 1, else `alone`:
    the words for the PSF in a note on it."""
    c = _CHANNEL.get()
    return alone if c is None else f"channel {c}'s PSF"


def of_channel() -> str:
    """``" of channel 1"`` while :func:`by_channel` restores channel 1, else ``""``."""
    c = _CHANNEL.get()
    return "" if c is None else f" of channel {c}"


@contextlib.contextmanager
def psf_channel(c: int | None) -> Iterator[None]:
    """Within it, notes on a PSF name channel `c` (:func:`psf_words`), as within
    :func:`by_channel`: for the callers that prepare the channels' PSFs themselves
    (a streamed restore)."""
    token = _CHANNEL.set(c)
    try:
        yield
    finally:
        _CHANNEL.reset(token)


def _one_psf(item: Any) -> bool:
    """Whether `item` reads as one whole PSF (not as a row of numbers)."""
    return isinstance(item, (np.ndarray, str, Mapping)) or is_tensor(item) or is_dask(item)


def per_channel(psf: Any) -> bool:
    """Whether `psf` is a list or tuple of PSFs, one per channel (see the module)."""
    return isinstance(psf, (list, tuple)) and len(psf) > 0 and all(_one_psf(p) for p in psf)


def channel_axis(psfs: Sequence[Any], axes: str | None, shape: Sequence[int]) -> int:
    """The position of the ``C`` axis whose channels `psfs` are for.

    Raises
    ------
    ValueError
        `axes` (checked against `shape` before) is not given, has no ``C``, or
        the ``C`` axis has another number of channels than `psfs` has PSFs.
    """
    n = len(psfs)
    listed = f"psf is a list of {n} PSF{'s' if n > 1 else ''}"
    if not isinstance(axes, str) or "C" not in axes.upper():
        given = "axes were not given" if axes is None else f"axes {axes!r} have no C"
        raise ValueError(
            f"{listed}, one per channel, but {given}; pass axes with a 'C' for the "
            "channels (e.g. axes='CYX' or 'CZYX'), or one PSF for every channel"
        )
    index = axes.upper().index("C")
    if int(shape[index]) != n:
        raise ValueError(
            f"{listed} but the image's C axis (axis {index} of shape "
            f"{tuple(int(s) for s in shape)}) has {int(shape[index])} channels; give "
            "exactly one PSF per channel, in the channels' order"
        )
    return index


def checked_channel_axis(
    psfs: Sequence[Any], axes: str | None, shape: Sequence[int], model: Any
) -> tuple[str, int]:
    """`axes` checked for an image of `shape` and `model` (a network, or 2 or 3;
    :func:`~.axes.check_axes`), and the position of their ``C`` axis for `psfs`
    (:func:`channel_axis`, which also refuses axes left out)."""
    from .axes import check_axes

    if axes is not None:
        axes = check_axes(axes, shape, model)
    return axes, channel_axis(psfs, axes, shape)


def psf_for_channel(psfs: Sequence[Any], dims: Callable[[Any], int]) -> Any:
    """The PSF that stands for all of `psfs` where one is needed to choose a model.

    Raises
    ------
    ValueError
        The PSFs do not all have the same number of dimensions (one model
        deconvolves every channel: 2D PSFs for ``deconv-2d``, 3D for
        ``deconv-3d``).
    """
    each = [dims(p) for p in psfs]
    if len(set(each)) > 1:
        raise ValueError(
            f"the channels' PSFs have {each} dimensions; one model restores every "
            "channel, so give all of them as 2D PSFs (planes) or all as 3D PSFs (volumes)"
        )
    return psfs[0]


def split_statistics(
    normalization: Any, channel: int, n: int, at: int | None = None, lead: tuple | None = None
) -> Any:
    """`normalization` for one `channel` of `n`: an ``offset`` or ``scale`` given
    per channel (a list of `n` values) becomes that channel's value; one given per
    image of a stack (:func:`~napari_deconvnet.compute_normalization` with
    ``per_image=True``: one axis per non-spatial axis of the image, the channel
    axis the `at`-th of them, of sizes `lead`) becomes that channel's images; one
    value stays, as does one per image of a channel's stack (the restore checks it).
    Any other shape is refused here, naming the image's channels (each channel's
    restore said the image "has 1 channels")."""
    if not isinstance(normalization, Mapping):
        return normalization
    out = dict(normalization)
    for key in ("offset", "scale"):
        value = out.get(key)
        if value is None or np.size(value) == 1:  # one number, however nested: for all
            continue
        shape = np.shape(value)
        if np.shape(np.squeeze(value)) == (n,) and (len(shape) == 1 or shape != lead):
            # one per channel, also as (n, 1) or (1, n) (accepted before session 68)
            out[key] = np.squeeze(value)[channel].item()
        elif (
            at is not None
            and len(shape) > 1
            and (shape == lead or lead is None)
            and (at < len(shape) and shape[at] == n)
        ):
            # (a (T, C) set was passed whole to each channel, which refused it)
            out[key] = np.take(np.asarray(value), channel, axis=at).tolist()
        elif lead is not None and len(shape) and shape != lead[:at] + lead[at + 1 :]:
            raise ValueError(
                f"normalization[{key!r}] has shape {shape} but the image has {n} channels "
                f"and its images lie along axes of sizes {lead}; pass one number, one per "
                f"channel ({n}), or one per image (shape {lead}, as "
                "compute_normalization(..., per_image=True) gives)"
            )
    return out


def by_channel(
    image: Any,
    psfs: Sequence[Any],
    axes: str,
    index: int,
    run_one: Callable[[Any, Any, str, int], Generator[tuple[int, int], None, Any]],
) -> Generator[tuple[int, int], None, Any]:
    """``run_one(channel_image, psf, axes_without_C, channel)`` for every channel,
    stacked back along the ``C`` axis at `index` (a dask stack for dask results).

    Progress: the `k`-th of `n` channels reports ``(k * total + done, n * total)``
    (channels of one image have the same tiles or blocks).
    """
    n = len(psfs)
    sub_axes = axes[:index] + axes[index + 1 :]
    outs = []
    # notes name the channel whose PSF they are about where the channels have PSFs of
    # their own; one PSF for channels restored one by one is said of once, as before
    distinct = len({id(p) for p in psfs}) > 1
    for c, psf in enumerate(psfs):
        channel = image[(slice(None),) * index + (c,)]
        gen = run_one(channel, psf, sub_axes, c)
        while True:
            token = _CHANNEL.set(c if distinct else None)  # (while it runs, not between)
            try:
                done, total = next(gen)
            except StopIteration as finished:
                outs.append(finished.value)
                break
            finally:
                _CHANNEL.reset(token)
            yield c * total + done, n * total
    if any(is_dask(o) for o in outs):
        import dask.array as da

        return da.stack([da.asarray(o) for o in outs], axis=index)
    return np.stack([np.asarray(o, np.float32) for o in outs], axis=index)
