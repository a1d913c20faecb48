"""The cache-blocked CPU SSIM kernel, and the Gaussian window every SSIM path uses.

:func:`ssim_map_blocked` computes the SSIM map of large 2D images on the CPU
several times faster than scipy's separable filters: each strip of rows
(plus the filter's halo) is padded, shifted, squared and filtered while it
sits in cache, by two products with band matrices of Gaussian weights, and
strips run on worker threads whose torch operations are single-threaded.
:mod:`napari_deconvnet.core.metrics` validates the inputs, picks this path or
the differentiable one, and owns the public :func:`~napari_deconvnet.ssim`.

Worker threads get one intra-op thread each (see :func:`single_threaded_pool`);
torch's thread count seen by every other thread is left as it was.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

__all__ = [
    "K1",
    "K2",
    "TRUNCATE",
    "gaussian_weights",
    "single_threaded_pool",
    "ssim_map_blocked",
    "symmetric_index",
]

#: SSIM's constants: ``C1 = (K1 * data_range)**2``, ``C2 = (K2 * data_range)**2``.
K1 = 0.01
K2 = 0.03
#: scikit-image's (scipy's) truncation of the Gaussian: an 11-tap window for sigma=1.5.
TRUNCATE = 3.5
_BLOCK_ROWS = 32  # rows per strip (fits in L2 cache)
_BLOCK_COLS = 32  # columns per block of the band-matrix product along the rows


def gaussian_weights(sigma: float) -> np.ndarray:
    """scipy.ndimage's 1-D Gaussian: radius ``int(3.5 * sigma + 0.5)``, sum 1."""
    radius = int(TRUNCATE * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-0.5 / sigma**2 * x**2)
    return w / w.sum()


def symmetric_index(n: int, lo: int, hi: int, device: torch.device) -> torch.Tensor:
    """Indices of scipy.ndimage's ``mode="reflect"`` padding (d c b a | a b c d | d c b a)."""
    idx = np.arange(-lo, n + hi) % (2 * n)
    return torch.as_tensor(np.where(idx >= n, 2 * n - 1 - idx, idx), device=device)


def _strips(
    x: torch.Tensor,
    y: torch.Tensor,
    out: torch.Tensor,
    rows: range,
    shift: float,
    scale: float,
    weights: np.ndarray,
    pad: int = 0,
    mean: float | None = None,
) -> tuple[float, float]:
    """SSIM of output `rows` of one ``(H, W)`` image, a strip of rows at a time, into `out`.

    The images are shifted by `shift`; `mean` (default: `shift`) is added back to
    their local means (an image shifted before, e.g. scaled to unit range after
    its shift, passes ``shift=0`` and its shift as `mean`).

    Returns the sum of those rows of the map, and its sum without a `pad`-wide
    border of the image (for the mean), taken while each strip is in cache.
    """
    r = (len(weights) - 1) // 2
    h, width = x.shape
    dtype = x.dtype
    blocks = math.ceil(width / _BLOCK_COLS)
    row_index = symmetric_index(h, r, r, x.device)
    # columns padded up to whole blocks (the extra outputs are dropped)
    cols = symmetric_index(width, r, r + blocks * _BLOCK_COLS - width, x.device)
    kernel = torch.as_tensor(weights, dtype=dtype)
    down = torch.zeros(_BLOCK_ROWS, _BLOCK_ROWS + 2 * r, dtype=dtype)
    for i in range(_BLOCK_ROWS):
        down[i, i : i + 2 * r + 1] = kernel
    across = torch.zeros(_BLOCK_COLS + 2 * r, _BLOCK_COLS, dtype=dtype)
    for i in range(_BLOCK_COLS):
        across[i : i + 2 * r + 1, i] = kernel
    # unlike the plain path, the images are only shifted (the constants are scaled)
    c1, c2 = (K1 * scale) ** 2, (K2 * scale) ** 2
    total = inner = 0.0
    padded = cols.numel()
    # buffers reused by every strip: fresh megabyte-sized tensors would each cost
    # page faults, as large allocations go back to the system when freed
    full_buf = torch.empty(4, _BLOCK_ROWS + 2 * r, padded, dtype=dtype)
    full_v = torch.empty(4, _BLOCK_ROWS, padded, dtype=dtype)
    full_win = torch.empty(4, _BLOCK_ROWS, blocks, _BLOCK_COLS + 2 * r, dtype=dtype)
    full_f = torch.empty(4 * _BLOCK_ROWS * blocks, _BLOCK_COLS, dtype=dtype)
    full_num = torch.empty(_BLOCK_ROWS, width, dtype=dtype)
    full_den = torch.empty(_BLOCK_ROWS, width, dtype=dtype)
    for i0 in range(rows.start, rows.stop, _BLOCK_ROWS):
        s = min(_BLOCK_ROWS, rows.stop - i0)
        buf = full_buf if s == _BLOCK_ROWS else torch.empty(4, s + 2 * r, padded, dtype=dtype)
        xs, ys, sq, xy = buf.unbind(0)
        for src, dst in ((x, xs), (y, ys)):
            if i0 >= r and i0 + s + r <= h and padded - width - r <= width:
                # inside: copy the rows shifted, then mirror the borders (scipy's reflect)
                torch.sub(src[i0 - r : i0 + s + r], shift, out=dst[:, r : r + width])
                dst[:, :r] = dst[:, r : 2 * r].flip(1)
                right = padded - width - r
                dst[:, r + width :] = dst[:, r + width - right : r + width].flip(1)
            else:  # the first and last strips (and tiny images): gather
                rows_ = src.index_select(0, row_index[i0 : i0 + s + 2 * r])
                torch.index_select(rows_, 1, cols, out=dst)
                dst.sub_(shift)
        torch.mul(xs, xs, out=sq).addcmul_(ys, ys)
        torch.mul(xs, ys, out=xy)
        if s == _BLOCK_ROWS:  # down the rows: (4, s, padded width)
            v = torch.matmul(down, buf, out=full_v)
            windows = full_win.copy_(v.unfold(2, _BLOCK_COLS + 2 * r, _BLOCK_COLS))
            f = torch.mm(windows.view(-1, _BLOCK_COLS + 2 * r), across, out=full_f)
            num, den = full_num, full_den
        else:
            v = torch.matmul(down[:s, : s + 2 * r], buf)
            windows = v.unfold(2, _BLOCK_COLS + 2 * r, _BLOCK_COLS)
            f = windows.reshape(-1, _BLOCK_COLS + 2 * r).mm(across)
            num, den = full_num[:s], full_den[:s]
        f = f.view(4, s, -1)[..., :width]  # along the rows, in blocks of columns
        mx, my, s2, sxy = f.unbind(0)
        sxy.addcmul_(mx, my, value=-1)  # covariance
        s2.addcmul_(mx, mx, value=-1).addcmul_(my, my, value=-1)  # sum of variances
        back = shift if mean is None else mean
        mx.add_(back)
        my.add_(back)
        torch.mul(mx, my, out=num).mul_(2).add_(c1)
        torch.mul(mx, mx, out=den).addcmul_(my, my).add_(c1)
        num.mul_(sxy.mul_(2).add_(c2))
        den.mul_(s2.add_(c2))
        strip = torch.div(num, den, out=out[i0 : i0 + s])
        total += float(strip.sum(dtype=torch.float64))
        lo, hi = max(i0, pad) - i0, min(i0 + s, h - pad) - i0
        if hi > lo:
            inner += float(strip[lo:hi, pad : width - pad].sum(dtype=torch.float64))
    return total, inner


_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOL_LOCK = threading.Lock()
_START_TIMEOUT = 60.0  # seconds for the worker threads to start


def single_threaded_pool(workers: int) -> ThreadPoolExecutor:
    """A pool of `workers` threads whose torch ops run on one thread each (no OpenMP team).

    Many small ops, each split over an OpenMP team, stall at every barrier
    when the CPU is shared (one team thread waits a whole scheduler slice
    for another): a strip loop then runs 10-100x slower. Our own threads,
    each with one intra-op thread, have no barriers.

    torch offers no per-thread setting: ``torch.set_num_threads(1)`` in a
    worker sets that thread's OpenMP and MKL counts (what we want) and also
    torch's default for threads that start later (what we do not). So the
    pool is made once per size, under a lock, and the caller's count is put
    back as that default as soon as the workers are set, in a ``finally``:
    every other thread sees torch's thread count unchanged.

    Raises
    ------
    RuntimeError
        If the worker threads did not start (the default is restored first).
    """
    with _POOL_LOCK:
        pool = _POOLS.get(workers)
        if pool is not None:
            return pool
        previous = torch.get_num_threads()
        ready = threading.Barrier(workers + 1, timeout=_START_TIMEOUT)

        def init() -> None:
            torch.get_num_threads()  # torch's once-per-thread setup first, or it undoes ours
            torch.set_num_threads(1)
            ready.wait()

        pool = ThreadPoolExecutor(workers, thread_name_prefix="dn-ssim", initializer=init)
        try:
            for _ in range(workers):  # start every thread now: each blocks in init
                pool.submit(int)
            ready.wait()
        except threading.BrokenBarrierError as err:
            pool.shutdown(wait=False, cancel_futures=True)
            raise RuntimeError("the SSIM worker threads did not start") from err
        finally:
            torch.set_num_threads(previous)  # the default for new threads; ours keep 1
        _POOLS[workers] = pool
        return pool


def ssim_map_blocked(
    x: torch.Tensor,
    y: torch.Tensor,
    shift: float,
    scale: float,
    sigma: float,
    pad: int = 0,
    mean: float | None = None,
) -> tuple[torch.Tensor, tuple[float, float]]:
    """SSIM map of ``(N, H, W)`` CPU stacks, cache-blocked, without autograd.

    Each strip of rows (plus the filter's halo) is padded, shifted, squared and
    filtered while it sits in cache, by two products with band matrices of
    Gaussian weights: down the rows, then along them in blocks of columns
    (matrix products beat shifted adds by far on the CPU). Blocks of strips
    run on worker threads whose torch ops are single-threaded. Also returns the
    map's sum and its sum without a `pad`-wide border (see :func:`_strips`).
    """
    weights = gaussian_weights(sigma)
    n, h, _ = x.shape
    out = torch.empty(x.shape, dtype=x.dtype)
    # each strip is ~40 small ops whose Python dispatch holds the GIL: half of
    # torch's threads (at most 4) as workers; on 2 cores one worker was fastest
    workers = max(1, min(4, torch.get_num_threads() // 2))
    per_task = _BLOCK_ROWS * max(1, math.ceil(h / (_BLOCK_ROWS * 4 * workers)))
    tasks = [(k, range(i, min(i + per_task, h))) for k in range(n) for i in range(0, h, per_task)]
    if len(tasks) == 1 or torch.get_num_threads() == 1:
        sums = [
            _strips(x[k], y[k], out[k], rows, shift, scale, weights, pad, mean)
            for k, rows in tasks
        ]
    else:  # in our single-threaded workers, even with one worker (see single_threaded_pool)
        pool = single_threaded_pool(workers)
        futures = [
            pool.submit(_strips, x[k], y[k], out[k], rows, shift, scale, weights, pad, mean)
            for k, rows in tasks
        ]
        sums = [future.result() for future in futures]
    return out, (sum(t for t, _ in sums), sum(i for _, i in sums))
