"""Model files: safetensors weights with the configuration and metadata as JSON.

A model file is a single ``.safetensors`` file. Its header's ``__metadata__``
holds one key, ``"napari_deconvnet"``, whose value is a JSON document::

    {"format": "napari-deconvnet", "format_version": 1,
     "config": {...DeconvNetConfig...}, "metadata": {...name, description, training...},
     "library": {"napari_deconvnet": "0.1.0", "torch": "2.13.0"}}

Loading parses that header and the raw tensors only: no pickle, no code.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from .model import DeconvNet, DeconvNetConfig

__all__ = ["load_model", "save_model", "list_models", "model_info", "FORMAT_VERSION"]

FORMAT_VERSION = 1
_FORMAT = "napari-deconvnet"
_KEY = "napari_deconvnet"
_ALIASES = {"default": "denoise-2d"}
_HEADER_LIMIT = 100 * 1024 * 1024


def _weights_dir() -> Path:
    return Path(str(resources.files("napari_deconvnet") / "weights"))


def _shipped() -> dict[str, Path]:
    folder = _weights_dir()
    return {p.name.removesuffix(".safetensors"): p for p in sorted(folder.glob("*.safetensors"))}


def list_models() -> dict[str, str]:
    """Shipped models and a one-line description of each.

    Returns
    -------
    dict
        ``{name: description}``; ``"default"`` is an alias of ``"denoise-2d"``.
    """
    out = {}
    for name, path in _shipped().items():
        out[name] = model_info(path)["metadata"].get("description", "")
    for alias, target in _ALIASES.items():
        if target in out:
            out = {alias: f"alias of {target!r}: {out[target]}", **out}
    return out


def _describe_foreign(head: bytes) -> str | None:
    if head[:2] == b"PK":
        return "a zip archive (a torch.save/.pt checkpoint?)"
    if head[:1] == b"\x80":
        return "a Python pickle (a torch .pt/.pth checkpoint?)"
    if head[:4] == b"\x89HDF":
        return "an HDF5 file (a Keras/TensorFlow model?)"
    if head[:8] == b"\x89PNG\r\n\x1a\n" or head[:2] in (b"II", b"MM"):
        return "an image file"
    return None


def _read_header(path: Path) -> dict[str, Any]:
    """Parse and check the safetensors header of `path` without reading the weights."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(9)
        # a safetensors file starts with its header length (8 bytes, little
        # endian) and then the JSON header: only without that look for other
        # formats' magic bytes, which a header length can happen to match
        plausible = len(head) == 9 and head[8:9] == b"{"
        plausible = plausible and 0 < struct.unpack("<Q", head[:8])[0] <= size - 8
        foreign = None if plausible else _describe_foreign(head)
        head = head[:8]
        fh.seek(8)
        if foreign:
            raise ValueError(
                f"{path} is {foreign}, not a napari-deconvnet model; only .safetensors model "
                "files saved by napari_deconvnet.save_model are accepted (pickle files are "
                "never loaded because they can execute code)"
            )
        if len(head) < 8:
            raise ValueError(f"{path} is too short to be a safetensors model file ({size} bytes)")
        (n,) = struct.unpack("<Q", head)
        if n == 0 or n > min(_HEADER_LIMIT, size - 8):
            raise ValueError(
                f"{path} is not a valid safetensors file (header length {n}, file size {size}); "
                "it may be truncated or not a model file"
            )
        raw = fh.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} has a corrupt safetensors header: {err}") from err
    if not isinstance(header, dict):
        raise ValueError(f"{path} has a corrupt safetensors header")
    end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end > size:
        raise ValueError(
            f"{path} is truncated: the header promises {8 + n + end} bytes but the file has {size}"
        )
    meta = header.get("__metadata__") or {}
    if _KEY not in meta:
        raise ValueError(
            f"{path} is a safetensors file from another tool (no {_KEY!r} metadata); only "
            "models saved by napari_deconvnet.save_model can be loaded"
        )
    try:
        doc = json.loads(meta[_KEY])
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} has corrupt napari-deconvnet metadata: {err}") from err
    if doc.get("format") != _FORMAT:
        raise ValueError(f"{path} is not a napari-deconvnet model file")
    version = doc.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path} has model format version {version!r}, newer than this napari-deconvnet "
            f"reads (up to {FORMAT_VERSION}); upgrade napari-deconvnet to load it"
        )
    return doc


def _resolve(model: str | os.PathLike) -> Path:
    if isinstance(model, str):
        name = _ALIASES.get(model, model)
        shipped = _shipped()
        if name in shipped:
            return shipped[name]
        if not model.endswith(".safetensors") and os.sep not in model and not Path(model).exists():
            raise ValueError(
                f"unknown model {model!r}; use a shipped name ({', '.join(list_models())}) "
                "or the path of a .safetensors model file"
            )
    path = Path(model)
    if not path.exists():
        raise ValueError(f"model file {str(path)!r} does not exist")
    if not path.is_file():
        raise ValueError(f"model path {str(path)!r} is not a file")
    return path


def model_info(model: str | os.PathLike) -> dict[str, Any]:
    """Read a model file's configuration and metadata without loading its weights."""
    return _read_header(_resolve(model))


def load_model(model: str | os.PathLike | DeconvNet = "default") -> DeconvNet:
    """Load a shipped model by name, or a model file by path, onto the CPU.

    Parameters
    ----------
    model : str, path or DeconvNet
        ``"default"``, a name from :func:`list_models`, or a ``.safetensors``
        file saved by :func:`save_model`. A loaded model is returned as is.

    Returns
    -------
    DeconvNet
        In eval mode, on the CPU, with ``.config`` and ``.metadata``.

    Raises
    ------
    ValueError
        Unknown name, missing file, pickle/.pt files, truncated or corrupt
        files, safetensors files from other tools, newer format versions and
        tensors whose shapes do not match the configuration.
    """
    if isinstance(model, DeconvNet):
        return model
    if not isinstance(model, str | os.PathLike):
        raise TypeError(f"model must be a name, a path or a DeconvNet, got {type(model).__name__}")
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = _resolve(model)
    doc = _read_header(path)
    try:
        config = DeconvNetConfig.from_dict(doc["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path} has an invalid model configuration: {err}") from err
    net = DeconvNet(config)
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, RuntimeError) as err:
        raise ValueError(f"{path} could not be read as safetensors: {err}") from err
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise ValueError(
            f"{path} does not match its configuration: missing tensors {missing[:5]}, "
            f"unexpected tensors {extra[:5]}"
        )
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise ValueError(
                f"{path}: tensor {key!r} has shape {tuple(tensor.shape)} but the configuration "
                f"needs {tuple(expected[key].shape)}"
            )
    net.load_state_dict(state)
    net.metadata = dict(doc.get("metadata") or {})
    net.metadata.setdefault("name", path.name.removesuffix(".safetensors"))
    net.metadata["path"] = str(path)
    return net.eval()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_model(model: DeconvNet, path: str | os.PathLike) -> Path:
    """Write `model` to a ``.safetensors`` file, atomically.

    The weights go to a temporary file in the target folder, which is then
    renamed over `path`: an interrupted save never leaves a broken file where
    a good one was.
    """
    if not isinstance(model, DeconvNet):
        raise TypeError(f"save_model needs a DeconvNet, got {type(model).__name__}")
    from safetensors.torch import save_file

    from .._version import __version__

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"model files end in .safetensors, got {path.name!r}")
    meta = {k: v for k, v in model.metadata.items() if k != "path"}
    doc = {
        "format": _FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "metadata": meta,
        "library": {"napari_deconvnet": __version__, "torch": torch.__version__},
    }
    try:
        text = json.dumps(doc)
    except TypeError as err:
        raise ValueError(f"model.metadata must be JSON-serialisable: {err}") from err
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(state, tmp, metadata={_KEY: text})
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes owner-only files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
