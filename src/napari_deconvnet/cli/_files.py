"""Files, progress bars, option specs and errors shared by the command-line commands."""

from __future__ import annotations

import argparse
import functools
import glob
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

PROG = "napari-deconvnet"
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".npy")
FORMATS = {
    "tif": ".tif",
    "ome.tif": ".ome.tif",
    "ome.zarr": ".ome.zarr",
    "npy": ".npy",
    "png": ".png",
}
WRITABLE = (".ome.tif", ".ome.tiff", ".tif", ".tiff", ".ome.zarr", ".zarr", ".npy", ".png")


class UsageError(Exception):
    """Bad command line or input: one line, exit status 2."""


class Failure(Exception):
    """Something failed while working: one line, exit status 1."""


class BatchErrors:
    """The inputs of a batch that failed, so that one bad file does not stop the others.

    A file that cannot be read, or whose data the method refuses (a NaN, too few
    pixels, options that do not fit it), is reported on stderr as it happens and
    counted; the batch goes on. :meth:`finish` then sets the exit status: 2 when
    any input was refused, else 1 when any could not be read. With a single
    input, a refusal is raised at once as a :class:`UsageError` (one line, exit 2).
    """

    def __init__(self, command: str, total: int) -> None:
        self.command = command
        self.total = total
        self.unreadable = 0
        self.refused = 0

    def _report(self, message: str) -> None:
        print(f"{PROG} {self.command}: error: {' '.join(message.split())}", file=sys.stderr)

    def cannot_read(self, err: Failure) -> None:
        """An input that is not a readable image (:func:`read_input` failed)."""
        self._report(str(err))
        self.unreadable += 1

    def refuse(self, src: Path, err: Exception) -> None:
        """An input whose data the method refused (its ValueError or TypeError), in the
        words of the command line (:func:`cli_words`)."""
        if self.total == 1:
            raise UsageError(f"{src}: {cli_words(str(err))}") from err
        self._report(f"{src}: {cli_words(str(err))}")
        self.refused += 1

    def finish(self) -> None:
        """Raise what the exit status must say once every input was tried."""
        failed = self.unreadable + self.refused
        if self.refused:
            detail = f"{self.refused} refused"
            if self.unreadable:
                detail += f", {self.unreadable} could not be read"
            raise UsageError(
                f"{failed} of {self.total} inputs failed ({detail}; see the errors above); "
                "the other inputs were processed"
            )
        if self.unreadable:
            raise Failure(f"{self.unreadable} of {self.total} inputs could not be read")


# ----------------------------------------------------------------- progress


def progress_bar(args: argparse.Namespace, **kwargs: Any) -> Any:
    """A tqdm progress bar on stderr; off with --quiet or when stderr is not a terminal."""
    from tqdm import tqdm

    disable = True if getattr(args, "quiet", False) else None
    return tqdm(file=sys.stderr, disable=disable, dynamic_ncols=True, leave=False, **kwargs)


def follow(bar: Any) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback that moves `bar` (a :func:`progress_bar`).

    A total of 0 shows as unknown.
    """

    def progress(done: int, total: int) -> None:
        bar.total = total or None
        bar.n = done
        bar.refresh()

    return progress


class DaskBar:
    """Follows dask tasks with a progress bar (for lazy, chunk-by-chunk work)."""

    def __init__(self, bar: Any) -> None:
        from dask.callbacks import Callback

        self.bar = bar

        def start_state(dsk: Any, state: Any) -> None:
            bar.total = (bar.total or 0) + len(state["ready"]) + len(state["waiting"])
            bar.refresh()

        def posttask(*_: Any) -> None:
            bar.update(1)

        self.callback = Callback(start_state=start_state, posttask=posttask)

    def __enter__(self) -> DaskBar:
        self.callback.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.callback.__exit__(*exc)


# -------------------------------------------------------------------- files


def _an_input(path: Path) -> bool:
    """Whether a folder's or a pattern's `path` is one of the batch's inputs: an image
    file, or a ``.zarr`` folder, which fails in words when it holds no zarr store
    (session 73: such a folder was left out of a folder's or pattern's batch without
    a word, exit status 0, where named it failed as one input)."""
    from napari_deconvnet.io.reader import file_kind

    return file_kind(str(path)) is not None or (
        path.is_dir() and path.name.lower().endswith(".zarr")
    )


def expand_inputs(specs: Sequence[str]) -> list[Path]:
    """Files from arguments that are files, folders (their images) or glob patterns."""
    from napari_deconvnet.io.reader import file_kind

    paths: list[Path] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir() and not path.name.lower().endswith(".zarr"):
            # (hidden files left out, as a pattern leaves them: macOS writes a "._name.tif"
            # beside each file on exFAT and network drives, session 73)
            seen = [p for p in path.iterdir() if not p.name.startswith(".")]
            found = sorted(p for p in seen if _an_input(p))
            if not found:
                raise UsageError(f"{spec}: no images in this folder ({', '.join(IMAGE_SUFFIXES)})")
            paths.extend(found)
        elif path.exists():
            paths.append(path)
        elif glob.has_magic(spec):
            matched = sorted(Path(p) for p in glob.glob(spec, recursive=True))
            if not matched:
                raise UsageError(f"{spec}: no files match this pattern")
            # its images, as a folder's are (a subfolder, a README or .DS_Store among
            # them refused the whole batch)
            found = [p for p in matched if _an_input(p)]
            if not found:
                raise UsageError(
                    f"{spec}: no images among the {len(matched)} paths this pattern matches "
                    f"({', '.join(IMAGE_SUFFIXES)})"
                )
            paths.extend(found)
        else:
            raise UsageError(f"{spec}: no such file")
    for path in paths:
        # a .zarr folder without zarr metadata is one input that fails when read (as
        # an unreadable file does), not a refusal of the whole batch (session 71)
        if file_kind(str(path)) is None and not path.name.lower().endswith(".zarr"):
            raise UsageError(
                f"{path}: unsupported file type {path.suffix or '(none)'!r}; use TIFF, PNG, "
                "JPEG, .npy files or .zarr folders"
            )
    return paths


def suffix_of(path: Path) -> str:
    name = path.name.lower()
    return next((s for s in WRITABLE if name.endswith(s)), path.suffix.lower())


#: The core's words for its arguments, as the command line's options say them
#: (a refusal said "pass overwrite=True to replace it" to a command-line user)
_OPTION_WORDS = (
    (re.compile(r"\boverwrite=True\b"), "--overwrite"),
    (re.compile(r"\bpass tile=None \(automatic\)"), "leave --tile out (automatic)"),
    (re.compile(r"\bor tile=None\b"), "or leave --tile out"),
    (re.compile(r"\bpass data_range=the\b"), "pass --data-range, the"),
    (re.compile(r"\bper='(volume|slice)'"), r"--per \1"),
    # (session 68: these still spoke of the API's arguments)
    (
        re.compile(r"\((?:e\.g\. )?make_psf\(kind, shape=\.\.\.\)\)"),
        "(a PSF file cropped to fit; a PSF kind with --psf-param shape=...)",
    ),
    (re.compile(r"^tile must be\b"), "--tile must be"),
    (re.compile(r"use dn\.denoise_median \(or run_method 'median'\)"), "use --method median"),
    (re.compile(r"\bpsf is a list of (\d+) PSF"), r"--psf holds \1 PSF"),
    (re.compile(r"\(e\.g\. axes='([A-Z]+)' or '([A-Z]+)'\)"), r"(e.g. --axes \1 or \2)"),
    (re.compile(r"\bpass axes with a 'C'"), "pass --axes with a C"),
    # (session 70: these too)
    (re.compile(r"\(axes='([A-Za-z]+)'\)"), r"(--axes \1)"),
    (re.compile(r"\buse device='auto' or 'cpu'"), "use --device auto or cpu"),
    (re.compile(r"^clean contains NaN"), "the image contains NaN"),
)


def grey_alpha_parts(image: Any, data: Any, axes: str | None) -> tuple[Any, str, Any] | None:
    """``(grey, its axes, rebuild)`` for a grey image with alpha (PNG "LA") read as RGBA,
    else None: the command works on the grey image alone and ``rebuild(result)`` gives
    the RGBA result (R = G = B, the alpha as it was). Its R, G and B went through the
    work as three colours: independent noise on each, colour noise on a grey image, and
    a restore three times over (session 70)."""
    if not getattr(image, "grey_alpha", False) or not axes or not axes.endswith("S"):
        return None
    data = np.asarray(data)
    if data.shape[-1] != 4:
        return None
    alpha = data[..., 3]

    def rebuild(result: Any) -> np.ndarray:
        result = np.asarray(result)
        return np.stack([result, result, result, alpha.astype(result.dtype)], axis=-1)

    return np.ascontiguousarray(data[..., 0]), axes[:-1], rebuild


#: The input a batch of several files is working on (its warnings name it), or None
_CURRENT: list[Path | None] = [None]


def working_on(path: Path | None) -> None:
    """Say which input of a batch the next warnings are about (None: no batch)."""
    _CURRENT[0] = path


def current_input() -> Path | None:
    """The input of a batch the warnings are about, or None."""
    return _CURRENT[0]


def cli_words(message: str) -> str:
    """`message` from the core with its argument names as the command line's options."""
    for pattern, option in _OPTION_WORDS:
        message = pattern.sub(option, message)
    return message


def output_paths(inputs: list[Path], out: Any, fmt: str | None, tag: str) -> list[Path]:
    """One output per input: `out` itself, or ``STEM_TAG.EXT`` files in the folder `out`."""
    if str(out) == "":  # -o "" (Path("") is the current folder, which "-o ." names)
        raise UsageError("-o/--output is empty; name an output file or folder (e.g. -o out)")
    # a trailing separator names a folder ("-o out.tif/" is one, as "-o out/" is), but
    # not for OME-Zarr, an image that shells complete with a slash
    slash = str(out).endswith(("/", os.sep))
    out = Path(out)
    ext = FORMATS[fmt or "tif"]
    zarr = out.name.lower().endswith(".zarr")  # an image, even though it is a folder
    if zarr and len(inputs) > 1:
        raise UsageError(f"{out} names one OME-Zarr image, but several inputs need a folder")
    if zarr or (len(inputs) == 1 and not slash and not out.is_dir() and out.suffix != ""):
        if suffix_of(out) not in WRITABLE:
            raise UsageError(
                f"{out}: cannot write {out.suffix} files; name the output "
                f"{', '.join('*' + s for s in WRITABLE)} (PNG for 8- and 16-bit photos), "
                "or a folder"
            )
        if fmt is not None and FORMATS[fmt] != suffix_of(out).replace(".tiff", ".tif"):
            raise UsageError(
                f"--format {fmt} does not match the output file {out.name}; the file name "
                "gives the format (--format applies to output folders): drop --format, "
                f"or name the output *{FORMATS[fmt]}"
            )
        return not_an_input([out], inputs)
    if out.exists() and not out.is_dir():
        need = "-o ending in / names a folder" if slash else "several inputs need an output folder"
        raise UsageError(f"{out} is a file, but {need}")
    if not out.exists() and not slash and suffix_of(out) in WRITABLE:
        raise UsageError(
            f"{out} names one {suffix_of(out)} file, but {len(inputs)} inputs need an output "
            f"folder; name a folder (e.g. {out.parent / out.name[: -len(suffix_of(out))]})"
        )
    from napari_deconvnet.io.reader import file_stem

    names = [f"{file_stem(str(p))}_{tag}{ext}" for p in inputs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UsageError(
            f"several inputs would be written to the same file ({', '.join(duplicates)}); "
            "process inputs with the same name into different folders"
        )
    return not_an_input([out / n for n in names], inputs)


def not_an_input(outputs: list[Path], inputs: list[Path]) -> list[Path]:
    """`outputs`, unless one of them is an input (a result never replaces its source)
    or cannot be written (a file where its folder should be: refused before any work,
    where it failed after it with a raw FileExistsError)."""
    sources = {p.resolve() for p in inputs}
    for path in outputs:
        if path.resolve() in sources:
            raise UsageError(
                f"{path} is an input: writing there would replace the raw data with its "
                "result; name another output file or folder"
            )
    for folder in {path.parent for path in outputs}:
        check_writable_folder(folder, outputs[0] if len(outputs) == 1 else folder)
    return outputs


def one_file(text: str, option: str, example: str) -> Path:
    """The output file `text` names, refused when it ends in a separator: that names a
    folder (as restore's ``-o out/`` does), and the command writes one file (session 71:
    ``-o model.safetensors/`` wrote the file ``model.safetensors``). OME-Zarr images,
    which shells complete with a slash, stay images."""
    path = Path(text)
    if str(text).endswith(("/", os.sep)) and not path.name.lower().endswith(".zarr"):
        raise UsageError(
            f"{option} {text} ends in /, which names a folder, but this command writes one "
            f"file; name it (e.g. {option} {path.parent / example if path.name else example})"
        )
    return path


def check_output_file(path: Path, overwrite: bool, example: str = "out") -> None:
    """Refuse an output file that cannot be written, before any work is done.

    An existing file needs `overwrite`; a folder is never replaced; the
    nearest existing folder above `path` (missing ones are created) must be a
    writable folder, not a file.
    """
    if not str(path) or str(path) == ".":
        raise UsageError(f"-o/--output is empty; name the output file (e.g. {example})")
    if path.is_dir():
        raise UsageError(
            f"{path} is a folder; name the output file (e.g. {path / example}), "
            "a folder is never replaced"
        )
    if path.exists() and not overwrite:
        raise UsageError(f"{path} exists; pass --overwrite to replace it")
    check_writable_folder(path.parent, path)


def check_writable_folder(folder: Path, target: Path) -> None:
    """`folder` (or, if missing, its nearest existing parent) is a writable folder."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"cannot write {target}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(
            f"cannot write {target}: the folder {existing} is not writable (permission "
            "denied); name an output in a folder you can write to"
        )


def write_failure(path: Path, err: OSError, after: str = "") -> Failure:
    """A :class:`Failure` (exit status 1) for an I/O error while writing `path`."""
    reason = err.strerror or str(err) or type(err).__name__
    return Failure(f"cannot write {path}: {reason}{after}")


def read_input(path: Path, *, lazy: bool = True) -> Any:
    """An :class:`~napari_deconvnet.io.reader.ImageFile`; unreadable data is a failure."""
    from napari_deconvnet.io.reader import read_image

    try:
        return read_image(path, lazy_bytes=None if lazy else 1 << 62)
    except ValueError as err:  # read_image's own words, which name the file
        raise Failure(str(err)) from err
    except Exception as err:  # any parser error of a broken file
        raise Failure(f"{path}: cannot read it as an image ({type(err).__name__}: {err})") from err


def layer_meta(
    image: Any, name: str, provenance: dict[str, Any], axes: str | None = None
) -> dict[str, Any]:
    """The output's layer state: the input's geometry, relabelled with `axes` (the
    axes the command ran with, ``--axes``) where given, and the provenance."""
    geometry = image.geometry(axes)
    metadata: dict[str, Any] = {"napari_deconvnet": provenance}
    names = (image.metadata or {}).get("channel_names")
    if names:  # (the writers keep them where the output has that many channels)
        metadata["channel_names"] = list(names)
    return {"name": name, "metadata": metadata, **geometry}


def png_refusal(path: Path, data: Any) -> ValueError | None:
    """Why the result of `data` cannot be written to `path`, a PNG (:mod:`..io.png`)."""
    if suffix_of(path) != ".png":
        return None
    from napari_deconvnet.io.png import png_problem

    problem = png_problem(data.dtype, data.shape)
    return None if problem is None else ValueError(problem)


def write_output(
    path: Path, data: Any, meta: dict[str, Any], args: argparse.Namespace, like: Any = None
) -> None:
    """Write atomically (the writers use temporary names); lazy data with a progress bar.

    A PNG gets the levels of `like`'s dtype (the input's: uint8 or uint16).
    """
    from dask import is_dask_collection as is_dask

    from napari_deconvnet.io.writer import atomic_file, write_image

    if suffix_of(path) == ".png":
        from napari_deconvnet.io.png import write_png

        provenance = (meta.get("metadata") or {}).get("napari_deconvnet")
        write_png(path, np.asarray(data), like, provenance)
        return
    if suffix_of(path) == ".npy":
        with atomic_file(path) as tmp:
            if is_dask(data):
                import dask.array as da

                out = np.lib.format.open_memmap(tmp, "w+", data.dtype, data.shape)
                with (
                    progress_bar(args, desc=f"writing {path.name}", unit="task") as bar,
                    DaskBar(bar),
                ):
                    da.store(data, out, lock=False)
                out.flush()
                del out
            else:
                with open(tmp, "wb") as fh:
                    np.save(fh, np.asarray(data), allow_pickle=False)
        return
    if is_dask(data):
        with progress_bar(args, desc=f"writing {path.name}", unit="task") as bar, DaskBar(bar):
            write_image(path, data, meta)
    else:
        write_image(path, data, meta)


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text.lower() == "none":
        return None
    return text


def parse_spec(text: str, what: str) -> tuple[str, dict[str, Any]]:
    """``NAME[:key=value,...]``; ``AxB`` values are tuples, e.g. ``shape=9x17x17``."""
    name, _, rest = text.partition(":")
    params: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(
                f"{what} {text!r}: expected NAME:key=value,key=value (e.g. "
                "poisson-gaussian:peak=40,read_noise=2)"
            )
        if key.strip() in params:  # (the last one was taken silently)
            raise UsageError(f"{what} {text!r}: {key.strip()} is given twice")
        parts = value.strip().split("x")
        if len(parts) > 1 and all(isinstance(_number(p), int | float) for p in parts):
            params[key.strip()] = tuple(_number(p) for p in parts)
        else:
            params[key.strip()] = _number(value.strip())
    return name.strip(), params


def calibrated_psf(
    psf: Any, image: Any, src: Path, args: argparse.Namespace
) -> tuple[Any, dict[str, float]]:
    """`psf` for one file: an optical kind given without ``pixel_size`` or ``z_step``
    (``--psf widefield``) takes them from the file's calibration (its scale in
    units of length: OME-XML, ImageJ, NGFF), as the widgets take a layer's, each
    of a list of them (one per channel) alike; what was taken is said once on
    stderr (unless ``-q``).

    Returns the PSF to use and what was taken (``{}``: `psf` as it was).
    """
    psf, taken = _calibrated(psf, image)
    if taken and not getattr(args, "quiet", False):
        said = ", ".join(f"{k.replace('_', ' ')} {v:g} nm" for k, v in taken.items())
        print(f"{src}: PSF {said} (the file's calibration)", file=sys.stderr)
    note = psf_pixel_note(args, image)
    if note is not None:
        import warnings

        from napari_deconvnet.core.conditions import ConditionsWarning

        warnings.warn(f"{src}: {note}", ConditionsWarning, stacklevel=2)
    return psf, taken


def psf_pixel_note(args: argparse.Namespace, image: Any) -> str | None:
    """Words when a ``--psf`` file's pixels are not `image`'s (both calibrated in units
    of length: the lateral pixel size, and the Z step of a 3D PSF, 2 % apart or more),
    as the Restore widget says of a PSF layer (widgets.restore.pixel_size_note); else
    None. The PSF is used pixel for pixel either way (session 72: a 65 nm bead file on
    40 nm data lost 5.1 dB on the command line without a word)."""
    from napari_deconvnet.core.psf import calibration_nm

    texts = getattr(args, "psf", None)
    texts = [texts] if isinstance(texts, str) else list(texts or [])
    geometry = image.geometry(getattr(args, "axes", None))
    letters = "".join(geometry.get("axis_labels") or ()).upper() or None
    own = calibration_nm(geometry.get("scale"), geometry.get("units"), letters)
    for text in texts:
        if not own or not names_a_file(text) or not Path(text).is_file():
            continue
        where = Path(text).resolve()
        psf = _file_calibration(str(where), where.stat().st_mtime_ns)  # (a rewritten file)
        apart = {
            k: (psf[k], own[k])
            for k in ("pixel_size", "z_step")
            if k in psf and k in own and abs(psf[k] - own[k]) > 0.02 * own[k]
        }
        if apart:
            said = ", ".join(
                f"{k.replace('_', ' ')} {a:g} nm where the image's is {b:g} nm"
                for k, (a, b) in apart.items()
            )
            return (
                f"the PSF file {Path(text).name} has {said} (the files' calibration); the "
                "PSF is used pixel for pixel, so it acts wider or narrower than measured: "
                "resample it to the image's pixel size first"
            )
    return None


@functools.lru_cache(maxsize=8)
def _file_calibration(path: str, mtime_ns: int) -> dict[str, float]:
    """:func:`~napari_deconvnet.core.psf.calibration_nm` of a PSF file (its C axis out),
    once per file and modification time (`mtime_ns`)."""
    from napari_deconvnet.core.psf import calibration_nm

    try:
        psf = read_input(Path(path), lazy=False)
    except Exception:  # (psf_from reports an unreadable file)
        return {}
    axes = psf.axes.removesuffix("S") if psf.axes else None
    scale, units = psf.scale, psf.units
    if axes and "C" in axes and scale is not None and units is not None:
        keep = [i for i, a in enumerate(axes) if a != "C"]
        axes = "".join(axes[i] for i in keep)
        scale, units = [scale[i] for i in keep], [units[i] for i in keep]
    if axes is not None and (scale is None or len(scale) != len(axes)):
        return {}
    return calibration_nm(scale, units, axes)


def file_calibrated(made: Any, args: argparse.Namespace, image: Any, src: Path) -> Any:
    """``train``'s and ``adapt``'s PSF: `made` (the arrays of ``--psf``), or, where an
    optical kind left out ``pixel_size`` or ``z_step``, the kind with the file's
    calibration (`image`'s, the first input's for several), as ``restore`` makes it
    (they trained with the 100 nm default beside a file of 65 nm pixels)."""
    if made is None:
        return None
    described = psfs_from(args, spec=True)
    calibrated, taken = calibrated_psf(described, image, src, args)
    return calibrated if taken else made


def _calibrated(psf: Any, image: Any) -> tuple[Any, dict[str, float]]:
    if not isinstance(psf, dict | list):  # (a list: one PSF per channel)
        return psf, {}
    from napari_deconvnet.core.psf import calibrated_kind

    scale, units = getattr(image, "scale", None), getattr(image, "units", None)
    return calibrated_kind(psf, scale, units, getattr(image, "axes", None))


def names_a_file(text: str) -> bool:
    """Whether a ``--psf`` names a PSF file (an image suffix, or a path that exists),
    not a PSF kind."""
    path = Path(text)
    return path.suffix.lower() in IMAGE_SUFFIXES or path.exists()


def psfs_from(args: argparse.Namespace, *, spec: bool = True) -> Any:
    """The PSF of ``--psf`` given once (a PSF file with a ``C`` axis: one per
    channel), or the list of one PSF per channel when given several times
    (``--psf-param`` goes to every kind among them); see :func:`psf_from`
    (`spec`: kinds as dicts that restore fits to each image; else arrays)."""
    texts = args.psf
    pairs = getattr(args, "psf_param", None)
    if texts is None or isinstance(texts, str):
        return psf_from(texts, args, pairs, spec=spec)
    if len(texts) == 1:
        return psf_from(texts[0], args, pairs, spec=spec)
    psfs = [
        psf_from(text, args, None if names_a_file(text) else pairs, spec=spec) for text in texts
    ]
    if any(isinstance(p, list) for p in psfs):
        raise UsageError(
            "a --psf file holds one PSF per channel (its C axis); give it alone, or one "
            "--psf per channel"
        )
    from napari_deconvnet.core.restoration import psf_dimensions

    dims = [psf_dimensions(p) for p in psfs]
    if len(set(dims)) > 1:
        raise UsageError(
            f"--psf given {len(psfs)} times (one PSF per channel) with {dims} dimensions; "
            "give all of them 2D (planes) or all 3D (volumes)"
        )
    return psfs


def psf_from(
    text: str | None,
    args: argparse.Namespace,
    pairs: Sequence[str] | None = None,
    *,
    spec: bool = False,
) -> Any:
    """A PSF from a file (TIFF/.npy) or a PSF kind: ``gaussian:sigma=2``, or ``gaussian``
    with ``pairs`` such as ``["sigma=2"]`` (``--psf-param``), checked against its spec.

    ``shape=9x17x17`` and ``ndim=3`` are :func:`~napari_deconvnet.make_psf`'s own.
    A file whose axes have a ``C`` (an OME-TIFF or ImageJ ``CYX``/``CZYX``) holds
    one PSF per channel: it comes back as a list of them, in the channels' order.
    With `spec`, a kind without ``shape=`` comes back as a dict ``{"kind",
    **params}`` (with its ``ndim`` where given) that restore fits to each image
    (:func:`~napari_deconvnet.core.psf.fit_psf`: the default 3D widefield PSF's
    27 planes, cropped to a 12-plane stack, where they used to be refused) and
    makes in the model's dimensions; without `spec` too when neither
    ``shape=`` nor ``ndim=`` is given (training and adaptation make it so).
    """
    if text is None:
        if pairs:
            raise UsageError("--psf-param needs --psf KIND (e.g. --psf gaussian)")
        return None
    path = Path(text)
    if names_a_file(text):
        if not path.is_file():
            raise UsageError(f"--psf {text}: no such file")
        if pairs:
            raise UsageError("--psf-param is for PSF kinds, not for a PSF file")
        image = read_input(path, lazy=False)
        kernel = np.asarray(image.data, np.float32)
        axes = (image.axes or "").upper()
        if "C" in axes and len(axes) == kernel.ndim:  # one PSF per channel, along its C
            return list(np.moveaxis(kernel, axes.index("C"), 0))
        return kernel
    from napari_deconvnet.core import specs
    from napari_deconvnet.core.psf import make_psf

    name, params = parse_spec(text, "--psf")
    kinds = specs.list_psfs()
    if name.lower() not in kinds:
        raise UsageError(
            f"--psf {text}: unknown PSF {name!r}; accepted names are {list(kinds)}, "
            "or a PSF image file (.tif, .npy)"
        )
    shape, ndim = params.pop("shape", None), params.pop("ndim", None)
    try:
        extra = specs.parse_params(kinds[name.lower()], pairs or ())
        twice = sorted(set(extra) & set(params))
        if twice:  # (--psf-param took over silently, and the record kept --psf's value)
            raise UsageError(
                f"--psf {text}: {', '.join(twice)} is given twice (in --psf and in "
                "--psf-param); give each parameter once"
            )
        params.update(extra)
        kernel = np.asarray(make_psf(name, shape, ndim=ndim, **params), np.float32)
    except (TypeError, ValueError) as err:
        raise UsageError(f"--psf {text}: {err}") from err
    if shape is None and (spec or ndim is None):
        # its size is the package's: fitted to each image; and unless ndim= was given,
        # its dimensions the model's, as the API makes a name (a 2D kernel was made,
        # and deconv-3d refused it in restore, train and adapt)
        return {"kind": name.lower(), **({} if ndim is None else {"ndim": kernel.ndim}), **params}
    return kernel
