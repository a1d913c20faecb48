"""Writing BioImage Model Zoo (bioimage.io) packages of a DeconvNet.

A package is a zip with an ``rdf.yaml`` in the model specification format
0.5 and the files it names:

- ``weights.pt``, the PyTorch state dict, with ``deconvnet.py``, the
  architecture's source (this library's ``core/model.py`` and a
  ``DeconvNetZoo`` class whose inputs are concatenated along the channels),
  and its kwargs (the model's config);
- ``weights_torchscript.pt`` (traced) and ``weights.onnx`` (when ``onnx`` is
  installed), taking any spatial size of at least ``2**depth`` pixels;
- ``test_input.npy`` (and ``test_conditioning.npy``) and ``test_output.npy``;
- ``cover.png`` (input | output) and ``README.md`` (the training recipe and
  the validation scores of the model's metadata).

Every package is validated with ``bioimageio.spec`` before it is renamed into
place.

The space axes have a parameterised size ``min + n * step`` with step the
``2**depth`` grid and min the smallest grid multiple above twice the halo
(the receptive field rounded up to the grid), as the specification requires;
the halo makes tiling in other tools exact on that grid.

Normalisation is declared as the specification's processing steps:

- ``percentile``: pre-processing ``scale_range`` over the whole image per
  channel (batch and space axes) with the model's percentiles, exactly as
  :func:`~napari_deconvnet.restore` normalises (the specification adds
  ``eps = 1e-6`` to the range). The specification has no operation that maps
  an output back with the *input's* percentiles, so the output stays in
  normalised units: restore's result ``r`` corresponds to
  ``(r - p_low) / (p_high - p_low)`` with the input image's percentiles.
- ``fixed``: ``scale_linear`` before and its inverse after: identical
  intensities.
- ``none``: nothing.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import model as _model_module
from .bioimageio_content import (
    author_list,
    readme_text,
    spatial_sizes,
    test_tensors,
    write_cover,
)
from .bioimageio_read import ARCHITECTURE_CALLABLE, run_package
from .conditioning import extra_channels
from .export import (
    ONNX_OPSET,
    atomic_path,
    check_target,
    deployment_record,
    missing_dependency,
    private_copy,
    shareable_metadata,
    write_bytes,
    write_onnx,
    write_torchscript,
)
from .kinds import kind_of
from .model import DeconvNet

__all__ = ["export_bioimageio", "FORMAT_VERSION", "DEFAULT_CITE"]

#: The model description format written (bioimage.io spec 0.5; read by all 0.5 tools).
FORMAT_VERSION = "0.5.4"
#: The architecture's paper, cited by default.
DEFAULT_CITE = [
    {
        "text": "Noh, Hong and Han. Learning Deconvolution Network for Semantic Segmentation. "
        "ICCV 2015",
        "doi": "10.1109/ICCV.2015.178",
    }
]
_NOISE2VOID = {
    "text": "Krull, Buchholz and Jug. Noise2Void - Learning Denoising From Single Noisy "
    "Images. CVPR 2019",
    "doi": "10.1109/CVPR.2019.00223",
}
_ARCH_FILE = "deconvnet.py"

_WRAPPER = f'''

class {ARCHITECTURE_CALLABLE}(DeconvNet):
    """bioimage.io entry point: a DeconvNet built from its config as keyword arguments.

    ``forward`` takes the package's inputs in order (the image, then the
    conditioning channel for deconvolution models), concatenates them along
    the channels and runs the network as napari-deconvnet's restore does:
    on the image extended by reflection by the halo (and up to the grid),
    cropped back.
    """

    def __init__(self, **config):
        super().__init__(DeconvNetConfig.from_dict(config, stored=True))

    def forward(self, *inputs):
        x = inputs[0] if len(inputs) == 1 else torch.cat(inputs, dim=1)
        spatial = x.shape[2:]
        halo, widths = self.halo, []
        for size in reversed(spatial):
            widths += [halo, halo + (-size) % self.config.grid]
        y = super().forward(F.pad(x, widths, mode="reflect"))
        return y[(slice(None), slice(None), *(slice(halo, halo + s) for s in spatial))]
'''


def _architecture_source() -> str:
    return inspect.getsource(_model_module) + _WRAPPER


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------- validation


def _refuse_unexportable(net: DeconvNet) -> None:
    name = net.metadata.get("name", "this model")
    if getattr(kind_of(net), "switch", False):
        raise ValueError(
            f"{name!r} cannot be exported as a bioimage.io package: its impulse switch keeps "
            "every pixel that is not at the whole image's minimum or maximum, a step after "
            "the network that the bioimage.io model format cannot express, so other tools "
            "would give different results; use napari-deconvnet to run it"
        )
    cfg = net.config
    if cfg.out_channels != cfg.in_channels - extra_channels(net):
        raise ValueError(
            f"{name!r} maps {cfg.in_channels} to {cfg.out_channels} channels, which "
            "napari-deconvnet does not know how to describe as a package"
        )


def _names(stem: str, n: int) -> list[str]:
    return [stem] if n == 1 else [f"{stem}_{i}" for i in range(n)]


def _axes(
    net: DeconvNet, channel_names: list[str], *, output: bool, like_input: bool = False
) -> list[dict[str, Any]]:
    """Axes of a tensor; outputs and further inputs take the image input's sizes."""
    lo, step = spatial_sizes(net)
    axes: list[dict[str, Any]] = [
        {"type": "batch"},
        {"type": "channel", "channel_names": channel_names},
    ]
    for axis in "zyx"[3 - net.config.ndim :]:
        size: dict[str, Any] = {"tensor_id": "input", "axis_id": axis}
        if output:
            axes.append({"type": "space", "id": axis, "size": size, "halo": net.halo})
        elif like_input:
            axes.append({"type": "space", "id": axis, "size": size})
        else:
            axes.append({"type": "space", "id": axis, "size": {"min": lo, "step": step}})
    return axes


def _conditioning_names(net: DeconvNet) -> list[str]:
    """Channel names of the ``conditioning`` input: one, or one per classical method."""
    n = extra_channels(net)
    if n == 1:
        return ["conditioning"]
    method = str((net.metadata.get("conditioning") or {}).get("method", ""))
    names = method.split("+")
    return names if len(names) == n else [f"conditioning{i}" for i in range(n)]


def _processing(net: DeconvNet, reference: str | None = None) -> tuple[list, list]:
    norm = net.config.normalization
    method = norm["method"]
    pre: list[dict[str, Any]] = [{"id": "ensure_dtype", "kwargs": {"dtype": "float32"}}]
    post: list[dict[str, Any]] = []
    if method == "percentile":
        kwargs: dict[str, Any] = {
            "axes": list("zyx"[3 - net.config.ndim :]),
            "min_percentile": float(norm["low"]),
            "max_percentile": float(norm["high"]),
            "eps": 1e-6,
        }
        if reference:
            kwargs["reference_tensor"] = reference
        pre.append({"id": "scale_range", "kwargs": kwargs})
    elif method == "fixed":
        offset, scale = float(norm.get("offset", 0.0)), float(norm.get("scale", 1.0))
        pre.append(
            {"id": "scale_linear", "kwargs": {"gain": 1 / scale, "offset": -offset / scale}}
        )
        post.append({"id": "scale_linear", "kwargs": {"gain": scale, "offset": offset}})
    return pre, post


# ---------------------------------------------------------------- export


def export_bioimageio(
    model: Any,
    path: str | os.PathLike,
    *,
    name: str | None = None,
    description: str | None = None,
    authors: Any = None,
    license: str = "CC-BY-4.0",
    cite: list[dict[str, str]] | None = None,
    test_image: Any = None,
    psf: Any = None,
    tags: list[str] | None = None,
    onnx: bool | None = None,
) -> Path:
    """Write a model as a validated bioimage.io package (a zip with an ``rdf.yaml``).

    Parameters
    ----------
    model : str, path or DeconvNet
        A shipped name, a model file or a loaded model.
    path : str or path
        The ``.zip`` to write; its folder must exist. Written atomically.
    name, description : str, optional
        Default: the model's metadata.
    authors : str, dict or list of them, optional
        Names, or dicts with ``name`` (and e.g. ``affiliation``, ``orcid``).
        Default: the user's login name.
    license : str, optional
        An SPDX license identifier.
    cite : list of dict, optional
        ``{"text": ..., "doi": ...}`` or ``{"text": ..., "url": ...}``.
        Default: the DeconvNet paper (and Noise2Void for self-supervised models).
    test_image : array, optional
        ``(Y, X)`` or ``(Z, Y, X)`` (``C`` first for multichannel models),
        centre-cropped to at most 128 (2D) or 52 (3D) pixels per axis on the
        package's size grid. Default: a built-in degraded sample.
    psf : array, str or dict, optional
        Deconvolution models: the test image's PSF, used to make the test
        conditioning input (default with the built-in sample: its PSF).
    tags : list of str, optional
    onnx : bool, optional
        Include ONNX weights; default: when ``onnx`` is installed.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        A missing output folder, a suffix other than ``.zip``, a model whose
        post-processing the format cannot express (salt-and-pepper's impulse
        switch), a bad test image, a deconvolution model without ``psf=``
        for its test image, or a package that fails validation.
    ImportError
        Without ``bioimageio.spec`` (``pip install 'napari-deconvnet[export]'``).

    Notes
    -----
    Deconvolution models declare their classical channel as a second input,
    ``conditioning``: the image's Richardson-Lucy or Wiener pre-deconvolution
    (as :mod:`~napari_deconvnet.core.conditioning` makes it), which the user
    computes with the image's PSF; it is normalised with the image's
    statistics.
    """
    import tifffile

    from .persistence import load_model

    try:
        import bioimageio.spec  # noqa: F401
    except ImportError:
        raise missing_dependency("bioimageio.spec", "bioimage.io export") from None
    target = check_target(path, (".zip",), "bioimage.io package")
    net = private_copy(load_model(model))
    _refuse_unexportable(net)
    if psf is not None and not kind_of(net).needs_psf:  # (it was ignored without a word)
        raise ValueError(
            f"psf is for deconvolution models; {net.metadata.get('name', 'this model')!r} "
            "does not deconvolve (leave psf out)"
        )
    if onnx is None:
        try:
            import onnx as _onnx  # noqa: F401

            onnx = True
        except ImportError:
            onnx = False
    elif onnx:
        try:
            import onnx as _onnx  # noqa: F401
        except ImportError:
            raise missing_dependency("onnx", "ONNX weights") from None

    meta = net.metadata
    if name is None:  # the model's own name, long enough for the format
        name = str(meta.get("name") or "model")
        name = name if len(name) >= 5 else f"napari-deconvnet {name}"
    description = description if description is not None else meta.get("description") or name
    if not isinstance(name, str) or not 5 <= len(name.strip()) <= 128:
        raise ValueError(
            f"name must be a string of 5 to 128 characters (bioimage.io), got {name!r}"
        )
    if not isinstance(description, str) or len(description) > 1024:
        raise ValueError("description must be a string of at most 1024 characters (bioimage.io)")
    if tags is not None and (
        isinstance(tags, str)
        or not isinstance(tags, list | tuple)
        or not all(isinstance(t, str) and t.strip() for t in tags)
    ):
        raise TypeError(
            f"tags must be a list of words such as ['fluorescence', 'nuclei'], got {tags!r:.80} "
            "(a single string would be split into letters)"
        )
    if cite is None:
        cite = list(DEFAULT_CITE)
        if (meta.get("training") or {}).get("mode") == "self-supervised":
            cite.append(_NOISE2VOID)
    tensors, test_record = test_tensors(net, test_image, psf)
    kernel = tensors.pop("_psf", None)
    conditioned = "conditioning" in tensors

    with tempfile.TemporaryDirectory(prefix="deconvnet-bioimageio-") as tmp:
        folder = Path(tmp) / "package"
        folder.mkdir()
        pre, post = _processing(net)
        inputs = [
            {
                "id": "input",
                "description": "the image to restore",
                "axes": _axes(net, _names("image", net.config.out_channels), output=False),
                "test_tensor": {"source": "test_input.npy"},
                "sample_tensor": {"source": "sample_input.tif"},
                "data": {"type": "float32"},
                "preprocessing": pre,
            }
        ]
        if conditioned:
            cond_pre, _ = _processing(net, reference="input")
            inputs.append(
                {
                    "id": "conditioning",
                    "description": (
                        "the image's noise map (see README)"
                        if kind_of(net).name == "noise-conditioned"
                        else "the image's classical pre-restoration (see README)"
                    ),
                    "axes": _axes(net, _conditioning_names(net), output=False, like_input=True),
                    "test_tensor": {"source": "test_conditioning.npy"},
                    "sample_tensor": {"source": "sample_conditioning.tif"},
                    "data": {"type": "float32"},
                    "preprocessing": cond_pre,
                }
            )
        outputs = [
            {
                "id": "output",
                "description": (
                    "the restored image, normalised as the input (see README)"
                    if net.config.normalization["method"] == "percentile"
                    else "the restored image"
                ),
                "axes": _axes(net, _names("restored", net.config.out_channels), output=True),
                "test_tensor": {"source": "test_output.npy"},
                "sample_tensor": {"source": "sample_output.tif"},
                "data": {"type": "float32"},
                "postprocessing": post,
            }
        ]
        rdf: dict[str, Any] = {
            "type": "model",
            "format_version": FORMAT_VERSION,
            "name": name.strip(),
            "description": description,
            "authors": author_list(authors),
            "cite": cite,
            "license": license,
            "tags": list(tags or [])
            + ["napari-deconvnet", f"{net.config.ndim}d", "pytorch"]
            + (["deconvolution"] if kind_of(net).needs_psf else ["denoising"]),
            "documentation": "README.md",
            "covers": ["cover.png"],
            "inputs": inputs,
            "outputs": outputs,
        }
        if kernel is not None:  # listed, so that repackaging keeps the PSF the test used
            rdf["attachments"] = [{"source": "test_psf.npy"}]
        output = run_package(net, rdf, tensors)
        np.save(folder / "test_input.npy", tensors["input"])
        if conditioned:
            np.save(folder / "test_conditioning.npy", tensors["conditioning"])
        np.save(folder / "test_output.npy", output)
        for key, array in [*tensors.items(), ("output", output)]:
            tifffile.imwrite(folder / f"sample_{key}.tif", array)
        if kernel is not None:
            np.save(folder / "test_psf.npy", kernel)
        write_cover(folder / "cover.png", tensors["input"], output)
        (folder / "README.md").write_text(readme_text(net, rdf, test_record), encoding="utf-8")

        record = deployment_record(net, list(tensors))
        state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
        buffer = io.BytesIO()  # (torch's writer aborts the process on a full disk)
        torch.save(state, buffer)
        write_bytes(folder / "weights.pt", buffer.getvalue())
        (folder / _ARCH_FILE).write_text(_architecture_source(), encoding="utf-8")
        version = torch.__version__.split("+")[0]
        weights: dict[str, Any] = {
            "pytorch_state_dict": {
                "source": "weights.pt",
                "sha256": _sha256(folder / "weights.pt"),
                "architecture": {
                    "source": _ARCH_FILE,
                    "sha256": _sha256(folder / _ARCH_FILE),
                    "callable": ARCHITECTURE_CALLABLE,
                    "kwargs": net.config.to_dict(),
                },
                "pytorch_version": version,
            }
        }
        n_inputs = len(inputs)
        write_torchscript(net, folder / "weights_torchscript.pt", n_inputs)
        weights["torchscript"] = {
            "source": "weights_torchscript.pt",
            "sha256": _sha256(folder / "weights_torchscript.pt"),
            "pytorch_version": version,
            "parent": "pytorch_state_dict",
        }
        if onnx:
            write_onnx(
                net, folder / "weights.onnx", [i["id"] for i in inputs], "output", opset=ONNX_OPSET
            )
            weights["onnx"] = {
                "source": "weights.onnx",
                "sha256": _sha256(folder / "weights.onnx"),
                "opset_version": ONNX_OPSET,
                "parent": "pytorch_state_dict",
            }
        rdf["weights"] = weights
        record.pop("metadata")
        rdf["config"] = {
            "napari_deconvnet": {
                **record,
                "metadata": _jsonable(shareable_metadata(meta)),
            }
        }
        _write_yaml(folder / "rdf.yaml", rdf)
        staged = Path(tmp) / "package.zip"
        with zipfile.ZipFile(staged, "w", zipfile.ZIP_DEFLATED) as zf:
            for file in sorted(folder.iterdir()):
                zf.write(file, file.name)
        validate_package(staged)
        with atomic_path(target) as part:
            shutil.copyfile(staged, part)
    return target


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _write_yaml(path: Path, doc: dict[str, Any]) -> None:
    import yaml

    path.write_text(yaml.safe_dump(_jsonable(doc), sort_keys=False), encoding="utf-8")


def validate_package(path: str | os.PathLike) -> None:
    """Validate a package with ``bioimageio.spec``; ValueError with the errors if it fails."""
    try:
        from bioimageio.spec import load_description
    except ImportError:
        raise missing_dependency("bioimageio.spec", "bioimage.io validation") from None
    descr = load_description(str(path), perform_io_checks=True)
    summary = descr.validation_summary
    if summary.status not in ("passed", "valid-format"):
        errors = "; ".join(f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in summary.errors[:8])
        raise ValueError(f"the bioimage.io package does not validate: {errors}")
