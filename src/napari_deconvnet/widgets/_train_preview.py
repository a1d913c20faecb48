"""The Train widget's live preview: which region of the input to restore, and its layer.

Every epoch the running model restores the region of the input layer around
the slice the user looks at (at most 256 pixels a side, 16 planes for a 3D
network) and the result is shown as an ``"<input> preview"`` layer placed
over that region.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
from napari.layers import Image

from ._layers import layer_data

__all__ = ["PREVIEW_SIDE", "preview_request", "show_preview"]

#: Largest side, in pixels, of the previewed region.
PREVIEW_SIDE = 256


def preview_request(viewer: Any, layer: Image, net_ndim: int) -> dict[str, Any] | None:
    """The region of `layer` around the visible slice that the preview restores.

    `net_ndim` is the running job's, not the widget's (which may change meanwhile).
    """
    data = layer_data(layer)
    rgb = bool(getattr(layer, "rgb", False))  # colour samples last: kept whole, not an axis
    ndim = data.ndim - rgb
    if ndim < net_ndim:
        return None
    point = np.asarray(layer.world_to_data(viewer.dims.point[-ndim:]))
    # a 3D network's depth is the labelled Z (a z, c, y, x layer's C was taken for it)
    z_axis = ndim - 3
    if net_ndim == 3 and not rgb:
        from ._methods import labelled_axes

        axes = labelled_axes(layer)
        if axes is not None and "Z" in axes and axes.index("Z") < ndim - 2:
            z_axis = axes.index("Z")
    index: list[Any] = []
    for axis in range(ndim - 2):
        n = data.shape[axis]
        p = int(np.clip(np.round(point[axis]), 0, n - 1))
        if net_ndim == 3 and axis == z_axis:
            depth = min(n, 16)
            start = int(np.clip(p - depth // 2, 0, n - depth))
            index.append(slice(start, start + depth))
            plane = p - start
        else:
            index.append(p)
    offsets = []
    corners = getattr(layer, "corner_pixels", None)
    if corners is not None and getattr(layer, "multiscale", False):
        # in the pixels of the level napari draws: in the full resolution's (the preview
        # of a zoomed-out multiscale layer lay at half its place, session 69)
        factors = np.asarray(layer.downsample_factors[layer.data_level], float)
        if factors.size == np.shape(corners)[-1]:
            corners = np.asarray(corners, float) * factors
    for axis in (ndim - 2, ndim - 1):
        n = data.shape[axis]
        lo, hi = 0, n
        if corners is not None and np.size(corners) == 2 * ndim:
            lo = int(np.clip(corners[0][axis], 0, n - 1))
            hi = int(np.clip(corners[1][axis] + 1, lo + 1, n))
        centre = (lo + hi) // 2
        side = min(n, PREVIEW_SIDE, max(hi - lo, 64))
        start = int(np.clip(centre - side // 2, 0, n - side))
        index.append(slice(start, start + side))
        offsets.append(start)
    if rgb:
        index.append(slice(None))
    return {
        "index": tuple(index),
        "plane": plane if net_ndim == 3 else None,
        "offset": tuple(offsets),
        "rgb": rgb,
    }


#: The preview layer of each input layer (found again after the input is renamed: a
#: second preview was added beside the first, which stayed)
_PREVIEWS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def plane_geometry(layer: Image, offset: tuple[int, int]) -> dict[str, Any]:
    """The geometry of a 2D region of `layer`'s last two axes starting at `offset`: its
    scale, rotation, shear and affine (their trailing blocks; a transform that mixes a
    leading axis in is not a plane's), and the translate that puts the region over its
    pixels (the input's rotation and shear were dropped: a rotated input's preview lay
    elsewhere)."""
    from napari.utils.transforms import CompositeAffine

    n = layer.ndim
    scale = np.asarray(layer.scale[-2:], float)
    rotate = np.asarray(layer.rotate, float)[-2:, -2:]
    shear = np.asarray(layer.shear, float)
    shear = shear[-2:, -2:][0, 1] if shear.ndim == 2 else (shear[-1] if shear.size else 0.0)
    matrix = np.asarray(layer.affine.affine_matrix, float)
    affine = np.eye(3)
    affine[:2, :2] = matrix[n - 2 : n, n - 2 : n]
    affine[:2, 2] = matrix[n - 2 : n, n]
    placed = CompositeAffine(
        scale=scale,
        translate=np.asarray(layer.translate[-2:], float),
        rotate=rotate,
        shear=[shear],
        ndim=2,
    )
    return {
        "scale": scale,
        "translate": np.asarray(placed(np.asarray(offset, float))),
        "rotate": rotate,
        "shear": [shear],
        "affine": affine,
    }


def show_preview(viewer: Any, layer: Image, image: np.ndarray, request: dict[str, Any]) -> None:
    name = f"{layer.name} preview"
    where = plane_geometry(layer, request["offset"])
    preview = _PREVIEWS.get(layer)
    if preview is None or not _ours(preview, viewer, preview.name):
        # (a layer of that name is taken over only if it is a preview this widget made:
        # a user's own "a preview", an image or points, lost its data, session 70)
        preview = viewer.layers[name] if _ours(None, viewer, name) else None
    if preview is not None:
        preview.data = image
        for key, value in where.items():
            setattr(preview, key, value)
        if preview.name != name and name not in viewer.layers:  # the input was renamed
            preview.name = name
            preview.metadata["napari_deconvnet"]["preview_name"] = name
    else:
        # the input's units too: a preview in napari's pixel units beside layers in
        # micrometres made napari warn "Inconsistent units across layers" and stop
        # showing units
        n = image.ndim - (1 if request.get("rgb") else 0)
        units = getattr(layer, "units", None)
        extra = {"units": tuple(units)[-n:]} if units is not None and len(units) >= n else {}
        labels = getattr(layer, "axis_labels", None)
        if labels is not None and len(labels) >= n:  # (it showed napari's "-2", "-1")
            extra["axis_labels"] = tuple(labels)[-n:]
        if request.get("rgb"):  # a colour preview of a colour layer
            extra["rgb"] = True
        else:
            extra["colormap"] = layer.colormap
        preview = viewer.add_image(
            image,
            name=name,
            **where,
            **extra,
            contrast_limits=layer.contrast_limits,
            metadata={"napari_deconvnet": {"preview_of": layer.name, "preview_name": name}},
        )
        # the name napari gave it ("a preview [1]" beside a user's "a preview"): recorded
        # as it is, or the next epoch took it for the user's and added another (review)
        preview.metadata["napari_deconvnet"]["preview_name"] = preview.name
    _PREVIEWS[layer] = preview


def _ours(preview: Any, viewer: Any, name: str) -> bool:
    """Whether `preview` (or the layer `name`) is a preview this widget made, still in
    `viewer` under the name it gave it: a preview the user renamed is theirs to keep
    (the next training renamed it back and overwrote it, session 70)."""
    if preview is None:
        if name not in viewer.layers:
            return False
        preview = viewer.layers[name]
    if preview not in viewer.layers or not isinstance(preview, Image):
        return False
    record = getattr(preview, "metadata", {}).get("napari_deconvnet", {})
    return isinstance(record, dict) and record.get("preview_name") == preview.name
