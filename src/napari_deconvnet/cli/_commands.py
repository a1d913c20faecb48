"""The command-line commands: each takes the parsed arguments and returns 0.

They raise :class:`UsageError` (exit status 2) or :class:`Failure` (1); see
:mod:`napari_deconvnet.cli`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ._files import (
    PROG,
    WRITABLE,
    Failure,
    UsageError,
    expand_inputs,
    layer_meta,
    output_paths,
    parse_spec,
    progress_bar,
    psf_from,
    read_input,
    suffix_of,
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

    try:
        info = dn.model_info(args.model)
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from err
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(describe(info, args.model))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import napari_deconvnet as dn

    out = Path(args.output)
    if out.exists() and not args.overwrite:
        raise UsageError(f"{out} exists; pass --overwrite to replace it")
    model = _load_model(args.model)
    options: dict[str, Any] = {}
    fmt = args.format
    if fmt is None and out.suffix.lower() == ".zip":
        fmt = "bioimageio"
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
    try:
        written = dn.export(model, out, format=fmt, **options)
    except (ValueError, TypeError, ImportError) as err:
        raise UsageError(str(err)) from err
    print(f"wrote {written}")
    return 0


def _load_model(name: str) -> Any:
    import napari_deconvnet as dn

    try:
        return dn.load_model(name)
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from err


def cmd_restore(args: argparse.Namespace) -> int:
    import napari_deconvnet as dn
    from napari_deconvnet.core.tiling import infer_axes

    inputs = expand_inputs(args.inputs)
    outputs = output_paths(inputs, Path(args.output), args.format, "restored")
    model = _load_model(args.model)
    psf = psf_from(args.psf, args)
    if psf is None and model.metadata.get("needs_psf"):
        raise UsageError(
            f"model {args.model!r} deconvolves and needs --psf: a PSF image file (.tif, .npy) "
            "or a spec such as gaussian:sigma=2 or airy:na=1.4,pixel_size=65"
        )
    if psf is not None and not model.metadata.get("needs_psf"):
        raise UsageError(
            f"model {args.model!r} is not a deconvolution model and takes no PSF; drop "
            "--psf, or pick a deconvolution model such as --model deconv-2d"
        )
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
            if dst.name.lower().endswith(".zarr") and (
                image.lazy or src.name.lower().endswith(".zarr")
            ):
                # big data: block by block from the file straight into the OME-Zarr, resumable
                _stream(src, dst, model, psf, args.axes or image.axes, args)
                files.update(1)
                files.write(f"{src} -> {dst}", file=sys.stdout)
                continue
            try:
                axes = args.axes or image.axes or infer_axes(image.data.shape, model)
                options = {"axes": axes, "tile": args.tile, "device": args.device, "psf": psf}
                if image.lazy:
                    restored = dn.restore(image.data, model, **options)
                else:
                    with progress_bar(args, desc=src.name, unit="tile", position=1) as tiles:

                        def progress(done: int, total: int, tiles: Any = tiles) -> None:
                            tiles.total = total
                            tiles.n = done
                            tiles.refresh()

                        restored = dn.restore(
                            np.asarray(image.data), model, progress=progress, **options
                        )
            except (ValueError, TypeError) as err:
                raise UsageError(f"{src}: {err}") from err
            provenance = {
                "model": args.model,
                "model_name": model.metadata.get("name", args.model),
                "axes": axes,
                "tile": args.tile,
                "device": args.device,
                "lazy": image.lazy,
                "source": str(src),
                "version": dn.__version__,
            }
            if not image.lazy:  # a lazy result is computed while it is written
                provenance["seconds"] = round(time.perf_counter() - start, 3)
            meta = layer_meta(image, f"{image.name} restored", provenance)
            write_output(dst, restored, meta, args)
            files.update(1)
            files.write(f"{src} -> {dst}", file=sys.stdout)
    if failed:
        raise Failure(f"{failed} of {len(inputs)} inputs could not be read")
    return 0


def _stream(src: Path, dst: Path, model: Any, psf: Any, axes: Any, args: Any) -> None:
    """``restore big.zarr -o out.ome.zarr``: :func:`napari_deconvnet.restore_to_zarr`."""
    import napari_deconvnet as dn

    with progress_bar(args, desc=src.name, unit="block", position=1) as blocks:

        def progress(done: int, total: int) -> None:
            blocks.total = total
            blocks.n = done
            blocks.refresh()

        try:
            dn.restore_to_zarr(
                src,
                dst,
                model,
                psf=psf,
                axes=axes,
                tile=args.tile,
                device=args.device,
                overwrite=bool(args.overwrite) and not (dst / ".napari_deconvnet_job").is_dir(),
                progress=progress,
            )
        except (ValueError, TypeError) as err:
            raise UsageError(f"{src}: {err}") from err


def cmd_synthesize(args: argparse.Namespace) -> int:
    import napari_deconvnet as dn
    from napari_deconvnet.core.noise import synthesize

    inputs = expand_inputs(args.inputs)
    outputs = output_paths(inputs, Path(args.output), args.format, "noisy")
    noise, params = parse_spec(args.noise, "--noise") if args.noise else ("none", {})
    psf = psf_from(args.psf, args)
    for src, dst in zip(inputs, outputs, strict=True):
        if dst.exists() and not args.overwrite:
            print(
                f"skipping {src}: {dst} exists (pass --overwrite to replace it)", file=sys.stderr
            )
            continue
        image = read_input(src, lazy=False)
        try:
            noisy = synthesize(
                np.asarray(image.data), noise, psf=psf, seed=args.seed, clip=args.clip, **params
            )
        except (ValueError, TypeError) as err:
            raise UsageError(f"{src}: {err}") from err
        provenance = {
            "synthesized": {"noise": noise, **params, "seed": args.seed, "clip": args.clip},
            "psf": args.psf,
            "source": str(src),
            "version": dn.__version__,
        }
        write_output(dst, noisy, layer_meta(image, f"{image.name} noisy", provenance), args)
        print(f"{src} -> {dst}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import napari_deconvnet as dn

    out = Path(args.output)
    if out.suffix != ".safetensors":
        raise UsageError(f"{out}: model files end in .safetensors")
    if out.exists() and not args.overwrite:
        raise UsageError(f"{out} exists; pass --overwrite to replace it")
    if args.target and args.noise:
        raise UsageError("give --target (supervised) or --noise (synthetic pairs), not both")
    inputs = [read_input(p).data for p in expand_inputs(args.input)]
    targets = [read_input(p).data for p in expand_inputs(args.target)] if args.target else None
    if targets is not None and len(targets) != len(inputs):
        raise UsageError(f"{len(inputs)} inputs but {len(targets)} targets; give one per input")
    noise = None
    if args.noise:
        name, params = parse_spec(args.noise, "--noise")
        noise = {"model": name, **params}
    options: dict[str, Any] = {}
    if args.network:
        options["network"] = parse_spec("network:" + args.network, "--network")[1]
    if args.name:
        options["name"] = args.name
    layout = "{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}"
    with progress_bar(args, total=1000, desc="training", bar_format=layout) as bar:

        def callback(event: Any) -> None:
            bar.n = int(1000 * min(max(event.progress, 0.0), 1.0))
            shown = {"epoch": event.epoch}
            if event.train_loss is not None:
                shown["loss"] = f"{event.train_loss:.4g}"
            if event.val_loss is not None:
                shown["val"] = f"{event.val_loss:.4g}"
            bar.set_postfix(shown, refresh=False)
            bar.refresh()

        try:
            result = dn.train(
                inputs if len(inputs) > 1 else inputs[0],
                None if targets is None else (targets if len(targets) > 1 else targets[0]),
                model=args.model,
                noise=noise,
                psf=psf_from(args.psf, args),
                epochs=args.epochs,
                max_seconds=args.time,
                patch_size=args.patch_size,
                batch_size=args.batch_size,
                loss=args.loss,
                validation=args.validation,
                seed=args.seed,
                device=args.device,
                callback=callback,
                **options,
            )
        except (ValueError, TypeError) as err:
            raise UsageError(str(err)) from err
    model = result.model
    if args.description:
        model.metadata["description"] = args.description
    dn.save_model(model, out)
    print(result.message)
    best = next((h for h in result.history if h.get("epoch") == result.best_epoch), None)
    if best:
        shown = {k: v for k, v in best.items() if k.startswith("val_") and v is not None}
        if shown:
            print("best: " + ", ".join(f"{k} {v:.4g}" for k, v in shown.items()))
    print(f"wrote {out}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from napari_deconvnet.io import samples

    if args.key is None:
        width = max(map(len, samples.SAMPLES))
        for key, (_, _, description) in samples.SAMPLES.items():
            print(f"{key:<{width}}  {description}")
        return 0
    if args.key not in samples.SAMPLES:
        raise UsageError(f"unknown sample {args.key!r}; use one of {', '.join(samples.SAMPLES)}")
    if args.output is None:
        raise UsageError("-o/--output is needed: the folder to write the sample to")
    folder = Path(args.output)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} is a file; give a folder")
    layers = samples.SAMPLES[args.key][0]()
    for data, meta, _ in layers:
        path = folder / (meta["name"].replace(" ", "_") + ".tif")
        if path.exists() and not args.overwrite:
            print(f"skipping {path}: it exists (pass --overwrite to replace it)", file=sys.stderr)
            continue
        from napari_deconvnet.io.writer import write_tiff

        write_tiff(path, data, {k: v for k, v in meta.items() if k != "visible"})
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
    if args.output is not None:
        raise UsageError("-o/--output is only used with --headless")
    import napari

    viewer = napari.Viewer(title="napari-deconvnet demo")
    viewer.open_sample("napari-deconvnet", args.sample)
    viewer.window.add_plugin_dock_widget("napari-deconvnet", "Restore")
    napari.run()
    return 0


def _demo_headless(args: argparse.Namespace) -> int:
    import napari_deconvnet as dn
    from napari_deconvnet.io import samples

    if args.output is None:
        raise UsageError("--headless needs -o/--output, the TIFF file to write")
    out = Path(args.output)
    if suffix_of(out) not in WRITABLE:
        raise UsageError(f"{out}: name the output *.tif, *.ome.tif, *.ome.zarr or *.npy")
    layers = samples.SAMPLES[args.sample][0]()
    (noisy, meta, _), (clean, _, _) = layers[:2]
    try:
        restored = dn.restore(noisy, args.model, device=args.device)
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from err
    provenance = {
        "model": args.model,
        "device": args.device,
        "source": f"{args.sample} sample",
        "version": dn.__version__,
    }
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
    span = float(clean.max() - clean.min())
    before = _psnr(clean, noisy, span)
    after = _psnr(clean, restored, span)
    print(f"sample {args.sample}: {samples.SAMPLES[args.sample][2]}")
    print(f"PSNR noisy:    {before:6.2f} dB")
    print(f"PSNR restored: {after:6.2f} dB  (model {args.model!r})")
    print(f"wrote {out}")
    return 0


def _psnr(reference: np.ndarray, image: np.ndarray, span: float) -> float:
    mse = float(np.mean((np.asarray(image, np.float64) - reference) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(span**2 / mse)
