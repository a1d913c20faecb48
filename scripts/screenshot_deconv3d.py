"""Make docs/deconv3d_widget.png: the volume sample deconvolved by ``deconv-3d`` in napari.

Run under a display (e.g. ``xvfb-run -a python scripts/screenshot_deconv3d.py``).
It opens the blurred, noisy 3D phantom sample (32x256x256, 60 photons),
docks the Restore widget through the manifest, chooses ``deconv-3d`` (its
Wiener and Richardson-Lucy channels are computed with the sample's PSF
layer), presses Run and waits for the worker, then shows the middle plane of
the input, the result and the clean reference side by side in napari's grid
mode, with the PSNR of each against the reference printed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import napari
import numpy as np
from _screenshots import shoot_grid, wait_until

import napari_deconvnet as dn

OUT = Path(__file__).resolve().parents[1] / "docs" / "deconv3d_widget.png"


def main() -> int:
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1600, 860)
    viewer.open_sample("napari-deconvnet", "volume")
    blurred = next(layer for layer in viewer.layers if layer.name.endswith("blurred"))
    base = blurred.name.rsplit(" ", 1)[0]
    _, widget = viewer.window.add_plugin_dock_widget("napari-deconvnet", "Restore")
    widget.image.value = blurred
    widget.method.value = "deconv-3d"
    widget.psf.source.value = "from layer"
    widget.psf.reset_layer_choices(viewer.layers[f"{base} PSF"])
    widget.run()
    result = f"{blurred.name} [deconv-3d]"
    wait_until(lambda: result in viewer.layers and widget.worker is None, what="deconv-3d")
    clean = viewer.layers[f"{base} clean"]
    for name, layer in (("input", blurred), ("deconv-3d", viewer.layers[result])):
        restored = np.clip(np.asarray(layer.data), 0, 1)
        value = dn.psnr(np.asarray(clean.data), restored, data_range=1)
        print(f"{name}: {float(value):.2f} dB against the clean volume")
    viewer.layers.move(viewer.layers.index(viewer.layers[f"{base} PSF"]), 0)
    clean.visible = True
    viewer.dims.set_current_step(0, blurred.data.shape[0] // 2)
    viewer.layers.move(viewer.layers.index(clean), len(viewer.layers) - 1)
    viewer.layers.move(viewer.layers.index(viewer.layers[result]), len(viewer.layers) - 1)
    shoot_grid(viewer, OUT.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
