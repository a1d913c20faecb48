"""Make docs/quality_widget.png: the SSIM overlay of a restored image and the Quality widget.

Run under a display (e.g. ``xvfb-run -a python scripts/screenshot_quality.py``).
It opens the noisy camera sample, restores it with the shipped model, docks
the Quality widget through the manifest, compares the restored layer (and the
noisy one, in the table) with the clean reference, and shows the SSIM map
over the restored layer.
"""

from __future__ import annotations

import sys
from pathlib import Path

import napari
import numpy as np
from _screenshots import shoot, wait_until

import napari_deconvnet as dn

OUT = Path(__file__).resolve().parents[1] / "docs" / "quality_widget.png"


def main() -> int:
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1500, 860)
    viewer.open_sample("napari-deconvnet", "noisy_camera")
    noisy, clean = viewer.layers["camera noisy"], viewer.layers["camera clean"]
    restored = dn.restore(np.asarray(noisy.data), "default", device="cpu")
    viewer.add_image(restored, name="camera restored", contrast_limits=(0, 1))
    noisy.visible = clean.visible = False

    _, widget = viewer.window.add_plugin_dock_widget("napari-deconvnet", "Quality")
    widget.result.value = viewer.layers["camera restored"]
    widget.reference.value = clean
    widget.others.value = [noisy]
    widget.compute()
    wait_until(
        lambda: widget.worker is None and "SSIM camera restored vs camera clean" in viewer.layers
    )
    viewer.reset_view()
    shoot(viewer, OUT.name, settle=30)
    status = widget.status.value
    viewer.close()
    print(f"wrote {OUT}: {status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
