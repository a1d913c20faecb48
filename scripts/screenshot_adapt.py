"""Make docs/adapt_widget.png: the Train widget adapting ``deconv-2d`` to the blurred sample.

Run under a display (e.g. ``xvfb-run -a python scripts/screenshot_adapt.py``).
It opens the blurred filaments sample, docks the Train widget through the
manifest, switches it to *Adapt to this image (no clean data)*, starts from
``deconv-2d`` with the sample's PSF layer and *Learn from: both*, and takes
the screenshot after a few epochs, with the live preview beside the input
and the clean reference (hidden from the adaptation, shown for the eye);
then it stops the adaptation.
"""

from __future__ import annotations

import sys
from pathlib import Path

import napari
from _screenshots import shoot, wait_until

from napari_deconvnet.widgets._psf import FROM_LAYER
from napari_deconvnet.widgets._train_adapt import ADAPT

OUT = Path(__file__).resolve().parents[1] / "docs" / "adapt_widget.png"
EPOCHS_BEFORE_SHOT = 3


def main() -> int:
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1600, 1000)
    viewer.open_sample("napari-deconvnet", "blurred")
    blurred = next(layer for layer in viewer.layers if layer.name.endswith("blurred"))
    base = blurred.name.rsplit(" ", 1)[0]
    _, widget = viewer.window.add_plugin_dock_widget("napari-deconvnet", "Train")
    widget.image.value = blurred
    widget.mode.value = ADAPT
    widget.start_from.value = "deconv-2d"
    widget.adapt.psf.source.value = FROM_LAYER
    widget.adapt.psf.layer.value = viewer.layers[f"{base} PSF"]
    widget.adapt.scenes.value = "both"
    widget.adapt.seconds.value = 120
    widget.patch_size.value = 32
    widget.batch_size.value = 8
    widget.device.value = "cpu"
    widget.train()
    preview = f"{blurred.name} preview"

    def far_enough():
        return len(widget.val_line.get_xdata()) > EPOCHS_BEFORE_SHOT and preview in viewer.layers

    try:
        wait_until(far_enough, timeout=600.0, what="the Train widget")
    except TimeoutError:
        print("status:", widget.status.value, "| worker:", widget.worker, file=sys.stderr)
        raise
    viewer.layers[f"{base} PSF"].visible = False
    viewer.layers[f"{base} clean"].visible = True
    viewer.grid.enabled = True
    viewer.grid.stride = 1
    viewer.reset_view()
    shoot(viewer, OUT.name, settle=20)
    widget.stop()
    wait_until(lambda: widget.worker is None, what="the Train widget")
    viewer.close()
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
