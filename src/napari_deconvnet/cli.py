"""The ``napari-deconvnet`` command line: restore files, list models, run the demo.

Examples
--------
::

    napari-deconvnet models
    napari-deconvnet restore noisy.tif -o restored.tif
    napari-deconvnet restore stack1.tif stack2.tif --axes ZYX -o restored/
    napari-deconvnet demo                  # opens napari with the Restore widget
    napari-deconvnet demo --headless -o camera-restored.tif

napari is imported only by ``demo`` without ``--headless``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main"]

PROG = "napari-deconvnet"
_TIFF = (".tif", ".tiff")
_IMAGES = (".png", ".jpg", ".jpeg")
_READABLE = (*_TIFF, *_IMAGES, ".npy")
_WRITABLE = (*_TIFF, ".npy")


class _InputError(Exception):
    """Bad input from the command line: reported in one line, exit code 2."""


# ------------------------------------------------------------------- files


def _check_input(path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in _READABLE:
        raise _InputError(
            f"{path}: unsupported file type {suffix or '(none)'!r}; "
            f"use one of {', '.join(_READABLE)}"
        )
    if not path.is_file():
        raise _InputError(f"{path}: no such file")


def _read(path: Path) -> np.ndarray:
    suffix = path.suffix.lower()
    try:
        if suffix in _TIFF:
            import tifffile

            return tifffile.imread(path)
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        from skimage.io import imread

        return imread(path)
    except (OSError, ValueError) as err:
        raise _InputError(f"{path}: cannot read it as an image ({err})") from err


def _guess_axes(path: Path, image: np.ndarray) -> str | None:
    """``"YXS"`` for a colour PNG/JPEG or an RGB TIFF; None lets the core decide."""
    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        return None
    if path.suffix.lower() in _IMAGES:
        return "YXS"
    if path.suffix.lower() in _TIFF:
        import tifffile

        with contextlib.suppress(Exception), tifffile.TiffFile(path) as tif:
            if tif.series[0].axes.endswith("S"):
                return "YXS"
    return None


def _write_atomic(path: Path, data: np.ndarray, provenance: dict[str, Any]) -> None:
    """Write `data` to `path` through a temporary file in the same folder.

    Readers never see a half-written file: it is renamed into place once
    complete, and removed if writing fails.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        if path.suffix.lower() == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, data, allow_pickle=False)
        else:
            import tifffile

            rgb = str(provenance.get("axes") or "").endswith("S") and data.shape[-1] in (3, 4)
            tifffile.imwrite(
                tmp,
                data,
                photometric="rgb" if rgb else "minisblack",
                metadata={"napari_deconvnet": provenance},
            )
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _outputs(inputs: list[Path], out: Path) -> list[Path]:
    """One output file per input: `out` itself, or files in the folder `out`."""
    if len(inputs) == 1 and not out.is_dir():
        if out.suffix.lower() not in _WRITABLE:
            raise _InputError(
                f"{out}: cannot write {out.suffix or 'files without an extension'}; "
                f"name the output {', '.join('*' + s for s in _WRITABLE)} "
                "(float32 results need TIFF or NumPy files)"
            )
        return [out]
    if out.exists() and not out.is_dir():
        raise _InputError(f"{out} is a file, but several inputs need an output folder")
    names = [f"{p.stem}_restored.tif" for p in inputs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise _InputError(
            f"several inputs would be written to the same file ({', '.join(duplicates)}); "
            "restore inputs with the same name into different folders"
        )
    return [out / n for n in names]


# ---------------------------------------------------------------- commands


def _cmd_models(args: argparse.Namespace) -> int:
    import napari_deconvnet as dn

    models = dn.list_models()
    width = max(map(len, models), default=0)
    for name, description in models.items():
        print(f"{name:<{width}}  {description}")
    return 0


def _cmd_restore(args: argparse.Namespace) -> int:
    import napari_deconvnet as dn
    from napari_deconvnet.core.tiling import infer_axes

    inputs = [Path(p) for p in args.inputs]
    for path in inputs:
        _check_input(path)
    outputs = _outputs(inputs, Path(args.output))
    try:
        model = dn.load_model(args.model)
    except (ValueError, TypeError) as err:
        raise _InputError(str(err)) from err
    for src, dst in zip(inputs, outputs, strict=True):
        if dst.exists() and not args.overwrite:
            print(
                f"skipping {src}: {dst} exists (pass --overwrite to replace it)", file=sys.stderr
            )
            continue
        image = _read(src)
        try:
            axes = args.axes or _guess_axes(src, image) or infer_axes(image.shape, model)
            restored = dn.restore(image, model, axes=axes, tile=args.tile, device=args.device)
        except (ValueError, TypeError) as err:
            raise _InputError(f"{src}: {err}") from err
        provenance = {
            "model": args.model,
            "model_name": model.metadata.get("name", args.model),
            "axes": axes,
            "tile": args.tile,
            "device": args.device,
            "source": str(src),
            "version": dn.__version__,
        }
        _write_atomic(dst, restored, provenance)
        print(f"{src} -> {dst}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.headless:
        return _demo_headless(args)
    if args.output is not None:
        raise _InputError("-o/--output is only used with --headless")
    import napari

    viewer = napari.Viewer(title="napari-deconvnet demo")
    viewer.open_sample("napari-deconvnet", "noisy_camera")
    viewer.window.add_plugin_dock_widget("napari-deconvnet", "Restore")
    napari.run()
    return 0


def _demo_headless(args: argparse.Namespace) -> int:
    from skimage.metrics import peak_signal_noise_ratio

    import napari_deconvnet as dn
    from napari_deconvnet.io.samples import NOISY_CAMERA_SIGMA, noisy_camera_data

    if args.output is None:
        raise _InputError("--headless needs -o/--output, the TIFF file to write")
    out = Path(args.output)
    if out.suffix.lower() not in _WRITABLE:
        raise _InputError(f"{out}: name the output *.tif, *.tiff or *.npy")
    noisy, clean = noisy_camera_data()
    try:
        restored = dn.restore(noisy, args.model, device=args.device)
    except (ValueError, TypeError) as err:
        raise _InputError(str(err)) from err
    _write_atomic(
        out,
        restored,
        {
            "model": args.model,
            "device": args.device,
            "source": "noisy_camera sample",
            "version": dn.__version__,
        },
    )
    before = peak_signal_noise_ratio(clean, noisy, data_range=1.0)
    after = peak_signal_noise_ratio(clean, restored, data_range=1.0)
    print(f"camera with Gaussian noise (sigma = {NOISY_CAMERA_SIGMA * 255:.0f}/255)")
    print(f"PSNR noisy:    {before:6.2f} dB")
    print(f"PSNR restored: {after:6.2f} dB  (model {args.model!r})")
    print(f"wrote {out}")
    return 0


# ------------------------------------------------------------------ parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Restore (denoise, deconvolve) images with deconvolution networks.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("restore", help="restore image files")
    p.add_argument("inputs", nargs="+", metavar="IN", help="TIFF, PNG, JPEG or .npy files")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output file (.tif or .npy) for one input, or a folder (written as "
        "NAME_restored.tif) for several",
    )
    p.add_argument("--model", default="default", help="shipped model name or .safetensors file")
    p.add_argument(
        "--axes",
        default=None,
        help="one letter per dimension from TZCYXS, e.g. ZYX (default: guessed from the shape)",
    )
    p.add_argument(
        "--tile",
        type=_positive_int,
        default=None,
        help="tile size in pixels (default: picked from free memory)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=_cmd_restore)

    p = sub.add_parser("models", help="list the shipped models")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("demo", help="open napari with a noisy sample and the Restore widget")
    p.add_argument(
        "--headless",
        action="store_true",
        help="no window: restore the sample, write it and print PSNR before and after",
    )
    p.add_argument("-o", "--output", default=None, metavar="OUT.tif", help="with --headless")
    p.add_argument("--model", default="default", help="shipped model name or .safetensors file")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for bad input)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except _InputError as err:
        print(f"{PROG} {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
