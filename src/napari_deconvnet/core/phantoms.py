"""Procedural training data: fluorescence-like phantoms in 2D and 3D, and random PSFs.

The package's own generators, used by :func:`napari_deconvnet.adapt`, the
fine-tuning rehearsal of :func:`napari_deconvnet.train` and the scripts
that train the shipped models (so that the Train widget can use them too):

- :func:`phantom`: one to three structures of :data:`PHANTOMS` (beads,
  filaments, nuclei, membranes, textures), in 2D or 3D;
- :func:`cells_2d` and :func:`cells_3d`: cells with textured bodies and
  nuclei, spots and filaments on a smooth background, the shipped models'
  training scenes;
- :func:`dead_leaves`: photograph-like scenes of occluding shapes with
  sizes spread over every scale (the "dead leaves" model of natural images),
  textured and softly blurred, for denoisers of photographs;
- :func:`bright_objects`: a few objects tens to hundreds of times brighter
  than the scene (beads, a bright cell, debris), added to a scene so that a
  network learns images of high dynamic range;
- :func:`random_psf`: a PSF of the shipped deconvolution models' training
  family (Gaussian, possibly anisotropic; Airy in 2D, widefield in 3D);
  :func:`wide_psf`: 2D shapes beyond it (elongated, defocus, motion);
- :func:`misjudged_psf`: a PSF as a user might misjudge it, wider or
  narrower than the one that blurred the image, for training that does
  not trust the given PSF blindly.

Every function draws from the numpy Generator it is given, so a seed fixes
the data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.special import expit

__all__ = [
    "BRIGHT_CONTRAST",
    "PHANTOMS",
    "bright_objects",
    "cells_2d",
    "cells_3d",
    "check_kinds",
    "dead_leaves",
    "misjudged_psf",
    "phantom",
    "random_psf",
    "random_walk",
    "wide_psf",
]

#: Peak of :func:`bright_objects` over the scene's 1, log-uniform (the brightest object).
BRIGHT_CONTRAST = (3.0, 300.0)

#: Width of the PSF a user gives over the true one (:func:`misjudged_psf`), log-uniform.
MISJUDGED_WIDTH = (0.7, 1.45)

#: The kinds of structure :func:`phantom` draws.
PHANTOMS = ("beads", "filaments", "nuclei", "membranes", "textures")


# ---------------------------------------------------------------- phantoms


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (field - field.min()) / (np.ptp(field) + 1e-12)


def _beads(rng, shape):
    image = np.zeros(shape)
    n = int(rng.integers(5, 10 + math.prod(shape) // 150))
    index = tuple(rng.integers(0, s, n) for s in shape)
    image[index] = rng.uniform(0.2, 1.0, n)
    sigma = rng.uniform(0.5, 2.0)
    return ndimage.gaussian_filter(image, sigma) * (2 * np.pi * sigma**2) ** (len(shape) / 2)


def random_walk(
    rng: np.random.Generator, shape: tuple[int, ...], steps: int, wander: float
) -> tuple[np.ndarray, ...]:
    """The pixels of a smooth random walk of `steps` unit steps from a random start in
    `shape`, up to where it first leaves it: the direction drifts a little each step
    (by up to `wander`, a random share of it per walk). An index tuple for `shape`."""
    ndim = len(shape)
    drift = np.cumsum(rng.normal(0, rng.uniform(0.02, wander), (steps, ndim)), axis=0)
    unit = rng.standard_normal(ndim) + drift
    unit /= np.linalg.norm(unit, axis=1, keepdims=True) + 1e-12
    path = rng.uniform(0, 1, ndim) * shape + np.cumsum(unit, axis=0)
    inside = np.all((path >= 0) & (path < shape), axis=1)
    end = steps if inside.all() else int(np.argmin(inside))
    return tuple(path[:end].astype(int).T)


def _filaments(rng, shape):
    image = np.zeros(shape)
    for _ in range(int(rng.integers(2, 14))):
        index = random_walk(rng, shape, int(rng.integers(30, 4 * max(shape))), 0.25)
        image[index] = rng.uniform(0.3, 1.0)
    return ndimage.gaussian_filter(image, rng.uniform(0.5, 1.2)) * 3


def _grid(shape):
    return np.stack(np.meshgrid(*[np.arange(s, dtype=np.float32) for s in shape], indexing="ij"))


def _nuclei(rng, shape):
    grid = _grid(shape)
    image = np.zeros(shape, np.float32)
    for _ in range(int(rng.integers(2, 12))):
        centre = rng.uniform(0, 1, len(shape)) * shape
        radii = rng.uniform(4, max(6, min(shape) / 4), len(shape))
        r2 = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True))
        body = expit((1 - r2) * rng.uniform(6, 30))  # a soft edge
        texture = 1 + rng.uniform(0, 0.6) * (_smooth_field(rng, shape, rng.uniform(1, 3)) - 0.5)
        image += rng.uniform(0.3, 1.0) * body * texture
    return image


def _membranes(rng, shape):
    n = int(rng.integers(4, 20))
    seeds = rng.uniform(0, 1, (n, len(shape))) * shape
    points = _grid(shape).reshape(len(shape), -1).T
    dist = np.sort(((points[:, None, :] - seeds[None]) ** 2).sum(-1), axis=1)
    gap = (np.sqrt(dist[:, 1]) - np.sqrt(dist[:, 0])).reshape(shape)
    width = rng.uniform(0.6, 2.0)
    lines = np.exp(-(gap**2) / (2 * width**2))
    return lines * (0.5 + 0.5 * _smooth_field(rng, shape, rng.uniform(4, 12)))


def _textures(rng, shape):
    field = _smooth_field(rng, shape, rng.uniform(1.0, 6.0))
    if rng.random() < 0.5:
        field = np.abs(field - rng.uniform(0.3, 0.7)) * 2
    return field ** rng.uniform(0.7, 2.0)


def bright_objects(
    rng: Any, shape: tuple[int, ...], *, contrast: Any = BRIGHT_CONTRAST
) -> tuple[np.ndarray, float]:
    """A few small objects far brighter than a scene whose level is 1.

    Fluorescence images often hold a handful of beads, a dividing cell or
    a speck of debris tens to hundreds of times brighter than the rest:
    normalised by the image's percentiles, the scene then spans a few
    hundredths and the bright objects lie far above 1, which a network
    trained on scenes that fill [0, 1] has never seen. Added to a scene of
    :func:`phantom` or :func:`cells_2d`, this teaches it such images.

    Parameters
    ----------
    rng : numpy Generator or int
    shape : tuple of int
        2 or 3 sizes.
    contrast : float or (float, float)
        Peak of the brightest object; a pair is drawn from log-uniformly
        (:data:`BRIGHT_CONTRAST`).

    Returns
    -------
    (ndarray of float32, float)
        The objects alone (add them to the scene), and the peak drawn. One to
        twelve objects: point-like beads (Gaussian, sigma 0.7-2.5 pixels) or
        small bright cells (smoothed ellipses, radii 3-10 pixels), each at
        0.2 to 1 times the peak.

    Examples
    --------
    >>> objects, peak = bright_objects(0, (64, 64), contrast=100.0)
    >>> peak, bool(abs(objects.max() - 100.0) < 1e-3), bool((objects >= 0).all())
    (100.0, True, True)
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ValueError(f"bright_objects shape must hold 2 or 3 positive sizes, got {shape}")
    rng = np.random.default_rng(rng)
    if np.ndim(contrast) == 0:
        peak = float(contrast)
    else:
        low, high = (float(c) for c in contrast)
        peak = float(math.exp(rng.uniform(math.log(low), math.log(high))))
    if not np.isfinite(peak) or peak <= 0:
        raise ValueError(f"bright_objects contrast must be positive and finite, got {contrast!r}")
    image = np.zeros(shape)
    grid = np.indices(shape, sparse=True)
    for _ in range(int(rng.integers(1, 13))):
        centre = [rng.uniform(0, s) for s in shape]
        if rng.random() < 0.6:  # a bead: a blurred point
            sigma = rng.uniform(0.7, 2.5)
            r2 = sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True))
            part = np.exp(-0.5 * r2 / sigma**2)
        else:  # a bright cell: an ellipse, smoothed at its edge
            radii = rng.uniform(3, 10, len(shape))
            r2 = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True))
            part = expit((1 - np.sqrt(r2)) * radii.min() / 0.8)
        image = np.maximum(image, rng.uniform(0.2, 1.0) * part)
    image *= peak / image.max()
    return image.astype(np.float32), peak


_KINDS = {
    "beads": _beads,
    "filaments": _filaments,
    "nuclei": _nuclei,
    "membranes": _membranes,
    "textures": _textures,
}


def phantom(
    shape: tuple[int, ...], kinds: Any = None, rng: Any = None, *, mix: int | None = None
) -> np.ndarray:
    """A random fluorescence-like image in [0, 1] (99.5th percentile at 1).

    Parameters
    ----------
    shape : tuple of int
        2 or 3 sizes.
    kinds : str or sequence of str, optional
        Structures from :data:`PHANTOMS` to draw from (all by default).
    rng : numpy Generator or int, optional
    mix : int, optional
        How many structures to overlay (default: 1 to 3 at random).

    Returns
    -------
    ndarray of float32
        Dim background, structures of random brightness, no noise.

    Examples
    --------
    >>> image = phantom((32, 32), "nuclei", rng=0)
    >>> image.shape, image.dtype, bool(image.min() >= 0)
    ((32, 32), dtype('float32'), True)
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ValueError(f"phantom shape must hold 2 or 3 positive sizes, got {shape}")
    names = check_kinds(kinds)
    rng = np.random.default_rng(rng)
    count = int(rng.integers(1, min(3, len(names)) + 1)) if mix is None else int(mix)
    image = rng.uniform(0, 0.1) * _smooth_field(rng, shape, max(shape) / 4)
    for name in rng.choice(names, size=count, replace=count > len(names)):
        part = _KINDS[str(name)](rng, shape)
        top = np.percentile(part, 99.5)
        image = image + rng.uniform(0.4, 1.0) * part / (top if top > 0 else 1.0)
    top = np.percentile(image, 99.5)
    return (np.clip(image, 0, None) / (top if top > 0 else 1.0)).astype(np.float32)


def check_kinds(kinds: Any) -> list[str]:
    """The phantom kinds asked for (all by default); ValueError for unknown ones."""
    if kinds is None:
        return list(PHANTOMS)
    names = [kinds] if isinstance(kinds, str) else list(kinds)
    bad = [k for k in names if k not in _KINDS]
    if not names or bad:
        raise ValueError(f"unknown phantom kinds {bad or names}; choose from {PHANTOMS}")
    return names


# ---------------------------------------------------------------- photograph-like scenes

#: Radii of :func:`dead_leaves`' shapes: density proportional to r**-3 from the
#: smallest radius (pixels, drawn log-uniform in this range per scene: busy or
#: calm scenes) to the largest (this fraction of the image's longer side).
LEAF_MIN_RADIUS = (1.0, 6.0)
LEAF_MAX_RADIUS = 0.3
#: :func:`dead_leaves` stops drawing shapes once this share of pixels is covered.
LEAF_COVERAGE = 0.998


def _leaf_radii(rng: np.random.Generator, n: int, r_min: float, r_max: float) -> np.ndarray:
    """`n` radii of density proportional to r**-3 on [r_min, r_max] (inverse CDF)."""
    u = rng.random(n)
    return (r_min**-2 - u * (r_min**-2 - r_max**-2)) ** -0.5


def dead_leaves(
    rng: np.random.Generator,
    shape: tuple[int, int] = (256, 256),
    *,
    texture: float = 0.5,
    blur: tuple[float, float] = (0.0, 1.0),
    max_shapes: int = 20000,
) -> np.ndarray:
    """A photograph-like grayscale scene: opaque shapes of every size occluding each other.

    The dead-leaves model: ellipses dropped one behind the other until the
    image is covered (:data:`LEAF_COVERAGE`), their radii drawn with a density
    proportional to r**-3 (:data:`LEAF_MIN_RADIUS`, :data:`LEAF_MAX_RADIUS`),
    which gives the scale
    invariance, the sharp occlusion edges at every orientation and the power
    spectrum close to 1/f**2 of natural photographs. With probability
    `texture` a shape is not flat: it carries one of three smooth random
    fields (fine, medium or coarse grain) at a random amplitude, or a linear
    shading. The scene is then blurred by a Gaussian of sigma uniform in
    `blur` (optics), and lies in [0, 1].

    Denoisers trained on such scenes learn edges and textures in general
    rather than the few photographs a package can bundle; the shipped
    ``denoise-2d``'s training script draws them with ``--dead-leaves``.
    """
    h, w = (int(n) for n in shape)
    if h < 1 or w < 1:
        raise ValueError(f"dead_leaves: shape must be positive, got {shape}")
    r_min = math.exp(rng.uniform(*np.log(LEAF_MIN_RADIUS)))
    r_max = max(r_min + 1.0, LEAF_MAX_RADIUS * max(h, w))
    fields = [_smooth_field(rng, (h, w), s) - 0.5 for s in (1.0, 3.0, 8.0)]
    image = np.zeros((h, w), np.float32)
    free = np.ones((h, w), bool)
    target = (1.0 - LEAF_COVERAGE) * h * w
    left = h * w
    drawn = 0
    while left > target and drawn < max_shapes:
        batch = 256
        radii = _leaf_radii(rng, batch, r_min, r_max)
        aspect = rng.uniform(0.4, 1.0, batch)  # minor over major axis
        angle = rng.uniform(0.0, np.pi, batch)
        cy, cx = (
            rng.uniform(-r_max / 2, h + r_max / 2, batch),
            rng.uniform(-r_max / 2, w + r_max / 2, batch),
        )
        values = rng.beta(1.2, 1.2, batch)
        textured = rng.random(batch) < texture
        which = rng.integers(0, 4, batch)  # three fields or a shading
        amplitude = rng.uniform(0.1, 0.6, batch)
        for i in range(batch):
            drawn += 1
            r = radii[i]
            y0, y1 = max(int(cy[i] - r) - 1, 0), min(int(cy[i] + r) + 2, h)
            x0, x1 = max(int(cx[i] - r) - 1, 0), min(int(cx[i] + r) + 2, w)
            if y0 >= y1 or x0 >= x1:
                continue
            yy = np.arange(y0, y1, dtype=np.float32)[:, None] - cy[i]
            xx = np.arange(x0, x1, dtype=np.float32)[None, :] - cx[i]
            c, s = math.cos(angle[i]), math.sin(angle[i])
            u, v = c * xx + s * yy, (-s * xx + c * yy) / aspect[i]
            mask = (u * u + v * v <= r * r) & free[y0:y1, x0:x1]
            if not mask.any():
                continue
            if textured[i]:
                if which[i] < 3:
                    fill = values[i] + amplitude[i] * fields[which[i]][y0:y1, x0:x1][mask]
                else:  # a linear shading across the shape
                    fill = values[i] + amplitude[i] * 0.5 * u[mask] / r
            else:
                fill = values[i]
            image[y0:y1, x0:x1][mask] = fill
            free[y0:y1, x0:x1][mask] = False
            left -= int(mask.sum())
            if left <= target or drawn >= max_shapes:
                break
    if free.any():  # the last uncovered pixels take their nearest shape's value
        index = ndimage.distance_transform_edt(free, return_distances=False, return_indices=True)
        image = image[tuple(index)]
    sigma = rng.uniform(*blur)
    if sigma > 0.05:
        image = ndimage.gaussian_filter(image, sigma, mode="reflect")
    return np.clip(image, 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------- the shipped models' scenes


def _smooth_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma, mode="wrap")
    return (field - field.min()) / (np.ptp(field) + 1e-12)


def _sharp(rng: np.random.Generator, sharp: float) -> bool:
    # no draw at sharp=0, so that seeded scenes stay what they were
    return sharp > 0 and bool(rng.random() < sharp)


def cells_2d(rng: np.random.Generator, size: int = 256, sharp: float = 0.0) -> np.ndarray:
    """A fluorescence-like image: cells, spots and filaments on a smooth background.

    Parameters
    ----------
    rng : numpy Generator
    size : int
    sharp : float
        The probability of a sharp scene: spots and filaments narrower than
        any PSF (down to a pixel), and no blur of the whole image, as
        sub-resolution structures are in a microscope's object. Otherwise
        the scene is smoothed by a Gaussian of sigma 0.5 to 2 pixels.

    Returns
    -------
    (size, size) ndarray of float32
        In [0, 1], maximum 1.
    """
    crisp = _sharp(rng, sharp)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    image = rng.uniform(0.0, 0.25) * _smooth_noise(rng, size, rng.uniform(20, 60))
    for _ in range(rng.integers(0, 14)):  # cells with a textured body and a nucleus
        cy, cx = rng.uniform(0, size, 2)
        a, b = rng.uniform(6, 40, 2)
        t = rng.uniform(0, np.pi)
        u = ((xx - cx) * np.cos(t) + (yy - cy) * np.sin(t)) / a
        v = (-(xx - cx) * np.sin(t) + (yy - cy) * np.cos(t)) / b
        r2 = u**2 + v**2
        body = (r2 < 1) * rng.uniform(0.15, 0.8)
        texture = 1 + rng.uniform(0, 0.6) * (_smooth_noise(rng, size, rng.uniform(1, 4)) - 0.5)
        image += body * texture
        if rng.random() < 0.6:
            image += (r2 < rng.uniform(0.1, 0.4)) * rng.uniform(0.1, 0.6)
    for sigma in rng.uniform(0.4 if crisp else 0.8, 4.0, size=rng.integers(0, 4)):  # spots
        spots = np.zeros((size, size))
        n = rng.integers(5, 120)
        spots[rng.integers(0, size, n), rng.integers(0, size, n)] = rng.uniform(0.2, 1.0, n)
        image += ndimage.gaussian_filter(spots, sigma) * 2 * np.pi * sigma**2
    lines = np.zeros((size, size))
    for _ in range(rng.integers(0, 25)):  # filaments: smooth random walks
        y, x = rng.uniform(0, size, 2)
        angle = rng.uniform(0, 2 * np.pi)
        bend = rng.uniform(0.01, 0.2)
        level = rng.uniform(0.2, 1.0)
        for _ in range(rng.integers(30, 300)):
            angle += rng.normal(0, bend)
            y, x = y + np.sin(angle), x + np.cos(angle)
            if not (0 <= y < size and 0 <= x < size):
                break
            lines[int(y), int(x)] = level
    width = rng.uniform(0.5, 1.5)
    image += ndimage.gaussian_filter(lines, 0.4 if crisp else width) * (1.5 if crisp else 3)
    scene_blur = rng.uniform(0.5, 2.0)
    if not crisp:
        image = ndimage.gaussian_filter(image, scene_blur)
    image = np.clip(image, 0, None) ** rng.uniform(0.7, 1.3)
    return (image / (image.max() + 1e-12)).astype(np.float32)


def cells_3d(
    rng: np.random.Generator, shape: tuple[int, int, int], sharp: float = 0.0
) -> np.ndarray:
    """A fluorescence-like volume: textured cells with nuclei, spots, filaments.

    `sharp`: the probability of a sharp scene (see :func:`cells_2d`).

    Returns
    -------
    ndarray of float32 of `shape`
        In [0, 1], maximum 1.
    """
    crisp = _sharp(rng, sharp)
    zz, yy, xx = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in shape), indexing="ij")
    smooth = ndimage.gaussian_filter(rng.standard_normal(shape), rng.uniform(4, 12), mode="wrap")
    image = rng.uniform(0, 0.2) * (smooth - smooth.min()) / (np.ptp(smooth) + 1e-12)
    for _ in range(rng.integers(1, 12)):
        c = rng.uniform(0, 1, 3) * np.array(shape)
        radii = rng.uniform(4, 22, 3) * np.array([rng.uniform(0.4, 1.0), 1, 1])
        r2 = ((zz - c[0]) / radii[0]) ** 2 + ((yy - c[1]) / radii[1]) ** 2
        r2 += ((xx - c[2]) / radii[2]) ** 2
        texture = ndimage.gaussian_filter(rng.standard_normal(shape), rng.uniform(0.8, 3))
        texture = 1 + rng.uniform(0, 0.6) * texture / (texture.std() + 1e-12) * 0.5
        image += (r2 < 1) * rng.uniform(0.15, 0.7) * texture
        if rng.random() < 0.6:
            image += (r2 < rng.uniform(0.1, 0.4)) * rng.uniform(0.1, 0.5)
    for sigma in rng.uniform(0.4 if crisp else 0.7, 2.5, size=rng.integers(0, 3)):  # spots
        spots = np.zeros(shape)
        n = rng.integers(5, 80)
        spots[tuple(rng.integers(0, s, n) for s in shape)] = rng.uniform(0.3, 1.0, n)
        image += ndimage.gaussian_filter(spots, sigma) * (2 * np.pi) ** 1.5 * sigma**3 * 0.5
    lines = np.zeros(shape)
    for _ in range(rng.integers(0, 15)):  # filaments: smooth random walks
        p = rng.uniform(0, 1, 3) * np.array(shape)
        d = rng.standard_normal(3)
        level = rng.uniform(0.3, 1.0)
        for _ in range(rng.integers(20, 200)):
            d = d / np.linalg.norm(d) + rng.normal(0, 0.15, 3)
            p = p + d / np.linalg.norm(d)
            if not all(0 <= v < s for v, s in zip(p, shape, strict=True)):
                break
            lines[tuple(int(v) for v in p)] = level
    width = rng.uniform(0.5, 1.2)
    image += ndimage.gaussian_filter(lines, 0.4 if crisp else width) * (1.5 if crisp else 4)
    scene_blur = rng.uniform(0.4, 1.2)
    if not crisp:
        image = ndimage.gaussian_filter(image, scene_blur)
    image = np.clip(image, 0, None) ** rng.uniform(0.7, 1.3)
    return (image / (image.max() + 1e-12)).astype(np.float32)


def random_psf(
    rng: np.random.Generator,
    ndim: int,
    axial_ratio: tuple[float, float] = (1.0, 2.5),
    wide: float = 0.0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """A PSF of the shipped deconvolution models' training family, with its description.

    Half Gaussians (lateral sigma 0.7-3.5 px in 2D, 0.7-2.5 px in 3D, up to
    15% anisotropic; in 3D an axial sigma `axial_ratio` times the lateral
    one), half Airy disks (2D) or widefield PSFs (3D) at NA 0.8-1.4 and
    520 nm, whose pixel size puts the first zero 1.5-6 px (3.5 px in 3D)
    from the centre.

    In 2D, a share `wide` of the draws comes instead from shapes beyond
    that family (:func:`wide_psf`): elongated Gaussians at any angle
    (astigmatism, scanning), defocus disks and short motion streaks (drift
    during the exposure), a third each. With ``wide=0`` (the default) the
    draws are exactly those of the family above.

    Returns
    -------
    psf : ndarray
        Normalised to sum 1.
    description : dict
        ``{"kind": ..., **parameters}`` for the training record.
    """
    from .psf import make_psf

    if ndim == 2 and wide > 0 and rng.random() < wide:
        return wide_psf(rng)
    if rng.random() < 0.5:
        lateral = rng.uniform(0.7, 3.5 if ndim == 2 else 2.5)
        sigma = [lateral * rng.uniform(0.85, 1.15), lateral]
        if ndim == 3:
            sigma = [lateral * rng.uniform(*axial_ratio), *sigma]
        # 3 sigma each side, at most 12 px (a 3D training region is 32 planes deep)
        size = [2 * min(int(math.ceil(3 * s)), 12) + 1 for s in sigma]
        kernel = make_psf("gaussian", shape=size, sigma=sigma)
        return kernel, {"kind": "gaussian", "sigma": [round(s, 3) for s in sigma]}
    na = rng.uniform(0.8, 1.4)
    ri = 1.518 if na > 1.0 else 1.33
    zero = rng.uniform(1.5, 6.0 if ndim == 2 else 3.5)  # first zero, in pixels
    pixel = 0.61 * 520 / na / zero
    params = {"wavelength": 520.0, "na": na, "refractive_index": ri, "pixel_size": pixel}
    if ndim == 2:
        side = 2 * int(math.ceil(2.5 * zero)) + 1
        kernel = make_psf("airy", shape=(side, side), **params)
    else:
        side = 2 * int(math.ceil(2.0 * zero)) + 1
        params["z_step"] = pixel * rng.uniform(1.5, 3.0)
        kernel = make_psf("widefield", shape=(min(side, 15), side, side), **params)
    return kernel, {"kind": "airy" if ndim == 2 else "widefield", **params}


def _rotated_gaussian(sigmas: tuple[float, float], angle: float, size: int) -> np.ndarray:
    """A 2D Gaussian with standard deviations `sigmas` along axes turned by `angle`."""
    r = np.arange(size) - size // 2
    y, x = np.meshgrid(r, r, indexing="ij")
    c, s = math.cos(angle), math.sin(angle)
    u, v = c * x + s * y, -s * x + c * y
    return np.exp(-0.5 * ((u / sigmas[0]) ** 2 + (v / sigmas[1]) ** 2))


def wide_psf(rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """A 2D PSF beyond the Gaussian/Airy family, with its description.

    A third each:

    - ``"elongated"``: a Gaussian 1.2 to 2.5 times longer along one axis, at
      any angle (sigmas 0.6-3.5 px; astigmatism, a scanning direction);
    - ``"defocus"``: a uniform disk of radius 1.5-5 px, its edge softened by a
      Gaussian of sigma 0.3-0.8 px (a lens out of focus);
    - ``"motion"``: a straight streak 3-15 px long at any angle, softened the
      same way (drift or vibration during the exposure).

    Normalised to sum 1, odd-sized and centred.
    """
    kind = ("elongated", "defocus", "motion")[int(rng.integers(3))]
    angle = float(rng.uniform(0, math.pi))
    if kind == "elongated":
        short = float(rng.uniform(0.6, 1.8))
        long = min(short * float(rng.uniform(1.2, 2.5)), 3.5)
        size = 2 * min(int(math.ceil(3 * long)), 12) + 1
        kernel = _rotated_gaussian((long, short), angle, size)
        info = {"sigma": [round(long, 3), round(short, 3)], "angle": round(angle, 3)}
    else:
        soft = float(rng.uniform(0.3, 0.8))
        if kind == "defocus":
            radius = float(rng.uniform(1.5, 5.0))
            half = int(math.ceil(radius + 3 * soft))
            r = np.arange(-half, half + 1)
            y, x = np.meshgrid(r, r, indexing="ij")
            # the disk's area per pixel, from a 4x4 sub-grid (smooth in the radius)
            sub = (np.arange(4) + 0.5) / 4 - 0.5
            cover = np.zeros((2 * half + 1,) * 2)
            for dy in sub:
                for dx in sub:
                    cover += (y + dy) ** 2 + (x + dx) ** 2 <= radius**2
            kernel = cover / 16
            info = {"radius": round(radius, 3)}
        else:
            length = float(rng.uniform(3.0, 15.0))
            half = int(math.ceil(length / 2 + 3 * soft))
            r = np.arange(-half, half + 1)
            y, x = np.meshgrid(r, r, indexing="ij")
            kernel = np.zeros((2 * half + 1,) * 2)
            # points every 0.1 px along the segment, bilinear onto the grid
            for t in np.linspace(-length / 2, length / 2, int(length * 10) + 1):
                py, px = t * math.sin(angle), t * math.cos(angle)
                kernel += np.clip(1 - abs(y - py), 0, None) * np.clip(1 - abs(x - px), 0, None)
            info = {"length": round(length, 3), "angle": round(angle, 3)}
        kernel = ndimage.gaussian_filter(kernel, soft, mode="constant")
        info["soften"] = round(soft, 3)
    kernel = np.clip(kernel, 0, None)
    kernel = (kernel / kernel.sum()).astype(np.float32)
    return kernel, {"kind": kind, **info}


def scaled_psf(kernel: np.ndarray, factor: float) -> np.ndarray:
    """`kernel` magnified by `factor` about its centre pixel (``n // 2``), sum 1.

    Resampled with cubic splines on an odd grid ``factor`` times as wide, so a
    Gaussian of sigma ``s`` becomes one of sigma ``factor * s`` and an Airy
    disk's first zero moves out by `factor`; any shape keeps its form.
    """
    kernel = np.asarray(kernel, np.float64)
    centre = [n // 2 for n in kernel.shape]
    half = [max(1, int(math.ceil(c * factor))) for c in centre]
    grids = np.meshgrid(*[np.arange(-h, h + 1) for h in half], indexing="ij")
    coords = [g / factor + c for g, c in zip(grids, centre, strict=True)]
    out = ndimage.map_coordinates(kernel, coords, order=3, mode="constant", cval=0.0)
    out = np.clip(out, 0, None)
    return (out / out.sum()).astype(np.float32)


def misjudged_psf(
    rng: np.random.Generator, kernel: np.ndarray, width: tuple[float, float] = MISJUDGED_WIDTH
) -> tuple[np.ndarray, float]:
    """The PSF a user might give for an image blurred by `kernel`, and its width factor.

    Users rarely know their PSF exactly: a Gaussian's sigma is guessed, a
    theoretical PSF is narrower than the aberrated real one, a measured one is
    broadened by the bead's size. A deconvolution network trained only on
    the exact PSF trusts it blindly and over-sharpens (rings) when it is too
    wide. This returns `kernel` magnified by a factor drawn log-uniformly from
    `width` (:func:`scaled_psf`), to be given to the network while the image
    is blurred by `kernel`.
    """
    factor = math.exp(rng.uniform(math.log(width[0]), math.log(width[1])))
    return scaled_psf(kernel, factor), factor
