"""Thin wrappers over classical denoisers, in napari-deconvnet's conventions.

scikit-image's non-local means, total-variation (Chambolle) and wavelet
denoisers, SciPy's median filter (for salt-and-pepper noise), and BM3D from
the optional ``bm3d`` package. They are here so that
learned and classical results can be compared on the same image (the Restore
and Quality widgets, the quality benchmark); the algorithms are the
libraries', not rewritten.

The conventions are those of :func:`~napari_deconvnet.restore`: any real
dtype in, float32 out, in the input's intensity scale (an ``uint16`` image is
*not* rescaled to [0, 1] as scikit-image's ``img_as_float`` would do), and no
clipping. Noise levels (``sigma``, ``h``, ``weight``) are in the image's
units; when not given, ``sigma`` comes from
:func:`skimage.restoration.estimate_sigma`.
"""

from __future__ import annotations

import importlib.util
import math
import numbers
import warnings
from collections.abc import Generator
from typing import Any

import numpy as np

from ._validation import check_finite, real_array

__all__ = [
    "denoise_bm3d",
    "denoise_median",
    "denoise_nlm",
    "denoise_nlm_iter",
    "denoise_switching_median",
    "denoise_tv",
    "denoise_wavelet",
]


def as_image(image: Any, *, min_ndim: int = 1) -> np.ndarray:
    """Validate an image and return it as float32 (values, not a rescale)."""
    arr = real_array(image)
    if arr.ndim < min_ndim or arr.size == 0:
        raise ValueError(
            f"image must be a non-empty array with at least {min_ndim} dimension(s), "
            f"got shape {arr.shape}"
        )
    out = arr.astype(np.float32)
    try:
        check_finite(out)
    except ValueError:
        if arr.dtype.kind == "f" and arr.dtype.itemsize > 4:
            # finite values beyond float32 became inf in the cast: say so, not
            # "NaN or infinite" (looked for only then: no extra pass otherwise)
            from ._validation import check_single_range

            check_single_range(arr, "image", "in which the classical methods work")
        raise
    return out


#: Images whose largest magnitude (or noise level) lies outside 2**-4..2**24 are
#: denoised by the classical methods at a power of two that brings it near 1, and
#: scaled back (exact: each method is equivariant to the scale with its parameters).
#: Above, float32 squares overflow (a uint64 image near its maximum: TV 4% of the
#: range off, wavelets 26%, BM3D NaN); below, the methods' absolute floors take
#: over (float32's epsilon in the wavelets' BayesShrink left an image of 1e-8 as it
#: was; BM3D's thresholds left a camera crop scaled by 1e-6 worse than its input).
SAFE_EXPONENTS = (-4, 24)


def unit_scale(arr: np.ndarray, *levels: float) -> float:
    """The power of two that a classical method runs `arr` (and `levels`) at: 1
    inside :data:`SAFE_EXPONENTS`, else one that brings the largest near 1."""
    most = max([float(np.max(np.abs(arr))) if arr.size else 0.0, *map(float, levels)])
    low, high = SAFE_EXPONENTS
    if most > 2.0**high or 0 < most < 2.0**low:
        return 2.0 ** -math.frexp(most)[1]
    return 1.0


def _sigma(arr: np.ndarray, sigma: Any, channel_axis: int | None, name: str = "sigma") -> float:
    if sigma is None:
        from skimage.restoration import estimate_sigma

        return _estimated(estimate_sigma, arr, channel_axis)
    if isinstance(sigma, bool) or not np.isscalar(sigma):
        raise TypeError(f"{name} must be a number, got {type(sigma).__name__}")
    value = float(sigma)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0 (in the image's units), got {sigma!r}")
    return value


def _squeezed(
    arr: np.ndarray, channel_axis: int | None, min_ndim: int = 1
) -> tuple[np.ndarray, int | None]:
    """`arr` without its axes of length 1 (not the channel axis; at least `min_ndim`
    axes are kept) and the channel axis's index there.

    scikit-image's filters take such an axis for an image side: its noise estimate
    of a one-plane stack ``(1, Y, X)`` or a ``(Y, X, 1)`` image was 6e-9 where the
    plane's is 0.1, so TV, wavelets and non-local means returned the noisy image
    (session 73), and the wavelets chose their levels by it.
    """
    given = channel_axis
    if channel_axis is not None:
        if not -arr.ndim <= int(channel_axis) < arr.ndim:
            return arr, given  # (scikit-image says what is wrong)
        channel_axis = int(channel_axis) % arr.ndim
        if arr.shape[channel_axis] == 1 and arr.ndim > 1:
            # one channel is a grey image (scikit-image drops a lone channel and then
            # failed to put it back at some indices, review)
            return _squeezed(np.take(arr, 0, axis=channel_axis), None, min_ndim)[0], None
    keep = [i for i, n in enumerate(arr.shape) if n > 1 or i == channel_axis]
    spatial = [i for i in range(arr.ndim) if i != channel_axis]
    while len(keep) - (channel_axis is not None) < min_ndim:  # (the last unit axes back)
        left = [i for i in spatial if i not in keep]
        if not left:
            break
        keep = sorted({*keep, max(left)})
    if len(keep) == arr.ndim or len(keep) - (channel_axis is not None) < 1:
        return arr, given  # (nothing to leave out: as given)
    moved = None if channel_axis is None else keep.index(channel_axis)
    return arr.reshape([arr.shape[i] for i in keep]), moved


def _estimated(estimate_sigma: Any, arr: np.ndarray, channel_axis: int | None = None) -> float:
    """scikit-image's noise estimate of `arr`, 0 where it is NaN: its median of the
    non-zero wavelet coefficients has none on a constant (or linear) image. Axes of
    length 1 are left out (:func:`_squeezed`)."""
    arr, channel_axis = _squeezed(arr, channel_axis)
    with warnings.catch_warnings():  # its mean of an empty selection, there
        warnings.simplefilter("ignore", RuntimeWarning)
        value = float(estimate_sigma(arr, average_sigmas=True, channel_axis=channel_axis))
    return 0.0 if np.isnan(value) else value


def denoise_nlm(
    image: Any,
    *,
    sigma: float | None = None,
    h: float | None = None,
    patch_size: int = 7,
    patch_distance: int = 11,
    fast_mode: bool = True,
    channel_axis: int | None = None,
) -> np.ndarray:
    """Non-local means denoising (scikit-image's ``denoise_nl_means``).

    Parameters
    ----------
    image : (M, N) or (P, M, N) ndarray
        Any real dtype; with `channel_axis`, one more axis of channels.
    sigma : float, optional
        Standard deviation of the noise, in the image's units. If None it is
        estimated by :func:`skimage.restoration.estimate_sigma`.
    h : float, optional
        Cut-off distance of the patch weights, in the image's units. If None,
        ``0.8 * sigma`` (scikit-image's advice for ``fast_mode``).
    patch_size, patch_distance, fast_mode, channel_axis
        As in :func:`skimage.restoration.denoise_nl_means`.

    Returns
    -------
    ndarray of float32, the shape of `image`, in its intensity scale.

    Raises
    ------
    ValueError
        Complex, empty or non-finite images, more than three spatial axes, a
        negative `sigma` or `h`.
    TypeError
        A non-numeric image.

    References
    ----------
    .. [1] A. Buades, B. Coll and J.-M. Morel, "A non-local algorithm for
           image denoising", CVPR 2005. :DOI:`10.1109/CVPR.2005.38`

    Examples
    --------
    >>> import numpy as np
    >>> noisy = 100 + 10 * np.random.default_rng(0).standard_normal((32, 32))
    >>> out = denoise_nlm(noisy.astype(np.uint16))
    >>> out.dtype, float(out.std()) < float(noisy.std())
    (dtype('float32'), True)
    """
    from skimage.restoration import denoise_nl_means

    arr = as_image(image, min_ndim=2)
    flat, flat_axis = _squeezed(arr, channel_axis, min_ndim=2)
    spatial = flat.ndim - (flat_axis is not None)
    if spatial > 3:
        # scikit-image would run a 4D search window ((2 * patch_distance + 1) ** 4
        # offsets per pixel): hours for a small time-lapse of volumes
        raise ValueError(
            f"denoise_nlm filters a 2D image or a 3D volume, got {spatial} spatial axes "
            f"(shape {arr.shape}); filter each plane or volume, e.g. "
            "dn.run_method(image, 'nlm', axes=...) does it plane by plane"
        )
    sides = list(arr.shape)
    if channel_axis is not None:
        del sides[int(channel_axis) % arr.ndim]
    for name, value, most in (
        ("patch_size", patch_size, max(sides)),  # (scikit-image pads the image)
        ("patch_distance", patch_distance, max(sides)),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
        if not 1 <= value <= most:
            raise ValueError(
                f"{name} must be between 1 and {most} for an image of shape {arr.shape}, "
                f"got {value}"
            )
    s = _sigma(arr, sigma, channel_axis)
    h = 0.8 * s if h is None else _sigma(arr, h, channel_axis, name="h")
    if h == 0:  # no noise (a constant image, or sigma=0): nothing to average away
        return arr.copy()
    out = denoise_nl_means(
        flat,
        patch_size=patch_size,
        patch_distance=patch_distance,
        h=h,
        fast_mode=fast_mode,
        sigma=s,
        preserve_range=True,
        channel_axis=flat_axis,
    )
    # scikit-image drops axes of length 1 (a one-row image came back 1-D)
    return np.asarray(out, dtype=np.float32).reshape(arr.shape)


#: Non-local means on a plane of more pixels than this squared runs tile by
#: tile (:func:`denoise_nlm_iter`), so that a cancel can stop it between tiles.
NLM_TILE = 256
# wider than denoise_nlm's reach (patch_distance 11 + patch_size // 2 = 3): the
# tiles' results equal the whole plane's
_NLM_HALO = 16


def denoise_nlm_iter(
    image: Any, *, sigma: float | None = None, **options: Any
) -> Generator[tuple[int, int], None, np.ndarray]:
    """:func:`denoise_nlm` of every plane of the last two axes, tile by tile, as a generator.

    Yields ``(tiles done, tiles)`` over all planes and returns the float32
    result, the shape of `image`. A plane of more than ``NLM_TILE**2`` pixels
    is cut into ``NLM_TILE``-pixel tiles, each filtered with a halo wider
    than the filter's reach after the noise level was estimated once on the
    whole plane (as :func:`denoise_nlm` does), so the result equals
    :func:`denoise_nlm` on each plane.

    Parameters
    ----------
    image : (..., M, N) ndarray
        Any real dtype.
    sigma : float, optional
        As :func:`denoise_nlm`; estimated per plane when None.
    **options
        The other keywords of :func:`denoise_nlm` (not `channel_axis`).
    """
    from skimage.restoration import estimate_sigma

    arr = as_image(image, min_ndim=2)
    planes = arr.reshape(-1, *arr.shape[-2:])
    h, w = arr.shape[-2:]
    size = NLM_TILE
    starts = [(0, 0)]
    if h * w > size**2:
        starts = [(y, x) for y in range(0, h, size) for x in range(0, w, size)]
    else:
        size = max(h, w)
    out = np.empty(planes.shape, np.float32)
    total = len(planes) * len(starts)
    yield 0, total
    for p, plane in enumerate(planes):
        s = sigma
        if s is None:
            s = _estimated(estimate_sigma, plane)
        for i, (y, x) in enumerate(starts):
            y0, x0 = max(y - _NLM_HALO, 0), max(x - _NLM_HALO, 0)
            y1, x1 = min(y + size + _NLM_HALO, h), min(x + size + _NLM_HALO, w)
            tile = denoise_nlm(plane[y0:y1, x0:x1], sigma=s, **options)
            ty, tx = min(y + size, h), min(x + size, w)
            out[p, y:ty, x:tx] = tile[y - y0 : ty - y0, x - x0 : tx - x0]
            yield p * len(starts) + i + 1, total
    return out.reshape(arr.shape)


def denoise_tv(
    image: Any,
    *,
    weight: float | None = None,
    eps: float = 2e-4,
    max_num_iter: int = 200,
    channel_axis: int | None = None,
) -> np.ndarray:
    """Total-variation denoising (scikit-image's ``denoise_tv_chambolle``).

    Parameters
    ----------
    image : (M, N) or (P, M, N) ndarray
        Any real dtype; with `channel_axis`, one more axis of channels.
    weight : float, optional
        Denoising weight, in the image's units (greater is smoother). If None,
        the noise's standard deviation estimated by
        :func:`skimage.restoration.estimate_sigma`.
    eps, max_num_iter, channel_axis
        As in :func:`skimage.restoration.denoise_tv_chambolle`.

    Returns
    -------
    ndarray of float32, the shape of `image`, in its intensity scale.

    Raises
    ------
    ValueError
        Complex, empty or non-finite images, a negative `weight`, fewer than one
        iteration, a `eps` that is not positive.
    TypeError
        A non-numeric image, a `max_num_iter` that is no integer.

    References
    ----------
    .. [1] A. Chambolle, "An algorithm for total variation minimization and
           applications", J. Math. Imaging Vis. 20, 89-97 (2004).

    Examples
    --------
    >>> import numpy as np
    >>> noisy = np.random.default_rng(0).standard_normal((32, 32))
    >>> float(denoise_tv(noisy).std()) < float(noisy.std())
    True
    """
    from skimage.restoration import denoise_tv_chambolle

    arr = as_image(image)
    w = _sigma(arr, weight, channel_axis, name="weight")
    # (scikit-image failed inside with UnboundLocalError for 0 iterations, session 72)
    if isinstance(max_num_iter, bool) or not isinstance(max_num_iter, int | np.integer):
        raise TypeError(f"max_num_iter must be an integer, got {max_num_iter!r}")
    if max_num_iter < 1:
        raise ValueError(f"max_num_iter must be at least 1, got {max_num_iter}")
    if isinstance(eps, bool) or not np.isscalar(eps) or not float(eps) > 0:
        raise ValueError(f"eps must be a positive number (the stopping tolerance), got {eps!r}")
    if not np.isfinite(float(eps)):
        raise ValueError(f"eps must be finite, got {eps!r}")
    if w == 0:  # no smoothing (a noise-free image's estimate): the image itself
        return arr.copy()
    k = unit_scale(arr, w)  # (eps is relative to the first energy: unchanged)
    flat, flat_axis = _squeezed(arr, channel_axis)
    out = denoise_tv_chambolle(
        flat * np.float32(k), weight=w * k, eps=eps, max_num_iter=max_num_iter,
        channel_axis=flat_axis,
    )  # fmt: skip
    return np.asarray(np.asarray(out, np.float64) / k, dtype=np.float32).reshape(arr.shape)


def denoise_wavelet(
    image: Any,
    *,
    sigma: float | None = None,
    wavelet: str = "db1",
    mode: str = "soft",
    method: str = "BayesShrink",
    wavelet_levels: int | None = None,
    channel_axis: int | None = None,
) -> np.ndarray:
    """Wavelet shrinkage denoising (scikit-image's ``denoise_wavelet``).

    Parameters
    ----------
    image : (M, N) or (P, M, N) ndarray
        Any real dtype; with `channel_axis`, one more axis of channels.
    sigma : float, optional
        Standard deviation of the noise, in the image's units; if None,
        scikit-image estimates it.
    wavelet, mode, method, wavelet_levels, channel_axis
        As in :func:`skimage.restoration.denoise_wavelet`.

    Returns
    -------
    ndarray of float32, the shape of `image`, in its intensity scale (not
    clipped).

    Raises
    ------
    ImportError
        If PyWavelets (``pywt``) is not installed.
    ValueError
        Complex, empty or non-finite images, a negative `sigma`.
    TypeError
        A non-numeric image.

    References
    ----------
    .. [1] S. G. Chang, B. Yu and M. Vetterli, "Adaptive wavelet
           thresholding for image denoising and compression", IEEE Trans.
           Image Process. 9, 1532-1546 (2000). :DOI:`10.1109/83.862633`

    Examples
    --------
    >>> import numpy as np
    >>> noisy = np.random.default_rng(0).standard_normal((32, 32))
    >>> float(denoise_wavelet(noisy).std()) < float(noisy.std())  # doctest: +SKIP
    True
    """
    if importlib.util.find_spec("pywt") is None:
        raise ImportError(
            "denoise_wavelet needs PyWavelets, which is not installed; "
            "install it with 'pip install PyWavelets'"
        )
    from skimage.restoration import denoise_wavelet as _skimage_wavelet

    arr = as_image(image)
    s = None if sigma is None else _sigma(arr, sigma, channel_axis)
    k = unit_scale(arr, s or 0.0)
    flat, flat_axis = _squeezed(arr, channel_axis)
    with warnings.catch_warnings():
        if s is None:  # its own estimate's mean of an empty selection on noise-free data
            warnings.simplefilter("ignore", RuntimeWarning)
        out = _skimage_wavelet(
            flat * np.float32(k),
            sigma=None if s is None else s * k,
            wavelet=wavelet,
            mode=mode,
            wavelet_levels=wavelet_levels,
            method=method,
            rescale_sigma=True,
            channel_axis=flat_axis,
        )
    out = np.asarray(np.asarray(out, np.float64) / k, dtype=np.float32).reshape(arr.shape)
    if s is None and not np.isfinite(out).all():
        # scikit-image divides by its own noise estimate, 0 on a noise-free (constant or
        # linear) image: no noise to remove
        return arr.copy()
    return out


def _median_size(size: Any, ndim: int) -> tuple[int, ...]:
    """The median window per filtered axis: 2 or 3 odd sizes, at most `ndim`."""
    sizes = tuple(size) if isinstance(size, list | tuple) else (size,) * min(ndim, 3)
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, int | np.integer):
            raise TypeError(f"size must be an odd integer or a tuple of them, got {size!r}")
    if not 2 <= len(sizes) <= min(ndim, 3):
        raise ValueError(
            f"size {size!r} gives a window over {len(sizes)} axes but the median filters the "
            f"trailing 2 or 3 axes of a {ndim}D image; pass one size per filtered axis"
        )
    if any(s < 1 or s % 2 == 0 for s in sizes):
        raise ValueError(
            f"size must be odd and >= 1 (an even window shifts the image by half a pixel), "
            f"got {size!r}"
        )
    return tuple(int(s) for s in sizes)


def denoise_median(image: Any, size: int | tuple[int, ...] = 3) -> np.ndarray:
    """Median filtering (SciPy's ``median_filter``), the remedy for salt-and-pepper noise.

    Parameters
    ----------
    image : (M, N) or (P, M, N) ndarray
        Any real dtype. Images with more dimensions are filtered along their
        trailing 3 axes (every leading index on its own).
    size : int or tuple of int, optional
        Odd width of the window, in pixels. An int filters the trailing
        ``min(image.ndim, 3)`` axes (a 3D image is a volume); a tuple of 2 or
        3 sizes filters that many trailing axes, e.g. ``(3, 3)`` filters each
        plane of a stack on its own.

    Returns
    -------
    ndarray of float32, the shape of `image`, in its intensity scale.

    Raises
    ------
    ValueError
        Complex, empty, non-finite or 1D images; an even or non-positive
        `size`, or one with a length other than 2 or 3 (or more axes than the
        image has).
    TypeError
        A non-numeric image or a non-integer `size`.

    Notes
    -----
    Borders are extended by reflection (``mode="reflect"``). A window of
    width ``w`` removes isolated impulses (salt and pepper) covering fewer
    than half of its pixels, and keeps edges better than a linear filter of
    the same width [1]_.

    References
    ----------
    .. [1] J. W. Tukey, *Exploratory Data Analysis*, Addison-Wesley, 1977.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.full((5, 5), 0.5); image[2, 2] = 1.0  # one salt pixel
    >>> out = denoise_median(image)
    >>> out.dtype, float(out[2, 2])
    (dtype('float32'), 0.5)
    """
    from scipy.ndimage import median_filter

    arr = as_image(image, min_ndim=2)
    sizes = _median_size(size, arr.ndim)
    window = (1,) * (arr.ndim - len(sizes)) + sizes
    return np.asarray(median_filter(arr, size=window, mode="reflect"), dtype=np.float32)


#: The smallest side :func:`denoise_bm3d` takes (see there: 8 x 8 crashes bm3d).
BM3D_MIN_SIDE = 9


def denoise_bm3d(image: Any, *, sigma: float | None = None, profile: str = "np") -> np.ndarray:
    """BM3D denoising of a grayscale image (the optional ``bm3d`` package).

    Parameters
    ----------
    image : (M, N) ndarray
        Any real dtype.
    sigma : float, optional
        Standard deviation of the (white, Gaussian) noise, in the image's
        units. If None it is estimated by
        :func:`skimage.restoration.estimate_sigma`.
    profile : str, optional
        A ``bm3d`` profile: ``"np"`` (normal), ``"refilter"``, ``"vn"``,
        ``"high"`` or ``"deb"``.

    Returns
    -------
    ndarray of float32, the shape of `image`, in its intensity scale.

    Raises
    ------
    ImportError
        If the ``bm3d`` package is not installed (``pip install bm3d``).
    ValueError
        An image that is not 2D or has a side under 9 pixels (an 8 x 8 image
        crashes the bm3d package); complex, empty or non-finite images; a
        negative `sigma`.
    TypeError
        A non-numeric image.

    Notes
    -----
    The ``bm3d`` package (Mäkinen, Azzari and Foi) is free for
    non-commercial use only; it is an optional extra, not a dependency.

    References
    ----------
    .. [1] K. Dabov, A. Foi, V. Katkovnik and K. Egiazarian, "Image denoising
           by sparse 3-D transform-domain collaborative filtering", IEEE
           Trans. Image Process. 16, 2080-2095 (2007).
           :DOI:`10.1109/TIP.2007.901238`
    """
    if importlib.util.find_spec("bm3d") is None:
        raise ImportError(
            "denoise_bm3d needs the optional 'bm3d' package, which is not installed; "
            "install it with 'pip install bm3d'"
        )
    import bm3d

    arr = as_image(image)
    if arr.ndim != 2:
        raise ValueError(
            f"denoise_bm3d takes a 2D grayscale image, got shape {arr.shape}; "
            "denoise each plane or channel separately"
        )
    if min(arr.shape) < BM3D_MIN_SIDE:
        # the bm3d package refuses sides under its 8-pixel blocks, and an image of
        # exactly 8 x 8 pixels crashes the whole process (a segmentation fault,
        # bm3d 4.0): refused here, before it can take napari down with it
        raise ValueError(
            f"denoise_bm3d needs at least {BM3D_MIN_SIDE} x {BM3D_MIN_SIDE} pixels (BM3D "
            f"matches 8 x 8 blocks), got shape {arr.shape}; use 'median', 'nlm' or a "
            "network on images this small"
        )
    s = _sigma(arr, sigma, None)
    if s == 0:
        return arr.copy()
    # the bm3d package works in float32, where an image of 1e19 (uint64) or a sigma of
    # 1e21 overflowed to NaN, and with absolute thresholds, which an image of 1e-5
    # falls under: such an image runs at a power of two that brings the larger of the
    # two near 1, and is scaled back (exact); others run as they are
    k = unit_scale(arr, s)
    out = bm3d.bm3d(arr * k, sigma_psd=s * k, profile=profile)
    return np.asarray(np.asarray(out, dtype=np.float64) / k, dtype=np.float32)


def denoise_switching_median(
    image: Any,
    low: float | None = None,
    high: float | None = None,
    largest: int = 7,
    *,
    mask: Any = None,
) -> np.ndarray:
    """Switching median filter: replace only the impulses, by a median of clean neighbours.

    Parameters
    ----------
    image : (M, N) or (P, M, N) ndarray
        Any real dtype; a 3D image is filtered as a volume.
    low, high : float, optional
        Values of the pepper and salt impulses; default the image's minimum
        and maximum (as :func:`~napari_deconvnet.synthesize` sets them).
    largest : int, optional
        Largest odd window tried. Each impulse takes the median of the
        non-impulse pixels in the smallest window (3, 5, ...) that has any;
        one without any up to `largest` keeps its value.
    mask : bool ndarray, optional
        The impulses, the shape of `image`; default every pixel at or below
        `low` or at or above `high`. Pixels outside it are the clean neighbours.

    Returns
    -------
    ndarray of float32, the shape of `image`; pixels that are not impulses are
    returned unchanged.

    Raises
    ------
    ValueError
        Complex, empty, non-finite or 1D images, an even or < 3 `largest`, or
        a `low` above `high`.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.full((5, 5), 0.5); image[0, 0] = 0.0; image[2, 2] = 1.0
    >>> float(denoise_switching_median(image, 0.0, 1.0)[2, 2])
    0.5
    """
    arr = as_image(image, min_ndim=2)
    if isinstance(largest, bool | np.bool_) or not isinstance(largest, numbers.Integral):
        raise TypeError(f"largest must be an odd integer >= 3, got {largest!r}")
    largest = int(largest)  # (NumPy integers too, as denoise_median takes them)
    if largest < 3 or largest % 2 == 0:
        raise ValueError(f"largest must be an odd integer >= 3, got {largest!r}")
    levels = []
    for name, value, default in (("low", low, arr.min), ("high", high, arr.max)):
        if value is None:
            levels.append(float(default()))
        elif isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a number (an impulse level) or None, got {value!r}")
        elif not math.isfinite(float(value)):
            raise ValueError(f"{name} must be a finite impulse level or None, got {value!r}")
        else:
            levels.append(float(value))
    lo, hi = levels
    if lo > hi:  # (every pixel was an impulse: the image came back as it was)
        given = {"low": low is not None, "high": high is not None}
        said = {k: "" if v else " (the image's " + ("minimum)" if k == "low" else "maximum)")
                for k, v in given.items()}  # fmt: skip
        raise ValueError(
            f"low (the pepper level) must not be above high (the salt level), got "
            f"low={lo:g}{said['low']}, high={hi:g}{said['high']}; give levels within the "
            "image's range"
        )
    spatial = min(arr.ndim, 3)
    if mask is not None:
        mask = np.asarray(mask, bool)
        if mask.shape != arr.shape:
            raise ValueError(f"mask must have the image's shape {arr.shape}, got {mask.shape}")
    out = arr.copy()
    for index in np.ndindex(*arr.shape[: arr.ndim - spatial]):
        plane = arr[index]
        bad = (plane <= lo) | (plane >= hi) if mask is None else mask[index]
        switch_fill(plane, bad, np.argwhere(bad), largest, out[index])
    return out


def switch_fill(
    plane: np.ndarray, bad: np.ndarray, todo: np.ndarray, largest: int, result: np.ndarray
) -> None:
    """Write into `result` the switching median of `plane` at the pixels `todo`
    (indices, rows of :func:`numpy.argwhere`): the median of the pixels outside
    `bad` in the smallest window of 3, 5, ... `largest` that holds any; a pixel
    whose windows hold none is left as `result` has it."""
    from numpy.lib.stride_tricks import sliding_window_view

    values = np.where(bad, np.nan, plane)
    for size in range(3, largest + 1, 2):
        if not len(todo):
            break
        padded = np.pad(values, size // 2, mode="reflect")
        windows = sliding_window_view(padded, (size,) * plane.ndim)[tuple(todo.T)]
        windows = windows.reshape(len(todo), -1)
        found = ~np.isnan(windows).all(axis=1)
        if found.any():
            result[tuple(todo[found].T)] = _row_medians(windows[found])
        todo = todo[~found]


def _row_medians(rows: np.ndarray) -> np.ndarray:
    """The median of each row's non-NaN values (each row has one), as
    ``np.nanmedian(rows, axis=1)`` gives it, bit for bit, in a sixth of its time:
    sorted, NaN last, the middle one or the mean of the middle two."""
    ordered = np.sort(rows, axis=1)
    count = rows.shape[1] - np.isnan(rows).sum(axis=1)
    index = np.arange(len(rows))
    return (ordered[index, (count - 1) // 2] + ordered[index, count // 2]) / 2
