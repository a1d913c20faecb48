"""Sample data, generated offline: scikit-image images and procedural phantoms.

Every sample is seeded, so the same call gives the same pixels. Each gives
the degraded image first (the layer widgets pick by default), then its clean
ground truth as a hidden layer, so that the Quality widget can score a result
at once, and, for the blurred samples, the PSF as a third hidden layer.

======================  =====================================================
key                     content
======================  =====================================================
``noisy_camera``        camera, Gaussian noise sigma = 25/255 (512 x 512)
``fluorescence``        2D cells phantom, Poisson-Gaussian camera noise
``blurred``             2D filaments and beads, blurred by a PSF, noisy
``volume``              3D cells phantom (32 x 256 x 256), blurred and noisy
``timelapse``           10 frames of moving cells (10 x 256 x 256), noisy
``two_colour``          2 channels (nuclei at 461 nm, filaments at 520 nm), each
                        blurred by its own Airy PSF, Poisson noise (2 x 256 x 256)
======================  =====================================================

The ``*_data`` functions return the arrays (NumPy only, no napari), the
others the napari layer data tuples named in ``napari.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "NOISY_CAMERA_SIGMA",
    "SAMPLES",
    "blurred_phantom",
    "blurred_phantom_data",
    "fluorescence_phantom",
    "fluorescence_phantom_data",
    "noisy_camera",
    "noisy_camera_data",
    "phantom_timelapse",
    "phantom_timelapse_data",
    "phantom_volume",
    "phantom_volume_data",
    "two_colour",
    "two_colour_data",
]

#: Standard deviation of the Gaussian noise, on the [0, 1] intensity scale.
NOISY_CAMERA_SIGMA = 25 / 255

#: Camera of the fluorescence sample: photons at the brightest structure,
#: electrons per ADU, read noise (electrons rms), offset (ADU), bits.
FLUORESCENCE_CAMERA = {"peak": 40.0, "gain": 1.0, "read_noise": 2.0, "offset": 100.0, "bits": 12}
BLURRED_SIGMA = 0.02
VOLUME_PEAK = 60.0
TIMELAPSE_PEAK = 25.0
#: The two-colour sample: emission wavelengths (nm), photons at the brightest
#: structure of each channel, and the optics (NA, pixel size in nm).
TWO_COLOUR = {"wavelengths": (461.0, 520.0), "peaks": (200.0, 30.0), "na": 1.0, "pixel": 65.0}

LayerData = tuple[np.ndarray, dict[str, Any], str]


# --------------------------------------------------------------- helpers


def _psf(shape: tuple[int, ...], sigma: tuple[float, ...]) -> np.ndarray:
    """A Gaussian PSF from :func:`napari_deconvnet.make_psf`, summing to 1."""
    from napari_deconvnet.core.psf import make_psf

    return np.asarray(make_psf("gaussian", shape=shape, sigma=sigma), np.float32)


def _blobs(shape: tuple[int, ...], centres, radii, values, softness: float = 1.0) -> np.ndarray:
    """Sum of soft-edged ellipsoids, each drawn in its bounding box only."""
    out = np.zeros(shape, np.float32)
    for centre, radius, value in zip(centres, radii, values, strict=True):
        # the edge is `softness` pixels wide across the shortest radius, wider along the others
        margin = [r * (1 + 4 * softness / min(radius)) for r in radius]
        lo = [max(0, int(c - m)) for c, m in zip(centre, margin, strict=True)]
        hi = [min(n, int(c + m) + 2) for c, m, n in zip(centre, margin, shape, strict=True)]
        if any(h <= low for low, h in zip(lo, hi, strict=True)):
            continue
        grids = np.meshgrid(
            *(np.arange(low, h) for low, h in zip(lo, hi, strict=True)), indexing="ij"
        )
        dist = np.sqrt(
            sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radius, strict=True))
        )
        edge = (dist - 1) * min(radius) / softness
        box = tuple(slice(low, h) for low, h in zip(lo, hi, strict=True))
        out[box] += (value / (1 + np.exp(np.clip(edge, -30, 30)))).astype(np.float32)
    return out


def _cells(shape: tuple[int, int], rng: np.random.Generator, n: int) -> np.ndarray:
    """Fluorescence-like cells: dim cytoplasm, bright nuclei, puncta; in [0, 1]."""
    h, w = shape
    centres = rng.uniform([0, 0], [h, w], (n, 2))
    radii = rng.uniform(10, 22, (n, 1)) * rng.uniform(0.7, 1.0, (n, 2))
    image = _blobs(shape, centres, radii, rng.uniform(0.25, 0.4, n), softness=1.5)
    image += _blobs(shape, centres, radii * 0.45, rng.uniform(0.35, 0.55, n), softness=1.0)
    spots = rng.uniform([0, 0], [h, w], (4 * n, 2))
    image += _blobs(shape, spots, np.full((4 * n, 2), 1.6), rng.uniform(0.2, 0.5, 4 * n), 0.6)
    return np.clip(image / max(float(image.max()), 1e-6), 0, 1)


def _filaments(shape: tuple[int, int], rng: np.random.Generator, n: int) -> np.ndarray:
    """Thin curved filaments and small beads, sharp (for deconvolution); in [0, 1]."""
    from skimage.draw import line_aa

    h, w = shape
    image = np.zeros(shape, np.float32)
    for _ in range(n):
        points = np.cumsum(rng.normal(0, 1, (8, 2)), axis=0) * [h / 12, w / 12]
        points += rng.uniform([0, 0], [h, w])
        value = rng.uniform(0.4, 1.0)
        for (r0, c0), (r1, c1) in zip(points[:-1], points[1:], strict=True):
            rr, cc, aa = line_aa(int(r0), int(c0), int(r1), int(c1))
            keep = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
            np.maximum.at(image, (rr[keep], cc[keep]), (aa[keep] * value).astype(np.float32))
    beads = rng.uniform([0, 0], [h, w], (3 * n, 2))
    image += _blobs(shape, beads, np.full((3 * n, 2), 1.2), rng.uniform(0.5, 1.0, 3 * n), 0.5)
    return np.clip(image, 0, 1)


def _layers(
    key: str,
    degraded: tuple[np.ndarray, str, dict[str, Any]],
    clean: np.ndarray,
    *,
    limits: tuple[float, float],
    geometry: dict[str, Any] | None = None,
    psf: np.ndarray | None = None,
) -> list[LayerData]:
    from napari_deconvnet.core.provenance import KEY, record

    data, name, description = degraded
    geometry = geometry or {}
    base = name.rsplit(" ", 1)[0]
    layers = [
        (
            data,
            {
                "name": name,
                "contrast_limits": limits,
                "metadata": {KEY: record("synthesize", sample=key, **description)},
                **geometry,
            },
            "image",
        ),
        (
            clean,
            {
                "name": f"{base} clean",
                "contrast_limits": limits,
                "visible": False,
                "metadata": {KEY: {"sample": key, "clean": True}},
                **geometry,
            },
            "image",
        ),
    ]
    if psf is not None:
        layers.append(
            (
                psf,
                {
                    "name": f"{base} PSF",
                    "visible": False,
                    "metadata": {KEY: {"sample": key, "psf": True}},
                    **geometry,  # the PSF is sampled on the image's grid
                },
                "image",
            )
        )
    return layers


# -------------------------------------------------------- noisy camera


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


def noisy_camera() -> list[LayerData]:
    """npe2 sample: the noisy camera image and its clean reference, as two layers.

    The noisy layer comes first, so that it is the one widgets pick by
    default; the clean layer is added hidden above it, for comparison.
    """
    noisy, clean = noisy_camera_data()
    noise = {"noise": "gaussian", "sigma": NOISY_CAMERA_SIGMA, "seed": 0}
    return _layers("noisy_camera", (noisy, "camera noisy", noise), clean, limits=(0.0, 1.0))


# --------------------------------------------------------- fluorescence


def fluorescence_phantom_data(
    shape: tuple[int, int] = (256, 256), seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A fluorescence-like 2D phantom with Poisson-Gaussian camera noise.

    The camera (:data:`FLUORESCENCE_CAMERA`) has gain 1 electron/ADU, read
    noise 2 electrons, an offset of 100 ADU and 12 bits; the brightest
    structures collect 40 photons, the background 2.

    Returns
    -------
    noisy, clean : (M, N) ndarray of float32
        In ADU. `clean` is the expected value of `noisy` (offset included),
        so that it can be compared with a restored `noisy` directly.

    Examples
    --------
    >>> noisy, clean = fluorescence_phantom_data((64, 64))
    >>> noisy.dtype, bool(noisy.min() >= 0), bool(abs(noisy.mean() - clean.mean()) < 1)
    (dtype('float32'), True, True)
    """
    from napari_deconvnet.core.noise import synthesize

    cam = FLUORESCENCE_CAMERA
    rng = np.random.default_rng(seed)
    signal = cam["peak"] * (
        0.05 + 0.95 * _cells(shape, rng, n=max(4, shape[0] * shape[1] // 2000))
    )
    noisy = synthesize(
        signal,
        "poisson-gaussian",
        seed=seed,
        gain=cam["gain"],
        read_noise=cam["read_noise"],
        offset=cam["offset"],
        bit_depth=cam["bits"],
    )
    return np.asarray(noisy, np.float32), (signal + cam["offset"]).astype(np.float32)


def fluorescence_phantom() -> list[LayerData]:
    """npe2 sample: the noisy fluorescence phantom and its clean reference."""
    noisy, clean = fluorescence_phantom_data()
    cam = FLUORESCENCE_CAMERA
    noise = {
        "noise": "poisson-gaussian",
        "gain": cam["gain"],
        "read_noise": cam["read_noise"],
        "offset": cam["offset"],
        "bit_depth": cam["bits"],
        "peak_photons": cam["peak"],
        "seed": 0,
    }
    limits = (cam["offset"], cam["offset"] + cam["peak"])
    return _layers("fluorescence", (noisy, "cells noisy", noise), clean, limits=limits)


# -------------------------------------------------------------- blurred


def blurred_phantom_data(
    shape: tuple[int, int] = (256, 256), seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Filaments and beads blurred by a Gaussian PSF (sigma 2 px), plus Gaussian noise.

    Returns
    -------
    degraded, clean : (M, N) ndarray of float32
        In [0, 1] (the degraded image leaves it slightly through the noise of
        sigma :data:`BLURRED_SIGMA`).
    psf : (17, 17) ndarray of float32
        The PSF, summing to 1.

    Examples
    --------
    >>> degraded, clean, psf = blurred_phantom_data((64, 64))
    >>> degraded.shape, psf.shape, round(float(psf.sum()), 4)
    ((64, 64), (17, 17), 1.0)
    """
    from napari_deconvnet.core.noise import synthesize
    from napari_deconvnet.core.psf import blur

    rng = np.random.default_rng(seed)
    clean = _filaments(shape, rng, n=max(3, shape[0] * shape[1] // 5000))
    psf = _psf((17, 17), (2.0, 2.0))
    degraded = synthesize(blur(clean, psf), "gaussian", seed=seed, sigma=BLURRED_SIGMA)
    return np.asarray(degraded, np.float32), clean, psf


def blurred_phantom() -> list[LayerData]:
    """npe2 sample: the blurred, noisy phantom, its clean reference and the PSF."""
    degraded, clean, psf = blurred_phantom_data()
    description = {
        "noise": "gaussian",
        "sigma": BLURRED_SIGMA,
        "psf": {"kind": "gaussian", "sigma": 2.0, "shape": list(psf.shape)},
        "seed": 0,
    }
    return _layers(
        "blurred", (degraded, "filaments blurred", description), clean, limits=(0.0, 1.0), psf=psf
    )


# --------------------------------------------------------------- volume


def phantom_volume_data(
    shape: tuple[int, int, int] = (32, 256, 256), seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 3D cells phantom blurred by an anisotropic PSF, with Poisson noise.

    The PSF is a Gaussian of sigma 2 planes along Z and 1.5 pixels in Y and
    X; the brightest voxels collect :data:`VOLUME_PEAK` photons.

    Returns
    -------
    degraded, clean : (P, M, N) ndarray of float32
        In [0, 1] (photon counts divided by the peak).
    psf : (9, 13, 13) ndarray of float32

    Examples
    --------
    >>> degraded, clean, psf = phantom_volume_data((8, 64, 64))
    >>> degraded.shape, psf.shape
    ((8, 64, 64), (9, 13, 13))
    """
    from napari_deconvnet.core.noise import synthesize
    from napari_deconvnet.core.psf import blur

    rng = np.random.default_rng(seed)
    z, h, w = shape
    n = max(4, h * w // 2500)
    centres = rng.uniform([0, 0, 0], [z, h, w], (n, 3))
    radii = np.column_stack([rng.uniform(2.5, 5, n), rng.uniform(9, 18, n), rng.uniform(9, 18, n)])
    clean = _blobs(shape, centres, radii, rng.uniform(0.2, 0.35, n), softness=1.2)
    clean += _blobs(shape, centres, radii * 0.45, rng.uniform(0.3, 0.5, n), softness=0.8)
    spots = rng.uniform([0, 0, 0], [z, h, w], (3 * n, 3))
    clean += _blobs(shape, spots, np.full((3 * n, 3), 1.5), rng.uniform(0.3, 0.6, 3 * n), 0.6)
    clean = np.clip(0.03 + clean / max(float(clean.max()), 1e-6), 0, 1).astype(np.float32)
    psf = _psf((9, 13, 13), (2.0, 1.5, 1.5))
    degraded = synthesize(blur(clean, psf), "poisson", seed=seed, peak=VOLUME_PEAK)
    return np.asarray(degraded, np.float32), clean, psf


def phantom_volume() -> list[LayerData]:
    """npe2 sample: the 3D phantom (0.5 um planes, 0.2 um pixels), clean and PSF."""
    degraded, clean, psf = phantom_volume_data()
    description = {
        "noise": "poisson",
        "peak": VOLUME_PEAK,
        "psf": {"kind": "gaussian", "sigma": [2.0, 1.5, 1.5], "shape": list(psf.shape)},
        "seed": 0,
    }
    geometry = {"scale": (0.5, 0.2, 0.2)}
    if _napari_has("units"):
        geometry["units"] = ("micrometer",) * 3
    return _layers(
        "volume",
        (degraded, "volume blurred", description),
        clean,
        limits=(0.0, 1.0),
        geometry=geometry,
        psf=psf,
    )


# ------------------------------------------------------------ timelapse


def phantom_timelapse_data(
    shape: tuple[int, int, int] = (10, 256, 256), seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Cells drifting and wobbling over `shape[0]` frames, with Poisson noise.

    Returns
    -------
    noisy, clean : (T, M, N) ndarray of float32
        In [0, 1]; the brightest pixels collect :data:`TIMELAPSE_PEAK` photons.

    Examples
    --------
    >>> noisy, clean = phantom_timelapse_data((3, 64, 64))
    >>> noisy.shape, bool((clean[0] != clean[1]).any())
    ((3, 64, 64), True)
    """
    from napari_deconvnet.core.noise import synthesize

    rng = np.random.default_rng(seed)
    t, h, w = shape
    n = max(4, h * w // 3000)
    start = rng.uniform([0, 0], [h, w], (n, 2))
    velocity = rng.normal(0, 2.0, (n, 2))
    phase = rng.uniform(0, 2 * np.pi, n)
    radii = rng.uniform(8, 16, (n, 1)) * rng.uniform(0.7, 1.0, (n, 2))
    values = rng.uniform(0.5, 1.0, n)
    frames = []
    for k in range(t):
        wobble = 3 * np.column_stack([np.sin(0.6 * k + phase), np.cos(0.6 * k + phase)])
        centres = start + velocity * k + wobble
        frame = _blobs((h, w), centres, radii, values, softness=1.2)
        frame += _blobs((h, w), centres, radii * 0.4, 0.6 * values, softness=0.8)
        frames.append(frame)
    clean = np.stack(frames)
    clean = np.clip(0.04 + clean / max(float(clean.max()), 1e-6), 0, 1).astype(np.float32)
    noisy = synthesize(clean, "poisson", seed=seed, peak=TIMELAPSE_PEAK)
    return np.asarray(noisy, np.float32), clean


def phantom_timelapse() -> list[LayerData]:
    """npe2 sample: 10 noisy frames of moving cells and the clean frames."""
    noisy, clean = phantom_timelapse_data()
    description = {"noise": "poisson", "peak": TIMELAPSE_PEAK, "seed": 0}
    geometry = {"axis_labels": ("t", "y", "x")} if _napari_has("axis_labels") else {}
    return _layers(
        "timelapse",
        (noisy, "moving noisy", description),
        clean,
        limits=(0.0, 1.0),
        geometry=geometry,
    )


# ----------------------------------------------------------- two colours


def two_colour_data(
    shape: tuple[int, int] = (256, 256), seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two channels, each blurred by the Airy PSF of its own wavelength, Poisson noise.

    Channel 0: cells with nuclei and puncta, emitting at 461 nm (a DAPI-like
    dye), 200 photons at the brightest; channel 1: filaments and beads at
    520 nm (GFP-like), 30 photons: a dim channel beside a bright one. The
    PSFs are those of an NA 1.0 objective on 65 nm pixels
    (:data:`TWO_COLOUR`): the green one is an eighth wider than the blue one.

    Returns
    -------
    degraded, clean : (2, M, N) ndarray of float32
        Each channel in [0, 1] (photon counts divided by its peak).
    psf : (2, 17, 17) ndarray of float32
        One PSF per channel, each summing to 1.

    Examples
    --------
    >>> degraded, clean, psf = two_colour_data((64, 64))
    >>> degraded.shape, psf.shape, [round(float(p.sum()), 4) for p in psf]
    ((2, 64, 64), (2, 17, 17), [1.0, 1.0])
    """
    from napari_deconvnet.core.noise import synthesize
    from napari_deconvnet.core.psf import blur, make_psf

    rng = np.random.default_rng(seed)
    n = max(3, shape[0] * shape[1] // 4000)
    clean = np.stack([_cells(shape, rng, n), _filaments(shape, rng, n)])
    clean = np.clip(0.02 + clean, 0, 1).astype(np.float32)
    optics = {"na": TWO_COLOUR["na"], "pixel_size": TWO_COLOUR["pixel"]}
    psf = np.stack(
        [
            np.asarray(make_psf("airy", (17, 17), wavelength=w, **optics), np.float32)
            for w in TWO_COLOUR["wavelengths"]
        ]
    )
    degraded = np.stack(
        [
            np.asarray(
                synthesize(blur(clean[c], psf[c]), "poisson", seed=[seed, c], peak=peak),
                np.float32,
            )
            for c, peak in enumerate(TWO_COLOUR["peaks"])
        ]
    )
    return degraded, clean, psf


def two_colour() -> list[LayerData]:
    """npe2 sample: the two-channel image (axis labels c, y, x), clean, and one PSF per
    channel (a PSF layer with a c axis: Restore deconvolves each channel with its own)."""
    degraded, clean, psf = two_colour_data()
    description = {
        "noise": "poisson",
        "peak": list(TWO_COLOUR["peaks"]),
        "psf": {
            "kind": "airy",
            "wavelength": list(TWO_COLOUR["wavelengths"]),
            "na": TWO_COLOUR["na"],
            "pixel_size": TWO_COLOUR["pixel"],
            "shape": list(psf.shape[1:]),
        },
        "seed": 0,
    }
    # its 65 nm pixels, as the volume sample carries its own (session 69: the layers
    # were in pixels, while the description and the PSFs are of 65 nm)
    pixel = TWO_COLOUR["pixel"] / 1000.0
    geometry: dict[str, Any] = {"scale": (1.0, pixel, pixel)}
    if _napari_has("units"):
        geometry["units"] = ("pixel", "micrometer", "micrometer")
    if _napari_has("axis_labels"):
        geometry["axis_labels"] = ("c", "y", "x")
    return _layers(
        "two_colour",
        (degraded, "two colour blurred", description),
        clean,
        limits=(0.0, 1.0),
        geometry=geometry,
        psf=psf,
    )


def _napari_has(parameter: str) -> bool:
    try:
        import inspect

        from napari.layers import Image
    except ImportError:
        return False
    return parameter in inspect.signature(Image.__init__).parameters


#: Every sample: key -> (layer function, array function, one-line description).
SAMPLES: dict[str, tuple[Callable[[], list[LayerData]], Callable[..., tuple], str]] = {
    "noisy_camera": (
        noisy_camera,
        noisy_camera_data,
        "camera photo, Gaussian noise sigma=25/255 (512x512)",
    ),
    "fluorescence": (
        fluorescence_phantom,
        fluorescence_phantom_data,
        "2D cells phantom, Poisson-Gaussian camera noise (256x256, ADU)",
    ),
    "blurred": (
        blurred_phantom,
        blurred_phantom_data,
        "2D filaments and beads, blurred by a Gaussian PSF, Gaussian noise (256x256)",
    ),
    "volume": (
        phantom_volume,
        phantom_volume_data,
        "3D cells phantom, anisotropic blur and Poisson noise (32x256x256)",
    ),
    "timelapse": (
        phantom_timelapse,
        phantom_timelapse_data,
        "10 frames of moving cells with Poisson noise (10x256x256)",
    ),
    "two_colour": (
        two_colour,
        two_colour_data,
        "2 channels (cells at 461 nm, filaments at 520 nm), each blurred by the Airy PSF "
        "of its wavelength, Poisson noise (2x256x256)",
    ),
}
