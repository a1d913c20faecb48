"""The training scripts' data: sparse scenes, light noise, general phantoms (scripts/)."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
train_default = pytest.importorskip("train_default")


def _strips():
    rng = np.random.default_rng(0)
    return {name: rng.random((320, 160)).astype(np.float32) for name in ("a", "b")}


def test_sparse_validation_scenes_are_added_with_pure_poisson_noise():
    plain = train_default.validation_set(_strips(), 0)
    sparse = train_default.validation_set(_strips(), 0, sparse=True)
    assert len(sparse) == len(plain) + 4
    for a, b in zip(plain, sparse, strict=False):  # the other pairs stay as they were
        np.testing.assert_array_equal(a["noisy"], b["noisy"])
    extra = sparse[len(plain) :]
    assert {p["noise"] for p in extra} == {"poisson-10", "poisson-20"}
    for pair in extra:
        clean, noisy = pair["clean"], pair["noisy"]
        peak = float(pair["noise"].split("-")[1])
        # dim background: most pixels far below the peak, structures at the top
        assert np.median(clean) < 0.35 and clean.max() >= 0.99
        # photon counts: integers over the peak, variance equal to the mean
        counts = noisy * peak
        np.testing.assert_allclose(counts, np.rint(counts), atol=1e-3)
        ratio = np.var(counts - clean * peak) / np.mean(clean * peak)
        assert 0.9 < ratio < 1.1, ratio
    again = train_default.validation_set(_strips(), 0, sparse=True)
    np.testing.assert_array_equal(again[-1]["noisy"], extra[-1]["noisy"])  # seeded


def test_the_sampler_draws_that_share_of_phantom_regions_from_the_sparse_scenes():
    rng = np.random.default_rng(1)
    cells = [np.full((256, 256), 0.5, np.float32) + rng.random((256, 256)) * 0.1]
    scenes = [train_default.sparse_phantom(rng) for _ in range(2)]
    marked = [s + 10.0 for s in scenes]  # recognisable by their level
    images = {"coffee": rng.random((300, 300)).astype(np.float32)}

    def share(p):
        sampler = train_default.Sampler(
            images, cells, np.random.default_rng(2), 64, (192, 256), 4, sparse=(p, marked)
        )
        sampler.names, sampler.weights = ["coffee"], np.array([1.0])
        regions = [sampler._region() for _ in range(2000)]
        return np.mean([r.min() >= 10.0 for r in regions])

    # 20% of regions are phantoms; half of those sparse
    assert share(0.5) == pytest.approx(train_default.PHANTOM_WEIGHT * 0.5, abs=0.03)
    assert share(0.0) == 0.0


def test_light_noise_draws_nearly_clean_images_and_leaves_earlier_draws_alone():
    clean = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    # at light=0 the draws are those of the earlier runs (the default)
    a = train_default.degrade(np.random.default_rng(5), clean)
    b = train_default.degrade(np.random.default_rng(5), clean, 0.0)
    np.testing.assert_array_equal(a[0], b[0])
    sigmas, peaks = [], []
    for seed in range(60):
        _, _, info = train_default.degrade(np.random.default_rng(seed), clean, 1.0)
        assert info["light"] is True
        if info["noise"] == "gaussian":
            sigmas.append(info["sigma"])
        else:
            peaks.append(info["peak"])
    lo, hi = train_default.LIGHT_SIGMA_RANGE
    assert sigmas and all(lo <= s <= hi for s in sigmas)
    lo, hi = train_default.LIGHT_PEAK_RANGE
    assert peaks and all(lo <= p <= hi for p in peaks)
    # and the noise is what it says: residual std of a Gaussian draw within 10%
    rng = np.random.default_rng(1)
    for _ in range(20):
        noisy, target, info = train_default.degrade(rng, clean, 1.0)
        if info["noise"] == "gaussian" and not info.get("uint8"):
            residual = (noisy - target) / info["scale"]
            assert abs(residual.std() / info["sigma"] - 1) < 0.1


def test_photon_counting_and_speckle_draws_are_what_they_say():
    clean = np.random.default_rng(0).uniform(0.2, 1.0, (96, 96)).astype(np.float32)
    # at counts=speckle=0 the draws are those of the earlier runs
    a = train_default.degrade(np.random.default_rng(5), clean, 0.15)
    b = train_default.degrade(np.random.default_rng(5), clean, 0.15, 0.0, 0.0)
    np.testing.assert_array_equal(a[0], b[0])
    seen = {"poisson": 0, "speckle": 0}
    for seed in range(40):
        noisy, target, info = train_default.degrade(
            np.random.default_rng(seed), clean, 0.0, 0.5, 0.5
        )
        seen[info["noise"]] += 1
        gain, offset = info.get("gain"), info["offset"]
        if info["noise"] == "poisson":
            lo, hi = train_default.LOW_COUNT_PEAK_RANGE
            assert lo <= info["peak"] <= hi
            # pure photon counts: integers of electrons (no read noise), variance = mean
            electrons = (noisy.astype(np.float64) - offset) * gain
            np.testing.assert_allclose(electrons, np.rint(electrons), atol=0.02)
            expected = (target.astype(np.float64) - offset) * gain
            ratio = np.var(electrons - expected) / np.mean(expected)
            assert 0.85 < ratio < 1.15, ratio
        else:  # multiplicative: sigma times the clean intensity, in the drawn scale
            lo, hi = train_default.SPECKLE_SIGMA_RANGE
            assert lo <= info["sigma"] <= hi
            x = (target.astype(np.float64) - offset) / info["scale"]
            rel = (noisy - target) / (info["scale"] * x)
            assert abs(rel.std() / info["sigma"] - 1) < 0.1
    assert seen["poisson"] > 10 and seen["speckle"] > 10


def test_count_and_speckle_validation_pairs_are_added_after_the_others():
    plain = train_default.validation_set(_strips(), 0, "full", sparse=True)
    more = train_default.validation_set(
        _strips(), 0, "full", sparse=True, counts=True, speckle=True
    )
    assert len(more) == len(plain) + 2 + 4
    for a, b in zip(plain, more, strict=False):  # the other pairs stay as they were
        np.testing.assert_array_equal(a["noisy"], b["noisy"])
    extra = more[len(plain) :]
    assert [p["noise"] for p in extra] == ["poisson-2"] * 2 + ["speckle-10"] * 4
    for pair in extra[:2]:  # photon counts at peak 2
        counts = pair["noisy"] * 2.0
        np.testing.assert_allclose(counts, np.rint(counts), atol=1e-3)
    for pair in extra[2:]:
        rel = (pair["noisy"] - pair["clean"]) / np.maximum(pair["clean"], 1e-3)
        keep = pair["clean"] > 0.1
        assert abs(rel[keep].std() - 0.1) < 0.01


def test_train_models_light_noise_general_phantoms_and_their_validation():
    import dataclasses

    shipped = pytest.importorskip("_shipped_data")
    train_models = pytest.importorskip("train_models")
    task = train_models.TASKS["denoise-3d"]
    clean = np.full((8, 16, 16), 0.5, np.float32)
    # light=0: the draws of earlier runs
    a, _ = shipped.add_noise(np.random.default_rng(3), clean, task)
    b, _ = shipped.add_noise(np.random.default_rng(3), clean, dataclasses.replace(task))
    np.testing.assert_array_equal(a, b)
    light = dataclasses.replace(task, light_noise=1.0)
    seen = set()
    for seed in range(40):
        noisy, info = shipped.add_noise(np.random.default_rng(seed), clean, light)
        if info["noise"] == "gaussian":
            assert shipped.LIGHT_SIGMA_RANGE[0] <= info["sigma"] <= shipped.LIGHT_SIGMA_RANGE[1]
            assert abs(np.std(noisy - clean) / info["sigma"] - 1) < 0.15
        else:
            assert shipped.LIGHT_PEAK_RANGE[0] <= info["peak"] <= shipped.LIGHT_PEAK_RANGE[1]
        seen.add(info["noise"])
    assert seen == {"gaussian", "poisson-gaussian"}
    # deconvolution models: nearly noiseless data (their usual range reaches sigma 0.001)
    deconv = dataclasses.replace(train_models.TASKS["deconv-2d"], light_noise=1.0)
    for seed in range(20):
        _, info = shipped.add_noise(np.random.default_rng(seed), clean[0], deconv)
        if info["noise"] == "gaussian":
            lo, hi = shipped.LIGHT_DECONV_SIGMA_RANGE
            assert lo <= info["sigma"] <= hi
        else:
            lo, hi = shipped.LIGHT_DECONV_PEAK_RANGE
            assert lo <= info["peak"] <= hi
    # general phantoms: that share replaced, shapes kept, the rest untouched
    scenes = [np.full((12, 24, 24), 7.0, np.float32) for _ in range(200)]
    mixed = shipped.mix_general_phantoms(scenes, 0.4, seed=0)
    replaced = [m is not s for m, s in zip(mixed, scenes, strict=True)]
    assert 0.3 < np.mean(replaced) < 0.5
    assert all(m.shape == (12, 24, 24) for m in mixed)
    assert all(m.max() <= 7.0 for m in mixed) and any(m.max() < 7.0 for m in mixed)
    # validation: two general scenes and two light noises more, in [0, 1]
    pairs = shipped.validation_set(task, {}, 0)
    more = shipped.validation_set(dataclasses.replace(task, general_validation=True), {}, 0)
    n_noises = len(shipped.VALIDATION_NOISE_3D) + len(shipped.VALIDATION_NOISE_LIGHT)
    assert len(more) == (len(pairs) // len(shipped.VALIDATION_NOISE_3D) + 2) * n_noises
    assert all(0 <= p["clean"].min() and p["clean"].max() <= 1 for p in more)
    # 2D (deconv-2d): the same pairs first, then three degradations of two general scenes
    task2 = train_models.TASKS["deconv-2d"]
    strips = {"a": np.random.default_rng(0).random((320, 160)).astype(np.float32)}
    pairs2 = shipped.validation_set(task2, strips, 0)
    more2 = shipped.validation_set(dataclasses.replace(task2, general_validation=True), strips, 0)
    assert len(more2) == len(pairs2) + 2 * 3
    for a, b in zip(pairs2, more2, strict=False):
        np.testing.assert_array_equal(a["noisy"], b["noisy"])
    for pair in more2[len(pairs2) :]:  # dim background, structures at the top
        assert np.median(pair["clean"]) < 0.35 and pair["clean"].max() > 0.9
        assert pair["psf"] is not None


def _second_moment(kernel):
    """Mean squared distance of a centred 2D kernel's mass from its middle pixel."""
    y, x = np.indices(kernel.shape) - np.array([n // 2 for n in kernel.shape])[:, None, None]
    return float((kernel * (y**2 + x**2)).sum() / kernel.sum())


def test_train_models_psf_mismatch_gives_the_network_a_misjudged_psf():
    import dataclasses

    shipped = pytest.importorskip("_shipped_data")
    train_models = pytest.importorskip("train_models")
    from napari_deconvnet.core import phantoms
    from napari_deconvnet.core.psf import blur

    task = train_models.TASKS["deconv-2d"]
    clean = np.random.default_rng(0).random((48, 48)).astype(np.float32)
    # at 0 (the default) the draws of earlier runs, so their validation stays as it was
    for seed in range(5):
        a = shipped.degrade(np.random.default_rng(seed), clean, task)
        b = shipped.degrade(np.random.default_rng(seed), clean, dataclasses.replace(task))
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    always = dataclasses.replace(task, psf_mismatch=1.0)
    lo, hi = phantoms.MISJUDGED_WIDTH
    for seed in range(8):
        noisy, given, info = shipped.degrade(np.random.default_rng(seed), clean, always)
        # the same draw without the mismatch: the PSF that blurred the image
        true = shipped.degrade(np.random.default_rng(seed), clean, task)[1]
        factor = info["psf_given_width"]
        assert lo - 1e-3 <= factor <= hi + 1e-3
        assert given.sum() == pytest.approx(1.0, abs=1e-5)
        assert _second_moment(given) == pytest.approx(factor**2 * _second_moment(true), rel=0.1)
        # the image is blurred by the true PSF: what is left is the noise alone
        residual = noisy - blur(clean, true)
        if info["noise"] == "gaussian":
            assert abs(residual.std() / info["sigma"] - 1) < 0.2, info
        else:
            assert abs(residual.mean()) < 0.02, info
    share = dataclasses.replace(task, psf_mismatch=0.3)
    hits = [
        "psf_given_width" in shipped.degrade(np.random.default_rng(s), clean, share)[2]
        for s in range(200)
    ]
    assert 0.2 < np.mean(hits) < 0.4


def test_train_models_low_counts_draw_photon_counts_and_validate_there():
    """denoise-3d --low-counts: pure Poisson at 0.5-4 photons, pairs at 1 and 3 photons."""
    import dataclasses

    shipped = pytest.importorskip("_shipped_data")
    train_models = pytest.importorskip("train_models")
    task = train_models.TASKS["denoise-3d"]
    clean = np.full((8, 32, 32), 0.5, np.float32)
    # share 0: the draws of earlier runs
    a, _ = shipped.add_noise(np.random.default_rng(5), clean, task)
    b, _ = shipped.add_noise(np.random.default_rng(5), clean, dataclasses.replace(task))
    np.testing.assert_array_equal(a, b)
    counting = dataclasses.replace(task, low_counts=1.0)
    lo, hi = shipped.LOW_COUNT_PEAKS
    for seed in range(20):
        noisy, info = shipped.add_noise(np.random.default_rng(seed), clean, counting)
        assert info["noise"] == "poisson-gaussian" and info["read_noise"] == 0.0
        peak = info["peak"]
        assert lo <= peak <= hi
        counts = noisy * peak  # integers, variance equal to the mean (0.5 * peak)
        np.testing.assert_allclose(counts, np.rint(counts), atol=1e-3)
        assert abs(np.var(counts) / (0.5 * peak) - 1) < 0.15, (seed, peak)
    half = dataclasses.replace(task, low_counts=0.5)
    drawn = [
        shipped.add_noise(np.random.default_rng(s), clean, half)[1].get("read_noise") == 0.0
        for s in range(200)
    ]
    assert 0.35 < np.mean(drawn) < 0.65
    # validation: the same pairs first, then each scene at 1 and 3 photons
    general = dataclasses.replace(task, general_validation=True)
    pairs = shipped.validation_set(general, {}, 0)
    more = shipped.validation_set(dataclasses.replace(general, low_counts=0.15), {}, 0)
    per_scene = len(pairs) // 6
    extra = len(shipped.VALIDATION_COUNTS_3D)
    assert len(more) == 6 * (per_scene + extra)
    peaks = sorted({p["info"]["peak"] for p in more if p["info"].get("read_noise") == 0.0})
    assert peaks == [1.0, 3.0]
    # and nearly clean pairs, beyond the light ones (1/255 and 10,000 photons)
    assert any(p["info"].get("sigma") == 1 / 255 for p in more)
    assert any(p["info"].get("peak") == 10000.0 for p in more)
    # the earlier pairs first in each scene, unchanged
    for k in range(6):
        for j in range(per_scene):
            a, b = pairs[k * per_scene + j], more[k * (per_scene + extra) + j]
            np.testing.assert_array_equal(a["noisy"], b["noisy"])
    # only denoise-3d takes it
    run = train_models.main
    with pytest.raises(SystemExit):
        run(["--model", "deconv-3d", "--low-counts", "0.2", "--steps", "1", "--phantoms", "1"])


def test_scenes_of_objects_in_the_dark_are_black_between_them():
    """core.dark_scenes: spots integrated over the pixels, filaments, zero elsewhere."""
    from napari_deconvnet.core.dark_scenes import integrated_spots, sparse_scene

    rng = np.random.default_rng(3)
    # integrated over the pixels: a point-like spot puts all its light (0.2-1) in one
    # pixel; a wide one spreads the same light (less what falls beyond the field)
    point = integrated_spots(rng, (32, 32), 1, 0.01)
    assert np.count_nonzero(point > 1e-9) == 1 and 0.2 <= point.sum() <= 1.0
    wide = integrated_spots(np.random.default_rng(3), (32, 32), 1, 1.5)
    assert wide.max() < 0.25 * wide.sum() and wide.sum() <= point.sum() + 1e-9
    scenes = [sparse_scene(np.random.default_rng(s), (96, 96)) for s in range(12)]
    for s in scenes:
        assert s.dtype == np.float32 and s.max() == pytest.approx(1.0) and s.min() >= 0
        assert np.median(s) < 1e-3  # most of the field is dark
    # seeded; and the spot counts span a handful to a crowded field
    np.testing.assert_array_equal(scenes[0], sparse_scene(np.random.default_rng(0), (96, 96)))
    lit = sorted(float((s > 0.05).mean()) for s in scenes)
    assert lit[0] < 0.01 and lit[-1] > 0.05, lit


def test_sparse_scenes_hold_spots_in_the_share_asked_for():
    """spot_share=0: every scene is the filaments alone (the same draws as
    _dark_filaments after the scene's kind); 1: none is; the default (0.7) draws as
    before; a share outside [0, 1] is refused."""
    from napari_deconvnet.core.dark_scenes import _dark_filaments, sparse_scene

    for seed in range(6):
        rng = np.random.default_rng(seed)
        rng.random()  # the scene's kind
        lines = _dark_filaments(rng, (64, 64))
        expected = (lines / lines.max()).astype(np.float32)
        only = sparse_scene(np.random.default_rng(seed), (64, 64), spot_share=0.0)
        np.testing.assert_array_equal(only, expected)
        spots = sparse_scene(np.random.default_rng(seed), (64, 64), spot_share=1.0)
        assert not np.array_equal(spots, expected)
    np.testing.assert_array_equal(
        sparse_scene(np.random.default_rng(5), (64, 64)),
        sparse_scene(np.random.default_rng(5), (64, 64), spot_share=0.7),
    )
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="spot_share must be in"):
            sparse_scene(np.random.default_rng(0), (32, 32), spot_share=bad)


def test_train_models_sparse_scenes_keep_their_darkness_and_validate_there():
    """deconv-2d --sparse-scenes: that share of phantom regions from scenes in the dark,
    with no level added (a random contrast only); the validation gains such scenes after
    the others, and without the flag every draw is as before."""
    import dataclasses

    shipped = pytest.importorskip("_shipped_data")
    train_models = pytest.importorskip("train_models")
    from napari_deconvnet.core.model import DeconvNet, DeconvNetConfig

    task = dataclasses.replace(train_models.TASKS["deconv-2d"], photo_fraction=0.0)
    net = DeconvNet(DeconvNetConfig(ndim=2, in_channels=2, depth=1, base_channels=4))
    cells = [np.full((160, 160), 0.5, np.float32)]
    dark = np.zeros((160, 160), np.float32)
    dark[40:44, 60:64] = 1.0  # recognisable: black but for one square

    def regions(sparse, seed=4):
        sampler = shipped.Sampler(task, {}, cells, net, np.random.default_rng(seed), sparse=sparse)
        return [sampler._region() for _ in range(400)]

    drawn = regions((0.25, [dark]))
    black = [r for r in drawn if np.median(r) == 0.0]
    assert 0.18 < len(black) / len(drawn) < 0.32
    assert all(r.max() > 0.05 for r in black)  # a crop holds an object
    plain = regions(None)
    assert all(np.median(r) > 0 for r in plain)
    np.testing.assert_array_equal(plain[0], regions(None)[0])
    strips = {"a": np.random.default_rng(0).random((320, 160)).astype(np.float32)}
    before = shipped.validation_set(task, strips, 0)
    after = shipped.validation_set(task, strips, 0, dark=True)
    assert len(after) == len(before) + 3 * shipped.DARK_VALIDATION_SCENES
    for a, b in zip(before, after, strict=False):
        np.testing.assert_array_equal(a["noisy"], b["noisy"])
    for pair in after[len(before) :]:
        assert np.median(pair["clean"]) < 1e-3 and pair["clean"].max() == pytest.approx(1.0)


def test_deconv_3d_sparse_scenes_validate_on_a_volume_in_the_dark():
    """deconv-3d --sparse-scenes: the 3D validation gains one volume of objects in the
    dark (every noise, both PSF families), after the others, which stay as they were."""
    shipped = pytest.importorskip("_shipped_data")
    train_models = pytest.importorskip("train_models")

    task = train_models.TASKS["deconv-3d"]
    before = shipped.validation_set(task, {}, 0)
    after = shipped.validation_set(task, {}, 0, dark=True)
    added = 2 * len(shipped.VALIDATION_NOISE_3D)
    assert len(after) == len(before) + added
    for a, b in zip(before, after, strict=False):
        np.testing.assert_array_equal(a["noisy"], b["noisy"])
    for pair in after[-added:]:
        assert pair["clean"].shape == (32, 64, 64) and np.median(pair["clean"]) < 1e-3
    assert train_models.DARK_SCENE_SHAPES[3][0] >= task.region[0]  # a region fits


def test_denoise_3d_sparse_scenes_are_noised_not_blurred_and_validated():
    """denoise-3d --sparse-scenes (new in session 54; the deconvolution models had it):
    regions drawn from the dark scenes in that share, and one volume in the dark added
    to the validation with every noise of the denoiser's set, unblurred."""
    import dataclasses

    shipped = pytest.importorskip("_shipped_data")
    train_models = pytest.importorskip("train_models")
    from napari_deconvnet.core.model import DeconvNet, DeconvNetConfig

    task = dataclasses.replace(train_models.TASKS["denoise-3d"], general_validation=True)
    net = DeconvNet(DeconvNetConfig(ndim=3, depth=1, base_channels=4))
    lit = [np.full((40, 100, 100), 0.5, np.float32)]
    dark = np.zeros((48, 128, 128), np.float32)
    dark[20:23, 60:63, 60:63] = 1.0
    sampler = shipped.Sampler(task, {}, lit, net, np.random.default_rng(3), sparse=(0.3, [dark]))
    drawn = [sampler._region() for _ in range(300)]
    black = [r for r in drawn if np.median(r) == 0.0]
    assert 0.2 < len(black) / len(drawn) < 0.4 and all(r.max() > 0.05 for r in black)
    before = shipped.validation_set(task, {}, 0)
    after = shipped.validation_set(task, {}, 0, dark=True)
    noises = shipped.VALIDATION_NOISE_3D + shipped.VALIDATION_NOISE_LIGHT
    assert len(after) == len(before) + len(noises)
    for a, b in zip(before, after, strict=False):
        np.testing.assert_array_equal(a["noisy"], b["noisy"])
    for pair in after[-len(noises) :]:
        assert pair["psf"] is None and np.median(pair["clean"]) < 1e-3
    gaussian = after[-len(noises) :][-1]  # Gaussian 2/255: the clean volume plus noise
    assert abs(float(np.std(gaussian["noisy"] - gaussian["clean"])) - 2 / 255) < 2e-4


def test_train_models_takes_sparse_scenes_for_denoise_3d_not_salt_and_pepper(
    monkeypatch, tmp_path
):
    """The flag reaches denoise-3d's validation (dark=True); salt-and-pepper refuses it."""
    train_models = pytest.importorskip("train_models")

    class Reached(Exception):
        pass

    def stop_at_validation(task, strips, seed, *, dark=False):
        raise Reached(task.name, dark)

    monkeypatch.setattr(train_models, "validation_set", stop_at_validation)
    out = str(tmp_path / "m.safetensors")
    common = ["--phantoms", "1", "--sparse-scenes", "0.2", "--out", out, "--threads", "1"]
    with pytest.raises(Reached) as got:
        train_models.main(["--model", "denoise-3d", *common])
    assert got.value.args == ("denoise-3d", True)
    with pytest.raises(SystemExit, match="for the denoising and deconvolution models"):
        train_models.main(["--model", "salt-and-pepper", *common])


def test_denoise_2d_dark_validation_scenes_are_photon_counts_on_black():
    """train_default --sparse-scenes: the validation gains scenes of objects on an exactly
    black background at 30 and 300 photons; the other pairs stay as they were."""
    plain = train_default.validation_set(_strips(), 0)
    dark = train_default.validation_set(_strips(), 0, dark=True)
    extra = dark[len(plain) :]
    assert len(extra) == train_default.DARK_VALIDATION_SCENES * len(train_default.DARK_NOISES)
    for a, b in zip(plain, dark, strict=False):
        np.testing.assert_array_equal(a["noisy"], b["noisy"])
    assert {p["noise"] for p in extra} == {"dark-poisson-30", "dark-poisson-300"}
    for pair in extra:
        clean, noisy = pair["clean"], pair["noisy"]
        peak = float(pair["noise"].rsplit("-", 1)[1])
        assert np.mean(clean == 0) > 0.5 and clean.max() == pytest.approx(1.0)
        counts = noisy * peak
        np.testing.assert_allclose(counts, np.rint(counts), atol=1e-3)
        assert np.all(noisy[clean == 0] == 0)  # black stays black under pure Poisson noise


def test_denoise_2d_sampler_keeps_dark_regions_black_and_their_batches_bounded():
    """That share of phantom regions comes from the dark scenes, with no level added by the
    region or by the noise; batches of them stay within the normalised bounds."""
    rng = np.random.default_rng(3)
    cells = [np.full((256, 256), 0.5, np.float32)]
    scenes = [train_default.sparse_scene(rng, (256, 256)) for _ in range(4)]
    images = {"coffee": np.full((300, 300), 0.7, np.float32)}

    def sampler(share, seed=4):
        s = train_default.Sampler(
            images, cells, np.random.default_rng(seed), 64, (192, 256), 4, dark=(share, scenes)
        )
        s.names, s.weights = ["coffee"], np.array([1.0])
        return s

    s = sampler(1.0)
    regions = []
    for _ in range(600):
        region = s._region()
        if s.in_dark:
            regions.append(region)
    # every phantom region is dark at share 1 (phantoms are PHANTOM_WEIGHT of the regions)
    assert len(regions) / 600 == pytest.approx(train_default.PHANTOM_WEIGHT, abs=0.05)
    assert all(r.min() == 0.0 and np.mean(r == 0) > 0.3 for r in regions)
    # the noise adds no level to a dark region: its black pixels stay at the offset
    for seed in range(30):
        region = regions[seed % len(regions)]
        noisy, clean, info = train_default.degrade(np.random.default_rng(seed), region, dark=True)
        black = region == 0
        offset = clean[black]
        assert np.ptp(offset) < 1e-6 * max(1.0, abs(float(offset[0])))
        lit = clean[~black] - offset[0]
        assert np.all(lit * np.sign(lit.max()) >= -1e-6)
    x, y = sampler(1.0, seed=5).batch(16)
    assert x.shape == y.shape == (16, 1, 64, 64)
    assert float(y.abs().max()) <= 10 and float(x.abs().max()) <= 50
    # share 0: no region is dark
    z = sampler(0.0, seed=6)
    for _ in range(50):
        z._region()
        assert not z.in_dark
