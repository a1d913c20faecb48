"""Rank denoisers by their mean squared error without clean data: Stein's unbiased risk.

Self-supervised (Noise2Void) training has no clean target, and its masked
loss does not rank models by how well they denoise: a model trained on clean
targets sees each masked pixel's neighbour in its place, so the masked loss
penalises it for what makes it good. Stein's unbiased risk estimate (SURE)
does rank them. For a noisy image ``y = x + n`` whose noise is independent
from pixel to pixel, with variance ``v_i`` at pixel ``i``, and a denoiser
``f``,

.. math::

    \\mathrm{SURE}(f) = \\frac{1}{N}\\Big(\\lVert f(y) - y\\rVert^2 - \\sum_i v_i
    + 2 \\sum_i v_i \\frac{\\partial f_i}{\\partial y_i}(y)\\Big)

has the expectation of ``||f(y) - x||^2 / N``, the true MSE against the
clean image (Stein 1981, exactly for Gaussian noise). Camera noise is
Poisson-Gaussian, with a variance that grows along a line with the
intensity, ``v = a * x + b`` (:func:`~.noise_estimation.estimate_noise`
measures ``a`` and ``b``); since ``E[a * y + b] = v``, the noisy pixel gives
an unbiased variance, and the weighted form above is the first-order
Poisson-Gaussian unbiased risk estimate (PG-URE, Le Montagner et al. 2014):
its bias is of the order of ``a * v * f''``, which vanishes for linear
denoisers and is small for smooth ones. The estimate is made in the image's
(normalised) intensity domain, so that it ranks models by the MSE that
PSNR measures, not by a variance-stabilised error.

The divergence term is estimated by a random probe (Monte-Carlo SURE,
Ramani et al. 2008): for a Rademacher vector ``p``,
``E[(v p) . (J p)] = sum_i v_i J_ii``, with ``J p`` one vector-Jacobian
product by automatic differentiation (exact, so no finite-difference step
to tune). The probe is fixed for a run, so that every model is scored with
the same random numbers and their differences are sharper than their
values.

References
----------
.. [1] C. M. Stein, "Estimation of the mean of a multivariate normal
       distribution", Ann. Statist. 9(6), 1135-1151, 1981.
.. [2] S. Ramani, T. Blu and M. Unser, "Monte-Carlo SURE: a black-box
       optimization of regularization parameters for general denoising
       algorithms", IEEE Trans. Image Process. 17(9), 1540-1554, 2008.
       :DOI:`10.1109/TIP.2008.2001404`
.. [3] Y. Le Montagner, E. D. Angelini and J.-C. Olivo-Marin, "An unbiased
       risk estimator for image denoising in the presence of mixed
       Poisson-Gaussian noise", IEEE Trans. Image Process. 23(3),
       1255-1268, 2014. :DOI:`10.1109/TIP.2014.2300821`
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from .noise_estimation import LINE_NOISE_MODELS, _quantum, _robust_variance, variance_line

__all__ = [
    "SURE_NOISE_MODELS",
    "SureScore",
    "correlation_ratio",
    "sure_mse",
    "sure_score",
    "variance_line",
    "variance_line_guided",
    "variance_power_guided",
    "weighted_divergence",
]

#: Noise models whose variance is a line in the intensity (what SURE here needs).
SURE_NOISE_MODELS = LINE_NOISE_MODELS

#: Above this ratio of the coarse to the fine noise estimate, the noise is
#: called correlated (white noise gives about 1; see :func:`correlation_ratio`).
CORRELATED_RATIO = 1.5
_MAD_TO_SIGMA = 1.0 / 0.6744897501960817
_PROBED = 65536  # pixels probed per score: with fewer validation pixels, more probes
_BLOCK = 16  # side of the blocks over which the standard error of a difference is taken
_TOP_EDGES = (0.97, 0.99, 0.997)  # extra bin edges (quantiles) in the bright tail
_MIN_BIN = 64  # 2x2 blocks a bin needs for its robust variance


def variance_line_guided(
    noisy: np.ndarray, denoised: np.ndarray, *, bins: int = 16, keep: float = 0.5
) -> tuple[float, float]:
    """``(a, b)`` of the noise variance ``a * m + b``, measured where `denoised` is flat.

    The noise level function (Foi et al. 2008) measured on the finest
    diagonal Haar coefficients of `noisy`, as
    :func:`~.noise_estimation.estimate_noise` does, but with the 2x2 blocks
    binned by the intensity of `denoised` (a trained model's restoration of
    `noisy`) and, in every bin, only the half of the blocks where
    `denoised` has the least detail kept, so that fine structure (filaments,
    texture) that a noisy image cannot tell from noise does not count as
    noise. Each bin's variance is the squared median absolute coefficient
    (robust to what structure is left), at the bin's median level; in bins of
    discrete data (counts) whose noise is under :data:`DISCRETE_SPREAD` of its
    steps, where such a median moves in steps and is biased, the trimmed mean
    square of the coefficients. On phantoms with Poisson-Gaussian
    noise this gets the mean noise variance within a few percent where the
    estimate from the noisy image alone is 10-40 % high.

    Parameters
    ----------
    noisy, denoised : (..., M, N) ndarray
        The same image, noisy and restored; planes of the two last axes.

    Raises
    ------
    ValueError
        When no positive variance line fits.
    """
    m, v = _guided_bins(noisy, denoised, bins, keep)
    w = 1.0 / np.maximum(v, 1e-30)  # relative errors of the bins' variances are alike
    a, b = np.linalg.lstsq(np.stack([m * w, w], axis=1), v * w, rcond=None)[0]
    if a < 0:  # no growth with the intensity: constant (Gaussian) noise
        a, b = 0.0, float(np.sum(w * v) / np.sum(w))
    if not (a * np.median(m) + b > 0 and np.isfinite(a) and np.isfinite(b)):
        raise ValueError("no positive noise variance fits the image")
    return float(a), float(b)


def _guided_bins(
    noisy: Any, denoised: Any, bins: int, keep: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mean intensity and noise variance of each bin (see :func:`variance_line_guided`)."""
    y = np.asarray(noisy, np.float64).reshape(-1, *np.shape(noisy)[-2:])
    x = np.asarray(denoised, np.float64).reshape(y.shape)
    mean_y, hh_y, hl_y, lh_y = _haar(y)
    mean_x, hh_x, hl_x, lh_x = _haar(x)
    from scipy import ndimage

    from .noise_estimation import live_blocks

    detail = ndimage.maximum_filter(np.abs(hh_x) + np.abs(hl_x) + np.abs(lh_x), (1, 3, 3))
    level, detail, coef = mean_x.ravel(), detail.ravel(), hh_y.ravel()
    # areas of one exact value (padding, clipped highlights) carry no noise: out,
    # or their zero variance, weighted by its inverse, ruled the fit
    live = live_blocks({"mean": mean_y, "hh": hh_y, "hl": hl_y, "lh": lh_y})
    clipped = _clipped_blocks(y)
    if clipped is not None:
        live = ~clipped if live is None else live & ~clipped
    if live is not None:
        alive = live.ravel()
        level, detail, coef = level[alive], detail[alive], coef[alive]
    n_bins = int(min(bins, level.size // 128))
    if n_bins < 2:
        raise ValueError("too few pixels to measure the noise level function")
    means, variances = [], []
    order = np.argsort(level, kind="stable")
    # equal-count bins, the brightest split further: on a dark image the last of
    # 16 bins spans the whole bright tail, whose noise its median underestimates
    # (multiplicative noise on a few bright cells: 4 times)
    edges = sorted({*np.linspace(0, 1, n_bins + 1).tolist(), *_TOP_EDGES})
    cuts = [int(round(e * order.size)) for e in edges]
    parts = [order[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    quantum = _quantum(y)
    for idx in (p for p in parts if p.size >= _MIN_BIN):
        d = detail[idx]
        chosen = idx[d <= np.quantile(d, keep)]
        # the median level, as the variance is a median's: a bin across the step from
        # a dark background to bright cells has a mean level of the few bright blocks
        # but the noise of the many dark ones (a nuclei scene at 300 photons: level 75,
        # variance 27, which made Poisson noise read 0.76 of itself)
        means.append(float(_BIN_LEVEL(level[chosen])))
        sigma = float(np.median(np.abs(coef[chosen]))) * _MAD_TO_SIGMA
        if _DISCRETE_MEAN_SQUARE and sigma < DISCRETE_SPREAD * quantum:
            # counts: a median of values half a count apart moves in steps (a variance
            # of 8.8, 13.7, 19.8 ... for levels 7 to 30) and is biased (0.55-1.8 times
            # the variance at means of 0.3-3); the trimmed mean square is not
            variances.append(_robust_variance(coef[chosen]))
        else:
            variances.append(sigma**2)
    return np.array(means), np.array(variances)


#: A bin's level (of the guide's 2x2 block means): the median (before 2026-12-05, the
#: mean; ``benchmarks/guard_counts.py`` sets it back to compare)
_BIN_LEVEL = np.median
#: Bins of discrete data (counts) whose robust noise level is below this many of its
#: steps measure their variance by a trimmed mean square instead of the median ...
DISCRETE_SPREAD = 20.0
#: ... (before 2026-12-05 the median everywhere; ``benchmarks/guard_counts.py``
#: sets this back to compare)
_DISCRETE_MEAN_SQUARE = True

#: Pixels at the image's minimum or maximum mark clipping (saturated highlights, a
#: floor) when at least this share of the image sits there (and 16 pixels)
CLIPPED_SHARE = 1e-3


def _clipped_blocks(y: np.ndarray, ends: tuple[str, ...] = ("min", "max")) -> np.ndarray | None:
    """2x2 blocks holding or touching clipped pixels, or None when nothing is clipped.

    A pixel clipped at the sensor's or the format's limit (255 in an 8-bit
    photo) lost the part of its noise beyond it, and so did its neighbours
    near the limit: their bins read the noise low, and weighted by the
    inverse of their variance they ruled the fit (an 8-bit photo with noise
    of 10 grey levels and 6% of it saturated read 5.5, and the light-noise
    guard undid most of the denoising: -3 dB). An extreme counts as clipping
    when :data:`CLIPPED_SHARE` of the pixels hold it and it is a pile-up:
    more than twice as many as hold the next value inward (photon counts'
    zeros at two photons per pixel are half as many as their ones: noise,
    not clipping). `ends`: which of the two to look at.
    """
    from scipy import ndimage

    h, w = y.shape[-2] // 2 * 2, y.shape[-1] // 2 * 2
    pixels = np.zeros(y.shape, bool)
    for end, value, inward in (("min", y.min(), y > y.min()), ("max", y.max(), y < y.max())):
        if end not in ends:  # (the floor or the ceiling alone)
            continue
        at = y == value
        count = int(at.sum())
        if count < max(16, CLIPPED_SHARE * y.size) or not inward.any():
            continue
        rest = y[inward]
        following = rest.min() if value == y.min() else rest.max()
        if count > 2 * int((rest == following).sum()):
            pixels |= at
    if not pixels.any():
        return None
    p = pixels[:, :h, :w]
    blocks = p[:, 0::2, 0::2] | p[:, 0::2, 1::2] | p[:, 1::2, 0::2] | p[:, 1::2, 1::2]
    return ndimage.maximum_filter(blocks.view(np.uint8), (1, 3, 3)).astype(bool)


#: Powers of the intensity :func:`variance_power_guided` chooses from: constant
#: (Gaussian), linear (Poisson-Gaussian), quadratic (multiplicative, speckle)
VARIANCE_POWERS = (0, 1, 2)
#: A higher power is chosen only when it lowers the weighted misfit by this share
_POWER_GAIN = 0.05


def variance_power_guided(
    noisy: Any, denoised: Any, *, bins: int = 16, keep: float = 0.5
) -> tuple[float, int, float]:
    """``(c, p, d)`` of the noise variance ``c * max(m, 0)**p + d``, measured where flat.

    The bins of :func:`variance_line_guided` (intensity of `denoised`, the
    flattest half of each bin's 2x2 blocks, robust variance of the noisy
    image's diagonal details), fitted by the power ``p`` in
    :data:`VARIANCE_POWERS` that explains them best: 0 for Gaussian noise,
    1 for Poisson-Gaussian noise, 2 for multiplicative noise such as
    speckle (standard deviation proportional to the intensity), which a line
    fitted mostly to the dark bins underestimates several-fold at the bright
    end. A higher power must lower the misfit (weighted by the inverse
    variance, as the line's) by 5% to be chosen; ``c >= 0``.

    Raises
    ------
    ValueError
        When no positive variance fits.
    """
    m, v = _guided_bins(noisy, denoised, bins, keep)
    w = 1.0 / np.maximum(v, 1e-30)
    level = np.maximum(m, 0.0)
    best: tuple[float, int, float, float] | None = None
    for p in VARIANCE_POWERS:
        if p == 0:
            c, d = 0.0, float(np.sum(w * v) / np.sum(w))
        else:
            c, d = np.linalg.lstsq(np.stack([level**p * w, w], axis=1), v * w, rcond=None)[0]
            if not c > 0:
                continue
        misfit = float(np.sum(((c * level**p + d) * w - v * w) ** 2))
        if best is None or misfit < best[0] * (1 - _POWER_GAIN):
            best = (misfit, p, float(c), float(d))
    _, p, c, d = best
    if not (np.isfinite(c) and np.isfinite(d) and c * float(np.median(level)) ** p + d > 0):
        raise ValueError("no positive noise variance fits the image")
    return c, p, d


def _haar(planes: np.ndarray) -> tuple[np.ndarray, ...]:
    """Block means and the diagonal, horizontal and vertical Haar details (2x2 blocks)."""
    h, w = planes.shape[-2] // 2 * 2, planes.shape[-1] // 2 * 2
    a, b = planes[:, 0:h:2, 0:w:2], planes[:, 0:h:2, 1:w:2]
    c, d = planes[:, 1:h:2, 0:w:2], planes[:, 1:h:2, 1:w:2]
    return (a + b + c + d) / 4, (a - b - c + d) / 2, (a + b - c - d) / 2, (a - b + c - d) / 2


def correlation_ratio(image: Any) -> float:
    """How much stronger the noise looks at a 2-pixel scale than at the pixel scale.

    The robust (median) noise level of the finest diagonal Haar coefficients
    is compared with that of the next scale, normalised so that noise that
    is independent from pixel to pixel gives about 1, whatever its level.
    Spatially correlated noise (e.g. blurred after it arose, as in a
    camera's processing) hides from the finest scale and gives much more
    (about 2.5 for white noise blurred by a Gaussian of 1 pixel). Structure
    of the image at the 2-4 pixel scale raises it too, so a high ratio is a
    reason to distrust a noise estimate, not a proof of correlation.
    """
    planes = np.asarray(image, dtype=np.float64)
    planes = planes.reshape(-1, *planes.shape[-2:])
    means, fine, _, _ = _haar(planes)
    _, coarse, _, _ = _haar(means)
    s_fine = np.median(np.abs(fine)) * _MAD_TO_SIGMA
    s_coarse = 2.0 * np.median(np.abs(coarse)) * _MAD_TO_SIGMA  # means of 4: half the std
    if s_fine <= 0:
        return math.inf if s_coarse > 0 else 1.0
    return float(s_coarse / s_fine)


def sure_mse(
    denoiser: Callable[[torch.Tensor], torch.Tensor],
    y: torch.Tensor,
    variance: torch.Tensor,
    probe: torch.Tensor,
) -> torch.Tensor:
    """Per-pixel terms of the unbiased estimate of ``(denoiser(y) - x)**2``.

    Parameters
    ----------
    denoiser : callable
        Maps a ``(B, C, *S)`` tensor to one of the same shape; differentiable.
    y : (B, C, *S) tensor
        The noisy images.
    variance : (B, C, *S) tensor
        An unbiased estimate of the noise variance at every pixel (for a
        variance line ``a * x + b``: ``a * y + b``; it may be negative where
        ``y`` is).
    probe : (B, C, *S) tensor
        A Rademacher (+1/-1) random vector.

    Returns
    -------
    (B, C, *S) tensor
        Terms whose mean over pixels is the SURE estimate of the MSE (each
        term alone is noisy; their sum is the estimate).

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.full((1, 1, 64, 64), 0.5)
    >>> y = x + 0.1 * torch.randn(x.shape, generator=g)
    >>> probe = torch.randint(0, 2, x.shape, generator=g) * 2.0 - 1
    >>> est = sure_mse(lambda t: t, y, torch.full_like(y, 0.01), probe).mean()
    >>> round(float(est), 4)  # the identity's MSE is the noise variance
    0.01
    """
    out, divergence = weighted_divergence(denoiser, y, variance, probe)
    return (out - y.detach()) ** 2 - variance + 2 * divergence


def weighted_divergence(
    denoiser: Callable[[torch.Tensor], torch.Tensor],
    y: torch.Tensor,
    variance: torch.Tensor,
    probe: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(denoiser(y), terms)``: the terms sum to ``sum_i v_i d out_i / d y_i`` in expectation.

    One forward and one vector-Jacobian product for the Rademacher `probe`
    (Monte-Carlo SURE); both results are detached.
    """
    y = y.detach().requires_grad_(True)
    with torch.enable_grad():
        out = denoiser(y).float()
        (jp,) = torch.autograd.grad(out, y, grad_outputs=probe * variance)
    # (v p) . (J p) summed is sum_i v_i J_ii in expectation; jp = J^T (v p)
    return out.detach(), (jp * probe).detach()


class SureScore:
    """The SURE estimate of a network's MSE on fixed noisy validation patches.

    Parameters
    ----------
    noisy : (B, 1, *S) tensor
        Normalised noisy patches (what the network sees, no blind spot).
    lines : sequence of (a, b)
        The noise variance line of each patch in normalised units.
    seed : int
        Seed of the fixed Rademacher probes.
    probes : int
        Probes averaged per patch (each costs one forward and one backward).
    description : str
        How the noise was found, for messages and the record.
    """

    def __init__(
        self,
        noisy: torch.Tensor,
        lines: Sequence[tuple[float, float]],
        *,
        seed: int = 0,
        probes: int = 1,
        batch_size: int = 16,
        description: str = "",
    ) -> None:
        if len(lines) != noisy.shape[0]:
            raise ValueError(f"{len(lines)} variance lines for {noisy.shape[0]} patches")
        self.noisy = noisy.float()
        shape = (noisy.shape[0],) + (1,) * (noisy.ndim - 1)
        a = torch.tensor([p[0] for p in lines], dtype=torch.float32).reshape(shape)
        b = torch.tensor([p[1] for p in lines], dtype=torch.float32).reshape(shape)
        self.variance = a.to(noisy.device) * self.noisy + b.to(noisy.device)
        gen = torch.Generator().manual_seed(int(seed))
        self.probes = [
            (torch.randint(0, 2, noisy.shape, generator=gen) * 2.0 - 1).to(noisy.device)
            for _ in range(max(1, int(probes)))
        ]
        self.batch_size = max(1, int(batch_size))
        self.description = description
        self.noise_variance = float(self.variance.mean())

    def terms(self, net: torch.nn.Module) -> torch.Tensor:
        """Per-pixel SURE terms of `net` (in its current mode), averaged over the probes."""
        parts = []
        for i in range(0, self.noisy.shape[0], self.batch_size):
            sl = slice(i, i + self.batch_size)
            acc = None
            for probe in self.probes:
                t = sure_mse(net, self.noisy[sl], self.variance[sl], probe[sl])
                acc = t if acc is None else acc + t
            parts.append(acc / len(self.probes))
        return torch.cat(parts)

    def __call__(self, net: torch.nn.Module) -> tuple[float, torch.Tensor]:
        """``(estimated MSE, per-block means)`` of `net` (put it in eval mode first)."""
        terms = self.terms(net)
        return float(terms.mean()), block_means(terms)


def block_means(terms: torch.Tensor, block: int = _BLOCK) -> torch.Tensor:
    """Means of `terms` over blocks of ``block`` pixels per spatial axis (edges dropped)."""
    spatial = terms.shape[2:]
    sizes = [min(block, s) for s in spatial]
    trimmed = terms[(..., *[slice(0, s // k * k) for s, k in zip(spatial, sizes, strict=True)])]
    shape = list(trimmed.shape[:2])
    for s, k in zip(trimmed.shape[2:], sizes, strict=True):
        shape += [s // k, k]
    blocks = trimmed.reshape(shape)
    dims = tuple(range(3, blocks.ndim, 2))
    return blocks.mean(dim=dims).reshape(-1).detach().cpu()


def significant(candidate: torch.Tensor, best: torch.Tensor, z: float) -> bool:
    """Whether `candidate`'s block means are below `best`'s by more than `z` standard errors."""
    diff = (candidate - best.to(candidate.device)).double()
    n = diff.numel()
    if n < 2:
        return bool(diff.mean() < 0)
    se = float(diff.std(unbiased=True)) / math.sqrt(n)
    return float(diff.mean()) < -z * se


def sure_score(
    val: dict[str, Any],
    arrays: Sequence[Any],
    *,
    noise: dict[str, Any] | None = None,
    denoise: Callable[[np.ndarray, int], np.ndarray] | None = None,
    seed: int = 0,
    batch_size: int = 16,
    probes: int | None = None,
) -> tuple[SureScore | None, str]:
    """The SURE score of a self-supervised run's validation patches, or None and why not.

    Parameters
    ----------
    val : dict
        A :class:`~.trainset.TrainingSet`'s validation set: ``"y"`` (the
        normalised noisy patches), ``"offset"``, ``"scale"``, ``"raw"`` and
        ``"positions"`` (the source of each patch first).
    arrays : sequence of arrays
        The noisy image of each source, on which the noise is estimated
        (None for a source: its validation patches are used).
    noise : dict, optional
        Known noise parameters (as :func:`~.noise_estimation.estimate_noise`
        returns them) instead of estimates.
    denoise : callable, optional
        ``denoise(image, source) -> restored``: a trained model's restoration
        of a sample of a source, to estimate the noise where the image is
        flat (:func:`variance_line_guided`); without it, by
        :func:`~.noise_estimation.estimate_noise`.
    probes : int, optional
        Random probes per patch; None: enough for about 64 k probed pixels
        (at most 8), since with few validation pixels the probe's error
        would otherwise hide real differences between models.

    Returns
    -------
    score : SureScore or None
        None when the noise cannot be described by a variance line or looks
        spatially correlated; then the caller keeps its old score.
    description : str
        Plain words: the noise used, or why SURE was not used.
    """
    from .noise_estimation import estimate_noise

    sources = sorted({int(p[0]) for p in val["positions"]})
    lines_raw: dict[int, tuple[float, float]] = {}
    found: list[str] = []
    for s in sources:
        image = arrays[s] if s < len(arrays) else None
        if image is None:
            image = np.stack(
                [r for r, p in zip(val["raw"], val["positions"], strict=True) if int(p[0]) == s]
            )
        image = _sample(image)
        if noise is None:
            ratio = correlation_ratio(image)
            if ratio > CORRELATED_RATIO:
                return None, (
                    f"the noise looks spatially correlated (its level at 2 pixels is "
                    f"{ratio:.1f} times that at 1 pixel), so its variance cannot be estimated"
                )
        try:
            if noise is not None:
                lines_raw[s] = variance_line(noise)
                found.append(_describe(noise))
            elif denoise is not None:
                lines_raw[s] = variance_line_guided(image, denoise(image, s))
                a, b = lines_raw[s]
                found.append(f"variance {a:.3g} * intensity {'+-'[b < 0]} {abs(b):.3g}")
            else:
                params = estimate_noise(image)
                lines_raw[s] = variance_line(params)
                found.append(_describe(params))
        except ValueError as err:
            return None, f"the noise could not be estimated ({err})"
    lines = []
    for (s, *_), off, sc in zip(val["positions"], val["offset"], val["scale"], strict=True):
        a, b = lines_raw[int(s)]
        # var(u) for u = (z - off) / sc, with var(z) = a z + b
        lines.append((a / sc, (a * off + b) / sc**2))
    if noise is not None:
        text = f"SURE with the given {found[0]} noise"
    elif denoise is not None:
        text = (
            f"SURE with noise {'; '.join(found)}, estimated where the starting model "
            "finds the image flat"
        )
    else:
        text = f"SURE with estimated {', '.join(dict.fromkeys(found))} noise"
    if probes is None:  # about 64 k probed pixels per score, at most 8 probes
        probes = int(min(max(round(_PROBED / val["y"][0].numel() / len(lines)), 1), 8))
    score = SureScore(
        val["y"], lines, seed=seed, probes=probes, batch_size=batch_size, description=text
    )
    return score, text


def _sample(image: Any, side: int = 512, planes: int = 8) -> np.ndarray:
    """A central crop: at most `planes` consecutive planes of at most ``side x side``."""
    h, w = image.shape[-2:]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    flat = image.reshape(-1, h, w)
    first = max(0, (flat.shape[0] - planes) // 2)
    crop = flat[first : first + planes, top : top + side, left : left + side]
    return np.asarray(crop, dtype=np.float64)


def _describe(params: dict[str, Any]) -> str:
    name = params.get("noise", params.get("model"))
    values = ", ".join(f"{k} {v:.3g}" for k, v in params.items() if k not in ("noise", "model"))
    return f"{name} ({values})" if values else str(name)
