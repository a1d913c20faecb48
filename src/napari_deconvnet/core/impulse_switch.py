"""Impulses before a blind denoiser: replaced by a switching median first.

The blind denoisers were trained on Gaussian and Poisson-Gaussian noise. An
image that also holds impulses (pixels set to the image's minimum or
maximum: dead and saturated pixels, transmission errors, salt-and-pepper)
went through them almost untouched: Gaussian noise of 0.02 plus 5% impulses
on the camera photo, 17.5 dB in, 17.8 dB out, where a 3x3 median gives
30.1. The salt-and-pepper model removes the impulses but keeps every other
pixel as it is, Gaussian noise included.

So restore first asks whether a central crop of one image holds impulses
(:func:`holds_impulses`): salt-and-pepper as
:func:`~napari_deconvnet.estimate_noise` calls it (at least 0.2% of its
pixels are at an extreme where their neighbours are not: the zeros of low
photon counts and clipped noise do not count), or a camera's few hot or
dead pixels (from 0.01%, when they are isolated). If so it replaces those
pixels by :func:`~napari_deconvnet.denoise_switching_median` (the median of
their non-impulse neighbours in the smallest window of 3x3 to 7x7 that has
any) before the network sees the image: 35.5 dB on that photo. Only
extreme pixels that stand out from their neighbours are impulses
(:func:`impulse_mask`): the zeros of a background clipped at 0 are data.
Every other pixel is left as it is. The impulse values are the whole input's minimum
and maximum (:func:`~napari_deconvnet.core.kinds.impulse_values`), so that
eager, lazy, streamed and cluster restores agree: the filter needs only
:data:`IMPULSE_MARGIN` pixels of context (beyond what a model's classical
channel needs).

The blind denoisers, the deconvolution models and the noise-conditioned one
get the switch (:func:`switch_by_default`); their Richardson-Lucy, Wiener or
noise channels are computed from the switched image.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import optional_flag
from .kinds import (
    NoiseConditioned,
    Plain,
    PSFConditioned,
    central_box,
    impulse_values,
    kind_of,
)

__all__ = [
    "FEW_IMPULSES",
    "IMPULSE_LARGEST",
    "ISOLATED_RATIO",
    "IMPULSE_MARGIN",
    "detect_impulses",
    "probed_images",
    "find_impulses",
    "holds_impulses",
    "impulse_mask",
    "switch_applies",
    "switch_by_default",
    "switchable",
    "switch_impulses",
    "switch_impulses_lazy",
]

#: Largest window of the switching median (odd)
IMPULSE_LARGEST = 7
#: An extreme pixel is an impulse when its 8 neighbours' median is this share of the
#: range away from it: the zeros of a background clipped at 0 are not
STANDS_OUT = 0.1
#: Context a block needs around it for the switch to be exact (the window, and the
#: neighbours that decide whether a pixel in it is an impulse)
IMPULSE_MARGIN = IMPULSE_LARGEST // 2 + 1
#: Isolated extreme pixels (hot, dead) are switched from this share of the pixels on ...
FEW_IMPULSES = 1e-4
#: ... when the pixels the switch would replace are at most this many times as many
ISOLATED_RATIO = 2.0
#: The crop (per spatial axis) the impulses are looked for in
DETECT_CROP = {2: (512, 512), 3: (24, 192, 192)}


def switchable(metadata: Any, in_channels: int) -> bool:
    """Whether models of this metadata can have impulses replaced before them.

    One-channel plain denoisers, deconvolution (PSF-conditioned) and
    noise-conditioned models: their input channels are computed from the
    switched image. Not the salt-and-pepper model, which handles impulses
    itself, nor multi-channel plain models.
    """
    kind = type(kind_of(metadata))
    return (kind is Plain and in_channels == 1) or kind in (PSFConditioned, NoiseConditioned)


def switch_by_default(metadata: Any, in_channels: int) -> bool:
    """Whether restores with models of this metadata look for impulses automatically.

    The shipped blind denoisers (those the light-noise guard is on for,
    :func:`~.light_noise.guarded_by_default`), and every deconvolution and
    noise-conditioned model: a Richardson-Lucy or Wiener channel turns an
    impulse into a bright artefact the network then keeps (0.5% of impulses
    on a blurred cells scene through ``deconv-2d``: 26.05 dB, and 35.60 with
    them replaced, where the scene without impulses gives 35.62;
    ``benchmarks/mixed_noise.py --hot``).
    """
    from .light_noise import guarded_by_default

    metadata = metadata or {}
    if guarded_by_default(metadata, in_channels):
        return True
    return type(kind_of(metadata)) in (PSFConditioned, NoiseConditioned)


def switch_applies(net: Any, requested: bool | None) -> bool:
    """Whether a restore with `net` looks for impulses (``requested`` None: automatic).

    Automatically where :func:`switch_by_default` says so; ``True`` asks for
    it with any other model :func:`switchable` allows (a one-channel plain
    denoiser of your own, say).
    """
    requested = optional_flag(requested, "impulse_switch")
    if requested is False:
        return False
    metadata = getattr(net, "metadata", {}) or {}
    in_channels = net.config.in_channels
    if requested is True:
        if not switchable(metadata, in_channels):
            raise ValueError(
                "impulse_switch=True needs a one-channel denoiser without conditioning (the "
                "plain kind), a deconvolution or a noise-conditioned model; this model is "
                f"{kind_of(metadata).name!r} with {in_channels} input channels (the "
                "salt-and-pepper model handles impulses itself)"
            )
        return True
    return switch_by_default(metadata, in_channels)


def detect_impulses(xt: Any, n_lead: int, ndim: int) -> dict[str, float] | None:
    """The impulse values when a crop of the transposed input `xt` holds salt-and-pepper.

    Parameters
    ----------
    xt : ndarray or dask array
        The input in the restore's transposed layout: `n_lead` batch and
        channel axes, then `ndim` spatial axes.

    Returns
    -------
    dict or None
        ``{"minimum": lo, "maximum": hi}`` of the whole input, or None when
        no probed image's central crop (:data:`DETECT_CROP`) holds impulses
        by :func:`holds_impulses`. The images probed are the middle one and,
        in a stack, up to :data:`PROBED_IMAGES` in all spread evenly over it
        (:func:`probed_images`): a time-lapse whose middle frame is clean but
        whose other frames hold impulses (hot pixels that come and go, a
        glitch) used to keep them, and lost 10.7 dB on those frames.
    """
    lead = tuple(int(n) for n in xt.shape[:n_lead])
    for index in probed_images(lead):
        image = xt[index]
        crop = image[central_box(image.shape, DETECT_CROP[ndim])]
        if hasattr(crop, "compute"):
            crop = crop.compute()
        crop = np.asarray(crop, np.float64)
        if min(crop.shape[-2:]) < 16:
            return None
        try:
            found = holds_impulses(crop)
        except (ValueError, TypeError):
            continue
        if found:
            return impulse_values(xt)
    return None


#: Most images of a stack whose central crops :func:`detect_impulses` looks at
PROBED_IMAGES = 8


def probed_images(lead: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Indices along the batch axes `lead` of the images :func:`detect_impulses`
    probes: the middle one first, then up to :data:`PROBED_IMAGES` in all,
    evenly spaced over the stack (its first and last included)."""
    middle = tuple(n // 2 for n in lead)
    total = int(np.prod(lead)) if lead else 1
    if total <= 1:
        return [middle]
    flat = np.unique(np.linspace(0, total - 1, min(PROBED_IMAGES, total)).round().astype(int))
    others = [tuple(int(i) for i in np.unravel_index(k, lead)) for k in flat]
    return [middle] + [i for i in others if i != middle]


def holds_impulses(image: np.ndarray) -> bool:
    """Whether `image` (2D, or 3D for a 3D network) holds impulses worth replacing.

    Salt-and-pepper as :func:`~napari_deconvnet.estimate_noise` calls it (at
    least 0.2% of the pixels), or a few isolated extreme pixels: at least
    :data:`FEW_IMPULSES` of the pixels (and 10) found at an extreme far from
    their neighbours, where the pixels :func:`impulse_mask` would replace are
    no more than :data:`ISOLATED_RATIO` times as many. That is a camera's hot
    or dead pixels (0.03% of saturated hot pixels cost `denoise-2d` 9.5 dB).
    Clipped heavy noise also leaves a few such pixels (0.01-0.07% at sigma
    100/255), but there the mask would replace 15-25% of the image, which
    costs 7-9 dB: that is not switched.
    """
    from .noise_estimation import SP_MIN_FRACTION, SP_MIN_SHARE, count_impulses

    found = count_impulses(image, min_share=FEW_IMPULSES)
    if found["count"] == 0:
        return False
    if found["amount"] >= SP_MIN_FRACTION and found["count"] >= SP_MIN_SHARE * image.size:
        return True  # salt-and-pepper, as estimate_noise says
    values = {"minimum": found["low"], "maximum": found["high"]}
    replaced = int(impulse_mask(image, values).sum())
    return replaced <= ISOLATED_RATIO * found["count"]


def find_impulses(net: Any, layout: Any, xt: Any, requested: bool | None) -> dict | None:
    """The impulse values a restore with `net` replaces in `xt`, or None.

    `xt` is the input in the restore's transposed layout (`layout`); None
    when the switch does not apply (:func:`switch_applies`) or no
    salt-and-pepper is found (:func:`detect_impulses`). The one decision
    that eager, lazy and streamed restores share.
    """
    if not switch_applies(net, requested):
        return None
    return detect_impulses(xt, layout.n_batch_axes + layout.has_channel, net.config.ndim)


def impulse_mask(image: np.ndarray, values: dict[str, float]) -> np.ndarray:
    """The impulses of one image: extreme pixels whose neighbours are not near that extreme.

    A pixel at the minimum (maximum) whose 8 (26 in 3D) neighbours' median
    is more than :data:`STANDS_OUT` of the range above (below) it. Pixels at
    an extreme among neighbours there (a background clipped at 0, a
    saturated region) are data, and stay.
    """
    from scipy import ndimage

    from .noise_estimation import ring_ranks

    lo, hi = values["minimum"], values["maximum"]
    if image.ndim == 2:  # the 8 neighbours' median, as the impulse count takes it
        median = ring_ranks(np.asarray(image)[None], (4,))[0][0]
    else:
        ring = np.ones((3,) * image.ndim, bool)
        ring[(1,) * image.ndim] = False
        median = ndimage.median_filter(image, footprint=ring, mode="reflect")
    gap = STANDS_OUT * (hi - lo)
    return ((image <= lo) & (median > lo + gap)) | ((image >= hi) & (median < hi - gap))


def switch_impulses(x: np.ndarray, values: dict[str, float], ndim: int) -> np.ndarray:
    """`x` (any leading axes, then `ndim` spatial ones) with its impulses replaced; float32.

    The impulses (:func:`impulse_mask`) take the median of their clean
    neighbours (:func:`~napari_deconvnet.denoise_switching_median`); every
    other pixel is returned as it is.
    """
    from .denoisers import denoise_switching_median

    x = np.asarray(x)
    images = x.reshape(-1, *x.shape[x.ndim - ndim :])
    out = np.empty(images.shape, np.float32)
    for i, image in enumerate(images):
        image = image.astype(np.float32)
        out[i] = denoise_switching_median(
            image,
            values["minimum"],
            values["maximum"],
            largest=IMPULSE_LARGEST,
            mask=impulse_mask(image, values),
        )
    return out.reshape(x.shape)


def switch_impulses_lazy(xt: Any, values: dict[str, float], ndim: int) -> Any:
    """:func:`switch_impulses` of a dask array, chunk by chunk with the context it needs.

    Exact: each chunk is read with :data:`IMPULSE_MARGIN` pixels of its
    neighbours; at the image's borders the filter reflects the image as the
    in-memory one does. An array in memory is filtered at once.
    """
    if not hasattr(xt, "map_overlap"):
        return switch_impulses(xt, values, ndim)
    depth = {d: (IMPULSE_MARGIN if d >= xt.ndim - ndim else 0) for d in range(xt.ndim)}
    # chunks at least as large as the context (dask's overlap needs it)
    small = {
        d: max(IMPULSE_MARGIN + 1, min(xt.chunks[d]))
        for d in range(xt.ndim - ndim, xt.ndim)
        if min(xt.chunks[d]) <= IMPULSE_MARGIN and xt.shape[d] > IMPULSE_MARGIN
    }
    if small:
        xt = xt.rechunk({d: max(c, 64) for d, c in small.items()})
    return xt.map_overlap(
        switch_impulses,
        depth=depth,
        boundary="none",
        dtype=np.float32,
        values=values,
        ndim=ndim,
    )
