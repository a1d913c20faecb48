"""``napari-deconvnet restore``: any method of the specs (models and classical) over files."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ._files import (
    PROG,
    Failure,
    UsageError,
    expand_inputs,
    follow,
    layer_meta,
    output_paths,
    progress_bar,
    psf_from,
    read_input,
    write_output,
)
from ._specs import check_params


def _method(args: argparse.Namespace) -> tuple[str, Any]:
    """The method's name and spec (``--method``, or its older alias ``--model``)."""
    from napari_deconvnet.core.operations import method_spec

    if args.method and args.model and args.method != args.model:
        raise UsageError(
            "give --method or --model (its older name), not both; e.g. --method wiener"
        )
    name = args.method or args.model or "default"
    try:
        return name, method_spec(name)
    except (TypeError, ValueError, OSError) as err:
        if args.model and not args.method and "unknown model or method" in str(err):
            from napari_deconvnet.core.persistence import list_models

            raise UsageError(
                f"unknown model {name!r}; --model takes a shipped model "
                f"({', '.join(list_models())}) or a .safetensors file (see --method for the "
                "classical methods)"
            ) from err
        raise UsageError(str(err)) from err


def _options(args: argparse.Namespace, name: str, spec: Any) -> dict[str, Any]:
    """The method's parameters from ``--param`` (and ``--tile``, ``--precision`` for models)."""
    given: dict[str, Any] = {}
    if args.tile is not None:
        if spec.kind != "model":
            raise UsageError(f"--tile is for models; {name!r} is a {spec.kind or 'other'} method")
        given["tile"] = args.tile
    if getattr(args, "precision", None) is not None:
        if spec.kind != "model":
            raise UsageError(
                f"--precision is for models; {name!r} is a {spec.kind or 'other'} method"
            )
        given["precision"] = args.precision
    return check_params(spec, given, args.param, "--param")


def _precision(model: Any, params: dict[str, Any], device: str) -> str | None:
    """What a network ran in (``"auto"`` resolved), for the provenance; None otherwise."""
    if model is None:
        return None
    from napari_deconvnet.core.devices import precision_name

    # after the restore: a precision it could not run in was refused there
    return precision_name(params.get("precision", "auto"), device)


def _check_psf(name: str, spec: Any, psf: Any) -> None:
    if psf is None and spec.needs_psf:
        raise UsageError(
            f"{'model' if spec.kind == 'model' else 'method'} {name!r} deconvolves and needs "
            "--psf: a PSF image file (.tif, .npy) or a kind such as --psf gaussian "
            "--psf-param sigma=2 (or gaussian:sigma=2, airy:na=1.4,pixel_size=65)"
        )
    if psf is not None and not spec.needs_psf:
        hint = "--method deconv-2d" if spec.kind == "model" else "--method richardson-lucy"
        raise UsageError(
            f"{'model' if spec.kind == 'model' else 'method'} {name!r} is not a deconvolution "
            f"method and takes no PSF; drop --psf, or pick one such as {hint}"
        )


def cmd_restore(args: argparse.Namespace) -> int:
    import napari_deconvnet as dn
    from napari_deconvnet.core.provenance import record

    name, spec = _method(args)
    params = _options(args, name, spec)
    inputs = expand_inputs(args.inputs)
    outputs = output_paths(inputs, Path(args.output), args.format, "restored")
    psf = psf_from(args.psf, args, getattr(args, "psf_param", None))
    _check_psf(name, spec, psf)
    model = None
    if spec.kind == "model":
        from napari_deconvnet.core.persistence import load_model

        try:
            model = load_model(spec.extra.get("model", name))
        except (TypeError, ValueError) as err:
            raise UsageError(str(err)) from err
    failed = 0
    with progress_bar(args, total=len(inputs), desc="files", unit="file", position=0) as files:
        for src, dst in zip(inputs, outputs, strict=True):
            files.update(0)
            # an unfinished streamed OME-Zarr (killed run) is resumed, not skipped
            resumable = (dst / ".napari_deconvnet_job").is_dir()
            if dst.exists() and not args.overwrite and not resumable:
                print(
                    f"skipping {src}: {dst} exists (pass --overwrite to replace it)",
                    file=sys.stderr,
                )
                files.update(1)
                continue
            try:
                image = read_input(src)
            except Failure as err:
                print(f"{PROG} restore: error: {err}", file=sys.stderr)
                failed += 1
                files.update(1)
                continue
            start = time.perf_counter()
            if (
                model is not None
                and dst.name.lower().endswith(".zarr")
                and (image.lazy or src.name.lower().endswith(".zarr"))
            ):
                # big data: block by block from the file straight into the OME-Zarr, resumable
                _stream(src, dst, model, psf, args.axes or image.axes, params, args)
                files.update(1)
                files.write(f"{src} -> {dst}", file=sys.stdout)
                continue
            axes = args.axes or image.axes or ("YXS" if image.rgb else None)
            if model is not None and axes is None:
                from napari_deconvnet.core.axes import infer_axes

                axes = infer_axes(image.data.shape, model)
            data = image.data if image.lazy else np.asarray(image.data)
            try:
                with progress_bar(args, desc=src.name, unit="step", position=1) as steps:
                    restored = dn.run_method(
                        data,
                        model if model is not None else name,
                        psf=psf,
                        axes=axes,
                        device=args.device,
                        progress=follow(steps),
                        **params,
                    )
            except (ValueError, TypeError) as err:
                raise UsageError(f"{src}: {err}") from err
            provenance = record(
                "restore",
                method=name,
                params=params,
                model=name if model is not None else None,
                model_name=model.metadata.get("name", name) if model is not None else None,
                psf=args.psf,
                axes=axes,
                tile=args.tile,
                device=args.device,
                precision=_precision(model, params, args.device),
                lazy=image.lazy,
                source=str(src),
                # a lazy result is computed while it is written
                seconds=None if image.lazy else time.perf_counter() - start,
            )
            meta = layer_meta(image, f"{image.name} restored", provenance)
            write_output(dst, restored, meta, args)
            files.update(1)
            files.write(f"{src} -> {dst}", file=sys.stdout)
    if failed:
        raise Failure(f"{failed} of {len(inputs)} inputs could not be read")
    return 0


def _stream(
    src: Path, dst: Path, model: Any, psf: Any, axes: Any, params: dict, args: Any
) -> None:
    """``restore big.zarr -o out.ome.zarr``: :func:`napari_deconvnet.restore_to_zarr`."""
    import napari_deconvnet as dn

    with progress_bar(args, desc=src.name, unit="block", position=1) as blocks:
        try:
            dn.restore_to_zarr(
                src,
                dst,
                model,
                psf=psf,
                axes=axes,
                device=args.device,
                overwrite=bool(args.overwrite) and not (dst / ".napari_deconvnet_job").is_dir(),
                progress=follow(blocks),
                **params,
            )
        except (ValueError, TypeError) as err:
            raise UsageError(f"{src}: {err}") from err
