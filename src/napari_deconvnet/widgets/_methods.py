"""The Restore widget's methods: what it offers and the worker bodies that run them.

:func:`method_catalogue` lists the networks (shipped, opened in napari, or a
file) and the classical methods with their descriptions and whether they
need a PSF. :func:`model_job` and :func:`classical_job` are generators run in
a napari worker thread: they yield ``(done, total)`` progress (``(0, 0)``
while busy on one call whose length is unknown) and return the result with
what the layer's metadata records. The core is imported inside the
functions, never at module top.
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Generator
from typing import Any

import numpy as np

from napari_deconvnet.io import registry

from ._layers import contrast_limits
from ._psf import build_psf

__all__ = [
    "BROWSE",
    "BROWSE_HELP",
    "classical_job",
    "method_catalogue",
    "model_entry",
    "model_job",
]

#: The method that runs a model file chosen in a file dialog.
BROWSE = "Model file\u2026"
BROWSE_HELP = (
    "A .safetensors model file saved by napari-deconvnet (the Train widget or "
    "dn.save_model); pick it below."
)


# ------------------------------------------------------------------ methods


def model_entry(model: str, info: dict[str, Any]) -> dict[str, Any]:
    """The catalogue entry of a network from its :func:`~napari_deconvnet.model_info`."""
    meta = info.get("metadata") or {}
    return {
        "kind": "model",
        "model": model,
        "description": meta.get("description") or "A napari-deconvnet model (no description).",
        "needs_psf": bool(meta.get("needs_psf", False)),
        "ndim": (info.get("config") or {}).get("ndim"),
    }


def _classical_available(name: str) -> bool:
    """bm3d is optional: it is offered only where the package is installed."""
    return name != "bm3d" or importlib.util.find_spec("bm3d") is not None


def method_catalogue() -> dict[str, dict[str, Any]]:
    """The methods the Restore widget offers, by the name it shows, in its order.

    Returns
    -------
    dict
        ``{name: entry}``: the shipped models (an alias such as ``"default"``
        is listed once, under its model's own name, first), the model files
        registered in this session, ``"Model file…"``, then the classical
        methods. An entry has ``kind`` (``"model"``, ``"file"`` or
        ``"classical"``), ``description``, ``needs_psf`` and, for models,
        ``model`` (a shipped name or a path) and ``ndim``.
    """
    import napari_deconvnet as dn
    from napari_deconvnet.core.classical import CLASSICAL_METHODS

    # An alias ("default") reads the same file as its model: list the file once,
    # under the model's own name (else the last name), aliased models first.
    infos = {name: dn.model_info(name) for name in dn.list_models()}
    files: dict[str, list[str]] = {}
    for name, info in infos.items():
        files.setdefault(json.dumps(info, sort_keys=True, default=str), []).append(name)
    shown = {}
    for group in files.values():
        own = (infos[group[0]].get("metadata") or {}).get("name")
        shown[own if own in group else group[-1]] = len(group) > 1
    order = sorted(shown, key=lambda name: not shown[name])  # stable: aliased first
    out = {name: model_entry(name, infos[name]) for name in order}
    for name, path in registry.registered_models().items():
        try:
            entry = model_entry(path, dn.model_info(path))
        except (ValueError, OSError) as err:
            entry = {"kind": "model", "model": path, "needs_psf": False, "ndim": None}
            entry["description"] = f"This model file cannot be read: {err}"
        label = f"{name} (model file)" if name in CLASSICAL_METHODS else name
        out[label] = entry
    out[BROWSE] = {"kind": "file", "description": BROWSE_HELP, "needs_psf": False}
    for name, spec in CLASSICAL_METHODS.items():
        if _classical_available(name):
            out[name] = {
                "kind": "classical",
                "description": spec["description"],
                "needs_psf": bool(spec["psf"]),
            }
    return out


# ------------------------------------------------------------------- workers


def _spatial_shape(shape: tuple[int, ...], axes: str, ndim: int) -> tuple[int, ...]:
    """Sizes of the `ndim` spatial axes (Z, Y, X) that `axes` has."""
    return tuple(shape[axes.index(a)] for a in "ZYX"[3 - ndim :] if a in axes)


def model_job(
    image: Any, model: str, options: dict[str, Any], psf_spec: dict[str, Any] | None
) -> Generator[tuple[int, int], None, dict[str, Any]]:
    """Worker body of a network: load, build the PSF, restore tile by tile, summarise.

    Runs in the worker thread, so everything slow happens here: loading the
    model, reading lazy data, the PSF, the network and the contrast statistics.
    """
    from napari_deconvnet.core.devices import resolve_device
    from napari_deconvnet.core.persistence import load_model
    from napari_deconvnet.core.tiling import infer_axes, restore_iter

    start = time.perf_counter()
    net = load_model(model)
    device = resolve_device(options["device"])
    axes = options["axes"] or infer_axes(image.shape, net)
    kernel, record = None, None
    if psf_spec is not None:
        ndim = net.config.ndim
        kernel, record = build_psf(psf_spec, ndim, _spatial_shape(image.shape, axes, ndim))
    result = yield from restore_iter(image, net, psf=kernel, **{**options, "axes": axes})
    return {
        "data": result,
        "seconds": time.perf_counter() - start,
        "axes": axes,
        "device": str(device),
        "model_name": net.metadata.get("name", str(model)),
        "psf": record,
        "contrast_limits": contrast_limits(result),
    }


def classical_job(
    image: Any,
    method: str,
    params: dict[str, Any],
    axes: str,
    k: int,
    psf_spec: dict[str, Any] | None,
    device: str | None,
) -> Generator[tuple[int, int], None, dict[str, Any]]:
    """Worker body of a classical method on the `k` spatial axes of `axes`.

    The spatial axes (``"YX"`` for ``k=2``, ``"ZYX"`` for ``k=3``) are moved
    last, as the core's functions take them. Richardson-Lucy yields once per iteration and
    denoisers once per plane or volume; a single call (Wiener, one plane)
    yields ``(0, 0)``: busy, its length unknown.
    """
    from napari_deconvnet.core.classical import CLASSICAL_METHODS, richardson_lucy_iter

    start = time.perf_counter()
    spatial = [axes.index(a) for a in "ZYX"[3 - k :]]
    order = [i for i in range(len(axes)) if i not in spatial] + spatial
    x = np.asarray(image).transpose(order)
    function = CLASSICAL_METHODS[method]["function"]
    kernel, record, dev = None, None, None
    if psf_spec is not None:
        kernel, record = build_psf(psf_spec, k, x.shape[-k:])
        if kernel.ndim > k:
            raise ValueError(
                f"the PSF is {kernel.ndim}D but the image is restored as {k}D "
                f"{'planes' if k == 2 else 'volumes'}; use a {k}D PSF"
                + (" or choose '3D volume'" if kernel.ndim == 3 else "")
            )
    if method == "richardson-lucy":
        from napari_deconvnet.core.devices import resolve_device

        dev = resolve_device(device or "auto")
        out = yield from richardson_lucy_iter(x, kernel, device=dev, **params)
    elif kernel is not None:
        yield 0, 0
        out = function(x, kernel, **params)
    else:  # a denoiser, plane by plane (or volume by volume)
        blocks = x.reshape(-1, *x.shape[-k:])
        out = np.empty(blocks.shape, np.float32)
        yield 0, len(blocks) if len(blocks) > 1 else 0
        for i, block in enumerate(blocks):
            out[i] = function(block, **params)
            yield i + 1, len(blocks)
        out = out.reshape(x.shape)
    result = np.ascontiguousarray(np.asarray(out, np.float32).transpose(np.argsort(order)))
    return {
        "data": result,
        "seconds": time.perf_counter() - start,
        "axes": axes,
        "device": str(dev) if dev is not None else "cpu",
        "psf": record,
        "contrast_limits": contrast_limits(result),
    }
