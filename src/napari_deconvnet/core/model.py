"""The deconvolution network: a convolutional encoder and a transposed-convolution decoder.

The encoder alternates convolutions, a nonlinearity and max-pooling; the decoder
upsamples with learned transposed convolutions (the "deconvolution" of the
name, as in Noh et al. 2015), with skip connections from the encoder at every
scale and a residual output: the network predicts a correction that is added
to its input. Two N2V2 options (Höck et al. 2022) fight the checkerboard
artifacts of blind-spot training: anti-aliased max-blur-pooling
(:func:`max_blur_pool`) and no skip connection at full resolution.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "POOLS",
    "DeconvNet",
    "DeconvNetConfig",
    "max_blur_pool",
    "receptive_field",
    "widen_channels",
    "widen_input",
]

_ACTIVATIONS = {
    "relu": lambda: nn.ReLU(inplace=True),
    "leaky_relu": lambda: nn.LeakyReLU(0.1, inplace=True),
    "gelu": nn.GELU,
    "silu": lambda: nn.SiLU(inplace=True),
}
_NORMALIZATION_METHODS = ("percentile", "fixed", "none")
#: Down-sampling of the encoder: plain 2-max-pooling, or max-blur-pooling (N2V2).
POOLS = ("max", "blur")
#: The widest bottleneck (``base_channels * 2**depth``) and the deepest network a
#: configuration may ask for: far beyond any useful size, short of a typo's.
MAX_CHANNELS = 4096
MAX_DEPTH = 8
#: The most weights of one convolution (kernel_size**ndim times the widest channel count
#: squared; 4 GB in float32): a typo's kernel of 100001 asked torch for 640 GB
MAX_CONV_WEIGHTS = 2**30
#: The configuration's integer fields (NumPy integers taken, booleans refused)
_INTEGER_FIELDS = (
    "ndim",
    "in_channels",
    "out_channels",
    "depth",
    "base_channels",
    "convs_per_level",
    "kernel_size",
    "residual_input",
)


def _default_normalization() -> dict[str, Any]:
    return {"method": "percentile", "low": 0.5, "high": 99.5}


def _number(value: Any) -> bool:
    """A real number, not a bool (JSON's true would pass as 1)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


#: The keys each normalisation method takes besides "method"
_NORMALIZATION_KEYS = {"percentile": {"low", "high"}, "fixed": {"offset", "scale"}}


def _check_normalization(norm: Any) -> None:
    """A normalisation contract a restore can apply; ValueError naming what is wrong.

    A model file's hand-edited ``{"low": 99, "high": 1}`` restored without a
    word to an image turned over, ``{"low": -5}`` failed at restore with
    numpy's "Percentiles must be in the range [0, 100]", and ``null`` said
    "'NoneType' object has no attribute 'get'".
    """
    if not isinstance(norm, dict):
        raise ValueError(
            f"normalization must be a dict such as {_default_normalization()}, got {norm!r}"
        )
    method = norm.get("method")
    if not isinstance(method, str) or method not in _NORMALIZATION_METHODS:
        raise ValueError(
            f"normalization method {method!r} is unknown; use one of {_NORMALIZATION_METHODS}"
        )
    allowed = _NORMALIZATION_KEYS.get(method, set())
    unknown = sorted(set(norm) - allowed - {"method"})
    if unknown:  # (a misspelt "ofset" was kept and ignored: the offset became 0, s70)
        takes = ", ".join(sorted(allowed)) or "nothing else"
        raise ValueError(f"normalization {method!r} takes {takes}; got unknown key(s) {unknown}")
    if method == "percentile":
        low, high = norm.get("low"), norm.get("high")
        if not (_number(low) and _number(high) and 0 <= low < high <= 100):
            raise ValueError(
                "percentile normalization needs percentiles 0 <= low < high <= 100, got "
                f"low={low!r}, high={high!r} (the shipped models: 0.5 and 99.5)"
            )
    if method == "fixed":
        offset, scale = norm.get("offset", 0.0), norm.get("scale", 1.0)
        if not (_number(offset) and _number(scale) and scale > 0):
            # (a negative scale turned the image upside down for the network)
            raise ValueError(
                "fixed normalization needs a finite offset and a finite scale > 0, got "
                f"offset={offset!r}, scale={scale!r}"
            )


@dataclass
class DeconvNetConfig:
    """Architecture and intensity normalisation of a :class:`DeconvNet`.

    A plain dataclass: ``dataclasses.asdict(config)`` is JSON-serialisable and
    ``DeconvNetConfig.from_dict`` reads it back.

    Parameters
    ----------
    ndim : {2, 3}
        Number of spatial dimensions (Conv2d or Conv3d).
    in_channels, out_channels : int
        Channels of the input and of the output.
    depth : int
        Number of pooling steps; inputs are processed on a ``2**depth`` grid.
    base_channels : int
        Feature channels at full resolution; doubled at every level down.
    convs_per_level : int
        Convolutions (each followed by the nonlinearity) per level.
    kernel_size : int
        Odd convolution kernel size.
    activation : {"relu", "leaky_relu", "gelu", "silu"}
    skip : {"add", "concat"}
        How encoder features join the decoder. ``"add"`` needs less memory.
    residual : bool
        Add the input to the output: all of it when ``in_channels ==
        out_channels``, otherwise the ``out_channels`` input channels starting
        at `residual_input` (no residual when that is None).
    residual_input : int, optional
        First input channel of the residual when the channel counts differ;
        the deconvolution models add their Wiener channel (1), so that the
        network learns a correction to the pre-deconvolution.
    normalization : dict
        How intensities are normalised before the network and mapped back
        after it. ``{"method": "percentile", "low": p, "high": q}`` maps the
        image's p-th and q-th percentiles (over the whole image, per channel)
        to 0 and 1; ``{"method": "fixed", "offset": a, "scale": b}`` uses
        statistics fixed at training time; ``{"method": "none"}`` passes
        intensities through.
    pool : {"max", "blur"}
        Down-sampling in the encoder: ``"max"`` (2-max-pooling) or
        ``"blur"`` (:func:`max_blur_pool`, anti-aliased, as in N2V2 [1]_).
    top_skip : bool
        Join the full-resolution encoder features to the decoder. N2V2 [1]_
        drops this connection (False) against checkerboard artifacts in
        self-supervised training.
    planar_levels : int
        3D only: the first `planar_levels` poolings (counted from full
        resolution) pool Y and X but keep every Z plane, and the transposed
        convolutions of those levels up-sample Y and X only (anisotropic
        pooling, for stacks sampled more coarsely in Z than in Y and X).
        Z then lies on a ``2**(depth - planar_levels)`` grid and its
        receptive field is shorter. 0 (the default): every pooling halves
        every axis.

    References
    ----------
    .. [1] E. Höck, T.-O. Buchholz, A. Brachmann, F. Jug and A. Freytag,
           "N2V2 - Fixing Noise2Void checkerboard artifacts with modified
           sampling strategies and a tweaked network architecture", ECCV
           Workshops 2022. :arXiv:`2211.08512`
    """

    ndim: int = 2
    in_channels: int = 1
    out_channels: int = 1
    depth: int = 2
    base_channels: int = 16
    convs_per_level: int = 2
    kernel_size: int = 3
    activation: str = "leaky_relu"
    skip: str = "add"
    residual: bool = True
    normalization: dict[str, Any] = field(default_factory=_default_normalization)
    residual_input: int | None = None
    pool: str = "max"
    top_skip: bool = True
    planar_levels: int = 0

    def __post_init__(self) -> None:
        # NumPy integers are taken as the ints they are (np.int64 kernel_size trained, then
        # failed to save as JSON; np.int64 depth was refused as "not an integer"), booleans
        # and floats refused (True was a depth of 1, 3.0 a raw torch error), session 70
        for name in _INTEGER_FIELDS:
            value = getattr(self, name)
            if value is None and name == "residual_input":
                continue
            if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
                raise TypeError(f"{name} must be an integer, got {value!r}")
            setattr(self, name, int(value))
        if self.ndim not in (2, 3):
            raise ValueError(f"ndim must be 2 or 3, got {self.ndim!r}")
        for name in ("in_channels", "out_channels", "depth", "base_channels", "convs_per_level"):
            value = getattr(self, name)
            least = 0 if name == "depth" else 1  # depth 0: no pooling, one level
            if value < least:
                what = "an integer >= 0" if least == 0 else "a positive integer"
                raise ValueError(f"{name} must be {what}, got {value!r}")
        if self.depth > MAX_DEPTH:
            raise ValueError(
                f"depth {self.depth} is deeper than {MAX_DEPTH} levels (each halves the "
                "image; the shipped models have 2)"
            )
        widest = self.base_channels * 2**self.depth
        if widest > MAX_CHANNELS:
            # a typo (base_channels=100000) asked torch for 360 GB before this check
            raise ValueError(
                f"a network of depth {self.depth} and base_channels {self.base_channels} has "
                f"{widest} channels at its bottleneck (base_channels * 2**depth); at most "
                f"{MAX_CHANNELS} channels and depth {MAX_DEPTH} are accepted (the shipped "
                "models: 24 and 2)"
            )
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {self.kernel_size!r}")
        weights = self.kernel_size**self.ndim * widest**2
        if weights > MAX_CONV_WEIGHTS:
            # (kernel_size=100001 was taken, and building the network asked torch for 640 GB)
            raise ValueError(
                f"kernel_size {self.kernel_size} gives the widest convolution {weights:.3g} "
                f"weights ({self.kernel_size}**{self.ndim} x {widest}**2 channels); at most "
                f"{MAX_CONV_WEIGHTS:.3g} are accepted (the shipped models: kernel 3)"
            )
        if not isinstance(self.activation, str) or self.activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation {self.activation!r} is unknown; use one of {sorted(_ACTIVATIONS)}"
            )
        if self.residual_input is not None and (
            not isinstance(self.residual_input, int)
            or not 0 <= self.residual_input <= self.in_channels - self.out_channels
        ):
            raise ValueError(
                f"residual_input must be an input channel index from 0 to "
                f"{self.in_channels - self.out_channels}, got {self.residual_input!r}"
            )
        if self.skip not in ("add", "concat"):
            raise ValueError(f"skip must be 'add' or 'concat', got {self.skip!r}")
        if self.pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {self.pool!r}")
        if not isinstance(self.top_skip, bool):
            raise TypeError(f"top_skip must be True or False, got {self.top_skip!r}")
        if isinstance(self.planar_levels, np.integer):  # (as the other counts, review)
            self.planar_levels = int(self.planar_levels)
        if (
            isinstance(self.planar_levels, bool)
            or not isinstance(self.planar_levels, int)
            or not 0 <= self.planar_levels <= self.depth
        ):
            raise ValueError(
                f"planar_levels must be an integer from 0 to depth ({self.depth}), "
                f"got {self.planar_levels!r}"
            )
        if self.planar_levels and self.ndim != 3:
            raise ValueError(
                f"planar_levels (pooling Y and X only) needs a 3D network, got ndim={self.ndim}"
            )
        if not isinstance(self.residual, bool):
            # a file's "residual": null turned the skip of the input off without a word
            raise TypeError(f"residual must be True or False, got {self.residual!r}")
        _check_normalization(self.normalization)

    @property
    def grid(self) -> int:
        """Spatial sizes the network sees are multiples of this (``2**depth``).

        A multiple of every axis's own grid (:attr:`grid_shape`): tiles and
        halos on it suit every axis.
        """
        return 2**self.depth

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """Per spatial axis, the product of its pooling factors (Z first in 3D)."""
        return tuple(math.prod(f[axis] for f in self.pool_factors()) for axis in range(self.ndim))

    def pool_factors(self) -> list[tuple[int, ...]]:
        """Per pooling level (full resolution first), the down-sampling factor of each axis."""
        planar = (1,) + (2,) * (self.ndim - 1)
        return [
            planar if level < self.planar_levels else (2,) * self.ndim
            for level in range(self.depth)
        ]

    def to_dict(self, *, compact: bool = False) -> dict[str, Any]:
        """Every field, or with `compact` the form model files store.

        ``compact`` leaves out the fields added after the file format's first
        release (:data:`LATE_FIELDS`) while they hold their defaults, so that a
        file whose network uses none of them loads in earlier releases too;
        :meth:`from_dict` fills them back in.
        """
        data = dataclasses.asdict(self)
        if compact:
            for name, default in LATE_FIELDS.items():
                if data[name] == default:
                    del data[name]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, stored: bool = False) -> DeconvNetConfig:
        """The configuration of `data`. `stored`: read from a file (a model, a package) that
        an earlier release may have written: a boolean count (``true`` for 1) and
        normalisation keys its method does not take (they never had an effect) are read as
        that release read them, where a new configuration refuses them (session 70)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(
                f"model config has unknown fields {sorted(unknown)}; "
                f"known fields are {sorted(known)}"
            )
        if stored:
            data = dict(data)
            for name in _INTEGER_FIELDS:
                if isinstance(data.get(name), bool):
                    data[name] = int(data[name])
            norm = data.get("normalization")
            if isinstance(norm, dict) and isinstance(norm.get("method"), str):
                takes = _NORMALIZATION_KEYS.get(norm["method"], set()) | {"method"}
                data["normalization"] = {k: v for k, v in norm.items() if k in takes}
        return cls(**data)


def stored_network(data: Any) -> Any:
    """A resume record's network configuration as this release reads it (see
    :meth:`DeconvNetConfig.from_dict`, ``stored=True``), to compare with a run's; as it
    is when it is no configuration (the comparison then says it differs). An earlier
    release's autosave with a normalisation key its method never read could not be
    resumed (review of session 70)."""
    try:
        return DeconvNetConfig.from_dict(data, stored=True).to_dict()
    except (TypeError, ValueError, AttributeError):
        return data


#: Configuration fields newer than the first model files, with the value that
#: means "as before" (pooling, the full-resolution skip, anisotropic pooling).
#: Model files leave them out at these values: readable by older releases.
LATE_FIELDS: dict[str, Any] = {"pool": "max", "top_skip": True, "planar_levels": 0}


def receptive_field(config: DeconvNetConfig | DeconvNet, *, per_axis: bool = False) -> Any:
    """Receptive field of the network, computed exactly from its layers.

    Parameters
    ----------
    config : DeconvNetConfig or DeconvNet
        The architecture (a network: its configuration). The package's
        ``receptive_field`` (:func:`napari_deconvnet.core.persistence.receptive_field`)
        also takes a model's name or file.
    per_axis : bool
        Return one ``(size, extent)`` pair per spatial axis (they differ
        along Z with ``planar_levels``) instead of the largest.

    Returns
    -------
    size : int
        Width (per spatial axis) of the input region that one output pixel
        can depend on.
    extent : int
        The farthest an input pixel can be from the output pixel it affects,
        on either side, taking every position on the pooling grid into
        account. Tiles need at least this much context on each side.

    Notes
    -----
    Interval arithmetic: feature pixel ``i`` at a scale with input stride
    ``a`` depends on input pixels ``[a*i + lo, a*i + hi]``. A centred
    convolution widens both ends by ``(k // 2) * a``; a 2-max-pool maps pixel
    ``j`` to ``2j, 2j+1`` (``hi += a``, ``a *= 2``), a max-blur-pool to
    ``2j-1 .. 2j+2`` (also ``lo -= a``, ``hi += a``); a stride-2 transposed
    convolution maps pixel ``m`` to ``m // 2`` (``a /= 2``, ``lo -= a``);
    skip connections take the union of both branches. An axis a level does
    not pool (``planar_levels``) keeps its stride there.
    """
    if isinstance(config, DeconvNet):
        config = config.config
    elif not isinstance(config, DeconvNetConfig):
        raise TypeError(
            "receptive_field takes a DeconvNetConfig, a DeconvNet, or a model's name or path "
            f"(e.g. 'denoise-2d'), got {type(config).__name__}"
        )
    axes = [
        _axis_receptive_field(config, [f[axis] for f in config.pool_factors()])
        for axis in range(config.ndim)
    ]
    if per_axis:
        return axes
    return max(size for size, _ in axes), max(extent for _, extent in axes)


def _axis_receptive_field(config: DeconvNetConfig, factors: list[int]) -> tuple[int, int]:
    """``(size, extent)`` along one axis whose pooling factor per level is `factors`."""
    half = config.kernel_size // 2
    lo, hi, a = 0, 0, 1

    def convs(lo: int, hi: int, a: int) -> tuple[int, int]:
        return lo - config.convs_per_level * half * a, hi + config.convs_per_level * half * a

    skips = []
    for factor in factors:
        lo, hi = convs(lo, hi, a)
        skips.append((lo, hi))
        if factor == 2:
            hi += a
            if config.pool == "blur":
                lo, hi = lo - a, hi + a
            a *= 2
    lo, hi = convs(lo, hi, a)  # bottleneck
    for level, (skip_lo, skip_hi) in reversed(list(enumerate(skips))):
        if factors[level] == 2:
            a //= 2
            lo -= a
        if level or config.top_skip:
            lo, hi = min(lo, skip_lo), max(hi, skip_hi)
        lo, hi = convs(lo, hi, a)
    return hi - lo + 1, max(-lo, hi)


def max_blur_pool(
    x: torch.Tensor, *, padding: bool = True, factors: tuple[int, ...] | None = None
) -> torch.Tensor:
    """Anti-aliased 2-down-sampling of a ``(B, C, H, W)`` or ``(B, C, D, H, W)`` tensor.

    The maximum over every ``2**ndim`` window at stride 1, then the separable
    binomial blur ``[1, 2, 1] / 4`` sampled at every other pixel: max-pooling
    without its aliasing (Zhang 2019 [1]_), as N2V2 [2]_ uses against
    checkerboard artifacts.

    Parameters
    ----------
    x : tensor
    padding : bool
        Pad the max-pooled map by one replicated pixel on each side: a size
        ``s`` gives ``s // 2``, like 2-max-pooling, and output pixel ``j``
        depends on input pixels ``2j - 1 .. 2j + 2``. Without padding the
        output has ``(s - 2) // 2`` pixels, pixel ``j`` from input pixels
        ``2j .. 2j + 3`` (for haloed tiles).
    factors : tuple of int, optional
        Per spatial axis 2 (down-sample) or 1 (leave the axis alone: no
        maximum, blur or padding along it); default 2 for every axis.

    References
    ----------
    .. [1] R. Zhang, "Making Convolutional Networks Shift-Invariant Again",
           ICML 2019. :arXiv:`1904.11486`
    .. [2] E. Höck et al., "N2V2 - Fixing Noise2Void checkerboard artifacts
           with modified sampling strategies and a tweaked network
           architecture", ECCV Workshops 2022. :arXiv:`2211.08512`
    """
    ndim = x.ndim - 2
    if ndim not in (2, 3):
        raise ValueError(f"expected a (B, C, H, W) or (B, C, D, H, W) tensor, got {x.ndim}-D")
    k = tuple(factors) if factors is not None else (2,) * ndim
    h = (F.max_pool2d if ndim == 2 else F.max_pool3d)(x, k, stride=1)
    if padding:
        # F.pad takes (last_lo, last_hi, ..., first_lo, first_hi)
        h = F.pad(h, [int(f == 2) for f in reversed(k) for _ in (0, 1)], mode="replicate")
    # [1, 2, 1] / 4 at stride 2 is [1, 1] / 2 at stride 1, then at stride 2 (per
    # axis): two average pools, no weight tensor, so it traces and exports to ONNX
    avg = F.avg_pool2d if ndim == 2 else F.avg_pool3d
    return avg(avg(h, k, stride=1), k, stride=k)


class _ConvBlock(nn.Sequential):
    def __init__(self, cfg: DeconvNetConfig, c_in: int, c_out: int) -> None:
        conv = nn.Conv2d if cfg.ndim == 2 else nn.Conv3d
        layers: list[nn.Module] = []
        for i in range(cfg.convs_per_level):
            layers.append(
                conv(
                    c_in if i == 0 else c_out, c_out, cfg.kernel_size, padding=cfg.kernel_size // 2
                )
            )
            layers.append(_ACTIVATIONS[cfg.activation]())
        super().__init__(*layers)


def _strided_max(h: torch.Tensor, factors: tuple[int, ...]) -> torch.Tensor:
    """``max_pool3d(h, factors)`` for inference, as maxima of strided views.

    The same values (a maximum is exact, NaN included), without the copy
    that max pooling makes of a cropped (non-contiguous) channels-last tile
    and without computing the indices of the maxima: one 16-channel pooling
    of a 104x296x296 bfloat16 tile took 0.41 s plus a 0.56 s copy.
    """
    for axis, f in enumerate(factors, start=2):
        if f == 1:
            continue
        n = h.shape[axis] // f * f
        parts = [h.narrow(axis, 0, n).unflatten(axis, (n // f, f)).select(axis + 1, i)
                 for i in range(f)]  # fmt: skip
        out = parts[0]
        for part in parts[1:]:
            out = torch.maximum(out, part)
        h = out
    return h


def _cpu_autocast_dtype() -> torch.dtype | None:
    """The dtype CPU autocast casts to, or None when it is off.

    torch 2.4 replaced ``is_autocast_cpu_enabled`` (deprecated, it warns on
    every call) by ``is_autocast_enabled("cpu")``; the package supports both.
    """
    try:
        enabled = torch.is_autocast_enabled("cpu")
        return torch.get_autocast_dtype("cpu") if enabled else None
    except (TypeError, AttributeError):  # torch < 2.4
        return torch.get_autocast_cpu_dtype() if torch.is_autocast_cpu_enabled() else None


def _conv3d_as_2d(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
    """An unpadded 3D convolution of few input channels, as one 2D convolution.

    oneDNN is slow on 3D convolutions with one or two input channels (the
    first layer: 0.4 s where 16 channels take 0.3 s on the same volume).
    Stacking the ``k`` planes each output plane needs as ``k * C`` channels
    turns it into a 2D convolution over the planes as a batch, 3 to 4.5x
    faster on a CPU, the same sums. The output is channels-last 3D, as the
    next layer wants it.
    """
    b, c, z = h.shape[:3]
    k = weight.shape[2]
    planes = h.permute(0, 2, 1, 3, 4)  # (B, Z, C, Y, X)
    # the stack, written once, channels-last and in the dtype autocast would
    # cast it to (no second copy for the layout, no third for the dtype)
    dtype = h.dtype
    if h.device.type == "cpu":
        dtype = _cpu_autocast_dtype() or dtype
    stack = torch.empty(
        (b * (z - k + 1), k * c, *h.shape[3:]),
        dtype=dtype,
        device=h.device,
        memory_format=torch.channels_last,
    )
    view = stack.view(b, z - k + 1, k * c, *h.shape[3:])
    for i in range(k):
        view[:, :, i * c : (i + 1) * c] = planes[:, i : z - k + 1 + i]
    w2 = weight.permute(0, 2, 1, 3, 4).reshape(weight.shape[0], k * c, *weight.shape[3:])
    out = F.conv2d(stack, w2.contiguous(memory_format=torch.channels_last), bias)
    out = out.reshape(b, z - k + 1, *out.shape[1:])
    return out.permute(0, 2, 1, 3, 4)


class DeconvNet(nn.Module):
    """Encoder-decoder deconvolution network for 2D or 3D images.

    Parameters
    ----------
    config : DeconvNetConfig or dict, optional
        Architecture; keyword arguments override its fields.

    Attributes
    ----------
    config : DeconvNetConfig
    metadata : dict
        Free-form JSON-serialisable record (name, description, training
        record); saved with the model by :func:`napari_deconvnet.save_model`.

    Notes
    -----
    ``forward`` takes ``(B, C, H, W)`` or ``(B, C, D, H, W)`` tensors of any
    spatial size: the input is reflect-padded to a multiple of ``2**depth``
    and the output is cropped back. Intensities are expected to be
    normalised already (see :attr:`DeconvNetConfig.normalization`).

    Examples
    --------
    >>> import torch
    >>> net = DeconvNet(ndim=2, depth=2, base_channels=8)
    >>> net(torch.zeros(1, 1, 30, 41)).shape
    torch.Size([1, 1, 30, 41])
    """

    def __init__(self, config: DeconvNetConfig | dict | None = None, **overrides: Any) -> None:
        super().__init__()
        if config is None:
            config = DeconvNetConfig()
        if isinstance(config, dict):
            config = DeconvNetConfig.from_dict(config)
        if overrides:
            config = dataclasses.replace(config, **overrides)
        self.config = config
        self.metadata: dict[str, Any] = {}
        cfg = config
        tconv = nn.ConvTranspose2d if cfg.ndim == 2 else nn.ConvTranspose3d
        widths = [cfg.base_channels * 2**level for level in range(cfg.depth + 1)]
        self.encoder = nn.ModuleList()
        c_in = cfg.in_channels
        for level in range(cfg.depth):
            self.encoder.append(_ConvBlock(cfg, c_in, widths[level]))
            c_in = widths[level]
        self.bottleneck = _ConvBlock(cfg, c_in, widths[cfg.depth])
        self.up = nn.ModuleList()
        self.decoder = nn.ModuleList()
        factors = cfg.pool_factors()
        for level in reversed(range(cfg.depth)):
            f = factors[level]
            self.up.append(tconv(widths[level + 1], widths[level], kernel_size=f, stride=f))
            joined = cfg.skip == "concat" and (level or cfg.top_skip)
            c_dec = widths[level] * (2 if joined else 1)
            self.decoder.append(_ConvBlock(cfg, c_dec, widths[level]))
        conv = nn.Conv2d if cfg.ndim == 2 else nn.Conv3d
        self.head = conv(widths[0], cfg.out_channels, kernel_size=1)
        if cfg.in_channels == cfg.out_channels:
            self._residual_channels = slice(None)
        elif cfg.residual_input is not None:
            first = cfg.residual_input
            self._residual_channels = slice(first, first + cfg.out_channels)
        else:
            self._residual_channels = None
        self.residual = cfg.residual and self._residual_channels is not None
        if self.residual:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def _pool(self, h: torch.Tensor, level: int, padding: bool = True) -> torch.Tensor:
        factors = self.config.pool_factors()[level]
        if self.config.pool == "blur":
            return max_blur_pool(h, padding=padding, factors=factors)
        if self.config.ndim == 3 and not (
            torch.is_grad_enabled() or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
        ):  # inference; a trace would keep its sizes as constants
            return _strided_max(h, factors)
        return (F.max_pool2d if self.config.ndim == 2 else F.max_pool3d)(h, factors)

    def _join(self, h: torch.Tensor, skip: torch.Tensor, level: int) -> torch.Tensor:
        if level == 0 and not self.config.top_skip:
            return h
        return h + skip if self.config.skip == "add" else torch.cat([h, skip], dim=1)

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.config)[0]

    @property
    def halo(self) -> int:
        """Context (per side, on the ``2**depth`` grid) that makes tiling exact."""
        extent = receptive_field(self.config)[1]
        grid = self.config.grid
        return int(math.ceil(extent / grid) * grid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if x.ndim != cfg.ndim + 2:
            layout = "(B, C, D, H, W)" if cfg.ndim == 3 else "(B, C, H, W)"
            raise ValueError(
                f"expected a {cfg.ndim + 2}-D tensor {layout}, got shape {tuple(x.shape)}"
            )
        if x.shape[1] != cfg.in_channels:
            raise ValueError(f"expected {cfg.in_channels} input channels, got {x.shape[1]}")
        spatial = x.shape[2:]
        pad = [(-s) % g for s, g in zip(spatial, cfg.grid_shape, strict=True)]
        if any(pad):
            # F.pad takes (last_lo, last_hi, ..., first_lo, first_hi)
            widths = [w for p in reversed(pad) for w in (0, p)]
            mode = (
                "reflect" if all(p < s for p, s in zip(pad, spatial, strict=True)) else "replicate"
            )
            x_in = F.pad(x, widths, mode=mode)
        else:
            x_in = x
        h = x_in
        skips = []
        for level, block in enumerate(self.encoder):
            h = block(h)
            skips.append(h)
            h = self._pool(h, level)
        h = self.bottleneck(h)
        levels = reversed(range(cfg.depth))
        for up, block, level in zip(self.up, self.decoder, levels, strict=True):
            h = self._join(up(h), skips.pop(), level)
            h = block(h)
        out = self.head(h)
        if self.residual:
            out = out + x_in[:, self._residual_channels]
        if any(pad):
            out = out[(slice(None), slice(None), *(slice(0, s) for s in spatial))]
        return out

    def _head_center(self, h: torch.Tensor) -> torch.Tensor:
        """The 1x1 head; in 3D as a matrix product over the channels.

        torch sends a one-sample 5-D input whose ``N*C*D*H`` is below 20480 (and
        this 16-to-1 layer, always slow) to its reference kernel, which copies
        the channels-last input to the default layout first: 0.8 s against
        0.05 s for a 64x256x256 tile, the same sums.
        """
        if self.config.ndim != 3:
            return self.head(h)
        weight = self.head.weight.flatten(1)  # (out, in)
        out = torch.matmul(h.movedim(1, -1), weight.t())
        if self.head.bias is not None:
            out = out + self.head.bias
        return out.movedim(-1, 1)

    def forward_center(self, x: torch.Tensor, halo: int) -> torch.Tensor:
        """``forward(x)`` without its `halo` on every side, computing only what that needs.

        For haloed tiles (:mod:`~napari_deconvnet.core.tiling`): `x` is
        ``(B, C, *[t + 2 * halo])`` with sizes and `halo` on the ``2**depth``
        grid, and `halo` at least the receptive-field extent. Every layer then
        runs without padding on just the region the output's centre depends
        on (the decoder on little more than the centre, not on the whole
        haloed tile), so the result equals ``forward(x)`` cropped by `halo`
        up to floating-point rounding, for much less work in 3D.
        ``ValueError`` when `x` or `halo` is not on the grid or `halo` is too small.
        """
        cfg = self.config
        grid = cfg.grid
        spatial = tuple(x.shape[2:])
        if (
            x.ndim != cfg.ndim + 2
            or x.shape[1] != cfg.in_channels
            or halo % grid
            or any(s % grid or s <= 2 * halo for s in spatial)
        ):
            raise ValueError(
                f"forward_center needs ({cfg.in_channels} channels, {cfg.ndim} spatial axes) "
                f"tiles on the {grid}-pixel grid with a halo on it, got shape "
                f"{tuple(x.shape)} and halo {halo}"
            )
        if cfg.depth == 0:  # one level, nothing to plan: the tile, cropped (session 70:
            # an IndexError in the plan failed every restore of a depth-0 network)
            inner = (slice(None), slice(None), *[slice(halo, s - halo) for s in spatial])
            return self.forward(x)[inner]
        plan = _center_plan(cfg, halo, spatial)
        if plan is None:
            raise ValueError(
                f"halo {halo} is smaller than this model's receptive-field extent "
                f"{receptive_field(cfg)[1]}"
            )
        enc_in, enc_out, pool_in, dec_in, dec_out, bottleneck_in = plan

        def crop(h: torch.Tensor, have: list, want: list) -> torch.Tensor:
            index = [slice(None), slice(None)]
            pairs = zip(have, want, strict=True)
            index += [slice(w0 - h0, w1 - h0) for (h0, _), (w0, w1) in pairs]
            return h[tuple(index)]

        def convs(block: nn.Module, h: torch.Tensor) -> torch.Tensor:
            conv = F.conv2d if cfg.ndim == 2 else F.conv3d
            for layer in block:
                if isinstance(layer, nn.Conv2d | nn.Conv3d):
                    if h.shape[1] <= 2 and cfg.ndim == 3:
                        h = _conv3d_as_2d(h, layer.weight, layer.bias)
                    else:
                        h = conv(h, layer.weight, layer.bias)
                else:
                    h = layer(h)
            return h

        full = [(0, s) for s in spatial]
        h = crop(x, full, enc_in[0])
        skips = []
        for level, block in enumerate(self.encoder):
            h = convs(block, h)
            used = level or cfg.top_skip
            skips.append(crop(h, enc_out[level], dec_in[level]) if used else None)
            h = self._pool(crop(h, enc_out[level], pool_in[level]), level, padding=False)
        h = convs(self.bottleneck, h)
        factors = cfg.pool_factors()

        def upsampled(intervals: list, level: int) -> list:
            pairs = zip(intervals, factors[level], strict=True)
            return [(f * a, f * b) for (a, b), f in pairs]

        have = upsampled(_shrink(bottleneck_in, self._margin), cfg.depth - 1)
        levels = reversed(range(cfg.depth))
        for up, block, level in zip(self.up, self.decoder, levels, strict=True):
            h = self._join(crop(up(h), have, dec_in[level]), skips.pop(), level)
            h = convs(block, h)
            if level:
                have = upsampled(dec_out[level], level - 1)
        centre = [(halo, s - halo) for s in spatial]
        out = self._head_center(h)
        if self.residual:
            out = out + crop(x, full, centre)[:, self._residual_channels]
        return out

    @property
    def _margin(self) -> int:
        """Pixels one conv block takes from each side (without padding)."""
        return self.config.convs_per_level * (self.config.kernel_size // 2)

    def activation_bytes_per_pixel(self, bytes_per_value: int = 4, center: bool = False) -> float:
        """Rough peak memory of inference per input pixel (for choosing tiles).

        With `center`, of :meth:`forward_center`, whose full-resolution decoder
        runs on little more than the tile's centre: at full resolution only
        the encoder's two feature maps are alive at once.
        """
        cfg = self.config
        per_level = 0.0
        shrink = 1
        factors = cfg.pool_factors()
        for level in range(cfg.depth + 1):
            width = cfg.base_channels * 2**level
            joined = cfg.skip == "concat" and level < cfg.depth and (level or cfg.top_skip)
            factor = 4 if joined else 3
            if center and level == 0 and cfg.depth:
                factor = 2
            per_level += factor * width / shrink
            if level < cfg.depth:
                shrink *= math.prod(factors[level])
        return (per_level + 2 * (cfg.in_channels + cfg.out_channels)) * bytes_per_value


def widen_input(
    state: dict[str, torch.Tensor], net: DeconvNet, positions: Sequence[int] | None = None
) -> dict[str, torch.Tensor]:
    """Weights of a network with fewer input channels, for `net`, which takes more.

    Tensors whose shape differs from `net`'s (the first convolution's weight)
    keep the old values for the old input channels and get zeros for the
    new ones, so that `net` with these weights computes exactly what the
    narrower network did, whatever the new channels hold (given that
    ``residual_input`` points at the same channel). Used to start a
    noise-conditioned model from the blind ``denoise-2d``, and a model with
    two conditioning channels from one with one.

    `positions[i]` is the new index of old input channel ``i`` (default: the
    old channels stay first, in order).

    Raises
    ------
    ValueError
        A tensor that differs other than by having fewer input channels, or
        `positions` that are not distinct indices of `net`'s inputs.
    """
    own = net.state_dict()
    out = dict(state)
    for key, value in state.items():
        target = own[key]
        if target.shape == value.shape:
            continue
        if (
            target.ndim != value.ndim
            or target.ndim < 2
            or target.shape[0] != value.shape[0]
            or target.shape[2:] != value.shape[2:]
            or target.shape[1] < value.shape[1]
        ):
            raise ValueError(
                f"cannot widen {key!r} of shape {tuple(value.shape)} to {tuple(target.shape)}: "
                "only more input channels can be added"
            )
        where = list(range(value.shape[1])) if positions is None else [int(i) for i in positions]
        if len(where) != value.shape[1] or len(set(where)) != len(where):
            raise ValueError(
                f"positions must give one distinct new index for each of the "
                f"{value.shape[1]} old input channels, got {list(positions or [])}"
            )
        if min(where) < 0 or max(where) >= target.shape[1]:
            raise ValueError(
                f"positions {where} must lie in 0..{target.shape[1] - 1} "
                f"(the new network's {target.shape[1]} input channels)"
            )
        wide = torch.zeros_like(target)
        wide[:, where] = value
        out[key] = wide
    return out


def widen_channels(state: dict[str, torch.Tensor], net: DeconvNet) -> dict[str, torch.Tensor]:
    """Weights of a narrower network (fewer feature channels per level) for `net`.

    Every old weight keeps its place; the weights that *read* a new feature
    channel are zero, and those that *compute* one keep `net`'s own random
    initialisation. So `net` starts computing exactly what the narrower
    network did (the new channels are computed and ignored), and training
    grows the zero weights from the first step, since their gradients are
    the new channels' activations, which are not zero. Skips by addition
    add old channel to old channel and new to new, and pooling is per
    channel, so nothing mixes the two. Used to give a shipped model more
    capacity without losing what it learned (``scripts/train_models.py
    --base-channels``).

    Raises
    ------
    ValueError
        If `net` joins its skips by concatenation (the joined channels would
        interleave old and new), or the two networks differ other than in
        their widths: depth, kernel, number of convolutions, or input and
        output channels.
    """
    if net.config.skip != "add":
        raise ValueError(
            f"widen_channels needs skips by addition (skip='add'); this network has "
            f"skip={net.config.skip!r}"
        )
    own = net.state_dict()
    if set(own) != set(state):
        raise ValueError(
            "cannot widen: the two networks have different layers (depth, convolutions per "
            "level or skips differ); only base_channels may grow"
        )
    out = {}
    transposed = {
        f"{name}.weight"
        for name, module in net.named_modules()
        if isinstance(module, (nn.ConvTranspose2d, nn.ConvTranspose3d))
    }
    for key, old in state.items():
        target = own[key]
        if target.shape == old.shape:
            out[key] = old.clone()
            continue
        grows = [n >= o for n, o in zip(target.shape, old.shape, strict=False)]
        if target.ndim != old.ndim or not all(grows) or target.shape[2:] != old.shape[2:]:
            raise ValueError(
                f"cannot widen {key!r} of shape {tuple(old.shape)} to {tuple(target.shape)}: "
                "only more feature channels can be added"
            )
        wide = target.detach().clone()
        if old.ndim == 1:  # a bias: the old channels first
            wide[: old.shape[0]] = old
        else:
            # (out, in, *k) for convolutions, (in, out, *k) for transposed ones
            o_dim, i_dim = (1, 0) if key in transposed else (0, 1)
            n_out, n_in = old.shape[o_dim], old.shape[i_dim]
            reads_new = [slice(None)] * old.ndim
            reads_new[o_dim], reads_new[i_dim] = slice(0, n_out), slice(n_in, None)
            wide[tuple(reads_new)] = 0  # old outputs ignore the new inputs
            keep = [slice(None)] * old.ndim
            keep[o_dim], keep[i_dim] = slice(0, n_out), slice(0, n_in)
            wide[tuple(keep)] = old
        out[key] = wide
    return out


def _grow(intervals: list, by: int) -> list:
    return [(a - by, b + by) for a, b in intervals]


def _shrink(intervals: list, by: int) -> list:
    return _grow(intervals, -by)


def _center_plan(cfg: DeconvNetConfig, halo: int, spatial: tuple) -> tuple | None:
    """Per level and axis, the ``[start, stop)`` regions :meth:`DeconvNet.forward_center`
    computes, in that level's pixels relative to the tile's origin; None when the
    input does not hold them (a halo below the receptive-field extent)."""
    margin = cfg.convs_per_level * (cfg.kernel_size // 2)
    depth = cfg.depth
    factors = cfg.pool_factors()
    dec_out: list = [None] * depth
    dec_in: list = [None] * depth
    need = [(halo, s - halo) for s in spatial]  # the decoder's output at level 0
    for level in range(depth):
        dec_out[level] = need
        dec_in[level] = _grow(need, margin)
        pairs = zip(dec_in[level], factors[level], strict=True)
        need = [(a // f, -(-b // f)) for (a, b), f in pairs]
    bottleneck_in = _grow(need, margin)
    enc_in: list = [None] * depth
    enc_out: list = [None] * depth
    pool_in: list = [None] * depth
    need = bottleneck_in
    blur = int(cfg.pool == "blur")  # max-blur-pooling reads one more pixel each side
    for level in reversed(range(depth)):
        pairs = zip(need, factors[level], strict=True)
        # an axis the level does not pool keeps its interval (and needs no blur)
        pool_in[level] = [
            (f * a - blur * (f == 2), f * b + blur * (f == 2)) for (a, b), f in pairs
        ]
        skip = dec_in[level] if level or cfg.top_skip else pool_in[level]
        enc_out[level] = [
            (min(p0, d0), max(p1, d1))
            for (p0, p1), (d0, d1) in zip(pool_in[level], skip, strict=True)
        ]
        enc_in[level] = _grow(enc_out[level], margin)
        need = enc_in[level]
    # the up-sampled bottleneck must cover the deepest decoder input
    if any(a < 0 or b > s for (a, b), s in zip(enc_in[0], spatial, strict=True)):
        return None
    return enc_in, enc_out, pool_in, dec_in, dec_out, bottleneck_in
