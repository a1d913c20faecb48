"""Device choice, precision, loss scaling, free-memory queries and out-of-memory fallback."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import warnings
from typing import Any

import torch

from ._validation import RunWarning

__all__ = [
    "resolve_device",
    "resolve_precision",
    "precision_name",
    "dtype_name",
    "free_memory",
    "autocast",
    "cpu_has_native_bfloat16",
    "grad_scaler",
    "forward_tiles",
]

_PRECISIONS = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

#: Whether ``precision="auto"`` picks bfloat16 on CPUs with native bfloat16
#: units (AMX or AVX512-BF16) without being asked. Off: bfloat16 is 1.1-2x
#: faster there and costs under 0.02 dB (README, "Speed"), but its rounding
#: depends on the tile and block shapes (oneDNN picks its kernels, and so the
#: order of its sums, by shape), so a lazy, streamed or tiled restore then
#: differed from the in-memory one by about 1e-3 of the range (float32: about
#: 1e-6). By default a restore's numbers do not depend on the tiles, the
#: chunks or the cluster; ask for ``precision="bfloat16"``, or set
#: :data:`CPU_BFLOAT16_ENV` to ``1``, for the speed.
CPU_AUTO_BFLOAT16 = False

#: ``1`` (or ``true``, ``yes``, ``on``) lets ``precision="auto"`` pick bfloat16
#: on CPUs with bfloat16 units, in this process and every process it starts
#: (the command line, dask workers); ``0`` (``false``, ``no``, ``off``) keeps it
#: at float32; unset or anything else: :data:`CPU_AUTO_BFLOAT16`.
CPU_BFLOAT16_ENV = "NAPARI_DECONVNET_CPU_BFLOAT16"


def _auto_bfloat16_allowed() -> bool:
    """:data:`CPU_BFLOAT16_ENV` where it says yes or no, else :data:`CPU_AUTO_BFLOAT16`."""
    value = os.environ.get(CPU_BFLOAT16_ENV, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return CPU_AUTO_BFLOAT16


_log = logging.getLogger(__name__)


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` into a device.

    ``"auto"`` picks CUDA, then Apple MPS, then the CPU.

    Raises
    ------
    TypeError
        If `device` is not a string or a ``torch.device``.
    ValueError
        If the name is unknown or the hardware is not available.
    """
    if isinstance(device, torch.device):
        name = str(device)
    elif isinstance(device, str):
        name = device.strip().lower()
    else:
        raise TypeError(
            f"device must be a string such as 'auto', 'cpu', 'cuda' or 'mps', "
            f"got {type(device).__name__}"
        )
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as err:
        raise ValueError(
            f"unknown device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from err
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} was requested but CUDA is not available on this machine; "
                "use device='auto' or 'cpu'"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r} does not exist: this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
        return dev
    if dev.type == "mps":
        if not _mps_available():
            raise ValueError(
                f"device {device!r} was requested but Apple MPS is not available; "
                "use device='auto' or 'cpu'"
            )
        return dev
    raise ValueError(
        f"unsupported device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
    )


def dtype_name(dtype: torch.dtype) -> str:
    """``"float32"``, ``"bfloat16"``, ``"float16"``: a compute dtype as a precision name."""
    return str(dtype).removeprefix("torch.")


def precision_name(precision: Any, device: Any) -> str:
    """The precision a restore with `precision` runs in on `device`: ``"float32"``...

    ``"auto"`` resolved as :func:`resolve_precision` does it, for provenance:
    a bfloat16 or float16 result differs from a float32 one in the last
    percent of the range, and, unlike float32, with the tiles.
    """
    with warnings.catch_warnings():  # the restore itself warns of emulated bfloat16
        warnings.simplefilter("ignore", RuntimeWarning)
        dtype = resolve_precision(precision, resolve_device(device))
    return dtype_name(dtype)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """Compute dtype for inference on `device`.

    ``"auto"`` is float16 mixed precision on CUDA; on the CPU it is float32,
    or bfloat16 where the CPU computes bfloat16 natively
    (:func:`cpu_has_native_bfloat16`) and the environment variable
    :data:`CPU_BFLOAT16_ENV` (or :data:`CPU_AUTO_BFLOAT16`) allows it; float32
    on MPS. ``"float16"`` needs a
    GPU; ``"bfloat16"`` runs anywhere (emulated, so slow, on CPUs without
    bfloat16 units).

    Raises
    ------
    TypeError
        If `precision` is not a string.
    ValueError
        If it is unknown, or float16 is asked for on the CPU.
    """
    if not isinstance(precision, str):
        raise TypeError(f"precision must be a string, got {type(precision).__name__}")
    if precision == "auto":
        if device.type == "cuda":
            return torch.float16
        if device.type == "cpu" and _auto_bfloat16_allowed() and cpu_has_native_bfloat16():
            return torch.bfloat16
        return torch.float32
    if precision not in _PRECISIONS:
        raise ValueError(
            f"unknown precision {precision!r}; use 'auto', 'float32', 'float16' or 'bfloat16'"
        )
    dtype = _PRECISIONS[precision]
    if dtype == torch.float16 and device.type == "cpu":
        raise ValueError("precision 'float16' needs a GPU; on the CPU use 'float32' or 'bfloat16'")
    if dtype == torch.bfloat16 and device.type == "cpu" and not cpu_has_native_bfloat16():
        warnings.warn(
            "this CPU has no bfloat16 units (AMX or AVX512-BF16): precision='bfloat16' is "
            "emulated, several times slower than 'float32' (far slower for 3D models)",
            RunWarning,
            stacklevel=2,
        )
    return dtype


@functools.lru_cache(maxsize=1)
def cpu_has_native_bfloat16() -> bool:
    """Whether this CPU has bfloat16 matrix or vector units (AMX or AVX512-BF16).

    oneDNN must support bfloat16 here (``torch.ops.mkldnn._is_mkldnn_bf16_supported``)
    and, where ``/proc/cpuinfo`` can be read, the CPU must list ``amx_bf16``
    or ``avx512_bf16``: without them bfloat16 is emulated and slower than float32.
    """
    try:
        supported = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
    if not supported:
        return False
    flags = _cpu_flags()
    return flags is None or bool({"amx_bf16", "avx512_bf16"} & flags)


def _cpu_flags() -> set[str] | None:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        return None
    return None


def grad_scaler(device: torch.device) -> Any:
    """A loss scaler for float16 training on `device`.

    ``torch.amp.GradScaler(device.type)`` where torch has it (2.3 and later);
    on older torch, ``torch.cuda.amp.GradScaler()`` for CUDA.

    Raises
    ------
    ValueError
        On older torch for a device other than CUDA (float16 training there
        needs torch >= 2.3; use bfloat16 or float32).
    """
    amp = getattr(torch, "amp", None)
    scaler = getattr(amp, "GradScaler", None)
    if scaler is not None:
        return scaler(device.type)
    if device.type == "cuda":
        return torch.cuda.amp.GradScaler()
    raise ValueError(
        f"float16 training on {device.type!r} needs torch >= 2.3 (torch.amp.GradScaler), "
        f"this is torch {torch.__version__}; use precision='bfloat16' or 'float32'"
    )


def autocast(device: torch.device, dtype: torch.dtype):
    """Mixed-precision context for `dtype`, or a no-op for float32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@contextlib.contextmanager
def _ieee_float32_convolutions():
    """cuDNN convolutions in IEEE float32 inside the block, not TF32.

    TF32 (a 10-bit mantissa, on by default for cuDNN convolutions on Ampere
    and later) made a float32 restore on an H200 differ between tile sizes
    by 3e-4 of the range; in IEEE float32 tiles equal a whole image as on the
    CPU. torch >= 2.9 sets this per operator (``cudnn.conv.fp32_precision``);
    mixing that with the legacy ``cudnn.allow_tf32`` is an error there.
    """
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        saved = conv.fp32_precision
        conv.fp32_precision = "ieee"
        try:
            yield
        finally:
            conv.fp32_precision = saved
        return
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = saved


def inference_autocast(device: torch.device, dtype: torch.dtype):
    """`autocast` for restoring: float32 on a CUDA GPU is IEEE float32, not TF32.

    A user who asks for float32 gets it (tiled equals untiled to float32
    rounding); float16 and bfloat16 are the fast paths.
    """
    if dtype == torch.float32 and device.type == "cuda":
        return _ieee_float32_convolutions()
    return autocast(device, dtype)


def free_memory(device: torch.device) -> int:
    """Bytes that inference may use on `device` right now."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "mps":
        recommended = getattr(torch.mps, "recommended_max_memory", None)
        current = getattr(torch.mps, "current_allocated_memory", None)
        if recommended is not None and current is not None:
            return int(recommended() - current())
    import psutil

    return int(psutil.virtual_memory().available)


def _is_out_of_memory(err: BaseException) -> bool:
    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    if oom is not None and isinstance(err, oom):
        return True
    return isinstance(err, RuntimeError) and "out of memory" in str(err).lower()


def _empty_cache(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()


def forward_tiles(
    net: Any, x: torch.Tensor, *, halo: int, grid: int, center: bool = False
) -> torch.Tensor:
    """``net(x)`` for a batch of haloed tiles, in smaller pieces if memory runs out.

    With `center`, ``net.forward_center(x, halo)``: the tiles' centres only,
    without their halos (:meth:`~napari_deconvnet.core.model.DeconvNet.forward_center`).

    `x` holds tiles of shape ``(B, C, *[t + 2 * halo])`` whose origins lie on
    the network's `grid` (and `halo` is a multiple of it). On an out-of-memory
    error the batch is split in halves, then a single tile into sub-tiles on
    the grid with the same halo, until it fits: the output equals one call's,
    since every sub-tile still sees its full receptive field. A warning says
    so once per call. The error propagates when a tile of one grid cell does
    not fit.
    """
    try:
        return _call(net, x, halo, center)
    except Exception as err:
        if not _is_out_of_memory(err):
            raise
        _empty_cache(x.device)
        message = (
            f"out of memory on {x.device} with {x.shape[0]} tile(s) of "
            f"{tuple(x.shape[2:])} pixels (halo included); retrying with smaller tiles"
        )
        warnings.warn(message, RunWarning, stacklevel=2)
        _log.warning(message)
    return _forward_split(net, x, halo=halo, grid=grid, center=center)


def _call(net: Any, x: torch.Tensor, halo: int, center: bool) -> torch.Tensor:
    return net.forward_center(x, halo) if center else net(x)


def _forward_split(
    net: Any, x: torch.Tensor, *, halo: int, grid: int, center: bool = False
) -> torch.Tensor:
    if x.shape[0] > 1:
        half = x.shape[0] // 2
        parts = [x[:half], x[half:]]
        return torch.cat(
            [_forward_retry(net, p, halo=halo, grid=grid, center=center) for p in parts]
        )
    inner = [n - 2 * halo for n in x.shape[2:]]
    axis = max(range(len(inner)), key=lambda i: inner[i])
    cells = inner[axis] // grid
    if cells < 2:
        raise torch.cuda.OutOfMemoryError(
            f"a tile of {tuple(x.shape[2:])} pixels (halo {halo}) does not fit in the memory "
            f"of {x.device}; free memory or use device='cpu'"
        )
    # two sub-tiles on the grid, each with the full halo
    cut = (cells // 2) * grid
    d = 2 + axis
    first = x.narrow(d, 0, cut + 2 * halo)
    second = x.narrow(d, cut, inner[axis] - cut + 2 * halo)
    outs = [_forward_retry(net, p, halo=halo, grid=grid, center=center) for p in (first, second)]
    if center:  # the two centres, side by side
        return torch.cat(outs, dim=d)
    keep = [outs[0].narrow(d, 0, cut + halo), outs[1].narrow(d, halo, outs[1].shape[d] - halo)]
    return torch.cat(keep, dim=d)


def _forward_retry(
    net: Any, x: torch.Tensor, *, halo: int, grid: int, center: bool = False
) -> torch.Tensor:
    try:
        return _call(net, x, halo, center)
    except Exception as err:
        if not _is_out_of_memory(err):
            raise
        _empty_cache(x.device)
    return _forward_split(net, x, halo=halo, grid=grid, center=center)
