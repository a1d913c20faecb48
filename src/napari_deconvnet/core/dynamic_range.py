"""A dim scene beside a few very bright objects: restored in two intensity ranges.

Fluorescence images often hold a handful of beads, a dividing cell or a
speck of debris tens to hundreds of times brighter than everything else.
Normalised by its 0.5th and 99.5th percentiles (the models' contract), such
an image puts its scene in the bottom hundredth of the network's range and
the objects at 1 and above. The networks were trained on scenes that fill
the range; at a hundredth of it their small errors (a bias, a rounding) are
the scene's whole signal, and the scene comes back far worse than the same
scene alone: measured with the shipped models and objects 100 times
brighter (``benchmarks/bright_objects.py``), 6 to 12 dB worse in 2D and 14
to 19 dB in 3D, where ``deconv-3d`` fell 10 dB below plain Richardson-Lucy.
No training gives a network the precision of a part in 10⁴ of its range
that the scene would need.

So :func:`restore <napari_deconvnet.restore>` finds such images
(:func:`scene_range`), estimates the objects (a denoiser: its restore with
the objects' peak at 1; a deconvolution model: Richardson-Lucy), and
restores the image without them with the scene's own statistics
(:func:`split_objects`: the estimate above the scene's range, blurred by
the PSF for a deconvolution model, subtracted from the image). The result
is that restoration plus the objects. Images
without such objects (no bright part covering at most
:data:`MAX_OBJECT_SHARE` of them and about ``2 * CONTRAST`` times
brighter than the scene's top) are restored once, exactly as before.

Each image the network restores decides on its own: a stack in which some
image holds such objects is restored image by image, each exactly as alone
(:func:`~napari_deconvnet.core.restoration.images_with_objects`).

For one-channel plain denoisers and deconvolution models without fixed
statistics (``normalization=``, the user's choice), in memory and for dask
arrays small enough to search whole (:data:`~.lazy.LAZY_SCENE_LIMIT`: the
eager restore as one task); larger lazy arrays and streamed restores run
one pass block by block, since each block would decide on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from .normalization import percentiles

__all__ = ["CONTRAST", "MAX_OBJECT_SHARE", "SceneRange", "scene_range", "split_objects"]

#: The level that separates the objects from the scene is their peak over this
#: (above the image's 0.5th percentile), and the scene's top (its 99.5th
#: percentile) must stay below half of it: objects about 8 and more times
#: brighter than the scene's top. Chosen on benchmarks/bright_objects.py's
#: scenes (at 10 times, one pass spoiled the scene by 0.1-3.6 dB), after
#: checking that no test image of the quality benchmark and no photo of
#: scikit-image (σ 5 and 25/255) is taken for one.
CONTRAST = 4.0
#: At most this share of the image may lie above that level:
#: a larger bright part is the scene itself, which the percentiles serve.
MAX_OBJECT_SHARE = 0.05
#: The objects' estimate above this multiple of the scene's range (over its
#: offset) is the objects (:func:`split_objects`).
CLIP = 1.5
#: The rest of the image (:func:`split_objects`) is clipped at this multiple of
#: the scene's range: what the subtraction leaves of the objects.
REST_CLIP = 3.0
#: The scene is measured this many pixels away from the objects (their flanks).
FLANK = 4
#: Rounds that leave out the objects' fainter flanks from the scene's range
#: (:func:`scene_range`).
REFINE = 3
#: Richardson-Lucy iterations that estimate the objects of a deconvolution
#: model's image (:func:`split_objects`; 100 rather than 30: 0.8 and 1.6 dB
#: more of the scene around objects 100 and 300 times brighter, ``deconv-3d``).
RL_ITERATIONS = 100
#: Most values sampled for the percentiles (a regular stride through the image).
SAMPLE = 1 << 18


@dataclass(frozen=True)
class SceneRange:
    """The scene's statistics under bright objects, in the image's units."""

    #: the image's 0.5th percentile (the models' offset)
    offset: float
    #: the scene's 99.5th percentile above `offset` (its scale)
    scale: float
    #: the objects' peak above `offset` (after a grey opening of 3 pixels)
    peak: float
    #: the share of the image above the level that separates objects and scene
    share: float

    @property
    def clip(self) -> float:
        """The level above which the first pass's output counts as the objects."""
        return self.offset + CLIP * self.scale

    def normalization(self) -> dict[str, float]:
        """The fixed statistics of the scene's pass: the scene spans [0, 1]."""
        return {"offset": self.offset, "scale": self.scale}

    def objects_normalization(self) -> dict[str, float]:
        """The fixed statistics of the objects' pass: the objects' peak at 1."""
        return {"offset": self.offset, "scale": self.peak}


def _percentile(values: np.ndarray, q: float) -> float:
    """The models' percentile (:func:`~.normalization.percentiles`: photon counts
    dequantised), so that the scene's pass is normalised as the scene alone would be."""
    return percentiles(values, [q])[0] if values.size else 0.0


def scene_range(images: np.ndarray, ndim: int) -> SceneRange | None:
    """The scene's range when `images` hold a few objects far brighter than the rest.

    Parameters
    ----------
    images : ndarray
        ``(N, *spatial)``: every plane or volume the model will restore, in
        the image's units (one channel).
    ndim : int
        Spatial dimensions of the model (2 or 3).

    Returns
    -------
    SceneRange or None
        None unless, after a grey opening over 3 pixels per axis (a lone
        hot pixel does not count, noise little), the part of the image above
        the brightest value over :data:`CONTRAST` covers at most
        :data:`MAX_OBJECT_SHARE` of it, and the rest (more than :data:`FLANK`
        pixels from it) has its 99.5th percentile below half that level (all
        above the image's 0.5th percentile).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> scene = rng.uniform(0.2, 1.0, (64, 64))
    >>> scene_range(scene[None], 2) is None
    True
    >>> scene[30:33, 30:33] = 100.0  # a bright bead
    >>> r = scene_range(scene[None], 2)
    >>> bool(0.7 < r.scale < 0.85), bool(r.peak > 50)
    (True, True)
    """
    x = np.asarray(images, np.float32)
    if x.size == 0 or x.ndim != ndim + 1:
        return None
    stride = max(1, int(np.ceil(x.size / SAMPLE)))
    offset, ninetieth = percentiles(x.reshape(-1)[::stride], [0.5, 90])
    # cheap first: objects 2 * CONTRAST times above the scene's top need a raw
    # maximum that far above the scene's bulk (its 90th percentile); most images stop here
    if float(x.max()) - offset < 2 * CONTRAST * (ninetieth - offset):
        return None
    # a grey opening over 3 pixels per axis: a lone hot pixel is no object (a bead
    # blurred by any PSF is wider), and noise counts less
    box = (1,) + (3,) * ndim
    eroded = ndimage.minimum_filter(x - np.float32(offset), size=box)
    peak = float(eroded.max())
    if not np.isfinite(peak) or peak <= 0:
        return None
    level = peak / CONTRAST  # separates the objects from the scene
    opened = ndimage.maximum_filter(eroded, size=box)
    share = float(np.count_nonzero(opened > level)) / opened.size
    if share == 0 or share > MAX_OBJECT_SHARE:
        return None
    # the scene: away from the objects' flanks (a box of FLANK pixels around them)
    wide = (1,) + (2 * FLANK + 3,) * ndim
    reach = ndimage.maximum_filter(eroded, size=wide)
    top = _scene_top(x - np.float32(offset), reach > level)
    if top <= 0 or top > 0.5 * level:  # no gap: the scene reaches up to the objects
        return None
    # flanks below that level but above the scene (a PSF long along Z, objects
    # hundreds of times brighter) would still widen the scene's range: leave out
    # what stands above twice its top, until the top settles
    for _ in range(REFINE):
        lower = _scene_top(x - np.float32(offset), reach > 2 * top)
        if lower <= 0 or lower >= 0.99 * top:
            break
        top = lower
    return SceneRange(offset=offset, scale=top, peak=peak, share=share)


def _scene_top(values: np.ndarray, near: np.ndarray) -> float:
    """The 99.5th percentile of `values` away from `near` (sampled)."""
    scene = values[~near]
    return _percentile(scene[:: max(1, int(np.ceil(scene.size / SAMPLE)))], 99.5)


def split_objects(
    image: np.ndarray,
    first: np.ndarray | None,
    r: SceneRange,
    psf: np.ndarray | None,
    layout: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """``(objects, rest)``: the bright objects, and the image without them.

    `objects` is what lies above :attr:`SceneRange.clip` (in the image's
    units; zero elsewhere) in an estimate of the sharp image, and `rest`
    the image without the objects, clipped at :data:`REST_CLIP` times the
    scene's range above its offset against what the subtraction leaves of
    them. The scene's pass restores `rest`, and the result is that
    restoration plus `objects`: where the objects are, their estimate (the
    rest comes back at about the clip level); around them, the scene
    restored in its own range.

    For a denoiser (no `psf`) the estimate is `first`, the network's restore
    with the objects in its range, and the objects are subtracted as they
    are. For a deconvolution model what is subtracted must be the objects as
    the image shows them, blurred, and a network's sharp estimate of an
    object a hundred times brighter than the scene, blurred again, can miss
    the image's own by more than the scene is worth; so the estimate is
    :data:`RL_ITERATIONS` Richardson-Lucy iterations of the image, fitted to
    it and, on bright sparse objects, sharper than the networks (measured
    at 100 times brighter: 21.5 dB on the objects' pixels against
    ``deconv-3d``'s 17.5, 33.2 against ``deconv-2d``'s 30.5), blurred by
    the PSF for the subtraction (`first` is not used).

    `layout` (:class:`~napari_deconvnet.core.axes.Layout`) says which axes of
    `image` are the model's spatial axes (the PSF acts along those).
    """
    from .classical import richardson_lucy
    from .psf import blur

    x = np.asarray(image, np.float32)
    clip = np.float32(r.clip)
    if psf is None:
        objects = np.asarray(first, np.float32) - clip
        np.maximum(objects, 0, out=objects)
        seen = objects
    else:  # plane by plane or volume by volume along the model's axes
        planes = x.transpose(layout.perm).reshape(-1, *layout.spatial_shape)
        low = np.float32(planes.min())
        fitted = richardson_lucy(planes - low, psf, RL_ITERATIONS, device="cpu") + low
        fitted -= clip
        np.maximum(fitted, 0, out=fitted)
        seen = blur(fitted, psf).reshape(layout.transposed_shape).transpose(layout.inverse)
        objects = np.ascontiguousarray(
            fitted.reshape(layout.transposed_shape).transpose(layout.inverse)
        )
    rest = x - seen
    np.minimum(rest, np.float32(r.offset + REST_CLIP * r.scale), out=rest)
    return objects, rest
