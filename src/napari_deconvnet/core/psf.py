"""Point spread functions (PSFs) and blurring by them, shared by synthesis and deconvolution.

:func:`make_psf` builds normalised PSFs by name (a pixel-integrated Gaussian,
the Airy disk of a circular pupil, a 3D widefield PSF); :func:`as_psf`
accepts what users pass as ``psf=`` (an array, a name, or a dict with a name
and parameters); :func:`blur` convolves NumPy arrays or torch tensors with one.
"""

from __future__ import annotations

import inspect
import math
import numbers
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._validation import is_tensor as _is_tensor
from ._validation import tensor_array
from .noise_estimation import difference_sigma
from .specs import SpecTable, get, specs

__all__ = [
    "PSF_KINDS",
    "airy_psf",
    "as_psf",
    "blur",
    "calibration_nm",
    "crop_to",
    "fit_psf",
    "gaussian_psf",
    "make_psf",
    "named_psf",
    "psf_in_dimensions",
    "psf_offset",
    "psf_pedestal",
    "recentre_psf",
    "remove_pedestal",
    "widefield_psf",
]

#: The most values a generated PSF may hold (0.5 GB of float32): see :func:`make_psf`.
MAX_PSF_VALUES = 2**27

#: The PSF kinds of :func:`make_psf` with their parameters' defaults: a
#: read-only view of :func:`napari_deconvnet.core.specs.list_psfs`.
PSF_KINDS = SpecTable("psf", lambda spec: spec.defaults())
_QUADRATURE_POINTS = 96
_RADIAL_STEP = 0.05  # pixels between samples of the radial profile


# ----------------------------------------------------------- calibration

#: Nanometres per unit of length, by the names files and napari give units
_NANOMETRES = {
    "pm": 1e-3, "picometer": 1e-3, "picometre": 1e-3,
    "a": 0.1, "å": 0.1, "angstrom": 0.1, "ångström": 0.1,
    "nm": 1.0, "nanometer": 1.0, "nanometre": 1.0,
    "um": 1e3, "µm": 1e3, "μm": 1e3, "micron": 1e3, "micrometer": 1e3, "micrometre": 1e3,
    "mm": 1e6, "millimeter": 1e6, "millimetre": 1e6,
    "cm": 1e7, "centimeter": 1e7, "centimetre": 1e7,
    "m": 1e9, "meter": 1e9, "metre": 1e9,
}  # fmt: skip


def _to_nm(value: Any, unit: Any) -> float | None:
    """`value` in `unit` (its name: ``"micrometer"``, ``"µm"``...) in nm, or None."""
    if unit is None:
        return None
    name = str(unit).strip().lower()
    factor = _NANOMETRES.get(name, _NANOMETRES.get(name.rstrip("s")))
    try:
        out = float(value) * factor if factor is not None else math.nan
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) and out > 0 else None


def calibration_nm(
    scale: Sequence[Any] | None, units: Sequence[Any] | None, axes: str | None = None
) -> dict[str, float]:
    """The optical PSF parameters an image's calibration fixes, in nanometres.

    Parameters
    ----------
    scale, units : sequence
        Pixel size and unit name per axis (RGB samples excluded), as files
        (OME-XML, ImageJ, NGFF) and napari layers give them.
    axes : str, optional
        The axes' letters (``S`` ignored); default: the last three are Z, Y, X.

    Returns
    -------
    dict
        ``pixel_size`` (the mean of Y's and X's) where both are lengths, and
        ``z_step`` where the Z axis is one; ``{}`` for an uncalibrated image
        (pixels, no units, time). The keys are :func:`make_psf`'s parameters of
        the ``airy`` and ``widefield`` kinds.

    Examples
    --------
    >>> calibration_nm([0.2, 0.065, 0.065], ["micrometer"] * 3)
    {'pixel_size': 65.0, 'z_step': 200.0}
    """
    if scale is None or units is None or len(scale) != len(units) or len(scale) < 2:
        return {}
    from .axes import zyx_positions

    n = len(scale)
    # axes that do not describe the scale: its last axes, as an image without axes
    z, y, x = zyx_positions(n, axes or None) or zyx_positions(n, None)
    out: dict[str, float] = {}
    lateral = [_to_nm(scale[i], units[i]) for i in (y, x)]
    if None not in lateral:
        out["pixel_size"] = round((lateral[0] + lateral[1]) / 2, 6)
    step = None if z is None else _to_nm(scale[z], units[z])
    if step is not None:
        out["z_step"] = round(step, 6)
    return out


def calibrated_kind(
    psf: Any, scale: Sequence[Any] | None, units: Sequence[Any] | None, axes: str | None = None
) -> tuple[Any, dict[str, float]]:
    """`psf` with the optical parameters an image's calibration fixes filled in.

    A PSF kind (a name such as ``"widefield"``, or a dict with ``"kind"``)
    whose spec has ``pixel_size`` or ``z_step`` and that does not give them
    takes them from the image's scale and units (:func:`calibration_nm`), as
    the widgets take a layer's and the command line a file's; a value given
    wins. Anything else (an array, a Gaussian, an uncalibrated image) comes
    back as it was.

    Returns
    -------
    psf, taken
        The PSF to use (a dict where something was taken) and what was taken
        (``{}``: `psf` as it was).

    Examples
    --------
    >>> calibrated_kind("widefield", [0.2, 0.065, 0.065], ["micrometer"] * 3)[0]
    {'kind': 'widefield', 'pixel_size': 65.0, 'z_step': 200.0}
    >>> calibrated_kind({"kind": "airy", "pixel_size": 80}, [0.065, 0.065], ["micrometer"] * 2)[1]
    {}

    A list of PSFs, one per channel (:mod:`.channel_psfs`), comes back as the
    list of each one so filled in, with everything that was taken.
    """
    from .channel_psfs import per_channel

    if per_channel(psf):
        each = [calibrated_kind(one, scale, units, axes) for one in psf]
        taken: dict[str, float] = {}
        for _, said in each:
            taken |= said
        return [one for one, _ in each], taken
    given = {"kind": psf} if isinstance(psf, str) else psf
    if not isinstance(given, Mapping) or not isinstance(given.get("kind"), str):
        return psf, {}
    spec = specs("psf", available=False).get(given["kind"].lower())
    if spec is None:
        return psf, {}
    names = {p.name for p in spec.params}
    found = calibration_nm(scale, units, axes)
    taken = {k: v for k, v in found.items() if k in names and k not in given}
    if not taken:
        return psf, {}
    return {**given, **taken}, taken


# ---------------------------------------------------------------- checks


def _positive(name: str, value: Any, kind: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number for PSF {kind!r}, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound} for PSF {kind!r}, got {value!r}")
    return value


def _check_shape(shape: Any, ndim: int | None) -> tuple[int, ...] | None:
    if shape is None:
        return None
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        if ndim is None:
            raise ValueError(
                f"shape={shape} is a single number; pass one size per axis, "
                f"e.g. ({shape}, {shape})"
            )
        shape = (int(shape),) * ndim
    try:
        sizes = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise TypeError(f"shape must be a sequence of positive integers, got {shape!r}") from None
    if not sizes or any(s < 1 or s != t for s, t in zip(sizes, shape, strict=True)):
        raise ValueError(f"shape must be a non-empty sequence of integers >= 1, got {shape!r}")
    # a typo (an image's shape for the PSF's) would otherwise fill the memory: the
    # process was killed on a 5000-cube widefield PSF
    return _fits(
        sizes,
        f"a PSF of shape {sizes} would hold",
        "PSFs span a few to a few hundred pixels per axis: pass the PSF's own shape, "
        "not the image's",
    )


def _fits(shape: tuple[int, ...], what: str, advice: str) -> tuple[int, ...]:
    """`shape`, unless a PSF of it holds more than :data:`MAX_PSF_VALUES` values."""
    values = math.prod(shape)
    if values > MAX_PSF_VALUES:
        raise ValueError(f"{what} {values:,} values (at most {MAX_PSF_VALUES:,}); {advice}")
    return shape


def _default_fits(shape: tuple[int, ...], parameters: str) -> tuple[int, ...]:
    """`shape`, the default size of a PSF with `parameters`, if it fits :func:`_fits`."""
    return _fits(
        shape,
        f"with {parameters} the PSF spans {shape} pixels,",
        "check the parameters' units (pixels, nm), or pass a smaller shape",
    )


# ---------------------------------------------------------------- kinds


def gaussian_psf(
    shape: Any = None, *, sigma: float | Sequence[float] = 1.0, ndim: int | None = None
) -> np.ndarray:
    """A Gaussian integrated over each pixel (unnormalised; :func:`make_psf` normalises).

    Parameters
    ----------
    shape : tuple of int, optional
        Size per axis; default ``2 * ceil(4 * sigma) + 1`` per axis.
    sigma : float or sequence of float
        Standard deviation in pixels, one or one per axis (0: no blur along it).
    ndim : int, optional
        Dimensions; default the length of `sigma` or `shape`, else 2.

    Returns
    -------
    ndarray of float64
    """
    shape = _check_shape(shape, ndim)
    if isinstance(sigma, Sequence) or (hasattr(sigma, "__len__") and not isinstance(sigma, str)):
        sigmas = [_positive("sigma", s, "gaussian", allow_zero=True) for s in sigma]
        if ndim is not None and len(sigmas) != ndim:
            raise ValueError(f"sigma has {len(sigmas)} values but ndim is {ndim}")
    else:
        s = _positive("sigma", sigma, "gaussian", allow_zero=True)
        n = ndim or (len(shape) if shape is not None else 2)
        sigmas = [s] * n
    if shape is None:
        shape = _default_fits(tuple(2 * math.ceil(4 * s) + 1 for s in sigmas), f"sigma={sigma}")
    if len(shape) != len(sigmas):
        raise ValueError(
            f"shape {shape} has {len(shape)} axes but sigma gives {len(sigmas)}; "
            "pass one sigma per axis or a single number"
        )
    from scipy.special import ndtr

    profiles = []
    for n, s in zip(shape, sigmas, strict=True):
        x = np.arange(n) - (n - 1) / 2
        if s == 0:
            p = (np.abs(x) < 0.5 + 1e-9).astype(np.float64)
            if not p.any():  # even size: the centre falls between two pixels
                p = (np.abs(x) <= 0.5 + 1e-9).astype(np.float64)
        else:
            p = ndtr((x + 0.5) / s) - ndtr((x - 0.5) / s)  # integral over the pixel
        profiles.append(p)
    psf = profiles[0]
    for p in profiles[1:]:
        psf = np.multiply.outer(psf, p)
    return psf


def airy_psf(
    shape: Any = None,
    *,
    wavelength: float = 520.0,
    na: float = 0.8,
    pixel_size: float = 100.0,
    refractive_index: float = 1.0,
    oversample: int = 3,
    ndim: int = 2,
) -> np.ndarray:
    """The in-focus Airy disk of a circular pupil; with a 3-D `shape` or ``ndim=3``, widefield.

    Parameters are those of :func:`make_psf` (lengths in nm). Unnormalised
    float64; :func:`make_psf` normalises it.
    """
    return _widefield(
        "airy",
        shape,
        wavelength=wavelength,
        na=na,
        pixel_size=pixel_size,
        z_step=250.0,
        refractive_index=refractive_index,
        oversample=oversample,
        ndim=ndim,
    )


def widefield_psf(
    shape: Any = None,
    *,
    wavelength: float = 520.0,
    na: float = 0.8,
    pixel_size: float = 100.0,
    z_step: float = 250.0,
    refractive_index: float = 1.0,
    oversample: int = 3,
    ndim: int = 3,
) -> np.ndarray:
    """A widefield microscope's 3D PSF (scalar, paraxial); in 2D, the Airy disk.

    Parameters are those of :func:`make_psf` (lengths in nm). Unnormalised
    float64; :func:`make_psf` normalises it.
    """
    return _widefield(
        "widefield",
        shape,
        wavelength=wavelength,
        na=na,
        pixel_size=pixel_size,
        z_step=z_step,
        refractive_index=refractive_index,
        oversample=oversample,
        ndim=ndim,
    )


def _widefield(
    kind: str,
    shape: Any,
    *,
    wavelength: Any,
    na: Any,
    pixel_size: Any,
    z_step: Any,
    refractive_index: Any,
    oversample: Any,
    ndim: Any,
) -> np.ndarray:
    shape = _check_shape(shape, ndim)
    wavelength = _positive("wavelength", wavelength, kind)
    na = _positive("na", na, kind)
    pixel_size = _positive("pixel_size", pixel_size, kind)
    z_step = _positive("z_step", z_step, kind)
    n_medium = _positive("refractive_index", refractive_index, kind)
    if na > n_medium:
        raise ValueError(
            f"na={na} exceeds refractive_index={n_medium}; an objective's NA is at most the "
            "refractive index of its immersion medium (pass refractive_index=1.518 for oil)"
        )
    if (
        isinstance(oversample, bool)
        or not isinstance(oversample, numbers.Integral)
        or oversample < 1
    ):
        raise ValueError(f"oversample must be an integer >= 1, got {oversample!r}")
    ndim = len(shape) if shape is not None else ndim
    if ndim not in (2, 3):
        raise ValueError(f"PSF {kind!r} is 2D or 3D, got ndim={ndim!r}")
    # optical coordinates (Born & Wolf): v = k NA r, u = k NA^2 z / n
    k = 2 * np.pi / wavelength
    first_zero = 0.61 * wavelength / na  # radius of the Airy disk
    if shape is None:
        half = max(2, math.ceil(3 * first_zero / pixel_size))
        lateral = (2 * half + 1,) * 2
        if ndim == 3:
            depth_of_field = 2 * n_medium * wavelength / na**2  # first axial zero
            zhalf = max(1, math.ceil(2 * depth_of_field / z_step))
            shape = (2 * zhalf + 1, *lateral)
        else:
            shape = lateral
        shape = _default_fits(shape, f"na={na}, pixel_size={pixel_size}")
    zs = [0.0] if ndim == 2 else (np.arange(shape[0]) - (shape[0] - 1) / 2) * z_step
    ny, nx = shape[-2:]
    sub = (np.arange(oversample) + 0.5) / oversample - 0.5
    yy = (np.arange(ny) - (ny - 1) / 2)[:, None] + sub[None, :]
    xx = (np.arange(nx) - (nx - 1) / 2)[:, None] + sub[None, :]
    r = np.hypot(yy.reshape(ny, 1, oversample, 1), xx.reshape(1, nx, 1, oversample))
    radii = np.arange(0, r.max() + 2 * _RADIAL_STEP, _RADIAL_STEP)
    v = k * na * radii * pixel_size
    from scipy.special import j0

    rho, weight = np.polynomial.legendre.leggauss(_QUADRATURE_POINTS)
    rho = (rho + 1) / 2  # on [0, 1]
    weight = weight / 2
    bessel = j0(np.multiply.outer(v, rho)) * (weight * rho)  # (radii, rho)
    planes = []
    for z in zs:
        u = k * na**2 * z / n_medium
        amplitude = bessel @ np.exp(-0.5j * u * rho**2)
        profile = np.abs(2 * amplitude) ** 2  # 1 at the focus centre
        planes.append(np.interp(r, radii, profile).mean(axis=(2, 3)))
    psf = np.stack(planes) if ndim == 3 else planes[0]
    return psf


# ---------------------------------------------------------------- public


def make_psf(
    kind: str, shape: Any = None, *, ndim: int | None = None, **params: Any
) -> np.ndarray:
    """A normalised point spread function by name.

    Parameters
    ----------
    kind : {"gaussian", "airy", "widefield"} or another name of :func:`~napari_deconvnet.list_psfs`
        ``"gaussian"``: a Gaussian integrated over each pixel. ``"airy"``:
        the in-focus Airy disk of a circular pupil (2D). ``"widefield"``: the
        same optics in 3D, with its axial extent (a scalar, paraxial
        approximation). ``"airy"`` with a 3-D `shape` or ``ndim=3`` is
        ``"widefield"``, and ``"widefield"`` in 2D is the Airy disk.
    shape : tuple of int, optional
        Size per axis, (Y, X) or (Z, Y, X). The PSF is centred at
        ``(n - 1) / 2`` on every axis (between two pixels for even sizes).
        Default: ``2 * ceil(4 * sigma) + 1`` per axis for Gaussians; three
        Airy radii laterally and twice the depth of field axially otherwise.
    ndim : int, optional
        Dimensions of the PSF. Gaussian: default the length of `sigma` or
        `shape`, else 2; airy 2 and widefield 3 (each makes the other's
        dimensionality too).
    **params
        The kind's parameters (``dn.list_psfs()[kind].params``, checked
        against their ranges there):

        - ``"gaussian"``: ``sigma`` (pixels; a number or one per axis, 0
          means no blur along that axis; default 1).
        - ``"airy"``/``"widefield"``: ``wavelength`` (emission, nm, default
          520), ``na`` (numerical aperture, default 0.8), ``pixel_size``
          (lateral, nm, default 100), ``z_step`` (axial, nm, default 250),
          ``refractive_index`` of the immersion medium (default 1.0, air;
          at least `na`), ``oversample`` (sub-pixel samples per axis for the
          lateral pixel integration, default 3).

    Returns
    -------
    psf : (M, N) or (P, M, N) ndarray of float32
        Non-negative, summing to 1, symmetric under flips of every axis.

    Raises
    ------
    ValueError
        An unknown `kind` or parameter; negative, zero or non-finite
        parameters; ``na > refractive_index``; a `shape` that does not fit
        the parameters.
    TypeError
        Non-numeric parameters or shape.

    Notes
    -----
    With ``k = 2 pi / wavelength``, lateral radius ``r`` and defocus ``z``,
    the widefield intensity PSF of an aberration-free circular pupil in the
    paraxial (Born & Wolf) approximation [1]_ is

    ``h(r, z) = |2 int_0^1 J0(v rho) exp(-i u rho^2 / 2) rho d rho|^2``

    with ``v = k NA r`` and ``u = k NA^2 z / n``. In focus (``u = 0``) it is
    the Airy pattern ``(2 J1(v) / v)^2``, whose first zero lies at
    ``0.61 wavelength / NA``. It is integrated over each pixel laterally
    (`oversample`² samples) and sampled at the planes' centres axially. The
    approximation neglects vectorial and high-NA effects and aberrations,
    such as a refractive-index mismatch with the sample.

    References
    ----------
    .. [1] M. Born and E. Wolf, *Principles of Optics*, 7th ed., Cambridge
           University Press, 1999, section 8.8.

    Examples
    --------
    >>> psf = make_psf("gaussian", shape=(7, 7), sigma=1.0)
    >>> psf.shape, psf.dtype, round(float(psf.sum()), 6)
    ((7, 7), dtype('float32'), 1.0)
    >>> make_psf("airy", wavelength=520, na=1.4, pixel_size=65,
    ...          refractive_index=1.518).shape
    (23, 23)
    >>> make_psf("widefield", shape=(9, 15, 15), na=1.0, refractive_index=1.33).shape
    (9, 15, 15)
    """
    names = list(specs("psf", available=False))
    if not isinstance(kind, str) or kind.lower() not in names:
        raise ValueError(f"unknown PSF {kind!r}; accepted names are {names}")
    spec = get("psf", kind.lower())
    kind = spec.name
    if ndim is not None and (
        isinstance(ndim, bool) or not isinstance(ndim, int | np.integer) or ndim not in (1, 2, 3)
    ):  # (2.0 passed, then failed in the kind with a bare TypeError)
        raise ValueError(f"ndim must be the integer 1, 2 or 3, got {ndim!r}")
    p = spec.check(params)
    sizes = _check_shape(shape, ndim)
    if sizes is not None and ndim is not None and len(sizes) != ndim:
        raise ValueError(f"shape {sizes} has {len(sizes)} axes but ndim is {ndim}")
    function = spec.resolve()
    if ndim is not None and "ndim" in inspect.signature(function).parameters:
        p["ndim"] = ndim
    psf = np.asarray(function(sizes, **p), dtype=np.float64)
    if ndim is not None and psf.ndim != ndim:
        raise ValueError(f"PSF {kind!r} made a {psf.ndim}D PSF but ndim is {ndim}")
    total = psf.sum()
    if not total > 0:
        raise ValueError(
            f"PSF {kind!r} with shape {psf.shape} has no energy on its pixels; use a larger shape"
        )
    return (psf / total).astype(np.float32)


def warn_psf_order(psf: Any, axes: Any) -> None:
    """Warn when a PSF array would read otherwise in the image's axis order.

    A PSF array's axes are always Z, Y, X (the order :func:`make_psf` gives),
    whatever the order of the image's `axes` (``"XY"``, ``"YXZ"``): an
    anisotropic PSF stored like an image in another order was read along the
    wrong axes without a word (session 70). Names, dicts and PSFs that a
    transposition into the image's order leaves alike are not warned about.
    """
    if not isinstance(axes, str) or not (isinstance(psf, np.ndarray) or _is_tensor(psf)):
        return  # (names and dicts are made in the order asked for)
    kernel = np.asarray(tensor_array(psf) if _is_tensor(psf) else psf)
    if kernel.ndim == 3 and kernel.shape[0] == 1:  # a plane's PSF one plane deep
        kernel = kernel[0]
    letters = [a for a in axes.upper() if a in "ZYX"]
    canonical = [a for a in "ZYX" if a in letters]
    if kernel.ndim not in (2, 3) or letters == canonical:
        return
    if kernel.ndim < len(letters):  # a plane's PSF beside a volume: its Y and X
        letters, canonical = [a for a in letters if a != "Z"], ["Y", "X"]
        if letters == canonical:
            return
    if kernel.ndim != len(letters):
        return
    order = [letters.index(a) for a in canonical]  # an image-order PSF read in Z, Y, X
    swapped = np.transpose(kernel, order)
    if swapped.shape == kernel.shape and np.allclose(swapped, kernel, rtol=1e-5, atol=1e-8):
        return
    from ._validation import user_stacklevel

    warnings.warn(
        f"the PSF array is read in {''.join(canonical)} order (as make_psf makes it), not "
        f"in the image's axes order {''.join(letters)!r}; if it is stored like the image, "
        f"pass psf.transpose({tuple(order)})",
        UserWarning,
        stacklevel=user_stacklevel(),
    )


def named_psf(psf: Any) -> bool:
    """Whether `psf` is a :func:`make_psf` name, or a dict of one without a ``shape``,
    an ``ndim`` or per-axis sigmas: a PSF whose dimensions the model may choose."""
    if isinstance(psf, str):
        return True
    return (
        isinstance(psf, Mapping)
        and isinstance(psf.get("kind"), str)
        and "shape" not in psf
        and "ndim" not in psf
        and np.ndim(psf.get("sigma")) == 0
    )


def single_leading_axes(shape: Sequence[int], ndim: int) -> int:
    """How many leading axes of an array PSF of `shape` are single planes beyond `ndim`
    dimensions (a ``(1, Y, X)`` PSF is a plane's, as a layer of one plane holds it)."""
    k = 0
    while len(shape) - k > ndim and int(shape[k]) == 1:
        k += 1
    return k


def psf_in_dimensions(psf: str | Mapping, ndim: int) -> dict[str, Any]:
    """A :func:`named_psf` as the dict that makes it with `ndim` dimensions."""
    spec = {"kind": psf} if isinstance(psf, str) else dict(psf)
    return {**spec, "ndim": int(ndim)}


def as_psf(psf: Any, ndim: int | None = None, *, measured: bool = True) -> np.ndarray:
    """Validate a user's ``psf=`` and return it as a float64 array summing to 1.

    Parameters
    ----------
    psf : ndarray, torch.Tensor, str or dict
        An array (normalised here), a :func:`make_psf` name with default
        parameters, or a dict ``{"kind": name, **params}`` (which may hold
        ``"shape"``).
    ndim : int, optional
        Number of dimensions of the image it will blur: the PSF may not have
        more.
    measured : bool
        An array may be a measured PSF (a bead's crop): when it sits on a
        flat background (the camera's offset; :func:`psf_pedestal`), that
        background is removed (:func:`remove_pedestal`), with a
        :class:`~napari_deconvnet.core.conditions.ConditionsWarning`. False
        for kernels known to be theoretical.

    Returns
    -------
    ndarray of float64

    Raises
    ------
    ValueError
        Complex, empty or non-finite PSFs, PSFs without positive values, with
        negative values weighing more than half of the positive ones, or with
        more dimensions than the image, unknown names. Smaller negative values
        (background noise of a measured PSF) are set to zero with a
        ``UserWarning``.
    TypeError
        Anything else.
    """
    from .channel_psfs import per_channel

    if per_channel(psf):  # (stacked, it would blur across the channels as a volume)
        n = len(psf)
        raise ValueError(
            f"psf is a list of {n} PSFs (one per channel), but this takes one PSF; "
            "dn.restore, dn.restore_to_zarr, dn.run_method, dn.train and dn.adapt take one "
            "PSF per channel with axes that name the channel axis (e.g. axes='CYX'); "
            "elsewhere, call it "
            "once per channel with that channel's PSF"
        )
    if isinstance(psf, str):
        kernel = make_psf(psf)
    elif isinstance(psf, Mapping):
        spec = dict(psf)
        if "kind" not in spec:
            raise ValueError(
                f"a PSF given as a dict needs a 'kind' among {list(PSF_KINDS)}, got keys "
                f"{sorted(spec)}"
            )
        kind = spec.pop("kind")
        kernel = make_psf(kind, spec.pop("shape", None), **spec)
    else:
        if _is_tensor(psf):
            psf = tensor_array(psf)
        if not hasattr(psf, "__array__") and not isinstance(psf, (list, tuple)):
            raise TypeError(
                f"psf must be an array, a PSF name {list(PSF_KINDS)} or a dict with a 'kind', "
                f"got {type(psf).__name__}"
            )
        kernel = np.asarray(psf)
        if np.iscomplexobj(kernel) or kernel.dtype.kind not in "biuf":
            raise ValueError(f"psf must be a real numeric array, got dtype {kernel.dtype}")
    kernel = np.asarray(kernel, dtype=np.float64)
    if ndim is not None and kernel.ndim > ndim:  # a (1, Y, X) PSF is a plane's
        kernel = kernel[(0,) * single_leading_axes(kernel.shape, ndim)]
    if kernel.size == 0 or kernel.ndim == 0 or (ndim is not None and kernel.ndim > ndim):
        limit = f"at most as many dimensions as the image ({ndim})" if ndim else "dimensions"
        raise ValueError(
            f"psf must be a non-empty array with {limit}, got shape {kernel.shape}; "
            "it blurs the trailing axes"
        )
    if not np.isfinite(kernel).all():
        raise ValueError("psf contains NaN or infinite values")
    if measured and not isinstance(psf, (str, Mapping)):
        kernel = _without_pedestal(kernel)
    return _clip_negative(kernel)


#: A generated PSF cropped to a small image warns when the crop leaves out more
#: than this share of its light
CROP_WARN_SHARE = 0.01


def crop_to(kernel: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """`kernel` centre-cropped to odd sizes that fit `shape`, renormalised to sum 1.

    `shape` is the image's (its trailing ``kernel.ndim`` sizes count); axes
    that fit are kept as they are.

    Examples
    --------
    >>> crop_to(make_psf("gaussian", sigma=(1.5, 1, 1)), (6, 64, 64)).shape
    (5, 9, 9)
    """
    from .kinds import central_box

    shape = (max(kernel.shape),) * (kernel.ndim - len(shape)) + tuple(shape[-kernel.ndim :])
    sizes = zip(kernel.shape, shape, strict=True)
    keep = [k if k <= n else max(1, n - (1 - n % 2)) for k, n in sizes]  # odd where cut
    out = np.asarray(kernel[central_box(kernel.shape, keep)], np.float64)
    return out / out.sum()


def fit_psf(psf: Any, kernel: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """`kernel` (:func:`as_psf` of the user's `psf`) fitted to an image of `shape`.

    A PSF the package generates (a :func:`make_psf` name, or a dict without
    ``"shape"``) has the size its kind and width call for: 27 planes for the
    default 3D widefield PSF, 13 for a Gaussian of sigma 1.5 along Z, more
    than many z-stacks hold. Such a kernel is centre-cropped to the image
    (:func:`crop_to`), with a :class:`~napari_deconvnet.core.conditions.ConditionsWarning`
    when the crop leaves out more than :data:`CROP_WARN_SHARE` of its light.
    An array, or a dict with a ``"shape"``, is the user's choice and is
    returned as it is (the callers refuse one bigger than the image).
    """
    generated = isinstance(psf, str) or (isinstance(psf, Mapping) and psf.get("shape") is None)
    spatial = tuple(int(n) for n in shape[len(shape) - kernel.ndim :])
    if not generated or all(k <= n for k, n in zip(kernel.shape, spatial, strict=True)):
        return kernel
    from .kinds import central_box

    cropped = crop_to(kernel, spatial)
    lost = 1.0 - float(kernel[central_box(kernel.shape, cropped.shape)].sum() / kernel.sum())
    if lost > CROP_WARN_SHARE:  # a warning, or a dock widget's notification
        from .channel_psfs import of_channel
        from .conditions import report_conditions

        kind = psf if isinstance(psf, str) else psf.get("kind")
        report_conditions(
            [
                f"the generated {kind!r} PSF{of_channel()} of shape {kernel.shape} was "
                f"cropped to "
                f"{cropped.shape} to fit the image {spatial}, which leaves out {lost:.0%} of "
                "its light: along the cropped axes the image holds less than the blur "
                "spreads over, and the deconvolution there is approximate"
            ],
            stacklevel=3,
        )
    return cropped


# ---------------------------------------------------------------- measured PSFs

#: A bead's crop whose background was not subtracted sits on the camera's
#: offset: summed over the crop, that flat floor can outweigh the bead, and
#: a PSF normalised with it blurs far more than the microscope (a 25x25 crop
#: of a bead at 300 photons on an offset of 100 cost ``deconv-2d`` 15 dB).
#: :func:`psf_pedestal` calls the border's level a pedestal when it weighs at
#: least this fraction of the kernel's sum...
PEDESTAL_MIN_MASS = 0.02
#: ...lies below this fraction of the peak (a box or a PSF wider than its crop
#: is no pedestal)...
PEDESTAL_MAX_LEVEL = 0.5
#: ...is level: the border's spread (MAD, as a standard deviation) at most this
#: fraction of its median (the tails of a theoretical PSF vary about as much as
#: they weigh; a camera's offset of 10 counts with its shot noise spreads 0.33)...
PEDESTAL_MAX_SPREAD = 0.4
#: ...and the shell one pixel further in has the same median, within this
#: fraction of the level plus four standard errors of the noise (the tails of a
#: PSF cut off by its crop still fall toward the border).
PEDESTAL_STEP = 0.05
#: What is left of the bead after subtraction is kept where the crop smoothed
#: by a Gaussian of :data:`PEDESTAL_SMOOTHING` pixels lies more than this many
#: of the smoothed noise's deviations above the pedestal; the rest is set to
#: zero: the noise left on a subtracted floor would otherwise add up to a
#: second, smaller pedestal. Chosen on validation scenes and beads
#: (``benchmarks/psf_background.py``'s rule, 3/4/5 and a plain 3-deviation cut
#: of the unsmoothed crop; 4 and 5 tied, the smaller cut kept).
PEDESTAL_NOISE_CUT = 4.0
#: Gaussian sigma (pixels) of the smoothing that decides what is kept: faint,
#: spatially coherent wings stay, isolated noise goes.
PEDESTAL_SMOOTHING = 1.0
#: Only axes at least this long carry a border to measure.
PEDESTAL_MIN_SIZE = 7


def _shell(shape: tuple[int, ...], axes: list[int], depth: int) -> np.ndarray:
    """Mask of the pixels `depth` pixels in from either end of any of `axes`."""
    mask = np.zeros(shape, bool)
    for axis in axes:
        for index in (depth, shape[axis] - 1 - depth):
            where: list[Any] = [slice(None)] * len(shape)
            where[axis] = index
            mask[tuple(where)] = True
    return mask


def psf_pedestal(kernel: Any) -> tuple[float, float] | None:
    """The flat background a measured PSF sits on, and its noise.

    A bead imaged on a camera comes with the camera's offset (often 100 ADU)
    and the background's noise around it. The pedestal is the median of the
    kernel's outermost pixels (along every axis of at least
    :data:`PEDESTAL_MIN_SIZE` pixels) when that border is level and weighs
    something (:data:`PEDESTAL_MIN_MASS`, :data:`PEDESTAL_MAX_LEVEL`,
    :data:`PEDESTAL_MAX_SPREAD`, :data:`PEDESTAL_STEP`). The kernels of
    :func:`make_psf` (Gaussian, Airy, widefield, cropped to 5-65 pixels)
    have none.

    Parameters
    ----------
    kernel : array_like
        The PSF as measured (any scale: counts or ADU).

    Returns
    -------
    (level, noise) or None
        The pedestal and the border's spread around it (a standard
        deviation, from the median absolute deviation), in the kernel's
        units; None when the border is no pedestal.

    Examples
    --------
    >>> psf = make_psf("gaussian", (25, 25), sigma=2.0)
    >>> psf_pedestal(psf) is None
    True
    >>> level, noise = psf_pedestal(1000 * psf / psf.max() + 100)
    >>> round(level, 6), noise
    (100.0, 0.0)
    """
    kernel = np.asarray(kernel, np.float64)
    axes = [axis for axis, n in enumerate(kernel.shape) if n >= PEDESTAL_MIN_SIZE]
    peak = float(kernel.max()) if kernel.size else 0.0
    if not axes or peak <= 0:
        return None
    outer = _shell(kernel.shape, axes, 0)
    border = kernel[outer]
    level = float(np.median(border))
    if not 0 < level < PEDESTAL_MAX_LEVEL * peak:
        return None
    if level * kernel.size < PEDESTAL_MIN_MASS * float(kernel.sum()):
        return None
    spread = 1.4826 * float(np.median(np.abs(border - level)))
    if spread > PEDESTAL_MAX_SPREAD * level:
        return None
    inner = kernel[_shell(kernel.shape, axes, 1) & ~outer]
    if inner.size == 0:  # a one-row kernel (a line profile's PSF): no second ring to compare
        return None
    # the noise alone, from neighbouring border pixels (a smooth tail differs little)
    steps = [
        np.diff(np.take(kernel, index, axis=axis), axis=-1).ravel()
        for axis in axes
        for index in (0, kernel.shape[axis] - 1)
        if kernel.ndim > 1
    ]
    steps = [step for step in steps if step.size]  # a one-row kernel's ends have no steps
    noise = 0.0
    if steps:
        step = np.concatenate(steps)
        noise = difference_sigma(step)
    tolerance = PEDESTAL_STEP * level + 4 * noise / math.sqrt(border.size)
    if abs(float(np.median(inner)) - level) > tolerance:
        return None
    # a computed pattern (exactly mirror-symmetric, as no measured bead is) with dark
    # pixels inside, far below its border: an Airy pattern whose bright ring runs along
    # the crop's edge, not a background under every pixel (make_psf("airy", (9, 9),
    # na=1.4, pixel_size=65, ...) lost 7-14 % of its light as a "pedestal")
    if _mirror_symmetric(kernel) and int((kernel < 0.5 * level).sum()) >= 3:
        return None
    return level, spread


def _mirror_symmetric(kernel: np.ndarray) -> bool:
    """Whether `kernel` equals its mirror image along every axis (to float rounding)."""
    atol = 1e-7 * float(np.abs(kernel).max())
    return all(
        np.allclose(kernel, np.flip(kernel, axis), rtol=1e-6, atol=atol)
        for axis in range(kernel.ndim)
    )


def remove_pedestal(kernel: Any) -> np.ndarray:
    """`kernel` without the flat background it sits on (:func:`psf_pedestal`).

    The pedestal is subtracted; what remains is kept where the kernel,
    smoothed by a Gaussian of :data:`PEDESTAL_SMOOTHING` pixels, lies more
    than :data:`PEDESTAL_NOISE_CUT` deviations of the smoothed noise above
    the pedestal (negative values there are set to zero), and set to zero
    elsewhere. A kernel without one comes back as float64, unchanged.

    Examples
    --------
    >>> psf = make_psf("gaussian", (25, 25), sigma=2.0)
    >>> cleaned = remove_pedestal(1000 * psf / psf.max() + 100)
    >>> bool(np.allclose(cleaned / cleaned.sum(), psf))
    True
    """
    kernel = np.asarray(kernel, np.float64)
    found = psf_pedestal(kernel)
    return kernel if found is None else _subtract_pedestal(kernel, *found)


def _subtract_pedestal(kernel: np.ndarray, level: float, noise: float) -> np.ndarray:
    """:func:`remove_pedestal` of a pedestal already found (`level`, `noise`)."""
    from scipy import ndimage

    above = kernel - level
    smoothed = ndimage.gaussian_filter(above, PEDESTAL_SMOOTHING)
    delta = np.zeros(kernel.shape)
    delta[tuple(n // 2 for n in kernel.shape)] = 1.0
    # white noise of deviation `noise`, smoothed: noise times the filter's norm
    response = ndimage.gaussian_filter(delta, PEDESTAL_SMOOTHING)
    spread = noise * float(np.sqrt((response**2).sum()))
    return np.where(smoothed > PEDESTAL_NOISE_CUT * spread, np.clip(above, 0.0, None), 0.0)


def _without_pedestal(kernel: np.ndarray) -> np.ndarray:
    """:func:`remove_pedestal`, saying so (a condition note: the widget shows it)."""
    found = psf_pedestal(kernel)
    if found is None:
        _say_raised_border(kernel)
        return kernel
    from .conditions import report_conditions

    level, noise = found
    share = level * kernel.size / float(kernel.sum())
    report_conditions(
        [
            f"the PSF sits on a flat background of {level:.4g} (the median of its border, "
            f"{share:.0%} of its sum: a bead's crop with the camera's offset?); it was "
            f"subtracted before normalising, with the noise around it (the border's deviation: "
            f"{noise:.3g}). Subtract the background yourself to silence this."
        ],
        stacklevel=3,  # as_psf's caller
    )
    return _subtract_pedestal(kernel, level, noise)


#: A measured PSF whose border (median) weighs this share of its sum or more, and that
#: is no pedestal, is used as given with a warning (:func:`_say_raised_border`)
RAISED_BORDER_SHARE = 0.1


def _say_raised_border(kernel: np.ndarray) -> None:
    """A condition note for a measured PSF whose border lies well above zero but is no
    flat pedestal (:func:`psf_pedestal`): a crop so tight that the bead's wings reach
    it, or a background that slopes across it. It is used as given; the note says so
    (session 72: an 11-pixel crop of a bead about 4 pixels wide on an offset of 100
    cost 7.2 dB at a peak of 300 counts and 1.0 dB at 3000, without a word). Computed
    patterns (mirror-symmetric, as no measured bead is) say nothing."""
    axes = [axis for axis, n in enumerate(kernel.shape) if n >= PEDESTAL_MIN_SIZE]
    total = float(kernel.sum())
    if not axes or not total > 0 or _mirror_symmetric(kernel):
        return
    # a low quantile: a background lifts every border pixel, where the wings of a
    # widefield bead's defocused planes leave the in-focus planes' borders dark
    level = float(np.percentile(kernel[_shell(kernel.shape, axes, 0)], 5))
    share = level * kernel.size / total
    if share < RAISED_BORDER_SHARE:
        return
    from .channel_psfs import psf_words
    from .conditions import report_conditions

    report_conditions(
        [
            f"the border of {psf_words()} lies well above zero (all but 5% of it above "
            f"{level:.4g}, {share:.0%} of the PSF's sum if under every pixel) but is no "
            "flat background that could be subtracted: the bead's wings reach the crop's "
            "edge, or the background slopes across it. The PSF is used as given, that "
            "light included, which widens it; crop wider around the bead, or subtract the "
            "background yourself"
        ],
        stacklevel=4,  # as_psf's caller
    )


#: Largest negative mass, as a fraction of the positive mass, that :func:`as_psf`
#: clips (with a warning) instead of refusing the PSF.
NEGATIVE_TOLERANCE = 0.5


def _clip_negative(kernel: np.ndarray) -> np.ndarray:
    """`kernel` with negative values set to zero, normalised to sum 1.

    A PSF is a non-negative blur: Richardson-Lucy, the Wiener channel and the
    noise synthesis all assume it. A measured PSF whose background was
    subtracted has small negative values from the noise; those are clipped,
    with a warning that says how much was removed. A kernel whose negative
    values weigh more than :data:`NEGATIVE_TOLERANCE` of its positive ones
    (a sharpening or difference kernel, an inverted image) is not a PSF, and
    one without positive values cannot be normalised: both raise.
    """
    # by its largest magnitude first: a kernel of 1e308s summed to inf and became zeros
    # (session 69); values that are all finite stay finite divided by their maximum
    kernel = kernel / float(np.abs(kernel).max() or 1.0)
    positive = float(kernel[kernel > 0].sum())
    negative = float(-kernel[kernel < 0].sum())
    # relative to the kernel's own scale: an absolute 1e-12 refused a positive PSF in
    # physical units (values of 1e-15) as having "no positive values"
    if not positive > 1e-12 * float(np.abs(kernel).max()):
        raise ValueError(
            "psf has no positive values (it sums to zero or is negative) and cannot be "
            "normalised to sum 1; a PSF is a non-negative blur kernel"
        )
    if negative > NEGATIVE_TOLERANCE * positive:
        raise ValueError(
            f"psf has negative values weighing {negative / positive:.0%} of its positive "
            f"ones (at most {NEGATIVE_TOLERANCE:.0%} are clipped); a PSF is a non-negative "
            "blur kernel. If the negatives are background noise of a measured PSF, clip "
            "them first: numpy.clip(psf, 0, None)"
        )
    if negative > 0:
        from .channel_psfs import psf_words

        warnings.warn(
            f"{psf_words('psf')} has negative values ({negative / positive:.2%} of its "
            f"positive sum, {int((kernel < 0).sum())} of {kernel.size} pixels), set to "
            "zero: a PSF is a non-negative blur kernel",
            UserWarning,
            stacklevel=3,
        )
        kernel = np.where(kernel > 0, kernel, 0.0)
    return kernel / kernel.sum()


#: Pixels under this fraction of a PSF's peak are left out of its centre of
#: mass (:func:`psf_offset`): the background and noise of a measured PSF would
#: pull the centre toward the middle of the crop.
CENTRE_FLOOR = 0.05


def psf_offset(kernel: Any) -> np.ndarray:
    """Where a PSF's centre lies, relative to its origin, per axis (pixels).

    The origin of a kernel of size ``n`` is pixel ``n // 2``, as in
    :func:`blur` and ``scipy.ndimage.convolve``: a kernel whose mass sits
    elsewhere also shifts what it blurs. The centre is the centre of mass of
    the kernel above :data:`CENTRE_FLOOR` of its peak (minus that floor). A
    symmetric odd-sized PSF gives zeros; a symmetric even-sized one -0.5.

    Examples
    --------
    >>> kernel = np.zeros((5, 7)); kernel[1, 5] = 1
    >>> psf_offset(kernel).tolist()
    [-1.0, 2.0]
    """
    kernel = np.asarray(kernel, np.float64)
    weight = np.clip(kernel - CENTRE_FLOOR * kernel.max(), 0, None)
    total = weight.sum()
    if total <= 0:  # flat: its centre is the middle
        return np.array([(n - 1) / 2 - n // 2 for n in kernel.shape])
    grids = np.indices(kernel.shape, sparse=True)
    return np.array(
        [
            float((weight * g).sum() / total) - n // 2
            for g, n in zip(grids, kernel.shape, strict=True)
        ]
    )


def recentre_psf(
    kernel: np.ndarray, limit: Any = None
) -> tuple[np.ndarray, tuple[int, ...] | None]:
    """A PSF whose centre lies off its origin, moved onto it by whole pixels.

    A measured PSF is rarely cropped around its bead exactly: its centre may
    sit a pixel or more away from the kernel's origin (pixel ``n // 2``),
    which shifts the blurred image by as much. The shipped deconvolution
    networks were trained on centred PSFs, and given such a kernel they see
    their two inputs (the image, and its classical pre-deconvolution, which
    undoes the shift) out of register: 2 pixels off cost ``deconv-2d`` about
    4 dB. Restore therefore deconvolves with the kernel padded so that its
    centre is within half a pixel of its origin, and reads its input that
    many pixels further (``shift``): the result is the same object estimate,
    in the same place, as Richardson-Lucy's with the kernel as given.

    Parameters
    ----------
    kernel : ndarray
        A PSF from :func:`as_psf` (non-negative, sum 1).
    limit : sequence of int, optional
        The largest size per axis (the image's): the padded kernel is
        cropped evenly at both ends to fit (its origin stays put).

    Returns
    -------
    kernel, shift
        The kernel (`kernel` itself when its centre is within half a pixel of
        the origin; then `shift` is None) and the whole pixels its centre lay
        off the origin, per axis.

    Examples
    --------
    >>> kernel = np.zeros((5, 5)); kernel[2, 4] = 1
    >>> centred, shift = recentre_psf(kernel)
    >>> centred.shape, shift, psf_offset(centred).tolist()
    ((5, 9), (0, 2), [0.0, 0.0])
    """
    # (rounded first: a symmetric even kernel's -0.5 came out a hair below it on one axis
    # and was moved there only, which made a (4, 4) box a (6, 4) one)
    shift = np.floor(np.round(psf_offset(kernel), 9) + 0.5).astype(int)
    if not shift.any():
        return kernel, None
    out = np.pad(kernel, [(0, 2 * k) if k > 0 else (-2 * k, 0) for k in shift])
    if limit is not None:
        for axis, n in enumerate(limit):
            cut = max(0, (out.shape[axis] - int(n) + 1) // 2)
            if cut:
                out = out[(slice(None),) * axis + (slice(cut, out.shape[axis] - cut),)]
    return out / out.sum(), tuple(int(k) for k in shift)


#: Taps per side of the windowed sinc (Lanczos) that moves an image by a fraction
#: of a pixel (:func:`subpixel_shift`).
SUBPIXEL_RADIUS = 8
#: Fractions of a pixel under this are left alone: measured with ``deconv-2d``,
#: resampling gains +0.17 dB (mean) at half a pixel and +0.33 dB with even-sized
#: PSFs (whose centre falls between two pixels), and nothing or a little less
#: at 0.3 pixels, where the noise it correlates costs what the registration gains.
SUBPIXEL_MIN = 0.35


def subpixel_fraction(kernel: np.ndarray) -> tuple[float, ...] | None:
    """What remains of a (recentred) PSF's offset, per axis, or None when all are small."""
    fraction = psf_offset(kernel)
    if np.all(np.abs(fraction) < SUBPIXEL_MIN):
        return None
    return tuple(float(f) for f in fraction)


def subpixel_taps(fraction: float, radius: int = SUBPIXEL_RADIUS) -> np.ndarray:
    """Correlation taps at offsets ``-radius..radius`` sampling a signal at ``i + fraction``."""
    k = np.arange(-radius, radius + 1) - fraction
    taps = np.sinc(k) * np.sinc(k / radius)
    taps[np.abs(k) >= radius] = 0.0
    return taps / taps.sum()


def subpixel_shift(image: np.ndarray, fraction: Sequence[float]) -> np.ndarray:
    """`image` sampled at ``i + fraction`` along its trailing axes (float32).

    A Lanczos windowed sinc of :data:`SUBPIXEL_RADIUS` taps per side, the
    image reflected at its borders (scipy's ``"reflect"``): close to exact
    for a blurred image; white noise stays nearly white (at half a pixel it
    keeps 92% of its variance per axis), as a network trained on white noise
    wants.
    """
    from scipy import ndimage

    out = np.asarray(image, np.float32)
    start = out.ndim - len(fraction)
    for i, f in enumerate(fraction):
        if abs(f) >= SUBPIXEL_MIN:
            out = ndimage.correlate1d(out, subpixel_taps(f), axis=start + i, mode="reflect")
    return out


def _reflect(n: int, pad_lo: int, pad_hi: int) -> np.ndarray:
    """Indices of scipy.ndimage's ``mode="reflect"`` (d c b a | a b c d | d c b a)."""
    idx = np.arange(-pad_lo, n + pad_hi) % (2 * n)
    return np.where(idx >= n, 2 * n - 1 - idx, idx)


def blur(image: Any, psf: Any) -> Any:
    """Convolve the trailing axes of `image` with a PSF (normalised to sum 1).

    Parameters
    ----------
    image : ndarray or torch.Tensor
        Any real dtype; a tensor stays on its device.
    psf : ndarray, torch.Tensor, str or dict
        As :func:`as_psf` accepts. A PSF with fewer dimensions than the image
        blurs every plane (or line) of the trailing axes independently.

    Returns
    -------
    ndarray or torch.Tensor of float32, the shape of `image`

    Notes
    -----
    The image is extended by reflection at its borders (scipy.ndimage's
    ``mode="reflect"``: ``d c b a | a b c d | d c b a``), so intensities
    are preserved up to the borders and no dark frame appears. The result
    equals ``scipy.ndimage.convolve(image, psf, mode="reflect")`` (even PSF
    sizes follow scipy's origin).

    Examples
    --------
    >>> import numpy as np
    >>> out = blur(np.eye(5), np.ones((3, 3)))
    >>> round(float(out[2, 2]), 3), out.dtype
    (0.333, dtype('float32'))
    """
    kernel = as_psf(psf, getattr(image, "ndim", None))
    if _is_tensor(image):
        import torch

        if not image.is_floating_point():
            image = image.to(torch.float32)
        return _blur_tensor(image.to(torch.float32), kernel, _separable(kernel))
    return _blur_numpy(np.asarray(image, dtype=np.float32), kernel, _separable(kernel))


#: Kernels with more taps than this are applied through FFTs (same result).
_FFT_TAPS = 64


def _separable(kernel: np.ndarray) -> list[np.ndarray] | None:
    """The 1D factors of a PSF of 2 or more axes, if it is separable."""
    from .deconv_operators import separable_taps

    return separable_taps(kernel) if kernel.ndim > 1 else None


def _blur_numpy(image: np.ndarray, kernel: np.ndarray, taps: list | None) -> np.ndarray:
    """`taps`: the kernel's 1D factors (:func:`_separable`), or None."""
    from scipy import ndimage, signal

    lead = image.ndim - kernel.ndim
    if taps is not None:
        # a separable PSF (a Gaussian): one 1D pass per axis, equal to the full
        # convolution within 1e-7 (four 106x138x138 patches with a 15x13x13
        # Gaussian: 0.29 s against 3.0 s through FFTs; 2D 7x7: 4x faster)
        x = image.astype(np.float64)
        for axis, factor in enumerate(taps, start=lead):
            x = ndimage.convolve1d(x, factor, axis=axis, mode="reflect")
        return x.astype(np.float32)
    full = kernel.reshape((1,) * lead + kernel.shape)
    if kernel.size <= _FFT_TAPS:
        return ndimage.convolve(image.astype(np.float64), full, mode="reflect").astype(np.float32)
    # large PSFs (Airy disks, 3D widefield) cost O(taps) per pixel directly:
    # extend the image exactly as scipy's "reflect" does, then a "valid" FFT
    # convolution over the PSF's axes gives scipy.ndimage.convolve's result
    x = image.astype(np.float64)
    for axis, size in enumerate(kernel.shape, start=lead):
        x = x.take(_reflect(image.shape[axis], (size - 1) // 2, size // 2), axis=axis)
    axes = tuple(range(lead, image.ndim))
    return signal.fftconvolve(x, full, mode="valid", axes=axes).astype(np.float32)


def _blur_tensor(image: Any, kernel: np.ndarray, taps: list | None) -> Any:
    import torch
    import torch.nn.functional as F

    k = kernel.ndim
    # one-channel convolutions with large kernels are slow on the CPU (a
    # 21x11x11 PSF took 7.7 s for four 118x102x102 patches): FFTs there, and
    # one 1D pass per axis for a separable PSF (see _blur_numpy)
    cpu = image.device.type == "cpu"
    if k > 3 or (cpu and (kernel.size > _FFT_TAPS or taps is not None)):
        out = _blur_numpy(image.detach().cpu().numpy(), kernel, taps)
        return torch.as_tensor(out, device=image.device)
    spatial = image.shape[image.ndim - k :]
    x = image.reshape(-1, 1, *spatial)
    for axis, (n, size) in enumerate(zip(spatial, kernel.shape, strict=True)):
        # pad like scipy.ndimage.convolve: (s - 1) // 2 before, s // 2 after
        lo, hi = (size - 1) // 2, size // 2
        idx = torch.as_tensor(_reflect(n, lo, hi), device=image.device)
        x = x.index_select(2 + axis, idx)
    weight = torch.as_tensor(
        np.ascontiguousarray(kernel[(slice(None, None, -1),) * k]),
        dtype=image.dtype,
        device=image.device,
    )
    conv = (F.conv1d, F.conv2d, F.conv3d)[k - 1]
    return conv(x, weight[None, None]).reshape(image.shape)
