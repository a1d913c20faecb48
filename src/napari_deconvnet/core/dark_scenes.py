"""Training scenes of objects in the dark: a bead slide, single molecules, a few filaments.

Fluorescence images of sparse objects often have no background at all once
the camera's offset is subtracted (or photon counts of an EMCCD): beads on
a slide, single molecules, spots of an smFISH field, a few filaments. The
shipped deconvolution model never trained on such a scene (every training
scene has a dim background, and the sampler skipped nearly empty regions),
and on spots in the dark ``deconv-2d`` falls below a tuned Richardson-Lucy:
1.3 dB on average and 2.4 at worst in ``benchmarks/dark_scenes.py`` (up to
9 dB on bead fields of a first sweep; ``deconv-3d`` 3.2 to 4.3 dB at 500
photons). RL's positivity serves a black background
well. :func:`sparse_scene` draws such scenes for training
(``scripts/train_models.py --sparse-scenes``).

Every function draws from the numpy Generator it is given, so a seed fixes
the data.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from scipy.special import erf

from .phantoms import random_walk

__all__ = ["SPOT_SIGMA", "integrated_spots", "sparse_scene"]

#: Width (sigma, pixels) of :func:`sparse_scene`'s spots, per scene: from sub-pixel
#: (a binned camera, a low-magnification objective) to well sampled
SPOT_SIGMA = (0.3, 1.5)


def integrated_spots(
    rng: np.random.Generator, shape: tuple[int, ...], count: int, sigma: float
) -> np.ndarray:
    """`count` Gaussian spots of about `sigma` pixels (each 0.8-1.2 times it) at random
    sub-pixel places, each integrated over the pixels' areas (what a camera records
    of a point), brightness 0.2 to 1; not normalised. Each spot is drawn within 6
    of its widths of its centre (beyond, its light is under 1e-8 of it)."""
    image = np.zeros(shape)
    for _ in range(count):
        width = sigma * rng.uniform(0.8, 1.2) * math.sqrt(2)
        reach = int(math.ceil(6 * width / math.sqrt(2))) + 1
        window, profiles = [], []
        for n in shape:
            centre = rng.uniform(0, n)
            lo, hi = max(0, int(centre) - reach), min(n, int(centre) + reach + 1)
            edges = np.arange(lo, hi + 1, dtype=np.float64)
            window.append(slice(lo, hi))
            profiles.append(np.diff(erf((edges - centre) / width)) / 2)
        spot = profiles[0]
        for p in profiles[1:]:
            spot = np.multiply.outer(spot, p)
        image[tuple(window)] += rng.uniform(0.2, 1.0) * spot
    return image


def _dark_filaments(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """1 to 5 thin filaments (smooth random walks, sigma 0.4-1.0 pixel) in the dark."""
    image = np.zeros(shape)
    for _ in range(int(rng.integers(1, 6))):
        line = np.zeros(shape)
        line[random_walk(rng, shape, int(rng.integers(30, 3 * max(shape))), 0.2)] = 1.0
        width = rng.uniform(0.4, 1.0)
        image += rng.uniform(0.3, 1.0) * ndimage.gaussian_filter(line, width) * width * 2.5
    return image


def sparse_scene(
    rng: np.random.Generator, shape: tuple[int, ...], spot_share: float = 0.7
) -> np.ndarray:
    """Objects on an exactly black background, maximum 1 (float32).

    Spots (in `spot_share` of the scenes, 7 in 10 by default): 2 to
    ``pixels / 60`` of them (log-uniform: from a handful to a crowded field),
    integrated over the pixels, of one width per scene from :data:`SPOT_SIGMA`;
    filaments (the others, and beside the spots in a fifth of them): 1 to 5
    thin ones. Nothing else: zero between them.
    """
    if not 0.0 <= spot_share <= 1.0:
        raise ValueError(f"spot_share must be in [0, 1], got {spot_share}")
    shape = tuple(int(s) for s in shape)
    image = np.zeros(shape)
    kind = rng.random()
    if kind < spot_share:
        most = max(3, math.prod(shape) // 60)
        count = int(round(math.exp(rng.uniform(math.log(2), math.log(most)))))
        image += integrated_spots(rng, shape, count, rng.uniform(*SPOT_SIGMA))
    if kind >= spot_share or rng.random() < 0.2:
        image += _dark_filaments(rng, shape)
    top = image.max()
    return (image / top if top > 0 else image).astype(np.float32)
