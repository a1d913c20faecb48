"""Make docs/train_widget.png: the Train widget mid-training, with its loss plot.

Run under a display (e.g. ``xvfb-run -a python scripts/screenshot_train.py``).
It opens the fluorescence phantom sample (a noisy layer and its clean
reference), docks the Train widget through the manifest, starts supervised
training and takes the screenshot after a few epochs, while training goes on;
then it stops the training.
"""

from __future__ import annotations

import sys
from pathlib import Path

import napari
from _screenshots import shoot, wait_until

OUT = Path(__file__).resolve().parents[1] / "docs" / "train_widget.png"
EPOCHS_BEFORE_SHOT = 5


def main() -> int:
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1500, 1000)
    viewer.open_sample("napari-deconvnet", "fluorescence")
    noisy = next(layer for layer in viewer.layers if "noisy" in layer.name)
    clean = next(layer for layer in viewer.layers if "clean" in layer.name)
    _, widget = viewer.window.add_plugin_dock_widget("napari-deconvnet", "Train")
    widget.image.value = noisy
    widget.target.value = clean
    widget.patch_size.value = 64
    widget.batch_size.value = 8
    widget.epochs.value = 40
    widget.device.value = "cpu"
    widget.train()
    preview = f"{noisy.name} preview"

    def far_enough():
        points = len(widget.val_line.get_xdata())
        return points > EPOCHS_BEFORE_SHOT and preview in viewer.layers

    wait_until(far_enough, timeout=600.0, what="the Train widget")
    clean.visible = False
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
