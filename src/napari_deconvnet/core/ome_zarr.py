"""The OME-Zarr target of streamed restores: levels, resume markers, pyramid, metadata.

The target is created first (level 0, then a :data:`JOB_DIR` folder holding
the job's fingerprint and one empty marker per finished block), so that a
rerun finds what a killed run left (:func:`prepare_target`). When all
blocks are written, :func:`pyramid` averages the lower levels from level 0
and :func:`multiscales` and :func:`layer_document` describe the image
(NGFF 0.4, zarr format 2, float32) for any OME-Zarr reader and for the
package's own reader.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import JOB_DIR, recover_folder, replaceable_folder
from .persistence import write_atomic

__all__ = [
    "JOB_DIR",
    "LAYER_FORMAT",
    "LAYER_KEY",
    "LAYER_VERSION",
    "layer_document",
    "multiscales",
    "ngff_axes",
    "prepare_target",
    "pyramid",
    "open_level",
    "read_multiscales",
    "target_array",
    "unfinished",
    "write_json",
]


def unfinished(folder: Any) -> bool:
    """Whether `folder` is an unfinished streamed restore's target (it holds
    :data:`JOB_DIR`): its level 0 is written in part, where no block is yet zeros."""
    return (Path(folder) / JOB_DIR).is_dir()


#: The layer document the package's reader reads: its key in a file's
#: metadata, its format name and version (io.layer_doc writes and reads it).
LAYER_KEY = "napari_deconvnet_layer"
LAYER_FORMAT = "napari-deconvnet-layer"
LAYER_VERSION = 1
_NGFF_TYPES = {"T": "time", "C": "channel", "Z": "space", "Y": "space", "X": "space"}


def ngff_axes(axes: str) -> tuple[str, list[int]]:
    """NGFF order (time, channel, space) of `axes` (``S`` becomes the channel)."""
    named = axes.replace("S", "C")
    order = "".join(a for a in "TCZYX" if a in named)
    return order, [named.index(a) for a in order]


def write_json(path: Path, doc: dict[str, Any]) -> None:
    """Write `doc` as JSON to `path` atomically (temp file, fsync, rename)."""
    write_atomic(path, json.dumps(doc, indent=1).encode())


def _create_level(group: Any, name: str, shape, chunks) -> Any:
    import numcodecs
    import zarr

    compressor = numcodecs.Blosc(cname="zstd", clevel=1, shuffle=numcodecs.Blosc.SHUFFLE)
    chunks = tuple(min(c, s) for c, s in zip(chunks, shape, strict=True))
    level = {"shape": shape, "chunks": chunks, "dtype": np.float32, "fill_value": 0}
    if int(zarr.__version__.split(".")[0]) >= 3:
        return group.create_array(
            name,
            compressors=compressor,
            chunk_key_encoding={"name": "v2", "separator": "/"},
            overwrite=True,
            **level,
        )
    # zarr 2 spells the compressor and the chunk key separator differently
    return group.create_dataset(
        name, compressor=compressor, dimension_separator="/", overwrite=True, **level
    )


def _open_group(path: Path, mode: str) -> Any:
    import zarr

    if int(zarr.__version__.split(".")[0]) >= 3:
        return zarr.open_group(str(path), mode=mode, zarr_format=2)
    return zarr.open_group(str(path), mode=mode)


def target_array(path: str) -> Any:
    """Level 0 of the target, opened for each block (a rerun may have replaced it)."""
    import zarr

    return zarr.open_array(str(Path(path) / "0"), mode="r+")


def layer_document(name: str, axes: str, info: dict[str, Any], provenance: dict) -> dict:
    """The layer document :mod:`napari_deconvnet.io` writes and reads (format 1)."""
    doc: dict[str, Any] = {
        "format": LAYER_FORMAT,
        "format_version": LAYER_VERSION,
        "name": name,
        "axes": axes,
        "metadata": {"napari_deconvnet": provenance},
    }
    return json.loads(
        json.dumps(doc, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v))
    )


def _nothing_written(folder: Path) -> bool:
    """Whether `folder` is empty, or holds only a job folder that a kill left before
    its job file (and any finished block) was written."""
    entries = list(folder.iterdir())
    if not entries:
        return True
    if [e.name for e in entries] != [JOB_DIR]:
        return False
    job = folder / JOB_DIR
    inside = {e.name for e in job.iterdir() if not e.name.startswith(".")}  # (temp files)
    done = job / "done"
    return (
        "job.json" not in inside
        and inside <= {"done"}
        and not (done.exists() and any(done.iterdir()))
    )


def prepare_target(
    target: Path,
    fingerprint: str,
    resume: bool,
    overwrite: bool,
    shape,
    chunks,
    legacy: str | None = None,
) -> set[int] | None:
    """Create the OME-Zarr (level 0 and the job folder) or find what a killed run left.

    Returns the numbers of the finished blocks, or None when the same job is
    complete already. `legacy` is the job's fingerprint as versions before the
    source's content digest made it: a target of such a job is the same job
    (its source cannot be checked; said in a warning).
    """
    same = {fingerprint} | ({legacy} if legacy else set())
    job_dir = target / JOB_DIR
    if target.exists() and overwrite:
        if target.is_dir() and not replaceable_folder(target):
            raise ValueError(
                f"{target} is a folder that holds no zarr store (no .zattrs, .zgroup, "
                "zarr.json or unfinished restore); overwrite=True replaces an earlier "
                "output, not other files: remove the folder yourself or write elsewhere"
            )
        if not target.is_dir():
            raise ValueError(
                f"{target} is a file, not a zarr store; overwrite=True replaces an "
                "earlier output (a folder), not other files: remove the file yourself "
                "or write elsewhere"
            )
        shutil.rmtree(target)
    if target.is_dir() and _nothing_written(target):
        # an empty folder, or a run killed before its job file: nothing to keep
        shutil.rmtree(target)
    if target.exists():
        previous = None
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            previous = json.loads((job_dir / "job.json").read_text())["fingerprint"]
        if previous is None and not job_dir.exists():
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                attrs = json.loads((target / ".zattrs").read_text())
                done = attrs[LAYER_KEY]["metadata"]["napari_deconvnet"]["job"]
                if resume and done in same:
                    _said_legacy(target, done != fingerprint)
                    return None
        if not resume or previous not in same:
            what = (
                "an unfinished restore of other data or with other settings (source, "
                "model, PSF, statistics, blocks or precision: a run begun in bfloat16 on a "
                "CPU with AMX continues only in bfloat16)"
                if previous is not None
                else "other data"
            )
            raise ValueError(
                f"{target} exists and holds {what}; pass overwrite=True to replace it"
                + ("" if resume else " (resume=False never continues a previous run)")
            )
        _said_legacy(target, previous != fingerprint)
    else:
        target.mkdir(parents=True)
    job_dir.mkdir(exist_ok=True)
    if not (job_dir / "job.json").exists():  # first: a job folder always says whose it is
        write_json(job_dir / "job.json", {"fingerprint": fingerprint})
    (job_dir / "done").mkdir(exist_ok=True)
    if not (target / "0" / ".zarray").exists():
        group = _open_group(target, "a")
        _create_level(group, "0", shape, chunks)
    return {int(p.name) for p in (job_dir / "done").iterdir() if p.name.isdigit()}


def staging_folder(target: Path) -> Path:
    """Where a restore that replaces the finished OME-Zarr `target` (``overwrite=True``)
    writes until it is done: beside it, hidden; then it is put in its place
    (:func:`~.atomic.swap_folder`). Session 73: the old result was deleted before the
    first block of the new one, so that a Ctrl-C or a failure left neither."""
    name = f".{target.name}.replacing"
    if len(name.encode()) > _NAME_MAX:  # (a long name's was refused by the file system)
        digest = hashlib.sha1(target.name.encode()).hexdigest()[:12]
        name = f".{target.name.encode()[:200].decode(errors='ignore')}-{digest}.replacing"
    return target.parent / name


#: The longest file name most file systems take, in bytes
_NAME_MAX = 255


def replaces_a_result(target: Path, overwrite: bool) -> bool:
    """Whether a restore to `target` with `overwrite` replaces a finished output (or
    anything else that is not an unfinished restore), which it keeps until the new
    one is complete (:func:`staging_folder`)."""
    recover_folder(target)  # (a swap that a crash interrupted)
    return (
        overwrite
        and target.is_dir()
        and not target.is_symlink()
        and replaceable_folder(target)
        and not unfinished(target)
        and any(target.iterdir())
    )


def prepare_staging(staging: Path, same: set[str], resume: bool) -> None:
    """Keep an unfinished replacement of the same job when resuming (a rerun goes on
    with it), delete any other one (of other data or settings, or `resume` False)."""
    if not staging.exists():
        return
    if not resume:
        shutil.rmtree(staging)
        return
    previous = None
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        previous = json.loads((staging / JOB_DIR / "job.json").read_text())["fingerprint"]
    if previous is None and not (staging / JOB_DIR).exists():
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            attrs = json.loads((staging / ".zattrs").read_text())
            previous = attrs[LAYER_KEY]["metadata"]["napari_deconvnet"]["job"]
    if previous not in same:
        shutil.rmtree(staging)


def _said_legacy(target: Path, legacy: bool) -> None:
    """Warn that a job begun before content digests continues unchecked."""
    if legacy:
        warnings.warn(
            f"{target} was begun by a version of napari-deconvnet that did not record what "
            "the source holds: it is taken as this job's without checking that the source "
            "is unchanged (pass overwrite=True to restore it again)",
            UserWarning,
            stacklevel=4,
        )


def pyramid(target: Path, zaxes: str, chunks, client: Any) -> list[tuple[int, ...]]:
    """Levels 1, 2, ... averaged 2x2 in Y and X from the level before, as written."""
    import dask
    import dask.array as da
    import zarr

    group = _open_group(target, "r+")
    level = zarr.open_array(str(target / "0"), mode="r")
    shapes = [level.shape]
    yx_chunk = max(c for a, c in zip(zaxes, chunks, strict=True) if a in "YX")
    k = 0
    while True:
        yx = [s for a, s in zip(zaxes, level.shape, strict=True) if a in "YX"]
        if max(yx) <= yx_chunk or min(yx) < 2:
            break
        factors = {i: (2 if a in "YX" else 1) for i, a in enumerate(zaxes)}
        down = da.coarsen(np.mean, da.from_zarr(level), factors, trim_excess=True)
        down = down.astype(np.float32)
        k += 1
        arr = _create_level(group, str(k), down.shape, chunks)
        store = da.store(down.rechunk(arr.chunks), arr, lock=False, compute=False)
        if client is not None:
            client.compute(store).result()
        else:
            dask.compute(store, scheduler="threads")
        level = zarr.open_array(str(target / str(k)), mode="r")
        shapes.append(level.shape)
    return shapes


def _transform(dataset: dict[str, Any], kind: str, n_axes: int) -> list[float] | None:
    """A dataset's ``scale`` or ``translation``: finite numbers, one per axis (a scale
    also positive, the rule TIFF pixel sizes follow: a negative scale is no pixel
    size), else None: a file with a broken transform still opens, unscaled."""
    for t in dataset.get("coordinateTransformations") or []:
        if not isinstance(t, dict) or t.get("type") != kind:
            continue
        values = t.get(kind)
        try:
            out = [float(v) for v in values]
        except (TypeError, ValueError):
            return None
        ok = len(out) == n_axes and all(np.isfinite(out))
        return out if ok and (kind != "scale" or min(out) > 0) else None
    return None


#: Axis names of more than one letter that name an axis of ours
_LONG_NAMES = {"time": "T", "channel": "C", "channels": "C"}


def _axis_letter(axis: Any) -> str:
    """One NGFF axis as a letter of ours: a one-letter name (``"z"``), a long name we
    know (``"time"``), else its type (``"time"``, ``"channel"``), else ``"?"``."""
    name = str(axis.get("name", "") if isinstance(axis, dict) else axis).strip()
    if len(name) == 1:
        return name.upper()
    if name.lower() in _LONG_NAMES:
        return _LONG_NAMES[name.lower()]
    kind = axis.get("type") if isinstance(axis, dict) else None
    return {"time": "T", "channel": "C"}.get(kind, "?") if isinstance(kind, str) else "?"


def _space_letters(axes: list, letters: list[str]) -> list[str]:
    """`letters` with the space axes of names we do not know (``"depth"``) lettered by
    their place: NGFF puts the space axes last, in Z, Y, X order. One "?" dropped the
    whole file's geometry. Left as they are where that would repeat a letter."""
    space = [
        i for i, axis in enumerate(axes) if isinstance(axis, dict) and axis.get("type") == "space"
    ]
    if not space or len(space) > 3 or "?" not in [letters[i] for i in space]:
        return letters
    out = list(letters)
    for i, letter in zip(space, "ZYX"[3 - len(space) :], strict=True):
        if out[i] == "?":
            out[i] = letter
    return out if len(set(out)) == len(out) and "?" not in [out[i] for i in space] else letters


def read_multiscales(attrs: Any, where: Any) -> dict[str, Any] | None:
    """The first image of an OME-Zarr group's ``multiscales`` (NGFF 0.1 to 0.5), checked.

    Returns None when `attrs` (the group's attributes) hold none. Otherwise
    ``paths`` (the levels' array paths), ``axes`` (one letter per axis, ``?``
    for names longer than a letter; empty when the file names no axes, as
    NGFF 0.1-0.2 did), ``units`` (per axis, None where absent) and level
    0's ``scale`` and ``translate`` (None when absent or unusable).

    The package's reader and its streamed restores read groups through this
    one function, so that both open the same files alike.

    Raises
    ------
    ValueError
        Naming `where`, when the metadata is there but unusable: no list of
        images, no datasets, a dataset without a path.
    """
    attrs = attrs if isinstance(attrs, dict) else {}
    ome = attrs.get("ome") if isinstance(attrs.get("ome"), dict) else {}
    found = attrs.get("multiscales") or ome.get("multiscales")
    if not found:
        return None
    first = found[0] if isinstance(found, list) and found else None
    datasets = first.get("datasets") if isinstance(first, dict) else None
    if not isinstance(datasets, list) or not datasets:
        raise ValueError(
            f"{where}: its OME-Zarr 'multiscales' metadata lists no image levels "
            "('datasets'); open the array folder inside it (e.g. '<name>.zarr/0')"
        )
    paths = [d.get("path") if isinstance(d, dict) else None for d in datasets]
    if not all(isinstance(p, str) and p for p in paths):
        raise ValueError(
            f"{where}: an OME-Zarr level ('datasets' entry) has no array path; "
            "open the array folder inside it (e.g. '<name>.zarr/0')"
        )
    letters, units = [], []
    for axis in first.get("axes") or []:  # NGFF 0.3 names axes by strings, 0.4+ by objects
        letters.append(_axis_letter(axis))
        unit = axis.get("unit") if isinstance(axis, dict) else None
        units.append(unit if isinstance(unit, str) else None)
    letters = _space_letters(first.get("axes") or [], letters)
    axes = "".join(letters)
    scale = _transform(datasets[0], "scale", len(axes)) if axes else None
    translate = _transform(datasets[0], "translation", len(axes)) if axes else None
    if axes:  # NGFF 0.4+: the image's own transforms apply after each level's
        outer_scale = _transform(first, "scale", len(axes))
        outer_shift = _transform(first, "translation", len(axes))
        if outer_scale is not None:
            translate = None if translate is None else _times(outer_scale, translate)
            scale = _times(outer_scale, scale or [1.0] * len(axes))
        if outer_shift is not None:
            base = translate or [0.0] * len(axes)
            translate = [a + b for a, b in zip(base, outer_shift, strict=True)]
    return {"paths": paths, "axes": axes, "units": units, "scale": scale, "translate": translate}


def _times(a: list[float], b: list[float]) -> list[float]:
    return [x * y for x, y in zip(a, b, strict=True)]


def open_level(group: Any, path: str, where: Any) -> Any:
    """The array `path` of an OME-Zarr `group` (a level its metadata names); a
    ValueError naming `where` when it is missing."""
    try:
        node = group[path]
    except (KeyError, FileNotFoundError, ValueError) as err:
        raise ValueError(
            f"{where}: the level {path!r} that its OME-Zarr metadata names is missing"
        ) from err
    if not hasattr(node, "shape"):
        raise ValueError(f"{where}: the OME-Zarr level {path!r} is a group, not an array")
    return node


def multiscales(name: str, zaxes: str, shapes, info: dict[str, Any], axes_from_file: str):
    """NGFF ``multiscales`` for levels of `shapes` in the order `zaxes`.

    `info` holds per-axis scale, translate and units in the order
    `axes_from_file` (the source's own axes: an ImageJ ``ZCYX`` hyperstack's,
    say); they are matched by letter, so that axes the restore names otherwise
    (``axes="TYX"`` for a file's mislabelled ``ZYX``) keep Y's and X's.
    """
    by_letter = {}
    if axes_from_file:
        by_letter = {
            key: dict(zip(axes_from_file, info.get(key) or [], strict=False))
            for key in ("scale", "translate", "units")
        }
    # NGFF holds pixel sizes (positive), as the TIFF writers do: a negative scale (napari's
    # flip of the display) stays in the layer document (readers dropped every axis's
    # geometry of a file with a negative NGFF scale, this package's reader too)
    scale0 = [abs(float(by_letter.get("scale", {}).get(a, 1.0))) for a in zaxes]
    translate0 = [float(by_letter.get("translate", {}).get(a, 0.0)) for a in zaxes]
    ngff_axes = []
    for a in zaxes:
        entry = {"name": a.lower(), "type": _NGFF_TYPES[a]}
        unit = by_letter.get("units", {}).get(a)
        if unit and a != "C":
            entry["unit"] = unit
        ngff_axes.append(entry)
    datasets = []
    for k in range(len(shapes)):
        factor = [2**k if a in "YX" else 1 for a in zaxes]
        datasets.append(
            {
                "path": str(k),
                "coordinateTransformations": [
                    {
                        "type": "scale",
                        "scale": [s * f for s, f in zip(scale0, factor, strict=True)],
                    },
                    {
                        "type": "translation",
                        "translation": [
                            t + (f - 1) * s / 2
                            for t, f, s in zip(translate0, factor, scale0, strict=True)
                        ],
                    },
                ],
            }
        )
    return [
        {"version": "0.4", "name": name, "axes": ngff_axes, "datasets": datasets, "type": "mean"}
    ]
