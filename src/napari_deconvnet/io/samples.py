"""Sample data: scikit-image's ``camera`` with synthetic noise, generated offline."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["NOISY_CAMERA_SIGMA", "noisy_camera", "noisy_camera_data"]

#: Standard deviation of the Gaussian noise, on the [0, 1] intensity scale.
NOISY_CAMERA_SIGMA = 25 / 255


def noisy_camera_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The camera image with Gaussian noise of sigma 25/255, and the clean image.

    Parameters
    ----------
    seed : int, optional
        Seed of the noise generator; the same seed gives the same noise.

    Returns
    -------
    noisy, clean : (512, 512) ndarray of float32
        `clean` is ``skimage.data.camera() / 255``, in [0, 1]. `noisy` is
        `clean` plus noise, not clipped, so it leaves [0, 1] slightly.

    Examples
    --------
    >>> noisy, clean = noisy_camera_data()
    >>> noisy.shape, noisy.dtype, float(clean.max()) <= 1.0
    ((512, 512), dtype('float32'), True)
    """
    from skimage.data import camera

    from napari_deconvnet.core.noise import synthesize

    clean = (camera() / 255.0).astype(np.float32)
    noisy = synthesize(clean, "gaussian", seed=seed, sigma=NOISY_CAMERA_SIGMA)
    return np.asarray(noisy, dtype=np.float32), clean


def noisy_camera() -> list[tuple[np.ndarray, dict[str, Any], str]]:
    """npe2 sample: the noisy camera image and its clean reference, as two layers.

    The noisy layer comes first, so that it is the one widgets pick by
    default; the clean layer is added hidden above it, for comparison.
    """
    noisy, clean = noisy_camera_data()
    noise = {"noise": "gaussian", "sigma": NOISY_CAMERA_SIGMA, "seed": 0}
    return [
        (
            noisy,
            {
                "name": "camera noisy",
                "contrast_limits": (0.0, 1.0),
                "metadata": {"napari_deconvnet": {"sample": "noisy_camera", **noise}},
            },
            "image",
        ),
        (
            clean,
            {
                "name": "camera clean",
                "contrast_limits": (0.0, 1.0),
                "visible": False,
                "metadata": {"napari_deconvnet": {"sample": "noisy_camera", "clean": True}},
            },
            "image",
        ),
    ]
