"""Training regions drawn in napari: Shapes layers as polygons in an image's pixels."""

from __future__ import annotations

import numpy as np
from napari.layers import Image, Shapes

__all__ = ["shapes_to_polygons"]


def shapes_to_polygons(shapes: Shapes, image: Image) -> list[np.ndarray]:
    """The rectangles, polygons and ellipses of a Shapes layer as polygons in `image` pixels.

    Vertices go through world coordinates, so the layers may have different
    scales and translations. Lines and paths enclose no area and are skipped.
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
        polygons.append(data[:, -min(data.shape[1], image.ndim) :])
    return polygons
