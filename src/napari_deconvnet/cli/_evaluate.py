"""``napari-deconvnet evaluate``: SSIM and PSNR of a result file against a reference file.

The options are rendered from :data:`napari_deconvnet.core.measurement.PARAMS`
and the numbers come from :func:`napari_deconvnet.measure_iter`, as in the
Quality widget, so both report the same values for the same images.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from napari_deconvnet.core._validation import finite_or_null

from ._files import (
    WRITABLE,
    UsageError,
    cli_words,
    follow,
    layer_meta,
    not_an_input,
    one_file,
    progress_bar,
    read_input,
    suffix_of,
    write_output,
)

__all__ = ["add_arguments", "cmd_evaluate"]


def _data_range_type(param: Any) -> Any:
    """argparse type of the data range: a positive number, or auto."""

    def convert(text: str) -> float | None:
        from napari_deconvnet.core.data_range import check_data_range

        try:
            value = param.parse(text)
            if value is not None:
                check_data_range(value, None)
        except (ValueError, TypeError):
            raise argparse.ArgumentTypeError(
                f"expected a positive number or 'auto', got {text!r}"
            ) from None
        return value

    return convert


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The evaluate command's arguments: two files and the measurement's parameters."""
    from napari_deconvnet.core.measurement import PARAMS

    p.add_argument("result")
    p.add_argument("reference")
    for param in PARAMS:
        flag = "--" + param.name.replace("_", "-")
        kwargs: dict[str, Any] = {"default": param.default, "help": param.help}
        if param.kind == "choice":
            kwargs["choices"] = list(param.choices)
            kwargs["help"] += f" (default: {param.default})"
        elif param.name == "data_range":
            kwargs["type"] = _data_range_type(param)
        if param.name == "axes":
            kwargs["help"] = kwargs["help"].replace("(default: ", "(default: the file's, or ")
        p.add_argument(flag, **kwargs)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--ssim-map", default=None, metavar="OUT", help="also write the SSIM map")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --ssim-map file")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Measure, print the mean SSIM and PSNR (or JSON), and write the map if asked."""
    import napari_deconvnet as dn
    from napari_deconvnet.core.generators import drain
    from napari_deconvnet.core.provenance import record

    images = []
    for name in (args.result, args.reference):
        if not Path(name).exists():
            raise UsageError(f"{name}: no such file")
    if args.ssim_map is not None:  # refused before any work, as restore's outputs are
        out = one_file(args.ssim_map, "--ssim-map", "ssim.tif")
        if suffix_of(out) not in WRITABLE or suffix_of(out) == ".png":  # float SSIM
            raise UsageError(f"--ssim-map {out}: name it *.tif, *.ome.tif, *.ome.zarr or *.npy")
        not_an_input([out], [Path(args.result), Path(args.reference)])  # (folder writable)
        if out.exists() and not args.overwrite:
            raise UsageError(f"--ssim-map {out} exists; pass --overwrite to replace it")
    for name in (args.result, args.reference):
        images.append(read_input(Path(name), lazy=False))
    result, reference = images
    x, y = np.asarray(result.data), np.asarray(reference.data)
    mine, theirs = result.axes or "", reference.axes or ""
    # (--axes names both files' axes as the user knows them: nothing is moved then)
    if not args.axes and mine and theirs and mine != theirs and sorted(mine) == sorted(theirs):
        # the files name their axes in another order (an ImageJ ZCYX and an OME-TIFF
        # CZYX of one stack): compared plane by plane as named, not as stored (session
        # 71: planes of different channels were compared, PSNR 26.8 for 38.4)
        y = np.transpose(y, [theirs.index(a) for a in mine])
        if not getattr(args, "quiet", False):
            print(
                f"{args.reference}: axes {theirs} put in the result's order {mine}",
                file=sys.stderr,
            )
    if x.shape != y.shape:
        named = f" (axes {mine} and {theirs})" if mine and theirs else ""
        raise UsageError(
            f"the result has shape {x.shape} but the reference has shape {y.shape}{named}; "
            "compare images of the same shape"
        )
    axes = args.axes or result.axes or reference.axes or None
    options = {"axes": axes, "per": args.per, "data_range": args.data_range}
    try:
        with progress_bar(args, desc="measuring", unit="part") as bar:
            steps = dn.measure_iter(x, y, full=bool(args.ssim_map), **options)
            measurement = drain(steps, progress=follow(bar))
    except (ValueError, TypeError) as err:
        raise UsageError(cli_words(str(err))) from err
    report = {**measurement.summary(), "result": args.result, "reference": args.reference}
    if args.ssim_map:
        out = Path(args.ssim_map)
        provenance = record("measure", metric="ssim", **report)
        meta = layer_meta(result, "SSIM map", provenance)
        meta["rgb"] = False
        smap = measurement.ssim_map
        if "S" in (measurement.axes or ""):  # one map for the colours, as the widget shows
            # (written with its S axis, a 48×48 RGB map became 48 planes of 48×3 pixels)
            smap = smap.mean(axis=measurement.axes.index("S"), dtype=np.float64)
            smap = smap.astype(np.float32)
        write_output(out, smap, meta, args)
        report["ssim_map"] = str(out)
    if args.json:
        # standard JSON: an infinite PSNR (identical images) is null, not Infinity, which
        # strict parsers refuse and jq turns into 1.8e308
        print(json.dumps(finite_or_null(report), allow_nan=False))
    else:
        print(f"SSIM  {report['ssim']:.4f}")
        print(f"PSNR  {report['psnr']:.2f} dB")
        if report["parts"] > 1:
            span = report["data_range"]
            ranges = (
                "data ranges " + ", ".join(f"{r:g}" for r in span) + " (per channel)"
                if isinstance(span, list)
                else f"data range {span:g}"
            )
            print(
                f"mean of {report['parts']} parts, per {report['per']} (axes {report['axes']}, "
                f"{ranges})"
            )
    return 0
