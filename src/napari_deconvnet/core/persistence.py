"""Model files: safetensors weights with the configuration and metadata as JSON.

A model file is a single ``.safetensors`` file. Its header's ``__metadata__``
holds one key, ``"napari_deconvnet"``, whose value is a JSON document::

    {"format": "napari-deconvnet", "format_version": 1,
     "config": {...DeconvNetConfig...}, "metadata": {...name, description, training...},
     "library": {"napari_deconvnet": "0.1.0", "torch": "2.13.0"},
     "checksum": "sha256:..."}

The checksum covers the rest of the document and every tensor, so a bit flip
anywhere in the file is caught (files written before it was added load
without one). Loading parses that header and the raw tensors only: no pickle,
no code. Every damaged file raises ValueError.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import struct
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from ._validation import finite_or_null
from .atomic import fsync, new_temp_file, write_atomic  # noqa: F401 (their old home)
from .model import DeconvNet, DeconvNetConfig
from .model import receptive_field as _receptive_field

__all__ = ["load_model", "save_model", "list_models", "model_info", "FORMAT_VERSION"]

FORMAT_VERSION = 1
_FORMAT = "napari-deconvnet"
#: The top-level entries of a model document (anything else is damage).
_DOCUMENT_KEYS = frozenset(
    {"format", "format_version", "config", "metadata", "library", "checksum"}
)
_KEY = "napari_deconvnet"
_ALIASES = {"default": "denoise-2d"}
_HEADER_LIMIT = 100 * 1024 * 1024
#: Tensor dtypes a model file may hold, with their sizes in bytes.
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}


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


def _describe_foreign(head: bytes, suffix: str = "") -> str | None:
    if suffix == ".onnx":  # a protobuf has no magic bytes: its name says it
        return "an ONNX graph (an export, which napari-deconvnet writes but does not read)"
    if head[:2] == b"PK":
        return "a zip archive (a torch.save checkpoint or a TorchScript export?)"
    if head[:1] == b"\x80":
        return "a Python pickle (a torch .pt/.pth checkpoint?)"
    if head[:4] == b"\x89HDF":
        return "an HDF5 file (a Keras/TensorFlow model?)"
    if head[:8] == b"\x89PNG\r\n\x1a\n" or head[:2] in (b"II", b"MM"):
        return "an image file"
    return None


def _read_header(path: Path) -> dict[str, Any]:
    """Parse and check the safetensors header of `path` without reading the weights.

    Every way a file can be damaged (truncated, padded, bit flips, edited
    header, another format) raises ValueError; nothing is unpickled.
    """
    doc, _ = _read_header_and_shapes(path)
    return doc


def _read_header_and_shapes(path: Path) -> tuple[dict[str, Any], dict[str, tuple[int, ...]]]:
    """The napari-deconvnet document and the shape of every tensor in `path`."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(9)
        # a safetensors file starts with its header length (8 bytes, little
        # endian) and then the JSON header: only without that look for other
        # formats' magic bytes, which a header length can happen to match
        plausible = _safetensors_head(head) and 0 < struct.unpack("<Q", head[:8])[0] <= size - 8
        foreign = None if plausible else _describe_foreign(head, path.suffix.lower())
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
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ValueError(f"{path} has a corrupt safetensors header: {err}") from err
    if not isinstance(header, dict):
        raise ValueError(f"{path} has a corrupt safetensors header (not a JSON object)")
    end = _check_tensor_entries(path, header)
    if 8 + n + end != size:
        raise ValueError(
            f"{path} is truncated or padded: the header promises {8 + n + end} bytes but the "
            f"file has {size}"
        )
    meta = header.get("__metadata__")
    if meta is None:
        meta = {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ValueError(f"{path} has a corrupt safetensors header (__metadata__ is not text)")
    if _KEY not in meta:
        raise ValueError(
            f"{path} is a safetensors file from another tool (no {_KEY!r} metadata); only "
            "models saved by napari_deconvnet.save_model can be loaded"
        )
    try:
        doc = json.loads(meta[_KEY])
    except (json.JSONDecodeError, RecursionError) as err:
        raise ValueError(f"{path} has corrupt napari-deconvnet metadata: {err}") from err
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        raise ValueError(f"{path} is not a napari-deconvnet model file")
    version = doc.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"{path} has an invalid model format version {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} has model format version {version!r}, newer than this napari-deconvnet "
            f"reads (up to {FORMAT_VERSION}); upgrade napari-deconvnet to load it"
        )
    unknown = sorted(set(doc) - _DOCUMENT_KEYS)
    if unknown:  # e.g. a damaged "checksum" key, which would otherwise go unchecked
        raise ValueError(
            f"{path} has corrupt napari-deconvnet metadata: unknown entries {unknown}; "
            f"a model document holds only {sorted(_DOCUMENT_KEYS)}"
        )
    for key, kind in (("config", dict), ("metadata", dict), ("library", dict), ("checksum", str)):
        if doc.get(key) is not None and not isinstance(doc[key], kind):
            raise ValueError(f"{path} has corrupt napari-deconvnet metadata ({key!r})")
    if not isinstance(doc.get("config"), dict):
        raise ValueError(f"{path} has no model configuration")
    for key in ("name", "description"):  # shown by the widgets, the CLI and model_info
        value = (doc.get("metadata") or {}).get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(
                f"{path} has corrupt napari-deconvnet metadata: its {key} must be text, "
                f"got {type(value).__name__} {value!r:.60}"
            )
    for key in OBJECT_ENTRIES:  # read entry by entry by restore, training and the kinds
        value = (doc.get("metadata") or {}).get(key)
        if value is not None and not isinstance(value, dict):
            raise ValueError(
                f"{path} has corrupt napari-deconvnet metadata: its {key} must be a JSON "
                f"object (a dict), got {type(value).__name__} {value!r:.60}"
            )
    shapes = {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    return doc, shapes


def _check_tensor_entries(path: Path, header: dict[str, Any]) -> int:
    """Check every tensor entry of a safetensors header; return the data length."""
    spans = []
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        ok = isinstance(entry, dict) and set(entry) == {"dtype", "shape", "data_offsets"}
        ok = ok and entry["dtype"] in _DTYPE_BYTES
        ok = ok and isinstance(entry["shape"], list) and isinstance(entry["data_offsets"], list)
        ok = ok and all(_is_count(v) for v in entry["shape"] + entry["data_offsets"])
        ok = ok and len(entry["data_offsets"]) == 2
        if not ok:
            raise ValueError(
                f"{path} has a corrupt safetensors header: tensor {key!r} is not "
                "{dtype, shape, data_offsets} with a float dtype and non-negative integers"
            )
        begin, stop = entry["data_offsets"]
        count = 1
        for v in entry["shape"]:
            count *= v
        if stop - begin != count * _DTYPE_BYTES[entry["dtype"]]:
            raise ValueError(
                f"{path} has a corrupt safetensors header: tensor {key!r} of shape "
                f"{entry['shape']} does not fill its {stop - begin} bytes"
            )
        spans.append((begin, stop))
    spans.sort()
    position = 0
    for begin, stop in spans:
        if begin != position:
            raise ValueError(
                f"{path} has a corrupt safetensors header: tensors overlap or leave gaps"
            )
        position = stop
    return position


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**62


def _package(model: Any) -> bool:
    """Whether `model` names a bioimage.io package: a ``.zip`` (unless it is a model file
    of this package renamed: "not a readable zip archive", session 70) or an rdf.yaml."""
    from .bioimageio_read import is_bioimageio_path

    if not is_bioimageio_path(model):
        return False
    path = Path(model)
    if path.suffix.lower() != ".zip" or not path.is_file() or zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as handle:
        return not _safetensors_head(handle.read(9))


def _safetensors_head(head: bytes) -> bool:
    """Whether a file's first 9 bytes can start a safetensors file: its header's length
    (8 bytes, little endian), then the JSON header's ``{``."""
    return len(head) == 9 and head[8:9] == b"{"


def _resolve(model: str | os.PathLike) -> Path:
    if isinstance(model, str) and not model.strip():
        raise ValueError(
            f"model is an empty name; use a shipped name ({', '.join(list_models())}) or the "
            "path of a .safetensors model file"
        )
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
    from .bioimageio_read import bioimageio_info

    if _package(model):  # a bioimage.io package (.zip, rdf.yaml)
        return bioimageio_info(model)
    path = _resolve(model)
    try:
        return _read_header(path)
    except ValueError:
        raise
    except Exception as err:  # as load_model: a damaged file gives one error type
        raise ValueError(
            f"{path} is not a readable napari-deconvnet model file ({type(err).__name__}: {err})"
        ) from err


def receptive_field(model: Any, *, per_axis: bool = False) -> Any:
    """:func:`napari_deconvnet.core.model.receptive_field` of a model given any way.

    `model`: a ``DeconvNetConfig``, a ``DeconvNet``, or what :func:`load_model`
    takes (a shipped name such as ``"denoise-2d"``, a ``.safetensors`` file).
    ``dn.receptive_field("denoise-2d")`` is ``(47, 23)``: the width of input one
    output pixel can see, and how far it reaches on each side.
    """
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)
    return _receptive_field(model, per_axis=per_axis)


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
        Unknown name, missing file, pickle/.pt files, truncated, padded or
        corrupt files (header edits, bit flips: files written by
        :func:`save_model` carry a SHA-256 of weights and metadata), safetensors
        files from other tools, newer format versions, tensors whose shapes
        do not match the configuration and non-finite weights.
    TypeError
        `model` is not a name, a path or a DeconvNet.
    """
    if isinstance(model, DeconvNet):
        return model
    if not isinstance(model, str | os.PathLike):
        raise TypeError(f"model must be a name, a path or a DeconvNet, got {type(model).__name__}")
    from .bioimageio_read import load_bioimageio

    if _package(model):  # a bioimage.io package (.zip, rdf.yaml)
        return load_bioimageio(model)
    path = _resolve(model)
    try:
        if path.parent == _weights_dir():  # a shipped file (no second folder listing)
            return _load_shipped(path)
        return _load(path)
    except ValueError:
        raise
    except Exception as err:
        # whatever else a damaged file provokes past the checks: one error type
        raise ValueError(
            f"{path} is not a readable napari-deconvnet model file ({type(err).__name__}: {err})"
        ) from err


# shipped models read and checked once per process: (path, size, mtime) -> network
_SHIPPED_CACHE: dict[tuple[Path, int, int], DeconvNet] = {}


def _load_shipped(path: Path) -> DeconvNet:
    """A shipped model: a copy of the one read and checked before, while its file is unchanged.

    Restoring a small image is dominated by reading, checking (SHA-256) and
    building the model otherwise (13 ms of a 90 ms restore of 256² on one
    core). Only the package's own files are kept: a user's model file may be
    rewritten within the file system's timestamp resolution. Every call
    returns its own deep copy, so callers may move, train or change it.
    """
    stat = path.stat()
    key = (path, stat.st_size, stat.st_mtime_ns)
    net = _SHIPPED_CACHE.get(key)
    if net is None:
        net = _load(path)
        for old in [k for k in _SHIPPED_CACHE if k[0] == path]:
            del _SHIPPED_CACHE[old]
        _SHIPPED_CACHE[key] = net
    return copy.deepcopy(net)


def _load(path: Path) -> DeconvNet:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    doc, shapes = _read_header_and_shapes(path)
    try:
        config = DeconvNetConfig.from_dict(doc["config"], stored=True)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ValueError(f"{path} has an invalid model configuration: {err}") from err
    # every level has convs_per_level convolutions, each with a weight: a
    # configuration that needs more tensors than the file holds is refused
    # before anything is built (an edited depth of 10**6 would take minutes)
    if config.depth * config.convs_per_level > len(shapes):
        raise ValueError(
            f"{path} does not match its configuration: depth {config.depth} with "
            f"{config.convs_per_level} convolutions per level needs more than the "
            f"{len(shapes)} tensors in the file"
        )
    # the shapes the configuration needs, on the meta device: no memory is
    # allocated, so an edited configuration cannot ask for terabytes
    # (the same network then takes the file's tensors: building it for real
    # would draw random weights only to overwrite them)
    with torch.device("meta"):
        net = DeconvNet(config)
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    missing = sorted(set(expected) - set(shapes))
    extra = sorted(set(shapes) - set(expected))
    if missing or extra:
        raise ValueError(
            f"{path} does not match its configuration: missing tensors {missing[:5]}, "
            f"unexpected tensors {extra[:5]}"
        )
    for key, shape in shapes.items():
        if shape != expected[key]:
            raise ValueError(
                f"{path}: tensor {key!r} has shape {shape} but the configuration "
                f"needs {expected[key]}"
            )
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, RuntimeError) as err:
        raise ValueError(f"{path} could not be read as safetensors: {err}") from err
    checksum = doc.get("checksum")
    if checksum is not None and checksum != _checksum(state, doc):
        raise ValueError(
            f"{path} is corrupt: its weights or metadata do not match the SHA-256 recorded "
            "when it was saved; save or download the model again"
        )
    for key, tensor in state.items():
        if not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{path} is corrupt: tensor {key!r} holds NaN or infinite values")
    net.load_state_dict(state, assign=True)
    net.metadata = dict(doc.get("metadata") or {})
    net.metadata.setdefault("name", path.name.removesuffix(".safetensors"))
    net.metadata["path"] = str(path)
    return net.eval()


def _checksum(state: dict[str, torch.Tensor], doc: dict[str, Any]) -> str:
    """``"sha256:<hex>"`` over the document (less its checksum) and every tensor.

    The document counts as canonical JSON (sorted keys, no spaces); each
    tensor, in name order, as its name, dtype, shape and bytes.
    """
    digest = hashlib.sha256()
    rest = {k: v for k, v in doc.items() if k != "checksum"}
    digest.update(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode())
    for key in sorted(state):
        tensor = state[key].detach().to("cpu").contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return "sha256:" + digest.hexdigest()


#: Metadata entries that are JSON objects, read key by key (a string there was
#: saved and loaded, then every restore failed in "'str' object has no attribute 'get'").
OBJECT_ENTRIES = ("conditioning", "training")


def save_model(model: DeconvNet, path: str | os.PathLike) -> Path:
    """Write `model` to a ``.safetensors`` file, atomically.

    Parameters
    ----------
    model : DeconvNet
        The network; its ``.config`` and JSON-serialisable ``.metadata`` are
        stored with the weights, and a SHA-256 of both that
        :func:`load_model` checks.
    path : str or path
        Must end in ``.safetensors``. A missing parent folder is created
        (with its parents, like ``mkdir -p``); an existing file is replaced.

    Returns
    -------
    Path
        `path`.

    Raises
    ------
    TypeError
        `model` is not a DeconvNet.
    ValueError
        `path` does not end in ``.safetensors`` or is a folder, the metadata
        is not JSON-serialisable or its name or description is not text, or
        a weight is NaN or infinite (:func:`load_model` refuses all of them).

    Notes
    -----
    The weights go to a temporary file in the target folder, which is
    flushed to disk and then renamed over `path`: an interrupted save never
    leaves a broken file where a good one was. The file gets the mode of any
    new file (the process umask applies).
    """
    if not isinstance(model, DeconvNet):
        raise TypeError(f"save_model needs a DeconvNet, got {type(model).__name__}")
    from safetensors.torch import save as serialize

    from .._version import __version__

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"model files end in .safetensors, got {path.name!r}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give the path of a .safetensors file to write")
    meta = {k: v for k, v in model.metadata.items() if k != "path"}
    # what load_model refuses is not written (a file that cannot be loaded again)
    for key in ("name", "description"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            raise ValueError(
                f"model.metadata[{key!r}] must be text, got {type(meta[key]).__name__} "
                f"{meta[key]!r:.60}"
            )
    for key in OBJECT_ENTRIES:
        if meta.get(key) is not None and not isinstance(meta[key], dict):
            raise ValueError(
                f"model.metadata[{key!r}] must be a dict (its entries are read by restore "
                f"and training, e.g. {{'method': 'richardson-lucy'}}), got "
                f"{type(meta[key]).__name__} {meta[key]!r:.60}"
            )
    for key, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(
                f"the model's {key!r} holds NaN or infinite values (a diverged training?); "
                "such weights restore nothing and are not saved"
            )
    doc = {
        "format": _FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(compact=True),
        # standard JSON: a NaN or infinity (a diverged score in a record) is written as
        # null (it went in as a bare NaN, which strict JSON readers refuse)
        "metadata": finite_or_null(meta),
        "library": {"napari_deconvnet": __version__, "torch": torch.__version__},
    }
    try:
        text = json.dumps(doc, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"model.metadata must be JSON-serialisable: {err}") from err
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    doc["checksum"] = _checksum(state, json.loads(text))
    text = json.dumps(doc)
    # serialised here and written into our own file: save_file would
    # recreate it owner-only (0o600), and fixing that needs the umask
    write_atomic(path, serialize(state, metadata={_KEY: text}))
    return path
