"""The command-line commands: each takes the parsed arguments and returns 0.

They raise :class:`UsageError` (exit status 2) or :class:`Failure` (1); see
:mod:`napari_deconvnet.cli`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._files import (
    WRITABLE,
    BatchErrors,
    Failure,
    UsageError,
    calibrated_psf,
    check_output_file,
    check_writable_folder,
    cli_words,
    expand_inputs,
    file_calibrated,
    follow,
    grey_alpha_parts,
    layer_meta,
    not_an_input,
    one_file,
    output_paths,
    parse_spec,
    png_refusal,
    progress_bar,
    psf_from,
    psfs_from,
    read_input,
    suffix_of,
    working_on,
    write_failure,
    write_output,
)

# ----------------------------------------------------------------- commands


def cmd_models(args: argparse.Namespace) -> int:
    import napari_deconvnet as dn

    models = dn.list_models()
    width = max(map(len, models), default=0)
    for name, description in models.items():
        print(f"{name:<{width}}  {description}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import napari_deconvnet as dn
    from napari_deconvnet.io.registry import describe

    _check_model_name(args.model, "the model name")
    from napari_deconvnet.core.bioimageio_read import is_bioimageio_path

    try:
        info = dn.model_info(args.model)
        if not is_bioimageio_path(args.model):
            # the weights and their checksum too: info never shows a file as fine that
            # load_model (restore, train, export) refuses
            dn.load_model(args.model)
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from err
    if args.json:
        from napari_deconvnet.core._validation import finite_or_null

        # standard JSON (a NaN in an older file's record printed as a bare NaN)
        print(json.dumps(finite_or_null(info), indent=2, allow_nan=False))
    else:
        print(describe(info, args.model))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import napari_deconvnet as dn
    from napari_deconvnet.core.export import EXPORT_FORMATS

    if not args.output:
        raise UsageError("-o/--output is empty; name the output file (e.g. model.zip)")
    out = one_file(args.output, "-o", "model.zip")
    fmt = args.format
    if fmt is None:
        fmt = next((f for f, ss in EXPORT_FORMATS.items() if out.suffix.lower() in ss), None)
    if fmt is None:
        known = ", ".join(f"{s} ({f})" for f, ss in EXPORT_FORMATS.items() for s in ss)
        raise UsageError(
            f"cannot tell the export format from {out.name!r}; name the output *.zip "
            f"(bioimageio), *.onnx or *.pt (torchscript), or pass --format (file names: {known})"
        )
    check_output_file(out, args.overwrite, "model" + EXPORT_FORMATS[fmt][0])
    _check_model_name(args.model, "the model name")
    if fmt == "bioimageio":
        _check_license(args.license)
    model = _load_model(args.model)
    options: dict[str, Any] = {}
    if fmt == "bioimageio":
        test_image = None
        if args.test_image:
            if not Path(args.test_image).is_file():
                raise UsageError(f"--test-image {args.test_image}: no such file")
            image = read_input(Path(args.test_image), lazy=False)
            test_image = np.squeeze(np.asarray(image.levels[0], np.float32))
        options = {
            "name": args.name,
            "description": args.description,
            "authors": args.author,
            "license": args.license,
            "test_image": test_image,
            "psf": psf_from(args.psf, args),
        }
    elif any([args.name, args.description, args.author, args.test_image, args.psf]):
        raise UsageError(
            "--name, --description, --author, --test-image and --psf are for --format bioimageio"
        )
    # a missing folder is made, as restore, train and evaluate make theirs (it was
    # refused: "create it first")
    check_writable_folder(out.parent, out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise write_failure(out, err) from err
    try:
        written = dn.export(model, out, format=fmt, **options)
    except (ValueError, TypeError, ImportError) as err:
        message = str(err)  # the API's argument names, as the options that gave them
        if message.startswith("test_image ") and args.test_image:
            message = f"--test-image {args.test_image}: {message}"
        elif message.startswith("psf ") and args.psf:
            message = f"--psf {args.psf}: {message}"
        raise UsageError(message) from err
    except OSError as err:
        raise write_failure(out, err) from err
    print(f"wrote {written}")
    return 0


def _check_license(license: str) -> None:
    """``--license`` is an SPDX identifier that bioimage.io accepts (checked before the work).

    Without ``bioimageio.spec`` (needed for the export anyway) nothing is checked here.
    """
    try:
        from bioimageio.spec.model.v0_5 import DeprecatedLicenseId, LicenseId
    except ImportError:
        return
    for kind in (LicenseId, DeprecatedLicenseId):
        try:
            kind(license)
            return
        except ValueError:  # pydantic's ValidationError is a ValueError
            pass
    raise UsageError(
        f"--license {license!r} is not an SPDX license identifier that bioimage.io accepts "
        "(exact spelling and case), e.g. CC-BY-4.0 (the default), CC0-1.0, MIT, Apache-2.0, "
        "BSD-3-Clause; see https://spdx.org/licenses/"
    )


def _load_model(name: str) -> Any:
    import napari_deconvnet as dn

    try:
        return dn.load_model(name)
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from err


def _made(psf: Any) -> Any:
    """A PSF kind's description (``--psf KIND``) made into its array when it names its
    dimensions; without them, the description itself, which ``synthesize_iter`` makes in
    3D beside a Z axis, as ``dn.synthesize_iter(..., axes=...)`` and ``restore`` do
    (session 73: a z-stack was blurred plane by plane with the kind's 2D default, where
    restore deconvolved it with the 3D one); others as they are."""
    if not isinstance(psf, dict):
        return psf
    from napari_deconvnet.core.psf import make_psf

    kind, ndim = psf["kind"], psf.get("ndim")
    optics = {k: v for k, v in psf.items() if k not in ("kind", "ndim")}
    if ndim is None:
        return {"kind": kind, **optics}
    return np.asarray(make_psf(kind, ndim=ndim, **optics), np.float32)


def cmd_synthesize(args: argparse.Namespace) -> int:
    from napari_deconvnet.core.noise import noise_spec
    from napari_deconvnet.core.operations import drain, synthesize_iter
    from napari_deconvnet.core.provenance import record

    from ._specs import check_params

    inputs = expand_inputs(args.inputs)
    outputs = output_paths(inputs, args.output, args.format, "noisy")
    noise, given = parse_spec(args.noise, "--noise") if args.noise else ("none", {})
    try:
        spec = noise_spec(noise)
    except ValueError as err:
        raise UsageError(f"--noise: {err}") from err
    params = check_params(spec, given, args.param, "--noise" if not args.param else "--param")
    # a PSF kind stays a description: an optical one takes each file's calibration
    psf = psfs_from(args)  # one, or one per channel (--psf repeated)
    errors = BatchErrors("synthesize", len(inputs))
    for k, (src, dst) in enumerate(zip(inputs, outputs, strict=True)):
        working_on(src if len(inputs) > 1 else None)  # (its warnings name it)
        if dst.exists() and not args.overwrite:
            print(
                f"skipping {src}: {dst} exists (pass --overwrite to replace it)", file=sys.stderr
            )
            continue
        try:
            image = read_input(src, lazy=False)
        except Failure as err:
            errors.cannot_read(err)
            continue
        # the first file takes --seed as dn.synthesize does; the k-th [seed, k], its own
        # draw (every file of a batch had the same noise, session 70)
        seed = args.seed if k == 0 or args.seed is None else [args.seed, k]
        axes = args.axes or image.axes or ("YXS" if image.rgb else None)
        refusal = png_refusal(dst, image.data)
        if refusal is not None:
            errors.refuse(src, refusal)
            continue
        file_psf, taken = calibrated_psf(psf, image, src, args)
        file_psf = [_made(p) for p in file_psf] if isinstance(psf, list) else _made(file_psf)
        grey = grey_alpha_parts(image, image.data, axes)  # (a PNG "LA": its grey alone)
        try:
            with progress_bar(args, desc=src.name, unit="plane") as planes:
                noisy = drain(
                    synthesize_iter(
                        np.asarray(image.data) if grey is None else grey[0],
                        spec.name,
                        psf=file_psf,
                        axes=axes if grey is None else grey[1],
                        seed=seed,
                        clip=args.clip,
                        **params,
                    ),
                    progress=follow(planes),
                )
            if grey is not None:
                noisy = grey[2](noisy)
        except (ValueError, TypeError) as err:
            errors.refuse(src, err)
            continue
        provenance = record(
            "synthesize",
            synthesized={"noise": spec.name, **params, "seed": seed, "clip": args.clip},
            psf=args.psf,
            psf_params=list(args.psf_param or []) or None,
            psf_calibration=taken or None,
            axes=axes if grey is None else grey[1],
            # (a grey PNG with alpha: its grey alone, the alpha kept; review)
            grey_alpha=True if grey is not None else None,
            source=str(src),
        )
        # relabelled with --axes, as restore's output is (it kept the file's labels)
        meta = layer_meta(image, f"{image.name} noisy", provenance, args.axes)
        try:  # what the writer refuses (a 1-D image, 64-bit values OME-TIFF cannot hold)
            write_output(dst, noisy, meta, args, like=image.data.dtype)
        except (ValueError, TypeError) as err:
            errors.refuse(src, err)
            continue
        print(f"{src} -> {dst}")
    errors.finish()
    return 0


def model_output(args: argparse.Namespace) -> tuple[Path, Path]:
    """train's and adapt's ``-o`` model file and the autosave beside it, checked against
    ``--overwrite`` and ``--resume`` (an interrupted run is never overwritten silently)."""
    if not args.output:
        raise UsageError("-o/--output is empty; name the model file (e.g. model.safetensors)")
    out = one_file(args.output, "-o", "model.safetensors")
    if out.suffix != ".safetensors":
        raise UsageError(f"{out}: model files end in .safetensors")
    autosave = out.with_name(out.name.removesuffix(".safetensors") + ".autosave.safetensors")
    from napari_deconvnet.core.checkpoint import resume_path

    if args.resume:
        if not resume_path(autosave).is_file():
            raise UsageError(
                f"--resume: no interrupted run of {out} to continue ({resume_path(autosave)} "
                "does not exist); it is written during training and removed when the model "
                "is saved"
            )
    else:
        check_output_file(out, args.overwrite, "model.safetensors")
        if resume_path(autosave).is_file() and not args.overwrite:
            raise UsageError(
                f"an interrupted run of {out} is kept in {autosave}: pass --resume to "
                "continue it, or --overwrite to start again"
            )
    return out, autosave


def cmd_train(args: argparse.Namespace) -> int:
    import napari_deconvnet as dn

    out, autosave = model_output(args)
    if args.target and args.noise:
        raise UsageError("give --target (supervised) or --noise (synthetic pairs), not both")
    _check_model_name(args.model, "--model")
    input_files = expand_inputs(args.input)
    target_files = expand_inputs(args.target) if args.target else []
    input_images = [read_input(p) for p in input_files]
    target_images = [read_input(p) for p in target_files]
    inputs = [image.data for image in input_images]
    targets = [image.data for image in target_images] if args.target else None
    if targets is not None and len(targets) != len(inputs):
        raise UsageError(f"{len(inputs)} inputs but {len(targets)} targets; give one per input")
    noise = None
    if args.noise:
        name, params = parse_spec(args.noise, "--noise")
        noise = {"model": name, **params}
    psf = psfs_from(args, spec=False)  # one, or one per channel (repeated, or a C file)
    psf = file_calibrated(psf, args, input_images[0], input_files[0])
    if psf is None and args.model is not None:
        _train_needs_psf(args.model)
    options: dict[str, Any] = {}
    axes = args.axes or _channel_axes(input_files + target_files, input_images + target_images)
    if axes is not None:  # each channel trains the one single-channel network
        options["axes"] = axes
    if args.network:
        try:
            options["network"] = parse_spec("network:" + args.network, "--network")[1]
        except UsageError:
            raise UsageError(
                f"--network {args.network!r}: expected key=value,key=value (e.g. "
                "ndim=3,base_channels=8; the fields are DeconvNetConfig's)"
            ) from None
    if args.name is not None and not args.name.strip():  # (it was dropped silently)
        raise UsageError("--name is empty; give the model a name, or leave --name out")
    if args.name:
        options["name"] = args.name
    if args.intensity_jitter is not None:
        options["intensity_jitter"] = args.intensity_jitter
    if args.self_supervision is not None:
        if args.target or args.noise:
            raise UsageError(
                "--self-supervision is for training on noisy images alone (no --target, "
                "no --noise)"
            )
        options["blind_spot"] = args.self_supervision
    if args.keep != "yes":
        if args.model is None:
            raise UsageError("--keep is for fine-tuning: give --model (a new network knows none)")
        from napari_deconvnet.core.train_setup import KEEP

        options.update(KEEP[args.keep])
    layout = "{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}"
    with progress_bar(args, total=1000, desc="training", bar_format=layout) as bar:
        callback = progress_callback(bar)
        # the best model so far and the resume state, beside the output (atomically)
        options["autosave"] = str(autosave)
        if args.resume:
            options["resume"] = str(autosave)
        try:
            result = dn.train(
                inputs if len(inputs) > 1 else inputs[0],
                None if targets is None else (targets if len(targets) > 1 else targets[0]),
                model=args.model,
                noise=noise,
                psf=psf,
                epochs=args.epochs,
                max_seconds=args.time,
                patch_size=args.patch_size,
                batch_size=args.batch_size,
                loss=args.loss,
                validation=args.validation,
                seed=args.seed,
                device=args.device,
                precision=args.precision or "auto",
                callback=callback,
                **options,
            )
        except (ValueError, TypeError) as err:
            message = _name_bad_files(str(err), input_files + target_files)
            if message.startswith("axes ") and args.axes:
                message = f"--{message}"
            elif message.startswith("axes "):  # the files' own axes
                message = f"the files' {message}; pass --axes to give others"
            elif message.startswith("noise ") and args.noise:
                message = f"--{message}"
            raise UsageError(_cli_words(message)) from err
        except KeyboardInterrupt as err:
            say_what_is_kept(autosave, "its .resume file", err)
            raise
    save_result(result, out, autosave, args.description)
    return 0


def say_what_is_kept(
    autosave: Path, files: str, err: BaseException, others: Sequence[Path] = ()
) -> None:
    """After Ctrl-C: where an interrupted run is kept and how to continue it, as the
    words :func:`~napari_deconvnet.cli.main` prints (``err.kept``; it said "no partial
    output was left" after them). Stopped before a resume state was written, the
    autosave and `others` (the adapt record) are removed: --resume cannot use them."""
    from napari_deconvnet.core.checkpoint import resume_path

    if resume_path(autosave).is_file():
        err.kept = (  # type: ignore[attr-defined]
            f"the run so far is kept in {autosave} (and {files}): run the same command "
            "with --resume to continue it"
        )
    else:
        for path in (autosave, *others):
            path.unlink(missing_ok=True)


def progress_callback(bar: Any) -> Callable[[Any], None]:
    """The engine's events (train, adapt) shown on a progress bar: epoch, loss, validation."""

    def callback(event: Any) -> None:
        bar.n = int(1000 * min(max(event.progress, 0.0), 1.0))
        shown = {"epoch": event.epoch}
        if event.train_loss is not None:
            shown["loss"] = f"{event.train_loss:.4g}"
        if event.val_loss is not None:
            shown["val"] = f"{event.val_loss:.4g}"
        bar.set_postfix(shown, refresh=False)
        bar.refresh()

    return callback


def save_result(result: Any, out: Path, autosave: Path, description: str | None) -> None:
    """Write a finished run's model to `out` (atomically), remove its autosave files, and
    say how it ended and its best validation scores."""
    import napari_deconvnet as dn
    from napari_deconvnet.core.adapt_record import record_path
    from napari_deconvnet.core.checkpoint import resume_path

    model = result.model
    if description:
        model.metadata["description"] = description
    try:
        dn.save_model(model, out)
    except OSError as err:
        raise write_failure(
            out,
            err,
            f"; the trained model was not saved (the run is kept in {autosave}: the same "
            "command with --resume writes it)",
        ) from err
    # the model is written: the autosave, its resume state (and an adaptation's record) go
    for done in (autosave, resume_path(autosave), record_path(autosave)):
        done.unlink(missing_ok=True)
    print(result.message)
    best = next((h for h in result.history if h.get("epoch") == result.best_epoch), None)
    if best:
        shown = {k: v for k, v in best.items() if k.startswith("val_") and v is not None}
        if shown:
            print("best: " + ", ".join(f"{k} {v:.4g}" for k, v in shown.items()))
    print(f"wrote {out}")


def _channel_axes(paths: list[Path], images: list[Any]) -> str | None:
    """The files' axes when they have a channel axis (C, or S for RGB), else None.

    ``dn.train`` then trains each channel as an image of its own (as restore
    applies the model to each channel), instead of taking the first axes as
    samples and the last two as Y and X. Every file must have the same axes.
    """
    layouts = [image.axes or ("YXS" if image.rgb else None) for image in images]
    if not any(a and ("C" in a or "S" in a) for a in layouts):
        return None
    first = layouts[0]
    for path, layout in zip(paths, layouts, strict=True):
        if layout != first:
            raise UsageError(
                f"{paths[0]} has axes {first or 'unknown'} but {path} has "
                f"{layout or 'unknown'}: files with a channel axis (C, or S for RGB) train "
                "each channel as an image of its own, so every --input and --target file "
                "must have the same axes; train the others in another run"
            )
    return first


#: dn.train's argument names and the train command's options for them
_TRAIN_OPTIONS = {
    "patch_size": "--patch-size",
    "batch_size": "--batch-size",
    "max_seconds": "--time",
    "blind_spot": "--self-supervision",
    "intensity_jitter": "--intensity-jitter",
}


def _cli_words(message: str) -> str:
    """`message` from dn.train with its argument names as the command's options
    ("lower patch_size (patch_size=None tried ...)" -> "lower --patch-size ...")."""
    import re

    for name, option in _TRAIN_OPTIONS.items():
        message = re.sub(rf"(?<![\w-]){name}(?![\w])", option, message)
    message = message.replace(
        "give either targets (supervised pairs) or noise/psf", "give either --target "
        "(supervised pairs) or --noise/--psf"
    )  # fmt: skip
    # (the inputs' files in the order given)
    message = re.sub(r"^inputs\[(\d+)\] is", r"input file \1 (counted from 0) is", message)
    return cli_words(re.sub(r"^inputs is", "the input is", message))


def _name_bad_files(message: str, paths: list[Path]) -> str:
    """`message` from dn.train, with the files that hold NaN or infinite values named."""
    if "NaN or infinite" not in message:
        return message
    bad = []
    for path in paths:
        try:
            data = read_input(path, lazy=False).data
        except Failure:
            continue
        if not np.isfinite(np.asarray(data)).all():
            bad.append(str(path))
    return f"{', '.join(bad)}: {message}" if bad else message


def _check_model_name(name: str | None, what: str) -> None:
    """An empty model name or path (which would name the current folder)."""
    if name is not None and not name.strip():
        raise UsageError(
            f"{what} is empty; give a shipped model name (see the models command) or a "
            ".safetensors model file"
        )


def _train_needs_psf(model: str) -> None:
    """A deconvolution model to fine-tune without --psf: say so in the CLI's words."""
    from napari_deconvnet.core.operations import method_spec

    try:
        spec = method_spec(model)
    except (TypeError, ValueError, OSError):
        return  # dn.train says what is wrong with it
    if spec.needs_psf:
        raise UsageError(
            f"model {model!r} deconvolves and needs --psf: the PSF the --input images are "
            "blurred with (with --noise, the one the synthetic pairs get), a PSF image file "
            "(.tif, .npy) or a kind such as --psf gaussian:sigma=2"
        )


def cmd_sample(args: argparse.Namespace) -> int:
    from napari_deconvnet.io import samples

    if args.key is None:
        if args.output is not None or args.overwrite:
            raise UsageError(
                "-o/--output and --overwrite need a sample name: napari-deconvnet sample NAME "
                f"-o FOLDER, with NAME one of {', '.join(samples.SAMPLES)}"
            )
        width = max(map(len, samples.SAMPLES))
        for key, (_, _, description) in samples.SAMPLES.items():
            print(f"{key:<{width}}  {description}")
        return 0
    if args.key not in samples.SAMPLES:
        raise UsageError(f"unknown sample {args.key!r}; use one of {', '.join(samples.SAMPLES)}")
    if args.output is None:
        raise UsageError("-o/--output is needed: the folder to write the sample to")
    if not args.output:
        raise UsageError("-o/--output is empty; name the folder to write the sample to")
    folder = Path(args.output)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} is a file; give a folder")
    check_writable_folder(folder, folder)
    from napari_deconvnet.io.writer import write_tiff

    layers = samples.SAMPLES[args.key][0]()
    paths = [folder / (meta["name"].replace(" ", "_") + ".tif") for _, meta, _ in layers]
    for path in paths:  # before writing any: a folder in the way is never replaced
        if path.is_dir():
            raise UsageError(f"cannot write {path}: it is a folder; remove it or give another -o")
    for path, (data, meta, _) in zip(paths, layers, strict=True):
        if path.exists() and not args.overwrite:
            print(f"skipping {path}: it exists (pass --overwrite to replace it)", file=sys.stderr)
            continue
        try:
            write_tiff(path, data, {k: v for k, v in meta.items() if k != "visible"})
        except OSError as err:
            raise write_failure(path, err) from err
        print(f"wrote {path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from napari_deconvnet.io import samples

    if args.sample not in samples.SAMPLES:
        raise UsageError(
            f"unknown sample {args.sample!r}; use one of {', '.join(samples.SAMPLES)}"
        )
    if args.headless:
        return _demo_headless(args)
    if args.output is not None or args.overwrite:
        raise UsageError("-o/--output and --overwrite are only used with --headless")
    import napari

    viewer = napari.Viewer(title="napari-deconvnet demo")
    viewer.open_sample("napari-deconvnet", args.sample)
    viewer.window.add_plugin_dock_widget("napari-deconvnet", "Restore")
    napari.run()
    return 0


def _needs_psf(model: str) -> bool:
    """Whether `model` (a shipped name or a file) deconvolves (takes a PSF)."""
    from napari_deconvnet.core.kinds import kind_of
    from napari_deconvnet.core.persistence import load_model

    try:
        return bool(kind_of(load_model(model)).needs_psf)
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from err


def _demo_headless(args: argparse.Namespace) -> int:
    import napari_deconvnet as dn
    from napari_deconvnet.io import samples

    if args.output is None:
        raise UsageError("--headless needs -o/--output, the TIFF file to write")
    out = one_file(args.output, "-o", "restored.tif")
    if suffix_of(out) not in WRITABLE or suffix_of(out) == ".png":  # float32 samples
        raise UsageError(f"{out}: name the output *.tif, *.ome.tif, *.ome.zarr or *.npy")
    if out.exists() and not args.overwrite:  # (it was replaced without a word)
        raise UsageError(f"{out} exists; pass --overwrite to replace it")
    not_an_input([out], [])  # its folder writable, before any work
    layers = samples.SAMPLES[args.sample][0]()
    (noisy, meta, _), (clean, _, _) = layers[:2]
    # the sample's PSF layer, where it has one (blurred samples)
    from napari_deconvnet.core.provenance import KEY

    psf_layer = next(
        ((d, m) for d, m, _ in layers[2:] if m.get("metadata", {}).get(KEY, {}).get("psf")),
        None,
    )
    psf, axes = None, None
    if psf_layer is not None:
        psf = psf_layer[0]
        labels = "".join(str(a).upper() for a in meta.get("axis_labels") or ())
        if "C" in labels:  # one PSF per channel (the two_colour sample)
            psf, axes = list(psf), labels
    model = args.model
    if model is None:  # as the Restore widget preselects beside the sample's layers
        from napari_deconvnet.core.restoration import default_deconvolution_model, spatial_ndim

        named = "".join(str(a).upper() for a in meta.get("axis_labels") or ())
        named = named if named and set(named) <= set("TZCYXS") else None
        dims = spatial_ndim(noisy, named)  # (a sample's TYX stack is planes)
        model = default_deconvolution_model(psf, dims) if psf is not None else "default"
    needs = psf is not None and _needs_psf(model)
    try:
        restored = dn.restore(
            noisy, model, psf=psf if needs else None, axes=axes, device=args.device
        )
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from err
    from napari_deconvnet.core.provenance import record

    provenance = record(
        "restore",
        method=model,
        model=model,
        device=args.device,
        source=f"{args.sample} sample",
        psf={"layer": "the sample's PSF", "shape": list(np.shape(psf_layer[0]))}
        if needs
        else None,
    )
    geometry = {k: meta[k] for k in ("scale", "units", "axis_labels") if k in meta}
    write_output(
        out,
        restored,
        {
            "name": f"{meta['name']} restored",
            "metadata": {"napari_deconvnet": provenance},
            **geometry,
        },
        args,
    )
    if axes is not None:  # each channel in its own range, as dn.measure takes a C axis
        before = float(dn.measure(noisy, clean, axes=axes).psnr)
        after = float(dn.measure(restored, clean, axes=axes).psnr)
    else:
        span = float(clean.max() - clean.min())
        before = float(dn.psnr(noisy, clean, data_range=span))
        after = float(dn.psnr(restored, clean, data_range=span))
    print(f"sample {args.sample}: {samples.SAMPLES[args.sample][2]}")
    print(f"PSNR noisy:    {before:6.2f} dB")
    with_psf = " with the sample's PSF" if needs else ""
    print(f"PSNR restored: {after:6.2f} dB  (model {model!r}{with_psf})")
    print(f"wrote {out}")
    return 0
