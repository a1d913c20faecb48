"""Training regions drawn in napari: Shapes layers as polygons and Labels layers as masks,
in an image's pixels."""

from __future__ import annotations

from typing import Any

import numpy as np
from napari.layers import Image, Labels, Shapes

__all__ = ["labels_to_mask", "shapes_to_polygons"]


def shapes_to_polygons(shapes: Shapes, image: Image) -> list[np.ndarray]:
    """The rectangles, polygons and ellipses of a Shapes layer as polygons in `image` pixels.

    Vertices go through world coordinates, so the layers may have different
    scales and translations. Lines and paths enclose no area and are skipped.
    Shapes of fewer axes than the image (2D shapes over a stack) keep their own
    axes: the region applies to every plane of the image's leading axes.
    """
    polygons = []
    for kind, vertices in zip(shapes.shape_type, shapes.data, strict=True):
        if kind in ("line", "path"):
            continue
        v = np.asarray(vertices, dtype=np.float64)
        if kind == "ellipse":  # 4 corners of the bounding box -> 64 points on the ellipse
            centre = v.mean(axis=0)
            half = (v.max(axis=0) - v.min(axis=0)) / 2
            t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
            v = np.repeat(centre[None], 64, axis=0)
            v[:, -2] += half[-2] * np.sin(t)
            v[:, -1] += half[-1] * np.cos(t)
        world = np.array([shapes.data_to_world(p) for p in v])
        data = np.array([image.world_to_data(p) for p in world])
        # a 2D Shapes layer over a stack is drawn on every plane, as a 2D Labels layer
        # marks every plane: its vertices keep their own axes (world_to_data filled the
        # stack's leading ones with 0, which pinned the region to the first plane)
        polygons.append(data[:, -min(v.shape[1], data.shape[1], image.ndim) :])
    return polygons


def labels_to_mask(labels: Labels, image: Image, data: Any = None) -> np.ndarray:
    """A Labels layer as a mask on `image`'s pixels (nonzero: inside the region).

    Each pixel of the image takes the label under its centre (nearest; a
    centre on a boundary takes the label after it), so that the layers may
    have different scales, translations, rotations, shears or affine
    transforms (e.g. labels painted at another resolution, or on an image
    registered by an affine); pixels outside the labels layer are
    outside the region. The labels cover the image's trailing axes: an RGB
    image's colour axis is not one of them (labels of shape ``(Y, X)`` mark
    an ``(Y, X, 3)`` image), and labels of fewer axes than the image (``(Y,
    X)`` on a ``(C, Y, X)`` stack) mark every plane of the leading axes.

    Parameters
    ----------
    labels : napari Labels layer
    image : napari Image layer
    data : array, optional
        The image's data (its full-resolution level), if already at hand.

    Raises
    ------
    ValueError
        The labels have more axes than the image.
    """
    shape = tuple((image.data if data is None else data).shape)
    if image.rgb:
        shape = shape[:-1]
    mask = np.asarray(labels.data)
    n = mask.ndim
    if n > len(shape):
        raise ValueError(
            f"labels layer {labels.name!r} has {n} axes but the input {image.name!r} has "
            f"{len(shape)}{' (besides its colour axis)' if image.rgb else ''}; paint the "
            "region on a labels layer over the input"
        )
    target = shape[len(shape) - n :]
    # label index of each image pixel: labels' world-to-data after the image's
    # data-to-world, both affine (scale, translate, rotate, shear and affine alike)
    to_labels = np.linalg.solve(_affine(labels, n), _affine(image, n))
    linear, shift = to_labels[:n, :n], to_labels[:n, n]
    if np.allclose(linear, np.eye(n)) and np.allclose(shift, 0) and mask.shape == target:
        return mask
    if np.allclose(linear, np.diag(np.diag(linear)), atol=1e-9):  # axis by axis
        index, inside = [], []
        for axis in range(n):
            where = _nearest(np.arange(target[axis]) * linear[axis, axis] + shift[axis])
            inside.append((where >= 0) & (where < mask.shape[axis]))
            index.append(np.clip(where, 0, mask.shape[axis] - 1))
        out = mask[np.ix_(*index)]
        valid = np.ones(target, bool)
        for axis, ok in enumerate(inside):
            valid &= ok.reshape([-1 if a == axis else 1 for a in range(n)])
        return np.where(valid, out, 0)
    out = np.zeros(target, mask.dtype)  # rotated or sheared: pixel by pixel, plane by plane
    for lead in np.ndindex(*target[:-2]):
        grid = np.indices(target[-2:]).reshape(2, -1).astype(np.float64)
        points = np.concatenate(
            [np.repeat(np.array(lead, float)[:, None], grid.shape[1], 1), grid]
        )
        where = _nearest(linear @ points + shift[:, None])
        ok = np.all((where >= 0) & (where < np.array(mask.shape)[:, None]), axis=0)
        values = np.zeros(grid.shape[1], mask.dtype)
        values[ok] = mask[tuple(where[:, ok])]
        out[lead] = values.reshape(target[-2:])
    return out


def _nearest(coordinates: np.ndarray) -> np.ndarray:
    """The pixel whose centre is nearest (halves up, as a pixel covers [i - 0.5, i + 0.5);
    rounded to 1e-9 first, so that a half reached through a rotation is a half)."""
    return np.floor(np.round(coordinates, 9) + 0.5).astype(np.int64)


def _affine(layer: Any, n: int) -> np.ndarray:
    """The (n + 1)-square affine matrix of `layer`'s data-to-world map on its last n axes,
    read from the layer's public ``data_to_world``."""
    origin = np.zeros(layer.ndim)
    start = np.asarray(layer.data_to_world(origin), np.float64)[-n:]
    matrix = np.eye(n + 1)
    matrix[:n, n] = start
    for k in range(n):
        unit = origin.copy()
        unit[layer.ndim - n + k] = 1.0
        matrix[:n, k] = np.asarray(layer.data_to_world(unit), np.float64)[-n:] - start
    return matrix
