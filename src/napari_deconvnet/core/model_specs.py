"""Method specs of the networks: the shipped models and model files.

A network is a method of kind ``"model"``. Its parameters are how it is run
(tiling and batching), not what it learned; whether it needs a PSF and which
dimensionality it restores come from the model file's header.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from .kinds import kind_of
from .specs import Param, Spec

#: What a restore's ``precision`` may be (:func:`.devices.resolve_precision`):
#: the Restore widget's choices and the CLI's ``--precision``.
PRECISIONS = ("auto", "float32", "bfloat16", "float16")

__all__ = ["MODEL_PARAMS", "REFINE_PARAMS", "model_spec", "refine_option", "shipped_model_specs"]

#: How any network runs: the parameters of :func:`napari_deconvnet.restore`.
MODEL_PARAMS = (
    Param(
        "tile",
        "int",
        None,
        low=8,
        optional=True,
        label="Tile size",
        help="Pixels per side of each tile; automatic (from the memory budget) when empty",
        per_axis=True,
    ),
    Param(
        "overlap",
        "int",
        None,
        low=0,
        optional=True,
        label="Overlap",
        help="Pixels of context around each tile; automatic (the receptive field) when empty",
    ),
    Param(
        "batch_size",
        "int",
        None,
        low=1,
        optional=True,
        label="Batch size",
        help="Tiles per forward pass; automatic when empty",
    ),
    Param(
        "precision",
        "choice",
        "auto",
        choices=PRECISIONS,
        label="Precision",
        help="auto: float16 on CUDA, float32 on the CPU (the same numbers whatever the "
        "tiles or blocks); bfloat16: 1.1-2x faster on CPUs with AMX or AVX512-BF16, "
        "rounding that depends on the tiles",
    ),
    Param(
        "ensemble",
        "int",
        1,
        low=1,
        high=8,
        label="Views averaged",
        help="Restore this many rotated and mirrored views of the Y/X plane and average "
        "them (8: eight times the time, about 0.1 dB better on Gaussian noise); images in "
        "memory only",
    ),
)


#: The blind denoisers' light-noise guard (:mod:`~napari_deconvnet.core.light_noise`).
LIGHT_NOISE_PARAM = Param(
    "light_noise_guard",
    "bool",
    True,
    label="Keep detail at light noise",
    help="On a nearly clean image, blend the result with the input by the weight that "
    "minimises Stein's unbiased risk, so that fine texture is not smoothed away",
)

#: The blind denoisers' impulse switch (:mod:`~napari_deconvnet.core.impulse_switch`).
IMPULSE_PARAM = Param(
    "impulse_switch",
    "bool",
    True,
    label="Replace impulses first",
    help="When the image holds impulses (salt-and-pepper, hot or dead pixels: pixels at its "
    "minimum or maximum where their neighbours are not), replace those by a switching "
    "median before the network",
)


#: The blind denoisers' check for correlated noise (:mod:`~napari_deconvnet.core.decorrelate`).
DECORRELATE_PARAM = Param(
    "decorrelate",
    "bool",
    False,
    label="Correlated noise (resampled image)",
    help="For images whose noise neighbouring pixels share (registered, deskewed, upscaled "
    "or filtered): also restore the four sub-images of every second pixel and keep that "
    "where it removes far more. Off by default: a nearly clean, finely textured image can "
    "lose its texture",
)


#: Deconvolution models' handling of the image's borders (:mod:`~napari_deconvnet.core.borders`).
BORDERS_PARAM = Param(
    "borders",
    "choice",
    "auto",
    choices=("auto", "mirror", "dark", "periodic"),
    label="Borders blurred as",
    help="How the image was blurred at its borders: auto finds sides blurred with nothing "
    "beyond them (scipy's fftconvolve 'same') and axes blurred periodically (FFTs without "
    "padding), and extends the image there as it was blurred; mirror is a camera's frame; "
    "images in memory only",
)


#: Deconvolution models' refinement to a calibrated camera's noise
#: (:mod:`~napari_deconvnet.core.refine`): ``restore(refine=...)`` from flat values
REFINE_PARAMS = (
    Param(
        "refine_gain",
        "float",
        None,
        low=0.0,
        exclusive_low=True,
        optional=True,
        empty="off",
        label="Refine: photons per unit",
        help="The camera's gain as photons (electrons) per intensity unit of the image (1 / "
        "its ADU per electron; a normalised image: its peak photons). When set, the result "
        "is refined by Richardson-Lucy until it fits the image within that Poisson noise: "
        "bright images (1e4 photons and more) come out sharper, dim ones unchanged. Empty: "
        "off; images in memory only",
    ),
    Param(
        "refine_offset",
        "float",
        0.0,
        label="Refine: camera offset",
        help="The camera's offset (the value of no light), in the image's units",
    ),
    Param(
        "refine_read_noise",
        "float",
        0.0,
        low=0.0,
        label="Refine: read noise (e-)",
        help="The camera's read noise in electrons (photons), rms",
    ),
)


def refine_without_gain(offset: Any, read_noise: Any) -> str:
    """The camera parameters given (non-zero) without a gain, in words."""
    given = [n for n, v in (("refine_offset", offset), ("refine_read_noise", read_noise)) if v]
    return " and ".join(given)


def refine_option(params: dict[str, Any]) -> dict[str, Any]:
    """`params` with :data:`REFINE_PARAMS` replaced by restore's ``refine`` noise dict."""
    params = dict(params)
    gain = params.pop("refine_gain", None)
    offset = params.pop("refine_offset", 0.0)
    read_noise = params.pop("refine_read_noise", 0.0)
    if gain is None and (offset or read_noise):
        # (ignored without a word, session 70; the Restore widget's empty gain is "off",
        # whatever its other fields hold: said, not refused; the CLI refuses them)
        warnings.warn(
            f"{refine_without_gain(offset, read_noise)} describe the camera for the "
            "refinement, which runs only with refine_gain (its photons per intensity unit): "
            "no refinement; give refine_gain too to refine",
            UserWarning,
            stacklevel=2,
        )
    if gain is not None:
        params["refine"] = {
            "noise": "poisson-gaussian",
            "gain": float(gain),
            "offset": float(offset or 0.0),
            "read_noise": float(read_noise or 0.0),
        }
    return params


def model_spec(name: str, info: dict[str, Any], *, model: str | os.PathLike | None = None) -> Spec:
    """The method spec of a network from its :func:`~napari_deconvnet.model_info`."""
    from .impulse_switch import switch_by_default
    from .light_noise import guarded_by_default

    meta = info.get("metadata") or {}
    config = info.get("config") or {}
    ndim = config.get("ndim")
    params = MODEL_PARAMS
    in_channels = config.get("in_channels", 1)
    if guarded_by_default(meta, in_channels):
        params = (*MODEL_PARAMS, LIGHT_NOISE_PARAM, IMPULSE_PARAM)
        if ndim in (2, 3):  # plain denoisers, 2D and 3D
            params = (*params, DECORRELATE_PARAM)
    elif switch_by_default(meta, in_channels):
        params = (*MODEL_PARAMS, IMPULSE_PARAM)
    if kind_of(meta).needs_psf:
        params = (*params, BORDERS_PARAM, *REFINE_PARAMS)
    return Spec(
        "method",
        name,
        meta.get("description") or "A napari-deconvnet model (no description).",
        params=params,
        function="napari_deconvnet.core.tiling:restore",
        kind="model",
        needs_psf=kind_of(meta).needs_psf,
        ndim=(int(ndim),) if ndim in (2, 3) else (2, 3),
        tags=tuple(t for t in (meta.get("task"),) if isinstance(t, str)),
        extra={"model": str(model if model is not None else name)},
    )


def shipped_model_specs() -> dict[str, Spec]:
    """One spec per shipped model (an alias such as ``"default"`` included)."""
    from .persistence import list_models, model_info

    return {name: model_spec(name, model_info(name)) for name in list_models()}
