"""The Noise2Void blind spot: no masked pixel ever sees its own value."""

import numpy as np
import pytest
import torch

from napari_deconvnet.core.patches import blind_spot


@pytest.mark.parametrize(
    "spatial",
    [(5, 5), (7, 9), (16, 16), (33, 20), (2, 40), (1, 12), (4, 6, 6), (9, 11, 7), (3, 16, 16)],
)
def test_every_masked_pixel_gets_another_pixel_of_its_neighbourhood(spatial):
    ndim = len(spatial)
    n = int(np.prod(spatial))
    # unique values: a masked pixel that shows its own value is caught exactly
    x = torch.arange(3 * n, dtype=torch.float64).reshape(3, 1, *spatial)
    radius = 2
    coords = np.stack(np.unravel_index(np.arange(n), spatial), -1)
    total = 0
    for seed in range(60):
        gen = torch.Generator().manual_seed(seed)
        masked, mask = blind_spot(x, gen, radius=radius)
        assert masked.shape == x.shape and mask.dtype == torch.bool
        # unmasked pixels are untouched
        assert torch.equal(masked[~mask], x[~mask])
        for b in range(3):
            m = mask[b, 0].numpy().ravel()
            got = masked[b, 0].numpy().ravel()[m].astype(np.int64) - b * n
            where = coords[m]
            source = coords[got]
            assert np.all(got >= 0) and np.all(got < n)
            # never itself ...
            assert np.all((source != where).any(-1)), f"seed {seed}: a pixel sees itself"
            # ... and always within the neighbourhood
            assert np.all(np.abs(source - where) <= radius)
            total += int(m.sum())
    assert total > 0
    if min(spatial) > 2 * radius:
        # one masked pixel per cell (cells cut by the border less often): on
        # average prod(size / cell) per patch, none dropped at the borders
        cell = 6 if ndim == 2 else 4
        expected = 60 * 3 * np.prod([s / cell for s in spatial])
        assert abs(total - expected) < 0.15 * expected


def test_border_pixels_are_masked_too():
    # the old mirror leaked exactly at positions 0 and 1; they must still be
    # masked (not simply skipped), with a value from inside the image
    x = torch.arange(64 * 64, dtype=torch.float64).reshape(1, 1, 64, 64)
    hits = np.zeros((64, 64), int)
    for seed in range(200):
        _, mask = blind_spot(x, torch.Generator().manual_seed(seed))
        hits += mask[0, 0].numpy()
    assert hits[0].sum() > 0 and hits[1].sum() > 0 and hits[:, 0].sum() > 0


@pytest.mark.parametrize("replacement", ["random", "median"])
@pytest.mark.parametrize("spatial", [(7, 9), (16, 16), (33, 20), (2, 40), (4, 6, 6), (9, 11, 7)])
def test_no_masked_pixel_is_shown_its_own_value_anywhere(spatial, replacement):
    # a neighbour's replacement could be a masked pixel's value, a pixel or two from it
    # (74 of 6,810 masked pixels over 30 seeds of 64 x 64 patches; the median once)
    total = 0
    for seed in range(40):
        x = torch.from_numpy(np.random.default_rng(seed).random((2, 2, *spatial)))
        gen = torch.Generator().manual_seed(seed)
        masked, mask = blind_spot(x, gen, replacement=replacement)
        assert torch.equal(masked[~mask], x[~mask])
        for b, c, *p in mask.nonzero().tolist():
            total += 1
            own = x[(b, c, *p)]
            assert not bool((masked[b, c] == own).any()), f"seed {seed}: {p} is shown"
    assert total > 0
