"""Make docs/deconv3d_widget.png: the volume sample deconvolved by ``deconv-3d`` in napari.

Run under a display (e.g. ``xvfb-run -a python scripts/screenshot_deconv3d.py``).
The blurred, noisy 3D phantom sample (32x256x256, 60 photons) restored in
the Restore widget by ``deconv-3d`` (its Wiener and Richardson-Lucy
channels computed with the sample's PSF layer); the middle plane of the
input, the clean reference and the result side by side, as
``scripts/screenshot_deconv.py`` does in 2D.
"""

from __future__ import annotations

import sys

from screenshot_deconv import shoot_deconvolution

if __name__ == "__main__":
    shoot_deconvolution("volume", "deconv-3d", "deconv3d_widget.png")
    sys.exit(0)
