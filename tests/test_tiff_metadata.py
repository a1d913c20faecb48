"""Pixel sizes in TIFF metadata that are not sizes (session 58): OME-XML's
``PhysicalSizeX="abc"`` made the whole file unreadable; ImageJ's NaN spacing and
OME's zero or negative sizes became layer scales of NaN, 0 and -0.1. Such a
size is left out (scale 1 along that axis); the pixels always open."""

import warnings

import numpy as np
import pytest

tifffile = pytest.importorskip("tifffile")

from napari_deconvnet.core.sources import open_source  # noqa: E402
from napari_deconvnet.io.image_files import read_image, tiff_geometry  # noqa: E402

DATA = (np.random.default_rng(1).random((4, 24, 32)) * 1000).astype(np.uint16)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"imagej": True, "metadata": {"axes": "ZYX", "spacing": float("nan"), "unit": "um"}},
            1.0,
        ),
        ({"ome": True, "metadata": {"axes": "ZYX", "PhysicalSizeZ": 0.0}}, 1.0),
        ({"ome": True, "metadata": {"axes": "ZYX", "PhysicalSizeZ": -0.5}}, 1.0),
        ({"ome": True, "metadata": {"axes": "ZYX", "PhysicalSizeZ": 2.5}}, 2.5),  # kept
        ({"imagej": True, "metadata": {"axes": "ZYX", "spacing": 3.0, "unit": "um"}}, 3.0),
    ],
    ids=["ij-nan", "ome-zero", "ome-negative", "ome-valid", "ij-valid"],
)
def test_only_positive_finite_sizes_become_scales(tmp_path, options, expected):
    path = str(tmp_path / "a.tif")
    tifffile.imwrite(path, DATA, **options)
    image = read_image(path)
    np.testing.assert_array_equal(np.asarray(image.data), DATA)
    scale = list(image.scale) if image.scale is not None else [1.0] * DATA.ndim
    assert scale[0] == expected
    assert all(np.isfinite(scale)) and min(scale) > 0
    info = tiff_geometry(path)
    assert info.get("scale", [1.0])[0] == expected


def test_unparsable_ome_size_still_opens(tmp_path):
    path = str(tmp_path / "g.tif")
    xml = (
        '<?xml version="1.0"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
        '<Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint16" '
        'SizeX="32" SizeY="24" SizeZ="4" SizeC="1" SizeT="1" PhysicalSizeX="abc" '
        'PhysicalSizeY="0.2"><Channel ID="Channel:0:0" SamplesPerPixel="1"/>'
        "<TiffData/></Pixels></Image></OME>"
    )
    tifffile.imwrite(path, DATA, description=xml, metadata=None, photometric="minisblack")
    image = read_image(path)
    np.testing.assert_array_equal(np.asarray(image.data), DATA)
    assert tuple(image.scale)[-2:] == (0.2, 1.0)  # Y kept, X's "abc" left out
    array, _, _ = open_source(path)
    np.testing.assert_array_equal(np.asarray(array), DATA)


def test_a_tiff_of_several_series_says_that_only_the_first_is_read(tmp_path):
    """Session 70: a multi-position OME-TIFF restored its first position only, exit 0,
    without a word."""
    import tifffile

    x = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    path = tmp_path / "positions.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as tw:
        tw.write(x, metadata={"axes": "YX", "Name": "pos1"})
        tw.write(x * 0.5, metadata={"axes": "YX", "Name": "pos2"})
    with pytest.warns(
        UserWarning, match=r"holds 2 image series; only the first \(YX \(32, 32\)\)"
    ):
        image = read_image(path)
    np.testing.assert_array_equal(image.data, x)
    thumb = tmp_path / "thumbnail.tif"  # (review: a reduced-resolution page is no image)
    with tifffile.TiffWriter(thumb) as tw:
        tw.write((x * 255).astype(np.uint8))
        tw.write((x[::4, ::4] * 255).astype(np.uint8), subfiletype=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(thumb).data.shape == (32, 32)
