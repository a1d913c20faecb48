"""Make docs/deconv_widget.png: the blurred sample deconvolved by ``deconv-2d`` in napari.

Run under a display (e.g. ``xvfb-run -a python scripts/screenshot_deconv.py``).
It opens the blurred filaments sample, docks the Restore widget through the
manifest, chooses the ``deconv-2d`` model with the sample's PSF layer, presses
Run and waits for the worker, then shows the blurred image, the result and
the clean reference side by side in napari's grid mode.
:func:`shoot_deconvolution` does the same for any sample with a PSF layer
(``scripts/screenshot_deconv3d.py``: the volume and ``deconv-3d``).
"""

from __future__ import annotations

import sys

import napari
import numpy as np
from _screenshots import shoot_grid, wait_until

import napari_deconvnet as dn


def shoot_deconvolution(sample: str, model: str, name: str) -> None:
    """Deconvolve the `sample` with `model` in the Restore widget; shoot docs/<name>.

    Prints each layer's PSNR against the clean reference; a volume is shown at
    its middle plane.
    """
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1600, 860)
    viewer.open_sample("napari-deconvnet", sample)
    blurred = next(layer for layer in viewer.layers if layer.name.endswith("blurred"))
    base = blurred.name.rsplit(" ", 1)[0]
    _, widget = viewer.window.add_plugin_dock_widget("napari-deconvnet", "Restore")
    widget.image.value = blurred
    widget.method.value = model
    widget.psf.source.value = "from layer"
    widget.psf.reset_layer_choices(viewer.layers[f"{base} PSF"])
    widget.run()
    result = f"{blurred.name} [{model}]"
    wait_until(lambda: result in viewer.layers and widget.worker is None, what=model)
    clean = viewer.layers[f"{base} clean"]
    for label, layer in (("input", blurred), (model, viewer.layers[result])):
        restored = np.clip(np.asarray(layer.data), 0, 1)
        value = dn.psnr(np.asarray(clean.data), restored, data_range=1)
        print(f"{label}: {float(value):.2f} dB against the clean reference")
    # the (hidden) PSF layer stays, so that the widget still shows it as the PSF
    viewer.layers.move(viewer.layers.index(viewer.layers[f"{base} PSF"]), 0)
    clean.visible = True
    if blurred.data.ndim == 3:
        viewer.dims.set_current_step(0, blurred.data.shape[0] // 2)
    # grid order follows the layer list from the top: result, clean, blurred
    viewer.layers.move(viewer.layers.index(clean), len(viewer.layers) - 1)
    viewer.layers.move(viewer.layers.index(viewer.layers[result]), len(viewer.layers) - 1)
    shoot_grid(viewer, name)


def main() -> int:
    shoot_deconvolution("blurred", "deconv-2d", "deconv_widget.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
