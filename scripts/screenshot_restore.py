"""Make docs/restore_widget.png: napari with raw and restored layers side by side.

Run under a display (e.g. ``xvfb-run -a python scripts/screenshot_restore.py``).
It opens the noisy camera sample, docks the Restore widget through the
manifest, presses Run and waits for the worker, then shows the noisy and the
restored layers side by side in napari's grid mode.
"""

from __future__ import annotations

import sys
from pathlib import Path

import napari
from _screenshots import shoot_grid, wait_until

OUT = Path(__file__).resolve().parents[1] / "docs" / "restore_widget.png"


def main() -> int:
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1500, 820)
    viewer.open_sample("napari-deconvnet", "noisy_camera")
    clean = viewer.layers["camera clean"]
    viewer.layers.remove(clean)
    _, widget = viewer.window.add_plugin_dock_widget("napari-deconvnet", "Restore")
    widget.image.value = viewer.layers["camera noisy"]
    widget.run()
    wait_until(
        lambda: "camera noisy [denoise-2d]" in viewer.layers and widget.worker is None,
        what="the Restore widget",
    )
    shoot_grid(viewer, OUT.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
