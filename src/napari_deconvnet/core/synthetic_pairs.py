"""Synthetic training pairs made on the fly: the data of :func:`~.adapt.adapt` and rehearsal.

:func:`camera_from` reads the noise model and intensity levels synthetic
images should have from a user's image; :class:`SyntheticPairs` draws
(degraded, clean) phantom batches with that camera and a PSF, each batch a
function of the seed and its step (so that a resumed run draws what an
uninterrupted one would); :class:`RehearsalPairs` draws pairs with the noise
the shipped denoisers were trained for, mixed into fine-tuning batches by
:func:`napari_deconvnet.train` so that the model keeps what it knew.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .conditioning import noise_map_channel, normalised_line
from .noise import synthesize
from .noise_estimation import variance_line
from .normalization import percentiles
from .phantoms import check_kinds, phantom
from .psf import blur, subpixel_fraction, subpixel_shift

__all__ = ["RehearsalPairs", "SyntheticPairs", "camera_from", "camera_line", "rows_by_psf"]

# ---------------------------------------------------------------- camera


#: The noise models adapt synthesises (their variance is a line in the intensity)
ADAPT_NOISE_MODELS = ("gaussian", "poisson", "poisson-gaussian")
#: The parameters of each that set its level: estimated on the image when none is given
_LEVEL_PARAMS = {
    "gaussian": ("sigma",),
    "poisson": ("gain", "peak"),
    "poisson-gaussian": ("gain", "peak", "read_noise"),
}


def camera_from(image: np.ndarray, noise: Any) -> dict[str, Any]:
    """The noise model and intensity levels that synthetic images should have.

    ``noise`` is ``"auto"`` (:func:`estimate_noise` on `image`) or a dict of
    :func:`synthesize` parameters (``{"noise": name, ...}``; a model of
    :data:`ADAPT_NOISE_MODELS`; given without any of its level parameters, its
    parameters are estimated on `image` with that model). Returns
    ``{"noise": name, "params": {...}, "offset": dark level, "amplitude":
    signal at the 99.5th percentile above it}``.
    """
    from .noise_estimation import estimate_noise

    if not np.ptp(np.asarray(image)) > 0:  # (NaN was refused before)
        raise ValueError(
            f"the image holds one value ({float(np.asarray(image).flat[0]):g}) everywhere: "
            "adaptation learns the noise and brightness of an image's variation, and "
            "this one has none; pass a noisy image of the sample"
        )
    if isinstance(noise, str) and noise == "auto":
        params = estimate_noise(image)
    elif isinstance(noise, dict):
        params = dict(noise)
    else:
        raise TypeError(
            "noise must be 'auto' (estimated from the image) or a dict of synthesize "
            f"parameters such as dict(noise='gaussian', sigma=0.05), got {noise!r}"
        )
    name = params.pop("noise", None) or params.pop("model", None)
    name = name.lower() if isinstance(name, str) else name  # (as synthesize takes names)
    if name not in ADAPT_NOISE_MODELS:  # (speckle was taken: inputs without the dark level)
        raise ValueError(
            f"adapt needs a noise model among {', '.join(ADAPT_NOISE_MODELS)}, got {name!r}"
        )
    if isinstance(noise, dict) and not set(params) & set(_LEVEL_PARAMS[name]):
        # no level given: estimated on the image with that model, with whatever else it
        # finds and was not given (a bare {"noise": "gaussian"} trained on pairs of
        # synthesize's default sigma, 1e-3 of the image's noise, session 69)
        offset = params.get("offset") if name == "poisson-gaussian" else None
        try:  # (at the offset given: fitted at its own, read noise and gain disagreed)
            found = estimate_noise(image, model=name, offset=offset)
        except ValueError as err:  # (its advice, "model='gaussian'", is another argument here)
            reason = str(err).split("; use ")[0]
            raise ValueError(
                f"noise={noise!r} gives no level and this image gives none to "
                f"estimate ({reason}); give the level (e.g. "
                + ("sigma=..." if name == "gaussian" else "gain=...")
                + "), or noise='auto'"
            ) from None
        params.update({k: v for k, v in found.items() if k != "noise" and k not in params})
    sample = np.asarray(image, np.float64).reshape(-1)[:: max(1, image.size // (1 << 20))]
    low, high = percentiles(sample, [0.5, 99.5])
    if name == "poisson-gaussian":
        offset = float(params.get("offset", 0.0))
    elif name == "poisson":
        offset = 0.0
    else:
        offset = float(low)
    amplitude = max(float(high) - offset, 1e-6)
    return {"noise": name, "params": params, "offset": offset, "amplitude": amplitude}


# ---------------------------------------------------------------- data


def _at_least(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """`array` extended by its mirror image until it is at least `shape` on every axis."""
    while any(a < s for a, s in zip(array.shape, shape, strict=True)):
        pad = [(0, min(a, max(0, s - a))) for a, s in zip(array.shape, shape, strict=True)]
        array = np.pad(array, pad, mode="symmetric")
    return np.ascontiguousarray(array)


#: The percentile of a blurred phantom that is set to the user's brightness
#: (the 99.5th percentile of the image above its dark level, times 0.6-1.3):
#: 100, its brightest pixel. With the 99.5th, sparse phantoms (beads,
#: filaments) had peaks up to 8x the user's range, and adapting to them cost
#: 0.1 to 1.2 dB on the benchmark's validation images (README, *Adapt*).
BRIGHTNESS_PERCENTILE = 100.0


def camera_line(camera: dict[str, Any]) -> dict[str, float]:
    """The variance line (raw units) of the noise :func:`camera_from` describes."""
    params = {"noise": camera["noise"], "offset": camera.get("offset", 0.0)}
    params.update(camera["params"])
    try:
        a, b = variance_line(params)
    except ValueError:  # not a line (speckle): its level at the image's amplitude
        sigma = float(params.get("sigma", 0.0)) * float(camera.get("amplitude", 1.0))
        return {"a": 0.0, "b": sigma**2}
    return {"a": a, "b": b}


def rows_by_psf(psfs: list[Any], images: Any):
    """``(psf, rows)`` for each distinct PSF (by identity) among ``psfs[images]``: the
    samples that take one PSF, to be blurred or deconvolved together (one PSF per
    channel gives each image of a stack its channel's)."""
    images = np.asarray(images, int).reshape(-1)
    groups: dict[int, list[int]] = {}
    for row, image in enumerate(images):
        groups.setdefault(id(psfs[image]), []).append(row)
    for rows in groups.values():
        yield psfs[images[rows[0]]], np.asarray(rows)


class SyntheticPairs:
    """Fresh (degraded, clean) phantom batches for :class:`~.trainer.Trainer`.

    A pool of phantoms (32 in 2D, twice the patch side with its PSF margin;
    8 in 3D, a patch side larger than that) is renewed by `renew` new
    phantoms every `renew_every` batches (2 every batch in 2D, 1 in 3D;
    :func:`~.adapt.adapt` renews a smaller 3D pool every few batches, since a
    3D phantom costs about as much as a training step); each batch crops random patches from it,
    flips and rotates them, sets a random brightness around the user's
    (0.6-1.3x its 99.5th percentile, reached by the *blurred* phantom's
    brightest pixel, :data:`BRIGHTNESS_PERCENTILE`),
    blurs them by `psf` (if any) and adds a new draw of the camera's noise.
    Input and target are normalised with the fixed `stats` (the user
    image's own, as restore computes them). The validation set is a fixed
    draw from phantoms of its own seed, never in the pool.

    Batch ``n`` (counted from 0) is a function of ``(seed, n)`` alone: the
    phantoms it renews, its crops and its noise come from generators seeded
    with the step. :meth:`skip_to` puts the pool where it was before batch
    ``n``, so that a resumed run draws exactly the batches an uninterrupted
    one would have drawn.

    With ``noise_map=True`` (a noise-conditioned network, see
    :class:`~.kinds.NoiseConditioned`) the inputs also carry their noise
    map, from the camera's variance line. `condition` (a PSF-conditioned
    network's classical channel, see :class:`~.kinds.PSFConditioned`) maps
    the degraded patches, with their margin, in raw units to the extra
    channel, which is cropped and normalised like them.

    `scenes` (arrays of the user's own structures, clean estimates in raw
    units above the camera's dark level: see :func:`~.adapt.adapt`'s
    ``scenes="image"``) are cropped instead of a phantom for a
    `scene_fraction` of the samples, training and validation alike, and are
    degraded the same way at their own brightness (times 0.6-1.3).
    With `held_out` (a share in [0, 1)) the last part of each scene along X,
    at least a validation crop wide, is kept out of training and only
    validates; `validation_scene_fraction` sets the share of validation pairs
    from the scenes (default: `scene_fraction`; :func:`~.adapt.adapt`'s
    ``validate_on="image"`` takes 1, all of them from the held-out parts).

    `levels` (``(amplitude, offset, scale)`` of each image of a stack whose
    images differ in brightness, e.g. the channels of a multi-channel image,
    or a time-lapse that bleaches): each sample then takes the brightness of
    one image, drawn at random (a scene, that of the image it came from:
    `scene_levels`), and is normalised with that image's statistics, as
    restore normalises each image of a stack by its own. Without, every
    sample has the camera's amplitude and `stats` (one image, or a stack of
    one brightness).
    """

    def __init__(
        self,
        *,
        ndim: int,
        size: tuple[int, ...],
        camera: dict[str, Any],
        stats: tuple[float, float],
        psf: np.ndarray | None = None,
        kinds: Any = None,
        device: torch.device | str = "cpu",
        seed: int = 0,
        n_validation: int = 16,
        pool: int | None = None,
        renew: int | None = None,
        renew_every: int = 1,
        noise_map: bool = False,
        noise_window: int = 3,
        condition: Any = None,
        scenes: Any = None,
        scene_fraction: float = 0.5,
        held_out: float = 0.0,
        validation_scene_fraction: float | None = None,
        levels: Any = None,
        scene_levels: Any = None,
    ) -> None:
        self.ndim, self.size, self.camera, self.psf = ndim, tuple(size), camera, psf
        self.levels = None if levels is None else np.asarray(levels, np.float64).reshape(-1, 3)
        if isinstance(psf, list) and (self.levels is None or len(psf) != len(self.levels)):
            raise ValueError("a list of PSFs needs levels: one PSF per image of the levels")
        self.scene_levels = None if scene_levels is None else [int(i) for i in scene_levels]
        self.noise_map, self.condition = noise_map, condition
        self.noise_window = int(noise_window)
        self.kinds = check_kinds(kinds)
        self.offset, self.scale = stats
        self.device = torch.device(device)
        # one PSF, or one per image of `levels` (one PSF per channel: each image its
        # channel's); the margin is the widest's
        shapes = [k.shape for k in (psf if isinstance(psf, list) else [psf]) if k is not None]
        if not shapes:
            self.margin: tuple[int, ...] = (0,) * ndim
        elif ndim == 3:  # per axis: an anisotropic PSF needs less room in Z or in Y, X
            self.margin = tuple(max(s[a] for s in shapes) // 2 + 1 for a in range(3))
        else:
            self.margin = (max(max(s) for s in shapes) // 2 + 1,) * ndim
        self.full = tuple(s + 2 * m for s, m in zip(self.size, self.margin, strict=True))
        # what remains of each PSF's offset (by identity), read once (see _registered)
        self._fractions = {
            id(k): subpixel_fraction(k)
            for k in (psf if isinstance(psf, list) else [psf])
            if k is not None
        }
        if ndim == 2:
            self.pool_shape = tuple(2 * s for s in self.full)
        else:  # room for a patch's worth of crop positions: (2x)^3 phantoms cost seconds each
            self.pool_shape = tuple(f + s for f, s in zip(self.full, self.size, strict=True))
        self.seed, self.step = int(seed), 0
        pool_rng = np.random.default_rng([self.seed, 7])
        pool = pool or (32 if ndim == 2 else 8)
        self.renew = renew if renew is not None else (2 if ndim == 2 else 1)
        if isinstance(renew_every, bool) or not isinstance(renew_every, int) or renew_every < 1:
            raise ValueError(f"renew_every must be a positive integer, got {renew_every!r}")
        self.renew_every = renew_every
        self.pool = [phantom(self.pool_shape, self.kinds, pool_rng) for _ in range(pool)]
        self.scenes = [_at_least(np.asarray(a, np.float32), self.full) for a in scenes or ()]
        if self.scene_levels is not None and len(self.scene_levels) != len(self.scenes):
            raise ValueError("scene_levels needs one image index per scene")
        if self.scenes and not 0 < scene_fraction <= 1:
            raise ValueError(f"scene_fraction must be in (0, 1], got {scene_fraction!r}")
        if not 0 <= held_out < 1:
            raise ValueError(f"held_out must be in [0, 1), got {held_out!r}")
        self.scene_fraction = float(scene_fraction) if self.scenes else 0.0
        val_fraction = self.scene_fraction
        if validation_scene_fraction is not None and self.scenes:
            if not 0 <= validation_scene_fraction <= 1:
                raise ValueError(
                    "validation_scene_fraction must be in [0, 1], got "
                    f"{validation_scene_fraction!r}"
                )
            val_fraction = float(validation_scene_fraction)
        self.val_scenes = self.scenes
        #: scenes too narrow to hold a strip out, used whole by training and validation
        self.shared_scenes = 0
        if self.scenes and held_out > 0:
            self.scenes, self.val_scenes = self._split(self.scenes, held_out)
        self.validation = "synthetic"
        self.train_area = 10**9  # unlimited: the pool keeps changing
        val_rng = np.random.default_rng([seed, 8])
        n_scenes = round(n_validation * val_fraction)
        clean = [phantom(self.full, self.kinds, val_rng) for _ in range(n_validation - n_scenes)]
        natural = np.arange(n_validation) >= len(clean)
        origins = np.full(n_validation, -1)
        if n_scenes:
            crops, _, sources = self._crops(n_scenes, val_rng, 1.0, sources=self.val_scenes)
            clean += list(crops)
            origins[len(clean) - n_scenes :] = sources
        offsets, scales = [self.offset] * n_validation, [self.scale] * n_validation
        chosen = None
        if self.levels is not None:  # each pair in its image's statistics
            chosen = self._sample_levels(n_validation, val_rng, origins)
            offsets, scales = list(chosen[2].reshape(-1)), list(chosen[3].reshape(-1))
        x, y = self._degrade(np.stack(clean), val_rng, natural, origins, chosen)
        self.val = {"x": x, "y": y, "mask": None, "offset": offsets, "scale": scales}

    def _split(self, scenes: list, held_out: float) -> tuple[list, list]:
        """(training, validation) parts of the scenes: the last `held_out` of each
        along X (at least a validation crop wide) is kept for validation only.

        A scene too narrow to leave a crop's width on both sides is used whole by
        both (the validation then shares its structures with training).
        """
        width = self.full[-1]
        train, val = [], []
        for a in scenes:
            cut = max(width, int(round(held_out * a.shape[-1])))
            if a.shape[-1] - cut >= width:
                train.append(np.ascontiguousarray(a[..., : a.shape[-1] - cut]))
                val.append(np.ascontiguousarray(a[..., a.shape[-1] - cut :]))
            else:
                train.append(a)
                val.append(a)
                self.shared_scenes += 1
        return train, val

    def _crops(
        self,
        n: int,
        rng: np.random.Generator,
        scene_fraction: float | None = None,
        sources: list | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`n` augmented crops, which of them come from the scenes (the rest: phantoms),
        and the index of each one's scene (-1 for a phantom).

        Scenes come from `sources` (default: the training scenes)."""
        fraction = self.scene_fraction if scene_fraction is None else scene_fraction
        sources = self.scenes if sources is None else sources
        out, natural, which = [], np.zeros(n, bool), np.full(n, -1)
        for i in range(n):
            if fraction and rng.random() < fraction:
                natural[i] = True
                which[i] = int(rng.integers(len(sources)))
                source = sources[which[i]]
            else:
                source = self.pool[int(rng.integers(len(self.pool)))]
            origin = [
                int(rng.integers(p - f + 1)) for p, f in zip(source.shape, self.full, strict=True)
            ]
            crop = source[tuple(slice(o, o + f) for o, f in zip(origin, self.full, strict=True))]
            for axis in range(self.ndim):
                if rng.random() < 0.5:
                    crop = np.flip(crop, axis)
            if self.full[-1] == self.full[-2]:
                crop = np.rot90(crop, int(rng.integers(4)), axes=(-2, -1))
            out.append(np.ascontiguousarray(crop))
        return np.stack(out), natural, which

    def _sample_levels(
        self, n: int, rng: np.random.Generator, origins: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The image whose brightness each of `n` samples takes (a random one of
        :attr:`levels`; a scene, its own: `origins`), and its amplitude, offset and
        scale (shaped to broadcast)."""
        pick = rng.integers(len(self.levels), size=n)
        if origins is not None and self.scene_levels is not None:
            for i, o in enumerate(origins):
                if o >= 0:
                    pick[i] = self.scene_levels[int(o)]
        shape = (n,) + (1,) * self.ndim
        chosen = self.levels[pick]
        values = (chosen[:, k].reshape(shape).astype(np.float32) for k in range(3))
        return (pick, *values)

    def _degrade(
        self,
        clean: np.ndarray,
        rng: np.random.Generator,
        natural: np.ndarray | None = None,
        origins: np.ndarray | None = None,
        chosen: tuple | None = None,
    ):
        """Noisy inputs and targets of `clean` crops, normalised (see the class).

        `chosen` is :meth:`_sample_levels`' draw for these samples, when the caller
        needs their statistics too (drawn here otherwise, first, from `rng`)."""
        cam, m = self.camera, self.margin
        n = clean.shape[0]
        amplitude, offset, scale, pick = cam["amplitude"], self.offset, self.scale, None
        if self.levels is not None:  # each sample in one image's brightness and statistics
            pick, amplitude, offset, scale = chosen or self._sample_levels(n, rng, origins)
        # The user's amplitude is that of a blurred image: scale each phantom so
        # that its *blurred* brightest pixel lands there (a blur lowers the
        # peaks of small objects many times over, so scaling the clean phantom
        # to it made the synthetic data far dimmer and noisier than the user's;
        # the blurred 99.5th percentile of a sparse phantom made it far brighter).
        clean = np.asarray(clean, np.float32)
        unit = clean if self.psf is None else np.clip(self._blur(clean, pick), 0, None)
        flat = unit.reshape(n, -1)
        top = np.percentile(flat, BRIGHTNESS_PERCENTILE, axis=1)
        reference = np.maximum(top, 0.1 * flat.max(axis=1))
        reference = np.maximum(reference, 1e-6).reshape((n,) + (1,) * self.ndim)
        factor = rng.uniform(0.6, 1.3, (n,) + (1,) * self.ndim)
        level = amplitude * factor / reference
        if natural is not None and natural.any():  # scenes come in the user's units already
            level = np.where(natural.reshape((n,) + (1,) * self.ndim), factor, level)
        signal = (clean * level).astype(np.float32)
        blurred = (unit * level).astype(np.float32)
        name, params = cam["noise"], dict(cam["params"])
        seed = int(rng.integers(2**62))
        if name == "gaussian":
            noisy = synthesize(blurred + cam["offset"], "gaussian", seed=seed, **params)
        else:  # poisson and poisson-gaussian add the camera offset themselves
            noisy = synthesize(blurred, name, seed=seed, **params)
        target = signal + cam["offset"]
        crop = (
            (slice(None), *[slice(a, a + s) for a, s in zip(m, self.size, strict=True)])
            if any(m)
            else ...
        )
        image = self._registered(np.asarray(noisy, np.float32), pick)
        x = (image[crop] - offset) / scale
        y = (target[crop] - offset) / scale

        def tensor(a):
            return torch.from_numpy(np.ascontiguousarray(a, np.float32))[:, None].to(self.device)

        x = tensor(x)
        if self.condition is not None:  # the kind's extra channels, (n, [C,] *spatial)
            noisy = np.asarray(noisy, np.float32)
            # (the classical channel in the statistics of each sample's image)
            channel = self.condition(noisy) if pick is None else self.condition(noisy, pick)
            if channel.ndim == noisy.ndim:
                channel = channel[:, None]
            if crop is not ...:
                channel = channel[(slice(None), *crop)]
            if self.levels is not None and channel.ndim > offset.ndim:  # (n, C, *spatial)
                offset, scale = offset[:, None], scale[:, None]
            channel = np.ascontiguousarray((channel - offset) / scale, np.float32)
            x = torch.cat([x, torch.from_numpy(channel).to(self.device)], dim=1)
        if self.noise_map:
            if self.levels is None:
                lines = [normalised_line(camera_line(cam), self.offset, self.scale)] * n
            else:
                lines = [
                    normalised_line(camera_line(cam), float(o), float(s))
                    for o, s in zip(offset.reshape(-1), scale.reshape(-1), strict=True)
                ]
            x = noise_map_channel(x, lines, self.noise_window)
        return x, tensor(y)

    def _registered(self, noisy: np.ndarray, pick: np.ndarray | None) -> np.ndarray:
        """A PSF-conditioned model's image channel where a centred PSF would have put it,
        as restore resamples it (:func:`~.psf.subpixel_shift` by what remains of the
        recentred PSF's offset): an even-sized PSF blurred the pairs' inputs half a
        pixel off their targets, and restore then shifted the image once more (session
        69). Others, and PSFs centred to a pixel, as they are."""
        if self.condition is None or self.psf is None:
            return noisy
        kernels = self.psf if isinstance(self.psf, list) else None
        if kernels is None:
            fraction = self._fractions[id(self.psf)]
            return noisy if fraction is None else subpixel_shift(noisy, fraction)
        out = noisy.copy()
        for kernel, rows in rows_by_psf(kernels, pick):
            fraction = self._fractions[id(kernel)]
            if fraction is not None:
                out[rows] = subpixel_shift(noisy[rows], fraction)
        return out

    def _blur(self, clean: np.ndarray, pick: np.ndarray | None) -> np.ndarray:
        """`clean` blurred by the PSF, or each sample by its image's (`pick`)."""
        if not isinstance(self.psf, list):
            return blur(clean, self.psf)
        out = np.empty_like(clean)
        for kernel, rows in rows_by_psf(self.psf, pick):
            out[rows] = blur(clean[rows], kernel)
        return out

    def _slots(self, step: int) -> np.ndarray:
        """The pool entries that batch `step` renews, in order (none between renewals)."""
        if step % self.renew_every:
            return np.zeros(0, np.int64)
        rng = np.random.default_rng([self.seed, 6, step])
        return rng.integers(len(self.pool), size=self.renew)

    def _renewal(self, step: int, j: int) -> np.ndarray:
        """The `j`-th phantom that batch `step` puts into the pool."""
        return phantom(self.pool_shape, self.kinds, np.random.default_rng([self.seed, 7, step, j]))

    def skip_to(self, step: int) -> None:
        """Continue at batch `step`: the pool as `step` batches left it (a resumed run).

        Only the phantoms still in the pool are drawn again (at most one per entry).
        """
        last: dict[int, tuple[int, int]] = {}
        for s in range(self.step, step):
            for j, slot in enumerate(self._slots(s)):
                last[int(slot)] = (s, j)
        for slot, (s, j) in last.items():
            self.pool[slot] = self._renewal(s, j)
        self.step = max(self.step, int(step))

    def batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, None]:
        step = self.step
        for j, slot in enumerate(self._slots(step)):
            self.pool[int(slot)] = self._renewal(step, j)
        rng = np.random.default_rng([self.seed, 9, step])
        self.step += 1
        crops, natural, origins = self._crops(batch_size, rng)
        x, y = self._degrade(crops, rng, natural, origins)
        return x, y, None


class RehearsalPairs(SyntheticPairs):
    """Pairs with the noise the shipped denoisers were trained for: fine-tuning rehearsal.

    Phantoms (as :class:`SyntheticPairs`) with, per sample, either Gaussian
    noise (sigma 0.01 to 0.2 of the range) or Poisson-Gaussian camera noise
    (peak 2 to 100 photons, read noise up to 3 e-), each sample normalised
    by its own 0.5/99.5 percentiles as restore normalises an image. Mixed
    into fine-tuning batches, they remind the model of what it knew.
    """

    def __init__(
        self,
        *,
        ndim: int,
        size: tuple[int, ...],
        device: Any,
        seed: int = 0,
        noise_map: bool = False,
        noise_window: int = 3,
    ) -> None:
        camera = {"noise": "gaussian", "params": {}, "offset": 0.0, "amplitude": 1.0}
        super().__init__(
            ndim=ndim,
            size=size,
            camera=camera,
            stats=(0.0, 1.0),
            device=device,
            seed=seed + 7919,
            n_validation=1,
            pool=16 if ndim == 2 else 4,
            renew=1,
            noise_map=noise_map,
            noise_window=noise_window,
        )
        self.val = None

    def _degrade(
        self,
        clean: np.ndarray,
        rng: np.random.Generator,
        natural: np.ndarray | None = None,
        origins: np.ndarray | None = None,
        chosen: tuple | None = None,
    ):
        xs, ys, lines = [], [], []
        for image in clean:
            seed = int(rng.integers(2**62))
            if rng.random() < 0.5:
                sigma = float(np.exp(rng.uniform(np.log(0.01), np.log(0.2))))
                noisy = synthesize(image, "gaussian", sigma=sigma, seed=seed)
                target = image
                line = {"a": 0.0, "b": sigma**2}
            else:
                peak = float(np.exp(rng.uniform(np.log(2), np.log(100))))
                signal = image * peak
                read = float(rng.uniform(0, 3))
                noisy = synthesize(
                    signal, "poisson-gaussian", gain=1.0, read_noise=read, seed=seed
                )
                target = signal
                line = {"a": 1.0, "b": read**2}
            noisy = np.asarray(noisy, np.float32)
            low, high = percentiles(noisy, [0.5, 99.5])  # as restore normalises
            scale = float(high - low) if high > low else 1.0
            xs.append((noisy - low) / scale)
            ys.append((target - low) / scale)
            lines.append(normalised_line(line, float(low), scale))
        tensor = torch.from_numpy(np.ascontiguousarray(np.stack(xs), np.float32))[:, None]
        target = torch.from_numpy(np.ascontiguousarray(np.stack(ys), np.float32))[:, None]
        tensor = tensor.to(self.device)
        if self.noise_map:
            tensor = noise_map_channel(tensor, lines, self.noise_window)
        return tensor, target.to(self.device)
