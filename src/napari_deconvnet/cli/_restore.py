"""``napari-deconvnet restore``: any method of the specs (models and classical) over files."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ._files import (
    BatchErrors,
    Failure,
    UsageError,
    calibrated_psf,
    cli_words,
    expand_inputs,
    follow,
    grey_alpha_parts,
    layer_meta,
    output_paths,
    png_refusal,
    progress_bar,
    psfs_from,
    read_input,
    working_on,
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
        given["tile"] = args.tile  # (one size per axis, ZxYxX, too)
    if getattr(args, "precision", None) is not None:
        if spec.kind != "model":
            raise UsageError(
                f"--precision is for models; {name!r} is a {spec.kind or 'other'} method"
            )
        given["precision"] = args.precision
    try:  # the options first, in their own words (session 73: "--param: tile must be")
        spec.check(given)
    except (TypeError, ValueError) as err:
        raise UsageError(cli_words(str(err))) from err
    params = check_params(spec, given, args.param, "--param")
    if params.get("refine_gain") is None:
        from napari_deconvnet.core.model_specs import refine_without_gain

        named = refine_without_gain(params.get("refine_offset"), params.get("refine_read_noise"))
        if named:  # (ignored and recorded as applied, session 70)
            raise UsageError(
                f"--param {named} describe the camera for the refinement, which runs only "
                "with --param refine_gain=... (its photons per intensity unit); give it too, "
                "or leave them out"
            )
    return params


def _precision(model: Any, params: dict[str, Any], device: str) -> str | None:
    """What a network ran in (``"auto"`` resolved), for the provenance; None otherwise."""
    if model is None:
        return None
    from napari_deconvnet.core.devices import precision_name

    # after the restore: a precision it could not run in was refused there
    return precision_name(params.get("precision", "auto"), device)


def _first_ndim(specs: Any, axes: str | None = None) -> int | None:
    """The spatial dimensions of the first input (without RGB samples; its Z, Y and X
    where `axes` (``--axes``) or the file name them: a TYX stack is planes), or None."""
    from napari_deconvnet.core.restoration import spatial_ndim

    try:
        image = read_input(expand_inputs(specs)[0], lazy=True)
    except (Failure, UsageError, OSError, ValueError, IndexError):
        return None  # (said where the inputs are read)
    named = axes or image.axes
    if named and len(named) == np.ndim(image.data):
        return spatial_ndim(image.data, named)
    return int(np.ndim(image.data)) - (1 if image.rgb else 0)


def _check_psf(name: str, spec: Any, psf: Any) -> None:
    if psf is None and spec.needs_psf:
        raise UsageError(
            f"{'model' if spec.kind == 'model' else 'method'} {name!r} deconvolves and needs "
            "--psf: a PSF image file (.tif, .npy) or a kind such as --psf gaussian "
            "--psf-param sigma=2 (or gaussian:sigma=2, airy:na=1.4,refractive_index=1.518,"
            "pixel_size=65)"
        )
    if psf is not None and not spec.needs_psf:
        hint = "--method deconv-2d" if spec.kind == "model" else "--method richardson-lucy"
        raise UsageError(
            f"{'model' if spec.kind == 'model' else 'method'} {name!r} is not a deconvolution "
            f"method and takes no PSF; drop --psf, or pick one such as {hint}"
        )


def _psf_record(given: Any, used: Any, taken: dict, pairs: Any = None) -> Any:
    """What the provenance says about the PSF: as given (with its ``--psf-param``
    values: ``gaussian`` with ``sigma=3`` read as the default sigma), or with the
    calibration."""
    given = given[0] if isinstance(given, list) and len(given) == 1 else given
    if not taken:
        return {"given": given, "psf_param": list(pairs)} if pairs else given
    if isinstance(used, list):  # a file's PSF is recorded by its name, a kind whole
        names = given if isinstance(given, list) else [given] * len(used)  # (a C-axis file)
        named = [u if isinstance(u, dict) else g for u, g in zip(used, names, strict=True)]
        return {"given": given, "channels": named}
    return {"given": given, **used}


def cmd_restore(args: argparse.Namespace) -> int:
    import napari_deconvnet as dn
    from napari_deconvnet.core.ome_zarr import unfinished
    from napari_deconvnet.core.provenance import record

    psf = psfs_from(args)
    if psf is not None and not (args.method or args.model):
        # a PSF and no method: the shipped deconvolution model of the PSF's dimensions,
        # as the Restore widget preselects it beside a PSF layer (and dn.restore
        # chooses it for a PSF with the model left at "default")
        from napari_deconvnet.core.restoration import default_deconvolution_model

        first = psf[0] if isinstance(psf, list) else psf
        # a kind's own dimensions, when ndim= was not given; a (1, Y, X) file is a
        # plane's for a plane (the first input's dimensions, read lazily)
        args.method = default_deconvolution_model(first, _first_ndim(args.inputs, args.axes))
        if not getattr(args, "quiet", False):
            print(f"--psf without --method: deconvolving with {args.method}", file=sys.stderr)
    name, spec = _method(args)
    params = _options(args, name, spec)
    inputs = expand_inputs(args.inputs)
    outputs = output_paths(inputs, args.output, args.format, "restored")
    _check_psf(name, spec, psf)
    model = None
    if spec.kind == "model":
        from napari_deconvnet.core.persistence import load_model

        try:
            model = load_model(spec.extra.get("model", name))
        except (TypeError, ValueError) as err:
            raise UsageError(str(err)) from err
    _check_device(args.device)  # classical methods too (a bad one was taken and recorded)
    errors = BatchErrors("restore", len(inputs))
    with progress_bar(args, total=len(inputs), desc="files", unit="file", position=0) as files:
        for src, dst in zip(inputs, outputs, strict=True):
            # (a batch's warnings name their file: four alike lines said nothing of which
            # output to doubt, session 73)
            working_on(src if len(inputs) > 1 else None)
            files.update(0)
            # an unfinished streamed OME-Zarr (killed run) is resumed, not skipped
            resumable = unfinished(dst)
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
                errors.cannot_read(err)
                files.update(1)
                continue
            file_psf, taken = calibrated_psf(psf, image, src, args)
            refusal = png_refusal(dst, image.data)
            if refusal is not None:  # before any work (a float result, a stack)
                errors.refuse(src, refusal)
                files.update(1)
                continue
            start = time.perf_counter()
            streams = (
                model is not None
                and dst.name.lower().endswith(".zarr")
                and (image.lazy or src.name.lower().endswith(".zarr"))
            )
            if resumable and not streams and not args.overwrite:
                # only a streamed restore resumes a job; this one would replace it
                print(
                    f"skipping {src}: {dst} holds an unfinished streamed restore, which this "
                    "restore (in memory) would replace; rerun the streamed one to finish it, "
                    "or pass --overwrite to replace it",
                    file=sys.stderr,
                )
                files.update(1)
                continue
            if streams:
                # big data: block by block from the file straight into the OME-Zarr, resumable
                axes = _stream_axes(src, image, args.axes)
                _warn_anisotropy(name, image, axes)
                try:
                    _stream(src, dst, model, file_psf, axes, params, args)
                except (ValueError, TypeError) as err:
                    errors.refuse(src, err)
                    files.update(1)
                    continue
                files.update(1)
                files.write(f"{src} -> {dst}", file=sys.stdout)
                continue
            axes = args.axes or image.axes or ("YXS" if image.rgb else None)
            if model is not None and axes is None:
                from napari_deconvnet.core.axes import infer_axes

                try:  # a 1-D or 6-D file: this input's refusal, not an internal error
                    axes = infer_axes(image.data.shape, model)
                except ValueError as err:
                    hint = " (on the command line: --axes)" if image.data.ndim >= 2 else ""
                    errors.refuse(src, ValueError(f"{err}{hint}"))
                    files.update(1)
                    continue
            if model is not None:
                _warn_anisotropy(name, image, axes)
            data = image.data if image.lazy else np.asarray(image.data)
            grey = grey_alpha_parts(image, data, axes)  # (a PNG "LA": its grey alone)
            try:
                with progress_bar(args, desc=src.name, unit="step", position=1) as steps:
                    restored = dn.run_method(
                        data if grey is None else grey[0],
                        model if model is not None else name,
                        psf=file_psf,
                        axes=axes if grey is None else grey[1],
                        device=args.device,
                        progress=follow(steps),
                        **params,
                    )
                if grey is not None:
                    restored = grey[2](restored)
            except (ValueError, TypeError) as err:
                errors.refuse(src, err)
                files.update(1)
                continue
            provenance = record(
                "restore",
                method=name,
                params=params,
                model=name if model is not None else None,
                model_name=model.metadata.get("name", name) if model is not None else None,
                psf=_psf_record(args.psf, file_psf, taken, getattr(args, "psf_param", None)),
                axes=axes if grey is None else grey[1],
                # (a grey PNG with alpha: its grey alone, the alpha kept; review)
                grey_alpha=True if grey is not None else None,
                tile=args.tile,
                device=args.device,
                precision=_precision(model, params, args.device),
                lazy=image.lazy,
                source=str(src),
                # a lazy result is computed while it is written
                seconds=None if image.lazy else time.perf_counter() - start,
            )
            meta = layer_meta(image, f"{image.name} restored", provenance, axes)
            try:  # what the writer refuses (a 1-D result, 64-bit values OME-TIFF cannot hold)
                write_output(dst, restored, meta, args, like=image.data.dtype)
            except (ValueError, TypeError) as err:
                errors.refuse(src, err)
                files.update(1)
                continue
            files.update(1)
            files.write(f"{src} -> {dst}", file=sys.stdout)
    errors.finish()
    return 0


def _warn_anisotropy(name: str, image: Any, axes: str | None) -> None:
    """The shipped denoise-3d on a file whose planes lie far apart (its scale): a warning
    line (core.axes.anisotropy_note); the restore goes on."""
    import warnings

    from napari_deconvnet.core.axes import anisotropy_note, z_step_ratio
    from napari_deconvnet.core.conditions import ConditionsWarning

    # the file's scale relabelled with the axes the restore runs with (--axes)
    note = anisotropy_note(name, z_step_ratio(image.geometry(axes).get("scale"), axes))
    if note is not None:
        warnings.warn(f"{image.path}: {note}", ConditionsWarning, stacklevel=2)


def _check_device(device: str) -> None:
    """Refuse a bad ``--device`` once, before the batch, not once per file."""
    from napari_deconvnet.core.devices import resolve_device

    try:
        resolve_device(device)
    except (TypeError, ValueError) as err:
        raise UsageError(f"--device {device}: {cli_words(str(err))}") from err


def _stream_axes(src: Path, image: Any, given: str | None) -> str | None:
    """The axes to stream `src` with, in the layout :func:`~napari_deconvnet.restore_to_zarr`
    reads it: the stored array's, which need not be the reader's.

    The reader reorders some files for napari: an RGB OME-Zarr stored ``CYX``
    reads as ``YXS``. ``restore_to_zarr`` reads the stored array and takes the
    axes a file names (OME-Zarr metadata, TIFF tags) from the file, so `given`
    (``--axes``) names the stored dimensions and is passed as it is. Without it,
    a file the reader reads as RGB but stores ``C`` gets its stored axes with
    ``S`` for ``C`` (restored as colour, as in memory), another file that names
    its axes none (its own), and the rest the reader's axes when its array is
    the stored one, else none (the model's usual layout).
    """
    if given:
        return given
    from napari_deconvnet.core.sources import open_source

    try:
        stored, _, info = open_source(src)
    except (ValueError, OSError):
        return None  # restore_to_zarr says what is wrong with it
    stored_axes = info.get("axes")
    if stored_axes:
        if image.rgb and "C" in stored_axes and "S" not in stored_axes:
            return stored_axes.replace("C", "S")
        return None
    return image.axes if tuple(stored.shape) == tuple(image.data.shape) else None


def _stream(
    src: Path, dst: Path, model: Any, psf: Any, axes: Any, params: dict, args: Any
) -> None:
    """``restore big.zarr -o out.ome.zarr``: :func:`napari_deconvnet.restore_to_zarr`.

    An unfinished target (a killed or stopped run) is resumed when it is the
    same job. With ``--overwrite``, one of other data or settings is replaced
    instead: resuming is tried first, and refused before any block is written.
    """
    import napari_deconvnet as dn
    from napari_deconvnet.core.ome_zarr import staging_folder, unfinished

    refine = sorted(k for k in params if k.startswith("refine_"))
    if refine:  # (it said "restore_to_zarr() got an unexpected keyword argument")
        raise ValueError(
            f"--param {refine[0]}: refining a model to the camera's noise needs the image "
            "in memory, and a .zarr output is streamed block by block; write a .tif "
            "(-o out.tif), or leave the refine_* parameters out"
        )
    if (params.get("ensemble") or 1) > 1:  # (it named dn.restore and restore_to_zarr)
        raise ValueError(
            f"--param ensemble={params['ensemble']}: averaging rotated views needs the image "
            "in memory, and a .zarr output is streamed block by block; write a .tif "
            "(-o out.tif), or leave ensemble out"
        )
    params = dict(params)
    for key, kept in (("decorrelate", False), ("borders", "mirror")):
        value = params.get(key)
        if value not in (None, kept, "auto") and not (key == "decorrelate" and not value):
            print(
                f"warning: --param {key}={value} is not applied to a .zarr output, which is "
                "streamed block by block; write a .tif (-o out.tif) to apply it",
                file=sys.stderr,
            )
            params.pop(key)
    was_unfinished = unfinished(dst)
    with progress_bar(args, desc=src.name, unit="block", position=1) as blocks:
        moved = follow(blocks)
        started = False

        def progress(done: int, total: int) -> None:
            nonlocal started
            started = True
            moved(done, total)

        def run(overwrite: bool) -> None:
            try:
                dn.restore_to_zarr(
                    src,
                    dst,
                    model,
                    psf=psf,
                    axes=axes,
                    device=args.device,
                    overwrite=overwrite,
                    progress=progress,
                    **params,
                )
            except KeyboardInterrupt as err:
                # the unfinished target stays to be resumed: main() says so (it said
                # "no partial output was left" beside a half-written OME-Zarr)
                if unfinished(dst):
                    err.kept = (  # type: ignore[attr-defined]
                        f"the unfinished {dst} is kept: the same command resumes it, "
                        "--overwrite starts it anew"
                    )
                elif unfinished(staging_folder(dst)):
                    err.kept = (  # type: ignore[attr-defined]
                        f"{dst} is as it was; the replacement begun beside it "
                        f"({staging_folder(dst).name}) is kept: the same command resumes it"
                    )
                raise

        if not (was_unfinished and args.overwrite):
            run(bool(args.overwrite))
            return
        try:
            run(False)  # the same job: finish it
        except ValueError as err:
            # refused before any block ran: the target holds another job, which
            # --overwrite replaces (errors about the image itself come back again)
            if started or "overwrite=True" not in str(err):
                raise
            run(True)
