"""Labels layers as training masks on an image's pixels, through any affine transform."""

import numpy as np
import pytest

pytest.importorskip("napari")
from napari.layers import Image, Labels  # noqa: E402

from napari_deconvnet.widgets._train_regions import labels_to_mask  # noqa: E402


def _reference(labels: Labels, image: Image, shape: tuple[int, ...]) -> np.ndarray:
    """Each image pixel's label, one point at a time through napari's own maps."""
    out = np.zeros(shape, labels.data.dtype)
    for p in np.ndindex(*shape):
        q = np.asarray(labels.world_to_data(image.data_to_world(p)), float)
        i = np.floor(np.round(q, 9) + 0.5).astype(int)
        if np.all(i >= 0) and np.all(i < labels.data.shape):
            out[p] = labels.data[tuple(i)]
    return out


@pytest.mark.parametrize(
    "transform",
    [
        {},
        {"scale": (2.0, 2.0)},  # painted at half the resolution
        {"scale": (2.0, 2.0), "translate": (3.0, -2.0)},
        {"rotate": 90, "translate": (0.0, 23.0)},  # rotated (it was ignored)
        {"rotate": 30, "scale": (1.5, 1.5), "translate": (4.0, 5.0)},
        {"shear": [0.3], "translate": (1.0, 1.0)},
    ],
)
def test_labels_mark_the_image_pixels_under_them(transform):
    rng = np.random.default_rng(0)
    labels = Labels(rng.integers(0, 3, (12, 12)).astype(np.uint8), **transform)
    image = Image(np.zeros((24, 24), np.float32))
    got = labels_to_mask(labels, image)
    np.testing.assert_array_equal(got, _reference(labels, image, (24, 24)))
    assert got.shape == (24, 24)
    if transform.get("scale") == (2.0, 2.0) and "translate" not in transform:
        # a centre on a label boundary takes the label after it, on every axis alike
        # (rounded half to even, pixel 1 took label 0 and pixel 3 took label 2)
        np.testing.assert_array_equal(got[1, 1::2][:5], labels.data[1, 1:6])


def test_labels_of_a_plane_mark_every_plane_of_a_stack_through_a_rotation():
    labels = Labels(np.triu(np.ones((16, 16), np.uint8)), rotate=90, translate=(0.0, 15.0))
    image = Image(np.zeros((3, 16, 16), np.float32))
    got = labels_to_mask(labels, image)
    # (the mask of the planes; the caller applies it to every plane)
    np.testing.assert_array_equal(got, _reference(labels, Image(np.zeros((16, 16))), (16, 16)))
    assert 0 < got.mean() < 1
