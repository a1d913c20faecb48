"""Make docs/deconv_widget.png: the blurred sample deconvolved by ``deconv-2d`` in napari.

Run under a display (e.g. ``xvfb-run -a python scripts/screenshot_deconv.py``).
It opens the blurred filaments sample, docks the Restore widget through the
manifest, chooses the ``deconv-2d`` model with the sample's PSF layer, presses
Run and waits for the worker, then shows the blurred image, the result and
the clean reference side by side in napari's grid mode.
"""

from __future__ import annotations

import sys
from pathlib import Path

import napari
from _screenshots import shoot_grid, wait_until

OUT = Path(__file__).resolve().parents[1] / "docs" / "deconv_widget.png"


def main() -> int:
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1600, 860)
    viewer.open_sample("napari-deconvnet", "blurred")
    blurred = next(layer for layer in viewer.layers if layer.name.endswith("blurred"))
    base = blurred.name.rsplit(" ", 1)[0]
    _, widget = viewer.window.add_plugin_dock_widget("napari-deconvnet", "Restore")
    widget.image.value = blurred
    widget.method.value = "deconv-2d"
    widget.psf.source.value = "from layer"
    widget.psf.reset_layer_choices(viewer.layers[f"{base} PSF"])
    widget.run()
    result = f"{blurred.name} [deconv-2d]"
    wait_until(lambda: result in viewer.layers and widget.worker is None, what="deconv-2d")
    # the (hidden) PSF layer stays, so that the widget still shows it as the PSF
    viewer.layers.move(viewer.layers.index(viewer.layers[f"{base} PSF"]), 0)
    clean = viewer.layers[f"{base} clean"]
    clean.visible = True
    # grid order follows the layer list from the top: result, clean, blurred
    viewer.layers.move(viewer.layers.index(clean), len(viewer.layers) - 1)
    viewer.layers.move(viewer.layers.index(viewer.layers[result]), len(viewer.layers) - 1)
    shoot_grid(viewer, OUT.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
