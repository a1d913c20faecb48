"""The restore of an image by a network: in memory, tile by tile, or lazily for dask.

:func:`restore_iter` is the generator every in-memory restore runs:

1. :func:`prepare_restore` validates the image, axes (:mod:`~napari_deconvnet.core.axes`),
   PSF and device, and copies the model;
2. the image is transposed to the network's layout and normalised
   (:func:`~napari_deconvnet.core.normalization.normalization_arrays`);
3. the model's kind (:func:`~napari_deconvnet.core.kinds.kind_of`) adds its
   extra input channels;
4. the network runs tile by tile (:mod:`~napari_deconvnet.core.tiling`),
   yielding progress;
5. the result is mapped back to the image's intensities and axes, and the
   kind post-processes it.

:func:`restore` drains it (or, for a dask array, builds a lazy graph with
:func:`~napari_deconvnet.core.lazy.lazy_restore`).
"""

from __future__ import annotations

import copy
import math
import threading
import warnings
import weakref
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ._validation import (
    check_single_range,
    float32_levels_note,
    is_dask,
    is_tensor,
    tensor_array,
)
from .axes import Layout, check_axes, check_image
from .borders import check_borders
from .channel_psfs import (
    by_channel,
    checked_channel_axis,
    per_channel,
    psf_for_channel,
    split_statistics,
)
from .colour import (
    alpha_axis,
    from_opponent,
    join_alpha,
    opponent_axis,
    split_alpha,
    to_opponent,
)
from .conditions import ConditionsWarning, check_conditions, report_conditions
from .constant_areas import fill_constant_areas, restore_filled
from .decorrelate import (
    FACTOR,
    assemble,
    decide,
    decorrelation_applies,
    screen_ratio,
    shuffled,
    thresholds,
    warn_not_applied,
)
from .devices import resolve_device, resolve_precision
from .dynamic_range import scene_range, split_objects
from .ensemble import VIEWS, check_ensemble, from_view, to_view, view_tile
from .generators import Cancelled, check_callbacks, drain
from .impulse_gap import across_gap, impulse_gap
from .impulse_switch import find_impulses, switch_applies, switch_impulses, switch_impulses_lazy
from .kinds import ImpulseSwitched, kind_of
from .light_noise import guard_applies, guard_noise, guard_weight
from .memory import feature_map_bytes, reuse_freed_memory, worth_reusing
from .model import DeconvNet
from .normalization import normalization_arrays
from .persistence import load_model
from .psf import psf_offset, recentre_psf, subpixel_fraction, subpixel_shift, warn_psf_order
from .refine import REFINE_ITERATIONS, check_refine, refine_iter
from .tiling import plan_tiles, run_tiles

__all__ = [
    "Cancelled",
    "DECONVOLUTION_MODELS",
    "compute_normalization",
    "plan_restore_tiles",
    "prepare_restore",
    "private_model",
    "restore",
    "restore_iter",
    "warn_conditions",
]


#: The shipped model a PSF is deconvolved with when the model is left at ``"default"``,
#: by the PSF's dimensions (a 1D PSF blurs the rows of a 2D image); the CLI's
#: ``restore --psf`` without ``--method`` and the Restore widget beside a PSF layer
#: choose the same
DECONVOLUTION_MODELS = {1: "deconv-2d", 2: "deconv-2d", 3: "deconv-3d"}


def psf_dimensions(psf: Any) -> int:
    """How many dimensions `psf` (an array, a tensor, a :func:`make_psf` name or dict) has.

    A name or a dict without a shape has :func:`make_psf`'s own (``"gaussian"``
    and ``"airy"`` 2, ``"widefield"`` 3, a Gaussian with three sigmas 3).
    """
    from .psf import as_psf

    if per_channel(psf):  # one PSF per channel: all of one dimensionality
        return psf_dimensions(psf_for_channel(psf, psf_dimensions))
    if isinstance(psf, (str, Mapping)):
        return int(as_psf(psf).ndim)
    return int(np.ndim(tensor_array(psf) if is_tensor(psf) else psf))


def default_deconvolution_model(psf: Any, image_ndim: int | None = None) -> str:
    """The shipped deconvolution model for `psf` (:data:`DECONVOLUTION_MODELS`): of its
    dimensions; on a plane (`image_ndim` 2), an array's leading single planes not
    counted (a ``(1, Y, X)`` PSF is the plane's: ``deconv-3d`` refused it on a plane and
    pointed to ``deconv-2d``)."""
    dims = min(max(psf_dimensions(psf), 1), 3)
    plane = image_ndim == 2
    first = psf_for_channel(psf, psf_dimensions) if per_channel(psf) else psf
    if plane and dims == 3 and not isinstance(first, str | Mapping):
        from .psf import single_leading_axes

        shape = tuple(getattr(first, "shape", None) or np.shape(first))
        dims = len(shape) - single_leading_axes(shape, 2)
    return DECONVOLUTION_MODELS[dims]


def spatial_ndim(image: Any, axes: Any) -> int:
    """The image's spatial dimensions for choosing a model: its Z, Y and X when `axes`
    name them (a ``TYX`` stack is planes), else its dimensions."""
    if isinstance(axes, str) and axes:
        return sum(a in "ZYX" for a in axes.upper())
    return int(np.ndim(image))


def restore_arguments(image: Any, model: Any, psf: Any, axes: Any = None) -> tuple[Any, Any]:
    """The image and model a restore works with, from what its caller passed.

    A torch tensor is read as a NumPy array (detached, on the CPU). A masked
    array is read as its data, with a warning when values are masked: the
    network restores every pixel, and what the masked ones hold (often a fill
    value) spreads into their neighbours. The model left at ``"default"`` with
    a PSF is the shipped deconvolution model of the PSF's dimensions
    (:data:`DECONVOLUTION_MODELS`): ``"default"`` is the default denoiser,
    which takes no PSF.
    """
    if is_tensor(image):
        image = tensor_array(image)
    if np.ma.isMaskedArray(image):
        masked = int(np.count_nonzero(np.ma.getmaskarray(image)))
        if masked:
            warnings.warn(
                f"image is a masked array with {masked} masked values; the mask is "
                "ignored and those pixels are restored from the values under it, "
                "which also reach their neighbours: fill them first "
                "(image.filled(value), e.g. with the median of the unmasked data)",
                UserWarning,
                stacklevel=3,
            )
        image = np.ma.getdata(image)
    if np.ma.isMaskedArray(psf) and np.count_nonzero(np.ma.getmaskarray(psf)):
        # (the PSF's mask was dropped without a word, session 72)
        warnings.warn(
            f"psf is a masked array with {int(np.count_nonzero(np.ma.getmaskarray(psf)))} "
            "masked values; the mask is ignored and the values under it are used: fill "
            "them first (psf.filled(0) for pixels that hold no light)",
            UserWarning,
            stacklevel=3,
        )
    if isinstance(model, str) and model == "default" and psf is not None:
        # (a (1, Y, X) PSF beside a TYX stack chose deconv-3d, which refused the stack)
        model = default_deconvolution_model(psf, spatial_ndim(image, axes))
        named = isinstance(psf, str) or (
            isinstance(psf, Mapping) and "shape" not in psf and np.ndim(psf.get("sigma")) == 0
        )
        if named and model == DECONVOLUTION_MODELS[3] and np.ndim(image) == 2:
            # a name made in the model's dimensions ("widefield" is 3D by itself): a
            # plane's is its focal plane, with deconv-2d (deconv-3d refused the plane
            # and pointed to 'denoise-2d', which takes no PSF)
            model = DECONVOLUTION_MODELS[2]
    return image, model


def extend_borders(
    x: np.ndarray, layout: Layout, borders: str, net: DeconvNet
) -> tuple[np.ndarray, tuple[slice, ...]] | None:
    """`x` extended as it was blurred at its borders, and where `x` lies in it; None
    when every side is a mirror's (:func:`~.borders.border_extension`).

    Only for a deconvolution model's restore (``layout.psf`` set) with a PSF
    on its origin. A dark side's extension gets the image's noise when the
    model's classical channel measures the noise (a Wiener channel's
    balance): a noiseless band made ``deconv-3d`` 3.2 dB worse, where
    ``deconv-2d`` (Richardson-Lucy only) is 0.0 to 0.3 dB better without it.
    """
    if borders == "mirror" or layout.psf is None or any(layout.psf_shift or ()):
        return None
    from .borders import border_extension
    from .noise_estimation import estimate_noise

    spatial = layout.spatial_shape
    images = x.transpose(layout.perm).reshape(-1, *spatial)
    if images.dtype == bool:  # numbers for the sides' fits (numpy cannot subtract bools)
        images = images.astype(np.float32)

    method = str((net.metadata.get("conditioning") or {}).get("method", ""))

    def noise() -> dict[str, Any] | None:  # for a dark extension (see above)
        if "wiener" not in method:
            return None
        try:
            return estimate_noise(images, impulses=False)
        except (ValueError, TypeError):  # too small to measure: a noiseless extension
            return None

    extended = border_extension(images, layout.psf, borders, noise)
    if extended is None:
        return None
    out, original = extended
    batch = layout.transposed_shape[: len(layout.transposed_shape) - len(spatial)]
    ext = out.astype(np.float32).reshape(*batch, *out.shape[1:]).transpose(layout.inverse)
    inner = (slice(None),) * len(batch) + original
    return ext, tuple(inner[i] for i in layout.inverse)


#: Networks :func:`private_model` made: a restore's own, never seen by its caller.
#: A restore that restores again (an extended, pixel-shuffled or RGBA image, a
#: stack image by image) passes its network on, which needs no second copy (7 ms
#: of a 160 ms deconvolution of 256²).
_PRIVATE: weakref.WeakSet = weakref.WeakSet()


def private_model(model: Any) -> DeconvNet:
    """`model` loaded; a caller's DeconvNet is copied, so that restoring never
    changes its device, mode or memory format."""
    if isinstance(model, DeconvNet) and model in _PRIVATE:
        return model  # a restore's own copy, passed on by that restore
    net = load_model(model)
    if net is model:
        net = copy.deepcopy(net)
    if any(p.dtype != torch.float32 for p in net.parameters()):
        net.float()  # a model cast to half precision: precision= decides the arithmetic
    _PRIVATE.add(net)
    return net


def prepare_restore(
    image: Any, model: Any, psf: Any, axes: str | None, device: Any, precision: str
) -> tuple[DeconvNet, str, Layout, torch.device, torch.dtype]:
    """Validate a restore's arguments, before any heavy work; shared by every restore path.

    Returns
    -------
    net, axes, layout, device, dtype
        The caller's own copy of the model, the checked axes, the
        :class:`~napari_deconvnet.core.axes.Layout` (its ``psf`` the PSF
        validated by the model's kind), the resolved device and precision.
    """
    check_image(image)
    net = private_model(model)
    axes = check_axes(axes, image.shape, net)
    layout = Layout(axes, image.shape, net)
    place_psf(layout, net, psf)
    dev = resolve_device(device)
    dtype = resolve_precision(precision, dev)
    warn_conditions(net, image, layout)
    return net, axes, layout, dev, dtype


def place_psf(layout: Layout, net: DeconvNet, psf: Any) -> Any:
    """`psf` checked by `net`'s kind for the image of `layout` and placed in it (its
    ``psf``, recentred, with ``psf_shift`` and ``psf_fraction``: an off-centre PSF, see
    :func:`~.psf.recentre_psf`); returns the checked PSF as it was given."""
    kind = kind_of(net)
    if kind.needs_psf:
        warn_psf_order(psf, layout.axes)  # (read in Z, Y, X whatever the image's order)
    prepared = kind.prepare_psf(psf, net.config.ndim, layout.spatial_shape)
    layout.psf = prepared
    if prepared is not None and kind.needs_psf:
        layout.psf, layout.psf_shift = recentre_psf(prepared, layout.spatial_shape)
        layout.psf_fraction = subpixel_fraction(layout.psf)
        offset = psf_offset(prepared)
        if layout.psf_shift is not None and float(np.abs(offset).max()) >= OFF_CENTRE_WARN:
            # (three quarters of a pixel: half a pixel, which the recentring also moves,
            # was warned of as "+1 pixels" from a bead's noise alone, and at one pixel
            # a bead cropped a pixel off warned half of the time; session 72's reviews)
            warnings.warn(off_centre_note(offset), ConditionsWarning, stacklevel=3)
    return prepared


#: A PSF whose centre lies this many pixels or more off its middle pixel (on some axis)
#: is warned of (:func:`off_centre_note`)
OFF_CENTRE_WARN = 0.75


def off_centre_note(offset: Sequence[float]) -> str:
    """Words for a PSF whose centre lies `offset` pixels (per axis) off its middle pixel:
    the restore keeps the object where such a kernel puts it, so the result is shifted
    against the input by as much (session 72: a bead cropped 3 and 4 pixels off centre
    moved the restoration by as much, without a word; with one PSF per channel each
    channel moves its own way)."""
    letters = "ZYX"[-len(offset) :] if len(offset) <= 3 else None
    said = (
        ", ".join(f"{a} {float(k):+.1f}" for a, k in zip(letters, offset, strict=True))
        if letters
        else str(tuple(round(float(k), 1) for k in offset))
    )
    from .channel_psfs import psf_words

    return (
        f"the centre of {psf_words()} lies off its middle pixel ({said} pixels): the "
        "result is the object such a kernel implies, shifted against the input by as much, as "
        "Richardson-Lucy with the kernel as given. If the bead was only cropped off "
        "centre, crop it around its centre (napari_deconvnet.core.psf.psf_offset gives "
        "the offset) so that the result stays in register with the input"
    )


def warn_conditions(net: DeconvNet, image: Any, layout: Layout) -> list[str]:
    """A :class:`~.conditions.ConditionsWarning` when `image` is unlike `net`'s training data
    (or the messages to :func:`~.conditions.collect_conditions`, when it collects).

    Only models that record their training conditions (trained or adapted
    by this package, not the shipped ones) are checked, on the central
    crop of the middle image (a lazy array reads only that). Returns the
    sentences (empty when nothing is wrong); never fails the restore.
    """
    if not hasattr(image, "transpose"):
        return []
    try:
        problems = check_conditions(net.metadata, image, layout)
    except (ValueError, TypeError, IndexError):  # an unmeasurable image is not an error
        return []
    report_conditions(problems, stacklevel=4)
    return problems


def plan_restore_tiles(
    layout: Layout,
    net: DeconvNet,
    dev: torch.device,
    dtype: torch.dtype,
    tile: Any,
    overlap: Any,
    batch_size: Any,
    n_images: int = 1,
) -> dict[str, Any]:
    """:func:`~napari_deconvnet.core.tiling.plan_tiles` for a prepared restore.

    The tiles of `layout`'s spatial shape on the device and precision that
    :func:`prepare_restore` resolved (half-precision activations take 2 bytes).
    """
    return plan_tiles(
        layout.spatial_shape,
        net,
        tile=tile,
        overlap=overlap,
        device=dev,
        batch_size=batch_size,
        n_images=n_images,
        precision_bytes=2 if dtype != torch.float32 else 4,
    )


def light_noise_weights(
    net: DeconvNet,
    xt: Any,
    layout: Layout,
    offset: Any,
    scale: Any,
    colour: int | None = None,
    *,
    restored: Any = None,
    dtype: torch.dtype = torch.float32,
    noise: dict[str, Any] | None = None,
) -> np.ndarray | None:
    """:func:`~.light_noise.guard_weight` of each image of the transposed input `xt`.

    Every image along the batch axes is measured with its own normalisation
    (`offset`, `scale`, broadcast to `xt`), so that a stack's nearly clean
    images are blended and its noisy ones are not, each as it would be
    alone. `colour`: the position of an RGB image's opponent axis among the
    batch axes; its luminance is measured and the weight applies to all its
    samples. `restored`: the restore's normalised network output, shaped as
    `xt` (eager restores), and `dtype` its precision.

    Returns
    -------
    ndarray or None
        The weights, shaped as `xt`'s batch axes (1 along `colour`), NaN
        where the guard keeps the network's output; None when it keeps it
        for every image.
    """
    shape = list(guard_shape(xt.shape, layout, colour))
    weights = np.full(shape, np.nan)
    lead = len(shape)
    offsets = np.broadcast_to(np.asarray(offset, np.float64), xt.shape)
    scales = np.broadcast_to(np.asarray(scale, np.float64), xt.shape)
    for index in np.ndindex(*shape):
        pick = index + (0,) * (xt.ndim - lead)
        mine = None if restored is None else restored[index]
        w = guard_weight(
            net,
            xt[index],
            float(offsets[pick]),
            float(scales[pick]),
            restored=mine,
            dtype=dtype,
            noise=noise,
        )
        if w is not None:
            weights[index] = w
    return None if np.isnan(weights).all() else weights


def guard_shape(
    shape: Sequence[int], layout: Layout, colour: int | None = None
) -> tuple[int, ...]:
    """The batch axes of a transposed `shape` along which the light-noise guard
    measures one weight per image (1 along an RGB image's opponent axis `colour`)."""
    lead = layout.n_batch_axes + layout.has_channel
    return tuple(1 if d == colour else int(n) for d, n in enumerate(shape[:lead]))


def blend_images(yt: np.ndarray, xt: np.ndarray, weights: np.ndarray | None) -> None:
    """Move each image of the output `yt` from the input `xt` toward itself by its
    weight (:func:`light_noise_weights`; NaN: kept as it is), in place."""
    if weights is None:
        return
    for index in np.ndindex(*weights.shape):
        w = weights[index]
        if np.isnan(w):
            continue
        sel = tuple(
            slice(None) if n == 1 else i for i, n in zip(index, weights.shape, strict=True)
        )
        part = yt[sel]
        part -= xt[sel]
        part *= np.float32(w)
        part += xt[sel]


def restore_iter(
    image: np.ndarray,
    model: str | DeconvNet = "default",
    *,
    psf: Any = None,
    axes: str | None = None,
    tile: int | Sequence[int] | None = None,
    overlap: int | None = None,
    device: str | torch.device = "auto",
    batch_size: int | None = None,
    precision: str = "auto",
    normalization: dict[str, Any] | None = None,
    light_noise_guard: bool | dict[str, Any] | None = None,
    impulse_switch: bool | None = None,
    ensemble: int = 1,
    decorrelate: bool | None = None,
    borders: str = "auto",
    refine: dict[str, Any] | None = None,
) -> Generator[tuple[int, int], None, np.ndarray]:
    """Generator form of :func:`restore`: yields ``(done, total)`` tiles, returns the result.

    Closing the generator (or a napari worker's ``quit``) stops it at the next
    tile batch. With `refine`, the total also counts the refinement's most
    iterations (:data:`~napari_deconvnet.core.refine.REFINE_ITERATIONS`), and
    ``(total, total)`` comes last.
    """
    image, model = restore_arguments(image, model, psf, axes)
    alone = impulses_by_channel(np.shape(image), model, psf, axes, impulse_switch)
    if alone or per_channel(psf):  # each channel restored alone (core.channel_psfs)
        psf = alone or psf
        options = {"tile": tile, "overlap": overlap, "device": device}
        options |= {"batch_size": batch_size, "precision": precision}
        options |= {"light_noise_guard": light_noise_guard, "impulse_switch": impulse_switch}
        options |= {"ensemble": ensemble, "decorrelate": decorrelate, "borders": borders}
        options["refine"] = refine
        return (yield from _by_channel(image, model, psf, axes, normalization, options))
    if refine is not None:
        options = {"psf": psf, "axes": axes, "tile": tile, "overlap": overlap}
        options |= {"device": device, "batch_size": batch_size, "precision": precision}
        options |= {"normalization": normalization, "light_noise_guard": light_noise_guard}
        options |= {"impulse_switch": impulse_switch, "ensemble": ensemble}
        options |= {"decorrelate": decorrelate, "borders": borders}
        return (yield from _refined(image, model, refine, options))
    if check_ensemble(ensemble) > 1:
        return (
            yield from _ensemble_iter(
                image,
                model,
                ensemble,
                psf=psf,
                axes=axes,
                tile=tile,
                overlap=overlap,
                device=device,
                batch_size=batch_size,
                precision=precision,
                normalization=normalization,
                light_noise_guard=light_noise_guard,
                impulse_switch=impulse_switch,
                decorrelate=decorrelate,
                borders=borders,
            )
        )
    net, axes, layout, dev, dtype = prepare_restore(image, model, psf, axes, device, precision)
    check_borders(borders)
    x = np.asarray(image)
    # one pass each for the least and the largest value, read by the checks and the
    # constant test below (NaN propagates to both; infinities show in one of them)
    least, most = (x.min(), x.max()) if x.size else (0, 0)
    if np.issubdtype(x.dtype, np.floating) and not (np.isfinite(least) and np.isfinite(most)):
        raise ValueError(
            "image contains NaN or infinite values; replace them first "
            "(e.g. numpy.nan_to_num) - only finite values can be restored"
        )
    # float32 holds the result (and the normalised image)
    check_single_range(x, "image", extremes=(least, most))
    if x.dtype.itemsize >= 4 and x.dtype.kind in "uif" and x.dtype != np.float32:
        note = float32_levels_note(least, most)
        if note is not None:
            warnings.warn(note, UserWarning, stacklevel=2)
    # what a restore of a part of `x` (or of `x` once rearranged) passes on
    again = {"psf": psf, "tile": tile, "overlap": overlap, "device": device}
    again |= {"batch_size": batch_size, "precision": precision}
    again |= {"light_noise_guard": light_noise_guard, "impulse_switch": impulse_switch}
    extended = extend_borders(x, layout, borders, net)
    if extended is not None:
        # blurred with darkness beyond some sides, or periodically: restored extended as
        # it was blurred, then cropped back (core.borders)
        x_ext, inner = extended
        again |= {"normalization": normalization, "decorrelate": decorrelate}
        out = yield from restore_iter(x_ext, net, axes=axes, borders="mirror", **again)
        return np.ascontiguousarray(out[inner])
    again["borders"] = borders
    if decorrelation_applies(net, axes, decorrelate):
        # noise that neighbours share: a pixel-shuffled restore where it pays (core.decorrelate)
        options = again | {"normalization": normalization}
        return (yield from _decorrelated(x, net, axes, layout, options))
    alpha = alpha_axis(x.shape, axes, normalization)
    if alpha is not None:  # opacity is a mask, no image: kept as it is (core.colour)
        rgb, opacity = split_alpha(x, alpha)
        out = yield from restore_iter(rgb, net, axes=axes, normalization=normalization, **again)
        return join_alpha(out, opacity, alpha)
    # nothing to denoise, and a blurred constant is that constant: returned as it is,
    # once every argument has been checked (below)
    constant = np.float32(x.flat[0]) if least == most else None
    if constant is None and normalization is None and _objects_in_a_stack(x, net, layout, axes):
        # each image its own ranges, as alone (core.dynamic_range): image by image
        return (yield from _image_by_image(x, net, layout, again))
    filled = None
    if constant is None and kind_of(net).fills_constant_areas:  # see core.constant_areas
        filled = fill_constant_areas(x.transpose(layout.perm), net.config.ndim)
    original = x
    if filled is not None:
        x = np.ascontiguousarray(filled[0].transpose(layout.inverse))
    gap = impulse_gap(x, net)  # (areas of one value, padding at 0, are filled and kept)
    if gap is not None:  # salt or pepper far beyond the data, brought near it (core.impulse_gap)
        x = across_gap(x, gap)
    values = find_impulses(net, layout, x.transpose(layout.perm), impulse_switch)
    if values is not None:  # impulses out first: see core.impulse_switch
        switched = switch_impulses(x.transpose(layout.perm), values, net.config.ndim)
        x = np.ascontiguousarray(switched.transpose(layout.inverse))
    colour = opponent_axis(x, net, axes, normalization)
    if colour is not None:  # RGB through a one-channel denoiser: see core.colour
        x = to_opponent(x, colour)
    options = {"psf": psf, "tile": tile, "overlap": overlap, "batch_size": batch_size}
    options["light_noise_guard"] = light_noise_guard
    out = yield from _restore_planned(
        x, colour, normalization, constant, net, layout, dev, dtype, **options
    )
    if filled is not None:
        out = restore_filled(out, original, filled[1].transpose(layout.inverse))
    if constant is None:
        out = _constant_images_kept(out, original, layout)
    return out


def _constant_images_kept(out: np.ndarray, original: np.ndarray, layout: Layout) -> np.ndarray:
    """`out` with each image of the stack `original` that is one value everywhere (a
    blank frame) set back to that value, as it comes back restored alone (session 70:
    through the network at a scale of 1, a blank frame of 3e-5 came back as 4e-4).
    Images are those the layout's batch axes index: frames, planes, channels."""
    found = constant_images(original, layout)
    if found is None:
        return out
    same, low = found
    ot = out.transpose(layout.perm)  # a view: written into `out`
    for index in zip(*np.nonzero(same), strict=True):
        ot[index] = np.float32(low[index])
    return out


def constant_images(x: Any, layout: Layout) -> tuple[np.ndarray, np.ndarray] | None:
    """``(same, low)`` over the images the layout's batch axes index in `x` (NumPy, or a
    dask array read in one pass): whether each holds one value, and its least value;
    None when `x` is one image or none is of one value."""
    n_lead = layout.n_batch_axes
    xt = x.transpose(layout.perm)
    if n_lead == 0 or math.prod(xt.shape[:n_lead]) < 2:
        return None
    rest = tuple(range(n_lead, xt.ndim))
    low, high = xt.min(axis=rest), xt.max(axis=rest)
    if hasattr(low, "compute"):
        import dask

        low, high = dask.compute(low, high)
    low, high = np.asarray(low), np.asarray(high)
    same = low == high
    return (same, low) if same.any() else None


def impulses_by_channel(
    shape: Sequence[int], model: Any, psf: Any, axes: Any, impulse_switch: Any
) -> list[Any] | None:
    """``[psf] * n`` where each of the ``n`` channels of a ``C`` axis is restored
    alone because its impulses are its own, else None.

    Salt and pepper are a channel's own minimum and maximum: a channel
    imaged at a tenth of another's brightness has its salt far below the
    other's, and the whole stack's extremes (:func:`~.kinds.impulse_values`)
    missed every impulse of it (all its salt was kept). So with a model that
    replaces impulses (``salt-and-pepper``, or the impulse switch of a plain
    denoiser) the channels of a ``C`` axis that the network takes one at a
    time are restored as each would be alone, as with one PSF per channel
    (:mod:`.channel_psfs`). ``S`` (RGB) samples keep one set of extremes:
    colour images clip every colour at the same values.
    """
    if per_channel(psf) or axes is None or not isinstance(axes, str) or "C" not in axes.upper():
        return None
    net = private_model(model) if not isinstance(model, DeconvNet) else model
    axes = check_axes(axes, shape, net)
    n = int(shape[axes.index("C")])
    if n < 2 or net.config.in_channels - kind_of(net).extra_channels > 1:
        return None  # one channel, or channels the network takes together
    kind = kind_of(net)
    if (isinstance(kind, ImpulseSwitched) and kind.switch) or switch_applies(net, impulse_switch):
        return [psf] * n
    return None


def _channels(image: Any, model: Any, psf: Any, axes: Any) -> tuple[DeconvNet, str, int]:
    """The model, checked axes and C axis of a restore with one PSF per channel."""
    net = private_model(model)
    return (net, *checked_channel_axis(psf, axes, tuple(np.shape(image)), net))


def _lead_index(axes: str, index: int, net: DeconvNet, shape: Any) -> tuple[int, tuple]:
    """Where the C axis (at `index` of `axes`) lies among the image's non-spatial axes,
    and their sizes: the axes of statistics given per image
    (``compute_normalization(per_image=True)``)."""
    spatial = "ZYX"[3 - net.config.ndim :]
    lead = tuple(int(n) for a, n in zip(axes, shape, strict=True) if a not in spatial)
    return sum(a not in spatial for a in axes[:index]), lead


def _by_channel(
    image: Any,
    model: Any,
    psfs: Sequence[Any],
    axes: Any,
    normalization: Any,
    options: dict[str, Any],
) -> Generator[tuple[int, int], None, np.ndarray]:
    """:func:`restore_iter` of each channel with its own PSF, stacked back along C."""
    net, axes, index = _channels(image, model, psfs, axes)
    n = len(psfs)
    at, lead = _lead_index(axes, index, net, np.shape(image))

    def one(channel: Any, psf: Any, sub_axes: str, c: int) -> Any:
        statistics = split_statistics(normalization, c, n, at, lead)
        return restore_iter(
            np.ascontiguousarray(channel), net, psf=psf, axes=sub_axes,
            normalization=statistics, **options,
        )  # fmt: skip

    return (yield from by_channel(np.asarray(image), psfs, axes, index, one))


def _lazy_by_channel(
    image: Any,
    model: Any,
    psfs: Sequence[Any],
    axes: Any,
    progress: Any,
    normalization: Any,
    options: dict[str, Any],
) -> Any:
    """:func:`restore` of a dask image, each channel lazily with its own PSF, stacked."""
    from .blocks import SHARED_HOOKS, Hooks
    from .lazy import check_lazy_callbacks

    net, axes, index = _channels(image, model, psfs, axes)
    n = len(psfs)
    stop = options.pop("stop", None)
    check_lazy_callbacks(progress, stop)
    # the channels' blocks in one count, from 1 to all of them on every compute (each
    # channel's own count, added up, stayed at n of n after the first compute)
    shared = Hooks(progress, stop, 0) if progress is not None or stop is not None else None

    at, lead = _lead_index(axes, index, net, np.shape(image))

    def one(channel: Any, psf: Any, sub_axes: str, c: int) -> Any:
        statistics = split_statistics(normalization, c, n, at, lead)
        yield from ()
        return restore(
            channel, net, psf=psf, axes=sub_axes, normalization=statistics,
            progress=None, stop=None, **options,
        )  # fmt: skip

    token = SHARED_HOOKS.set(shared)
    try:
        return drain(by_channel(image, psfs, axes, index, one))
    finally:
        SHARED_HOOKS.reset(token)


def _refined(
    image: Any, model: Any, refine: Any, options: dict[str, Any]
) -> Generator[tuple[int, int], None, np.ndarray]:
    """The restore of `image` with `options`, then refined with the noise `refine`
    (:mod:`~napari_deconvnet.core.refine`)."""
    net = private_model(model)
    noise = check_refine(refine, net)
    check_image(image)
    axes = check_axes(options["axes"], image.shape, net)
    layout = Layout(axes, image.shape, net)
    psf = place_psf(layout, net, options["psf"])  # (placed as the restore below places it)
    # the image as its borders were blurred (darkness beyond a side, periodic): restored
    # and refined extended, then cropped. Refined on the mirrored image, the borders'
    # misfit ran it to its last iteration and cost up to 7.8 dB (session 67)
    data = np.asarray(image)
    extended = extend_borders(data, layout, options.get("borders", "auto"), net)
    crop: Any = ...
    if extended is not None:
        data, crop = extended
        options = options | {"borders": "mirror"}
    inner = restore_iter(data, net, **(options | {"axes": axes}))
    total = 0
    try:
        while True:
            done, total = next(inner)
            yield done, total + REFINE_ITERATIONS
    except StopIteration as end:
        out = end.value
    done = 0
    steps = refine_iter(data, out, psf, noise, layout.perm, options["device"])
    try:
        while True:
            done, _ = next(steps)
            yield total + done, total + REFINE_ITERATIONS
    except StopIteration as end:
        refined = end.value
    if done < REFINE_ITERATIONS:  # stopped early: fitted
        yield total + REFINE_ITERATIONS, total + REFINE_ITERATIONS
    # (fitted from the start: the output as it was)
    return np.ascontiguousarray((out if done == 0 else refined)[crop])


def _restore_planned(
    x: np.ndarray,
    colour: Any,
    normalization: dict[str, Any] | None,
    constant: Any,
    net: DeconvNet,
    layout: Layout,
    dev: torch.device,
    dtype: torch.dtype,
    *,
    psf: Any,
    tile: Any,
    overlap: Any,
    batch_size: Any,
    light_noise_guard: bool | dict[str, Any] | None,
) -> Generator[tuple[int, int], None, np.ndarray]:
    """The restore of `x` once it is checked and prepared (:func:`restore_iter`)."""
    plan = plan_restore_tiles(
        layout, net, dev, dtype, tile, overlap, batch_size, n_images=layout.net_shape[0]
    )
    plan["shift"] = layout.psf_shift  # tiles read this much further (an off-centre PSF)
    scene = None
    if constant is None and colour is None and normalization is None:
        scene = bright_objects_of(x, net, layout)
    elif constant is None and colour is None:
        warn_one_range(x, net, layout)
    common = {"net": net, "layout": layout, "plan": plan, "dev": dev, "dtype": dtype}
    common["light_noise_guard"] = light_noise_guard
    if scene is None:
        return (yield from _restore_pass(x, colour, normalization, constant, **common))
    # a dim scene beside very bright objects: the objects estimated (a denoiser's
    # restore in their range, or Richardson-Lucy), then the scene restored in its
    # own range once they are taken out (core.dynamic_range)
    kernel = kind_of(net).prepare_psf(psf, net.config.ndim, layout.spatial_shape)
    first, parts = None, 1
    if kernel is None:  # each network pass is half of the progress
        first_pass = _restore_pass(x, None, scene.objects_normalization(), None, **common)
        first, parts = (yield from _part(first_pass, 0)), 2
    objects, rest = split_objects(x, first, scene, kernel, layout)
    scene_pass = _restore_pass(rest, None, scene.normalization(), None, **common)
    low = yield from _part(scene_pass, parts - 1, parts)
    low += objects
    return low


def _served(net: DeconvNet, layout: Layout) -> bool:
    """Whether the two intensity ranges (:mod:`.dynamic_range`) serve this model and
    layout: one-channel plain denoisers and deconvolution models (a channel axis is
    then restored channel by channel, each channel an image of its own)."""
    if kind_of(net).name not in ("plain", "psf-conditioned") or layout.has_channel:
        return False
    return net.config.out_channels == 1 and (
        kind_of(net).name != "plain" or net.config.in_channels == 1
    )


def bright_objects_of(x: Any, net: DeconvNet, layout: Layout) -> Any:
    """:func:`~.dynamic_range.scene_range` of the image `x` (numpy), one image the
    network restores, for the models it serves; None otherwise, and for a stack or
    several channels (:func:`images_with_objects` decides there, image by image)."""
    if not _served(net, layout) or layout.net_shape[0] != 1:
        return None
    xt = x.transpose(layout.perm)
    return scene_range(xt.reshape(-1, *layout.spatial_shape), net.config.ndim)


def images_with_objects(x: Any, net: DeconvNet, layout: Layout) -> list[bool]:
    """For each image the network restores from `x` (numpy), whether it holds a few
    objects far brighter than its scene (:func:`~.dynamic_range.scene_range`, on
    that image alone); all False for the models it does not serve."""
    images = np.asarray(x).transpose(layout.perm).reshape(-1, *layout.spatial_shape)
    if not _served(net, layout):
        return [False] * len(images)
    return [scene_range(image[None], net.config.ndim) is not None for image in images]


def warn_one_range(x: Any, net: DeconvNet, layout: Layout) -> None:
    """Say so when fixed statistics meet an image with objects far brighter than its scene.

    Without ``normalization=`` such an image is restored in two ranges
    (:mod:`.dynamic_range`); the fixed statistics are one range, in which
    its dim scene loses up to 10 dB or more and the objects can overshoot.
    `x` is numpy data (the eager restore's image, or a small lazy one's).
    """
    if any(images_with_objects(x, net, layout)):
        warnings.warn(
            "normalization= fixes one intensity range, and this image holds a few objects "
            "far brighter than the rest: restored in one range, its dim scene can lose 10 dB "
            "or more; without normalization= restore gives the scene its own range "
            "(napari_deconvnet.core.dynamic_range)",
            UserWarning,
            stacklevel=4,
        )


def _objects_in_a_stack(x: np.ndarray, net: DeconvNet, layout: Layout, axes: str) -> bool:
    """Whether `x` is a stack (several images the network restores, one channel)
    of which some image holds bright objects."""
    if layout.net_shape[0] < 2 or opponent_axis(x, net, axes, None) is not None:
        return False
    return any(images_with_objects(x, net, layout))


def _image_by_image(
    x: np.ndarray, net: DeconvNet, layout: Layout, options: dict[str, Any]
) -> Generator[tuple[int, int], None, np.ndarray]:
    """:func:`restore_iter` of each image of the stack `x` alone (its statistics, its
    light-noise weight, its own two ranges where it holds bright objects), stacked."""
    xt = x.transpose(layout.perm)
    lead = xt.shape[: layout.n_batch_axes]
    spatial = "ZYX"[3 - net.config.ndim :]
    out = np.empty(xt.shape, np.float32)
    n = math.prod(lead)
    with warnings.catch_warnings():  # said once, by prepare_restore for the stack
        warnings.simplefilter("ignore", ConditionsWarning)
        for k, index in enumerate(np.ndindex(*lead)):
            one = restore_iter(np.ascontiguousarray(xt[index]), net, axes=spatial, **options)
            out[index] = yield from _part(one, k, n)
    return np.ascontiguousarray(out.transpose(layout.inverse))


def _decorrelated(
    x: np.ndarray, net: DeconvNet, axes: str, layout: Layout, options: dict[str, Any]
) -> Generator[tuple[int, int], None, np.ndarray]:
    """:func:`restore_iter` of `x`, each of its images whose noise neighbours share
    restored pixel-shuffled instead (:mod:`.decorrelate`): screened, then both
    restores run and compared. An RGB image (``S`` axis) is one image: screened
    by its samples' mean, its sub-images restored in colour. A 3D model's
    volume is one image: screened by its planes' mean, its sub-volumes of every
    second pixel along Y and X (all planes) restored as volumes."""
    start = 0  # the axis of the image its sub-images take every second pixel from
    if "S" in axes:  # RGB: each colour image screened by its mean, restored whole
        order = [i for i, a in enumerate(axes) if a not in "YXS"]
        order += [axes.index("Y"), axes.index("X"), axes.index("S")]
        sub_axes = "YXS"
    elif net.config.ndim == 3:  # volumes
        order, sub_axes, start = list(layout.perm), "ZYX", 1
    else:  # gray images (each channel of a C axis on its own): the layout's order
        order, sub_axes = list(layout.perm), "YX"
    xt = x.transpose(order)
    lead = xt.shape[: xt.ndim - len(sub_axes)]

    def screen(image: np.ndarray) -> float:
        if sub_axes == "YXS":
            return screen_ratio(image.mean(axis=-1))
        if sub_axes == "ZYX":
            return float(np.mean([screen_ratio(plane) for plane in image]))
        return screen_ratio(image)

    least, ratio, residual = thresholds(volumes=sub_axes == "ZYX")
    screened = [index for index in np.ndindex(*lead) if screen(xt[index]) >= least]
    plain = restore_iter(x, net, axes=axes, decorrelate=False, **options)
    if not screened:
        return (yield from plain)
    out = yield from _part(plain, 0)
    ot = out.transpose(order)
    parts = len(screened) * FACTOR**2
    done = 0
    with warnings.catch_warnings():  # said once, by prepare_restore for the stack
        warnings.simplefilter("ignore", ConditionsWarning)
        for index in screened:
            image = np.ascontiguousarray(xt[index])
            restored = []
            for sub in shuffled(image, start=start):
                one = restore_iter(sub, net, axes=sub_axes, decorrelate=False, **options)
                restored.append((yield from _part(_part(one, done, parts), 1)))
                done += 1
            candidate = assemble(restored, image.shape, start=start)
            if decide(image, ot[index], candidate, ratio, residual):
                ot[index] = candidate
    return out


def _part(
    gen: Generator[tuple[int, int], None, np.ndarray], index: int, parts: int = 2
) -> Generator[tuple[int, int], None, np.ndarray]:
    """`gen`'s progress as the `index`-th of `parts` equal parts of one restore."""
    while True:
        try:
            done, total = next(gen)
        except StopIteration as finished:
            return finished.value
        yield index * total + done, parts * total


def _restore_pass(
    x: np.ndarray,
    colour: Any,
    normalization: dict[str, Any] | None,
    constant: Any,
    *,
    net: DeconvNet,
    layout: Layout,
    plan: dict[str, Any],
    dev: torch.device,
    dtype: torch.dtype,
    light_noise_guard: bool | dict[str, Any] | None,
) -> Generator[tuple[int, int], None, np.ndarray]:
    """Normalise `x`, run the network over it and map the result back (one restore)."""
    xt = x.transpose(layout.perm)
    offset, scale = normalization_arrays(xt, layout, net, normalization)
    if layout.psf_fraction is None:
        xn = xt.astype(np.float32)  # always a copy: normalised in place below
    else:  # the image channel where a centred PSF would have put it (see recentre_psf)
        xn = subpixel_shift(xt, layout.psf_fraction)
    xn -= offset
    xn /= scale
    xn = xn.reshape(layout.net_shape)
    kind = kind_of(net)
    guarded = guard_applies(net, light_noise_guard)  # see core.light_noise
    known = guard_noise(light_noise_guard)  # the caller's noise, if described
    if kind.extra_channels:
        # the kind's extra channels (e.g. Richardson-Lucy with the PSF),
        # normalised like the image
        images = xt.reshape(-1, *layout.spatial_shape)
        stack = kind.channel_stack(images, layout.psf, device=dev)
        parts = [xn]
        for c in range(stack.shape[1]):
            pre = np.ascontiguousarray(stack[:, c]).reshape(layout.transposed_shape)
            pre -= offset
            pre /= scale
            parts.append(pre.reshape(layout.net_shape))
        del stack, pre
        xn = np.concatenate(parts, axis=1)
        del parts
    if constant is not None:
        yield 1, 1
        return np.full(np.shape(x), constant, np.float32)
    batches = math.ceil(plan["n_tiles"] / plan["batch_size"])
    feature_map = feature_map_bytes(net, plan["tile"], plan["halo"], plan["batch_size"], dtype)
    try:
        # batch after batch reuses the last one's buffers (core.memory)
        with reuse_freed_memory(dev.type == "cpu" and worth_reusing(feature_map, batches)):
            yn = yield from run_tiles(xn, net, plan, dev, dtype)
    finally:
        del xn
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    yt = yn.reshape(layout.transposed_shape)
    blend = None
    if guarded:  # measured on this output, at the boxes core.light_noise reads, per image
        at = None if colour is None else list(layout.perm).index(colour)
        blend = light_noise_weights(
            net, xt, layout, offset, scale, at, restored=yt, dtype=dtype, noise=known
        )
    yt *= scale
    yt += offset
    # nearly clean images: the input moved toward the output by SURE's weight
    blend_images(yt, xt, blend)
    kind.postprocess(xt, yt, kind.output_statistics(x))
    out = np.ascontiguousarray(yt.transpose(layout.inverse))
    return out if colour is None else from_opponent(out, colour)


def _odd_plane(kernel: np.ndarray | None) -> np.ndarray | None:
    """`kernel` with a trailing zero on an even Y or X axis, so that its origin
    (index ``n // 2``) is its middle, which the views' mirrors keep in place.

    Mirrored as it was, an even PSF's origin moved by a pixel: each mirrored
    view deconvolved with a misplaced PSF, and ``ensemble=8`` with a 12x12
    Gaussian lost 2.2 dB to one view (25.67 against 27.90).
    """
    if kernel is None:
        return None
    widths = [(0, 0)] * (kernel.ndim - 2) + [(0, 1 - n % 2) for n in kernel.shape[-2:]]
    return np.pad(kernel, widths) if any(w for _, w in widths) else kernel


def _ensemble_iter(
    image: Any, model: Any, ensemble: int, *, psf: Any, axes: Any, tile: Any, **options: Any
) -> Generator[tuple[int, int], None, np.ndarray]:
    """:func:`restore_iter` averaged over `ensemble` views (:mod:`.ensemble`)."""
    net, axes, layout, dev, dtype = prepare_restore(
        image, model, psf, axes, options["device"], options["precision"]
    )
    kernel = _odd_plane(kind_of(net).prepare_psf(psf, net.config.ndim, layout.spatial_shape))
    y, x = axes.index("Y"), axes.index("X")
    data = np.asarray(image)
    n_images = layout.net_shape[0]
    plan = plan_restore_tiles(
        layout, net, dev, dtype, tile, options["overlap"], options["batch_size"], n_images
    )
    feature_map = feature_map_bytes(net, plan["tile"], plan["halo"], plan["batch_size"], dtype)
    # view after view reuses the last one's buffers (core.memory)
    reuse = reuse_freed_memory(dev.type == "cpu" and worth_reusing(feature_map, ensemble))
    with reuse:
        mean = yield from _views(data, net, kernel, ensemble, y, x, axes, tile, options)
    return mean


def _views(
    data: np.ndarray,
    net: DeconvNet,
    kernel: Any,
    ensemble: int,
    y: int,
    x: int,
    axes: str,
    tile: Any,
    options: dict[str, Any],
) -> Generator[tuple[int, int], None, np.ndarray]:
    """The mean of `ensemble` views' restores (:func:`_ensemble_iter`)."""
    total = None
    mean = None
    for i, view in enumerate(VIEWS[:ensemble]):
        # the PSF's last two axes are the model's Y and X
        turned = None
        if kernel is not None:
            turned = to_view(kernel, view, kernel.ndim - 2, kernel.ndim - 1)
        views = restore_iter(
            to_view(data, view, y, x),
            net,
            psf=turned,
            axes=axes,
            tile=view_tile(tile, view),
            **options,
        )
        with warnings.catch_warnings():  # said once, by prepare_restore above
            warnings.simplefilter("ignore", ConditionsWarning)
            while True:
                try:
                    done, n = next(views)
                except StopIteration as finished:
                    out = finished.value
                    break
                total = total or n
                yield i * total + round(done * total / n), ensemble * total
        back = from_view(out, view, y, x)
        if mean is None:
            mean = back.astype(np.float32)
        else:  # a running mean: views that agree (a constant image) stay exactly that value
            back = back - mean
            back /= np.float32(i + 1)
            mean += back
    return mean


def restore(
    image: Any,
    model: str | DeconvNet = "default",
    *,
    psf: Any = None,
    axes: str | None = None,
    tile: int | Sequence[int] | None = None,
    overlap: int | None = None,
    device: str | torch.device = "auto",
    batch_size: int | None = None,
    precision: str = "auto",
    progress: Callable[[int, int], Any] | None = None,
    stop: threading.Event | None = None,
    normalization: dict[str, Any] | None = None,
    light_noise_guard: bool | dict[str, Any] | None = None,
    impulse_switch: bool | None = None,
    ensemble: int = 1,
    decorrelate: bool | None = None,
    borders: str = "auto",
    refine: dict[str, Any] | None = None,
) -> Any:
    """Restore (denoise or deconvolve) an image with a deconvolution network.

    Parameters
    ----------
    image : (M, N), (P, M, N), ... ndarray, dask array or torch tensor
        Any real dtype (bool, integers, float16/32/64). Complex data, NaN and
        infinite values are refused. A tensor is read as a NumPy array
        (detached, copied to the CPU); the result is a NumPy array.
    model : str, path or DeconvNet, optional
        ``"default"`` (the shipped ``denoise-2d``; with a `psf`, the shipped
        deconvolution model of the PSF's dimensions: ``deconv-2d`` for a 1D
        or 2D PSF (a line along X is one), ``deconv-3d`` for a 3D one; on a
        plane, a ``(1, Y, X)`` PSF is 2D), another shipped name
        (:func:`list_models`), the path of a ``.safetensors`` model file, or a
        loaded model.
    psf : ndarray, str or dict, optional
        The point-spread function, required by deconvolution models
        (``"deconv-2d"``, ``"deconv-3d"``; metadata ``needs_psf``) and refused
        by the others: an array with the model's dimensionality (any odd or
        even shape, normalised to sum 1, not bigger than the image), a
        :func:`make_psf` name, or a dict such as ``{"kind": "gaussian",
        "sigma": 2}``. The model receives the image's classical
        pre-deconvolution with this PSF (Richardson-Lucy or Wiener, as its
        metadata says) as a second input channel (its kind,
        :class:`~napari_deconvnet.core.kinds.PSFConditioned`). For dask input the
        channel is computed block by block with a context of a few PSF
        sizes (:func:`~napari_deconvnet.core.conditioning.conditioning_margin`).
    axes : str, optional
        One letter per dimension from ``"TZCYXS"``: T time, Z depth, C
        channel, Y/X rows/columns, S RGB samples. Default (see
        :func:`~napari_deconvnet.core.axes.infer_axes`): 2-D ``"YX"``; 3-D
        ``"ZYX"`` (a 2D model runs plane by plane), or ``"YXS"`` when a 2D
        model meets 3 or 4 trailing samples; 4-D ``"TZYX"`` or ``"TYXS"``;
        5-D ``"TZCYX"``. Axes the model
        does not process spatially (T, Z for 2D models, C/S for one-channel
        models) are processed independently.
    tile : int or sequence of int, optional
        Output tile size per spatial axis, rounded up to the network's
        ``2**depth`` grid. ``None`` chooses the largest tile that fits the
        device's free memory (capped on the CPU so that memory grows
        linearly with image size). Must not exceed the image.
    overlap : int, optional
        Context added on each side of a tile. ``None`` uses the network's
        receptive-field extent, which makes tiled output equal untiled output.
    device : {"auto", "cpu", "cuda", "cuda:N", "mps"}
        ``"auto"`` picks CUDA, then MPS, then the CPU.
    batch_size : int, optional
        Tiles per network call; ``None`` fills the memory budget.
    precision : {"auto", "float32", "float16", "bfloat16"}
        ``"auto"`` is float16 mixed precision on CUDA and float32 on the CPU
        and MPS (with the environment variable
        ``NAPARI_DECONVNET_CPU_BFLOAT16=1``: bfloat16 on CPUs with bfloat16
        units). ``"bfloat16"`` is 1.1-2x faster on CPUs with AMX or
        AVX512-BF16 and costs under 0.02 dB of PSNR, but its rounding depends
        on the tiles and blocks (about 1e-3 of the range); on a CPU without
        those units it is emulated and slow (a warning says so).
    progress : callable, optional
        Called as ``progress(done, total)`` after every batch of tiles;
        raising from it stops the restoration and propagates the exception.
        For dask input it is called from the computing threads as
        ``progress(blocks_done, n_blocks)`` while the result is computed.
    stop : threading.Event or callable, optional
        When set (a callable taking no argument: when it returns True), the
        restoration stops at the next batch and raises
        :class:`Cancelled`; for dask input, the next block to be computed
        raises it. (With dask input, `progress` and `stop` need a local
        scheduler; on a ``dask.distributed`` cluster use
        :func:`~napari_deconvnet.restore_to_zarr`.)
    normalization : dict, optional
        Fixed statistics ``{"offset": o, "scale": s}`` (numbers, or one per
        channel): the network sees ``(image - o) / s``, and the result is
        mapped back with the same numbers. Default: the model's contract,
        with exact percentiles for numpy input and a deterministic sample of
        the chunks for dask input (see :func:`compute_normalization`).
        Without it, an image holding a few objects far brighter than the
        rest (beads, a bright cell; about 8 times its 99.5th percentile and
        more) is restored in two ranges, the objects in theirs and the
        scene around them in its own (:mod:`~napari_deconvnet.core.dynamic_range`;
        one-channel denoisers and deconvolution models; a dask array up to
        2**22 values alike (read whole to search it), a larger one in one pass).
    light_noise_guard : bool or dict, optional
        Nearly clean images through a blind denoiser: when the estimated
        noise is light (below 8/255 of the normalisation range), the result
        is the input moved toward the network's output by the weight that
        minimises Stein's unbiased risk estimate, so that texture the model
        would take for noise is kept (:mod:`~napari_deconvnet.core.light_noise`);
        each image of a stack is weighed on its own, as alone.
        ``None`` (default): on for the shipped ``denoise-2d`` and
        ``denoise-3d``; ``True`` for another one-channel denoiser of white
        noise; ``False``: the network's output as it is. The image's noise
        as :func:`~napari_deconvnet.estimate_noise` returns it (e.g.
        ``{"noise": "poisson-gaussian", "gain": g, "offset": o,
        "read_noise": r}`` from a camera's calibration, in the image's units)
        turns the guard on with that noise instead of the measured one: on
        texture that fills the whole image the measurement reads the texture
        as noise (:func:`~.light_noise.guard_noise`). numpy booleans are
        accepted; anything else raises ``TypeError`` (a dict that is not such
        a noise: ``ValueError``).
    impulse_switch : bool, optional
        Impulses (pixels at the image's minimum or maximum: dead or
        saturated pixels, salt-and-pepper) through a blind denoiser: when
        :func:`estimate_noise` finds salt-and-pepper in a central crop, those
        pixels are replaced by :func:`denoise_switching_median` before the
        network sees the image (:mod:`~napari_deconvnet.core.impulse_switch`).
        ``None`` (default): on for the models the light-noise guard is on
        for; ``True`` for another one-channel plain denoiser; ``False``: never
        (numpy booleans too; other values raise ``TypeError``).
    ensemble : int, optional
        How many rotated and mirrored views of the Y/X plane to restore and
        average, each turned back (1 to 8; the PSF turns with the image, Z
        never does; :mod:`~napari_deconvnet.core.ensemble`). 8 costs eight
        restores and gains about 0.1 dB on Gaussian noise (README). 1 (the
        default) restores once. In-memory images only.
    decorrelate : bool, optional
        Noise that neighbouring pixels share (resampled, upscaled, filtered,
        deskewed images) through a blind denoiser, which takes it for
        structure. ``True``: each image whose finest wavelet noise estimate
        is much lower than its pixel-shuffled sub-images' is also restored as
        the four sub-images of every second pixel along Y and X, and that
        restore is kept where it takes away at least 6 times as much as the
        plain one (:mod:`~napari_deconvnet.core.decorrelate`); for images
        known to be resampled or filtered: a nearly clean, finely textured
        image can lose its texture. Needs a one-channel plain denoiser (2D:
        gray, RGB as one image, channels each alone; 3D: each volume, with
        thresholds of its own), else ValueError. A dask image is restored
        without it, with a UserWarning. ``None``/``False`` (default): never.
    borders : {"auto", "mirror", "dark", "periodic"}, optional
        How the image was blurred at its borders, for deconvolution models (a
        `psf`). A restore extends each side by its mirror image, as a
        camera's frame (the crop of a wider blurred field) continues; an
        image blurred as if nothing lay beyond its borders
        (``scipy.signal.fftconvolve(..., mode="same")``, a zero fill, or a
        scene dark beyond a side) dims toward them, and one blurred
        periodically (FFTs without padding, ``mode="wrap"``) carries the
        opposite side's light; deconvolution sharpened both into artefacts.
        ``"auto"`` (default): periodic axes and dark sides are found
        (:func:`~napari_deconvnet.core.borders.periodic_axes`,
        :func:`~napari_deconvnet.core.borders.dark_sides`; for a camera's
        image, none), and the image is extended there as it was blurred (by
        its periodic continuation; by the light its scene, Richardson-Lucy's,
        spills beyond a dark side, with the image's noise), restored, and
        cropped back (:mod:`~napari_deconvnet.core.borders`). ``"mirror"``,
        ``"dark"``, ``"periodic"``: every side so (``"dark"`` at zero, or at
        the camera offset the sides show, as ``"auto"`` finds it). A dask image is always
        mirrored (lazy blocks cannot see the whole image; the others warn).
    refine : dict, optional
        Deconvolution models: the image's noise, as
        :func:`~napari_deconvnet.estimate_noise` returns it and as a
        calibrated camera gives it (``{"noise": "poisson", "gain": g}``, or
        ``"poisson-gaussian"`` with ``gain``, ``offset``, ``read_noise``, or
        ``"gaussian"`` with ``sigma``; in the image's units). The network's
        output is then refined by Richardson-Lucy iterations (at most
        :data:`~napari_deconvnet.core.refine.REFINE_ITERATIONS`), each image
        until its blurred estimate fits the data within that noise (mean
        squared residual over the variance at most 1); an output that fits
        already is kept. Bright images (1e4 photons per pixel and more),
        which the network smooths as if they were dim, gain up to 2 dB; dim
        ones do not change (:mod:`~napari_deconvnet.core.refine`, README).
        Give the camera's noise, not an estimate from an image of objects
        in the dark, and a measured PSF: the refinement fits the data with
        the PSF it is given (one 20 % too wide lost 2.7 dB). In-memory
        images only (a dask image raises ``ValueError``); ``None``
        (default): the network's output.

    Returns
    -------
    restored : ndarray or dask array
        float32, the shape of `image`, in the input's intensity scale
        (normalisation is undone with the statistics used to normalise). A
        dask input gives a lazy dask array computed block by block: blocks
        start on the network's grid whatever the input's chunks, so it
        equals the eager result up to rounding (for conditioned models,
        within the tolerance of :func:`~napari_deconvnet.core.conditioning.conditioning_margin`).

    Raises
    ------
    TypeError
        Non-array, complex or non-numeric input; wrong argument types.
    ValueError
        Empty input, NaN/Inf, axes that do not match the image, images
        smaller than the network's grid, unknown devices, tiles larger than
        the image or than free memory, bad model files.
    Cancelled
        When `stop` is set.

    Examples
    --------
    >>> import numpy as np
    >>> noisy = np.random.default_rng(0).normal(0.5, 0.1, (40, 50)).astype(np.float32)
    >>> restore(noisy).shape
    (40, 50)
    """
    stop = check_callbacks(progress, stop)
    image, model = restore_arguments(image, model, psf, axes)
    alone = None  # channels whose impulses are their own: each alone, as in memory
    if is_dask(image):
        alone = impulses_by_channel(image.shape, model, psf, axes, impulse_switch)
    if is_dask(image) and (alone or per_channel(psf)):  # each channel alone (core.channel_psfs)
        psf = alone or psf
        options = {"tile": tile, "overlap": overlap, "device": device}
        options |= {"batch_size": batch_size, "precision": precision, "stop": stop}
        options |= {"light_noise_guard": light_noise_guard, "impulse_switch": impulse_switch}
        options |= {"ensemble": ensemble, "decorrelate": decorrelate, "borders": borders}
        options["refine"] = refine
        return _lazy_by_channel(image, model, psf, axes, progress, normalization, options)
    if is_dask(image):
        from .lazy import lazy_restore

        warn_not_applied(decorrelate)  # a lazy restore never decorrelates
        check_borders(borders)  # a lazy restore mirrors (blocks cannot see the borders)
        if borders != "auto" and borders != "mirror":
            warnings.warn(
                f"borders={borders!r} is not applied to a dask image: a lazy restore extends "
                "every side by its mirror image; compute the image first",
                UserWarning,
                stacklevel=2,
            )

        if refine is not None:
            raise ValueError(
                "refine needs the image in memory (numpy): it fits the whole image to the "
                "data, which a lazy restore's blocks cannot see; compute the image first, "
                "or restore it without refine"
            )
        if check_ensemble(ensemble) > 1:
            raise ValueError(
                f"ensemble={ensemble} needs an image in memory (numpy); a dask image is "
                "restored block by block with one view (ensemble=1); compute it first, "
                "or restore it without the ensemble"
            )
        return lazy_restore(
            image,
            model,
            psf=psf,
            axes=axes,
            tile=tile,
            overlap=overlap,
            device=device,
            batch_size=batch_size,
            precision=precision,
            progress=progress,
            stop=stop,
            normalization=normalization,
            light_noise_guard=light_noise_guard,
            impulse_switch=impulse_switch,
        )
    if stop is not None and stop.is_set():
        raise Cancelled("restoration cancelled before it started")
    gen = restore_iter(
        image,
        model,
        psf=psf,
        axes=axes,
        tile=tile,
        overlap=overlap,
        device=device,
        batch_size=batch_size,
        precision=precision,
        normalization=normalization,
        light_noise_guard=light_noise_guard,
        impulse_switch=impulse_switch,
        ensemble=ensemble,
        decorrelate=decorrelate,
        borders=borders,
        refine=refine,
    )
    return drain(
        gen,
        progress=progress,
        stop=stop,
        cancelled="restoration cancelled after {done} of {total} tiles",
    )


def compute_normalization(
    image: Any,
    model: str | DeconvNet = "default",
    *,
    axes: str | None = None,
    per_image: bool = False,
    impulse_switch: bool | None = None,
) -> dict[str, Any]:
    """Statistics to normalise `image` with: for the whole data, or as :func:`restore` takes them.

    Parameters
    ----------
    image : ndarray or dask array
        Exact percentiles for numpy data; a deterministic sample of the
        chunks for dask data (:func:`~napari_deconvnet.core.normalization.sample_values`).
    model : str, path or DeconvNet
        Its normalisation contract decides what is computed.
    axes : str, optional
        As for :func:`restore`; a channel axis gets one offset and scale per
        channel.
    per_image : bool
        False (default): one set for all the data, over every plane and time
        point (per channel). True: what :func:`restore` uses by default, one
        set per image the network restores (each time point, each plane
        under a 2D model: :func:`~napari_deconvnet.core.normalization.image_statistics`).
    impulse_switch : bool, optional
        As for :func:`restore`: where the restore replaces salt-and-pepper
        impulses before the network sees the image, the statistics are those
        of the image with its impulses replaced.

    Returns
    -------
    dict
        ``{"offset": o, "scale": s}``: floats or lists with one per channel;
        with `per_image`, nested lists shaped like the batch axes (then the
        model's channels). Pass it as ``restore(..., normalization=...)`` to
        restore other data, blocks or time points with the same numbers
        (bioimage.io's ``fixed_dataset_statistics``): the whole-data form
        restores every time point of a time-lapse on one intensity scale.
        They are the statistics of the image as the network sees it: an RGB
        image that a one-channel denoiser restores in luminance and chroma
        gets one set per opponent channel and ``"colour": "opponent"``
        (restore then maps it there, as without them); an RGBA image's
        opacity has none (it is kept, not restored).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.linspace(0, 200, 10001).reshape(73, 137)
    >>> stats = compute_normalization(x)
    >>> round(stats["offset"], 3), round(stats["scale"], 3)
    (1.0, 198.0)
    """
    image, _ = restore_arguments(image, None, None)  # a tensor or masked array as restore reads it
    if not is_dask(image) and not isinstance(image, np.ndarray) and hasattr(image, "dtype"):
        image = np.asarray(image)  # a zarr array, memory map...: read whole, as restore reads it
    check_image(image)
    net = load_model(model)
    axes = check_axes(axes, image.shape, net)
    alpha = alpha_axis(image.shape, axes)
    if alpha is not None:  # opacity is kept, not restored: no statistics
        image = split_alpha(image, alpha)[0]
    image, colour = as_network_sees(image, net, axes, impulse_switch)
    layout = Layout(axes, image.shape, net)
    xt = image.transpose(layout.perm)
    lead = layout.transposed_shape[: layout.n_batch_axes]
    marked = {"colour": "opponent"} if colour is not None else {}
    if per_image and math.prod(lead) > 1 and net.config.normalization["method"] == "percentile":
        offsets, scales = normalization_arrays(xt, layout, net)
        keep = (*lead, *((offsets.shape[len(lead)],) if layout.has_channel else ()))
        offsets, scales = offsets.reshape(keep).tolist(), scales.reshape(keep).tolist()
        return {"offset": offsets, "scale": scales} | marked
    offsets, scales = normalization_arrays(xt, layout, net, whole=True)
    if layout.stat_axis is None:
        offsets, scales = float(offsets.reshape(-1)[0]), float(scales.reshape(-1)[0])
    else:
        offsets, scales = offsets.reshape(-1).tolist(), scales.reshape(-1).tolist()
    return {"offset": offsets, "scale": scales} | marked


def as_network_sees(
    image: Any,
    net: DeconvNet,
    axes: str,
    impulse_switch: bool | None,
    normalization: dict[str, Any] | None = None,
) -> tuple[Any, int | None]:
    """`image` (numpy or dask, no opacity) as a restore normalises it, and its
    opponent axis (or None).

    Impulses are replaced where the restore replaces them
    (:mod:`.impulse_switch`), and an RGB image that a one-channel denoiser
    restores in luminance and chroma is mapped there (:mod:`.colour`; with
    fixed `normalization`, only statistics marked for that space). The lazy
    restore builds on it, and :func:`compute_normalization` reads its
    statistics off it, so that they are the ones a restore computes itself.
    """
    layout = Layout(axes, image.shape, net)
    gap = impulse_gap(image, net)
    if gap is not None:  # as restore_iter moves them (core.impulse_gap)
        image = across_gap(image, gap)
    values = find_impulses(net, layout, image.transpose(layout.perm), impulse_switch)
    if values is not None:  # impulses out first, as restore_iter does
        switched = switch_impulses_lazy(image.transpose(layout.perm), values, net.config.ndim)
        image = switched.transpose(layout.inverse)
    colour = opponent_axis(image, net, axes, normalization)
    if colour is not None:  # RGB through a one-channel denoiser, as restore_iter does
        image = to_opponent(image, colour)
    return image, colour
