"""Model kinds: how a learned model is used, chosen from its metadata in one place.

A network maps normalised input channels to output channels; its *kind*
says what it is given beside the image and what is done to its output:

- :class:`Plain`: the image alone (``denoise-2d``, ``denoise-3d``, models
  trained with :func:`~napari_deconvnet.train`);
- :class:`PSFConditioned`: the image and its classical pre-deconvolution
  with the user's PSF (Richardson-Lucy or Wiener) as a second channel
  (``deconv-2d``, ``deconv-3d``; see :mod:`~napari_deconvnet.core.conditioning`);
- :class:`ImpulseSwitched`: the image and its switching median as a second
  channel; every pixel that is not an impulse is kept from the input
  (``salt-and-pepper``);
- :class:`NoiseConditioned`: the image and a map of its noise level, from
  the Poisson-Gaussian variance line :func:`~napari_deconvnet.estimate_noise`
  fits to the whole image (``denoise-2d-nl``).

:func:`kind_of` is the one place that reads a model's metadata to choose
its kind: ``metadata["kind"]`` names a registered kind; without it, the
flags model files have always carried (``needs_psf``, ``conditioning``,
``impulse_switch``) decide. Every restore path (in memory, lazy, streamed
to OME-Zarr) asks the kind for its extra input channels, the statistics
and context they need, and its post-processing. A new kind is a subclass
of :class:`ModelKind` passed to :func:`register_kind`.

This module imports neither torch nor napari.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from ._validation import RunWarning

__all__ = [
    "BALANCE_CROP",
    "KINDS",
    "ImpulseSwitched",
    "ModelKind",
    "NoiseConditioned",
    "PSFConditioned",
    "Plain",
    "central_box",
    "central_crop",
    "impulse_values",
    "keep_uncorrupted",
    "kind_of",
    "noise_line",
    "register_kind",
    "unregister_kind",
    "WIENER_AND_RL",
]

#: Pixels per axis of a dask image's central crop the Wiener balance is estimated from.
BALANCE_CROP = 1024


class ModelKind:
    """A kind of model: its extra input channels and its post-processing.

    The base class is the plain kind: no extra channel, no PSF, no
    post-processing. Subclasses override what differs, set a unique
    :attr:`name`, and may recognise legacy metadata in :meth:`recognizes`.

    Parameters
    ----------
    metadata : mapping, optional
        The model's metadata (its ``conditioning`` record, its name...).
    """

    #: The kind's name, the value of ``metadata["kind"]`` that chooses it.
    name: ClassVar[str] = "plain"
    #: Whether areas of one exact value (padding, masks) are filled from the data
    #: before the network runs (:mod:`.constant_areas`): kinds whose classical
    #: channel or network reads their border with the data as a real edge.
    fills_constant_areas: bool = False
    #: Whether a PSF is required (and any other kind refuses one).
    needs_psf: bool = False
    #: Input channels the model takes beyond the image's own (an instance may differ).
    extra_channels: int = 0
    #: One line for listings.
    description: ClassVar[str] = "the image alone"

    def __init__(self, metadata: Mapping[str, Any] | None = None) -> None:
        self.metadata = dict(metadata or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    @classmethod
    def recognizes(cls, metadata: Mapping[str, Any]) -> bool:
        """Whether metadata without a ``"kind"`` entry describes this kind (its flags)."""
        return False

    # ------------------------------------------------------------ pre-processing

    def prepare_psf(
        self, psf: Any, ndim: int, spatial_shape: tuple[int, ...]
    ) -> np.ndarray | None:
        """`psf` validated for this kind and images of `spatial_shape`; float64, sum 1.

        Raises
        ------
        ValueError
            No PSF for a kind that needs one, a PSF for one that takes none,
            a PSF whose dimensionality differs from the model's (`ndim`), one
            bigger than the image, one with NaN/Inf or summing to zero.
        """
        from .psf import as_psf, fit_psf, single_leading_axes

        name = self.metadata.get("name", "")
        if not self.needs_psf:
            if psf is None:
                return None
            raise ValueError(
                f"model {name!r} is not a deconvolution model and takes no PSF; pass psf=None "
                "or choose a deconvolution model such as 'deconv-2d'"
            )
        if psf is None:
            raise ValueError(
                f"model {name!r} deconvolves and needs the image's PSF: pass psf= an array, a "
                "make_psf name such as 'gaussian', or a dict like {'kind': 'gaussian', 'sigma': 2}"
            )
        # a named PSF is made in the model's dimensions ('gaussian' is 3D for a 3D model);
        # a shape given with it decides them, as an array does
        if isinstance(psf, str):
            psf = {"kind": psf}
        if isinstance(psf, Mapping) and "ndim" not in psf and psf.get("shape") is None:
            psf = {**psf, "ndim": ndim}
        if not isinstance(psf, str | Mapping):  # an array: one plane of a volume's (1, Y, X)
            if not hasattr(psf, "shape"):  # (nested lists)
                psf = np.asarray(psf)
            psf = psf[(0,) * single_leading_axes(tuple(psf.shape), ndim)]
        kernel = as_psf(psf, ndim)
        if kernel.ndim == 1 and ndim == 2:  # a line along X, as run_method takes it
            kernel = kernel[None]
        if kernel.ndim != ndim:
            raise ValueError(
                f"model {name!r} deconvolves {ndim}D images and needs a {ndim}D PSF, got a PSF "
                f"of shape {kernel.shape}"
            )
        kernel = fit_psf(psf, kernel, tuple(spatial_shape))  # a generated one fits the image
        if any(k > s for k, s in zip(kernel.shape, spatial_shape, strict=True)):
            raise ValueError(
                f"psf of shape {kernel.shape} is bigger than the image's spatial shape "
                f"{tuple(spatial_shape)}; crop the PSF (e.g. make_psf(kind, shape=...))"
            )
        return kernel

    def input_statistics(self, images: Any) -> list[dict[str, float]] | None:
        """Whole-image statistics the extra channels depend on, one dict per image.

        `images` is ``(N, *spatial)``, numpy or dask, in its own intensity
        scale. Computed once, they let :meth:`input_channels` run block by
        block. None when the kind has no extra channel.
        """
        return None

    def input_margin(
        self,
        kernel: np.ndarray | None,
        ndim: int,
        statistics: list[dict[str, float]] | None = None,
    ) -> tuple[int, ...]:
        """Context (pixels per spatial axis) the extra channels need around a block.

        `statistics` are :meth:`input_statistics` of the whole image, where the
        context depends on them (the Wiener balance).
        """
        return (0,) * ndim

    def input_channels(
        self,
        images: np.ndarray,
        kernel: np.ndarray | None,
        *,
        device: Any = "cpu",
        statistics: list[dict[str, float]] | None = None,
    ) -> np.ndarray | None:
        """The extra channel of every image: ``(N, *spatial)`` float32, or None.

        In the images' intensity scale, to be normalised like them.
        `statistics` (from :meth:`input_statistics` of the whole image) is
        required when `images` are blocks; default computed from `images`.
        """
        return None

    def channel_stack(
        self, images: np.ndarray, kernel: np.ndarray | None, **kwargs: Any
    ) -> np.ndarray | None:
        """:meth:`input_channels` as ``(N, extra_channels, *spatial)`` float32, or None.

        A kind with one extra channel returns ``(N, *spatial)`` from
        :meth:`input_channels`; one with several (``"wiener+richardson-lucy"``)
        returns them on axis 1. Every restore and training path reads them
        through this method, in that channel order, after the image's own.
        """
        out = self.input_channels(images, kernel, **kwargs)
        if out is None:
            return None
        if self.extra_channels == 1:
            out = out[:, None]
        expected = (np.shape(images)[0], self.extra_channels, *np.shape(images)[1:])
        if out.shape != expected:  # a kind whose input_channels breaks its contract
            raise RuntimeError(
                f"{type(self).__name__}.input_channels returned shape {out.shape}; "
                f"expected {expected[:1] + expected[2:] if self.extra_channels == 1 else expected}"
            )
        return out

    # ----------------------------------------------------------- post-processing

    def output_statistics(self, image: Any) -> dict[str, float] | None:
        """Whole-image values :meth:`postprocess` needs (computed once); None if none."""
        return None

    def postprocess(self, x: np.ndarray, y: np.ndarray, values: Any) -> None:
        """Finish the restored `y` (in place) from the input `x`, both in intensity scale."""


# --------------------------------------------------------------------- registry

#: Registered kinds by name, in registration order.
KINDS: dict[str, type[ModelKind]] = {}


def register_kind(cls: type[ModelKind]) -> type[ModelKind]:
    """Register a :class:`ModelKind` subclass under its ``name`` (usable as a decorator).

    Raises
    ------
    TypeError
        `cls` is not a ModelKind subclass.
    ValueError
        Another class is registered under the same name.
    """
    if not (isinstance(cls, type) and issubclass(cls, ModelKind)):
        raise TypeError(f"register_kind takes a ModelKind subclass, got {cls!r}")
    other = KINDS.get(cls.name)
    if other is not None and other is not cls:
        raise ValueError(
            f"a model kind named {cls.name!r} is registered already ({other.__name__}); "
            "choose another name or unregister_kind it first"
        )
    KINDS[cls.name] = cls
    return cls


def unregister_kind(name: str) -> None:
    """Remove a registered kind (a test's, say); the built-in ones cannot be removed."""
    if name in _BUILT_IN:
        raise ValueError(f"{name!r} is a built-in model kind and cannot be unregistered")
    KINDS.pop(name, None)


def kind_of(model_or_metadata: Any) -> ModelKind:
    """The kind of a model, from its metadata: the one place that decides it.

    Parameters
    ----------
    model_or_metadata : DeconvNet or mapping
        A loaded model, or its metadata (e.g. ``model_info(name)["metadata"]``).

    Returns
    -------
    ModelKind
        ``metadata["kind"]`` when present; otherwise the most recently
        registered kind whose :meth:`ModelKind.recognizes` accepts the
        metadata's flags; otherwise :class:`Plain`.

    Raises
    ------
    ValueError
        ``metadata["kind"]`` names no registered kind.

    Examples
    --------
    >>> kind_of({"needs_psf": True}).name
    'psf-conditioned'
    >>> kind_of({}).extra_channels
    0
    """
    if isinstance(model_or_metadata, Mapping):
        metadata = model_or_metadata
    else:
        metadata = getattr(model_or_metadata, "metadata", None) or {}
    conditioning = metadata.get("conditioning")
    if conditioning is not None and not isinstance(conditioning, Mapping):
        raise ValueError(
            "the model's metadata['conditioning'] must be a dict such as {'method': "
            f"'richardson-lucy'}}, got {type(conditioning).__name__} {conditioning!r:.60}"
        )
    name = metadata.get("kind")
    if name is not None:
        if name not in KINDS:
            raise ValueError(
                f"the model's kind {name!r} is unknown to this version; known kinds: "
                f"{sorted(KINDS)} (a newer napari-deconvnet or a plugin may define it)"
            )
        return KINDS[name](metadata)
    for cls in reversed(list(KINDS.values())):
        if cls.recognizes(metadata):
            return cls(metadata)
    return Plain(metadata)


# -------------------------------------------------------------------- built-ins


class Plain(ModelKind):
    """The image alone in, the restored image out."""


def central_box(shape: Any, sizes: Any) -> tuple[slice, ...]:
    """Slices of the centred box of at most `sizes` along the axes of `shape`.

    >>> central_box((10, 3), (4, 4))
    (slice(3, 7, None), slice(0, 3, None))
    """
    box = []
    for n, c in zip(shape, sizes, strict=True):
        m = min(n, c)
        box.append(slice((n - m) // 2, (n - m) // 2 + m))
    return tuple(box)


def central_crop(image: Any) -> Any:
    """A dask image's central crop of at most :data:`BALANCE_CROP` pixels per axis, computed.

    What the whole-image statistics of a lazy image are estimated from: one
    deterministic sample, so that every block and every machine agrees. A
    numpy image is returned as it is (its statistics are exact).
    """
    if not hasattr(image, "compute"):
        return image
    return image[central_box(image.shape, (BALANCE_CROP,) * image.ndim)].compute()


def impulse_values(images: Any) -> dict[str, float]:
    """The pepper and salt values of an image: its minimum and maximum, over all of it.

    This is the one definition of an impulse used by the ``salt-and-pepper``
    model's switching-median channel and by its impulse switch
    (:func:`keep_uncorrupted`): for a stack, the minimum and maximum of the
    whole stack, as :func:`~napari_deconvnet.synthesize` sets the impulses
    of a stack. A dask array is reduced lazily (one pass).
    """
    low, high = images.min(), images.max()
    if hasattr(low, "compute"):
        import dask

        low, high = dask.compute(low, high)
    return {"minimum": float(low), "maximum": float(high)}


#: Below this share of pixels at the extremes, :func:`keep_uncorrupted` warns that the
#: image holds no salt-and-pepper to speak of (the model was trained on 1-50%).
IMPULSES_EXPECTED = 1e-3


def keep_uncorrupted(x: np.ndarray, y: np.ndarray, impulses: dict[str, float]) -> None:
    """Impulse-noise models: keep every pixel that is not an impulse.

    Salt-and-pepper noise sets pixels to the image's minimum or maximum
    (`impulses`, from :func:`impulse_values`: the whole image's, the
    definition the switching-median channel uses too); the others are exact,
    so only the impulses take the network's estimate (a "switching" filter
    whose fill-in is the network). The fill-in lies between the two impulse
    values, as every pixel of the image does (the network could overshoot
    them: 65,951 on a uint16 image). Modifies `y` in place.
    """
    keep = (x != impulses["minimum"]) & (x != impulses["maximum"])
    found = keep.size - int(np.count_nonzero(keep))
    if keep.size >= 4096 and found < IMPULSES_EXPECTED * keep.size:
        warnings.warn(
            f"the salt-and-pepper model found almost no impulses: {found} of {keep.size} "
            f"pixels are at the image's minimum ({impulses['minimum']:g}) or maximum "
            f"({impulses['maximum']:g}), and only those are replaced; the rest is returned "
            "as it is. Impulses here are pixels set to the extremes; "
            "for outliers of other values (hot pixels, random-valued impulses) use "
            "dn.denoise_median (or run_method 'median')",
            RunWarning,
            stacklevel=2,
        )
    np.clip(y, impulses["minimum"], impulses["maximum"], out=y)
    np.copyto(y, x, where=keep, casting="unsafe")


class _Conditioned(ModelKind):
    """A kind whose second channel is a classical pre-restoration (metadata "conditioning")."""

    extra_channels: int = 1
    fills_constant_areas: bool = True
    methods: ClassVar[tuple[str, ...]] = ()

    def _spec(self) -> tuple[str, dict[str, Any]]:
        spec = self.metadata.get("conditioning") or {"method": self.methods[0]}
        method = spec.get("method", self.methods[0])
        if method not in self.methods:
            raise ValueError(
                f"unknown conditioning method {method!r} for a {self.name} model in the model "
                f"file; this version knows {', '.join(repr(m) for m in self.methods)}"
            )
        return method, spec


#: The conditioning method that gives a deconvolution model both classical channels.
WIENER_AND_RL = "wiener+richardson-lucy"


class PSFConditioned(_Conditioned):
    """Deconvolution with the user's PSF, told to the network through extra channels.

    The channel is the image's Richardson-Lucy (``{"method":
    "richardson-lucy", "iterations": n}``, on the image shifted to a zero
    minimum) or Wiener (``{"method": "wiener", "balance_scale": s}``, with the
    estimated noise-to-signal balance times ``s``) pre-deconvolution.
    ``{"method": "wiener+richardson-lucy", "balance_scale": s, "iterations":
    n}`` gives both, Wiener then Richardson-Lucy (two extra channels): the
    linear filter, whose balance follows the noise, and the positive,
    iterative estimate that sharpens sparse bright objects much further.
    """

    name: ClassVar[str] = "psf-conditioned"
    needs_psf: bool = True
    description: ClassVar[str] = "the image and its classical pre-deconvolution with the PSF"
    methods: ClassVar[tuple[str, ...]] = ("wiener", "richardson-lucy", WIENER_AND_RL)

    def __init__(self, metadata: Mapping[str, Any] | None = None) -> None:
        super().__init__(metadata)
        method = (self.metadata.get("conditioning") or {}).get("method")
        self.extra_channels = 2 if method == WIENER_AND_RL else 1
        # a Wiener channel's balance is estimated from the image, and padding filled
        # with repeated values (noise-free along them) makes it read the noise low:
        # deconv-3d beside zero padding went from 33.11 dB unfilled to 14.62 filled
        self.fills_constant_areas = "wiener" not in str(method or "richardson-lucy")

    @classmethod
    def recognizes(cls, metadata: Mapping[str, Any]) -> bool:
        return bool(metadata.get("needs_psf", False))

    def input_statistics(self, images: Any) -> list[dict[str, float]]:
        """``{"low": minimum}`` per image for Richardson-Lucy; ``{"balance": b}`` for Wiener.

        The balance is ``balance_scale`` times the noise-to-signal ratio
        estimated from the image, or, for a dask array, from its central
        crop of at most :data:`BALANCE_CROP` pixels per axis; after the
        scale, at most :data:`~napari_deconvnet.core.classical.BALANCE_MAX`
        (pure noise: at 1e11 the channel is the mean of whatever domain it
        is computed on, so blocks disagreed with the whole image).
        """
        from .classical import BALANCE_MAX, BALANCE_MIN, estimate_balance

        method, spec = self._spec()
        lows = None
        if method != "wiener":
            lows = images.min(axis=tuple(range(1, images.ndim)))
            if hasattr(lows, "compute"):
                lows = lows.compute()
            lows = [{"low": float(v)} for v in np.asarray(lows)]
        if method == "richardson-lucy":
            return lows
        scale = float(spec.get("balance_scale", 1.0))
        out = []
        for i, image in enumerate(images):
            image = central_crop(image)
            # the plain (lattice-snapped) median on photon counts, as in training: the
            # grouped one moved deconv-3d by -0.18 dB on the quality benchmark's
            # 3d-poisson-blur (counts at peak 100), while Wiener alone gained 0.04
            try:
                array = np.asarray(image, np.float32)
                balance = estimate_balance(array, grouped=False)
                if balance <= BALANCE_MIN:
                    # sparse or dim counts, mostly zeros: the plain median of the finest
                    # coefficients is exactly 0, and the channel was amplified noise
                    # (deconv-3d 12-24 dB below its own input at 5-10 photons); the
                    # grouped median reads their noise (the same wherever it is above 0)
                    balance = estimate_balance(array, grouped=True)
                balance *= scale
            except ValueError:  # (its words name a balance= that restore does not take)
                raise ValueError(
                    f"{self.metadata.get('name') or 'this model'} reads the noise from the "
                    f"image for its Wiener channel, which needs at least 16x16 pixels (or "
                    f"planes holding as many), got an image of {tuple(image.shape)}; restore "
                    "a larger crop"
                ) from None
            out.append({"balance": min(balance, BALANCE_MAX), **(lows[i] if lows else {})})
        return out

    def input_margin(self, kernel, ndim, statistics=None) -> tuple[int, ...]:
        """Three PSF sizes, and for Wiener more where its balance is large.

        Richardson-Lucy's influence decays over a few PSF sizes: computed on
        a block extended by three of them, the restored result stays within
        1e-5 of its range of the whole image's (measured ~4e-6 with 64-pixel
        blocks; ``tests/test_lazy.py`` asserts 1e-4). The Wiener-Hunt filter
        reaches further as its balance grows (its Laplacian regulariser
        smooths over about the balance's fourth root in pixels):
        :func:`~napari_deconvnet.core.wiener_filter.wiener_context` of the
        largest balance in `statistics` (three PSF sizes cover balances up
        to about 1 for a 7-pixel PSF; a noise-dominated image at balance 1e4
        needs 134 pixels).
        """
        from .wiener_filter import wiener_context

        method, _ = self._spec()
        psf_sizes = tuple(3 * int(s) for s in kernel.shape)
        if method == "richardson-lucy" or not statistics:
            return psf_sizes
        balance = max(float(s["balance"]) for s in statistics)
        context = tuple(wiener_context(kernel.shape, balance))
        if method == "wiener":
            return context
        return tuple(max(a, b) for a, b in zip(context, psf_sizes, strict=True))

    def input_channels(
        self, images, kernel, *, device="cpu", statistics=None, context=False
    ) -> np.ndarray:
        """As the base class's; ``context=True``: the images carry real context.

        Blocks read with a margin of image around what is kept (training
        patches) need no padding before Wiener's circular filter: the
        margin takes the wrap-around. Four times cheaper in 3D (a 16x48x48
        patch with 45 voxels of context: 0.12 s against 0.47 s), within
        1e-3 of the range of the whole image's channel inside for Gaussian
        PSFs (2.7e-4 padded). Richardson-Lucy, whose mirror costs nothing,
        ignores it.
        """
        from .classical import richardson_lucy, wiener

        method, spec = self._spec()
        if statistics is None:
            statistics = self.input_statistics(images)
        both = method == WIENER_AND_RL
        out = np.empty((len(images), 2, *images.shape[1:]) if both else images.shape, np.float32)
        for i, image in enumerate(images):
            image = np.asarray(image, np.float32)
            channels = []
            if method != "richardson-lucy":
                pad = None if context else "reflect"
                channels.append(
                    wiener(image, kernel, statistics[i]["balance"], pad=pad, device=device)
                )
            if method != "wiener":
                low = statistics[i]["low"]
                # above the image's minimum, as RL needs; a training patch's fresh noise
                # can dip below the minimum of the image the statistics came from, and
                # RL of those negative values turned to NaN (an adaptation stopped)
                estimate = richardson_lucy(
                    np.maximum(image - low, 0),
                    kernel,
                    int(spec.get("iterations", 30)),
                    device=device,
                )
                channels.append(estimate + low)
            out[i] = np.stack(channels) if both else channels[0]
        return out


class ImpulseSwitched(_Conditioned):
    """Salt-and-pepper denoising: a switching-median channel in, impulses only replaced out.

    The second channel, when the metadata has a ``conditioning`` record
    (``{"method": "switching-median", "largest": 7}``), is
    :func:`~napari_deconvnet.denoise_switching_median` of the image, which
    the network refines. When ``metadata["impulse_switch"]`` is true, every
    pixel that is not an impulse (the whole image's minimum or maximum,
    :func:`impulse_values`) is then kept from the input
    (:func:`keep_uncorrupted`). The shipped ``salt-and-pepper`` model has
    both; the training script validates without the switch, and the switch
    also serves a plain network.
    """

    name: ClassVar[str] = "impulse-switched"
    description: ClassVar[str] = "the image and its switching median; impulses only replaced"
    methods: ClassVar[tuple[str, ...]] = ("switching-median",)

    def __init__(self, metadata: Mapping[str, Any] | None = None) -> None:
        super().__init__(metadata)
        self.extra_channels = 1 if "conditioning" in self.metadata else 0
        self.switch = bool(self.metadata.get("impulse_switch", False))

    @classmethod
    def recognizes(cls, metadata: Mapping[str, Any]) -> bool:
        method = (metadata.get("conditioning") or {}).get("method")
        return bool(metadata.get("impulse_switch", False)) or method == "switching-median"

    def input_statistics(self, images: Any) -> list[dict[str, float]]:
        """The impulse values of the whole stack, the same for every image."""
        self._spec()
        return [impulse_values(images)] * images.shape[0]

    def input_margin(self, kernel, ndim, statistics=None) -> tuple[int, ...]:
        """Half the largest median window: exact."""
        _, spec = self._spec()
        return (int(spec.get("largest", 7)) // 2,) * ndim

    def input_channels(self, images, kernel, *, device="cpu", statistics=None) -> np.ndarray:
        from .denoisers import denoise_switching_median

        _, spec = self._spec()
        if statistics is None:
            statistics = self.input_statistics(images)
        out = np.empty(images.shape, np.float32)
        for i, image in enumerate(images):
            stats = statistics[i]
            out[i] = denoise_switching_median(
                np.asarray(image, np.float32),
                stats["minimum"],
                stats["maximum"],
                largest=int(spec.get("largest", 7)),
            )
        return out

    def output_statistics(self, image: Any) -> dict[str, float] | None:
        return impulse_values(image) if self.switch else None

    def postprocess(self, x: np.ndarray, y: np.ndarray, values: Any) -> None:
        if self.switch:
            keep_uncorrupted(x, y, values)


#: Pixels :func:`noise_line` estimates from: enough for a line, a fixed cost per image.
NOISE_SAMPLE = 512 * 512


def _noise_sample(image: np.ndarray) -> np.ndarray:
    """Planes ``(P, H, W)`` of at most :data:`NOISE_SAMPLE` pixels spread over `image`.

    A plane larger than that gives four 256x256 crops centred on its
    quarters; planes beyond the budget are skipped evenly. Deterministic.
    """
    planes = image.reshape(-1, *image.shape[-2:])
    h, w = planes.shape[-2:]
    if h * w > NOISE_SAMPLE:
        ch, cw = min(h, 256), min(w, 256)
        ys = sorted({min(max(c - ch // 2, 0), h - ch) for c in (h // 4, 3 * h // 4)})
        xs = sorted({min(max(c - cw // 2, 0), w - cw) for c in (w // 4, 3 * w // 4)})
        planes = np.concatenate([planes[:, y : y + ch, x : x + cw] for y in ys for x in xs])
    keep = max(1, NOISE_SAMPLE // (planes.shape[1] * planes.shape[2]))
    if len(planes) > keep:
        planes = planes[np.linspace(0, len(planes) - 1, keep).round().astype(int)]
    return planes


def noise_line(image: Any, *, one_level: bool = True) -> dict[str, float]:
    """The noise variance of `image` as a line in its intensity: ``var = a * mean + b``.

    From :func:`~napari_deconvnet.estimate_noise` (``model="auto"``):
    Gaussian noise gives ``a = 0, b = sigma**2``; Poisson and Poisson-Gaussian
    noise give ``a = 1 / gain`` and ``b = (read_noise / gain)**2 - offset /
    gain``. Noise it does not model as a line (salt-and-pepper, speckle) is
    described by its robust Gaussian sigma. `a` is never negative. Estimated
    from at most :data:`NOISE_SAMPLE` pixels spread over the image (four
    crops of a large plane, evenly chosen planes of a stack), so that it
    costs the same on any image. `one_level` False: a line is fitted even
    where the levels span less than one noise deviation (for the impulse
    switch, whose constants were chosen with such lines).
    """
    from .noise_estimation import LINE_NOISE_MODELS, _estimate, estimate_noise, variance_line

    image = _noise_sample(np.asarray(image, np.float32))
    try:  # (impulses are not this kind's noise: their test is skipped)
        params = _estimate(image, "auto", None, None, False, one_level)
    except ValueError:  # no line can be fitted: the robust Gaussian sigma below
        params = {"noise": "unfitted"}
    if params["noise"] in LINE_NOISE_MODELS:
        try:
            a, b = variance_line(params)
            return {"a": a, "b": b}
        except ValueError:  # e.g. an infinite gain: fall back to the robust sigma
            pass
    return {"a": 0.0, "b": float(estimate_noise(image, "gaussian")["sigma"]) ** 2}


class NoiseConditioned(ModelKind):
    """Denoising told the noise level: a map of the noise's standard deviation as a channel.

    One blind network must guess how noisy each image is; this kind is told.
    The noise variance of the whole image is fitted as a line in the
    intensity (:func:`noise_line`, ``var = a * mean + b``, from
    :func:`~napari_deconvnet.estimate_noise`), and the second channel is the
    image plus the standard deviation that line predicts at each pixel's
    local mean (over a 3-pixel window): ``image + sqrt(max(a * mean3(image) +
    b, 0))``. Normalised like the image, the difference of the two channels
    is the noise level in the network's units, whatever the image's
    intensity scale and offset. Metadata: ``{"kind": "noise-conditioned",
    "conditioning": {"method": "noise-level", "window": 3}}``.
    """

    name: ClassVar[str] = "noise-conditioned"
    extra_channels: int = 1
    description: ClassVar[str] = "the image and a map of its noise level"

    def _window(self) -> int:
        spec = self.metadata.get("conditioning") or {}
        method = spec.get("method", "noise-level")
        if method != "noise-level":
            raise ValueError(
                f"unknown conditioning method {method!r} for a {self.name} model in the model "
                "file; this version knows 'noise-level'"
            )
        return int(spec.get("window", 3))

    def input_statistics(self, images: Any) -> list[dict[str, float]]:
        """The variance line of each image (of a dask image, of its central crop).

        The crop has at most :data:`BALANCE_CROP` pixels per spatial axis:
        deterministic, so every block and every machine uses the same line.
        """
        self._window()
        out = []
        for image in images:
            out.append(noise_line(central_crop(image)))
        return out

    def input_margin(self, kernel, ndim, statistics=None) -> tuple[int, ...]:
        """Half the averaging window: exact."""
        return (self._window() // 2,) * ndim

    def input_channels(self, images, kernel, *, device="cpu", statistics=None) -> np.ndarray:
        import torch

        from .conditioning import noise_map_channel, normalised_line

        window = self._window()
        if statistics is None:
            statistics = self.input_statistics(images)
        out = np.empty(images.shape, np.float32)
        for i, image in enumerate(images):
            # the one formula training batches use too, here in raw units
            x = torch.from_numpy(np.asarray(image, np.float32))[None, None]
            line = normalised_line(statistics[i], 0.0, 1.0)
            out[i] = noise_map_channel(x, [line], window)[0, 1].numpy()
        return out


_BUILT_IN = ("plain", "impulse-switched", "psf-conditioned", "noise-conditioned")
for _cls in (Plain, ImpulseSwitched, PSFConditioned, NoiseConditioned):
    register_kind(_cls)
del _cls
