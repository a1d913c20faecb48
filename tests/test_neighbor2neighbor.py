"""Neighbor2Neighbor self-supervision: the neighbour sub-sampler, its loss, and training."""

import numpy as np
import pytest
import torch

import napari_deconvnet as dn
from napari_deconvnet.core.patches import neighbour_cell, neighbour_pairs

SHAPES = [(2, 2), (4, 6), (16, 32), (64, 64), (1, 2, 2), (3, 4, 8), (2, 6, 4)]


def _coordinates(spatial):
    """A (1, ndim, *spatial) tensor holding each pixel's own coordinates."""
    grids = torch.meshgrid(*[torch.arange(s) for s in spatial], indexing="ij")
    return torch.stack(grids)[None].float()


@pytest.mark.parametrize("spatial", SHAPES)
@pytest.mark.parametrize("planar", [True, False])
def test_every_cell_gives_two_edge_neighbours_one_to_each_sub_image(spatial, planar):
    ndim = len(spatial)
    cell = neighbour_cell(ndim, planar)
    if any(s % k for s, k in zip(spatial, cell, strict=True)):
        pytest.skip("not a multiple of the cell")
    coords = _coordinates(spatial).expand(3, -1, *spatial)  # three samples
    for seed in range(5):
        pairs = neighbour_pairs(coords, torch.Generator().manual_seed(seed), planar=planar)
        a, b = pairs.take(coords, 0), pairs.take(coords, 1)
        assert a.shape[2:] == tuple(s // k for s, k in zip(spatial, cell, strict=True))
        step = (a - b).abs()
        # neighbours: one unit apart along exactly one axis, never the same pixel
        assert torch.equal(step.sum(1), torch.ones_like(step.sum(1)))
        # each within its own cell: cell index = coordinate // cell size, for both
        for axis, k in enumerate(cell):
            own = torch.arange(a.shape[2 + axis]).reshape([-1] + [1] * (ndim - 1 - axis))
            assert torch.equal(a[:, axis] // k, own.expand_as(a[:, axis]).float())
            assert torch.equal(b[:, axis] // k, own.expand_as(b[:, axis]).float())
        if ndim == 3 and planar:  # pairs stay within a plane
            assert torch.equal(a[:, 0], b[:, 0])


def test_pairs_use_every_direction_and_are_reproducible():
    x = _coordinates((64, 64))
    pairs = neighbour_pairs(x, torch.Generator().manual_seed(1))
    again = neighbour_pairs(x, torch.Generator().manual_seed(1))
    assert torch.equal(pairs.first, again.first) and torch.equal(pairs.second, again.second)
    step = pairs.take(x, 0) - pairs.take(x, 1)
    kinds = {tuple(v) for v in step[0].reshape(2, -1).T.int().tolist()}
    assert kinds == {(1, 0), (-1, 0), (0, 1), (0, -1)}
    first = torch.bincount(pairs.first.reshape(-1), minlength=4) / pairs.first.numel()
    assert torch.allclose(first, torch.full((4,), 0.25), atol=0.03)  # uniform over the cell


def test_sizes_off_the_cell_are_refused():
    with pytest.raises(ValueError, match="multiples"):
        neighbour_pairs(torch.zeros(1, 1, 5, 8), torch.Generator())
    # planar 3D cells are 1x2x2: an odd number of planes is fine, an odd width is not
    neighbour_pairs(torch.zeros(1, 1, 3, 4, 4), torch.Generator())
    with pytest.raises(ValueError, match="multiples"):
        neighbour_pairs(torch.zeros(1, 1, 4, 4, 5), torch.Generator())


class _Identity(torch.nn.Module):
    def forward(self, x):
        return x


class _Constant(torch.nn.Module):
    def forward(self, x):
        return torch.full_like(x, 0.5)


@pytest.mark.parametrize("progress", [0.0, 0.5, 1.0])
def test_the_loss_is_the_papers(progress):
    from napari_deconvnet.core.trainer import NEIGHBOUR_GAMMA, Trainer

    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    pairs = neighbour_pairs(x, torch.Generator().manual_seed(3))
    g1, g2 = pairs.take(x, 0), pairs.take(x, 1)
    trainer = Trainer.__new__(Trainer)  # only what neighbour_loss reads
    trainer.device, trainer.amp, trainer.fmt = torch.device("cpu"), None, torch.contiguous_format
    trainer.loss_fn = torch.nn.functional.mse_loss
    gamma = NEIGHBOUR_GAMMA * progress
    # the identity: f(g1) - g2 equals g1(f(y)) - g2(f(y)), so the regulariser is 0
    trainer.net = _Identity()
    loss = trainer.neighbour_loss(x, pairs, progress)
    torch.testing.assert_close(loss, torch.mean((g1 - g2) ** 2))
    # a constant output: the sub-images of f(y) are equal, the regulariser repeats the loss
    trainer.net = _Constant()
    loss = trainer.neighbour_loss(x, pairs, progress)
    torch.testing.assert_close(loss, (1 + gamma) * torch.mean((0.5 - g2) ** 2))


def _pair(shape, seed, sigma=0.15):
    from napari_deconvnet.core.phantoms import phantom

    clean = phantom(shape, ["nuclei", "filaments"], rng=seed, mix=2).astype(np.float32)
    rng = np.random.default_rng(seed + 100)
    return (clean + sigma * rng.standard_normal(clean.shape)).astype(np.float32), clean


def _small(**extra):
    run = dict(epochs=4, steps_per_epoch=20, batch_size=8, validation=None, device="cpu")
    return {**run, "preview": False, "seed": 0, **extra}


def test_neighbor2neighbor_training_denoises_held_out_data_in_2d():
    torch.set_num_threads(1)
    noisy, clean = _pair((96, 192), 0)
    result = dn.train(
        noisy[:, :96],
        blind_spot="neighbor2neighbor",
        network={"base_channels": 8},
        patch_size=32,
        **_small(),
    )
    assert result.config.blind_spot == "neighbor2neighbor"
    assert result.model.metadata["training"]["settings"]["blind_spot"] == "neighbor2neighbor"
    test, truth = noisy[:, 96:], clean[:, 96:]
    before = dn.psnr(test, truth, data_range=1.0)
    after = dn.psnr(dn.restore(test, result.model, device="cpu"), truth, data_range=1.0)
    assert after > before + 4.0, (before, after)  # measured 16.52 -> 22.28 dB


def test_neighbor2neighbor_trains_volumes_plane_pairs():
    torch.set_num_threads(1)
    from napari_deconvnet.core.phantoms import phantom

    clean = phantom((12, 48, 96), ["nuclei", "beads"], rng=4, mix=2).astype(np.float32)
    noisy = clean + 0.15 * np.random.default_rng(5).standard_normal(clean.shape)
    noisy = noisy.astype(np.float32)
    result = dn.train(
        noisy[..., :48],
        blind_spot="neighbor2neighbor",
        network={"ndim": 3, "base_channels": 8},
        patch_size=(8, 32, 32),
        **_small(epochs=6, batch_size=4),
    )
    test, truth = noisy[..., 48:], clean[..., 48:]
    before = dn.psnr(test, truth, data_range=1.0)
    after = dn.psnr(dn.restore(test, result.model, device="cpu"), truth, data_range=1.0)
    assert after > before + 2.0, (before, after)  # measured 16.53 -> 19.86 (N2V: 17.01)


def test_neighbor2neighbor_settings_are_checked():
    noisy = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    # sub-images of 36/2 = 18 pixels are off the network's grid of 4
    with pytest.raises(ValueError, match="Neighbor2Neighbor.*multiples of \\(8, 8\\)"):
        dn.train(noisy, blind_spot="neighbor2neighbor", patch_size=36, epochs=1)
    with pytest.raises(ValueError, match="self-supervised"):
        dn.train(noisy, noisy, blind_spot="neighbor2neighbor", epochs=1, patch_size=32)
    with pytest.raises(ValueError, match="noise-conditioned"):
        dn.train(noisy, model="denoise-2d-nl", blind_spot="neighbor2neighbor", epochs=1)
    with pytest.raises(ValueError, match="neighbor2neighbor"):  # the error lists the choices
        dn.train(noisy, blind_spot="neighbours", epochs=1)


def test_automatic_patches_fit_the_sub_images():
    noisy = np.random.default_rng(0).random((44, 60)).astype(np.float32)
    result = dn.train(
        noisy,
        blind_spot="neighbor2neighbor",
        network={"base_channels": 4},
        epochs=1,
        steps_per_epoch=1,
        batch_size=2,
        validation=0.2,
        device="cpu",
        preview=False,
    )
    size = result.config.patch_size
    assert all(s % 8 == 0 for s in size), size  # twice the grid of 4


def test_defaults_new_networks_neighbours_fine_tuning_blind_spot():
    noisy = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    tiny = dict(epochs=1, steps_per_epoch=1, batch_size=2, validation=None, preview=False)
    new = dn.train(noisy, network={"base_channels": 4}, patch_size=32, **tiny)
    assert new.config.blind_spot == "neighbor2neighbor"
    tuned = dn.train(noisy, model="default", patch_size=32, **tiny)
    assert tuned.config.blind_spot == "random"
    # a patch that does not fit the sub-images: the default steps aside, and says so
    with pytest.warns(RuntimeWarning, match="does not fit Neighbor2Neighbor"):
        odd = dn.train(noisy, network={"base_channels": 4}, patch_size=36, **tiny)
    assert odd.config.blind_spot == "random"


def test_pairs_and_training_on_each_device(device):
    """The pairs are drawn on the batch's device with its generator (a CUDA one on a GPU)."""
    coords = _coordinates((16, 16)).to(device)
    gen = torch.Generator(device=device).manual_seed(0)
    pairs = neighbour_pairs(coords, gen)
    assert pairs.first.device.type == torch.device(device).type
    step = (pairs.take(coords, 0) - pairs.take(coords, 1)).abs().sum(1)
    assert torch.equal(step, torch.ones_like(step))
    noisy, _ = _pair((64, 64), 1)
    result = dn.train(
        noisy,
        blind_spot="neighbor2neighbor",
        network={"base_channels": 4},
        patch_size=32,
        **_small(epochs=1, batch_size=2, device=device),
    )
    assert result.config.blind_spot == "neighbor2neighbor"
    assert all(torch.isfinite(p).all() for p in result.model.parameters())


def test_the_model_description_names_its_self_supervision():
    """Session 70: a Neighbor2Neighbor run was described as Noise2Void training."""
    img = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    options = dict(network={"base_channels": 4}, epochs=1, steps_per_epoch=1, batch_size=2,
                   device="cpu")  # fmt: skip
    words = {
        None: "self-supervised (Neighbor2Neighbor)",
        "random": "self-supervised (Noise2Void)",
        "median": "N2V2 median replacement",
    }
    for blind_spot, want in words.items():
        model = dn.train(img, blind_spot=blind_spot, **options).model
        assert want in model.metadata["description"], (blind_spot, model.metadata)
