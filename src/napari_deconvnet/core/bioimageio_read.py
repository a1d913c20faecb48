"""Reading bioimage.io model packages: ours, and zoo PyTorch models of our architecture.

A package is a ``.zip`` with an ``rdf.yaml`` (or ``bioimageio.yaml``) at its
root, or such a file unpacked in a folder. :func:`load_bioimageio` accepts
one whose ``pytorch_state_dict`` weights declare the DeconvNet architecture
(the ``DeconvNetZoo`` class that :func:`~napari_deconvnet.export_bioimageio`
writes, or ``DeconvNet`` imported from ``napari_deconvnet``). It never runs
code from the package (the network is built from this library's own class
and the declared kwargs, and the weights are read with ``weights_only``), and
never downloads: every file must be inside the package.

Before returning the model, the package's test input is run through the
declared pre-processing, the network and the post-processing, and the
result must reproduce the package's test output (within 1e-4 of its range).

The pre- and post-processing operations of the bioimage.io model
specification that a DeconvNet package can use are implemented here too
(:func:`apply_processing`), so that the exporter makes its test output with
the same code that checks it.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .export import GridPadded
from .model import DeconvNet, DeconvNetConfig

__all__ = [
    "ARCHITECTURE_CALLABLE",
    "apply_processing",
    "bioimageio_info",
    "is_bioimageio_path",
    "load_bioimageio",
]

#: The class name of the architecture in the packages we write.
ARCHITECTURE_CALLABLE = "DeconvNetZoo"
_KNOWN_CALLABLES = (ARCHITECTURE_CALLABLE, "DeconvNet")
_RDF_NAMES = ("rdf.yaml", "bioimageio.yaml")
#: Test outputs must reproduce within this fraction of their range.
REPRODUCE_TOLERANCE = 1e-4


def is_bioimageio_path(path: Any) -> bool:
    """Whether `path` names a bioimage.io package by its name (``.zip`` or ``rdf.yaml``)."""
    if not isinstance(path, str | os.PathLike):
        return False
    name = Path(path).name.lower()
    return name.endswith(".zip") or name in _RDF_NAMES or name.endswith(".bioimageio.yaml")


# ------------------------------------------------------------ package files


class _Package:
    """The files of a package, from a zip or from the folder of an rdf.yaml."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._zip: zipfile.ZipFile | None = None
        if not self.path.exists():
            raise ValueError(f"bioimage.io package {str(self.path)!r} does not exist")
        if self.path.is_dir():
            rdf = next((self.path / n for n in _RDF_NAMES if (self.path / n).is_file()), None)
            if rdf is None:
                raise ValueError(f"{self.path} has no rdf.yaml or bioimageio.yaml")
            self.path = rdf
        if self.path.suffix.lower() == ".zip":
            try:
                self._zip = zipfile.ZipFile(self.path)
                names = self._zip.namelist()
            except (zipfile.BadZipFile, OSError, EOFError) as err:
                raise ValueError(
                    f"{self.path} is not a readable zip archive ({err}); it may be truncated "
                    "or corrupt - export the package again"
                ) from err
            found = [n for n in names if n in _RDF_NAMES or n.endswith(".bioimageio.yaml")]
            if not found:
                raise ValueError(
                    f"{self.path} is a zip archive without an rdf.yaml or bioimageio.yaml at "
                    "its root, not a bioimage.io package"
                )
            self.rdf_name = found[0]
            self.root = None
        else:
            self.rdf_name = self.path.name
            self.root = self.path.parent
        self.rdf = self._parse_rdf()

    def _parse_rdf(self) -> dict[str, Any]:
        import yaml

        try:
            doc = yaml.safe_load(self.read(self.rdf_name))
        except yaml.YAMLError as err:
            raise ValueError(f"{self.path}: {self.rdf_name} is not valid YAML: {err}") from err
        if not isinstance(doc, dict):
            raise ValueError(f"{self.path}: {self.rdf_name} is not a YAML mapping")
        if doc.get("type") != "model":
            what = (
                f"describes a bioimage.io {doc['type']!r}, not a model"
                if isinstance(doc.get("type"), str)
                else f"has no 'type: model' in its {self.rdf_name}: it is no bioimage.io model"
            )
            raise ValueError(f"{self.path} {what}; only model packages can be loaded")
        return doc

    def read(self, name: Any) -> bytes:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.path}: a file reference {name!r} is not a file name")
        if "://" in name or name.startswith(("http:", "https:", "doi:")):
            raise ValueError(
                f"{self.path} refers to the remote file {name!r}; napari-deconvnet never "
                "downloads: use a package whose files are all inside it"
            )
        name = name.removeprefix("./")
        try:
            if self._zip is not None:
                return self._zip.read(name)
            target = (self.root / name).resolve()
            if self.root.resolve() not in target.parents:
                raise ValueError(f"{self.path}: {name!r} points outside the package folder")
            return target.read_bytes()
        except KeyError:
            raise ValueError(f"{self.path}: the package lacks the file {name!r}") from None
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            raise ValueError(f"{self.path}: could not read {name!r} ({err}); corrupt?") from err

    def array(self, name: Any) -> np.ndarray:
        data = self.read(name)
        try:
            return np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise ValueError(f"{self.path}: {name!r} is not a readable .npy file") from err


def _source(entry: Any) -> Any:
    if isinstance(entry, dict):
        return entry.get("source")
    return entry


# ------------------------------------------------------------ processing


def _axis_ids(descr: dict[str, Any]) -> list[str]:
    axes = descr.get("axes")
    if isinstance(axes, str):  # format 0.4: "bcyx"
        return [{"b": "batch", "c": "channel"}.get(a, a) for a in axes]
    out = []
    for axis in axes or []:
        kind = axis.get("type")
        out.append(axis.get("id", "batch" if kind == "batch" else "channel" if kind else ""))
    return out


def _reduce_axes(kwargs: dict[str, Any], ids: Sequence[str], ndim: int) -> tuple[int, ...]:
    names = kwargs.get("axes")
    if names is None:
        return tuple(range(ndim))
    if isinstance(names, str):
        names = [{"b": "batch", "c": "channel"}.get(a, a) for a in names]
    return tuple(ids.index(n) for n in names if n in ids)


def apply_processing(
    steps: Sequence[dict[str, Any]] | None,
    x: np.ndarray,
    ids: Sequence[str],
    references: dict[str, np.ndarray],
) -> np.ndarray:
    """Apply bioimage.io pre- or post-processing `steps` to the array `x`.

    Parameters
    ----------
    steps : list of dict
        ``{"id": name, "kwargs": {...}}`` entries (format 0.5; 0.4's
        ``"name"`` is read too).
    x : ndarray
        The tensor, with axes `ids`.
    references : dict
        Unprocessed input tensors by id, for ``reference_tensor``.

    Raises
    ------
    ValueError
        An operation this reader does not implement.
    """
    x = np.asarray(x, np.float32)
    for step in steps or []:
        op = step.get("id", step.get("name"))
        kw = step.get("kwargs") or {}
        if op == "ensure_dtype":
            x = x.astype(np.dtype(kw.get("dtype", "float32")))
        elif op == "scale_range":
            ref = (
                references.get(kw.get("reference_tensor"), x) if kw.get("reference_tensor") else x
            )
            axes = _reduce_axes(kw, ids, x.ndim)
            src = np.asarray(ref, np.float64)
            lo = np.percentile(src, kw.get("min_percentile", 0.0), axis=axes, keepdims=True)
            hi = np.percentile(src, kw.get("max_percentile", 100.0), axis=axes, keepdims=True)
            x = ((x - lo) / (hi - lo + kw.get("eps", 1e-6))).astype(np.float32)
        elif op == "scale_linear":
            gain, offset = kw.get("gain", 1.0), kw.get("offset", 0.0)
            if kw.get("axis") is not None:
                shape = [1] * x.ndim
                shape[list(ids).index(kw["axis"])] = -1
                gain = np.reshape(gain, shape) if np.ndim(gain) else gain
                offset = np.reshape(offset, shape) if np.ndim(offset) else offset
            x = (x * np.float32(1) * gain + offset).astype(np.float32)
        elif op == "fixed_zero_mean_unit_variance":
            mean, std = kw.get("mean", 0.0), kw.get("std", 1.0)
            if kw.get("axis") is not None:
                shape = [1] * x.ndim
                shape[list(ids).index(kw["axis"])] = -1
                mean, std = np.reshape(mean, shape), np.reshape(std, shape)
            x = ((x - mean) / (np.asarray(std) + kw.get("eps", 1e-6))).astype(np.float32)
        else:
            raise ValueError(
                f"the package uses the processing step {op!r}, which napari-deconvnet does not "
                "implement (supported: ensure_dtype, scale_range, scale_linear, "
                "fixed_zero_mean_unit_variance)"
            )
    return x


def run_package(
    net: DeconvNet,
    rdf: dict[str, Any],
    inputs: dict[str, np.ndarray],
) -> np.ndarray:
    """Pre-process `inputs`, run `net` as restore does (:class:`GridPadded`), post-process."""
    processed = []
    for descr in rdf["inputs"]:
        tid = descr.get("id", descr.get("name"))
        x = apply_processing(descr.get("preprocessing"), inputs[tid], _axis_ids(descr), inputs)
        processed.append(x)
    with torch.inference_mode():
        y = GridPadded(net)(*(torch.from_numpy(x) for x in processed)).numpy()
    out = rdf["outputs"][0]
    return apply_processing(out.get("postprocessing"), y, _axis_ids(out), inputs)


# ------------------------------------------------------------ architecture


def _architecture(pkg: _Package) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pytorch_state_dict weights entry and the DeconvNet kwargs, or a clear refusal."""
    weights = pkg.rdf.get("weights") or {}
    entry = weights.get("pytorch_state_dict")
    if not isinstance(entry, dict):
        formats = ", ".join(sorted(weights)) or "none"
        raise ValueError(
            f"{pkg.path} has no pytorch_state_dict weights (it has: {formats}); "
            "napari-deconvnet loads only PyTorch state-dict weights of its DeconvNet"
        )
    arch = entry.get("architecture")
    kwargs = entry.get("kwargs")  # format 0.4
    if isinstance(arch, str):  # format 0.4: "file.py:Class" or "module.Class"
        sep = ":" if ":" in arch else "."
        where, _, callable_name = arch.rpartition(sep)
        library = sep == "."
    elif isinstance(arch, dict):
        callable_name = arch.get("callable", "")
        where = arch.get("import_from") or arch.get("source") or ""
        library = "import_from" in arch
        kwargs = arch.get("kwargs")
    else:
        raise ValueError(f"{pkg.path}: the pytorch_state_dict weights declare no architecture")
    ours = callable_name in _KNOWN_CALLABLES and (
        not library or str(where).split(".")[0] == "napari_deconvnet"
    )
    if not ours:
        raise ValueError(
            f"{pkg.path} uses the architecture {callable_name!r} from {where!r}, which is not "
            "napari-deconvnet's DeconvNet; only packages exported by napari-deconvnet (or zoo "
            f"models of its architecture, {ARCHITECTURE_CALLABLE!r}) can be loaded"
        )
    if not isinstance(kwargs, dict):
        raise ValueError(f"{pkg.path}: the DeconvNet architecture has no kwargs (its config)")
    return entry, dict(kwargs)


def _normalization_from(rdf: dict[str, Any]) -> dict[str, Any]:
    """The DeconvNet normalisation equivalent to the first input's pre-processing."""
    steps = [
        s for s in rdf["inputs"][0].get("preprocessing") or [] if s.get("id") != "ensure_dtype"
    ]
    if not steps:
        return {"method": "none"}
    step = steps[0]
    op, kw = step.get("id", step.get("name")), step.get("kwargs") or {}
    if not isinstance(kw, dict):
        raise ValueError(
            f"the package's pre-processing step {op!r} has kwargs that are not a mapping"
        )

    def number(key: str, default: float | None, *, nonzero: bool = False) -> float:
        # a finite number (non-zero where the step divides by it), or a clear refusal
        value = kw.get(key, default)
        try:
            out = float(value) if not isinstance(value, bool | str) else math.nan
        except (TypeError, ValueError):
            out = math.nan
        if not math.isfinite(out) or (nonzero and out == 0):
            needs = "a finite, non-zero number" if nonzero else "a finite number"
            raise ValueError(
                f"the package's pre-processing {op!r} has {key}={value!r}; it must be {needs}"
            )
        return out

    if len(steps) == 1 and op == "scale_range":
        return {
            "method": "percentile",
            "low": number("min_percentile", 0.0),
            "high": number("max_percentile", 100.0),
        }
    if len(steps) == 1 and op == "scale_linear" and np.ndim(kw.get("gain", 1.0)) == 0:
        gain = number("gain", 1.0, nonzero=True)
        return {
            "method": "fixed",
            "offset": -number("offset", 0.0) / gain,
            "scale": 1 / gain,
        }
    if len(steps) == 1 and op == "fixed_zero_mean_unit_variance" and np.ndim(kw.get("mean")) == 0:
        return {
            "method": "fixed",
            "offset": number("mean", None),
            "scale": number("std", None, nonzero=True),
        }
    raise ValueError(
        f"the package's pre-processing {[s.get('id', s.get('name')) for s in steps]} has no "
        "napari-deconvnet equivalent (supported: one scale_range, scale_linear or "
        "fixed_zero_mean_unit_variance step)"
    )


# ---------------------------------------------------------------- loading


def _same(a: Any, b: Any) -> bool:
    """Equal values, numbers within float32 rounding (a package's YAML holds decimals)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-12)
    return a == b


def _check_agrees(pkg: _Package, config: dict[str, Any], kwargs: dict[str, Any]) -> None:
    """Refuse a package whose napari-deconvnet record differs from what it declares.

    Other readers run the architecture's kwargs and the inputs' pre-processing;
    napari-deconvnet read its own record only, so an edited package restored
    otherwise than it declares (percentiles 5/95 against a declared 0.5/99.5:
    2.1 grey levels of 2000 off), and its test still passed.
    """
    differ = sorted(k for k in kwargs if k in config and not _same(kwargs[k], config[k]))
    declared = _normalization_from(pkg.rdf) if pkg.rdf.get("inputs") else None
    if declared is not None and not _same_normalization(declared, config.get("normalization")):
        differ.append("normalization (the inputs' pre-processing)")
    if differ:
        raise ValueError(
            f"{pkg.path}: its config.napari_deconvnet record disagrees with what the package "
            f"declares ({', '.join(differ)}); the package was edited by hand or is damaged; "
            "export it again from the model file"
        )


def _check_postprocessing(pkg: _Package, normalization: Any) -> None:
    """Refuse a package whose output post-processing is not the one restore applies.

    ``restore`` maps the network's output back with the input's normalisation: a
    fixed one by its inverse (the ``scale_linear`` our packages declare), percentiles
    by the image's own range (which no post-processing step says; ours declare none).
    A post step beyond that was dropped without a word (a declared gain of 2 gave the
    plain model's output) and one missing left a fixed package's output 100x off what
    it declares, while its test passed (it runs the declared steps).
    """
    outputs = pkg.rdf.get("outputs") or [{}]
    steps = [
        s
        for s in (outputs[0].get("postprocessing") or [])
        if isinstance(s, dict) and s.get("id", s.get("name")) != "ensure_dtype"
    ]
    method = normalization.get("method") if isinstance(normalization, dict) else None
    expected: list[dict[str, Any]] = []
    if method == "fixed":
        scale = float(normalization.get("scale", 1.0))
        offset = float(normalization.get("offset", 0.0))
        expected = [{"gain": scale, "offset": offset}]
    found = [
        {"gain": (s.get("kwargs") or {}).get("gain", 1.0),
         "offset": (s.get("kwargs") or {}).get("offset", 0.0)}
        if s.get("id", s.get("name")) == "scale_linear"
        and isinstance(s.get("kwargs") or {}, dict)
        and (s.get("kwargs") or {}).get("axis") is None
        else {"step": s.get("id", s.get("name"))}
        for s in steps
    ]  # fmt: skip
    if len(found) == len(expected) and all(
        _same(a, b) for a, b in zip(found, expected, strict=True)
    ):
        return
    names = [s.get("id", s.get("name")) for s in steps] or "none"
    wanted = (
        f"one scale_linear with gain {expected[0]['gain']:g} and offset "
        f"{expected[0]['offset']:g}, the inverse of its pre-processing"
        if expected
        else "none (restore maps the output back to the image's own range)"
    )
    raise ValueError(
        f"{pkg.path}: the output's post-processing ({names}) is not what napari-deconvnet's "
        f"restore applies for this normalisation ({method}): {wanted}; such a package "
        "would restore otherwise here than it declares"
    )


def _same_normalization(declared: dict[str, Any], ours: Any) -> bool:
    """Whether our record's normalisation is the declared pre-processing's."""
    if not isinstance(ours, dict) or declared.get("method") != ours.get("method"):
        return False
    keys = [k for k in ("low", "high", "offset", "scale") if k in declared]
    return all(k in ours and _same(declared[k], ours[k]) for k in keys)


def bioimageio_info(path: str | os.PathLike) -> dict[str, Any]:
    """A package's configuration and metadata, like :func:`~napari_deconvnet.model_info`.

    Reads the ``rdf.yaml`` only (no weights, no test run).

    Raises
    ------
    ValueError
        Corrupt zips, non-model packages and foreign architectures.
    """
    try:
        return _info(_Package(path))
    except ValueError:
        raise
    except Exception as err:  # a damaged rdf.yaml past the checks: one error, as load's
        raise ValueError(
            f"{path} is not a readable bioimage.io package ({type(err).__name__}: {err})"
        ) from err


def _info(pkg: _Package) -> dict[str, Any]:
    rdf = pkg.rdf
    _, kwargs = _architecture(pkg)
    ours = (rdf.get("config") or {}).get("napari_deconvnet") or {}
    config = dict(ours.get("config") or kwargs)
    if not ours:
        config["normalization"] = _normalization_from(rdf)
    else:  # our own record must say what the package declares to every other reader
        _check_agrees(pkg, config, kwargs)
    if rdf.get("outputs"):
        _check_postprocessing(pkg, config.get("normalization"))
    metadata = dict(ours.get("metadata") or {})
    metadata.setdefault("name", rdf.get("name", pkg.path.stem))
    metadata.setdefault("description", rdf.get("description", ""))
    metadata["bioimageio"] = {
        "name": rdf.get("name"),
        "format_version": rdf.get("format_version"),
        "license": rdf.get("license"),
        "authors": [a.get("name") for a in rdf.get("authors") or [] if isinstance(a, dict)],
    }
    return {
        "format": "bioimageio",
        "format_version": f"bioimage.io model {rdf.get('format_version')}",
        "config": config,
        "metadata": metadata,
    }


def load_bioimageio(path: str | os.PathLike, *, check: bool = True) -> DeconvNet:
    """Load a bioimage.io package of a DeconvNet (``.zip``, ``rdf.yaml`` or its folder).

    Parameters
    ----------
    path : str or path
        A local file; nothing is downloaded.
    check : bool, optional
        Rerun the package's test input and require its test output
        (within 1e-4 of the output's range).

    Returns
    -------
    DeconvNet
        On the CPU, in eval mode; ``metadata["path"]`` is `path`.

    Raises
    ------
    ValueError
        A corrupt zip, a package that is not a model, a foreign architecture,
        weights other than a PyTorch state dict, remote files, weights that do
        not fit the architecture, and a test output that does not reproduce.
    """
    try:
        return _load(path, check)
    except ValueError:
        raise
    except Exception as err:
        # whatever else a damaged package provokes past the checks: one error type
        raise ValueError(
            f"{path} is not a readable bioimage.io package ({type(err).__name__}: {err})"
        ) from err


def _load(path: str | os.PathLike, check: bool) -> DeconvNet:
    pkg = _Package(path)
    info = _info(pkg)
    entry, _ = _architecture(pkg)
    try:
        config = DeconvNetConfig.from_dict(info["config"], stored=True)
    except (TypeError, ValueError, AttributeError) as err:
        raise ValueError(
            f"{pkg.path}: the DeconvNet kwargs are not a valid config: {err}"
        ) from err
    data = pkg.read(_source(entry))
    declared = entry.get("sha256")
    if isinstance(declared, str) and hashlib.sha256(data).hexdigest() != declared.lower():
        raise ValueError(
            f"{pkg.path}: the weights {_source(entry)!r} do not match the sha256 the package "
            "declares for them (changed or damaged since it was exported)"
        )
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for damaged or pickled-code files
        raise ValueError(
            f"{pkg.path}: the weights {_source(entry)!r} are not a readable PyTorch state "
            f"dict ({err})"
        ) from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{pkg.path}: the weights are not a state dict of tensors")
    # the kwargs must fit the weights before anything real is built: each level
    # holds convs_per_level weighted convolutions, and the shapes are checked on
    # the meta device, so that absurd kwargs cannot ask for time or memory
    fits = config.depth * config.convs_per_level <= len(state)
    if fits:
        with torch.device("meta"):
            expected = {k: v.shape for k, v in DeconvNet(config).state_dict().items()}
        fits = set(state) == set(expected) and all(state[k].shape == expected[k] for k in expected)
    if not fits:
        raise ValueError(
            f"{pkg.path}: the weights do not fit the declared DeconvNet kwargs (tensor names "
            "or shapes differ)"
        )
    with torch.random.fork_rng(devices=[]):  # (weights overwritten below)
        net = DeconvNet(config)
    net.load_state_dict(state)
    net.eval()
    net.metadata = info["metadata"]
    net.metadata["path"] = str(path)
    if check:
        _check_reproduces(pkg, net)
    return net


def _check_reproduces(pkg: _Package, net: DeconvNet) -> None:
    rdf = pkg.rdf
    if not rdf.get("inputs") or not rdf.get("outputs"):
        raise ValueError(f"{pkg.path}: the package declares no inputs or outputs")
    inputs = {}
    for descr in rdf["inputs"]:
        tid = descr.get("id", descr.get("name"))
        inputs[tid] = pkg.array(_source(descr.get("test_tensor")))
    out = rdf["outputs"][0]
    expected = pkg.array(_source(out.get("test_tensor")))
    try:
        got = run_package(net, rdf, inputs)
    except (RuntimeError, ValueError, KeyError, IndexError) as err:
        raise ValueError(f"{pkg.path}: the test input could not be run: {err}") from err
    if got.shape != expected.shape:
        raise ValueError(
            f"{pkg.path}: the test output has shape {expected.shape} but the model gives "
            f"{got.shape}"
        )
    span = float(np.ptp(expected)) or 1.0
    error = float(np.max(np.abs(got - expected)))
    if not error <= REPRODUCE_TOLERANCE * span:
        raise ValueError(
            f"{pkg.path}: the package's test output does not reproduce: the weights give a "
            f"maximum difference of {error:.3g} (allowed {REPRODUCE_TOLERANCE * span:.3g}, "
            "1e-4 of the output's range); the weights, architecture or processing do not match"
        )
