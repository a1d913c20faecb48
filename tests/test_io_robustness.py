"""File I/O on awkward input: broken TIFFs, OME-TIFF dtypes, unfinished streamed targets,
and the geometry of TIFFs that are streamed."""

import json
import threading

import dask.array as da
import numpy as np
import pytest
import tifffile
import zarr

import napari_deconvnet as dn
from napari_deconvnet.core.ome_zarr import JOB_DIR
from napari_deconvnet.core.sources import open_source
from napari_deconvnet.io import restored_reader
from napari_deconvnet.io.image_files import tiff_geometry
from napari_deconvnet.io.reader import read_image
from napari_deconvnet.io.writer import write_image


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------- broken files


@pytest.mark.parametrize(
    "content",
    [b"II*\x00\x08\x00\x00\x00", b"II*\x00\x00\x00\x00\x00", b"not a tiff at all", b""],
    ids=["page-less", "no-ifd", "garbage", "empty"],
)
def test_a_broken_tiff_is_a_value_error_naming_the_file(tmp_path, content):
    path = tmp_path / "broken.tif"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="broken.tif") as info:
        read_image(path)
    assert type(info.value) is ValueError
    with pytest.raises(ValueError, match="broken.tif"):
        open_source(path)  # what a streamed restore opens


def test_the_page_less_tiff_says_it_has_no_image(tmp_path):
    path = tmp_path / "c.tif"
    path.write_bytes(b"II*\x00\x08\x00\x00\x00")
    with pytest.raises(ValueError, match=r"no image data in this TIFF \(corrupt or empty\)"):
        read_image(path)


def test_a_parser_error_is_kept_as_the_cause(tmp_path):
    path = tmp_path / "bad.npy"
    path.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ValueError, match="bad.npy") as info:
        read_image(path)
    assert info.value.__cause__ is not None


# --------------------------------------------------------- OME-TIFF dtypes


@pytest.mark.parametrize(
    ("dtype", "stored"),
    [(np.float16, np.float32), (">f2", np.float32), (np.int64, np.int32), (np.uint64, np.uint32)],
)
@pytest.mark.parametrize("lazy", [False, True], ids=["numpy", "dask"])
def test_ome_tiff_takes_float16_and_64_bit_integers_that_fit(tmp_path, dtype, stored, lazy):
    x = (np.arange(64).reshape(8, 8) * 3).astype(dtype)
    data = da.from_array(x, chunks=4) if lazy else x
    path = tmp_path / "x.ome.tif"
    meta = {"name": "x", "scale": (0.5, 0.25), "units": ("micrometer", "micrometer")}
    assert write_image(path, data, meta) == [str(path)]
    image = read_image(path)
    assert image.data.dtype == stored
    np.testing.assert_array_equal(image.data, x.astype(stored))  # lossless
    assert image.scale == [0.5, 0.25] and image.units == ["micrometer", "micrometer"]
    assert _files(tmp_path) == ["x.ome.tif"]


@pytest.mark.parametrize(
    ("dtype", "value"), [(np.int64, 2**40), (np.int64, -(2**40)), (np.uint64, 2**33)]
)
def test_ome_tiff_refuses_64_bit_values_it_cannot_hold_and_leaves_nothing(tmp_path, dtype, value):
    x = np.zeros((8, 8), dtype)
    x[3, 4] = value
    with pytest.raises(ValueError, match=r"OME-TIFF holds .*\.ome\.zarr"):
        write_image(tmp_path / "x.ome.tif", x, {"name": "x"})
    assert _files(tmp_path) == []
    # an existing file is kept
    write_image(tmp_path / "x.ome.tif", np.ones((8, 8), np.uint16), {"name": "x"})
    with pytest.raises(ValueError, match="OME-TIFF"):
        write_image(tmp_path / "x.ome.tif", da.from_array(x, chunks=4), {"name": "x"})
    assert _files(tmp_path) == ["x.ome.tif"]
    np.testing.assert_array_equal(read_image(tmp_path / "x.ome.tif").data, 1)
    # OME-Zarr holds them
    write_image(tmp_path / "x.ome.zarr", x, {"name": "x"})
    np.testing.assert_array_equal(read_image(tmp_path / "x.ome.zarr").data, x)


# ------------------------------------------------- unfinished streamed targets


def _cancelled_run(tmp_path, net, after=2):
    rng = np.random.default_rng(0)
    x = (rng.random((130, 140)) * 4000).astype(np.uint16)
    src = tmp_path / "src.zarr"
    arr = zarr.open_array(str(src), mode="w", shape=x.shape, chunks=(50, 50), dtype=x.dtype)
    arr[:] = x
    target = tmp_path / "out.ome.zarr"
    stop = threading.Event()

    def cancel(done, total):
        assert total == 9
        if done == after:
            stop.set()

    with pytest.raises(dn.Cancelled, match=f"{after} of 9 blocks"):
        dn.restore_to_zarr(src, target, net, chunks=48, progress=cancel, stop=stop)
    assert (target / JOB_DIR).is_dir()
    return src, target


def test_an_unfinished_streamed_restore_is_not_read_as_an_image(tmp_path, random_net, monkeypatch):
    net = random_net()
    src, target = _cancelled_run(tmp_path, net)
    for path in (target, str(target) + "/"):
        with pytest.raises(ValueError, match="unfinished streamed restore") as info:
            read_image(path)
        assert "run restore_to_zarr (or the CLI) again" in str(info.value)
    shown = []
    monkeypatch.setattr(restored_reader, "notify", lambda kind, msg: shown.append((kind, msg)))
    assert restored_reader.read_restored(target) == [(None,)]
    reader = restored_reader.get_reader(str(target))
    assert reader is not None and reader(str(target)) == [(None,)]
    assert len(shown) == 2 and all(k == "error" and "unfinished" in m for k, m in shown)
    # finishing the run makes it an image
    dn.restore_to_zarr(src, target, net, chunks=48)
    assert not (target / JOB_DIR).exists()
    image = read_image(target)
    assert image.axes == "YX" and image.data.shape == (130, 140)
    assert np.count_nonzero(np.asarray(image.data)) > 0.9 * image.data.size


# ------------------------------------------------------ TIFF geometry, streamed


def _imagej_stack(path, shape=(3, 40, 44)):
    x = (np.random.default_rng(1).random(shape) * 3000).astype(np.uint16)
    tifffile.imwrite(
        path,
        x,
        imagej=True,
        resolution=(1 / 0.2, 1 / 0.2),
        metadata={"axes": "ZYX", "spacing": 1.5, "unit": "um"},
    )
    return x


def test_open_source_reads_the_geometry_of_an_imagej_tiff(tmp_path):
    path = tmp_path / "stack.tif"
    x = _imagej_stack(path)
    array, source, info = open_source(path)
    assert source is not None and array.shape == x.shape
    assert info["axes"] == "ZYX"
    np.testing.assert_allclose(info["scale"], [1.5, 0.2, 0.2])
    assert info["units"] == ["micrometer"] * 3
    assert tiff_geometry(path) == info


def test_open_source_reads_the_geometry_of_the_packages_own_tiffs(tmp_path):
    x = np.random.default_rng(2).random((4, 24, 20)).astype(np.float32)
    meta = {
        "name": "v",
        "scale": (2.0, 0.1, 0.125),
        "translate": (1.0, 0.0, 0.0),
        "units": ("micrometer", "micrometer", "micrometer"),
    }
    for name in ("v.ome.tif", "v.tif"):
        write_image(tmp_path / name, x, meta)
        _, _, info = open_source(tmp_path / name)
        image = read_image(tmp_path / name)
        assert info["axes"] == image.axes == "ZYX"
        np.testing.assert_allclose(info["scale"], image.scale)
        np.testing.assert_allclose(info["scale"], [2.0, 0.1, 0.125])
        assert info["units"] == image.units == ["micrometer"] * 3
    # float64 is a plain TIFF: its geometry is in the layer document
    write_image(tmp_path / "d.tif", x.astype(np.float64), meta)
    _, _, info = open_source(tmp_path / "d.tif")
    np.testing.assert_allclose(info["scale"], [2.0, 0.1, 0.125])
    assert info["translate"] == [1.0, 0.0, 0.0]


def test_a_plain_tiff_without_geometry_gives_none(tmp_path):
    tifffile.imwrite(tmp_path / "p.tif", np.zeros((16, 16), np.uint16))
    _, _, info = open_source(tmp_path / "p.tif")
    assert "scale" not in info and "units" not in info


def test_a_streamed_imagej_tiff_keeps_its_scale_and_units(tmp_path, random_net):
    path = tmp_path / "stack.tif"
    _imagej_stack(path)
    out = tmp_path / "out.ome.zarr"
    dn.restore_to_zarr(path, out, random_net(), chunks=48)
    ms = json.loads((out / ".zattrs").read_text())["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["z", "y", "x"]
    assert [a.get("unit") for a in ms["axes"]] == ["micrometer"] * 3
    scale = ms["datasets"][0]["coordinateTransformations"][0]
    assert scale["type"] == "scale"
    np.testing.assert_allclose(scale["scale"], [1.5, 0.2, 0.2])
    # as the in-memory path: read, restore, write
    raw = read_image(path)
    restored = read_image(out)
    np.testing.assert_allclose(restored.scale, raw.scale)
    assert restored.units == raw.units == ["micrometer"] * 3


def test_a_streamed_hyperstack_keeps_its_scale_whatever_its_axis_order(tmp_path, random_net):
    """An ImageJ ZCYX hyperstack: the file's order is not NGFF's CZYX, so the
    per-axis scale must be matched by letter (it was dropped)."""
    net = random_net(ndim=2)
    x = (np.random.default_rng(7).random((3, 2, 40, 48)) * 1000).astype(np.uint16)
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(
        path,
        x,
        imagej=True,
        resolution=(1 / 0.2, 1 / 0.2),
        metadata={"axes": "ZCYX", "spacing": 1.5, "unit": "um"},
    )
    out = tmp_path / "hyper.ome.zarr"
    dn.restore_to_zarr(path, out, net, client=False)
    ms = json.loads((out / ".zattrs").read_text())["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["c", "z", "y", "x"]
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == pytest.approx(
        [1.0, 1.5, 0.2, 0.2]
    )
    assert [a.get("unit") for a in ms["axes"]][1:] == ["micrometer"] * 3


def test_a_streamed_rgb_image_reads_back_as_rgb(tmp_path):
    from skimage import data

    rgb = data.astronaut()[:96, :80]
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, rgb, photometric="rgb")
    out = tmp_path / "rgb.ome.zarr"
    dn.restore_to_zarr(path, out, client=False)
    image = read_image(out)
    assert image.axes == "YXS" and image.data.shape == (96, 80, 3)
    eager = dn.restore(rgb, axes="YXS")
    got = np.asarray(image.data)
    assert np.abs(got - eager).max() <= 1e-5 * np.ptp(eager)


# ------------------------------------------------------------- what the writers refuse


@pytest.mark.parametrize("suffix", [".tif", ".ome.tif", ".ome.zarr"])
@pytest.mark.parametrize(
    "data, meta, message",
    [
        (np.arange(10.0), {}, "1-D image"),
        (np.zeros((0, 16), np.float32), {}, "no pixels"),
        (np.array([[1, "a"]], dtype=object), {}, "cannot write object data"),
        (np.ones((4, 4), np.complex64), {}, "cannot write complex64 data"),
        (np.ones((16, 16), np.float32), {"rgb": True}, "marked RGB"),
        (np.ones((16, 16), np.float32), {"scale": (float("nan"), 1.0)}, "zero, NaN or infinite"),
        (np.ones((16, 16), np.float32), {"scale": (0.0, 1.0)}, "zero, NaN or infinite"),
        (np.ones((16, 16), np.float32), {"translate": (np.inf, 0.0)}, "not finite"),
    ],
    ids=["1d", "empty", "object", "complex", "rgb-flag", "nan-scale", "zero-scale", "inf-shift"],
)
def test_writers_refuse_what_they_could_not_read_back_and_leave_nothing(
    tmp_path, suffix, data, meta, message
):
    with pytest.raises(ValueError, match=message):
        write_image(tmp_path / f"out{suffix}", data, meta)
    assert _files(tmp_path) == []


@pytest.mark.parametrize("suffix", [".tif", ".ome.tif", ".ome.zarr"])
def test_a_negative_scale_is_written_as_a_pixel_size_and_read_back_flipped(tmp_path, suffix):
    data = np.random.default_rng(0).random((3, 8, 8)).astype(np.float32)
    path = tmp_path / f"flip{suffix}"
    write_image(path, data, {"scale": (2.0, -0.5, 0.25), "units": ("um", "um", "um")})
    image = read_image(path)
    assert list(image.scale) == [2.0, -0.5, 0.25]
    np.testing.assert_array_equal(np.asarray(image.data), data)
    if suffix == ".tif":
        with tifffile.TiffFile(path) as tif:
            numerator, denominator = tif.pages[0].tags["YResolution"].value
            assert numerator / denominator == pytest.approx(2.0)  # 1 / |-0.5|


# ------------------------------------------------- files without axes (session 59)


def test_an_rgb_npy_opens_as_rgb_and_restores_as_colour(tmp_path):
    """A (Y, X, 3) .npy opened as grey 40x3-pixel planes while its restore (the axes
    restore guesses) treated the last axis as colour: both layers are RGB now."""
    rgb = (np.random.default_rng(1).random((24, 32, 3)) * 255).astype(np.uint8)
    np.save(tmp_path / "c.npy", rgb)
    assert read_image(tmp_path / "c.npy").rgb
    raw, restored = restored_reader.read_restored(tmp_path / "c.npy", model="denoise-2d")
    assert raw[1]["rgb"] and restored[1]["rgb"]
    np.testing.assert_allclose(restored[0], dn.restore(rgb, "denoise-2d"), atol=1e-6)
    grey = np.zeros((24, 32, 5), np.float32)  # five channels: not colour
    np.save(tmp_path / "g.npy", grey)
    assert not read_image(tmp_path / "g.npy").rgb


def test_a_grey_png_with_alpha_opens_as_rgba(tmp_path):
    """Grey with alpha (PNG "LA") opened as two channels, which napari showed as
    48x2-pixel planes; it opens as RGBA, grey in the three colours, alpha kept."""
    from PIL import Image

    rng = np.random.default_rng(2)
    grey = (rng.random((20, 24)) * 255).astype(np.uint8)
    alpha = np.where(rng.random((20, 24)) > 0.3, 255, 0).astype(np.uint8)
    Image.fromarray(np.stack([grey, alpha], -1), mode="LA").save(tmp_path / "la.png")
    image = read_image(tmp_path / "la.png")
    assert image.rgb and image.data.shape == (20, 24, 4)
    for c in range(3):
        np.testing.assert_array_equal(image.data[..., c], grey)
    np.testing.assert_array_equal(image.data[..., 3], alpha)


def test_npy_files_that_are_not_arrays_say_so_without_pickle_advice(tmp_path):
    (tmp_path / "text.npy").write_text("hello")
    with pytest.raises(ValueError, match="is not a .npy file") as info:
        read_image(tmp_path / "text.npy")
    assert "pickle" not in str(info.value)  # numpy suggested allow_pickle=True
    np.save(tmp_path / "obj.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="Python objects.*never loaded"):
        read_image(tmp_path / "obj.npy")


# --------------------------------------------- compressed and pyramidal TIFFs (session 59)


@pytest.mark.parametrize("compression", ["lzw", "zstd"])
def test_compressed_tiffs_open_and_stream(tmp_path, compression):
    """An LZW TIFF (what many acquisition programs write) could not be opened at all:
    "<COMPRESSION.LZW: 5> requires the 'imagecodecs' package", now a dependency."""
    data = (np.random.default_rng(3).random((2, 48, 64)) * 1000 + 100).astype(np.uint16)
    path = tmp_path / f"{compression}.tif"
    tifffile.imwrite(path, data, compression=compression, tile=(32, 32))
    np.testing.assert_array_equal(read_image(path).data, data)
    out = dn.restore_to_zarr(path, tmp_path / "out.ome.zarr", model="denoise-2d")
    streamed = np.asarray(zarr.open_group(str(out), mode="r")["0"])
    eager = dn.restore(data, "denoise-2d")
    assert np.abs(streamed - eager).max() <= 1e-5 * float(np.ptp(eager))


def test_a_pyramidal_ome_tiff_streams_its_full_resolution(tmp_path):
    """A pyramidal OME-TIFF (sub-IFD levels, as slide scanners and QuPath write) made the
    streamed restore raise "'Group' object has no attribute 'ndim'"."""
    data = (np.random.default_rng(4).random((64, 80)) * 1000).astype(np.uint16)
    path = tmp_path / "pyramid.ome.tif"
    with tifffile.TiffWriter(path) as tw:
        tw.write(data, subifds=1, tile=(32, 32), metadata={"axes": "YX"})
        tw.write(data[::2, ::2], subfiletype=1, tile=(32, 32))
    out = dn.restore_to_zarr(path, tmp_path / "out.ome.zarr", model="denoise-2d")
    streamed = np.asarray(zarr.open_group(str(out), mode="r")["0"])
    np.testing.assert_allclose(streamed, dn.restore(data, "denoise-2d"), atol=1e-5 * 1000)


def test_a_truncated_imagej_tiff_is_refused_not_read_as_one_plane(tmp_path, capsys):
    # tifffile logs "ImageJ series metadata invalid" and reads the first page alone: a
    # 6-plane volume cut in half opened, and was restored by the CLI, as one plane
    from napari_deconvnet.cli import main
    from napari_deconvnet.io.writer import write_tiff

    whole = tmp_path / "v.tif"
    write_tiff(whole, np.random.default_rng(0).random((6, 40, 50)).astype(np.float32), {})
    cut = tmp_path / "cut.tif"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert read_image(whole).data.shape == (6, 40, 50)
    with pytest.raises(ValueError, match="counts 6 planes but holds 1; the file is truncated"):
        read_image(cut)
    assert main(["restore", str(cut), "-o", str(tmp_path / "out.tif")]) == 1
    assert "counts 6 planes but holds 1" in capsys.readouterr().err
    assert not (tmp_path / "out.tif").exists()


def test_files_without_an_image_and_odd_names_are_handled(tmp_path, monkeypatch):
    """Session 69: a 0-D, 1-D or empty ``.npy`` was read and handed to napari, which failed
    to make the layer outside the reader's notification; a control character in a layer
    name made the OME-XML unreadable (the file reopened with Z and C merged, its geometry
    lost); a valid 250-character file name could not be written (the temporary name was
    18 characters longer, past the file system's 255)."""
    notes = []
    monkeypatch.setattr(restored_reader, "notify", lambda kind, text: notes.append(text))
    for name, array in (("one.npy", np.arange(10.0)), ("empty.npy", np.zeros((0, 16))),
                        ("zero.npy", np.float32(3))):  # fmt: skip
        np.save(tmp_path / name, array)
        assert restored_reader._reader(str(tmp_path / name)) == [(None,)]
        assert name in notes[-1] and "at least 2 dimensions" in notes[-1]
        assert restored_reader.read_restored(str(tmp_path / name)) == [(None,)]
    # a 1-D PSF file (a line blur) stays readable for the command line's --psf
    assert read_image(tmp_path / "one.npy").data.shape == (10,)
    volume = np.random.default_rng(0).random((3, 2, 20, 20)).astype(np.float32)
    meta = {"name": "scan\x0b1\x00 é", "axis_labels": ("z", "c", "y", "x"),
            "scale": (2, 1, 0.1, 0.1)}  # fmt: skip
    write_image(tmp_path / "odd.ome.tif", volume, meta)
    with tifffile.TiffFile(tmp_path / "odd.ome.tif") as tif:
        assert tif.is_ome and tif.series[0].axes == "CZYX"  # well-formed OME-XML
    back = read_image(tmp_path / "odd.ome.tif")
    assert back.axes == "ZCYX" and back.name == "scan\x0b1\x00 é"
    np.testing.assert_array_equal(back.data, volume)
    long = tmp_path / ("a" * 250 + ".tif")
    write_image(long, volume[0, 0], {})
    np.testing.assert_array_equal(tifffile.imread(long), volume[0, 0])
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
