"""Deployment formats: TorchScript and ONNX, and the dispatch to bioimage.io packages.

:func:`export` writes a model for runtimes that do not have napari-deconvnet:
TorchScript (``.pt``; ``torch.jit.load``) or ONNX (``.onnx``; onnxruntime,
OpenCV, ...). The exported graph is the network on *normalised* intensities
as :func:`~napari_deconvnet.restore` runs it (:class:`GridPadded`: the image
extended by reflection by the halo and up to the ``2**depth`` grid, and
cropped back), so that any spatial size of at least ``halo + 2**depth``
pixels works and gives restore's normalised output. How to
normalise (the model's ``config.normalization``), the grid, the halo and the
input channels are stored in the file as JSON: the ``napari_deconvnet`` entry
of the ONNX model's ``metadata_props``, or the ``napari_deconvnet.json``
extra file of the TorchScript archive.

A bioimage.io package (``.zip``) is written by
:func:`napari_deconvnet.core.bioimageio.export_bioimageio`.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .atomic import atomic_file
from .model import DeconvNet

__all__ = ["export", "EXPORT_FORMATS", "ONNX_OPSET"]

#: Formats of :func:`export` and the file suffixes that select them.
EXPORT_FORMATS = {
    "onnx": (".onnx",),
    "torchscript": (".pt", ".pth", ".ts", ".torchscript"),
    "bioimageio": (".zip",),
}
#: ONNX opset of exported models (onnxruntime 1.14 and newer run it).
ONNX_OPSET = 17
#: The opsets :func:`export` takes: from the first with every operator the networks
#: use (upsampling by transposed convolution, padding modes) to the newest that
#: torch's TorchScript-based exporter writes.
ONNX_OPSETS = (11, 20)
_EXTRA_FILE = "napari_deconvnet.json"
_INSTALL_HINT = "pip install 'napari-deconvnet[export]'"


# ------------------------------------------------------------ file writing


def check_target(path: str | os.PathLike, suffixes: Sequence[str], what: str) -> Path:
    """Validate an output path: an existing folder and one of `suffixes`."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"the output path must be a str or a path, got {type(path).__name__}")
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise ValueError(
            f"{what} files end in {' or '.join(suffixes)}, got {path.name!r}; "
            f"rename the output file"
        )
    folder = path.parent
    if not folder.is_dir():
        raise ValueError(
            f"cannot write {path}: the folder {str(folder)!r} does not exist; create it first"
        )
    if path.is_dir():
        raise ValueError(f"cannot write {path}: it is a folder")
    return path


#: A temporary path beside a target, renamed over it if the block succeeds: an
#: interrupted or failed export leaves nothing where the file was to be (and an
#: older file of that name untouched). The package's one atomic writer.
atomic_path = atomic_file


def missing_dependency(package: str, purpose: str) -> ImportError:
    return ImportError(
        f"{purpose} needs the optional package {package!r}, which is not installed; "
        f"install it with: {_INSTALL_HINT}"
    )


# ------------------------------------------------------ the traced module


class GridPadded(nn.Module):
    """The network as :func:`~napari_deconvnet.restore` runs it, in traceable form.

    The inputs are concatenated along the channels, extended by reflection
    by the halo on every side (and up to the ``2**depth`` grid at the end),
    run through the network and cropped back: restore's tiles see the same
    reflected context at the image's borders, so this gives restore's
    (normalised) output, whole or tiled with the halo. The padding is traced
    as graph operations, so that TorchScript and ONNX graphs take any spatial
    size of at least ``halo + 2**depth`` pixels.
    """

    def __init__(self, net: DeconvNet) -> None:
        super().__init__()
        self.net = net
        self.grid = net.config.grid
        self.halo = net.halo

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        x = inputs[0] if len(inputs) == 1 else torch.cat(inputs, dim=1)
        spatial = x.shape[2:]
        widths = []
        for size in reversed(spatial):
            widths += [self.halo, self.halo + (-size) % self.grid]
        y = self.net(F.pad(x, widths, mode="reflect"))
        return y[(slice(None), slice(None), *(slice(self.halo, self.halo + s) for s in spatial))]


def private_copy(net: DeconvNet) -> DeconvNet:
    """A float32 CPU copy in eval mode: exporting never changes the caller's model."""
    copy_ = copy.deepcopy(net).to(device="cpu", dtype=torch.float32).eval()
    return copy_.to(memory_format=torch.contiguous_format)


def example_inputs(net: DeconvNet, n_inputs: int, size: int = 32) -> tuple[torch.Tensor, ...]:
    """Seeded example tensors on the grid, for tracing."""
    cfg = net.config
    # reflect padding by the halo needs more than the halo in every axis
    side = -(-max(size, net.halo + cfg.grid) // cfg.grid) * cfg.grid
    gen = torch.Generator().manual_seed(0)
    channels = [cfg.in_channels]
    if n_inputs > 1:  # the image, then the conditioning input with the kind's extra channels
        from .kinds import kind_of

        extra = kind_of(net).extra_channels
        channels = [cfg.in_channels - extra, extra] if n_inputs == 2 else [1] * n_inputs
    return tuple(torch.rand(1, c, *([side] * cfg.ndim), generator=gen) for c in channels)


@contextlib.contextmanager
def _quiet_tracing() -> Iterator[None]:
    # the tracer warns about the network's shape checks (constant for a
    # trace) and torch about the TorchScript exporter's deprecation
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


def write_torchscript(
    net: DeconvNet, path: Path, n_inputs: int = 1, extra: dict[str, str] | None = None
) -> None:
    """Trace ``GridPadded(net)`` and save it to `path` (not atomic: the caller's job)."""
    module = GridPadded(net).eval()
    with _quiet_tracing(), torch.no_grad():
        traced = torch.jit.trace(module, example_inputs(net, n_inputs), check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files=extra or {})
    write_bytes(path, buffer.getvalue())


def write_bytes(path: Path, data: bytes) -> None:
    """`data` into `path` by Python's own file writes: torch's writer, given a path, threw
    from a C++ destructor when the disk filled and aborted the process (no OSError, a
    temporary file left behind, session 70); Python raises OSError, and the caller's
    atomic file or folder takes its temporary away."""
    with open(path, "wb") as handle:
        handle.write(data)


def check_opset(opset: Any) -> int:
    """`opset` if it is an integer in :data:`ONNX_OPSETS`, else a clear error."""
    low, high = ONNX_OPSETS
    if isinstance(opset, bool) or not isinstance(opset, int | np.integer):
        raise TypeError(f"opset must be an integer from {low} to {high}, got {opset!r}")
    if not low <= opset <= high:
        raise ValueError(
            f"opset must be from {low} to {high}, got {opset}; the default {ONNX_OPSET} "
            "runs on onnxruntime 1.14 and newer"
        )
    return int(opset)


def write_onnx(
    net: DeconvNet,
    path: Path,
    input_names: Sequence[str] = ("input",),
    output_name: str = "output",
    metadata: dict[str, str] | None = None,
    opset: int = ONNX_OPSET,
) -> None:
    """Export ``GridPadded(net)`` to ONNX with dynamic batch and spatial axes."""
    try:
        import onnx
    except ImportError:
        raise missing_dependency("onnx", "ONNX export") from None
    module = GridPadded(net).eval()
    ndim = net.config.ndim
    dynamic = {"batch": 0, **{f"{axis}": 2 + i for i, axis in enumerate("zyx"[3 - ndim :])}}
    axes = {index: name for name, index in dynamic.items()}
    with _quiet_tracing(), torch.no_grad():
        torch.onnx.export(
            module,
            example_inputs(net, len(input_names)),
            str(path),
            dynamo=False,
            input_names=list(input_names),
            output_names=[output_name],
            dynamic_axes={name: axes for name in [*input_names, output_name]},
            opset_version=opset,
        )
    if metadata:
        proto = onnx.load(str(path))
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, str(path))


def deployment_record(net: DeconvNet, inputs: Sequence[str]) -> dict[str, Any]:
    """What a runtime needs besides the graph: normalisation, grid, halo, channels."""
    from .._version import __version__

    cfg = net.config
    return {
        "format": "napari-deconvnet-deployment",
        "inputs": list(inputs),
        "layout": "BCYX" if cfg.ndim == 2 else "BCZYX",
        "in_channels": cfg.in_channels,
        "out_channels": cfg.out_channels,
        "grid": cfg.grid,
        "min_size": net.halo + cfg.grid,
        "halo": net.halo,
        "normalization": dict(cfg.normalization),
        "intensities": (
            "the graph takes and returns normalised intensities: subtract the offset and "
            "divide by the scale of 'normalization' before, and invert after"
        ),
        "config": cfg.to_dict(),
        **_after_the_graph(net),
        "metadata": shareable_metadata(net.metadata),
        "library": {"napari_deconvnet": __version__, "torch": torch.__version__},
    }


def shareable_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """A model's metadata for a file others get (an export, a bioimage.io package):
    without the paths of this machine (the model's own, and the starting model's in
    ``training.fine_tuned_from``, whose name and weights fingerprint stay; session 73:
    a package carried ``/work/.../denoise-2d.safetensors``)."""
    out = {k: v for k, v in metadata.items() if k != "path"}
    training = out.get("training")
    if isinstance(training, dict) and isinstance(training.get("fine_tuned_from"), dict):
        parent = {k: v for k, v in training["fine_tuned_from"].items() if k != "path"}
        out["training"] = {**training, "fine_tuned_from": parent}
    return out


#: What a runtime must do after a salt-and-pepper model's graph (its impulse switch)
IMPULSE_SWITCH_NOTE = (
    "after the graph, keep every input pixel that is not at the whole image's minimum or "
    "maximum: only those pixels are taken for impulses and replaced by the network's output "
    "(restore does this; the graph alone also changes the other pixels)"
)


def _after_the_graph(net: DeconvNet) -> dict[str, Any]:
    """The deployment record's note on a step after the network (the impulse switch)."""
    from .kinds import kind_of

    if getattr(kind_of(net), "switch", False):
        return {"impulse_switch": IMPULSE_SWITCH_NOTE}
    return {}


# -------------------------------------------------------------- public API


def _format_of(path: Path, format: str | None) -> str:
    if format is not None:
        if not isinstance(format, str) or format.lower() not in EXPORT_FORMATS:
            raise ValueError(
                f"unknown export format {format!r}; use one of {sorted(EXPORT_FORMATS)}"
            )
        return format.lower()
    suffix = path.suffix.lower()
    for name, suffixes in EXPORT_FORMATS.items():
        if suffix in suffixes:
            return name
    known = ", ".join(f"{s} ({n})" for n, ss in EXPORT_FORMATS.items() for s in ss)
    raise ValueError(
        f"cannot tell the export format from {path.name!r}; use a file ending in {known} "
        "or pass format="
    )


def export(
    model: str | os.PathLike | DeconvNet,
    path: str | os.PathLike,
    *,
    format: str | None = None,
    opset: int = ONNX_OPSET,
    **bioimageio: Any,
) -> Path:
    """Export a model as TorchScript, ONNX or a bioimage.io package.

    Parameters
    ----------
    model : str, path or DeconvNet
        A shipped model name, a model file or a loaded model.
    path : str or path
        The file to write; its folder must exist. Written atomically.
    format : {"onnx", "torchscript", "bioimageio"}, optional
        Default: from the suffix (``.onnx``; ``.pt``/``.pth``/``.ts``;
        ``.zip``).
    opset : int, optional
        ONNX opset version.
    **bioimageio
        For ``"bioimageio"``: the keyword arguments of
        :func:`~napari_deconvnet.export_bioimageio` (name, description,
        authors, license, ...).

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ValueError
        Unknown format or suffix, a missing output folder, an unknown model.
    ImportError
        ONNX without the ``onnx`` package (``pip install 'napari-deconvnet[export]'``).

    Notes
    -----
    The TorchScript and ONNX graphs take ``(B, C, Y, X)`` or ``(B, C, Z, Y,
    X)`` float32 tensors with the model's ``in_channels`` (for deconvolution
    and salt-and-pepper models the image, then its conditioning channel,
    see :mod:`napari_deconvnet.core.conditioning`) of any spatial size of at
    least ``halo + 2**depth`` (28 pixels for the shipped models), with
    normalised intensities, and return the restored, normalised image:
    ``restore``'s result before it is mapped back to the input's scale. The
    JSON record beside the graph says how to normalise. Salt-and-pepper
    models' impulse switch (keep every pixel that is not at the image's
    extremes) is not part of the graph.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "denoise.pt"
    >>> export("denoise-2d", out).name
    'denoise.pt'
    """
    from .persistence import load_model

    target = Path(path) if isinstance(path, str | os.PathLike) else path
    if not isinstance(target, Path):
        raise TypeError(f"path must be a str or a path, got {type(path).__name__}")
    fmt = _format_of(target, format)
    if fmt == "onnx":
        check_opset(opset)
    if fmt == "bioimageio":
        from .bioimageio import export_bioimageio

        return export_bioimageio(model, target, **bioimageio)
    if bioimageio:
        raise TypeError(
            f"export to {fmt} takes no {sorted(bioimageio)} (those are for bioimage.io packages)"
        )
    target = check_target(target, EXPORT_FORMATS[fmt], fmt)
    net = private_copy(load_model(model))
    record = deployment_record(net, ["input"])
    if "impulse_switch" in record:
        name = net.metadata.get("name", "this model")
        warnings.warn(
            f"{name!r} exported to {fmt}: its impulse switch is not part of the graph; "
            f"{IMPULSE_SWITCH_NOTE} (also in the file's napari_deconvnet record)",
            UserWarning,
            stacklevel=2,
        )
    record = json.dumps(record)
    if fmt == "onnx":
        try:
            import onnx  # noqa: F401
        except ImportError:
            raise missing_dependency("onnx", "ONNX export") from None
        with atomic_path(target) as tmp:
            write_onnx(net, tmp, metadata={"napari_deconvnet": record}, opset=opset)
    else:
        with atomic_path(target) as tmp:
            write_torchscript(net, tmp, extra={_EXTRA_FILE: record})
    return target
