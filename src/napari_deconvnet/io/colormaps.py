"""The colormaps the package's layers are shown with, light to import (readers need
them without loading the widgets: a saved SSIM map reopened in a new session)."""

from __future__ import annotations

from typing import Any

__all__ = ["SSIM_COLORMAP", "ssim_colormap"]

#: The SSIM map's colormap's name, as layers and files record it
SSIM_COLORMAP = "SSIM (bright = low)"


def ssim_colormap() -> Any:
    """Reversed magma: SSIM 1 is black (invisible when added), low SSIM glows."""
    from napari.utils.colormaps import Colormap, ensure_colormap

    magma = ensure_colormap("magma")
    return Colormap(colors=magma.colors[::-1], name=SSIM_COLORMAP)
