"""Files, fifth user-style round (session 67): each test is a failure a helper reproduced.

A damaged chunk of a lazy OME-Zarr failed outside the reader's notification; TIFFs of
2 or 5 samples per pixel did not open; a truncated OME-TIFF opened as its first plane;
units beyond the writers' tables (Å, µs) were written without a unit; ImageJ's
``tunit``/``zunit`` were ignored; a user's note under our metadata key broke the
writers; the "OME-Zarr, restored" writer dropped rotation and display; a big-endian
layer became a plain TIFF without calibration.
"""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_deconvnet.io import restored_reader
from napari_deconvnet.io.image_files import read_image
from napari_deconvnet.io.restored_reader import read_restored
from napari_deconvnet.io.restored_writer import write_restored_ome_zarr
from napari_deconvnet.io.writer import write_image


def test_a_damaged_chunk_of_a_lazy_ome_zarr_is_a_notification(tmp_path, monkeypatch):
    notes = []
    monkeypatch.setattr(restored_reader, "notify", lambda kind, text: notes.append(text))
    path = tmp_path / "ms.ome.zarr"
    data = np.random.default_rng(0).integers(0, 999, (300, 300), dtype=np.uint16)
    write_image(path, data, {"name": "ms"})  # two levels: read lazily
    chunks = [f for f in Path(path, "1").rglob("*") if f.is_file() and f.name.isdigit()]
    chunks[0].write_bytes(b"garbage")
    assert read_restored(path) == [(None,)]
    assert notes and "could not read ms.ome.zarr" in notes[-1]
    assert restored_reader._reader(str(path)) == [(None,)]


@pytest.mark.parametrize("samples", [2, 5])
def test_a_tiff_of_2_or_5_samples_per_pixel_opens_as_channels(tmp_path, samples):
    path = tmp_path / "s.tif"
    data = np.arange(64 * 64 * samples, dtype=np.uint16).reshape(64, 64, samples)
    extra = {"extrasamples": ["unassalpha"]} if samples == 2 else {}
    tifffile.imwrite(path, data, photometric="minisblack", planarconfig="contig", **extra)
    image = read_image(path)
    assert image.axes == "YXC" and not image.rgb
    np.testing.assert_array_equal(image.data, data)
    assert image.geometry().get("axis_labels") == ("y", "x", "c")


@pytest.mark.parametrize("kept", [0.4, 0.75, 0.99])
def test_a_truncated_ome_tiff_is_refused(tmp_path, kept):
    path = tmp_path / "vol.ome.tif"
    write_image(path, np.ones((6, 64, 64), np.uint16), {"name": "vol", "axis_labels": "zyx"})
    whole = path.read_bytes()
    cut = tmp_path / "cut.ome.tif"
    cut.write_bytes(whole[: int(len(whole) * kept)])
    with pytest.raises(ValueError, match="truncated or damaged"):
        read_image(cut)
    assert read_image(path).data.shape == (6, 64, 64)  # the whole file as before


def test_angstrom_and_microseconds_are_written_with_their_units(tmp_path):
    meta = {
        "name": "u",
        "axis_labels": ("t", "z", "y", "x"),
        "scale": [5.0, 3.0, 1.2, 1.2],
        "units": ["microsecond", "angstrom", "angstrom", "angstrom"],
    }
    data = np.zeros((2, 3, 16, 16), np.uint16)
    write_image(tmp_path / "u.ome.tif", data, meta)
    xml = tifffile.TiffFile(tmp_path / "u.ome.tif").ome_metadata
    pixels = re.search(r"<Pixels[^>]*>", xml).group(0)
    assert 'PhysicalSizeXUnit="\u00c5"' in pixels and 'TimeIncrementUnit="\u00b5s"' in pixels
    write_image(tmp_path / "u.tif", data, meta)
    with tifffile.TiffFile(tmp_path / "u.tif") as tif:  # ImageJ has no Å: nanometres
        ij, resolution = tif.imagej_metadata, tif.pages[0].tags["XResolution"].value
    assert ij["unit"] == "nm" and ij["spacing"] == pytest.approx(0.3)
    assert ij["finterval"] == pytest.approx(5e-6)
    assert resolution[1] / resolution[0] == pytest.approx(0.12)
    for name in ("u.tif", "u.ome.tif"):
        back = read_image(tmp_path / name)
        assert back.scale == pytest.approx([5.0, 3.0, 1.2, 1.2])
        assert back.units == ["microsecond", "angstrom", "angstrom", "angstrom"]


def test_imagej_time_and_z_units_are_read(tmp_path):
    path = tmp_path / "fiji.tif"
    meta = {"axes": "TZYX", "finterval": 2.0, "tunit": "min", "unit": "um", "spacing": 500,
            "zunit": "nm"}  # fmt: skip
    tifffile.imwrite(path, np.zeros((3, 4, 16, 16), np.uint16), imagej=True,
                     resolution=(10, 10), metadata=meta)  # fmt: skip
    image = read_image(path)
    assert image.scale == pytest.approx([2.0, 500.0, 0.1, 0.1])
    assert image.units == ["minute", "nanometer", "micrometer", "micrometer"]


@pytest.mark.parametrize("name", ["md.tif", "md.ome.tif", "md.ome.zarr"])
def test_a_users_note_under_our_metadata_key_is_written_as_it_is(tmp_path, name):
    meta = {"name": "m", "axis_labels": ("-2", "-1"), "metadata": {"napari_deconvnet": "note"}}
    data = np.arange(64, dtype=np.float32).reshape(8, 8)
    write_image(tmp_path / name, data, meta)
    back = read_image(tmp_path / name)
    np.testing.assert_array_equal(back.data, data)
    assert back.metadata["napari_deconvnet"] == "note"


def test_the_restored_writer_keeps_rotation_and_display(tmp_path):
    path = tmp_path / "rot.ome.zarr"
    meta = {"name": "r", "scale": [0.5, 0.5], "rotate": [[0, -1], [1, 0]],
            "colormap": "magma", "opacity": 0.5}  # fmt: skip
    data = np.random.default_rng(0).random((64, 64), np.float32)
    write_restored_ome_zarr(path, data, meta, model="default", device="cpu")
    image = read_image(path)
    assert image.transforms == {"rotate": [[0.0, -1.0], [1.0, 0.0]]}
    assert image.display["colormap"] == "magma" and image.display["opacity"] == 0.5
    shutil.rmtree(path)


def test_a_big_endian_layer_is_an_imagej_hyperstack_with_its_calibration(tmp_path):
    path = tmp_path / "be.tif"
    data = np.arange(512, dtype=">u2").reshape(2, 16, 16)
    meta = {"name": "b", "axis_labels": ("z", "y", "x"), "scale": [0.5, 0.1, 0.1],
            "units": ["micrometer"] * 3}  # fmt: skip
    write_image(path, data, meta)
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej and tif.pages[0].tags["XResolution"].value == (10, 1)
    back = read_image(path)
    np.testing.assert_array_equal(back.data, data.astype(np.uint16))
    assert back.scale == pytest.approx([0.5, 0.1, 0.1])


def test_an_ngff_space_axis_of_a_long_name_keeps_the_files_geometry(tmp_path):
    """A space axis named "depth" became "?", and the whole file lost its geometry; NGFF
    puts the space axes last in Z, Y, X order, which letters them."""
    import zarr

    path = tmp_path / "depth.ome.zarr"
    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    group.create_array("0", shape=(4, 32, 32), dtype="u2")[:] = 7
    space = [{"name": n, "type": "space", "unit": "micrometer"} for n in ("depth", "y", "x")]
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": space,
            "datasets": [
                {
                    "path": "0",
                    "coordinateTransformations": [{"type": "scale", "scale": [2.0, 0.5, 0.5]}],
                }
            ],
        }
    ]
    image = read_image(path)
    assert image.axes == "ZYX"
    assert image.scale == pytest.approx([2.0, 0.5, 0.5])
    assert image.units == ["micrometer"] * 3


def test_a_time_axis_in_x_is_not_written_as_nanometres(tmp_path):
    """Session 67 review: a kymograph (Y in µm, X in seconds) got ImageJ's unit "nm" for
    its time axis once the unit tables held times beside lengths."""
    from napari_deconvnet.io.writer import write_tiff

    path = tmp_path / "k.tif"
    meta = {"scale": [0.5, 2.0], "units": ["micrometer", "second"]}
    write_tiff(path, np.zeros((20, 30), np.uint8), meta)
    with tifffile.TiffFile(path) as tif:
        assert tif.imagej_metadata.get("unit") is None  # (X is time: no length unit)
        assert tif.pages[0].tags["XResolution"].value == (1, 2)


@pytest.mark.parametrize(("spelling", "unit"), [("hr", "hour"), ("msec", "millisecond"),
                                                ("seconds", "second")])  # fmt: skip
def test_imagej_time_unit_spellings(tmp_path, spelling, unit):
    path = tmp_path / "t.tif"
    tifffile.imwrite(path, np.zeros((3, 16, 16), np.uint16), imagej=True,
                     metadata={"axes": "TYX", "finterval": 2.0, "tunit": spelling})  # fmt: skip
    image = read_image(path)
    assert image.scale[0] == 2.0 and image.units[0] == unit


def test_tiff_reads_in_threads_leave_tifffiles_logger_as_it_was(tmp_path):
    """Session 67 review: the reader's watch on tifffile's log changed the logger's
    level and propagation for each read; reads in threads left it silenced for good."""
    import logging
    import threading

    path = tmp_path / "a.tif"
    tifffile.imwrite(path, np.zeros((8, 8), np.uint16))
    logger = logging.getLogger("tifffile")
    before = (logger.level, logger.propagate)
    threads = [
        threading.Thread(target=lambda: [read_image(path) for _ in range(30)]) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (logger.level, logger.propagate) == before


def test_an_intact_tiff_with_a_stray_last_page_pointer_opens_whole(tmp_path):
    """Session 67 review: tifffile logs "invalid page offset" for a last page whose next
    pointer is garbage, and reads every plane; the truncation check refused such files.
    Where the format counts its planes (OME, ImageJ) and all are there, they open; a
    plain multi-page TIFF has no count, and pages past the end refuse it (below)."""
    import struct

    for name, kw in (("a.ome.tif", {"ome": True, "metadata": {"axes": "ZYX"}}),
                     ("b.tif", {"imagej": True})):  # fmt: skip
        path = tmp_path / name
        data = np.arange(3 * 32 * 32, dtype=np.uint16).reshape(3, 32, 32)
        tifffile.imwrite(path, data, **kw)
        with tifffile.TiffFile(path) as tif:
            last = tif.pages[-1]
            where = last.offset + 2 + 12 * len(last.tags)  # its next-IFD pointer
        raw = bytearray(path.read_bytes())
        raw[where : where + 4] = struct.pack("<I", len(raw) + 1000)
        path.write_bytes(bytes(raw))
        np.testing.assert_array_equal(read_image(path).data, data)


def test_an_imagej_time_unit_of_free_text_is_no_unit(tmp_path):
    """Session 67 review: tunit="frame" (free text in ImageJ) became a unit napari does not
    know, and the layer could not be made."""
    path = tmp_path / "f.tif"
    tifffile.imwrite(path, np.zeros((3, 16, 16), np.uint16), imagej=True,
                     metadata={"axes": "TYX", "finterval": 2.0, "tunit": "frame"})  # fmt: skip
    image = read_image(path)
    assert image.scale[0] == 2.0 and image.units[0] is None


def test_a_plain_multi_page_tiff_cut_short_is_refused(tmp_path):
    """Session 67 review: a plain (or tiled) multi-page TIFF cut short opened as its
    first plane once only a lost description counted as truncation."""
    data = (np.random.default_rng(0).random((10, 64, 64)) * 1000).astype(np.uint16)
    for kw in ({"metadata": None}, {"metadata": None, "tile": (32, 32)}):
        path = tmp_path / "p.tif"
        tifffile.imwrite(path, data, **kw)
        whole = path.read_bytes()
        cut = tmp_path / "cut.tif"
        cut.write_bytes(whole[: int(0.6 * len(whole))])
        with pytest.raises(ValueError, match="truncated or damaged|cannot read"):
            read_image(cut)


def test_imagej_axis_units_that_pint_knows_are_kept(tmp_path):
    path = tmp_path / "u.tif"
    meta = {"axes": "TZYX", "unit": "inch", "zunit": "inch", "yunit": "inch", "tunit": "h",
            "spacing": 0.5, "finterval": 2.0}  # fmt: skip
    tifffile.imwrite(path, np.zeros((2, 3, 8, 8), np.uint8), imagej=True, resolution=(2, 2),
                     metadata=meta)  # fmt: skip
    assert read_image(path).units == ["hour", "inch", "inch", "inch"]


@pytest.mark.parametrize(
    "record",
    [
        {"preview_of": "cells", "preview_name": "cells preview"},
        {"sample": "two_colour", "psf": True},
    ],
)
def test_a_saved_preview_or_psf_is_not_restored_again(tmp_path, record):
    """Session 70: a Train preview (a network's output) saved and reopened with "Open
    restored" was restored again; a PSF file got a restored copy, which the widgets
    then preselected as the PSF (its sum drifted from 1)."""
    path = tmp_path / "layer.tif"
    data = np.random.default_rng(0).random((48, 48)).astype(np.float32)
    write_image(path, data, {"name": "x", "metadata": {"napari_deconvnet": record}})
    layers = read_restored(str(path), model="denoise-2d")
    assert len(layers) == 1
    np.testing.assert_array_equal(layers[0][0], data)
