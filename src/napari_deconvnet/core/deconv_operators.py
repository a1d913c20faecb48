"""The linear operators of Richardson-Lucy on torch: blur by a PSF and its adjoint, TV.

A separable PSF on the CPU is applied as banded matrix products along each
axis (:class:`BandedAxis`, chosen by :func:`separable_taps`, composed by
:class:`SeparableConvolution`); any other PSF
by real FFTs on a grid just long enough for a linear convolution
(:func:`fft_shape`, :func:`centred_otf`). Either can treat the image as
extended by its mirror image (:func:`fold_indices`) instead of by zeros: the
banded products fold the taps that fall outside the image back onto it, the
FFTs transform the image extended by the PSF's half-width
(:class:`FoldedFFT`). :func:`tv_divergence` is the
total-variation term of Dey et al. Used by
:func:`~napari_deconvnet.core.classical.richardson_lucy_iter`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "BOUNDARIES",
    "BandedAxis",
    "FoldedFFT",
    "SeparableConvolution",
    "centred_otf",
    "fft_shape",
    "fold_indices",
    "mirror_symmetric",
    "scaled_transpose",
    "separable_taps",
    "tv_divergence",
]


#: How a convolution sees beyond the image: zeros, or the image's mirror
#: image as ``np.pad``'s modes ``"reflect"`` (about the edge sample) and
#: ``"symmetric"`` (about the edge, repeating the edge sample).
BOUNDARIES = ("zero", "reflect", "symmetric")


def fold_indices(n: int, lo: int, hi: int, mode: str) -> np.ndarray:
    """The samples ``lo`` to ``hi - 1`` of an axis of `n` extended by reflection, as indices.

    ``x[fold_indices(n, -w, n + w, mode)]`` is ``np.pad(x, w, mode=mode)``
    for ``mode`` ``"reflect"`` or ``"symmetric"``, with as many reflections as
    a width beyond `n` needs (as ``np.pad``).
    """
    return _fold(np.arange(lo, hi), n, mode)


def _fold(i: np.ndarray, n: int, mode: str) -> np.ndarray:
    """Indices `i` (any shape, any integers) folded into ``[0, n)`` by reflection."""
    if mode not in BOUNDARIES[1:]:
        raise ValueError(f"mode must be 'reflect' or 'symmetric', got {mode!r}")
    if mode == "reflect":
        if n == 1:
            return np.zeros_like(i)
        period = 2 * (n - 1)
        i = np.mod(i, period)
        return np.where(i < n, i, period - i)
    period = 2 * n
    i = np.mod(i, period)
    return np.where(i < n, i, period - 1 - i)


def mirror_symmetric(kernel: np.ndarray) -> bool:
    """Whether `kernel` equals its mirror image along each axis (to 1e-6 of its peak)."""
    tol = 1e-6 * float(np.abs(kernel).max())
    return all(float(np.abs(kernel - np.flip(kernel, d)).max()) <= tol for d in range(kernel.ndim))


def separable_taps(kernel: np.ndarray, max_taps: int = 65) -> list[np.ndarray] | None:
    """The 1D factors of `kernel` if it is separable (to 1e-6 of its peak), else None.

    Their outer product is `kernel` (which sums to 1): each factor is the
    kernel summed over the other axes. Factors longer than `max_taps` make
    the banded products slower than FFTs, so they also give None.
    """
    if kernel.ndim < 2 or max(kernel.shape) > max_taps:
        return None
    factors = [
        kernel.sum(axis=tuple(j for j in range(kernel.ndim) if j != i)) for i in range(kernel.ndim)
    ]
    product = factors[0]
    for f in factors[1:]:
        product = np.multiply.outer(product, f)
    if np.abs(product - kernel).max() > 1e-6 * np.abs(kernel).max():
        return None
    return factors


#: Outputs per banded product along a leading axis, and along the last axis
#: read transposed. Interleaved runs on a 2-core AVX2 machine (one thread,
#: 6 rounds): 8 along the leading axes made Richardson-Lucy 9% faster in 3D
#: (64x256x256, 9x13x13 PSF) and 6% in 2D (2048², 15² PSF) than 16, with
#: 20 instead of 28 multiply-adds per output for 13 taps; 32 for the
#: transposing pass was no faster. The results do not depend on them.
LEADING_BLOCK = 8
TRANSPOSE_BLOCK = 16


class BandedAxis:
    """Zero-padded "same" correlation along one axis of tensors of a fixed shape.

    The axis is cut into blocks of `block` outputs; each block is one matrix
    product of its ``block + len(taps) - 1`` inputs with a banded matrix, so
    the work goes to BLAS instead of many passes over memory. The products
    read the input where it lies (the blocks at the borders use the rows of
    the band that meet the image: no zero-padded copy) and write into an
    output buffer allocated once: fresh allocations of this size cost more
    than the products (the memory is mapped anew each time).

    Parameters
    ----------
    taps : 1D ndarray
        Correlation taps, of odd length; their mirror (``taps[::-1]``) gives
        the adjoint, a convolution.
    axis : int
        The axis of the tensors it is applied to.
    shape : tuple of int
        The shape of those tensors.
    device : torch.device or str
        Where the buffer lives.
    block : int, optional
        Outputs per matrix product; by default 64 along the last axis,
        :data:`TRANSPOSE_BLOCK` along it read transposed and
        :data:`LEADING_BLOCK` along the others (the results do not depend
        on it).
    boundary : {"zero", "reflect", "symmetric"}, optional
        What lies beyond the axis's ends (:data:`BOUNDARIES`): zeros, or its
        mirror image, whose taps the blocks at the ends fold back onto the
        samples they reflect (no padded copy either way).
    storage : torch.Tensor, optional
        A 1D float32 tensor to hold the result, if it is long enough (another
        axis's buffer that is free when this one runs); else one is made.
    transpose : bool, optional
        Only for the last axis: return the result with the last two axes
        swapped (shape ``(..., n, m)`` for an input ``(..., m, n)``). The
        products then read the input's transpose where it lies, as along a
        leading axis, with blocks of 16 instead of 64 outputs (2.7 instead of
        5.8 multiply-adds per tap for 13 taps); two such passes, along the
        last axis and then along the one before it, give back the layout.
    """

    def __init__(
        self,
        taps: np.ndarray,
        axis: int,
        shape: tuple[int, ...],
        device: Any,
        block: int | None = None,
        boundary: str = "zero",
        transpose: bool = False,
        storage: Any = None,
    ) -> None:
        import torch

        s = len(taps)
        if s % 2 == 0:
            raise ValueError(f"taps must have an odd length, got {s}")
        if boundary not in BOUNDARIES:
            raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
        if transpose and (len(shape) < 2 or axis != len(shape) - 1):
            raise ValueError(
                f"transpose=True needs the last axis of at least 2, got axis {axis} of {shape}"
            )
        self.axis, self.shape, self.size, self.transpose = axis, tuple(shape), s, transpose
        self.pre, self.post = math.prod(shape[:axis]), math.prod(shape[axis + 1 :])
        if transpose:  # along the leading axis of (pre, n, m), the input's transpose
            self.pre, self.post = math.prod(shape[:-2]), shape[-2]
            self.out_shape = (*shape[:-2], shape[-1], shape[-2])
        else:
            self.out_shape = self.shape
        default = TRANSPOSE_BLOCK if transpose else LEADING_BLOCK
        self.block = b = block or (64 if self.post == 1 else default)
        n, c, k = shape[axis], s // 2, b + s - 1
        blocks = -(-n // b)
        bands = []
        for t in (np.asarray(taps, np.float32), np.asarray(taps[::-1], np.float32)):
            band = np.zeros((k, b), np.float32)
            for o in range(b):
                band[o : o + s, o] = t
            bands.append(torch.from_numpy(band).to(device))  # (K, B): x @ band
        self.bands = bands
        self.bands_t = [band.t().contiguous() for band in bands]  # (B, K): band_t @ x
        # Block j reads the inputs [j*b - c, j*b - c + k), those in [0, n)
        # with the band's rows from `first`; the blocks that need no clipping
        # (the interior, j0 to j1 - 1) go to one batched product.
        self.j0 = min(-(-c // b), blocks)
        self.j1 = max(self.j0, min(blocks, (n + c - k) // b + 1))
        # Per block and direction: (j, lo, hi, matrix) with the block's
        # outputs = inputs [lo, hi) times the (hi - lo, b) matrix (its
        # transpose, (b, hi - lo), along the leading axes).
        self.spans = [[], []]
        for j in range(blocks):
            lo, hi = max(0, j * b - c), min(n, j * b - c + k)
            inside = lo == j * b - c and hi == j * b - c + k
            for mirror in (0, 1):
                start, stop = lo, hi
                if boundary == "zero" or inside:
                    first = lo - (j * b - c)
                    band = bands[mirror][first : first + hi - lo]
                else:
                    t = np.asarray(taps if mirror == 0 else taps[::-1], np.float64)
                    start, stop, band = _folded_block(t, j * b, b, n, boundary, device)
                if self.post != 1:  # (b, hi - lo); the interior's is bands_t
                    mat = self.bands_t[mirror] if inside else band.t().contiguous()
                else:
                    mat = band
                self.spans[mirror].append((j, start, stop, mat))
        # the leading-axis products of several planes at once (needs whole blocks)
        self.batched = not transpose and self.post > 1 and self.pre > 1 and n % b == 0
        self.batched = self.batched and self.j1 > self.j0
        buffer = (self.pre, blocks * b) if self.post == 1 else (self.pre, blocks * b, self.post)
        size = math.prod(buffer)
        if storage is None or storage.numel() < size:
            storage = torch.empty(size, dtype=torch.float32, device=device)
        self.out = storage[:size].view(buffer)

    def __call__(self, x: Any, mirror: bool = False) -> Any:
        """`x` correlated with the taps (or convolved, if `mirror`): a view of a buffer.

        The view is overwritten by the next call. `x` may be strided (it is
        read where it lies if its strides allow); if it is this axis's own
        previous result, it is copied first. With ``transpose``, the result
        has the last two axes swapped.
        """
        import torch

        if tuple(x.shape) != self.shape:
            raise ValueError(f"expected a tensor of shape {self.shape}, got {tuple(x.shape)}")
        if x.untyped_storage().data_ptr() == self.out.untyped_storage().data_ptr():
            x = x.clone()
        b, n = self.block, self.shape[self.axis]
        spans = self.spans[int(mirror)]
        if self.post == 1:
            rows = x.reshape(self.pre, n)  # a view where the strides allow
            for j, lo, hi, mat in spans:
                # a strided output block: BLAS writes it in place
                torch.mm(rows[:, lo:hi], mat, out=self.out[:, j * b : (j + 1) * b])
            return self.out[:, :n].view(self.shape)
        if self.transpose:
            planes = x.reshape(self.pre, self.post, n).transpose(1, 2)
        else:
            planes = x.reshape(self.pre, n, self.post)
        band_t = self.bands_t[mirror]
        j0, j1, k = self.j0, self.j1, self.size + b - 1
        edges = spans[:j0] + spans[j1:]
        if self.batched and planes.is_contiguous():
            # Planes stacked as one (pre * n, post) matrix: the windows of
            # every block of every plane are one strided view and one batched
            # product; those that straddle two planes (the edge blocks) are
            # then overwritten, one product per edge block for all planes.
            rows = planes.view(self.pre * n, self.post)
            windows = self.pre * n // b - j0
            inner = rows[j0 * b - self.size // 2 :].unfold(0, k, b)[: windows - (n // b - j1)]
            inner = inner.transpose(-1, -2)
            flat = self.out.view(self.pre * n, self.post)[j0 * b : j0 * b + inner.shape[0] * b]
            torch.matmul(band_t, inner, out=flat.view(inner.shape[0], b, self.post))
            for j, lo, hi, mat in edges:
                torch.matmul(mat, planes[:, lo:hi], out=self.out[:, j * b : (j + 1) * b])
            return self.out[:, :n].view(self.out_shape)
        for p in range(self.pre):
            plane, out = planes[p], self.out[p]
            if j1 > j0:
                inner = plane[j0 * b - self.size // 2 :].unfold(0, k, b)[: j1 - j0]
                inner = inner.transpose(-1, -2)  # (blocks, K, post), a strided view
                torch.matmul(band_t, inner, out=out[j0 * b : j1 * b].view(j1 - j0, b, self.post))
            for j, lo, hi, mat in edges:
                torch.mm(mat, plane[lo:hi], out=out[j * b : (j + 1) * b])
        return self.out[:, :n].view(self.out_shape)


class SeparableConvolution:
    """Same-size correlation by a separable kernel, its result's last two axes swapped.

    One :class:`BandedAxis` per axis: the leading axes and the one before the
    last as leading axes (their products run over long rows), then the last
    axis as a transposing pass (it reads its input's transpose as a leading
    axis, with blocks of 16 instead of 64 outputs, so fewer multiply-adds on
    the band's zeros). A second one, built for the swapped shape with the
    last two axes' taps swapped, gives back the layout: Richardson-Lucy
    blurs its estimate with the first and the ratio with the second.

    Parameters
    ----------
    taps : list of 1D ndarray
        The correlation taps of the last ``len(taps)`` axes (at least 2), of
        odd lengths; their mirror images give the adjoint.
    shape : tuple of int
        The shape of the tensors it takes; it returns views of shape
        ``(*shape[:-2], shape[-1], shape[-2])``.
    device : torch.device or str
        Where the buffers live.
    boundary : {"zero", "reflect", "symmetric"}, optional
        As :class:`BandedAxis`'s.
    share : SeparableConvolution, optional
        One whose result is consumed before this one is called, and whose
        buffers this one reuses pass by pass (where long enough): each pass
        overwrites the other's same pass, whose output the other's next pass
        has read by then. Richardson-Lucy's two convolutions thus hold the
        memory of one.
    """

    def __init__(
        self,
        taps: list[np.ndarray],
        shape: tuple[int, ...],
        device: Any,
        boundary: str = "zero",
        share: SeparableConvolution | None = None,
    ) -> None:
        k, nd = len(taps), len(shape)
        if k < 2 or k > nd:
            raise ValueError(f"need taps for 2 to {nd} axes, got {k}")
        if share is not None and len(share.passes) != k:
            raise ValueError("share must be a SeparableConvolution over as many axes")
        self.passes = []
        for i in range(k):
            storage = None if share is None else share.passes[i].out.view(-1)
            last = i == k - 1
            self.passes.append(
                BandedAxis(
                    taps[i],
                    nd - 1 if last else nd - k + i,
                    shape,
                    device,
                    boundary=boundary,
                    transpose=last,
                    storage=storage,
                )
            )

    def __call__(self, x: Any, mirror: bool = False) -> Any:
        """`x` correlated with the kernel (convolved, if `mirror`), last two axes swapped.

        A view of a buffer, overwritten by the next call.
        """
        for axis in self.passes:
            x = axis(x, mirror)
        return x


def scaled_transpose(x: Any, factor: float) -> Any:
    """``x * factor`` with its last two axes swapped, as a new contiguous tensor.

    Planes bigger than about a megabyte are transposed 16 rows at a time:
    whole, the strided reads miss the cache (220 ms instead of 86 for a
    2048x2048 plane on a 2-core AVX2 machine).
    """
    import torch

    m, n = x.shape[-2], x.shape[-1]
    out = torch.empty((*x.shape[:-2], n, m), dtype=torch.float32, device=x.device)
    if m * n <= 1 << 18 or x.device.type != "cpu":
        return torch.mul(x.transpose(-1, -2), factor, out=out)
    rows, cols = x.reshape(-1, m, n), out.view(-1, n, m)
    for i in range(0, m, 16):
        torch.mul(rows[:, i : i + 16].transpose(1, 2), factor, out=cols[:, :, i : i + 16])
    return out


def _folded_block(
    taps: np.ndarray, start: int, b: int, n: int, mode: str, device: Any
) -> tuple[int, int, Any]:
    """Inputs ``[lo, hi)`` and the (hi - lo, b) matrix of outputs ``start`` to ``start + b - 1``.

    Output ``o < n`` is ``sum_m taps[m] * x[fold(o + m - s // 2)]``; outputs
    beyond the axis get zero columns.
    """
    import torch

    s = len(taps)
    outs = np.arange(start, min(n, start + b))
    idx = _fold(outs[:, None] + np.arange(s) - s // 2, n, mode)  # (outputs, taps)
    lo, hi = int(idx.min()), int(idx.max()) + 1
    mat = np.zeros((hi - lo, b), np.float64)
    cols = np.broadcast_to(np.arange(len(outs))[:, None], idx.shape)
    np.add.at(mat, (idx - lo, cols), np.broadcast_to(taps, idx.shape))
    return lo, hi, torch.from_numpy(mat.astype(np.float32)).to(device)


def fft_shape(spatial: tuple[int, ...], kernel_shape: tuple[int, ...]) -> list[int]:
    """FFT sizes for a linear convolution whose centred ("same") part is exact.

    With the kernel's centre at index 0, a circular convolution of length
    ``L >= n + (s - 1) // 2`` equals the zero-padded linear convolution on the
    first ``n`` samples (nothing wraps onto them). ``L`` is the next even
    number with prime factors 2, 3 and 5 only: odd lengths make real FFTs
    several times slower.
    """
    from scipy.fft import next_fast_len

    sizes = []
    for n, s in zip(spatial, kernel_shape, strict=True):
        size = next_fast_len(n + (s - 1) // 2, real=True)
        while size % 2:
            size = next_fast_len(size + 1, real=True)
        sizes.append(size)
    return sizes


def centred_otf(kernel: np.ndarray, fshape: list[int], device: Any) -> Any:
    """Real FFT of `kernel` (odd sizes) with its centre moved to index 0 (wrapped)."""
    import torch

    full = np.zeros(fshape, np.float32)
    full[tuple(slice(0, s) for s in kernel.shape)] = kernel
    full = np.roll(full, [-(s // 2) for s in kernel.shape], axis=tuple(range(kernel.ndim)))
    return torch.fft.rfftn(torch.from_numpy(full).to(device))


class FoldedFFT:
    """Same-size convolution by real FFTs of tensors extended by their mirror image.

    Each call extends the tensor by the kernel's half-width on both sides of
    each of its last ``kernel.ndim`` axes (:func:`fold_indices`), convolves
    it on a grid on which nothing wraps onto the part kept, and returns the
    part of the image's size: a view of a buffer, overwritten by the next
    call.

    Parameters
    ----------
    kernel : ndarray
        The PSF, of odd sizes, centred.
    shape : tuple of int
        The shape of the tensors, ``(planes, *spatial)``.
    mode : {"reflect", "symmetric"}
        The reflection, as ``np.pad``'s.
    device : torch.device or str
        Where the buffers live.
    """

    def __init__(self, kernel: np.ndarray, shape: tuple[int, ...], mode: str, device: Any) -> None:
        import torch

        k = kernel.ndim
        spatial = shape[1:]
        half = [s // 2 for s in kernel.shape]
        self.dims = tuple(range(1, k + 1))
        self.index = [
            torch.from_numpy(fold_indices(n, -c, n + c, mode)).to(device)
            for n, c in zip(spatial, half, strict=True)
        ]
        # length >= n + 2c: the outputs c to c + n - 1 read no wrapped sample
        self.grid = fft_shape([n + c for n, c in zip(spatial, half, strict=True)], kernel.shape)
        self.h = centred_otf(kernel, self.grid, device)
        self.h_mirror = self.h.conj()
        self.extended = torch.zeros((shape[0], *self.grid), dtype=torch.float32, device=device)
        self.spectrum = torch.empty((shape[0], *self.h.shape), dtype=self.h.dtype, device=device)
        self.blurred = torch.empty_like(self.extended)
        pairs = list(zip(spatial, half, strict=True))
        self.fill = (slice(None),) + tuple(slice(0, n + 2 * c) for n, c in pairs)
        self.keep = (slice(None),) + tuple(slice(c, c + n) for n, c in pairs)
        self.mode, self.half = mode, half
        # one reflection reaches every sample of the extension (the usual case):
        # filled by copies of slices, not by gathers (extend_by_reflection)
        self.sliced = all(c <= n - (mode == "reflect") for n, c in pairs)

    def __call__(self, x: Any, mirror: bool = False) -> Any:
        """`x` convolved by the kernel (by its mirror image if `mirror`)."""
        import torch

        if self.sliced:
            extend_by_reflection(self.extended[self.fill], x, self.dims, self.half, self.mode)
        else:
            for d, index in zip(self.dims, self.index, strict=True):
                x = x.index_select(d, index)
            self.extended[self.fill] = x
        torch.fft.rfftn(self.extended, dim=self.dims, out=self.spectrum)
        self.spectrum.mul_(self.h_mirror if mirror else self.h)
        out = torch.fft.irfftn(self.spectrum, s=self.grid, dim=self.dims, out=self.blurred)
        return out[self.keep]


def extend_by_reflection(
    out: Any, x: Any, dims: tuple[int, ...], half: list[int], mode: str
) -> None:
    """Write `x` extended by ``half[i]`` samples of its mirror image on both sides
    of axis ``dims[i]`` into `out` (``np.pad(x, half, mode)`` along those axes).

    The same values as gathering with :func:`fold_indices` (copies only), by
    slices: `x` into the middle, then along each axis in turn its two borders
    from the flipped samples next to them, over the whole extent of the other
    axes (so the corners are reflections of reflections, as the padding's).
    Needs ``half[i] <= n - 1`` (``"reflect"``) or ``<= n`` (``"symmetric"``),
    one reflection: :class:`FoldedFFT` gathers otherwise.
    """
    middle = [slice(None)] * out.ndim
    for d, c in zip(dims, half, strict=True):
        middle[d] = slice(c, c + x.shape[d])
    out[tuple(middle)] = x
    skip = 1 if mode == "reflect" else 0  # "reflect" leaves the edge sample out
    for d, c in zip(dims, half, strict=True):
        if not c:
            continue
        n = x.shape[d]
        out.narrow(d, 0, c).copy_(out.narrow(d, c + skip, c).flip(d))
        out.narrow(d, c + n, c).copy_(out.narrow(d, n - skip, c).flip(d))


def tv_divergence(x: Any, dims: tuple[int, ...]) -> Any:
    """``div(grad x / |grad x|)`` with forward differences and Neumann borders."""
    import torch

    grads = []
    for d in dims:
        g = torch.diff(x, dim=d, append=x.narrow(d, x.shape[d] - 1, 1))
        grads.append(g)
    norm = torch.sqrt(sum(g * g for g in grads) + 1e-16)
    div = torch.zeros_like(x)
    for d, g in zip(dims, grads, strict=True):
        unit = g / norm
        # backward difference, the negative adjoint of the forward one
        div = div + torch.diff(unit, dim=d, prepend=torch.zeros_like(unit.narrow(d, 0, 1)))
    return div
