"""One PSF per channel: every restore path deconvolves channel c with psf[c]."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
from scipy.ndimage import convolve

import napari_deconvnet as dn
from napari_deconvnet.cli import main
from napari_deconvnet.core.channel_psfs import per_channel, split_statistics


def _beads(seed: int, shape=(48, 48)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    clean = np.full(shape, 0.05, np.float32)
    ys, xs = rng.integers(4, shape[0] - 4, 30), rng.integers(4, shape[1] - 4, 30)
    clean[ys, xs] = 1.0
    return clean


@pytest.fixture(scope="module")
def two_channels():
    """Two channels of beads, one blurred by a narrow PSF and one by a wide one."""
    narrow = dn.make_psf("gaussian", shape=(11, 11), sigma=1.0)
    wide = dn.make_psf("gaussian", shape=(11, 11), sigma=2.2)
    clean = np.stack([_beads(0), _beads(1)])
    rng = np.random.default_rng(2)
    blurred = np.stack(
        [convolve(clean[0], narrow, mode="reflect"), convolve(clean[1], wide, mode="reflect")]
    )
    noisy = (blurred + rng.normal(0, 0.005, blurred.shape)).astype(np.float32)
    return clean, noisy, narrow, wide


def test_per_channel_reads_only_lists_of_whole_psfs():
    assert per_channel([np.ones((3, 3)), "airy", {"kind": "gaussian"}])
    assert not per_channel(np.ones((3, 3)))
    assert not per_channel([[0.0, 1.0, 0.0], [1.0, 4.0, 1.0], [0.0, 1.0, 0.0]])  # nested lists
    assert not per_channel([]) and not per_channel("airy")
    assert split_statistics({"offset": [1.0, 2.0], "scale": 3.0}, 1, 2) == {
        "offset": 2.0,
        "scale": 3.0,
    }


def test_eager_restore_equals_each_channel_with_its_psf(two_channels):
    clean, noisy, narrow, wide = two_channels
    out = dn.restore(noisy, psf=[narrow, wide], axes="CYX")  # "default" -> deconv-2d
    alone = [
        dn.restore(noisy[0], "deconv-2d", psf=narrow),
        dn.restore(noisy[1], "deconv-2d", psf=wide),
    ]
    assert out.shape == noisy.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out, np.stack(alone))
    # the wide channel deconvolved with its own PSF beats it with the other channel's
    swapped = dn.restore(noisy, "deconv-2d", psf=[wide, narrow], axes="CYX")
    for c in range(2):
        own = dn.psnr(clean[c], out[c], data_range=1.0)
        other = dn.psnr(clean[c], swapped[c], data_range=1.0)
        assert own > other + 0.25, (c, own, other)
    # and the channels' order may be anywhere
    moved = dn.restore(np.moveaxis(noisy, 0, -1), "deconv-2d", psf=[narrow, wide], axes="YXC")
    np.testing.assert_allclose(np.moveaxis(moved, -1, 0), out, atol=1e-6)


def test_named_and_dict_psfs_per_channel(two_channels):
    _, noisy, _, _ = two_channels
    psfs = [{"kind": "gaussian", "sigma": 1.0}, "airy"]
    out = dn.restore(noisy, "deconv-2d", psf=psfs, axes="CYX")
    alone = [dn.restore(noisy[c], "deconv-2d", psf=p) for c, p in enumerate(psfs)]
    np.testing.assert_array_equal(out, np.stack(alone))


def test_fixed_statistics_are_split_per_channel(two_channels):
    _, noisy, narrow, wide = two_channels
    stats = {"offset": [0.01, 0.02], "scale": [0.9, 0.5]}
    out = dn.restore(noisy, "deconv-2d", psf=[narrow, wide], axes="CYX", normalization=stats)
    first = dn.restore(
        noisy[0], "deconv-2d", psf=narrow, normalization={"offset": 0.01, "scale": 0.9}
    )
    second = dn.restore(
        noisy[1], "deconv-2d", psf=wide, normalization={"offset": 0.02, "scale": 0.5}
    )
    np.testing.assert_array_equal(out, np.stack([first, second]))


def test_lazy_restore_per_channel_equals_eager_with_progress(two_channels):
    _, noisy, narrow, wide = two_channels
    eager = dn.restore(noisy, "deconv-2d", psf=[narrow, wide], axes="CYX")
    seen = []
    lazy = dn.restore(
        da.from_array(noisy, chunks=(1, 32, 48)),
        "deconv-2d",
        psf=[narrow, wide],
        axes="CYX",
        progress=lambda done, total: seen.append((done, total)),
    )
    assert isinstance(lazy, da.Array)
    n = int(np.prod(lazy.numblocks))  # (blocks at least twice the halo: 1 per channel)
    assert n >= 2
    got = lazy.compute()
    assert np.abs(got - eager).max() <= 1e-5 * float(np.ptp(eager))
    # counted over both channels, whatever order dask computes the blocks in
    assert max(d for d, _ in seen) == seen[0][1] == n and len({t for _, t in seen}) == 1
    # every compute counts from 1, after a partial one too (the channels' counts, added
    # up, stayed at 4 of 4 after the first compute)
    for part in (lazy, lazy[0, :32, :48], lazy):
        seen.clear()
        part.compute(scheduler="synchronous")
        assert [d for d, _ in seen] == list(range(1, len(seen) + 1))
    assert len(seen) == n
    stop = threading.Event()
    stopped = dn.restore(
        da.from_array(noisy, chunks=(1, 32, 48)), "deconv-2d", psf=[narrow, wide],
        axes="CYX", stop=stop,
    )  # fmt: skip
    stop.set()
    with pytest.raises(dn.Cancelled, match=f"after 0 of {n} blocks"):
        stopped.compute(scheduler="synchronous")
    # a channel restored whole (areas of one value to fill): one block of the count, and
    # it stops too (it ignored stop= and never reported)
    dark = noisy.copy()
    dark[:, :, :16] = 0
    for calls, stop in (([], threading.Event()), ([], None)):
        lazy = dn.restore(
            da.from_array(dark, chunks=(1, 32, 48)), "deconv-2d", psf=[narrow, wide],
            axes="CYX", stop=stop, progress=lambda d, n, calls=calls: calls.append((d, n)),
        )  # fmt: skip
        if stop is not None:
            stop.set()
            with pytest.raises(dn.Cancelled):
                lazy.compute(scheduler="synchronous")
        else:
            lazy.compute(scheduler="synchronous")
            assert calls and calls[-1][0] == calls[-1][1]


def test_classical_methods_take_one_psf_per_channel(two_channels):
    _, noisy, narrow, wide = two_channels
    out = dn.run_method(noisy, "richardson-lucy", psf=[narrow, wide], axes="CYX", iterations=10)
    alone = [
        dn.run_method(noisy[0], "richardson-lucy", psf=narrow, iterations=10),
        dn.run_method(noisy[1], "richardson-lucy", psf=wide, iterations=10),
    ]
    np.testing.assert_array_equal(out, np.stack(alone))
    lazy = dn.run_method(
        da.from_array(noisy, chunks=(1, 48, 48)), "wiener", psf=[narrow, wide], axes="CYX"
    )
    eager = dn.run_method(noisy, "wiener", psf=[narrow, wide], axes="CYX")
    np.testing.assert_allclose(np.asarray(lazy), eager, atol=1e-6)
    # progress counts both channels' blocks in one count (each channel counted 1 of 1)
    seen = []
    lazy = dn.run_method(
        da.from_array(noisy, chunks=(1, 48, 48)), "wiener", psf=[narrow, wide], axes="CYX",
        progress=lambda *a: seen.append(a),
    )  # fmt: skip
    lazy.compute(scheduler="synchronous")
    assert seen == [(1, 2), (2, 2)]
    assert not np.allclose(eager[1], dn.run_method(noisy[1], "wiener", psf=narrow), atol=1e-3)


def test_streamed_restore_per_channel_equals_eager_and_resumes(two_channels, tmp_path):
    import zarr

    _, noisy, narrow, wide = two_channels
    eager = dn.restore(noisy, "deconv-2d", psf=[narrow, wide], axes="CYX")
    target = tmp_path / "out.ome.zarr"
    calls = []
    dn.restore_to_zarr(
        noisy, target, "deconv-2d", psf=[narrow, wide], axes="CYX", chunks=32,
        progress=lambda d, t: calls.append((d, t)),
    )  # fmt: skip
    written = zarr.open(str(target / "0"))[:]
    assert np.abs(written - eager).max() <= 1e-5 * float(np.ptp(eager))
    assert calls[-1] == (8, 8)  # 2 channels x 4 blocks
    attrs = json.loads((target / ".zattrs").read_text())
    record = json.dumps(attrs)
    assert "[[11, 11], [11, 11]]" in record
    # the same job again: finished, returns at once; another order of PSFs is another job
    calls.clear()
    dn.restore_to_zarr(noisy, target, "deconv-2d", psf=[narrow, wide], axes="CYX", chunks=32,
                       progress=lambda d, t: calls.append((d, t)))  # fmt: skip
    assert calls == [(8, 8)]
    with pytest.raises(ValueError, match="overwrite"):
        dn.restore_to_zarr(noisy, target, "deconv-2d", psf=[wide, narrow], axes="CYX", chunks=32)


@pytest.mark.parametrize(
    ("psf", "axes", "match"),
    [
        ("two", None, "axes were not given"),
        ("two", "ZYX", "axes 'ZYX' have no C"),
        ("one", "CYX", "list of 1 PSF but the image's C axis .* has 2 channels"),
        ("mixed", "CYX", r"PSFs have \[2, 3\] dimensions"),
    ],
)
def test_per_channel_refusals(two_channels, psf, axes, match):
    _, noisy, narrow, wide = two_channels
    psfs = {
        "two": [narrow, wide],
        "one": [narrow],
        "mixed": [narrow, dn.make_psf("gaussian", shape=(5, 9, 9), sigma=1.0)],
    }[psf]
    with pytest.raises(ValueError, match=match):
        dn.restore(noisy, psf=psfs, axes=axes)
    if psf != "mixed":  # the classical methods and the stream say the same
        with pytest.raises(ValueError, match=match):
            dn.run_method(noisy, "wiener", psf=psfs, axes=axes)
        with pytest.raises(ValueError, match=match):
            dn.restore_to_zarr(
                noisy, "/tmp/never-written.ome.zarr", "deconv-2d", psf=psfs, axes=axes
            )
    assert not Path("/tmp/never-written.ome.zarr").exists()


def test_denoiser_refuses_a_list_of_psfs(two_channels):
    _, noisy, narrow, wide = two_channels
    with pytest.raises(ValueError, match="PSF"):
        dn.restore(noisy, "denoise-2d", psf=[narrow, wide], axes="CYX")


def test_cli_psf_repeated_per_channel(two_channels, tmp_path, capsys):
    import tifffile

    _, noisy, narrow, wide = two_channels
    np.save(tmp_path / "img.npy", noisy)
    np.save(tmp_path / "narrow.npy", narrow)
    np.save(tmp_path / "wide.npy", wide)
    code = main(
        ["restore", str(tmp_path / "img.npy"), "--axes", "CYX", "--psf",
         str(tmp_path / "narrow.npy"), "--psf", str(tmp_path / "wide.npy"), "-o",
         str(tmp_path / "out.tif"), "-q"]
    )  # fmt: skip
    assert code == 0
    eager = dn.restore(noisy, "deconv-2d", psf=[narrow, wide], axes="CYX")
    np.testing.assert_allclose(tifffile.imread(tmp_path / "out.tif"), eager, atol=1e-6)
    code = main(
        ["restore", str(tmp_path / "img.npy"), "--axes", "CYX", "--psf",
         str(tmp_path / "narrow.npy"), "--psf", "gaussian:sigma=1,shape=5x9x9", "-o",
         str(tmp_path / "bad.tif")]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "one PSF per channel" in err and "[2, 3] dimensions" in err
    assert not (tmp_path / "bad.tif").exists()


def test_volumes_per_channel_with_deconv_3d():
    rng = np.random.default_rng(3)
    psfs = [
        dn.make_psf("gaussian", shape=(5, 7, 7), sigma=(1.2, 0.8, 0.8)),
        dn.make_psf("gaussian", shape=(5, 7, 7), sigma=(2.0, 1.2, 1.2)),
    ]
    clean = np.zeros((2, 12, 24, 24), np.float32)
    clean[:, 4:8, 6:18:3, 6:18:3] = 1.0
    blurred = np.stack([convolve(clean[c], psfs[c], mode="reflect") for c in range(2)])
    noisy = (blurred + rng.normal(0, 0.01, blurred.shape)).astype(np.float32)
    out = dn.restore(noisy, psf=psfs, axes="CZYX")  # "default" with 3D PSFs -> deconv-3d
    alone = [dn.restore(noisy[c], "deconv-3d", psf=psfs[c]) for c in range(2)]
    np.testing.assert_array_equal(out, np.stack(alone))


def test_streamed_optical_psf_takes_the_files_pixel_size(tmp_path):
    """restore_to_zarr of a calibrated file: an airy PSF without pixel_size is made
    for the file's 65 nm pixels (as the CLI and the widgets make it), not 100 nm."""
    import tifffile
    import zarr

    from napari_deconvnet.core.psf import calibrated_kind

    rng = np.random.default_rng(5)
    image = (_beads(4, (40, 40)) + rng.normal(0, 0.01, (40, 40))).astype(np.float32)
    path = tmp_path / "cells.ome.tif"
    meta = {"axes": "YX", "PhysicalSizeX": 0.065, "PhysicalSizeY": 0.065}
    meta |= {"PhysicalSizeXUnit": "µm", "PhysicalSizeYUnit": "µm"}
    tifffile.imwrite(path, image, metadata=meta, ome=True)
    kind = {"kind": "airy", "shape": (15, 15)}
    target = dn.restore_to_zarr(path, tmp_path / "out.ome.zarr", "deconv-2d", psf=kind)
    made = dn.make_psf("airy", shape=(15, 15), pixel_size=65.0)
    eager = dn.restore(image, "deconv-2d", psf=made)
    default = dn.restore(image, "deconv-2d", psf=dn.make_psf("airy", shape=(15, 15)))
    written = zarr.open(str(Path(target) / "0"))[:]
    assert np.abs(written - eager).max() <= 1e-5 * float(np.ptp(eager))
    assert np.abs(written - default).max() > 1e-3 * float(np.ptp(eager))
    record = json.loads((Path(target) / ".zattrs").read_text())
    assert '"psf_calibration_nm": {"pixel_size": 65.0}' in json.dumps(record)
    # a value given wins; a Gaussian, an array and an uncalibrated image stay as they are
    assert calibrated_kind({"kind": "airy", "pixel_size": 80}, [0.065] * 2, ["µm"] * 2)[1] == {}
    assert calibrated_kind("gaussian", [0.065] * 2, ["µm"] * 2) == ("gaussian", {})
    assert calibrated_kind("airy", [1.0, 1.0], ["pixel", "pixel"]) == ("airy", {})


@pytest.mark.parametrize("call", ["synthesize", "richardson_lucy", "wiener"])
def test_functions_of_one_psf_refuse_a_list(two_channels, call):
    """A list of PSFs stacked by numpy would blur across the channels as a volume
    (dn.synthesize did so silently): each function that takes one PSF says so."""
    _, noisy, narrow, wide = two_channels
    run = {
        "synthesize": lambda: dn.synthesize(noisy, "gaussian", psf=[narrow, wide], sigma=0.01),
        "richardson_lucy": lambda: dn.richardson_lucy(noisy[0], [narrow, wide]),
        "wiener": lambda: dn.wiener(noisy[0], (narrow, wide)),
    }[call]
    with pytest.raises(
        ValueError, match=r"list of 2 PSFs \(one per channel\), but this takes one"
    ):
        run()
    # one PSF written as nested lists of numbers is still one PSF
    nested = [[0.0, 1.0, 0.0], [1.0, 4.0, 1.0], [0.0, 1.0, 0.0]]
    assert dn.richardson_lucy(noisy[0], nested, iterations=2).shape == noisy[0].shape


def test_synthesis_blurs_each_channel_with_its_psf(two_channels, tmp_path):
    """synthesize_iter, the CLI's synthesize with --psf repeated: channel c blurred by
    psf[c], the noise drawn as one generator draws every block in order."""
    import tifffile

    from napari_deconvnet.core.generators import drain
    from napari_deconvnet.core.operations import synthesize_iter

    clean, _, narrow, wide = two_channels
    psfs = [narrow, wide]
    out = drain(synthesize_iter(clean, "gaussian", psf=psfs, axes="CYX", sigma=0.01, seed=3))
    rng = np.random.default_rng(3)
    expected = [
        dn.synthesize(clean[0], "gaussian", psf=narrow, sigma=0.01, seed=rng),
        dn.synthesize(clean[1], "gaussian", psf=wide, sigma=0.01, seed=rng),
    ]
    np.testing.assert_array_equal(out, np.stack(expected))
    with pytest.raises(ValueError, match="axes were not given"):
        drain(synthesize_iter(clean, "gaussian", psf=[narrow, wide], sigma=0.01))
    # the command line, on a file that names its channel axis
    tifffile.imwrite(tmp_path / "clean.tif", clean, imagej=True, metadata={"axes": "CYX"})
    np.save(tmp_path / "narrow.npy", narrow)
    np.save(tmp_path / "wide.npy", wide)
    code = main(
        ["synthesize", str(tmp_path / "clean.tif"), "-o", str(tmp_path / "noisy.tif"),
         "--noise", "none", "--psf", str(tmp_path / "narrow.npy"), "--psf",
         str(tmp_path / "wide.npy"), "-q"]
    )  # fmt: skip
    assert code == 0
    written = tifffile.imread(tmp_path / "noisy.tif")
    blurred = drain(synthesize_iter(clean, "none", psf=[narrow, wide], axes="CYX"))
    np.testing.assert_allclose(written, blurred, atol=1e-6)
    assert not np.allclose(written[1], convolve(clean[1], narrow, mode="reflect"), atol=1e-3)


def test_two_colour_sample_through_the_command_line(tmp_path, capsys):
    """The sample written as TIFFs (CYX), restored with its PSF file (a C axis: one PSF
    per channel, so deconv-2d is chosen, not deconv-3d), and the headless demo."""
    import tifffile

    from napari_deconvnet.io import samples

    assert main(["sample", "two_colour", "-o", str(tmp_path)]) == 0
    blurred, _, psf = samples.two_colour_data()
    expected = dn.restore(blurred, "deconv-2d", psf=list(psf), axes="CYX")
    code = main(
        ["restore", str(tmp_path / "two_colour_blurred.tif"), "--psf",
         str(tmp_path / "two_colour_PSF.tif"), "-o", str(tmp_path / "out.tif"), "-q"]
    )  # fmt: skip
    assert code == 0
    np.testing.assert_allclose(tifffile.imread(tmp_path / "out.tif"), expected, atol=1e-5)
    capsys.readouterr()  # (deconv-3d, chosen for a 3D PSF, would have refused the planes)
    demo = ["demo", "--sample", "two_colour", "--headless", "-o", str(tmp_path / "d.tif")]
    assert main(demo) == 0
    assert "(model 'deconv-2d' with the sample's PSF)" in capsys.readouterr().out
    np.testing.assert_allclose(tifffile.imread(tmp_path / "d.tif"), expected, atol=1e-5)
    # a channel file beside another --psf is refused, naming both ways
    code = main(
        ["restore", str(tmp_path / "two_colour_blurred.tif"), "--psf",
         str(tmp_path / "two_colour_PSF.tif"), "--psf", "airy", "-o", str(tmp_path / "x.tif")]
    )  # fmt: skip
    assert code == 2 and "give it alone, or one --psf per channel" in capsys.readouterr().err


def test_streamed_per_channel_on_a_local_cluster(tmp_path):
    """Each worker gets every channel's job once; the blocks equal the eager restore."""
    import zarr
    from distributed import Client, LocalCluster

    from napari_deconvnet.io import samples

    blurred, _, psf = samples.two_colour_data((64, 64))
    expected = dn.restore(blurred, "deconv-2d", psf=list(psf), axes="CYX")
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        target = dn.restore_to_zarr(
            blurred, tmp_path / "c.ome.zarr", "deconv-2d", psf=list(psf), axes="CYX",
            chunks=32, client=client,
        )  # fmt: skip
    written = zarr.open(str(Path(target) / "0"))[:]
    assert np.abs(written - expected).max() <= 1e-5 * float(np.ptp(expected))


def _trainer(*args, **options):
    from napari_deconvnet.core.train_setup import build_trainer

    settings = {"epochs": 1, "steps_per_epoch": 1, "batch_size": 2, "patch_size": 16}
    return build_trainer(*args, **{**settings, **options})


def test_training_computes_each_channels_classical_input_with_its_psf(two_channels):
    """Fine-tuning deconv-2d on a two-channel pair: channel c's Richardson-Lucy input
    is restore's, with psf[c] (the wide channel took the narrow PSF before)."""
    from napari_deconvnet.core.kinds import kind_of

    clean, noisy, narrow, wide = two_channels
    trainer = _trainer(noisy, clean, model="deconv-2d", psf=[narrow, wide], axes="CYX")
    kind = kind_of(trainer.net)
    for c, (own, other) in enumerate([(narrow, wide), (wide, narrow)]):
        image = noisy[c][None]
        stats = kind.input_statistics(image)

        def channel(kernel, image=image, stats=stats):
            return kind.channel_stack(
                image, kind.prepare_psf(kernel, 2, (48, 48)), statistics=stats
            )

        got = trainer.data._source_channel(trainer.data.sources[c], ())
        np.testing.assert_allclose(got, channel(own)[0], rtol=1e-5, atol=1e-6)
        assert np.abs(got - channel(other)[0]).max() > 0.05 * float(np.ptp(got))
    assert trainer.config.psf_shape == [(11, 11), (11, 11)]


def test_synthetic_training_blurs_each_channel_with_its_psf(two_channels):
    """Synthetic pairs of a two-channel clean image: channel c blurred by psf[c]."""
    clean, _, narrow, wide = two_channels
    noise = {"model": "gaussian", "sigma": 0.01}
    trainer = _trainer(clean, psf=[narrow, wide], axes="CYX", noise=noise)
    data = trainer.data
    for c, (own, other) in enumerate([(narrow, wide), (wide, narrow)]):
        got = data._central_image(data.sources[c], (24, 24))
        crop = clean[c][12:36, 12:36]
        rng = np.random.default_rng

        def degraded(kernel, crop=crop, rng=rng):
            return dn.synthesize(crop, "gaussian", psf=kernel, seed=rng(0), sigma=0.01)

        np.testing.assert_allclose(got, degraded(own), rtol=1e-5, atol=1e-6)
        assert np.abs(got - degraded(other)).max() > 0.02
    x, y, _ = data.batch(4)  # every draw blurred by its channel's PSF (smoke of the path)
    assert x.shape == y.shape == (4, 1, 16, 16) and torch_finite(x)


def torch_finite(x) -> bool:
    return bool(np.isfinite(x.numpy()).all())


def test_train_with_one_psf_per_channel_end_to_end(two_channels):
    clean, noisy, narrow, wide = two_channels
    result = dn.train(
        noisy,
        clean,
        model="deconv-2d",
        psf=[narrow, wide],
        axes="CYX",
        epochs=1,
        steps_per_epoch=2,
        batch_size=2,
        patch_size=16,
        validation=None,
        seed=0,
    )
    training = result.model.metadata["training"]
    widths = training["conditions"]["psf_widths"]
    assert len(widths) == 2 and widths[0][0] < 1.2 < 2.0 < widths[1][0]
    assert [len(p["values"]) for p in training["psf"]["per_channel"]] == [11, 11]
    out = dn.restore(noisy, result.model, psf=[narrow, wide], axes="CYX")
    assert out.shape == noisy.shape and np.isfinite(out).all()


@pytest.mark.parametrize(
    "options, match",
    [
        ({}, "axes were not given"),
        ({"axes": "ZYX"}, "have no C"),
        ({"axes": "CYX", "psf": "three"}, "has 2 channels"),
        ({"axes": "CYX", "psf": "mixed"}, r"psf\[1\] \(channel 1's PSF\): .*\(5, 11, 11\)"),
        ({"axes": "CYX", "validation": "three"}, "validation data: .* has 3 channels"),
    ],
)
def test_train_per_channel_refusals(two_channels, options, match):
    clean, noisy, narrow, wide = two_channels
    options = dict(options)
    psf = {
        None: [narrow, wide],
        "three": [narrow, wide, wide],
        "mixed": [narrow, dn.make_psf("gaussian", shape=(5, 11, 11))],
    }[options.pop("psf", None)]
    if options.get("validation") == "three":
        three = np.concatenate([noisy, noisy[:1]])
        options["validation"] = (three, np.concatenate([clean, clean[:1]]))
    with pytest.raises(ValueError, match=match):
        dn.train(noisy, clean, model="deconv-2d", psf=psf, epochs=1, **options)


def test_synthetic_pairs_blur_each_sample_with_its_images_psf(two_channels):
    """Adaptation's pairs with one PSF per image: a sample drawn at channel c's level
    is blurred by psf[c] (the margin is the widest PSF's)."""
    from napari_deconvnet.core.psf import blur
    from napari_deconvnet.core.synthetic_pairs import SyntheticPairs

    clean, _, narrow, wide = two_channels
    camera = {"noise": "gaussian", "params": {"sigma": 1e-6}, "offset": 0.0, "amplitude": 1.0}
    pairs = SyntheticPairs(
        ndim=2,
        size=(32, 32),
        camera=camera,
        stats=(0.0, 1.0),
        psf=[narrow, wide],
        levels=[(1.0, 0.0, 1.0), (1.0, 0.0, 1.0)],
        n_validation=2,
        seed=0,
    )
    assert pairs.margin == (6, 6)
    phantoms = np.stack([clean[0][:44, :44], clean[1][:44, :44]])
    pick = np.array([1, 0])
    one = np.ones((2, 1, 1), np.float32)
    x, y = pairs._degrade(phantoms, np.random.default_rng(0), chosen=(pick, one, 0 * one, one))
    x, y = x[:, 0].numpy(), y[:, 0].numpy()
    inner = (slice(6, -6),) * 2
    for i, c in enumerate(pick):
        own = blur(y[i], [narrow, wide][c])[inner]
        other = blur(y[i], [narrow, wide][1 - c])[inner]
        np.testing.assert_allclose(x[i][inner], own, atol=1e-4 * float(y[i].max()))
        assert np.abs(x[i][inner] - other).max() > 1e-2 * float(y[i].max())
    with pytest.raises(ValueError, match="one PSF per image"):
        SyntheticPairs(ndim=2, size=(32, 32), camera=camera, stats=(0.0, 1.0), psf=[narrow])


def test_adapt_classical_input_takes_each_images_psf_and_statistics(two_channels):
    from napari_deconvnet.core.adapt import _classical_channel
    from napari_deconvnet.core.kinds import kind_of

    _, noisy, narrow, wide = two_channels
    net = dn.load_model("deconv-2d")
    kind = kind_of(net)
    channel = _classical_channel(net, [narrow, wide], noisy)
    patches = np.stack([noisy[1][:32, :32], noisy[0][:32, :32], noisy[1][8:40, 8:40]])
    got = channel(patches, [1, 0, 1])
    stats = kind.input_statistics(noisy)
    for i, c in enumerate([1, 0, 1]):
        psf = kind.prepare_psf([narrow, wide][c], 2, (48, 48))
        want = kind.channel_stack(patches[i : i + 1], psf, statistics=[stats[c]])
        np.testing.assert_allclose(got[i], want[0], rtol=1e-5, atol=1e-6)


def test_adapt_with_one_psf_per_channel_records_and_resumes(two_channels, tmp_path):
    clean, noisy, narrow, wide = two_channels
    save = str(tmp_path / "run.safetensors")
    options = {"seconds": None, "steps_per_epoch": 1, "batch_size": 2, "patch_size": 32}
    model = dn.adapt(
        "deconv-2d",
        np.moveaxis(noisy, 0, -1),
        psf=[narrow, wide],
        axes="YXC",
        steps=1,
        autosave=save,
        **options,
    )
    training = model.metadata["training"]
    assert training["axes"] == "YXC" and training["psf_shape"] == [[11, 11], [11, 11]]
    widths = training["conditions"]["psf_widths"]
    assert widths[0][0] < 1.2 < 2.0 < widths[1][0]
    # the record keeps both PSFs: a resume needs neither psf nor axes, and refuses others
    resumed = dn.adapt(
        "deconv-2d", np.moveaxis(noisy, 0, -1), steps=2, autosave=save, resume=save, **options
    )
    assert resumed.metadata["training"]["resumed"]
    assert resumed.metadata["training"]["psf_shape"] == [[11, 11], [11, 11]]
    with pytest.raises(ValueError, match=r"psf=.*2 PSFs \(one per channel\)"):
        dn.adapt(
            "deconv-2d", noisy, psf=[wide, narrow], axes="CYX", steps=2, resume=save, **options
        )
    with pytest.raises(ValueError, match="adapt takes one letter per axis"):
        dn.adapt("deconv-2d", noisy, psf=[narrow, wide], axes="CXY", steps=1, **options)
    with pytest.raises(ValueError, match="axes were not given"):
        dn.adapt("deconv-2d", noisy, psf=[narrow, wide], steps=1, **options)


def test_cli_train_takes_one_psf_per_channel(two_channels, tmp_path, capsys):
    """train --psf repeated, or one PSF file with a C axis, beside CYX images."""
    import tifffile

    clean, noisy, narrow, wide = two_channels
    for name, data in (("noisy", noisy), ("clean", clean), ("psfs", np.stack([narrow, wide]))):
        tifffile.imwrite(tmp_path / f"{name}.tif", data, metadata={"axes": "CYX"})
    common = ["train", "--input", str(tmp_path / "noisy.tif"), "--target",
              str(tmp_path / "clean.tif"), "--model", "deconv-2d", "--epochs", "1",
              "--batch-size", "2", "--patch-size", "16", "-q"]  # fmt: skip
    for psfs, out in (
        (["--psf", str(tmp_path / "psfs.tif")], "file.safetensors"),
        (["--psf", "gaussian:sigma=1", "--psf", "gaussian:sigma=2.2"], "kinds.safetensors"),
    ):
        assert main([*common, *psfs, "-o", str(tmp_path / out)]) == 0
        widths = dn.model_info(str(tmp_path / out))["metadata"]["training"]["conditions"]
        assert widths["psf_widths"][0][0] < 1.2 < 2.0 < widths["psf_widths"][1][0]
    capsys.readouterr()
    assert main(["info", str(tmp_path / "file.safetensors")]) == 0
    assert "training psf: one per channel (11x11, 11x11)" in capsys.readouterr().out
    three = ["--psf", "gaussian", "--psf", "gaussian", "--psf", "airy"]
    assert main([*common, *three, "-o", str(tmp_path / "x.safetensors")]) != 0
    assert "has 2 channels" in capsys.readouterr().err


def test_synthetic_training_takes_psf_names_and_dicts(two_channels):
    """A make_psf name or dict as the blur of synthetic pairs (it failed with "could not
    convert string to float"), one or one per channel, made in the network's dimensions."""
    clean = two_channels[0]
    noise = {"model": "gaussian", "sigma": 0.01}
    trainer = _trainer(clean[0], psf="gaussian", noise=noise)
    np.testing.assert_allclose(trainer.data.psf, dn.make_psf("gaussian"), atol=1e-7)
    listed = [{"kind": "gaussian", "sigma": 1.0}, {"kind": "gaussian", "sigma": 2.2}]
    trainer = _trainer(clean, psf=listed, axes="CYX", noise=noise)
    for src, spec in zip(trainer.data.sources, listed, strict=True):
        np.testing.assert_allclose(src.psf, dn.make_psf(**spec), atol=1e-7)
    assert trainer.data.psf is None  # (one per input instead)


def test_adapt_three_channels_last_is_not_rgb_when_axes_say_so(two_channels):
    """A (Y, X, 3) image is read as RGB and refused, unless axes name its C axis."""
    _, noisy, narrow, wide = two_channels
    three = np.stack([noisy[0], noisy[1], noisy[0]], axis=-1)
    options = {"seconds": None, "steps": 1, "steps_per_epoch": 1, "batch_size": 2}
    with pytest.raises(ValueError, match="axes='YXC'"):
        dn.adapt("deconv-2d", three, psf=narrow, patch_size=32, **options)
    model = dn.adapt(
        "deconv-2d", three, psf=[narrow, wide, narrow], axes="YXC", patch_size=32, **options
    )
    assert model.metadata["training"]["psf_shape"] == [[11, 11]] * 3


def test_adapt_gives_each_image_of_a_time_lapse_its_channels_psf(two_channels):
    """TCYX: the channels come first, so that image i of the stack (a plane under a 2D
    model) takes its channel's PSF, whatever the time points."""
    from napari_deconvnet.core.adapt import _channels_first, _image_psfs

    _, noisy, narrow, wide = two_channels
    stack = np.stack([noisy, noisy[::-1]])  # (T, C, Y, X)
    moved, axes = _channels_first(stack, "TCYX")
    assert axes == "CTYX" and moved.shape == (2, 2, 48, 48)
    np.testing.assert_array_equal(moved[1, 0], stack[0, 1])
    psfs = _image_psfs([narrow, wide], moved, 2)
    assert [p is wide for p in psfs] == [False, False, True, True]
    assert _image_psfs(narrow, moved, 2) is None


def test_train_preview_restores_the_viewed_channel_with_its_psf(two_channels):
    from napari_deconvnet.widgets._train_job import preview

    _, noisy, narrow, wide = two_channels
    model = dn.load_model("deconv-2d")
    request = {"index": (1, slice(0, 40), slice(4, 44)), "plane": None}
    out = preview(model, noisy, request, "cpu", [narrow, wide], "CYX")
    region = noisy[1, 0:40, 4:44]
    np.testing.assert_allclose(out, dn.restore(region, "deconv-2d", psf=wide), atol=1e-5)
    assert np.abs(out - dn.restore(region, "deconv-2d", psf=narrow)).max() > 1e-3


def test_cli_adapt_per_channel_resumes_and_cleans_up(two_channels, tmp_path, capsys):
    """napari-deconvnet adapt: a CYX file with a C-axis PSF file (one PSF per channel);
    --resume continues an interrupted run from its autosave, which is removed after."""
    import tifffile

    from napari_deconvnet.core.adapt_record import record_path
    from napari_deconvnet.core.checkpoint import resume_path

    _, noisy, narrow, wide = two_channels
    tifffile.imwrite(tmp_path / "noisy.tif", noisy, metadata={"axes": "CYX"})
    tifffile.imwrite(tmp_path / "psfs.tif", np.stack([narrow, wide]), metadata={"axes": "CYX"})
    out = tmp_path / "adapted.safetensors"
    small = ["--batch-size", "2", "--patch-size", "32", "-q"]
    command = ["adapt", str(tmp_path / "noisy.tif"), "--psf", str(tmp_path / "psfs.tif")]
    assert main([*command, "-o", str(out), *small]) == 2  # no budget
    assert "--time SECONDS" in capsys.readouterr().err
    assert main([*command, "--steps", "1", "-o", str(out), "--resume", *small]) == 2
    assert "no interrupted run" in capsys.readouterr().err
    # an interrupted run: the autosave the command keeps beside its output
    autosave = tmp_path / "adapted.autosave.safetensors"
    dn.adapt(
        "deconv-2d", noisy, psf=[narrow, wide], axes="CYX", seconds=None, steps=1,
        steps_per_epoch=1, batch_size=2, patch_size=32, autosave=str(autosave),
    )  # fmt: skip
    assert resume_path(autosave).is_file() and record_path(autosave).is_file()
    assert main([*command, "-o", str(out), *small]) == 2  # never overwritten silently
    assert "pass --resume" in capsys.readouterr().err
    assert main(["adapt", str(tmp_path / "noisy.tif"), "--steps", "2", "-o", str(out),
                 "--resume", *small]) == 0  # fmt: skip
    training = dn.model_info(str(out))["metadata"]["training"]
    assert training["resumed"] and training["psf_shape"] == [[11, 11], [11, 11]]
    assert training["fine_tuned_from"]["name"] == "deconv-2d" and training["axes"] == "CYX"
    assert not autosave.exists() and not resume_path(autosave).exists()
    assert not record_path(autosave).exists()
    # a fresh run with --psf repeated, the file's axes taken for the C axis
    fresh = tmp_path / "fresh.safetensors"
    two = ["--psf", "gaussian:sigma=1", "--psf", "gaussian:sigma=2.2", "--steps", "1"]
    assert main(["adapt", str(tmp_path / "noisy.tif"), *two, "-o", str(fresh), *small]) == 0
    assert "wrote" in capsys.readouterr().out
    assert dn.model_info(str(fresh))["metadata"]["training"]["axes"] == "CYX"
    assert main(["info", str(fresh)]) == 0  # the adaptation's PSFs, by their shapes
    assert "training psf: one per channel (" in capsys.readouterr().out


def test_rl_input_channel_of_a_patch_below_the_images_minimum_is_finite():
    """A synthetic patch's noise dips below the minimum of the image its statistics came
    from; the Richardson-Lucy channel turned that into NaN, and adapting the two_colour
    sample with one PSF per channel stopped at step 2 ("the loss became nan")."""
    from napari_deconvnet.core.adapt import adapt_iter
    from napari_deconvnet.core.kinds import kind_of
    from napari_deconvnet.core.train_types import run_events
    from napari_deconvnet.io.samples import two_colour_data

    net = dn.load_model("deconv-2d")
    kind = kind_of(net)
    psf = kind.prepare_psf(dn.make_psf("gaussian", shape=(9, 9), sigma=1.5), 2, (32, 32))
    patch = np.random.default_rng(0).normal(0.05, 0.05, (1, 32, 32)).astype(np.float32)
    assert patch.min() < 0
    channel = kind.channel_stack(patch, psf, statistics=[{"low": 0.0}])
    clipped = kind.channel_stack(np.maximum(patch, 0), psf, statistics=[{"low": 0.0}])
    assert np.isfinite(channel).all()
    np.testing.assert_array_equal(channel, clipped)
    blurred, _, psfs = two_colour_data()
    run = adapt_iter(
        "deconv-2d", blurred, psf=list(psfs), axes="CYX", seconds=None, steps=4,
        steps_per_epoch=2, device="cpu",
    )  # fmt: skip
    assert run_events(run, None).stop_reason == "epochs"


def test_a_streamed_restore_says_each_channels_psf_crop(tmp_path):
    # session 73: restore_to_zarr said only the first channel's PSF notes (a 520 nm
    # widefield PSF cropped to lose 9% of its light said nothing); each names its channel
    import warnings

    volume = np.full((2, 12, 48, 48), 0.05, np.float32)
    volume[0, 5:8, 16:32, 16:32] = 1
    volume[1, 6, 8:40, 24] = 1
    psfs = [
        {"kind": "widefield", "wavelength": w, "na": 1.4, "refractive_index": 1.518,
         "pixel_size": 65, "z_step": 200}
        for w in (461, 520)
    ]  # fmt: skip

    def crops(run):
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            run()
        return sorted(
            str(w.message).split(" of shape")[0] for w in said if "cropped" in str(w.message)
        )

    wanted = [
        "the generated 'widefield' PSF of channel 0",
        "the generated 'widefield' PSF of channel 1",
    ]
    out = tmp_path / "v.ome.zarr"
    assert (
        crops(lambda: dn.restore_to_zarr(volume, out, "deconv-3d", psf=psfs, axes="CZYX"))
        == wanted
    )
    assert crops(lambda: dn.restore(volume, "deconv-3d", psf=psfs, axes="CZYX")) == wanted
