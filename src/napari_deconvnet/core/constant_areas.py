"""Areas of one exact value (zero padding, masks, clipping) are no image.

A stitched mosaic with zero fill, an image registered or rotated onto a
larger canvas, a masked image: the boundary between the data and such an
area is a step that no optics made. A deconvolution network read it as a
blurred edge and sharpened it, ringing into the data beside it (`deconv-2d`
on a camera crop beside 60% zero padding: 23.57 dB where the crop alone gave
28.16, the middle of the crop unchanged). Restore now fills every exactly
constant area (:func:`~.noise_estimation.live_pixels`: windows of 18x18
pixels of one value, which no noise leaves) with the nearest data pixel
before the network runs, as an image's own border is extended, and puts
the constant back afterwards: the data is restored as if alone. The
salt-and-pepper model needs it too: zero padding below the image's darkest
pixel became the "pepper" value, so the real impulses were not found
(23.84 dB for 42.05 alone).

An area whose value the data itself often takes (at least
:data:`NATURAL_SHARE` of the other pixels) is background, not padding: a
photon counter's exact zeros between sparse beads are left as they are (filled,
they cost `deconv-2d` up to 0.55 dB there).

Only for the kinds that set ``fills_constant_areas`` (the impulse model and
deconvolution models without a Wiener channel, whose balance the filled
streaks would make read the noise low: `deconv-3d` 33.11 dB unfilled, 14.62
filled): a plain denoiser restores the data beside padding as
alone already (28.96 dB for 28.99), and the filled streaks of repeated
noisy values would only disturb its statistics (28.38).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["NATURAL_SHARE", "fill_constant_areas", "padding_mask", "restore_filled"]

#: A constant area's value that at least this share of the data's own pixels
#: take too is background (photon counts' zeros), not padding, and is not filled
NATURAL_SHARE = 0.005


def padding_mask(xt: Any) -> np.ndarray | None:
    """The pixels of `xt` in areas of one exact value that is not the data's own, or None.

    :func:`~.noise_estimation.live_pixels` finds the constant areas (planes of
    the two last axes); a value that at least :data:`NATURAL_SHARE` of the
    other pixels take too is background and stays.
    """
    from .noise_estimation import live_pixels

    live = live_pixels(xt)
    if live is None:
        return None
    data = np.asarray(xt)
    dead = ~live
    for value in np.unique(data[dead])[:16]:
        # a value the data itself often takes (a photon counter's zero between sparse
        # beads) is background, not padding: its areas are left as they are
        if np.count_nonzero(data[live] == value) >= NATURAL_SHARE * np.count_nonzero(live):
            dead &= data != value
    return dead if dead.any() else None


def fill_constant_areas(xt: np.ndarray, ndim: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(filled, dead)``: `xt` with its padding filled, and the padding's mask; or None.

    `xt` is ``(..., *spatial)`` with `ndim` spatial axes (each image along
    the leading axes filled from its own data, from the nearest pixel);
    `dead` (:func:`padding_mask`) marks the filled pixels, whose values the
    restore gives back unchanged. None when `xt` has no such area (nothing
    is copied).
    """
    from scipy import ndimage

    dead = padding_mask(xt)
    if dead is None:
        return None
    filled = np.array(xt, dtype=np.float32, copy=True)
    images = filled.reshape(-1, *filled.shape[filled.ndim - ndim :])
    alive = (~dead).reshape(images.shape)
    for image, keep in zip(images, alive, strict=True):
        if keep.all() or not keep.any():
            continue
        nearest = ndimage.distance_transform_edt(
            ~keep, return_distances=False, return_indices=True
        )
        image[...] = image[tuple(nearest)]
    return filled, dead


def restore_filled(out: Any, original: np.ndarray, dead: np.ndarray) -> Any:
    """Put the constant areas' own values back into the restored `out` (in place)."""
    out[dead] = original[dead]
    return out
