"""OME-Zarr metadata as other tools write it, and broken: the reader and streamed
restores read it through one function (``core.ome_zarr.read_multiscales``).

Session 58's sweep of edited metadata: a missing level raised a bare
``KeyError`` from ``restore_to_zarr`` (the reader a wrapped one), NGFF 0.3's
axes (plain strings) an ``AttributeError``, an empty ``datasets`` list an
``IndexError``.
"""

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")

import napari_deconvnet as dn  # noqa: E402
from napari_deconvnet.core.ome_zarr import read_multiscales  # noqa: E402
from napari_deconvnet.core.sources import open_source  # noqa: E402
from napari_deconvnet.io.image_files import read_image  # noqa: E402

DATA = (np.random.default_rng(0).random((2, 48, 40)) * 1000).astype(np.uint16)
AXES_04 = [
    {"name": "c", "type": "channel"},
    {"name": "y", "type": "space", "unit": "micrometer"},
    {"name": "x", "type": "space", "unit": "micrometer"},
]


def _group(path, multiscale, *, v3=False):
    g = zarr.open_group(str(path), mode="w", zarr_format=3 if v3 else 2)
    g.create_array("0", shape=DATA.shape, chunks=(1, 24, 20), dtype=DATA.dtype)[:] = DATA
    if v3:
        g.attrs["ome"] = {"version": "0.5", "multiscales": [multiscale]}
    else:
        g.attrs["multiscales"] = [multiscale]
    return str(path)


def _multiscale(**changes):
    ms = {
        "version": "0.4",
        "axes": AXES_04,
        "datasets": [
            {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 0.2, 0.3]}]}
        ],
    }
    ms.update(changes)
    return ms


@pytest.mark.parametrize("v3", [False, True], ids=["ngff-0.4", "ngff-0.5"])
def test_reader_and_stream_read_the_same_geometry(tmp_path, v3):
    path = _group(tmp_path / "a.ome.zarr", _multiscale(), v3=v3)
    array, _, info = open_source(path)
    assert info["axes"] == "CYX" and info["scale"] == [1, 0.2, 0.3]
    np.testing.assert_array_equal(np.asarray(array), DATA)
    image = read_image(path)
    np.testing.assert_array_equal(np.asarray(image.data), DATA)
    assert tuple(image.scale)[-2:] == (0.2, 0.3)


def test_the_images_own_transforms_apply_after_each_levels(tmp_path):
    # NGFF 0.4: multiscales[0]["coordinateTransformations"] were ignored (pixel sizes
    # 2.5x too large here), and restore_to_zarr calibrated its PSF with them
    level = [
        {"type": "scale", "scale": [1, 0.2, 0.3]},
        {"type": "translation", "translation": [0, 2, 4]},
    ]
    outer = [
        {"type": "scale", "scale": [1, 0.5, 0.5]},
        {"type": "translation", "translation": [0, 10, 0]},
    ]
    path = _group(
        tmp_path / "a.ome.zarr",
        _multiscale(
            datasets=[{"path": "0", "coordinateTransformations": level}],
            coordinateTransformations=outer,
        ),
    )
    assert read_multiscales(zarr.open_group(path, mode="r").attrs.asdict(), path) == {
        "paths": ["0"],
        "axes": "CYX",
        "units": [None, "micrometer", "micrometer"],
        "scale": [1.0, 0.1, 0.15],
        "translate": [0.0, 11.0, 2.0],
    }
    assert open_source(path)[2]["scale"] == pytest.approx([1, 0.1, 0.15])
    assert tuple(read_image(path).scale)[-2:] == pytest.approx((0.1, 0.15))


def test_ngff_03_string_axes_and_long_names(tmp_path):
    assert read_multiscales({"multiscales": [_multiscale(axes=["c", "y", "x"])]}, "f")["axes"] == (
        "CYX"
    )
    named = [{"name": "time", "type": "time"}, {"name": "ch", "type": "channel"}]
    assert read_multiscales({"multiscales": [_multiscale(axes=named)]}, "f")["axes"] == "TC"
    path = _group(tmp_path / "s.ome.zarr", _multiscale(axes=["c", "y", "x"]))
    assert open_source(path)[2]["axes"] == "CYX"
    out = dn.restore_to_zarr(path, str(tmp_path / "out.ome.zarr"), device="cpu")
    restored = np.asarray(zarr.open_group(out, mode="r")["0"])
    expected = dn.restore(DATA, "denoise-2d", axes="CYX", device="cpu")
    np.testing.assert_allclose(restored, expected, atol=1e-5 * float(np.ptp(expected)))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"datasets": []}, "lists no image levels"),
        ({"datasets": [{"path": "nope"}]}, "level 'nope' that its OME-Zarr metadata names"),
        ({"datasets": ["0"]}, "has no array path"),
    ],
    ids=["no-levels", "missing-level", "level-without-path"],
)
def test_broken_metadata_is_a_clear_value_error_on_both_paths(tmp_path, changes, message):
    path = _group(tmp_path / "b.ome.zarr", _multiscale(**changes))
    with pytest.raises(ValueError, match=message):
        open_source(path)
    with pytest.raises(ValueError, match=message):
        dn.restore_to_zarr(path, str(tmp_path / "out.ome.zarr"), device="cpu")
    with pytest.raises(ValueError, match=message):
        read_image(path)


def test_unusable_transforms_and_axis_counts_open_unscaled(tmp_path):
    for i, scale in enumerate(([1, 0, -1], [1, 0.5, -0.5], [1, "a", 2], [1, 2])):
        ms = _multiscale(
            datasets=[
                {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}
            ]
        )
        path = _group(tmp_path / f"t{i}.ome.zarr", ms)
        array, _, info = open_source(path)
        assert "scale" not in info and info["axes"] == "CYX"
        np.testing.assert_array_equal(np.asarray(array), DATA)
    extra = _group(tmp_path / "z.ome.zarr", _multiscale(axes=[*AXES_04, {"name": "z"}]))
    assert "axes" not in open_source(extra)[2]  # four axes named for a 3-D array: not used
