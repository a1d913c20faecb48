"""``napari-deconvnet adapt``: :func:`napari_deconvnet.adapt` on an image file.

A shipped model is adapted to one image's microscope, its PSF (``--psf``,
once or once per channel) and the noise found in it (or ``--noise``), with
no clean data, and saved; the run autosaves beside the output and
``--resume`` continues it after a crash or a killed job, as ``train`` does.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._commands import (
    _check_model_name,
    _cli_words,
    model_output,
    progress_callback,
    save_result,
    say_what_is_kept,
)
from ._files import (
    UsageError,
    file_calibrated,
    parse_spec,
    progress_bar,
    psfs_from,
    read_input,
)


def cmd_adapt(args: argparse.Namespace) -> int:
    from napari_deconvnet.core.adapt import adapt_iter
    from napari_deconvnet.core.train_types import run_events

    out, autosave = model_output(args)
    _check_model_name(args.model, "--model")
    if args.time is None and args.steps is None:
        raise UsageError("give --time SECONDS (120 is typical) or --steps N, or both")
    if not Path(args.image).exists():  # a usage error, as restore and train say it
        raise UsageError(f"{args.image}: no such file")
    image = read_input(args.image, lazy=False)
    noise: Any = "auto"
    if args.noise != "auto":
        name, params = parse_spec(args.noise, "--noise")
        noise = {"noise": name, **params}
    psf = psfs_from(args, spec=False)  # one, or one per channel (repeated, or a C file)
    psf = file_calibrated(psf, args, image, Path(args.image))
    axes = args.axes or (image.axes if image.axes and "C" in image.axes else None)
    options: dict[str, Any] = {"autosave": str(autosave)}
    if args.resume:
        options["resume"] = str(autosave)
    for key in ("scenes", "seed", "patch_size", "batch_size", "steps"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    layout = "{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}"
    with progress_bar(args, total=1000, desc="adapting", bar_format=layout) as bar:
        try:
            gen = adapt_iter(
                args.model,
                image.data,
                psf=psf,
                noise=noise,
                seconds=args.time,
                axes=axes,
                device=args.device,
                precision=args.precision or "auto",
                **options,
            )
            result = run_events(gen, progress_callback(bar))
        except (ValueError, TypeError) as err:
            message = str(err)
            if message.startswith("axes ") and not args.axes:  # the file's own axes
                message = f"the file's {message}; pass --axes to give others"
            raise UsageError(_cli_words(message)) from err
        except KeyboardInterrupt as err:
            from napari_deconvnet.core.adapt_record import record_path

            say_what_is_kept(
                autosave, "its .resume and .adapt files", err, [record_path(autosave)]
            )
            raise
    save_result(result, out, autosave, args.description)
    return 0
