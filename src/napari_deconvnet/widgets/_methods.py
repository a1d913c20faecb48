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

import contextlib
import importlib.util
import json
import threading
import time
from collections.abc import Generator
from functools import partial
from typing import Any

import numpy as np

from napari_deconvnet.io import registry
from napari_deconvnet.io.restored_writer import as_lazy

from ._layers import contrast_limits
from ._psf import build_psf

__all__ = [
    "BROWSE",
    "BROWSE_HELP",
    "NLM_TILE",
    "as_lazy",
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


#: Non-local means on a plane of more pixels than this runs tile by tile (with a
#: halo), so that Cancel can stop it between tiles.
NLM_TILE = 256
# wider than denoise_nlm's reach (patch_distance 11 + patch_size // 2 = 3): the
# tiles' results equal the whole plane's
_NLM_HALO = 16


def _spatial_shape(shape: tuple[int, ...], axes: str, ndim: int) -> tuple[int, ...]:
    """Sizes of the `ndim` spatial axes (Z, Y, X) that `axes` has."""
    return tuple(shape[axes.index(a)] for a in "ZYX"[3 - ndim :] if a in axes)


def model_job(
    image: Any, model: str, options: dict[str, Any], psf_spec: dict[str, Any] | None
) -> Generator[tuple[int, int], None, dict[str, Any]]:
    """Worker body of a network: load, build the PSF, restore tile by tile, summarise.

    Runs in the worker thread, so everything slow happens here: loading the
    model, the PSF, the network and the contrast statistics. Lazy data (dask,
    zarr) is not loaded: the result is the lazy array of
    :func:`napari_deconvnet.restore`, computed where napari shows it.
    """
    from napari_deconvnet.core.devices import resolve_device
    from napari_deconvnet.core.persistence import load_model
    from napari_deconvnet.core.tiling import infer_axes, restore, restore_iter

    start = time.perf_counter()
    net = load_model(model)
    device = resolve_device(options["device"])
    axes = options["axes"] or infer_axes(image.shape, net)
    kernel, record = None, None
    if psf_spec is not None:
        ndim = net.config.ndim
        kernel, record = build_psf(psf_spec, ndim, _spatial_shape(image.shape, axes, ndim))
    lazy = as_lazy(image)
    if lazy is not None:
        yield 0, 0
        result = restore(lazy, net, psf=kernel, **{**options, "axes": axes})
        limits = None  # the caller keeps the source's: computing them would compute it all
    else:
        result = yield from restore_iter(image, net, psf=kernel, **{**options, "axes": axes})
        limits = contrast_limits(result)
    return {
        "data": result,
        "lazy": lazy is not None,
        "seconds": time.perf_counter() - start,
        "axes": axes,
        "device": str(device),
        "model_name": net.metadata.get("name", str(model)),
        "psf": record,
        "kernel": kernel,
        "contrast_limits": limits,
    }


def _nlm_tiles(
    plane: np.ndarray, params: dict[str, Any]
) -> Generator[tuple[int, int], None, np.ndarray]:
    """Non-local means of one plane, tile by tile; yields ``(tiles done, tiles)``.

    The noise level is estimated once on the whole plane (as
    :func:`~napari_deconvnet.core.denoisers.denoise_nlm` does) and each tile
    is filtered with a halo wider than the filter's reach, so the result
    equals one call on the whole plane.
    """
    from skimage.restoration import estimate_sigma

    from napari_deconvnet.core.denoisers import denoise_nlm

    sigma = params.get("sigma")
    if sigma is None:
        sigma = float(estimate_sigma(plane.astype(np.float32), average_sigmas=True))
    out = np.empty(plane.shape, np.float32)
    h, w = plane.shape
    starts = [(y, x) for y in range(0, h, NLM_TILE) for x in range(0, w, NLM_TILE)]
    for i, (y, x) in enumerate(starts):
        y0, x0 = max(y - _NLM_HALO, 0), max(x - _NLM_HALO, 0)
        y1, x1 = min(y + NLM_TILE + _NLM_HALO, h), min(x + NLM_TILE + _NLM_HALO, w)
        tile = denoise_nlm(plane[y0:y1, x0:x1], **{**params, "sigma": sigma})
        ty, tx = min(y + NLM_TILE, h), min(x + NLM_TILE, w)
        out[y:ty, x:tx] = tile[y - y0 : ty - y0, x - x0 : tx - x0]
        yield i + 1, len(starts)
    return out


def _plane_function(
    method: str, params: dict[str, Any], kernel: np.ndarray | None, device: Any
) -> Any:
    """A function of one plane (or volume) that runs the classical `method`."""
    from napari_deconvnet.core.classical import CLASSICAL_METHODS

    function = CLASSICAL_METHODS[method]["function"]
    if method == "richardson-lucy":
        return partial(function, psf=kernel, device=device, **params)
    if kernel is not None:
        return partial(function, psf=kernel, **params)
    return partial(function, **params)


def _check_kernel(kernel: np.ndarray, k: int) -> None:
    if kernel.ndim > k:
        raise ValueError(
            f"the PSF is {kernel.ndim}D but the image is restored as {k}D "
            f"{'planes' if k == 2 else 'volumes'}; use a {k}D PSF"
            + (" or choose '3D volume'" if kernel.ndim == 3 else "")
        )


def _lazy_classical(
    lazy: Any, method: str, params: dict[str, Any], order: list[int], k: int, kernel: Any, dev: Any
) -> tuple[Any, list[float]]:
    """A lazy (dask) result, computed plane by plane (volume by volume) where it is viewed.

    The first plane is computed here, in the worker: it checks the method on
    this data before any layer is added, and gives the contrast limits.
    """
    x = lazy.transpose(tuple(order))
    lead = x.ndim - k
    x = x.rechunk({i: (1 if i < lead else -1) for i in range(x.ndim)})
    function = _plane_function(method, params, kernel, dev)
    lock = threading.Lock()  # torch (Richardson-Lucy) runs one plane at a time

    def block(b: np.ndarray) -> np.ndarray:
        planes = np.asarray(b).reshape(-1, *b.shape[lead:])
        with lock if method == "richardson-lucy" else contextlib.nullcontext():
            out = [np.asarray(function(p), np.float32) for p in planes]
        return np.stack(out).reshape(b.shape)

    result = x.map_blocks(block, dtype=np.float32, meta=np.array((), np.float32))
    first = block(np.asarray(x.blocks[(0,) * x.ndim]))
    return result.transpose(tuple(int(i) for i in np.argsort(order))), list(contrast_limits(first))


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
    last, as the core's functions take them. Richardson-Lucy yields once per
    iteration, the other methods once per plane or volume, and non-local means
    once per tile of a large plane: Cancel stops at the next of these steps.
    A single call (Wiener, TV or wavelets on one plane) cannot be interrupted;
    it yields ``(0, 0)`` first: busy, its length unknown. Wiener's automatic
    balance is estimated per plane.

    Lazy data (dask, zarr) gives a lazy result, computed plane by plane
    where napari shows it; only the first plane is computed here.
    """
    from napari_deconvnet.core.classical import richardson_lucy_iter
    from napari_deconvnet.core.devices import resolve_device

    start = time.perf_counter()
    spatial = [axes.index(a) for a in "ZYX"[3 - k :]]
    order = [i for i in range(len(axes)) if i not in spatial] + spatial
    shape = tuple(image.shape[i] for i in order)
    kernel, record, dev = None, None, None
    if psf_spec is not None:
        kernel, record = build_psf(psf_spec, k, shape[-k:])
        _check_kernel(kernel, k)
    if method == "richardson-lucy":
        dev = resolve_device(device or "auto")
    lazy = as_lazy(image)
    if lazy is not None:
        yield 0, 0
        result, limits = _lazy_classical(lazy, method, params, order, k, kernel, dev)
    else:
        x = np.asarray(image).transpose(order)
        if method == "richardson-lucy":
            out = yield from richardson_lucy_iter(x, kernel, device=dev, **params)
        else:
            out = yield from _planes(x, method, params, k, kernel)
        result = np.ascontiguousarray(np.asarray(out, np.float32).transpose(np.argsort(order)))
        limits = contrast_limits(result)
    return {
        "data": result,
        "lazy": lazy is not None,
        "seconds": time.perf_counter() - start,
        "axes": axes,
        "device": str(dev) if dev is not None else "cpu",
        "psf": record,
        "contrast_limits": limits,
    }


def _planes(
    x: np.ndarray, method: str, params: dict[str, Any], k: int, kernel: np.ndarray | None
) -> Generator[tuple[int, int], None, np.ndarray]:
    """`method` on every plane (volume) of the `k` trailing axes, yielding after each."""
    function = _plane_function(method, params, kernel, None)
    blocks = x.reshape(-1, *x.shape[-k:])
    out = np.empty(blocks.shape, np.float32)
    n = len(blocks)
    tiled = method == "nlm" and k == 2 and blocks[0].size > NLM_TILE**2
    yield 0, (n if n > 1 or tiled else 0)
    for i, block in enumerate(blocks):
        if tiled:
            tiles = _nlm_tiles(block, params)
            try:
                while True:
                    done = next(tiles)
                    yield done if n == 1 else (i, n)
            except StopIteration as finished:
                out[i] = finished.value
        else:
            out[i] = function(block)
        yield i + 1, n if n > 1 or tiled else 1
    return out.reshape(x.shape)
