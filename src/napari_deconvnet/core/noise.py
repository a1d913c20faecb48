"""Synthetic degradation of clean images: optional blur by a PSF, then noise.

:func:`estimate_noise` (from :mod:`.noise_estimation`) measures the noise of
a real image as parameters for :func:`synthesize`.

Every noise model works on NumPy arrays and on torch tensors (on any device),
draws from a generator seeded by `seed` and returns float32 of the input's
shape, so that training pairs can be made on the fly where the data lives.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._validation import check_finite, check_real, check_single_range, unmasked
from ._validation import is_tensor as _is_tensor
from .noise_estimation import estimate_noise
from .psf import as_psf, blur
from .specs import Spec, SpecTable, get, specs

__all__ = [
    "NOISE_MODELS",
    "estimate_noise",
    "gaussian_noise",
    "no_noise",
    "poisson_gaussian_noise",
    "poisson_noise",
    "salt_and_pepper_noise",
    "speckle_noise",
    "synthesize",
]

#: The noise models of :func:`synthesize` with their parameters' defaults: a
#: read-only view of :func:`napari_deconvnet.core.specs.list_noise_models`.
NOISE_MODELS = SpecTable("noise", lambda spec: spec.defaults())


def _check_image(clean: Any) -> Any:
    """Validate `clean` and return a float32 copy (ndarray or tensor)."""
    if _is_tensor(clean):
        import torch

        if clean.is_complex():
            raise ValueError(
                f"clean must be a real image, got a complex tensor ({clean.dtype}); "
                "pass its magnitude or real part"
            )
        if clean.numel() == 0:
            raise ValueError(
                f"clean is empty (shape {tuple(clean.shape)}); pass a non-empty image"
            )
        image = clean.detach().to(torch.float32).clone()
        if not bool(torch.isfinite(image).all()):
            raise ValueError("clean contains NaN or infinite values; replace them first")
        return image
    array = np.asarray(unmasked(clean, "clean"))
    check_real(array, "clean")
    if array.size == 0:
        raise ValueError(f"clean is empty (shape {array.shape}); pass a non-empty image")
    check_finite(array, "clean")
    # a float64 image of 1e300 became infinite in float32 and was called "NaN or infinite"
    check_single_range(array, "clean", "in which noise is synthesised")
    return array.astype(np.float32, copy=True)


def noise_spec(noise: Any) -> Spec:
    """The spec of a noise model by name (None is ``"none"``), with a clear error."""
    if noise is None:
        noise = "none"
    names = list(specs("noise", available=False))
    if not isinstance(noise, str) or noise.lower() not in names:
        raise ValueError(f"unknown noise model {noise!r}; accepted names are {names}")
    return get("noise", noise.lower())


# ---------------------------------------------------------------- randomness


def check_seed(seed: Any) -> None:
    """TypeError unless `seed` is None, an integer, a sequence of integers or a generator."""
    numpy_kinds = (
        np.random.Generator,
        np.random.SeedSequence,
        np.random.BitGenerator,
        np.random.RandomState,
    )
    if seed is None or isinstance(seed, numpy_kinds):  # what numpy's default_rng takes
        return
    if type(seed).__module__.startswith("torch") and type(seed).__name__ == "Generator":
        return
    if isinstance(seed, np.ndarray) and seed.dtype.kind in "iu":
        return
    ints = seed if isinstance(seed, (list, tuple)) else [seed]
    if all(isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_)) for i in ints):
        if any(int(i) < 0 for i in ints):  # numpy refuses them (torch took -1): alike now
            raise ValueError(f"seed must hold integers >= 0, got {seed!r}")
        return
    raise TypeError(
        f"seed must be None, an integer, a sequence of integers or a random generator "
        f"(numpy.random.Generator, torch.Generator), got {seed!r}"
    )


def _one_int(seed: Any) -> int:
    """An integer seed for torch from any seed :func:`check_seed` takes: an int below
    2**63 as it is (torch's range), anything else drawn from numpy's generator of it."""
    if isinstance(seed, (int, np.integer)) and 0 <= int(seed) < 2**63:
        return int(seed)
    return int(np.random.default_rng(numpy_seed(seed)).integers(2**63))


def numpy_seed(seed: Any) -> Any:
    """What numpy's ``default_rng`` takes for any seed :func:`check_seed` takes: a
    torch.Generator gives an integer drawn from it."""
    if type(seed).__module__.startswith("torch") and type(seed).__name__ == "Generator":
        import torch

        return int(torch.randint(0, 2**62, (1,), generator=seed))
    return seed


#: Rates above this are drawn from the normal approximation (see ``_Random.poisson``)
LARGE_RATE = 1e12


class _Random:
    """Normal, Poisson and uniform draws from one seeded generator (numpy or torch)."""

    def __init__(self, seed: Any, like: Any) -> None:
        """`seed`: None, an int, or a generator (used as it is; numpy for arrays)."""
        check_seed(seed)
        self.like = like
        if _is_tensor(like):
            import torch

            if isinstance(seed, torch.Generator):
                self.gen = seed
            else:
                self.gen = torch.Generator(device=like.device)
                if seed is None:
                    self.gen.seed()
                else:
                    self.gen.manual_seed(_one_int(seed))
        else:
            self.gen = np.random.default_rng(numpy_seed(seed))

    def normal(self, scale: float | Any = 1.0) -> Any:
        x = self.like
        if _is_tensor(x):
            import torch

            z = torch.randn(x.shape, generator=self.gen, device=x.device, dtype=x.dtype)
            return z * scale
        return (self.gen.standard_normal(x.shape, dtype=np.float32) * scale).astype(np.float32)

    def uniform(self) -> Any:
        x = self.like
        if _is_tensor(x):
            import torch

            return torch.rand(x.shape, generator=self.gen, device=x.device, dtype=x.dtype)
        return self.gen.random(x.shape, dtype=np.float32)

    def poisson(self, rate: Any) -> Any:
        """Poisson draws of `rate`; rates above :data:`LARGE_RATE` (where numpy refuses
        "lam value too large" and torch returned -9.2e18) from the normal law of the
        same mean and variance, which it equals there within 1e-6 of the rate.
        The draws of other rates are those of the plain Poisson generator."""
        if _is_tensor(rate):
            import torch

            big = rate > LARGE_RATE
            if not bool(big.any()):
                return torch.poisson(rate, generator=self.gen)
            draws = torch.poisson(torch.where(big, 0.0, rate), generator=self.gen)
            z = torch.randn(rate.shape, generator=self.gen, device=rate.device, dtype=rate.dtype)
            return torch.where(big, torch.round(rate + rate.clamp(min=0).sqrt() * z), draws)
        rate = np.asarray(rate, np.float64)
        big = rate > LARGE_RATE
        if not big.any():  # asarray: a 0-d rate draws a Python int
            return np.asarray(self.gen.poisson(rate), np.float32)
        draws = np.asarray(self.gen.poisson(np.where(big, 0.0, rate)), np.float64)
        high = rate[big]
        draws[big] = np.round(high + np.sqrt(high) * self.gen.standard_normal(high.shape))
        return draws.astype(np.float32)


# ---------------------------------------------------------------- noise models
# Each takes the clean (or blurred) image, a generator (numpy, or torch for a
# tensor; a seed also works) and its parameters, as the "noise" specs declare
# them (core/catalog/noise.py); synthesize checks the parameters first.


def _clip_low(x: Any, low: float) -> Any:
    return x.clamp(min=low) if _is_tensor(x) else np.maximum(x, low)


def gaussian_noise(clean: Any, rng: Any = None, *, sigma: float = 0.1) -> Any:
    """Additive white Gaussian noise: ``clean + sigma * n``, ``n ~ N(0, 1)``.

    Parameters
    ----------
    clean : ndarray or torch.Tensor
        float32 image (a tensor may live on any device).
    rng : numpy.random.Generator, torch.Generator or int, optional
        Source of the draws (a torch generator for a tensor).
    sigma : float
        Standard deviation, in the image's units.

    Returns
    -------
    ndarray or torch.Tensor, the shape of `clean`

    Examples
    --------
    >>> import numpy as np
    >>> out = gaussian_noise(np.zeros((64, 64), np.float32), np.random.default_rng(0), sigma=2)
    >>> bool(abs(out.std() - 2) < 0.1)
    True
    """
    return clean + _Random(rng, clean).normal(sigma)


def speckle_noise(clean: Any, rng: Any = None, *, sigma: float = 0.1) -> Any:
    """Multiplicative noise: ``clean * (1 + sigma * n)``, ``n ~ N(0, 1)``.

    Parameters and result as :func:`gaussian_noise`.
    """
    return clean * (1 + _Random(rng, clean).normal(sigma))


def poisson_noise(clean: Any, rng: Any = None, *, peak: float = 100.0) -> Any:
    """Photon (shot) noise: ``Poisson(peak * clean) / peak``.

    Parameters
    ----------
    clean, rng
        As :func:`gaussian_noise`. Negative intensities count as 0 photons.
    peak : float
        Photons per unit of intensity (> 0): intensity 1.0 expects `peak`
        photons. :func:`synthesize` also accepts it as ``gain``.

    Returns
    -------
    ndarray or torch.Tensor, the shape of `clean`; ``E = clean``,
    ``Var = clean / peak``.
    """
    return _Random(rng, clean).poisson(_clip_low(clean * peak, 0.0)) / peak


def poisson_gaussian_noise(
    clean: Any,
    rng: Any = None,
    *,
    gain: float = 100.0,
    offset: float = 0.0,
    read_noise: float = 1.0,
    bit_depth: int | None = None,
    clean_includes_offset: bool = False,
) -> Any:
    """Camera noise: photon noise, read noise, offset and quantisation, in ADU.

    Parameters
    ----------
    clean, rng
        As :func:`gaussian_noise`; `clean` is the expected signal in ADU
        above the offset.
    gain : float
        Electrons per ADU (> 0); :func:`synthesize` also accepts ``peak``.
    offset : float
        Camera offset (ADU).
    read_noise : float
        Read noise, electrons rms.
    bit_depth : int, optional
        Round and clip to ``[0, 2**bit_depth - 1]`` ADU; None: no quantisation.
    clean_includes_offset : bool
        `clean` is in ADU with the offset in it (an average of many frames of
        the same camera, the expected value of a noisy image): the offset is
        subtracted first, so that it is neither counted as photons nor added
        twice. What :func:`~napari_deconvnet.estimate_noise` measures on a
        noisy image applies to a clean one in its units this way.

    Returns
    -------
    ndarray or torch.Tensor: ``(Poisson(gain * clean) + N(0, read_noise**2)) / gain + offset``
    (see :func:`synthesize`, Notes), with ``clean - offset`` for `clean` when
    `clean_includes_offset`.
    """
    if clean_includes_offset:
        clean = clean - offset
    rnd = _Random(rng, clean)
    electrons = rnd.poisson(_clip_low(clean * gain, 0.0))
    if read_noise > 0:
        electrons = electrons + rnd.normal(read_noise)
    adu = electrons / gain + offset
    if bit_depth is not None:
        top = float(2**bit_depth - 1)
        adu = adu.round().clamp(0, top) if _is_tensor(adu) else np.clip(np.rint(adu), 0, top)
    return adu


def salt_and_pepper_noise(
    clean: Any,
    rng: Any = None,
    *,
    amount: float = 0.05,
    salt_vs_pepper: float = 0.5,
    low: float | None = None,
    high: float | None = None,
) -> Any:
    """Impulse noise: a fraction `amount` of pixels set to `high` (salt) or `low` (pepper).

    Parameters
    ----------
    clean, rng
        As :func:`gaussian_noise`.
    amount : float
        Fraction of pixels replaced, in [0, 1].
    salt_vs_pepper : float
        Fraction of the replaced pixels set to `high`, in [0, 1].
    low, high : float, optional
        The pepper and salt values; default the minimum and maximum of `clean`.

    Returns
    -------
    ndarray or torch.Tensor, the shape of `clean`
    """
    low = float(clean.min()) if low is None else low
    high = float(clean.max()) if high is None else high
    if low > high:  # (salt came out below pepper)
        raise ValueError(
            f"salt-and-pepper: low={low:g} (pepper) is above high={high:g} (salt); pass "
            "low <= high (either left out is the image's minimum or maximum)"
        )
    u = _Random(rng, clean).uniform()
    salt = u < amount * salt_vs_pepper
    pepper = (u >= amount * salt_vs_pepper) & (u < amount)
    out = clean.clone() if _is_tensor(clean) else clean.copy()
    out[salt] = high
    out[pepper] = low
    return out


def no_noise(clean: Any, rng: Any = None) -> Any:
    """No noise: `clean` itself (:func:`synthesize` then only blurs)."""
    return clean


#: Negative values no larger than this fraction of the image's largest magnitude
#: are rounding (an FFT blur of a non-negative image leaves -1e-16 in float64,
#: -1e-7 in float32): they are clipped to 0 photons without a warning.
ROUNDING_TOLERANCE = 1e-5


def _warn_negative(image: Any, noise: str) -> None:
    """Warn that negative intensities of `image` will count as 0 photons.

    Values within :data:`ROUNDING_TOLERANCE` of the image's largest magnitude
    below zero are rounding errors, clipped silently.
    """
    lowest = float(image.min())
    if lowest >= 0:
        return
    peak = float(abs(image).max())
    negative = image < -ROUNDING_TOLERANCE * peak
    count = int(negative.sum())
    if count:
        warnings.warn(
            f"noise {noise!r} draws photon counts, which cannot be negative: {count} of "
            f"{image.size if not _is_tensor(image) else image.numel()} pixels of clean are "
            f"below 0 (lowest {lowest:.4g}) and count as 0 (clipped) before the noise is "
            "drawn; shift or rescale the image to non-negative intensities, or use "
            "noise='gaussian'",
            UserWarning,
            stacklevel=3,
        )


# ---------------------------------------------------------------- public


def _moved(x: Any, source: int, destination: int) -> Any:
    """``numpy.moveaxis`` of an array or a tensor."""
    return x.movedim(source, destination) if _is_tensor(x) else np.moveaxis(x, source, destination)


def _noise_dict(noise: Any, params: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """`noise` given as a dict (``dn.estimate_noise``'s ``{"noise": name, ...}``, or
    ``{"model": name, ...}`` as training takes it) as a name and its parameters; a
    parameter also given as a keyword is refused (session 73: the dict training takes
    was "an unknown noise model")."""
    if not isinstance(noise, Mapping):
        return noise, params
    spec = dict(noise)
    keys = [k for k in ("noise", "model", "kind") if k in spec]
    if len(keys) != 1:
        raise ValueError(
            "a noise dict names its model with one key, 'noise' (as estimate_noise "
            "returns it), 'model' or 'kind', e.g. {'noise': 'gaussian', 'sigma': 0.1}; "
            f"got keys {sorted(spec)}"
        )
    name = spec.pop(keys[0])
    both = sorted(set(spec) & set(params))
    if both:
        raise ValueError(f"{both} given both in the noise dict and as keywords; give each once")
    return name, {**spec, **params}


def synthesize(
    clean: Any,
    noise: str | Mapping[str, Any] | None = "gaussian",
    *,
    psf: Any = None,
    seed: Any = None,
    clip: tuple[float, float] | None = None,
    **params: Any,
) -> Any:
    """Degrade a clean image: blur it by a PSF (optional), then add noise.

    Parameters
    ----------
    clean : ndarray or torch.Tensor
        Clean image of any shape and real dtype. A tensor may live on any
        device; the noise is then drawn there.
    noise : {"gaussian", "poisson", "poisson-gaussian", "salt-and-pepper", \
"speckle", "none"}, dict or None
        Noise model (see Notes). ``None`` or ``"none"`` only blurs. A dict
        names the model and its parameters together: what
        :func:`~napari_deconvnet.estimate_noise` returns (``{"noise":
        "gaussian", "sigma": 0.1}``), or ``{"model": ...}`` (or ``"kind"``) as
        training takes it.
    psf : ndarray, str or dict, optional
        Point spread function: an array (normalised here to sum 1), a name
        of :func:`~napari_deconvnet.core.psf.make_psf` (``"gaussian"``,
        ``"airy"``, ``"widefield"``) with default parameters, or a dict
        ``{"kind": name, **params}`` such as ``{"kind": "gaussian",
        "sigma": 2.0}``. It is convolved with the trailing ``psf.ndim`` axes
        of `clean` (a 2D PSF with each colour of a ``(Y, X, 3|4)`` RGB(A)
        image, as restore reads such an array) before the noise is drawn, as
        optics blurs before the
        sensor counts; borders are extended by reflection
        (``d c b a | a b c d``), see :func:`~napari_deconvnet.core.psf.blur`.
    seed : int, numpy.random.Generator or torch.Generator, optional
        Seed of the random draws; the same seed gives the same output.
    clip : (float, float), optional
        Clip the result to ``[low, high]``. By default nothing is clipped.
    **params
        Parameters of the noise model, in the image's intensity units:

        - ``"gaussian"``: ``sigma`` (standard deviation, default 0.1).
        - ``"poisson"``: ``peak`` or ``gain`` (the same quantity: photons
          per unit of intensity, so that intensity 1.0 expects `peak`
          photons; default 100).
        - ``"poisson-gaussian"``: ``gain`` (electrons per ADU, alias
          ``peak``; default 100), ``offset`` (ADU, default 0), ``read_noise``
          (electrons rms, default 1), ``bit_depth`` (round and clip to
          ``[0, 2**bit_depth - 1]`` ADU; default None: no quantisation).
        - ``"salt-and-pepper"``: ``amount`` (fraction of pixels replaced,
          default 0.05), ``salt_vs_pepper`` (fraction of those set to `high`,
          default 0.5), ``low`` and ``high`` (default: the image's minimum
          and maximum).
        - ``"speckle"``: ``sigma`` (standard deviation of the multiplicative
          noise, default 0.1).

    Returns
    -------
    noisy : ndarray or torch.Tensor
        float32, the shape of `clean`; a tensor on the device of `clean`.

    Raises
    ------
    ValueError
        Complex, empty or non-finite images; unknown noise models or
        parameters; out-of-range parameters (negative `sigma`, `amount`
        outside [0, 1], ...); PSFs with more dimensions than the image.
    TypeError
        Non-numeric images or parameters.

    Warns
    -----
    UserWarning
        Negative intensities in `clean` with ``"poisson"`` or
        ``"poisson-gaussian"`` noise: they count as 0 photons. Values below
        zero by no more than :data:`ROUNDING_TOLERANCE` of the image's
        largest magnitude (rounding, e.g. from an FFT blur) count as 0
        without a warning.

    Notes
    -----
    With ``x`` the (blurred) clean image:

    - gaussian: ``y = x + sigma * n`` with ``n ~ N(0, 1)``.
    - poisson: ``y = Poisson(gain * x) / gain``, so ``E[y] = x`` and
      ``Var[y] = x / gain``. Photon counts cannot be negative: negative
      intensities of `clean` count as 0 (clipped), with a ``UserWarning``
      that says how many pixels were negative. (Rounding errors of the blur
      below 0 are clipped without a warning.) The same holds for
      poisson-gaussian.
    - poisson-gaussian (a camera): `x` is the expected signal in ADU above
      the offset. The sensor collects ``e = Poisson(gain * x)`` electrons,
      the readout adds ``N(0, read_noise**2)`` electrons, and the image is
      ``y = (e + read) / gain + offset`` ADU. Hence ``E[y] = x + offset`` and

      ``Var[y] = (E[y] - offset) / gain + (read_noise / gain) ** 2``,

      the linear noise level function ``a * x + b`` of Foi et al. [1]_ with
      ``a = 1 / gain`` and ``b = (read_noise / gain) ** 2``. For an image
      normalised so that 1.0 means `peak` photons, pass ``peak=`` (the same
      number as `gain`): the result stays in the image's units.
    - salt-and-pepper: a fraction `amount` of the pixels is set to `high`
      (with probability `salt_vs_pepper`) or to `low`.
    - speckle: ``y = x * (1 + sigma * n)`` with ``n ~ N(0, 1)``.

    References
    ----------
    .. [1] A. Foi, M. Trimeche, V. Katkovnik and K. Egiazarian, "Practical
           Poissonian-Gaussian noise modeling and fitting for single-image
           raw-data", IEEE Trans. Image Process. 17(10), 1737-1754, 2008.
           :DOI:`10.1109/TIP.2008.2001399`

    Examples
    --------
    >>> import numpy as np
    >>> clean = np.full((64, 64), 0.5)
    >>> noisy = synthesize(clean, "gaussian", sigma=0.1, seed=0)
    >>> noisy.dtype, noisy.shape
    (dtype('float32'), (64, 64))
    >>> bool(abs(noisy.std() - 0.1) < 0.01)
    True
    >>> counts = synthesize(clean, "poisson", peak=1000, seed=0)
    >>> bool(abs(counts.mean() - 0.5) < 0.01)
    True
    >>> camera = synthesize(np.full((8, 8), 200.0), "poisson-gaussian", gain=2.0,
    ...                     offset=100, read_noise=3.0, bit_depth=12, seed=0)
    >>> float(camera.min()) >= 0 and float(camera.max()) <= 4095
    True
    >>> blurred = synthesize(np.eye(5), None, psf=np.ones((3, 3)))
    >>> round(float(blurred[2, 2]), 3)
    0.333
    >>> soft = synthesize(np.eye(16), "poisson", peak=50, seed=0,
    ...                   psf={"kind": "gaussian", "sigma": 1.5})
    >>> soft.shape
    (16, 16)
    """
    noise, params = _noise_dict(noise, params)
    spec = noise_spec(noise)
    p = spec.check(params, fill=True)
    image = _check_image(clean)
    if clip is not None:
        try:
            low, high = (float(v) for v in clip)
        except (TypeError, ValueError):
            raise ValueError(f"clip must be a (low, high) pair of numbers, got {clip!r}") from None
        if not low <= high:
            raise ValueError(f"clip needs low <= high, got {clip!r}")
    if "counts" in spec.tags:  # (above the offset, where the clean image includes it)
        _warn_negative(image - p["offset"] if p.get("clean_includes_offset") else image, spec.name)
    if psf is not None:
        kernel = as_psf(psf, image.ndim)
        if kernel.ndim == 2 and image.ndim == 3 and image.shape[-1] in (3, 4):
            # (Y, X, 3|4) is RGB(A), as restore reads it: each colour blurred as a plane
            # (the trailing axes would blur X into the colours)
            image = _moved(blur(_moved(image, -1, 0), kernel), 0, -1)
        else:
            image = blur(image, kernel)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # (checked below)
        out = spec.resolve()(image, _Random(seed, image).gen, **p)
    if clip is not None:
        out = out.clamp(low, high) if _is_tensor(out) else np.clip(out, low, high)
    if _is_tensor(out):
        import torch

        out = out.to(torch.float32)
        finite = bool(torch.isfinite(out).all())
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.asarray(out, dtype=np.float32)
        finite = bool(np.isfinite(out).all())
    if not finite:  # (peak=1e39 or 1e-46 gave NaN everywhere, with numpy's warnings only)
        given = ", ".join(f"{k}={v!r}" for k, v in p.items())
        raise ValueError(
            f"{spec.name} noise ({given}) gives values beyond float32's range or NaN on this "
            "image: the intensities times the photons per unit (peak, gain) must stay "
            "within float32; use a peak or gain nearer 1, or rescale the image"
        )
    return out
