"""Nearly clean images through blind denoisers: blend with the input by Stein's risk.

A blind denoiser estimates the noise from the image it sees. Trained on
noise of 5/255 and more, it takes fine texture on a nearly clean image for
noise and smooths it away: the shipped ``denoise-2d`` turned the camera photo
with Gaussian noise of 1/255 (48.1 dB) into 36.4 dB, and ``denoise-3d`` a
nuclei volume at 48.1 dB into 36.3 dB. Doing nothing would have been better.

The guard: when the estimated noise is light (a standard deviation below
:data:`LIGHT_NOISE` of the normalisation range), the result is
``y + w (f(y) - y)``, the input moved toward the network's output ``f(y)`` by
the weight ``w`` in [0, 1] that minimises Stein's unbiased estimate of the
mean squared error (SURE, :mod:`~napari_deconvnet.core.sure`):

.. math::

    w^* = \\frac{\\sum_i v_i - \\sum_i v_i\\,\\partial f_i / \\partial y_i}
               {\\lVert f(y) - y \\rVert^2}

with ``v_i`` the noise variance at pixel ``i`` (the variance line that
:func:`~napari_deconvnet.estimate_noise` fits, or the constant, linear or
quadratic law measured where the restoration is flat, whichever is smaller:
texture inflates both; a quadratic law, multiplicative noise such as
speckle, is kept without the line, which cannot describe it; then lowered
to what the image's weakest-textured windows show, :func:`_capped`, since
both count fine texture as noise) and the
divergence estimated by one Rademacher probe (Monte-Carlo SURE). A good
denoiser keeps ``w`` near 1 (its residual is the noise); one that removes
detail gets a small ``w``. ``w`` is computed for each image of the input
(each frame of a stack, as alone) on at most :data:`GUARD_CROP` pixels
(:func:`guard_boxes`: the image, or four crops spread over it), so eager,
tiled, lazy, streamed and cluster restores agree; noisy images (the estimate above the threshold,
or, for noise that grows with the intensity, above :data:`TOP_NOISE` at the
top of the range) skip it at no cost beyond the noise estimate. Mostly dark
images (:func:`mostly_dark`: half the pixels or more in black 3 x 3
neighbourhoods at the image's floor, as photon counts of spots on black are,
with bright pixels clear of the noise) are judged at any noise level:
there the network smooths sub-pixel spots into the dark, and the blend keeps
the counts where they are better (2026-12-06).

The output measured is the restore's own: the network over each box with
the image's context around it (reflected at the image's borders), as the
tiles compute it (:func:`~.tiling.run_tiles`; the boxes start on the
network's grid), in the restore's precision. An eager restore hands that
output over (``restored=``), so the guard adds no network pass of its own
unless the noise is light (then one pass and its gradient for the
divergence, computed the same way, with respect to the image's pixels); a
lazy one computes it for the boxes itself.

Only for the blind one-channel denoisers it is valid for: the shipped
``denoise-2d`` and ``denoise-3d`` (and models whose metadata says
``"light_noise_guard": true``), and only for noise that is white: a model
trained on correlated noise must not be judged by a white-noise risk.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ._validation import optional_flag
from .devices import inference_autocast
from .kinds import Plain, central_box, kind_of
from .sure import weighted_divergence
from .tiling import reflected_window

__all__ = [
    "CAP_BELOW",
    "DARK_PEAK_SNR",
    "DARK_SHARE",
    "GUARD_CROP",
    "LIGHT_NOISE",
    "TOP_NOISE",
    "WEAK_TEXTURE_MARGIN",
    "guard_applies",
    "guard_boxes",
    "guard_noise",
    "guard_weight",
    "guard_windows",
    "mostly_dark",
    "guarded_by_default",
    "WindowedImage",
]

#: Noise standard deviations below this share of the normalisation range are light
#: (the shipped denoisers were trained from 5/255; at 10/255 SURE's weight is ~0.97)
LIGHT_NOISE = 8.0 / 255
#: ... and, for noise growing with the intensity, below this at the top of the range
#: (Poisson noise of 1,000 photons: 8/255 there)
TOP_NOISE = 2 * LIGHT_NOISE
#: The crop (per spatial axis, 2D and 3D) on which the weight is measured
GUARD_CROP = {2: (384, 384), 3: (24, 128, 128)}
#: Models the guard is on for by default (blind white-noise denoisers)
GUARDED_MODELS = ("denoise-2d", "denoise-3d")


def _plain(metadata: Any, in_channels: Any) -> bool:
    return type(kind_of(metadata or {})) is Plain and in_channels == 1


def guarded_by_default(metadata: Any, in_channels: Any) -> bool:
    """Whether restores with a model of this metadata blend at light noise by default.

    The shipped blind denoisers (:data:`GUARDED_MODELS`), and one-channel
    plain models whose metadata says ``"light_noise_guard": true``.
    """
    metadata = metadata or {}
    if not _plain(metadata, in_channels):
        return False
    opted = metadata.get("light_noise_guard")
    if opted is not None:
        return bool(opted)
    return metadata.get("name") in GUARDED_MODELS


def guard_noise(requested: Any) -> dict[str, Any] | None:
    """The noise a restore's ``light_noise_guard`` describes, or None (True, False, None).

    ``light_noise_guard`` may be the image's noise, as
    :func:`~.noise_estimation.estimate_noise` returns it (``{"noise":
    "gaussian", "sigma": ...}``, ``"poisson"`` with ``gain``,
    ``"poisson-gaussian"`` with ``gain``, ``offset``, ``read_noise``; the
    image's units): the guard is then on, and judges the network's correction
    with that noise instead of measuring it. Known noise (a calibrated camera)
    is what a texture that fills the whole image needs: both measurements read
    fine texture as noise there (a dense texture phantom at 10^5 photons, noise
    0.06 % of its range, read 4.8 %, and the network removed the texture).

    Raises
    ------
    TypeError, ValueError
        Anything but None, a bool or such a description (the variance must
        be a line in the intensity: Gaussian, Poisson, Poisson-Gaussian).
    """
    if requested is None or isinstance(requested, (bool, np.bool_)):
        return None
    if not isinstance(requested, dict):
        raise TypeError(
            "light_noise_guard must be None (automatic), True, False or the image's noise "
            "as estimate_noise returns it (a dict such as {'noise': 'poisson', 'gain': 1.0}), "
            f"got {requested!r}"
        )
    from .noise_estimation import variance_line

    try:
        variance_line(requested)
    except (TypeError, ValueError) as err:
        raise ValueError(f"light_noise_guard: {err}") from None
    return dict(requested)


def guard_applies(net: Any, requested: Any) -> bool:
    """Whether a restore with `net` blends at light noise (``requested`` None: automatic;
    a noise description, :func:`guard_noise`: on)."""
    if guard_noise(requested) is not None:
        requested = True
    requested = optional_flag(requested, "light_noise_guard")
    if requested is False:
        return False
    metadata = getattr(net, "metadata", {}) or {}
    if requested is True:
        if not _plain(metadata, net.config.in_channels):
            raise ValueError(
                "light_noise_guard=True needs a one-channel denoiser without conditioning "
                f"(the plain kind); this model is {kind_of(metadata).name!r} with "
                f"{net.config.in_channels} input channels"
            )
        return True
    return guarded_by_default(metadata, net.config.in_channels)


def _line(crop: np.ndarray) -> np.ndarray | None:
    """The variance line :func:`~.noise_estimation.estimate_noise` fits, at each pixel."""
    from .noise_estimation import estimate_noise, variance_line

    try:
        a, b = variance_line(estimate_noise(crop, impulses=False))
    except (ValueError, TypeError):
        return None
    return a * crop + b


def _clearly_noisy(line: np.ndarray | None, scale: float) -> bool:
    """Whether :func:`_variance` must find noise above :data:`LIGHT_NOISE`, whatever
    the restoration, so that the network need not run.

    Every variance it may keep has a mean of at least a quarter of the line's
    (the guided one is dropped below that, and clipping at zero only raises a
    mean), so a line whose quarter is above the threshold decides it: noise
    from about twice the threshold on. An exact shortcut for the usual noisy
    image.
    """
    if line is None:
        return False
    mean = float(np.mean(line))
    return math.isfinite(mean) and mean > 0 and math.sqrt(0.25 * mean) / scale >= LIGHT_NOISE


def _variance(
    crop: np.ndarray, restored: np.ndarray, line: np.ndarray | None
) -> tuple[np.ndarray, Any] | None:
    """Per-pixel noise variance of `crop` (its units), or None when none can be measured.

    Two measurements: the variance line :func:`~.noise_estimation.estimate_noise`
    fits to the noisy crop, and the power law measured where the restoration
    is flat (:func:`~.sure.variance_power_guided`: constant, linear or, for
    multiplicative noise such as speckle, quadratic in the intensity). Texture
    inflates both, so for noise that is a line in the intensity the smaller
    is kept; a quadratic one cannot be a line, so the line does not compete
    (it underestimated speckle of 10% by 3-4 times at the bright end and the
    blend kept most of the noise). The guided one is dropped when below a
    quarter of the line: discrete low counts zero its medians. Returns the
    variance and the guided law ``(c, p, d)`` when that is the one kept.
    `line` is :func:`_line` of `crop` (None where no line could be fitted).
    """
    from .sure import variance_power_guided

    candidates = []
    law = None
    try:
        law = variance_power_guided(crop, restored)
        c, power, d = law
        guided = c * np.maximum(restored, 0.0) ** power + d
        if line is None or float(np.mean(guided)) >= 0.25 * float(np.mean(line)):
            candidates.append((guided, law))
    except ValueError:
        pass
    if line is not None and (law is None or law[1] <= 1 or not candidates):
        candidates.append((line, None))
    candidates = [
        v for v in candidates if math.isfinite(float(np.mean(v[0]))) and np.mean(v[0]) > 0
    ]
    if not candidates:
        return None
    v, law = min(candidates, key=lambda v: float(np.mean(v[0])))
    return np.maximum(v, 0.0), law


#: How far above the weak-texture estimate the kept variance may stay (a variance
#: ratio): that estimate reads pure noise up to 5% low on a few thousand windows
WEAK_TEXTURE_MARGIN = 1.25
#: The weak-texture cap is measured only below this multiple of :data:`LIGHT_NOISE`
#: (a standard deviation): above it, only texture worth four times the noise's
#: variance could bring the noise under the threshold, and the photos at sigma
#: 15/255 near there skip the cap's 0.05-0.1 s per restore
CAP_BELOW = 2.0


def _capped(planes: np.ndarray, variance: np.ndarray, law: Any) -> tuple[np.ndarray, Any]:
    """`variance` (and the guided `law`, scaled alike) lowered to what the weakest-textured
    windows of `planes` show, with :data:`WEAK_TEXTURE_MARGIN`.

    Both measurements of :func:`_variance` count fine texture as noise, and on
    a nearly clean photo texture is most of what they see: the coins photo
    with noise of 1 grey level read as 3.9, and the blend kept 87% of a
    network output that had removed the coins' relief (40.9 dB from 47.8).
    :func:`~.noise_estimation.weak_texture_noise` measures the noise on the
    windows whose texture noise alone could explain; where the kept variance
    averages more over those same windows, it is scaled down to match. It
    only lowers the variance: where no such windows exist, nothing changes.
    """
    from .noise_estimation import WEAK_TEXTURE_PATCH, _box_sums, weak_texture_noise

    found = weak_texture_noise(planes)
    if found is None:
        return variance, law
    side = WEAK_TEXTURE_PATCH
    window_means = _box_sums(variance.reshape(planes.shape), side, side) / side**2
    predicted = float(window_means[found["where"]].mean())
    if not predicted > 0:
        return variance, law
    ratio = WEAK_TEXTURE_MARGIN * found["variance"] / predicted
    if ratio >= 1:
        return variance, law
    if law is not None:
        c, power, d = law
        law = (c * ratio, power, d * ratio)
    return variance * ratio, law


def guard_boxes(shape: Any, crop: Any, grid: int = 1) -> list[tuple[slice, ...]]:
    """Where the weight is measured: the image itself, or four crops spread over it.

    An image within `crop` (per spatial axis) is one box. A larger one gets
    four boxes of half the crop along the last two axes (the central `crop`
    along a leading Z axis), each centred in one quadrant of the image: the
    same number of pixels as the central crop, from all of the image, so
    that a large image whose structures lie away from its middle (a slide
    with cells in one corner) is not judged by an empty centre. Each box
    starts on a multiple of `grid` (the network's ``2**depth`` grid, as the
    restore's tiles do), so that the restore's output there is what the
    network computes for the box with its context.
    """
    shape = tuple(int(n) for n in shape)
    crop = tuple(int(c) for c in crop)

    def on_grid(box: tuple[slice, ...]) -> tuple[slice, ...]:
        starts = [b.start // grid * grid for b in box]
        return tuple(slice(a, a + b.stop - b.start) for a, b in zip(starts, box, strict=True))

    if all(n <= c for n, c in zip(shape[-2:], crop[-2:], strict=True)):
        return [on_grid(central_box(shape, crop))]
    lead = central_box(shape[:-2], crop[:-2])
    half = [max(1, min(n, c) // 2) for n, c in zip(shape[-2:], crop[-2:], strict=True)]
    boxes = []
    for qy in (0, 1):
        for qx in (0, 1):
            box = []
            for q, n, h in ((qy, shape[-2], half[0]), (qx, shape[-1], half[1])):
                centre = (2 * q + 1) * n // 4
                start = min(max(0, centre - h // 2), n - h)
                box.append(slice(start, start + h))
            boxes.append(on_grid((*lead, *box)))
    return boxes


#: An image with at least this share of its pixels in black neighbourhoods is
#: "mostly dark" (:func:`mostly_dark`): the guard judges it at any noise level.
DARK_SHARE = 0.5


def mostly_dark(flat: np.ndarray) -> bool:
    """Whether at least :data:`DARK_SHARE` of the pixels lie in black areas: each
    with its 3 x 3 neighbourhood (in its plane) exactly at the image's minimum.

    Photon counts of spots or filaments in the dark: most of the frame counts 0
    (or the camera's offset without read noise). A blind denoiser taught on dense
    scenes smooths sub-pixel spots there into their surround (1.1 dB under the
    counts themselves at 30 photons), and the noise is no guide: the image is
    noisy where it is bright and exact where it is dark. A dense scene at one or
    two photons also has most pixels at 0, but scattered among ones: its black
    neighbourhoods are rare, and the guard would cost it up to 1.2 dB there.
    Read noise, a background or a dense scene are judged as before.

    `flat` holds planes on its last two axes (one image, or a stack of them).
    """
    from scipy import ndimage

    if flat.size == 0:
        return False
    lit = flat > flat.min()
    if 1.0 - float(lit.mean()) < DARK_SHARE:
        # a black neighbourhood's pixel is at the floor itself: most noisy images
        # stop here, without the filter (every guarded restore asks)
        return False
    size = (1,) * (flat.ndim - 2) + (3, 3)
    black = ~ndimage.maximum_filter(lit, size=size, mode="nearest")
    return float(black.mean()) >= DARK_SHARE


#: A mostly dark image is judged at any noise level only where its bright pixels
#: stand at least this many noise deviations above the floor (16 photons and more
#: in photon counts): at one or two photons the blend by a Gaussian risk estimate
#: misjudges Poisson counts (general scenes at one photon lost 0.6 dB with it).
DARK_PEAK_SNR = 4.0


def _counts_clear(flat: np.ndarray, line: np.ndarray | None) -> bool:
    """Whether the bright pixels of `flat` (their 99th percentile) stand
    :data:`DARK_PEAK_SNR` noise deviations above its floor, by the variance `line`."""
    if line is None:
        return False
    floor = float(flat.min())
    lit = flat > floor
    if not lit.any():
        return False
    level = float(np.percentile(flat[lit], 99))
    variance = float(np.percentile(np.asarray(line)[lit], 99))
    return variance > 0 and (level - floor) / math.sqrt(variance) >= DARK_PEAK_SNR


def guard_weight(
    net: Any,
    image: Any,
    offset: float,
    scale: float,
    *,
    seed: int = 0,
    restored: Any = None,
    dtype: torch.dtype = torch.float32,
    noise: dict[str, Any] | None = None,
) -> float | None:
    """The SURE-optimal weight of the network's correction for one image, or None.

    Parameters
    ----------
    net : DeconvNet
        A one-channel denoiser.
    image : (*spatial) array
        One image (numpy or dask) in its own units; at most :data:`GUARD_CROP`
        pixels of it are read (:func:`guard_boxes`).
    offset, scale : float
        The restore's normalisation of this image.
    seed : int
        Seed of the Rademacher probe. The network runs on the device its
        weights are on.
    restored : (*spatial) array, optional
        The restore's network output for `image`, normalised (what
        :func:`~.tiling.run_tiles` gave for it), read at the boxes; computed
        here the same way (each box with its context) when not given.
    dtype : torch.dtype
        The restore's precision, for that output. The divergence runs in
        float32.
    noise : dict, optional
        The image's noise (:func:`guard_noise`), in its units: used as it is
        instead of the measured variance (neither measured nor capped).

    Returns
    -------
    float in [0, 1] or None
        None when the noise is not light (or cannot be measured): restore
        keeps the network's output as it is.
    """
    ndim = net.config.ndim
    # a DeconvNet is measured as the restore computes it: its output with the
    # image's own context (the restore's tiles); other denoisers by their plain pass
    ours = hasattr(net, "forward_center") and hasattr(net, "halo")
    boxes = guard_boxes(image.shape, GUARD_CROP[ndim], net.config.grid if ours else 1)
    crops = []
    for box in boxes:
        crop = image[box]
        if hasattr(crop, "compute"):
            crop = crop.compute()
        crops.append(np.asarray(crop, np.float64))
    crop = np.stack(crops)  # (n, *spatial): the same shape each
    if min(crop.shape[-2:]) < 16 or not (scale > 0):
        return None
    planes = (-1, *crop.shape[-2:])  # the noise is measured over all crops at once
    flat = crop.reshape(planes)
    if noise is None:
        line = _line(flat)
    else:  # the caller's noise: no measurement
        from .noise_estimation import variance_line

        a, b = variance_line(noise)
        line = a * flat + b
    # mostly dark (most pixels in black areas at the image's floor: photon counts of
    # sparse spots in the dark): judged at any noise level, where a denoiser taught on dense scenes
    # smooths sub-pixel spots into their dark surround (see DARK_SHARE)
    dark = mostly_dark(flat) and _counts_clear(flat, line)
    if not dark and _clearly_noisy(line, scale):
        return None  # whatever the network's output (see _clearly_noisy)
    dev = next(net.parameters(), torch.empty(0)).device  # where the weights are now
    # channels-last, as the restore's tiles run (core.tiling.run_tiles): the same
    # sums, about twice as fast on the CPU as the default layout
    fmt = torch.channels_last if ndim == 2 else torch.channels_last_3d
    x = torch.from_numpy(((crop - offset) / scale).astype(np.float32))[:, None]
    x = x.to(dev).contiguous(memory_format=fmt)
    was_training = net.training
    net.to(memory_format=fmt)
    net.eval()
    try:
        regions = None  # read when the network runs on the boxes (not for a handed-over output)
        if not ours:
            with torch.no_grad():
                restored = net(x).float()
        elif restored is not None:  # the eager restore's output, handed over
            parts = [np.asarray(restored[box], np.float32) for box in boxes]
            restored = torch.from_numpy(np.stack(parts))[:, None].to(dev)
        else:
            regions = _regions(net, image, boxes, offset, scale)
            with torch.inference_mode(), inference_autocast(dev, dtype):
                restored = _box_outputs(net, regions, boxes, dev).float()
        back = restored[:, 0].cpu().double().numpy() * scale + offset
        if noise is None:
            measured = _variance(flat, back.reshape(planes), line)
        else:  # (a line; noise that grows with the intensity judged at the top too)
            a, b = variance_line(noise)
            measured = (np.maximum(line, 0.0), (a, 1.0, b) if a > 0 else None)
        if measured is None:
            return None
        variance, law = measured
        capped = dark or math.sqrt(float(variance.mean())) / scale < CAP_BELOW * LIGHT_NOISE
        if noise is None and capped:
            variance, law = _capped(flat, variance, law)
        v = variance.reshape(crop.shape) / scale**2
        if not dark and math.sqrt(float(v.mean())) >= LIGHT_NOISE:
            return None
        if not dark and law is not None and law[1] >= 1:
            # noise that grows with the intensity is also judged where it is strongest,
            # at the top of the normalisation range: a dark image's mean hides the
            # noise of its few bright cells (speckle of 20%: 5/255 on average, 53/255
            # at the top, and the blend kept 40% of it)
            c, power, d = law
            top = math.sqrt(max(c * max(offset + scale, 0.0) ** power + d, 0.0)) / scale
            if top >= TOP_NOISE:
                return None
        v_t = torch.from_numpy(v.astype(np.float32))[:, None].to(dev)
        gen = torch.Generator().manual_seed(int(seed))
        probe = (torch.randint(0, 2, x.shape, generator=gen) * 2.0 - 1).to(dev)
        if ours:
            if regions is None:
                regions = _regions(net, image, boxes, offset, scale)
            terms = _box_divergence(net, regions, boxes, v_t * probe, probe, dev)
        else:
            terms = weighted_divergence(net, x, v_t, probe)[1]
        divergence = float(terms.sum())
        residual = float(((restored - x) ** 2).sum())
    finally:
        net.train(was_training)
    if residual <= 0:
        return None
    weight = (float(v.sum()) - divergence) / residual
    return float(min(max(weight, 0.0), 1.0))


def guard_windows(net: Any, shape: Any) -> list[tuple[slice, ...]]:
    """The parts of an image of spatial `shape` that :func:`guard_weight` reads with
    the network `net` (a :class:`~.model.DeconvNet`): each box with its context.

    A lazy restore reads only these for each image's weight (:mod:`.lazy`),
    and hands them over as a :class:`WindowedImage`.
    """
    grid, halo = net.config.grid, net.halo
    windows = []
    for box in guard_boxes(shape, GUARD_CROP[net.config.ndim], grid):
        windows.append(
            tuple(
                reflected_window(b.start, b.stop, n, halo, grid)[0]
                for b, n in zip(box, shape, strict=True)
            )
        )
    return windows


class WindowedImage:
    """An image of which only some windows are held: what :func:`guard_weight` reads.

    `parts` pairs each window (a tuple of slices of :func:`guard_windows`)
    with its pixels. Indexing with slices inside one window returns those
    pixels.
    """

    def __init__(self, shape: Any, parts: list[tuple[tuple[slice, ...], np.ndarray]]) -> None:
        self.shape = tuple(int(n) for n in shape)
        self.ndim = len(self.shape)
        self.parts = parts

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        spans = [k.indices(n)[:2] for k, n in zip(key, self.shape, strict=True)]
        for window, part in self.parts:
            inside = zip(window, spans, strict=True)
            if all(w.start <= a and b <= w.stop for w, (a, b) in inside):
                cut = (
                    slice(a - w.start, b - w.start)
                    for w, (a, b) in zip(window, spans, strict=True)
                )
                return part[tuple(cut)]
        raise KeyError(f"{key} lies outside the windows held")


def _regions(
    net: Any, image: Any, boxes: list[tuple[slice, ...]], offset: float, scale: float
) -> list[tuple[torch.Tensor, list[torch.Tensor], list[int]]]:
    """What the network reads for each box, as a restore's tile does: the box on the
    network's grid with ``net.halo`` of context, reflected at the image's borders.

    Per box ``(part, index, lo)``: the normalised part of the image that holds
    that context (float32, clipped to the image; a dask image reads only it),
    the indices along each axis that make the context of it, and where the
    part starts in the image.
    """
    grid, halo = net.config.grid, net.halo
    regions = []
    for box in boxes:
        windows, index = zip(
            *(
                reflected_window(b.start, b.stop, n, halo, grid)
                for b, n in zip(box, image.shape, strict=True)
            ),
            strict=True,
        )
        part = image[windows]
        if hasattr(part, "compute"):
            part = part.compute()
        part = ((np.asarray(part, np.float64) - offset) / scale).astype(np.float32)
        lo = [w.start for w in windows]
        regions.append((torch.from_numpy(part), [torch.from_numpy(i) for i in index], lo))
    return regions


def _box_outputs(
    net: Any,
    regions: list,
    boxes: list[tuple[slice, ...]],
    dev: torch.device,
    parts: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """``(n, 1, *box)``: the network's output on the boxes with their context
    (:func:`_regions`), computed from `parts` (default: the regions' own)."""
    fmt = torch.channels_last if len(boxes[0]) == 2 else torch.channels_last_3d
    inputs = []
    for k, (part, index, _) in enumerate(regions):
        t = part.to(dev) if parts is None else parts[k]
        for axis, i in enumerate(index):
            t = t.index_select(axis, i.to(dev))
        inputs.append(t)
    x = torch.stack(inputs)[:, None].contiguous(memory_format=fmt)
    out = net.forward_center(x, net.halo)
    size = tuple(b.stop - b.start for b in boxes[0])
    return out[(slice(None), slice(0, 1), *(slice(0, s) for s in size))]


def _box_divergence(
    net: Any,
    regions: list,
    boxes: list[tuple[slice, ...]],
    weighted_probe: torch.Tensor,
    probe: torch.Tensor,
    dev: torch.device,
) -> torch.Tensor:
    """``sum_i v_i d out_i / d y_i`` over the boxes' pixels, in expectation over `probe`.

    One pass and one vector-Jacobian product of :func:`_box_outputs` in float32
    (Monte-Carlo SURE, as :func:`~.sure.weighted_divergence`), with respect to
    the image's own pixels: the context is gathered from them, so a pixel's
    mirror copies near the image's borders count, as they do in the restore.
    `weighted_probe` is the variance times the probe.
    """
    parts = [part.to(dev).requires_grad_(True) for part, _, _ in regions]
    with torch.enable_grad():
        out = _box_outputs(net, regions, boxes, dev, parts).float()
        grads = torch.autograd.grad(out, parts, grad_outputs=weighted_probe)
    terms = []
    for g, box, (_, _, lo), p in zip(grads, boxes, regions, probe, strict=True):
        inside = tuple(
            slice(b.start - a, b.stop - a) for b, a in zip(box, lo, strict=True)
        )  # the box within its part
        terms.append(g[inside] * p[0])
    return torch.stack(terms)
