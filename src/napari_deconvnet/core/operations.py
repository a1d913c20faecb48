"""Run any operation of the specs on a layer-shaped array: methods and synthesis.

The widgets and the command line run these generators. Each takes an array
of any layout (``axes`` letters from ``"TZCYXS"``, as
:func:`~napari_deconvnet.restore`), runs the operation on every plane or
volume, yields ``(done, total)`` progress and returns the result. Closing the
generator (a napari worker's ``quit``) stops it at the next step.

- :func:`run_method_iter` / :func:`run_method`: a restoration method by name
  (:func:`~napari_deconvnet.list_methods`: shipped models, classical
  methods, any registered one) or a model file.
- :func:`synthesize_iter`: :func:`~napari_deconvnet.synthesize` plane by
  plane (volume by volume for a 3D PSF).

This module imports neither torch nor napari; the operations import what they
need when they run.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import inspect
import math
import os
import threading
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any

import numpy as np

from ._validation import is_dask, is_tensor, real_array, unmasked
from .axes import check_axes, infer_axes
from .channel_psfs import by_channel, checked_channel_axis, per_channel, psf_for_channel
from .generators import check_callbacks, drain
from .specs import Spec, get, implementation, list_methods, specs

__all__ = ["run_method", "run_method_iter", "synthesize_iter"]

# check_axes validates letters for a model; any 2D-capable operation needs no Z


# ------------------------------------------------------------------ layout


def _spatial(shape: tuple[int, ...], axes: str | None, k: int | None, dims: tuple[int, ...]):
    """Indices of the spatial axes (in Z, Y, X order) an operation runs on.

    With `axes`, the Z, Y and X it has (Z only where `dims` allows 3D); without,
    the last `k` axes (`k` defaults to 2), but for planes the axes restore
    guesses: ``(Y, X, 3|4)`` and ``(T, Y, X, 3|4)`` are RGB(A), each sample a
    plane (:func:`~.axes.infer_axes`).
    """
    ndim = len(shape)
    if axes is None and (k or 2) == 2 and ndim in (3, 4) and shape[-1] in (3, 4):
        axes = infer_axes(shape, 2)  # YXS / TYXS, as dn.restore reads such an array
    if axes is None:
        k = k or 2
        if ndim < k:
            # k is 3 for a 3D PSF or a method that only works on volumes
            raise ValueError(
                f"the image has {ndim} dimension(s) but the operation works on {k}D "
                f"{'planes' if k == 2 else 'volumes'} here"
                + (
                    "; pass a volume (ZYX)"
                    if k == 3
                    else "; pass an image of 2 dimensions or more"
                )
            )
        return list(range(ndim - k, ndim))
    axes = check_axes(axes, shape, 2)
    letters = "ZYX" if "Z" in axes and 3 in dims else "YX"
    if 2 not in dims and letters == "YX":
        raise ValueError(
            f"this operation works on 3D volumes and needs a 'Z' axis, but axes are {axes!r}"
        )
    return [axes.index(a) for a in letters]


def _blocks_order(ndim: int, spatial: list[int]) -> list[int]:
    return [i for i in range(ndim) if i not in spatial] + spatial


def _plane_psf(kernel: np.ndarray | None, shape: tuple, axes: Any) -> np.ndarray | None:
    """A ``(1, Y, X)`` kernel as the plane's it is (a layer or a TIFF of one plane holds
    it so) beside a plane or planes (a 2D image, an RGB one, or `axes` without a Z), as
    dn.restore takes it: classical methods refused it beside a plane and took a TYX
    stack beside it as volumes, synthesis refused it on planes (session 68). Beside a
    volume (a 3D image without axes, or axes with a Z) it stays a volume's (one plane
    deep), as before."""
    if isinstance(axes, str):
        planes = "Z" not in axes.upper()
    else:  # a plane, or (Y, X, 3|4) and (T, Y, X, 3|4) as restore reads them (RGB)
        planes = len(shape) == 2 or (len(shape) in (3, 4) and shape[-1] in (3, 4))
    if kernel is not None and planes:
        from .psf import single_leading_axes

        return kernel[(0,) * single_leading_axes(kernel.shape, 2)]
    return kernel


def _named_kind_makes(psf: Any, ndim: int) -> bool:
    """Whether `psf` is a :func:`~.psf.named_psf` of a known kind that makes `ndim`-D PSFs."""
    from .psf import named_psf
    from .specs import get, specs

    if not named_psf(psf):
        return False
    kind = psf if isinstance(psf, str) else psf["kind"]
    return kind in specs("psf", available=False) and ndim in get("psf", kind).ndim


def _volume_work(axes: Any, ndims: Sequence[int]) -> bool:
    """Whether the work goes volume by volume: `axes` with a Z and 3 in `ndims`."""
    return isinstance(axes, str) and "Z" in axes.upper() and 3 in ndims


def _as_psf(psf: Any, axes: Any = None, ndims: Sequence[int] = (2,)) -> np.ndarray | None:
    """`psf` as an array; a :func:`~.psf.named_psf` is made in 3D beside `axes` with a Z
    when the work goes volume by volume (3 in `ndims`) and its kind makes 3D PSFs, as
    restore makes a name in the model's dimensions (run_method and the CLI deconvolved a
    ZYX volume plane by plane with the 2D default of ``psf="gaussian"``, session 69)."""
    if psf is None:
        return None
    from .psf import as_psf, psf_in_dimensions, warn_psf_order

    warn_psf_order(psf, axes)
    if _volume_work(axes, ndims) and _named_kind_makes(psf, 3):
        psf = psf_in_dimensions(psf, 3)
    return as_psf(psf)


def _channel_psfs_in_dimensions(psfs: list, axes: Any, ndims: Sequence[int]) -> list:
    """One PSF per channel with its names made alike: in 3D beside `axes` with a Z when
    every one is a name of a kind that makes 3D PSFs (see :func:`_as_psf`), else each
    name as its plane's (``["gaussian", "airy"]``: a 3D Gaussian beside a 2D Airy disk
    was refused in synthesis and deconvolved one channel in 3D, the other in 2D)."""
    from .psf import named_psf, psf_in_dimensions

    if not any(named_psf(p) for p in psfs):
        return psfs
    if _volume_work(axes, ndims) and all(_named_kind_makes(p, 3) for p in psfs):
        return [psf_in_dimensions(p, 3) for p in psfs]
    # (a kind that makes 3D PSFs only, widefield, stays as it was)
    return [psf_in_dimensions(p, 2) if _named_kind_makes(p, 2) else p for p in psfs]


# ----------------------------------------------------------------- methods


def method_spec(method: Any) -> Spec:
    """The spec of `method`: a name of :func:`~napari_deconvnet.list_methods` or a model file.

    Raises
    ------
    ValueError
        An unknown name (the message lists the methods).
    """
    from .model_specs import model_spec

    if isinstance(method, (str, os.PathLike)):
        name = os.fspath(method)
        registered = specs("method", available=False)
        if name in registered:  # classical (or any registered kind): no model file is read
            return get("method", name)
        every = list_methods()
        if name in every:
            return every[name]
        if name.endswith(".safetensors") or os.path.exists(name):
            from .persistence import model_info

            return model_spec(os.path.basename(name), model_info(name), model=name)
        raise ValueError(
            f"unknown model or method {name!r}; accepted names are {list(every)}, or the "
            "path of a .safetensors model file"
        )
    if hasattr(method, "config") and hasattr(method, "metadata"):  # a loaded DeconvNet
        info = {"metadata": dict(method.metadata), "config": {"ndim": method.config.ndim}}
        name = str(method.metadata.get("name", "model"))
        return dataclasses.replace(model_spec(name, info), extra={"model": method})
    raise TypeError(
        f"method must be a method name, a model file or a loaded model, got "
        f"{type(method).__name__}"
    )


def _takes(function: Callable, name: str) -> bool:
    try:
        return name in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def run_method_iter(
    image: Any,
    method: Any = "default",
    *,
    psf: Any = None,
    axes: str | None = None,
    device: Any = "auto",
    **params: Any,
) -> Generator[tuple[int, int], None, Any]:
    """Restore an image with any method, as a generator of ``(done, total)`` progress.

    Parameters
    ----------
    image : ndarray or dask array
        Any real dtype and layout (see `axes`).
    method : str, path or DeconvNet
        A name of :func:`~napari_deconvnet.list_methods` (a shipped model,
        ``"default"``, a classical method such as ``"richardson-lucy"`` or
        ``"median"``, or any registered one), the path of a ``.safetensors``
        model file, or a loaded model.
    psf : ndarray, str or dict, optional
        The PSF of a method that needs one (:attr:`Spec.needs_psf`): an
        array, a :func:`~napari_deconvnet.make_psf` name, or
        ``{"kind": name, **params}``. It may have fewer dimensions than the
        blocks the method works on (each plane is then deconvolved with it).
    axes : str, optional
        One letter per dimension from ``"TZCYXS"``. A classical method runs
        on every plane of Y and X, or on every volume of Z, Y and X where
        `axes` has a Z and the method works in 3D (``3 in spec.ndim``); T, C
        and S (e.g. the channels of an RGB ``"YXS"`` image) are independent.
        Default: the last two axes, or three for a 3D PSF or a 3D-only
        method. Models default as :func:`~napari_deconvnet.restore`.
    device : str
        For methods that run on torch (models, Richardson-Lucy): ``"auto"``,
        ``"cpu"``, ``"cuda"``...
    **params
        The method's parameters (``spec.params``: e.g. ``iterations`` of
        Richardson-Lucy, ``tile``, ``overlap`` and ``batch_size`` of a model),
        checked against their types and ranges; strings are parsed.

    Yields
    ------
    (done, total) : tuple of int
        Steps done: iterations (Richardson-Lucy), tiles (models, non-local
        means) or planes. ``(0, 0)`` means busy on one step of unknown length.

    Returns
    -------
    ndarray of float32 in the shape of `image`; for dask input a dask array
    computed plane by plane where it is read (its first block is computed
    here, so that errors come before a result exists).

    Raises
    ------
    ValueError
        An unknown method or parameter (the message lists the accepted ones),
        a parameter out of range, a missing or unwanted PSF, axes that do not
        fit the image.
    TypeError
        Parameters or images of the wrong type.

    Examples
    --------
    >>> import numpy as np
    >>> stack = np.zeros((2, 9, 9), np.float32); stack[:, 4, 4] = 1
    >>> out = run_method(stack, "median", size=3)
    >>> out.shape, out.dtype, float(out.max())
    ((2, 9, 9), dtype('float32'), 0.0)
    """
    spec = method_spec(method)
    checked = spec.check(params, fill=True)
    image = unmasked(image)  # (a masked array's mask is not applied: said so)
    if is_tensor(image) or not (hasattr(image, "shape") and hasattr(image, "dtype")):
        # nested lists and tensors as restore takes them; anything else a clear TypeError
        # (arrays that read lazily, such as zarr's, stay as they are: read plane by plane)
        image = real_array(image)
    if spec.needs_psf and psf is None:
        raise ValueError(
            f"method {spec.name!r} deconvolves and needs a psf: an array, a PSF kind "
            "(e.g. 'gaussian') or a dict such as {'kind': 'gaussian', 'sigma': 2}"
        )
    if psf is not None and not spec.needs_psf:
        raise ValueError(
            f"method {spec.name!r} takes no PSF (it does not deconvolve); drop psf, or "
            "choose a deconvolution method"
        )
    if spec.kind == "model":
        return (yield from _run_model(image, spec, checked, psf, axes, device))
    alpha = _opacity_axis(image, axes)
    if alpha is not None:  # opacity is a mask, no image: kept as it is, as restore keeps it
        from .colour import join_alpha, split_alpha

        colours, opacity = split_alpha(image, alpha)
        out = yield from run_method_iter(
            colours, method, psf=psf, axes=axes.upper(),
            device=device, **params,
        )  # fmt: skip
        return join_alpha(out, opacity, alpha)
    if per_channel(psf):  # one PSF per channel: each channel alone (core.channel_psfs)
        axes, index = checked_channel_axis(psf, axes, tuple(image.shape), 2)
        psf = _channel_psfs_in_dimensions(list(psf), axes, spec.ndim)

        def one(channel: Any, kernel: Any, sub_axes: str, c: int) -> Any:
            return _run_classical(channel, spec, checked, kernel, sub_axes, device)

        return (yield from by_channel(image, psf, axes, index, one))
    colours = _channels_apart(spec, checked, axes, tuple(image.shape))
    if colours is not None:  # statistics of each channel's own (its impulse levels)

        def each(channel: Any, kernel: Any, sub_axes: str, c: int) -> Any:
            return _run_classical(channel, spec, checked, kernel, sub_axes, device)

        n = int(image.shape[colours])
        return (yield from by_channel(image, [psf] * n, axes, colours, each))
    return (yield from _run_classical(image, spec, checked, psf, axes, device))


def _opacity_axis(image: Any, axes: Any) -> int | None:
    """The ``S`` axis of an RGBA or grey-with-opacity image whose last sample a classical
    method must leave alone (:func:`~.colour.alpha_axis`), when `axes` name it (the
    Restore widget and the CLI pass them for RGB layers and files). Classical methods
    filtered the opacity as an image: the switching median took its 0 and 255 as
    impulse levels and changed a soft mask's edge by up to 127 (session 68). Without
    axes an array's last axis of 4 is not taken for opacity here (a stack of 4-pixel
    rows is one too)."""
    from .colour import alpha_axis

    shape = tuple(image.shape)
    if not isinstance(axes, str) or len(axes) != len(shape):
        return None
    return alpha_axis(shape, axes.upper())


def _channels_apart(spec: Spec, params: dict, axes: Any, shape: tuple) -> int | None:
    """The index of the channel (``C``) or colour (``S``) axis of `axes` when `spec` takes
    parameters from statistics of the image (``extra["image_defaults"]``) that are not
    given: each channel then takes its own (the switching median's impulse levels: a
    channel in 200-800 beside one in 0-1 took the whole image's 0 and 1000 and kept its
    impulses), while planes and frames of one channel share them. None otherwise."""
    defaults = spec.extra.get("image_defaults") or {}
    if not isinstance(axes, str) or not any(params.get(k) is None for k in defaults):
        return None
    letters = axes.upper()
    if len(letters) != len(shape):
        return None
    for letter in "CS":
        if letter in letters and shape[letters.index(letter)] > 1:
            return letters.index(letter)
    return None


def _run_model(image, spec, params, psf, axes, device):
    from .model_specs import refine_option
    from .restoration import restore, restore_iter

    model = spec.extra.get("model", spec.name)
    options = {"psf": psf, "axes": axes, "device": device, **refine_option(params)}
    if is_dask(image):
        yield 0, 0
        progress, stop, _ = _LAZY_CALLBACKS.get()  # run_method's, for the result's blocks
        return restore(image, model, progress=progress, stop=stop, **options)
    return (yield from restore_iter(np.asarray(image), model, **options))


def _extra(spec: Spec, function: Callable, kernel: Any, device: Any) -> dict[str, Any]:
    """The PSF (of a deconvolution) and the device (of a function that takes one)."""
    extra = {"psf": kernel} if spec.needs_psf else {}
    if _takes(function, "device"):
        extra["device"] = device
    return extra


#: One lock for every call of a method tagged "serial" (its library is not thread-safe).
_SERIAL = threading.Lock()


def _classical_function(spec: Spec, kernel: Any, params: dict, device: Any) -> Callable:
    function = spec.resolve()
    extra = _extra(spec, function, kernel, device)

    serial = "serial" in spec.tags  # its library is not thread-safe: one call at a time

    def run(block: np.ndarray) -> np.ndarray:
        with _SERIAL if serial else contextlib.nullcontext():
            return np.asarray(function(block, **extra, **params), dtype=np.float32)

    run.locked = "device" in extra  # torch work: one block at a time
    return run


def _run_classical(image, spec, params, psf, axes, device):
    shape = tuple(image.shape)
    kernel = _plane_psf(_as_psf(psf, axes, spec.ndim), shape, axes)
    k = 3 if (kernel is not None and kernel.ndim == 3) or 2 not in spec.ndim else 2
    if kernel is not None and kernel.ndim > len(shape):
        raise ValueError(
            f"the PSF is {kernel.ndim}D (shape {kernel.shape}) but the image has "
            f"{len(shape)} dimension(s); pass a volume (ZYX) for a 3D PSF, or a 2D PSF for "
            "a plane (e.g. 'airy' or 'gaussian')"
        )
    spatial = _spatial(shape, axes, k, spec.ndim)
    if kernel is not None and kernel.ndim > len(spatial):
        raise ValueError(
            f"the PSF is {kernel.ndim}D but the image is restored as {len(spatial)}D "
            f"{'planes' if len(spatial) == 2 else 'volumes'}; use a {len(spatial)}D PSF"
            + (" or axes with a Z" if kernel.ndim == 3 else "")
        )
    if kernel is not None and spec.needs_psf:  # a generated PSF fits the image
        from .psf import fit_psf

        kernel = fit_psf(psf, kernel, tuple(shape[i] for i in spatial))
    if (
        kernel is not None
        and spec.needs_psf
        and any(
            s > n
            for s, n in zip(kernel.shape[::-1], [shape[i] for i in spatial][::-1], strict=False)
        )
    ):
        raise ValueError(
            f"the PSF of shape {kernel.shape} is bigger than the image's planes "
            f"{tuple(shape[i] for i in spatial)}; crop it (make_psf(kind, shape=...))"
        )
    order = _blocks_order(len(shape), spatial)
    params = {**params, **_image_defaults(image, spec, params)}
    run = _classical_function(spec, kernel, params, device)
    if is_dask(image):
        yield 0, 0
        return _lazy_blocks(image, order, len(spatial), run, _LAZY_CALLBACKS.get()[2])
    x = np.asarray(image).transpose(order)
    iterate = spec.extra.get("iterate")
    if iterate is not None:
        out = yield from _iterate(iterate, spec, x, kernel, params, device)
    else:
        out = yield from _each_block(x, len(spatial), run)
    return np.ascontiguousarray(np.asarray(out, np.float32).transpose(np.argsort(order)))


def _image_defaults(image: Any, spec: Spec, params: dict) -> dict[str, float]:
    """The parameters of ``spec.extra["image_defaults"]`` not given, as statistics of the
    whole image (a dask image's in one pass over it), for a method run block by block."""
    wanted = {
        key: statistic
        for key, statistic in (spec.extra.get("image_defaults") or {}).items()
        if params.get(key) is None
    }
    if not wanted:
        return {}
    if is_dask(image):
        import dask

        reduce = {"min": image.min, "max": image.max}
        values = dask.compute(*(reduce[s]() for s in wanted.values()))
    else:
        arr = np.asarray(image)
        values = [{"min": np.min, "max": np.max}[s](arr) for s in wanted.values()]
    if not all(math.isfinite(float(v)) for v in values):
        # (the method then refused "low must be a finite impulse level", a parameter the
        # user never gave, session 70)
        raise ValueError("image contains NaN or infinite values; replace them first")
    return {key: float(v) for key, v in zip(wanted, values, strict=True)}


def _iterate(name: str, spec: Spec, x, kernel, params, device):
    """The method's generator form (``extra["iterate"]``) on the whole stack."""
    function = implementation(name)
    return (yield from function(x, **_extra(spec, function, kernel, device), **params))


def _each_block(x: np.ndarray, k: int, run: Callable) -> Generator:
    """`run` on every block of the `k` trailing axes, yielding after each."""
    blocks = x.reshape(-1, *x.shape[x.ndim - k :])
    n = len(blocks)
    out = np.empty(blocks.shape, np.float32)
    yield 0, (n if n > 1 else 0)
    for i, block in enumerate(blocks):
        out[i] = run(block)
        yield i + 1, n
    return out.reshape(x.shape)


#: run_method's ``progress`` and ``stop`` while it runs on dask input, and one count of
#: blocks for them: the lazy result calls them as its blocks are computed (it reported
#: (0, 0) once and never stopped); every lazy part of one call (a channel of its own PSF
#: each) adds its blocks to the one count, so progress runs once from 0 to all of them
_LAZY_CALLBACKS: contextvars.ContextVar[tuple[Any, Any, Any]] = contextvars.ContextVar(
    "lazy_callbacks", default=(None, None, None)
)


def _lazy_blocks(
    lazy: Any,
    order: list[int],
    k: int,
    run: Callable,
    hooks: Any = None,
) -> Any:
    """A dask result computed block by block (plane or volume) where it is read.

    The first block is computed now: it checks the method on this data before
    any result exists, and its result is kept (reading it again reads the
    input block but does not run the method again). `progress` is called
    with ``(blocks computed, blocks)`` after each block, and a set `stop`
    raises :class:`Cancelled` before the next one, as a lazy restore's: both
    through `hooks` (a :class:`~.blocks.Hooks` that run_method shares between
    the parts of one call; this result's blocks are added to its total).
    """
    from .lazy import check_lazy_callbacks

    if hooks is not None:
        check_lazy_callbacks(hooks.progress, hooks.stop)
    x = lazy.transpose(tuple(order))
    lead = x.ndim - k
    x = x.rechunk({i: (1 if i < lead else -1) for i in range(x.ndim)})
    lock = threading.Lock() if run.locked else None
    first_key = (0,) * x.ndim
    # counted as a lazy restore counts its blocks: a block computed again counts once,
    # and a count never passes the total (reading the result twice reached 7 of 4); this
    # part's blocks (a channel with its own PSF) join the call's one count
    if hooks is not None:
        hooks = hooks.part(math.prod(x.numblocks))

    def compute(b: np.ndarray) -> np.ndarray:
        planes = np.asarray(b).reshape(-1, *b.shape[lead:])
        with lock if lock is not None else contextlib.nullcontext():
            out = [run(p) for p in planes]
        return np.stack(out).reshape(b.shape).astype(np.float32, copy=False)

    def block(b: np.ndarray, hooks: Any, block_info: Mapping | None = None) -> np.ndarray:
        where = tuple((block_info or {}).get(0, {}).get("chunk-location", ()))
        if hooks is not None:
            hooks.check()
        # the first block was computed at the start: counted when read, as the others
        out = first if where == first_key else compute(b)
        if hooks is not None:
            hooks.done(where)
        return out

    first = compute(np.asarray(x.blocks[first_key]))
    # the hooks from one task per compute, which restarts their count (Hooks.restart)
    started = hooks.start_task() if hooks is not None else None
    result = x.map_blocks(block, started, dtype=np.float32, meta=np.array((), np.float32))
    return result.transpose(tuple(int(i) for i in np.argsort(order)))


def run_method(
    image: Any,
    method: Any = "default",
    *,
    psf: Any = None,
    axes: str | None = None,
    device: Any = "auto",
    progress: Callable[[int, int], Any] | None = None,
    stop: threading.Event | None = None,
    **params: Any,
) -> Any:
    """Restore an image with any method: :func:`run_method_iter` run to its end.

    Parameters
    ----------
    image, method, psf, axes, device, **params
        As :func:`run_method_iter`.
    progress : callable, optional
        Called as ``progress(done, total)`` at every step.
    stop : threading.Event, optional
        When set, the work stops at the next step and
        :class:`~napari_deconvnet.Cancelled` is raised.

    Returns
    -------
    ndarray of float32 (a dask array for dask input), the shape of `image`.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((32, 32)); image[16, 16] = 1
    >>> from napari_deconvnet.core.psf import blur
    >>> out = run_method(blur(image, "gaussian"), "richardson-lucy", psf="gaussian",
    ...                  iterations=20, device="cpu")
    >>> bool(out[16, 16] > 0.3)
    True
    """
    if not is_dask(image):
        return drain(
            run_method_iter(image, method, psf=psf, axes=axes, device=device, **params),
            progress=progress,
            stop=stop,
        )
    # lazy: the result's blocks report and stop as they are computed
    from .blocks import Hooks

    stop = check_callbacks(progress, stop)
    hooks = Hooks(progress, stop, 0) if progress is not None or stop is not None else None
    token = _LAZY_CALLBACKS.set((progress, stop, hooks))
    try:
        return drain(run_method_iter(image, method, psf=psf, axes=axes, device=device, **params))
    finally:
        _LAZY_CALLBACKS.reset(token)


# --------------------------------------------------------------- synthesis


def synthesize_iter(
    clean: Any,
    noise: str | None = "gaussian",
    *,
    psf: Any = None,
    axes: str | None = None,
    seed: Any = None,
    clip: tuple[float, float] | None = None,
    **params: Any,
) -> Generator[tuple[int, int], None, np.ndarray]:
    """:func:`~napari_deconvnet.synthesize` plane by plane, as a generator of progress.

    Parameters
    ----------
    clean : ndarray or dask array
        Clean image of any layout (read one block at a time).
    noise, psf, clip, **params
        As :func:`~napari_deconvnet.synthesize`: a name of
        :func:`~napari_deconvnet.list_noise_models` and its parameters. `psf`
        may also be a list of PSFs, one per channel of the ``C`` axis of
        `axes` (:mod:`~napari_deconvnet.core.channel_psfs`): each channel is
        blurred with its own.
    axes : str, optional
        One letter per dimension from ``"TZCYXS"``: the blocks are the
        planes of Y and X, or the volumes of Z, Y and X where `axes` has a Z;
        T, C and S (RGB samples, e.g. ``"YXS"``) are independent. Default:
        the last two axes, or three for a 3D PSF.
    seed : int or numpy.random.Generator, optional
        One generator, seeded once, draws every block in order (the other
        axes first, then the spatial ones), so the same seed gives the same
        result, and an image of one block gives exactly
        ``synthesize(clean, noise, psf=psf, seed=seed, **params)``.

    Yields
    ------
    (done, total) : tuple of int
        Blocks done.

    Returns
    -------
    ndarray of float32, the shape of `clean`.

    Notes
    -----
    Parameters that default to a statistic of the image (salt-and-pepper's
    ``low`` and ``high``: its minimum and maximum; declared in the noise
    spec's ``extra["image_defaults"]``) are computed once on the whole
    (blurred) image, not per block; with a PSF, every block is then blurred
    first, in a pass of its own (the progress counts both passes).

    Examples
    --------
    >>> import numpy as np
    >>> from napari_deconvnet.core.noise import synthesize
    >>> plane = np.full((8, 8), 0.5)
    >>> one = drain(synthesize_iter(plane, "gaussian", sigma=0.1, seed=3))
    >>> bool(np.array_equal(one, synthesize(plane, "gaussian", sigma=0.1, seed=3)))
    True
    """
    from .noise import _noise_dict, check_seed, noise_spec, numpy_seed, synthesize

    noise, params = _noise_dict(noise, params)  # (a dict, as synthesize takes it)
    if not is_dask(clean):  # lists and tensors as synthesize takes them (raw errors before)
        clean = real_array(clean, "clean")
    alpha = _opacity_axis(clean, axes)
    if alpha is not None:  # opacity is a mask: kept bit for bit, as run_method keeps it
        from .colour import join_alpha, split_alpha

        colours, opacity = split_alpha(clean, alpha)
        out = yield from synthesize_iter(
            colours, noise, psf=psf, axes=axes.upper(), seed=seed, clip=clip, **params
        )
        return np.ascontiguousarray(join_alpha(out, np.asarray(opacity), alpha))
    check_seed(seed)
    spec = noise_spec(noise)
    params = spec.check(params)
    shape = tuple(clean.shape)
    kernels = None  # one PSF per channel (core.channel_psfs): each block its channel's
    if per_channel(psf):
        axes, _ = checked_channel_axis(psf, axes, shape, 2)
        psf = _channel_psfs_in_dimensions(list(psf), axes, (2, 3))
        kernels = [_plane_psf(_as_psf(p, axes, (2, 3)), shape, axes) for p in psf]
        kernel = psf_for_channel(kernels, np.ndim)
    else:
        kernel = _plane_psf(_as_psf(psf, axes, (2, 3)), shape, axes)
    k = min(max(2, kernel.ndim if kernel is not None else 2), len(shape))
    spatial = _spatial(shape, axes, k, (2, 3))
    if kernel is not None and kernel.ndim > len(spatial):
        raise ValueError(
            f"the PSF is {kernel.ndim}D but the image is synthesized as {len(spatial)}D "
            "planes; pass axes with a Z, or a 2D PSF"
        )
    order = _blocks_order(len(shape), spatial)
    x = clean.transpose(tuple(order)) if hasattr(clean, "transpose") else np.transpose(clean)
    lead = tuple(x.shape[: x.ndim - len(spatial)])
    at = order.index(axes.index("C")) if kernels is not None else None

    def kernel_of(index: tuple[int, ...]) -> Any:
        return kernel if kernels is None else kernels[index[at]]

    total = int(np.prod(lead, dtype=np.int64))
    out = np.empty(x.shape, np.float32)
    statistics = any(params.get(k) is None for k in spec.extra.get("image_defaults") or {})
    passes = 2 if statistics and kernel is not None else 1
    yield 0, passes * total
    if passes == 2:
        # the statistics are the blurred image's (as synthesize's): blur every block first
        from .psf import blur

        for i, index in enumerate(np.ndindex(lead)):
            out[index] = blur(np.asarray(x[index], np.float32), kernel_of(index))
            yield i + 1, 2 * total
        x, kernel, kernels = out, None, None
    found = _image_defaults(x, spec, params)
    if not all(np.isfinite(v) for v in found.values()):  # (before synthesize checks it)
        raise ValueError("clean contains NaN or infinite values; replace them first")
    params.update(found)
    rng = np.random.default_rng(numpy_seed(seed))
    for i, index in enumerate(np.ndindex(lead)):
        block = np.asarray(x[index])
        kernel = kernel_of(index)
        out[index] = synthesize(block, spec.name, psf=kernel, seed=rng, clip=clip, **params)
        yield (passes - 1) * total + i + 1, passes * total
    return np.ascontiguousarray(out.transpose(np.argsort(order)))
