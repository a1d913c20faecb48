"""dn.restore_to_zarr: streaming into OME-Zarr, resume after a kill, the CLI, a LocalCluster."""

import json
import sys
import threading

import numpy as np
import pytest

import napari_deconvnet as dn

zarr = pytest.importorskip("zarr")
da = pytest.importorskip("dask.array")


def _source(tmp_path, shape=(96, 80), chunks=(40, 40), seed=0):
    x = (np.random.default_rng(seed).random(shape) * 4000).astype(np.uint16)
    path = tmp_path / "big.zarr"
    arr = zarr.open_array(str(path), mode="w", shape=shape, chunks=chunks, dtype=x.dtype)
    arr[:] = x
    return path, x


def _level(path, k=0):
    return zarr.open_array(str(path / str(k)), mode="r")[:]


def test_streams_into_an_ome_zarr_equal_to_eager(tmp_path, random_net):
    net = random_net()
    src, x = _source(tmp_path)
    out = tmp_path / "out.ome.zarr"
    calls = []
    written = dn.restore_to_zarr(
        src, out, net, chunks=32, progress=lambda d, n: calls.append((d, n))
    )
    assert written == str(out)
    assert calls[-1] == (9, 9) and len(calls) == 9
    stats = dn.compute_normalization(da.from_zarr(str(src)), net)
    eager = dn.restore(x, net, normalization=stats)
    level0 = _level(out)
    assert level0.dtype == np.float32
    assert np.abs(level0 - eager).max() <= 1e-5 * np.ptp(eager)
    # pyramid from what was written; metadata last; no job folder left
    attrs = json.loads((out / ".zattrs").read_text())
    ms = attrs["multiscales"][0]
    assert ms["version"] == "0.4" and [a["name"] for a in ms["axes"]] == ["y", "x"]
    assert [d["path"] for d in ms["datasets"]] == ["0", "1", "2"]
    level1 = _level(out, 1)
    np.testing.assert_allclose(level1, level0.reshape(48, 2, 40, 2).mean(axis=(1, 3)), rtol=1e-6)
    provenance = attrs["napari_deconvnet_layer"]["metadata"]["napari_deconvnet"]
    assert provenance["streamed"] is True and provenance["block"] == [32, 32]
    assert provenance["precision"] == "float32"  # "auto" resolved (the suite keeps float32)
    assert not (out / ".napari_deconvnet_job").exists()
    # the package's reader opens it with its name and axes
    from napari_deconvnet.io.reader import read_image

    image = read_image(out)
    assert image.name == "out" and image.axes == "YX"


def test_a_streamed_stack_reads_back_in_its_own_axis_order(tmp_path):
    # session 71: a ZCYX stack came back ZCYX from the in-memory writer but CZYX (NGFF's
    # stored order) once big enough to be streamed, so evaluate refused the pair
    from napari_deconvnet.io.reader import read_image
    from napari_deconvnet.io.writer import write_ome_zarr

    rng = np.random.default_rng(0)
    stack = rng.random((3, 2, 40, 48)).astype(np.float32)  # Z, C, Y, X
    out = dn.restore_to_zarr(stack, tmp_path / "s.ome.zarr", axes="ZCYX", device="cpu")
    streamed = read_image(out)
    write_ome_zarr(tmp_path / "m.ome.zarr", stack, {"metadata": {}, "axis_labels": "zcyx"})
    in_memory = read_image(tmp_path / "m.ome.zarr")
    assert streamed.axes == in_memory.axes == "ZCYX"
    assert np.asarray(streamed.data).shape == np.asarray(in_memory.data).shape == stack.shape
    eager = dn.restore(stack, axes="ZCYX", device="cpu")
    assert np.abs(np.asarray(streamed.data) - eager).max() <= 1e-5 * np.ptp(eager)


def test_a_streamed_stack_keeps_each_axis_offset(tmp_path):
    # session 73: an ImageJ ZCYX stack with an offset streamed to NGFF's CZYX came back
    # as ZCYX with Z's 5 µm on the channel axis (the translation read in stored order)
    pytest.importorskip("tifffile")
    from napari_deconvnet.io.image_files import read_image
    from napari_deconvnet.io.writer import write_tiff

    stack = (np.random.default_rng(0).random((3, 2, 40, 48)) * 1000).astype(np.uint16)
    meta = {
        "name": "s", "axis_labels": ("z", "c", "y", "x"), "scale": (0.4, 1, 0.1, 0.1),
        "translate": (5.0, 0.0, 7.0, 9.0),
        "units": ("micrometer", None, "micrometer", "micrometer"),
    }  # fmt: skip
    write_tiff(tmp_path / "in.tif", stack, meta)
    source = read_image(tmp_path / "in.tif")
    assert source.axes == "ZCYX" and list(source.translate) == [5.0, 0.0, 7.0, 9.0]
    streamed = dn.restore_to_zarr(tmp_path / "in.tif", tmp_path / "o.ome.zarr", device="cpu")
    out = read_image(streamed)
    assert out.axes == "ZCYX"
    assert list(out.translate) == [5.0, 0.0, 7.0, 9.0]
    assert list(out.scale) == pytest.approx([0.4, 1.0, 0.1, 0.1])


def test_killed_then_resumed_equals_uninterrupted(tmp_path, random_net):
    net = random_net()
    src, _ = _source(tmp_path)
    whole = tmp_path / "whole.ome.zarr"
    dn.restore_to_zarr(src, whole, net, chunks=32)
    part = tmp_path / "part.ome.zarr"
    stop = threading.Event()

    def kill_after_4(done, total):
        if done == 4:
            stop.set()

    with pytest.raises(dn.Cancelled, match="4 of 9 blocks"):
        dn.restore_to_zarr(src, part, net, chunks=32, progress=kill_after_4, stop=stop)
    assert len(list((part / ".napari_deconvnet_job" / "done").iterdir())) == 4
    assert not (part / ".zattrs").exists() or "multiscales" not in (part / ".zattrs").read_text()
    seen = []
    dn.restore_to_zarr(src, part, net, chunks=32, progress=lambda d, n: seen.append(d))
    assert seen == [5, 6, 7, 8, 9]  # finished blocks are skipped
    np.testing.assert_array_equal(_level(part), _level(whole))
    np.testing.assert_array_equal(_level(part, 1), _level(whole, 1))
    # a finished identical job returns at once; other settings are refused
    seen.clear()
    dn.restore_to_zarr(src, part, net, chunks=32, progress=lambda d, n: seen.append(d))
    assert seen == [9]
    with pytest.raises(ValueError, match="overwrite=True"):
        dn.restore_to_zarr(src, part, net, chunks=48)
    dn.restore_to_zarr(src, part, net, chunks=48, overwrite=True)
    assert zarr.open_array(str(part / "0"), mode="r").chunks == (48, 48)


def test_other_content_at_the_same_path_is_another_job(tmp_path, random_net):
    # the fingerprint named the source's path only: the next acquisition written to the
    # same file resumed into the previous one's half (one image stitched from two), or
    # returned at once as its result; with fixed statistics nothing else told them apart
    tifffile = pytest.importorskip("tifffile")
    net = random_net()
    fixed = {"offset": 0.0, "scale": 4000.0}
    frame = tmp_path / "frame.tif"
    rng = np.random.default_rng(8)
    first, second = ((rng.random((96, 80)) * 4000).astype(np.uint16) for _ in range(2))
    tifffile.imwrite(frame, first)
    out = tmp_path / "out.ome.zarr"
    stop = threading.Event()
    with pytest.raises(dn.Cancelled):
        dn.restore_to_zarr(
            frame, out, net, chunks=32, normalization=fixed, stop=stop,
            progress=lambda d, n: d == 4 and stop.set(),
        )  # fmt: skip
    tifffile.imwrite(frame, second)
    with pytest.raises(ValueError, match="unfinished restore of other data"):
        dn.restore_to_zarr(frame, out, net, chunks=32, normalization=fixed)
    tifffile.imwrite(frame, first)  # the same content again: resumed
    dn.restore_to_zarr(frame, out, net, chunks=32, normalization=fixed)
    want = dn.restore(first, net, normalization=fixed)
    np.testing.assert_allclose(_level(out), want, atol=1e-5 * np.ptp(want))
    tifffile.imwrite(frame, second)  # finished: not returned as the new frame's result
    with pytest.raises(ValueError, match="holds other data"):
        dn.restore_to_zarr(frame, out, net, chunks=32, normalization=fixed)
    # arrays alike: another array of the same shape and statistics is other data
    x = first.astype(np.float32)
    dn.restore_to_zarr(x, tmp_path / "a.ome.zarr", net, chunks=32)
    with pytest.raises(ValueError, match="holds other data"):
        dn.restore_to_zarr(x[::-1].copy(), tmp_path / "a.ome.zarr", net, chunks=32)


def test_a_job_begun_before_content_digests_resumes_with_a_warning(
    tmp_path, random_net, monkeypatch
):
    # the digest made every unfinished job (and finished output) of the version before
    # "other data": a pipeline's rerun failed, an interrupted long job started over
    from napari_deconvnet.core import ome_zarr, streaming

    net = random_net()
    src, _ = _source(tmp_path)
    whole, part = tmp_path / "whole.ome.zarr", tmp_path / "part.ome.zarr"
    dn.restore_to_zarr(src, whole, net, chunks=32)
    seen_args = []
    prepare = ome_zarr.prepare_target

    def spy(*args, **kwargs):
        seen_args.append(kwargs["legacy"])
        return prepare(*args, **kwargs)

    monkeypatch.setattr(streaming, "prepare_target", spy)
    stop = threading.Event()
    with pytest.raises(dn.Cancelled):
        dn.restore_to_zarr(
            src, part, net, chunks=32, stop=stop, progress=lambda d, n: d == 4 and stop.set()
        )
    # as the version before wrote it: the fingerprint without the content
    job = part / ".napari_deconvnet_job" / "job.json"
    job.write_text(json.dumps({"fingerprint": seen_args[0]}))
    seen = []
    with pytest.warns(UserWarning, match="did not record what the source holds"):
        dn.restore_to_zarr(src, part, net, chunks=32, progress=lambda d, n: seen.append(d))
    assert seen == [5, 6, 7, 8, 9]  # resumed, not refused
    np.testing.assert_array_equal(_level(part), _level(whole))


def test_a_run_begun_in_bfloat16_is_not_continued_in_float32(tmp_path, random_net):
    import warnings

    net = random_net()
    src, _ = _source(tmp_path)
    part = tmp_path / "part.ome.zarr"
    stop = threading.Event()

    def kill_after_4(done, total):
        if done == 4:
            stop.set()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # emulated on CPUs without AMX
        with pytest.raises(dn.Cancelled):
            dn.restore_to_zarr(
                src, part, net, chunks=32, precision="bfloat16", progress=kill_after_4, stop=stop
            )
        # "auto" is float32 here (on an AMX CPU it would be bfloat16 and continue)
        with pytest.raises(ValueError, match="precision: a run begun in bfloat16"):
            dn.restore_to_zarr(src, part, net, chunks=32)
        seen = []
        dn.restore_to_zarr(
            src, part, net, chunks=32, precision="bfloat16", progress=lambda d, n: seen.append(d)
        )
    assert seen == [5, 6, 7, 8, 9]  # continued as it began
    attrs = json.loads((part / ".zattrs").read_text())
    assert attrs["napari_deconvnet_layer"]["metadata"]["napari_deconvnet"]["precision"] == (
        "bfloat16"
    )


def test_sources_npy_tiff_numpy_and_ome_zarr_axes(tmp_path, random_net):
    tifffile = pytest.importorskip("tifffile")
    net = random_net()
    x = np.random.default_rng(1).random((2, 40, 36)).astype(np.float32)
    want = dn.restore(x, net, axes="ZYX")
    np.save(tmp_path / "x.npy", x)
    tifffile.imwrite(tmp_path / "x.tif", x)
    for source in (tmp_path / "x.npy", tmp_path / "x.tif", x):
        out = tmp_path / f"o{len(list(tmp_path.iterdir()))}.ome.zarr"
        dn.restore_to_zarr(source, out, net, axes="ZYX", chunks=16)
        np.testing.assert_allclose(_level(out), want, atol=1e-5 * np.ptp(want))
    # an OME-Zarr source: its axes (TCZYX order) and scale are kept
    from napari_deconvnet.io.writer import write_ome_zarr

    rgb = np.random.default_rng(2).random((32, 40, 3)).astype(np.float32)
    write_ome_zarr(tmp_path / "rgb.ome.zarr", rgb, {"rgb": True, "scale": (0.5, 0.5)})
    out = tmp_path / "rgb_out.ome.zarr"
    dn.restore_to_zarr(tmp_path / "rgb.ome.zarr", out, net)
    ms = json.loads((out / ".zattrs").read_text())["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["c", "y", "x"]
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [1.0, 0.5, 0.5]
    # restored as colour, as in memory (its layer document says so; session 66: as
    # three channels, axes="YXC")
    want = dn.restore(rgb, net).transpose(2, 0, 1)
    np.testing.assert_allclose(_level(out), want, atol=1e-5 * np.ptp(want))


def test_conditioned_model_streams(tmp_path):
    net = dn.DeconvNet(ndim=2, in_channels=2, out_channels=1, depth=1, residual_input=1)
    net.metadata = {
        "name": "sp-test",
        "conditioning": {"method": "switching-median", "largest": 7},
        "impulse_switch": True,
    }
    clean = np.random.default_rng(3).uniform(0.2, 0.8, (64, 72)).astype(np.float32)
    noisy = dn.synthesize(clean, "salt-and-pepper", amount=0.1, seed=4)
    out = tmp_path / "sp.ome.zarr"
    dn.restore_to_zarr(noisy, out, net, chunks=24)
    np.testing.assert_allclose(_level(out), dn.restore(noisy, net), atol=1e-5)


def test_bad_arguments(tmp_path, random_net):
    with pytest.raises(ValueError, match="does not exist"):
        dn.restore_to_zarr(tmp_path / "missing.zarr", tmp_path / "o.zarr", random_net())
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="cannot stream"):
        dn.restore_to_zarr(tmp_path / "notes.txt", tmp_path / "o.zarr", random_net())
    with pytest.raises(ValueError, match="chunks"):
        dn.restore_to_zarr(np.zeros((32, 32)), tmp_path / "o.zarr", random_net(), chunks=0)
    (tmp_path / "taken.zarr").mkdir()  # (an empty folder is used: it holds nothing)
    (tmp_path / "taken.zarr" / ".zgroup").write_text('{"zarr_format": 2}')
    with pytest.raises(ValueError, match="overwrite=True"):
        dn.restore_to_zarr(np.zeros((32, 32)), tmp_path / "taken.zarr", random_net())


def test_cli_streams_and_resumes(tmp_path, random_net):
    from napari_deconvnet.cli import main

    net = random_net()
    dn.save_model(net, tmp_path / "m.safetensors")
    src, _ = _source(tmp_path, shape=(1100, 40), chunks=(256, 40))
    out = tmp_path / "out.ome.zarr"
    # a killed run left 1 of its 2 default (1024-pixel) blocks ...
    stop = threading.Event()
    with pytest.raises(dn.Cancelled):
        dn.restore_to_zarr(
            src,
            out,
            tmp_path / "m.safetensors",
            progress=lambda d, n: stop.set(),
            stop=stop,
        )
    # ... and the command line finishes it
    code = main(["restore", str(src), "-o", str(out), "--model", str(tmp_path / "m.safetensors")])
    assert code == 0
    assert "multiscales" in json.loads((out / ".zattrs").read_text())
    whole = tmp_path / "whole.ome.zarr"
    dn.restore_to_zarr(src, whole, tmp_path / "m.safetensors")
    np.testing.assert_array_equal(_level(out), _level(whole))


def test_cli_streaming_refuses_refinement_in_words(tmp_path, capsys):
    from napari_deconvnet.cli import main

    src, _ = _source(tmp_path)
    args = ["restore", str(src), "-o", str(tmp_path / "o.ome.zarr"), "--method", "deconv-2d"]
    code = main([*args, "--psf", "gaussian", "--param", "refine_gain=0.5"])
    err = capsys.readouterr().err
    assert code == 2 and "refine_gain" in err and "-o out.tif" in err
    assert "unexpected keyword" not in err  # (restore_to_zarr's TypeError, said raw)
    assert not (tmp_path / "o.ome.zarr").exists()
    # the self-ensemble refused, decorrelation left out, in the command line's words
    # (they named dn.restore and restore_to_zarr)
    plain = ["restore", str(src), "-o", str(tmp_path / "o.ome.zarr"), "--method", "denoise-2d"]
    assert main([*plain, "--param", "ensemble=2"]) == 2
    err = capsys.readouterr().err
    assert "--param ensemble=2" in err and "-o out.tif" in err and "restore_to_zarr" not in err
    assert main([*plain, "--param", "decorrelate=true", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "--param decorrelate=True is not applied to a .zarr output" in err
    assert "dask" not in err


# ------------------------------------------------------------------ cluster


#: Workers start from a fork server: a fresh single-threaded process. A plain fork
#: of this process copies whatever locks its other threads hold at that moment (a
#: worker once hung for good in a log handler's flush, inherited from the
#: scheduler's thread); spawn is safe too, but imports torch again per worker.
_START = "forkserver" if sys.platform.startswith("linux") else "spawn"


def _loads():
    from napari_deconvnet.core import blocks

    return dict(blocks.MODEL_LOADS)


def _forget_models():
    # workers start with an empty model cache (a worker forked from this process
    # would inherit its cache): made sure of, so that the counts below are theirs
    from napari_deconvnet.core import blocks

    blocks.MODEL_LOADS.clear()
    blocks.MODEL_CACHE.clear()


@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::DeprecationWarning")
def test_local_cluster_with_processes(tmp_path, random_net):
    distributed = pytest.importorskip("distributed")
    import dask

    net = random_net()
    src, x = _source(tmp_path, shape=(80, 72), chunks=(40, 40))
    local = tmp_path / "local.ome.zarr"
    dn.restore_to_zarr(src, local, net, chunks=32, client=False)
    lazy_x = da.from_zarr(str(src))
    stats = dn.compute_normalization(lazy_x, net)
    eager = dn.restore(x, net, normalization=stats)
    with (
        dask.config.set({"distributed.worker.multiprocessing-method": _START}),
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.run(_forget_models)
        remote = tmp_path / "remote.ome.zarr"
        calls = []
        dn.restore_to_zarr(
            src, remote, net, chunks=32, client=client, progress=lambda d, n: calls.append(d)
        )
        lazy = dn.restore(lazy_x, net).compute()  # the default client computes it
        loads = client.run(_loads)
    np.testing.assert_array_equal(_level(remote), _level(local))
    assert calls == list(range(1, 10))  # each finished block counted (was 0 nine times)
    assert np.abs(lazy - eager).max() <= 1e-5 * np.ptp(eager)
    # each worker built the model once (weights broadcast once, cached per process)
    assert len(loads) == 2 and any(loads.values())
    for per_worker in loads.values():
        assert all(count == 1 for count in per_worker.values()), loads


@pytest.mark.parametrize("given", ["path", "dask", "zarr"])
@pytest.mark.parametrize("where", ["same", "inside"])
def test_a_target_that_is_the_source_is_refused_before_anything_is_touched(
    tmp_path, random_net, where, given
):
    import dask.array as da

    net = random_net()
    src, x = _source(tmp_path)
    target = src if where == "same" else src / "restored.ome.zarr"
    before = sorted(p.name for p in src.rglob("*"))
    # a dask array read from the store: it deleted its own data and streamed zeros
    # (session 70: a zarr array object too, its store deleted and zeros restored)
    source = {"path": src, "dask": da.from_zarr(str(src)),
              "zarr": zarr.open_array(str(src), mode="r")}[given]  # fmt: skip
    with pytest.raises(ValueError, match="is the source .* or overlaps it"):
        dn.restore_to_zarr(source, target, net, overwrite=True)
    assert sorted(p.name for p in src.rglob("*")) == before  # nothing deleted or added
    np.testing.assert_array_equal(zarr.open_array(str(src), mode="r")[:], x)


def test_overwrite_replaces_an_earlier_output_but_never_a_folder_of_other_files(
    tmp_path, random_net
):
    net = random_net()
    src, _x = _source(tmp_path)
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "chapter1.txt").write_text("months of work")
    with pytest.raises(ValueError, match="holds no zarr store"):
        dn.restore_to_zarr(src, folder, net, overwrite=True)
    assert (folder / "chapter1.txt").read_text() == "months of work"
    plain = tmp_path / "notes.ome.zarr"  # a file, whatever its name says
    plain.write_text("not a store")
    with pytest.raises(ValueError, match="is a file, not a zarr store"):
        dn.restore_to_zarr(src, plain, net, overwrite=True)
    assert plain.read_text() == "not a store"
    out = tmp_path / "out.ome.zarr"
    dn.restore_to_zarr(src, out, net, chunks=48)
    first = _level(out)
    dn.restore_to_zarr(src, out, net, chunks=48, overwrite=True)  # an output: replaced
    np.testing.assert_array_equal(_level(out), first)


def test_overwrite_keeps_the_old_result_until_the_new_one_is_complete(tmp_path, random_net):
    # session 73: overwrite=True deleted a finished result before the first block of the
    # new run, so that a Ctrl-C or a failure left neither; the new one is written beside
    # it now, swapped in when complete, and a rerun resumes it
    from napari_deconvnet.core.ome_zarr import staging_folder

    net, other = random_net(), random_net(seed=1)
    src, _x = _source(tmp_path)
    out = tmp_path / "out.ome.zarr"
    dn.restore_to_zarr(src, out, net, chunks=32)
    old = _level(out)
    stop = threading.Event()
    with pytest.raises(dn.Cancelled, match="4 of 9 blocks; run again with overwrite=True"):
        dn.restore_to_zarr(
            src, out, other, chunks=32, overwrite=True, stop=stop,
            progress=lambda d, n: d == 4 and stop.set(),
        )  # fmt: skip
    np.testing.assert_array_equal(_level(out), old)  # the old result, whole
    assert json.loads((out / ".zattrs").read_text())["multiscales"]
    assert staging_folder(out).is_dir() and not (out / ".napari_deconvnet_job").exists()
    seen = []
    dn.restore_to_zarr(
        src, out, other, chunks=32, overwrite=True, progress=lambda d, n: seen.append(d)
    )
    assert seen == [5, 6, 7, 8, 9]  # the replacement resumed
    fresh = tmp_path / "fresh.ome.zarr"
    dn.restore_to_zarr(src, fresh, other, chunks=32)
    np.testing.assert_array_equal(_level(out), _level(fresh))
    np.testing.assert_array_equal(_level(out, 1), _level(fresh, 1))
    assert not staging_folder(out).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "big.zarr", "fresh.ome.zarr", "out.ome.zarr",
    ]  # fmt: skip
    assert json.loads((out / ".zattrs").read_text())["multiscales"][0]["name"] == "out"
    # resume=False starts an interrupted replacement anew (it was refused, naming the
    # hidden folder); a name near the file system's limit is replaced too (review)
    stop.clear()
    with pytest.raises(dn.Cancelled):
        dn.restore_to_zarr(
            src, out, net, chunks=32, overwrite=True, stop=stop,
            progress=lambda d, n: d == 2 and stop.set(),
        )  # fmt: skip
    seen.clear()
    dn.restore_to_zarr(
        src, out, net, chunks=32, overwrite=True, resume=False,
        progress=lambda d, n: seen.append(d),
    )  # fmt: skip
    assert seen[0] == 1 and not staging_folder(out).exists()
    np.testing.assert_array_equal(_level(out), old)
    long = tmp_path / ("L" * 240 + ".ome.zarr")
    dn.restore_to_zarr(src, long, net, chunks=48)
    dn.restore_to_zarr(src, long, other, chunks=48, overwrite=True)
    assert len(staging_folder(long).name.encode()) <= 255


@pytest.mark.parametrize("left", ["empty folder", "job folder only"])
def test_a_target_a_kill_left_with_nothing_written_is_started_afresh(tmp_path, random_net, left):
    # a kill between creating the job folder and writing its job file left a target
    # every rerun refused as "other data"
    from napari_deconvnet.core.ome_zarr import JOB_DIR

    net = random_net()
    src, _x = _source(tmp_path)
    out = tmp_path / "out.ome.zarr"
    out.mkdir()
    if left == "job folder only":
        (out / JOB_DIR / "done").mkdir(parents=True)
    dn.restore_to_zarr(src, out, net, chunks=48)
    fresh = tmp_path / "fresh.ome.zarr"
    dn.restore_to_zarr(src, fresh, net, chunks=48)
    np.testing.assert_array_equal(_level(out), _level(fresh))


def test_a_resume_after_the_last_block_reports_all_blocks_done(tmp_path):
    # killed after its last block, the rerun wrote the pyramid without one progress call
    image = np.random.default_rng(0).random((96, 96)).astype(np.float32)
    target = tmp_path / "k.ome.zarr"

    def killed_at_the_end(done, total):
        if done == total:
            raise KeyboardInterrupt  # as a kill after the last block, before the pyramid

    with pytest.raises(KeyboardInterrupt):
        dn.restore_to_zarr(image, target, chunks=48, device="cpu", progress=killed_at_the_end)
    calls = []
    dn.restore_to_zarr(image, target, chunks=48, device="cpu", progress=lambda *c: calls.append(c))
    assert calls == [(4, 4)]


@pytest.mark.parametrize("inner", ["", "/0"])
def test_an_unfinished_streamed_restore_is_refused_as_a_source(tmp_path, inner):
    """Session 70: an unfinished target given as a source was refused as a group without
    metadata, with advice to pass its level 0, which was then read (75% unwritten zeros)
    into a "finished" result."""
    x = np.random.default_rng(0).normal(0.5, 0.1, (64, 60)).astype(np.float32)
    stop = threading.Event()
    half = tmp_path / "half.ome.zarr"
    with pytest.raises(dn.Cancelled):
        dn.restore_to_zarr(x, half, "denoise-2d", chunks=16, stop=stop, device="cpu",
                           progress=lambda done, total: done >= 2 and stop.set())  # fmt: skip
    with pytest.raises(ValueError, match="unfinished streamed restore.*run restore_to_zarr"):
        dn.restore_to_zarr(f"{half}{inner}", tmp_path / "next.ome.zarr", "denoise-2d")
    assert not (tmp_path / "next.ome.zarr").exists()


def test_a_zarr_array_source_beside_its_target_in_one_group_is_accepted(tmp_path):
    """Review of session 70: a zarr array object was checked by its store's root (the
    group), so a target beside it in the group was refused as overlapping it."""
    rng = np.random.default_rng(0)
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    raw = group.create_array("raw", shape=(48, 48), chunks=(48, 48), dtype="f4")
    raw[:] = rng.random((48, 48), dtype=np.float32)
    dn.restore_to_zarr(raw, tmp_path / "g.zarr" / "out.ome.zarr", "denoise-2d", device="cpu")
    for target in (tmp_path / "g.zarr" / "raw", tmp_path / "g.zarr"):  # itself, or holding it
        with pytest.raises(ValueError, match="is the source .* or overlaps it"):
            dn.restore_to_zarr(raw, target, "denoise-2d", device="cpu", overwrite=True)
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "g.zarr" / "raw"))[:], raw[:])
