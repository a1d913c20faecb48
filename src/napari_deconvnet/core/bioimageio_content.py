"""What a bioimage.io package holds besides its weights: test tensors, README, cover.

Used by :func:`~napari_deconvnet.core.bioimageio.export_bioimageio`:

- the package's space-axis sizes (:func:`spatial_sizes`);
- test tensors from the user's test image or a built-in sample, centre-cropped
  to the package's size grid, with the conditioning input of deconvolution
  models (:func:`test_tensors`);
- the README (model, inputs, normalisation, training recipe, validation
  scores), the authors list and the cover image.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

import numpy as np

from .conditioning import extra_channels, prepare_psf
from .kinds import kind_of
from .model import DeconvNet

__all__ = [
    "author_list",
    "intensity_note",
    "readme_text",
    "spatial_sizes",
    "test_tensors",
    "write_cover",
]

_CONDITIONING = {
    "richardson-lucy": "Richardson-Lucy deconvolution of the image shifted to a zero minimum "
    "(the recorded number of iterations, reflective borders), shifted back",
    "wiener": "Wiener deconvolution with the noise-to-signal balance estimated from the image "
    "(napari_deconvnet.wiener with balance=None) times the recorded balance_scale",
    "wiener+richardson-lucy": "two channels: the Wiener deconvolution (as for 'wiener', "
    "with the recorded balance_scale), then the Richardson-Lucy deconvolution of the image "
    "shifted to a zero minimum (the recorded number of iterations), shifted back",
    "switching-median": "the switching median of the image (impulses replaced by a median "
    "of their clean neighbours)",
    "noise-level": "the image plus the noise standard deviation predicted at each pixel's "
    "3x3 mean by the noise variance line var = a * mean + b fitted to the image "
    "(napari_deconvnet.estimate_noise; Gaussian noise gives a = 0)",
}
TEST_CAP = {2: 128, 3: 52}  # largest test image side (small: packages travel, 3D runs are slow)


def spatial_sizes(net: DeconvNet) -> tuple[int, int]:
    """(min, step) of the space axes: the grid, and above twice the halo."""
    grid = net.config.grid
    return (2 * net.halo // grid + 1) * grid, grid


def crop_test(image: np.ndarray, net: DeconvNet) -> np.ndarray:
    """Centre-crop the spatial axes to ``min + n * step`` (at most the cap)."""
    lo, step = spatial_sizes(net)
    ndim = net.config.ndim
    cap = max(lo, TEST_CAP[ndim])
    spatial = image.shape[-ndim:]
    if any(s < lo for s in spatial):
        raise ValueError(
            f"test_image has spatial shape {spatial}, smaller than this model's package minimum "
            f"of {lo} pixels per axis (twice its halo of {net.halo}, on its grid of {step})"
        )
    sizes = [lo + (min(s, cap) - lo) // step * step for s in spatial]
    starts = [(s - n) // 2 for s, n in zip(spatial, sizes, strict=True)]
    index = tuple(slice(a, a + n) for a, n in zip(starts, sizes, strict=True))
    return image[(Ellipsis, *index)]


def default_test_image(net: DeconvNet) -> tuple[np.ndarray, np.ndarray | None]:
    """A built-in test image (and PSF) that suits the model."""
    from scipy import ndimage

    from .noise import synthesize
    from .psf import blur, make_psf

    ndim = net.config.ndim
    deconv = kind_of(net).needs_psf
    rng = np.random.default_rng(0)
    # at least the package's minimum (twice the halo): a deeper model than the shipped
    # ones (3D of depth 3, 2D of depth 4) was refused for a test_image nobody passed
    side = max(TEST_CAP[ndim], spatial_sizes(net)[0])
    if ndim == 2:
        from skimage.data import camera

        photo = camera()
        clean = photo[:: max(1, photo.shape[0] // side), :: max(1, photo.shape[1] // side)]
        clean = np.pad(clean, [(0, max(0, side - n)) for n in clean.shape], mode="reflect")
        clean = clean.astype(np.float32) / 255.0
    else:
        clean = np.zeros((side,) * 3, np.float32)
        spots = int(60 * (side / TEST_CAP[3]) ** 3)  # as dense as the smallest sample
        points = rng.integers(4, side - 4, size=(spots, 3))
        clean[tuple(points.T)] = rng.uniform(0.5, 1.0, spots)
        clean = ndimage.gaussian_filter(clean, 1.5)
        clean = (clean / clean.max()).astype(np.float32)
    psf = None
    if deconv:
        psf = make_psf("gaussian", sigma=1.5, ndim=ndim)
        clean = np.asarray(blur(clean, psf), np.float32)
    sigma = 0.02 if deconv else 0.08
    noisy = synthesize(clean, "gaussian", seed=0, sigma=sigma)
    return np.asarray(noisy, np.float32), psf


def test_tensors(
    net: DeconvNet, test_image: Any, psf: Any
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Test inputs by tensor id (batch and channel axes added), and how they were made."""
    cfg = net.config
    n_image = cfg.in_channels - extra_channels(net)
    if test_image is None:
        image, default_psf = default_test_image(net)
        psf = default_psf if psf is None else psf
        made = "the built-in sample (a degraded scikit-image camera, or synthetic spots in 3D)"
        if n_image > 1:  # one channel each, the sample turned another way (session 69: a
            # multichannel model was refused for a test_image nobody passed)
            turns = [np.rot90(image, c, axes=(-2, -1)) for c in range(n_image)]
            image = np.stack([np.ascontiguousarray(t) for t in turns])
            made += f", turned by 90 degrees from channel to channel ({n_image} channels)"
    else:
        image = np.asarray(test_image)
        if image.dtype.kind not in "biuf" or not np.isfinite(image).all():
            raise ValueError("test_image must be a finite real-valued array")
        made = "the test image given to export_bioimageio"
    expected = cfg.ndim + (1 if n_image > 1 else 0)
    if image.ndim != expected or (n_image > 1 and image.shape[0] != n_image):
        layout = ("C, " if n_image > 1 else "") + ("Y, X" if cfg.ndim == 2 else "Z, Y, X")
        raise ValueError(
            f"test_image has shape {image.shape}; this model needs a ({layout}) image"
            + (f" with {n_image} channels" if n_image > 1 else "")
            + " (pass test_image=, or --test-image on the command line)"
        )
    image = np.ascontiguousarray(crop_test(image, net), dtype=np.float32)
    if n_image == 1:
        image = image[None]
    tensors = {"input": image[None]}
    record: dict[str, Any] = {"source": made, "shape": list(image.shape[1:])}
    if extra_channels(net):
        if psf is None and kind_of(net).needs_psf:
            raise ValueError(
                f"model {net.metadata.get('name', '')!r} deconvolves: pass psf= (the test "
                "image's PSF, an array or a make_psf name) to make its conditioning input"
            )
        kernel = prepare_psf(psf, net, image.shape[1:]) if kind_of(net).needs_psf else None
        channel = kind_of(net).channel_stack(image, kernel)  # (1, C, *spatial)
        tensors["conditioning"] = np.ascontiguousarray(channel, dtype=np.float32)
        if kernel is not None:
            record["psf_shape"] = list(kernel.shape)
            tensors["_psf"] = np.asarray(kernel, np.float32)
    return tensors, record


# ------------------------------------------------------------------- rdf


def intensity_note(net: DeconvNet) -> str:
    method = net.config.normalization["method"]
    if method == "percentile":
        norm = net.config.normalization
        return (
            f"Output intensities are normalised: the input image's {norm['low']} and "
            f"{norm['high']} percentiles (over the whole image, per channel) map to 0 and 1. "
            "napari-deconvnet's restore maps the output back to the input's scale with those "
            "percentiles; the bioimage.io format has no operation for that step, so other "
            "tools return the normalised result `(restored - p_low) / (p_high - p_low)`."
        )
    if method == "fixed":
        return "Output intensities are in the input's scale (fixed normalisation, inverted)."
    return "The model works on raw intensities (no normalisation)."


def author_list(authors: Any) -> list[dict[str, Any]]:
    if authors is None:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "napari-deconvnet user"
        return [{"name": user}]
    if isinstance(authors, str | dict):
        authors = [authors]
    out = []
    for a in authors:
        if isinstance(a, str) and a.strip():
            out.append({"name": a.strip()})
        elif isinstance(a, dict) and a.get("name"):
            out.append(dict(a))
        else:
            raise ValueError(f"authors must be names or dicts with a 'name', got {a!r}")
    if not out:
        raise ValueError("authors must name at least one author")
    return out


def readme_text(net: DeconvNet, rdf: dict[str, Any], test_record: dict[str, Any]) -> str:
    meta = net.metadata
    training = meta.get("training") or {}
    cfg = net.config
    lo, step = spatial_sizes(net)
    what = "noise map" if kind_of(net).name == "noise-conditioned" else "classical pre-restoration"
    inputs = "the image" + (
        f" and `conditioning`, its {what} "
        f"({json.dumps(meta.get('conditioning'))}) in the image's intensity scale"
        if extra_channels(net)
        else ""
    )
    lines = [
        f"# {rdf['name']}",
        "",
        rdf["description"],
        "",
        "Exported by napari-deconvnet: an encoder-decoder deconvolution network "
        f"({cfg.ndim}D, depth {cfg.depth}, {cfg.base_channels} base channels, "
        f"receptive field {net.receptive_field} px, halo {net.halo} px).",
        "",
        "## Inputs and outputs",
        "",
        f"- Inputs: {inputs}; axes batch, channel, "
        + ("z, " if cfg.ndim == 3 else "")
        + f"y, x. Spatial sizes {lo} + n * {step} pixels.",
        f"- Normalisation: {json.dumps(cfg.normalization)}. {intensity_note(net)}",
        f"- Test input: {test_record['source']}, shape {test_record['shape']}"
        + (
            f", conditioned with a PSF of shape {test_record['psf_shape']}"
            if "psf_shape" in test_record
            else ""
        )
        + ".",
        "",
        "## Training recipe",
        "",
    ]
    scalars = {k: v for k, v in training.items() if isinstance(v, str | int | float | bool)}
    recipe = {
        k: v for k, v in scalars.items() if not any(s in k for s in ("psnr", "ssim", "loss"))
    }
    for key in ("settings", "noise", "normalization", "psf", "task"):
        if isinstance(training.get(key), dict):
            recipe[key] = json.dumps(training[key])
    lines += [f"- {k}: {v}" for k, v in recipe.items()] or ["- not recorded"]
    scores = {k: v for k, v in scalars.items() if any(s in k for s in ("psnr", "ssim", "loss"))}
    for key, value in training.items():
        if isinstance(value, dict) and any(s in key for s in ("psnr", "sigma", "val")):
            scores[key] = json.dumps(value)
    lines += ["", "## Validation scores", ""]
    lines += [f"- {k}: {v}" for k, v in scores.items()] or ["- not recorded"]
    lines += [
        "",
        "## Running it",
        "",
        "In napari-deconvnet: `dn.load_model('this.zip')` then `dn.restore(image, model)`. "
        "In bioimage.io tools (bioimageio.core, deepImageJ, ilastik, QuPath) use the "
        "torchscript, onnx or pytorch_state_dict weights.",
        "",
    ]
    if extra_channels(net):
        method = (meta.get("conditioning") or {}).get("method", "wiener")
        how = _CONDITIONING.get(method, "see the model's conditioning record")
        psf = ", with the image's PSF," if kind_of(net).needs_psf else ""
        test_psf = " The test PSF is `test_psf.npy`." if "psf_shape" in test_record else ""
        lines += [
            f"The `conditioning` input must be computed by the user{psf} as napari-deconvnet "
            f"does (`napari_deconvnet.core.conditioning.conditioning_channels`): {how}."
            + test_psf,
            "",
        ]
    return "\n".join(lines)


def write_cover(path: Path, image: np.ndarray, output: np.ndarray) -> None:
    """A 2:1 cover: input | output, middle plane for volumes, percentile-scaled."""
    import imageio.v3 as iio

    def plane(a: np.ndarray) -> np.ndarray:
        a = a[0, 0]
        while a.ndim > 2:
            a = a[a.shape[0] // 2]
        lo, hi = np.percentile(a, [0.5, 99.5])
        return np.clip((a - lo) / (hi - lo + 1e-12), 0, 1)

    left, right = plane(image), plane(output)
    pic = np.concatenate([left, right], axis=1)
    reps = max(1, 256 // pic.shape[0])
    pic = np.kron(pic, np.ones((reps, reps)))
    iio.imwrite(path, (pic * 255).round().astype(np.uint8), extension=".png")
