"""The conditions a trained model saw, and a check of new data against them.

A model fine-tuned on one microscope's data becomes a specialist: measured
on the 3D benchmark volumes (README, *Fine-tuning a deconvolution model*),
`deconv-3d` fine-tuned without L2-SP on 20-photon volumes gains 0.9 dB
there but loses 3.6 dB at 50 photons and 10 dB with another PSF at 100
photons. Nothing in the output shows it. So :func:`~.training.train` and
:func:`~.adapt.adapt` record what their training data looked like
(``metadata["training"]["conditions"]``), and every restore with such a
model compares the image (and the PSF) with it and warns
(:class:`ConditionsWarning`) when they are outside.

The check is on the **noise level**: the noise standard deviation at the
image's mean intensity (from the variance line that
:func:`~.kinds.noise_line` fits, as restore estimates it) over the image's
1st to 99.8th percentile range, about ``1 / sqrt(photons)`` for
photon-limited data, and independent of the image's offset and scale (a
camera's units and gain do not count). That is what the measured
forgetting follows. The record also keeps the PSF's width along each axis
(:func:`psf_widths`), for the model card, but a PSF change is not reported:
the deconvolution models see the PSF through their classical channel, and
the 3D models fine-tuned in that measurement *gained* 0.8 to 1.2 dB with a widefield PSF
at the photon level they were fine-tuned for.

Shipped models record no conditions (they were trained over wide ranges)
and are never checked; nor is a model whose fine-tuning rehearsed the
shipped noise (``rehearsal``), for noise.
"""

from __future__ import annotations

import contextlib
import math
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from .channel_psfs import per_channel
from .kinds import ImpulseSwitched, kind_of

__all__ = [
    "NOISE_TOLERANCE",
    "SAMPLE_CROP",
    "ConditionsWarning",
    "central_crop",
    "check_conditions",
    "collect_conditions",
    "noise_level",
    "psf_widths",
    "record_conditions",
    "recorded_conditions",
    "report_conditions",
]

#: An image whose noise level is more than this factor outside the range of
#: the training data's is reported (1.5: about 2.25x the photons, or 0.44x).
NOISE_TOLERANCE = 1.5
#: What is measured, in training and in restore: the middle image's central
#: crop, at most this many planes along Z and pixels per in-plane axis.
SAMPLE_CROP = (16, 256, 256)


class ConditionsWarning(UserWarning):
    """A model restores data unlike the data it was trained on (see :func:`check_conditions`)."""


_local = threading.local()


@contextlib.contextmanager
def collect_conditions() -> Iterator[list[str]]:
    """Within it, this thread's restores put their condition messages in the list it
    yields instead of warning (a dock widget shows them as one notification)."""
    previous = getattr(_local, "notes", None)
    _local.notes = notes = []
    try:
        yield notes
    finally:
        _local.notes = previous


def report_conditions(problems: list[str], stacklevel: int = 2) -> None:
    """Warn about `problems`, or hand them to :func:`collect_conditions` when it is on."""
    if not problems:
        return
    notes = getattr(_local, "notes", None)
    if notes is not None:
        notes.append(" ".join(problems))
    else:
        warnings.warn(" ".join(problems), ConditionsWarning, stacklevel=stacklevel + 1)


def noise_level(image: Any) -> float | None:
    """Noise standard deviation at `image`'s mean, over its 1st-99.8th percentile range.

    Deterministic and bounded in cost (the sample of :func:`~.kinds.noise_line`).
    None when it cannot be measured (a flat image, no noise found).
    """
    from .kinds import _noise_sample, noise_line

    x = np.asarray(image, np.float32)
    if x.ndim < 2 or min(x.shape[-2:]) < 16 or not np.isfinite(x).all():
        return None
    sample = _noise_sample(x)
    lo, hi = np.percentile(sample, [1.0, 99.8])
    if not hi > lo:
        return None
    try:
        line = noise_line(sample)
    except ValueError:
        return None
    variance = max(float(line["a"]), 0.0) * float(sample.mean()) + float(line["b"])
    if not (math.isfinite(variance) and variance > 0):
        return None
    return math.sqrt(variance) / float(hi - lo)


def psf_widths(psf: Any) -> list[float] | None:
    """The standard deviation of `psf` along each axis, in pixels (None without a PSF);
    for one PSF per channel (:mod:`.channel_psfs`), a list of them, one per channel."""
    if psf is None:
        return None
    if per_channel(psf):
        return [psf_widths(p) for p in psf]
    kernel = np.abs(np.asarray(psf, np.float64))
    total = kernel.sum()
    if not (np.isfinite(total) and total > 0):
        return None
    kernel = kernel / total
    widths = []
    for axis in range(kernel.ndim):
        profile = kernel.sum(axis=tuple(a for a in range(kernel.ndim) if a != axis))
        i = np.arange(profile.size)
        mean = float((profile * i).sum())
        widths.append(math.sqrt(float((profile * (i - mean) ** 2).sum())))
    return widths


def record_conditions(images: list[Any], psf: Any, *, rehearsed: bool) -> dict[str, Any]:
    """``metadata["training"]["conditions"]``: what the training inputs looked like.

    `images` are the inputs as the model saw them (degraded: in synthetic
    mode, a degraded draw of each clean input), e.g. one central crop per
    source; `psf` the deconvolution PSF, if any.
    """
    levels = [v for v in (noise_level(x) for x in images) if v is not None]
    return {
        "noise_level": [min(levels), max(levels)] if levels else None,
        "psf_widths": psf_widths(psf),
        "rehearsed": bool(rehearsed),
        "measure": (
            "noise: standard deviation at the mean over the 1st-99.8th percentile range; "
            "PSF: standard deviation per axis in pixels"
        ),
    }


def central_crop(array: Any, ndim: int) -> np.ndarray:
    """The central crop of the middle image of `array` (its last `ndim` axes spatial).

    At most 256 pixels per in-plane axis and 16 planes; reads only that of
    a lazy array.
    """
    lead = array.ndim - ndim
    index = tuple(n // 2 for n in array.shape[:lead])
    from .kinds import central_box

    box = central_box(array.shape[lead:], SAMPLE_CROP[3 - ndim :])
    return np.asarray(array[index + box], np.float32)


def recorded_conditions(metadata: Any) -> dict[str, Any] | None:
    """``metadata["training"]["conditions"]`` where a model's metadata records them
    (a dict), else None: shipped models, damaged records."""
    training = metadata.get("training") if isinstance(metadata, dict) else None
    conditions = training.get("conditions") if isinstance(training, dict) else None
    return conditions if isinstance(conditions, dict) else None


def check_conditions(metadata: dict[str, Any], image: Any, layout: Any) -> list[str]:
    """Why `image` lies outside the conditions in `metadata`: plain sentences.

    Empty when the model records no conditions (shipped models) or its
    fine-tuning rehearsed the shipped noise, for impulse models (the
    ``salt-and-pepper`` kind: their noise is a share of impulses), or when the image's noise
    level is within :data:`NOISE_TOLERANCE` of the training range.
    `layout` is the restore's :class:`~.axes.Layout`; only the middle
    image's central crop is read.
    """
    conditions = recorded_conditions(metadata)
    if conditions is None:
        return []
    training = metadata["training"]
    name = metadata.get("name", "this model")
    problems = []
    known = conditions.get("noise_level")
    # an impulse model's noise is the share of impulses, which this level does not
    # measure (salt at 65535 over 12-bit data read as "11.9x less noisy", session 71)
    impulses = isinstance(kind_of(metadata), ImpulseSwitched)
    if known and not conditions.get("rehearsed") and not impulses:
        spatial = len(layout.spatial_shape)
        level = noise_level(central_crop(image.transpose(layout.perm), spatial))
        lo, hi = float(known[0]), float(known[1])
        if level is not None and not lo / NOISE_TOLERANCE <= level <= hi * NOISE_TOLERANCE:
            side = "noisier" if level > hi else "less noisy"
            factor = level / hi if level > hi else lo / level
            problems.append(
                f"This image is {factor:.1f}x {side} than the data {name!r} was trained on "
                f"(noise level {level:.3g} of its range, trained on {lo:.3g}-{hi:.3g})."
            )
    if problems:
        start = (training.get("fine_tuned_from") or {}).get("name")
        advice = (
            f"compare with {start!r}, the model it started from, or train on data like this one"
            if start
            else "train on data like this one"
        )
        problems.append(
            "A model trained on one condition can restore others much worse (README: "
            f"Fine-tuning a deconvolution model): {advice}."
        )
    return problems
