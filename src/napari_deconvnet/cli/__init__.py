"""The ``napari-deconvnet`` command line, on the same public API as the widgets.

Examples
--------
::

    napari-deconvnet models
    napari-deconvnet sample fluorescence -o data/
    napari-deconvnet restore data/cells_noisy.tif -o restored/
    napari-deconvnet restore blurred.tif -o sharp.tif --method richardson-lucy \\
        --param iterations=20 --psf gaussian --psf-param sigma=2
    napari-deconvnet methods               # every method, noise model and PSF kind
    napari-deconvnet restore "raw/*.tif" stacks/ -o restored/ --axes ZYX --format ome.zarr
    napari-deconvnet evaluate restored/cells_noisy_restored.tif data/cells_clean.tif --json
    napari-deconvnet train --input data/cells_noisy.tif --time 60 -o mine.safetensors
    napari-deconvnet train --input clean.tif --noise poisson-gaussian:peak=40,read_noise=2 \\
        --epochs 20 -o camera.safetensors
    napari-deconvnet adapt blurred.tif --psf psf.tif --time 120 -o adapted.safetensors
    napari-deconvnet synthesize clean.tif -o noisy.tif --noise gaussian:sigma=0.1 --seed 1
    napari-deconvnet info mine.safetensors
    napari-deconvnet export mine.safetensors -o mine.zip --author "A. Person"
    napari-deconvnet export denoise-2d -o denoise.onnx
    napari-deconvnet demo                  # opens napari with a sample and the Restore widget

Exit status: 0 on success; 2 for usage errors (bad options, missing or
unsupported files, unknown or unreadable models, options that do not fit an
image); 1 for failures while working (unreadable image data, I/O errors);
130 when interrupted (Ctrl-C), which leaves no partial output: every file is
written to a temporary name and renamed when complete, but for a streamed
``.ome.zarr`` restore, whose unfinished target is kept for the same command to
resume (the message says so). Errors are one line;
``--debug`` adds the traceback.

napari is imported only by ``demo`` without ``--headless``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path

from . import _adapt, _restore, _specs
from . import _commands as commands
from . import _evaluate as evaluate
from ._files import FORMATS, PROG, Failure, UsageError

__all__ = ["main"]

#: ``train --keep``'s choices: the keys of ``core.train_setup.KEEP`` (not imported
#: here, so that the parser needs no torch; a test checks that they agree).
KEEP_NAMES = ("yes", "weakly", "no")
TRAIN_PRECISION_HELP = (
    "auto (default): float16 with loss scaling on CUDA, float32 elsewhere; bfloat16: "
    "2.4-2.7x the steps per second on CPUs with AMX, level when fine-tuning, worse "
    "from scratch in one measured case (README)"
)


# ------------------------------------------------------------------- parser


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]  # noqa: ANN001
        """As argparse's, but extra arguments are the command's error, with its help."""
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            commands = getattr(self, "commands", {})
            where = commands.get(getattr(parsed, "command", None), self)
            where.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _tile(text: str) -> int | tuple[int, ...]:
    """``--tile``: one size for every spatial axis, or one per axis (``16x256x256`` or
    ``16,256,256``: a stack of fewer planes than the lateral tile needs its own Z)."""
    parts = [p.strip() for p in re.split(r"[x,]", text.strip().lower())]
    if len(parts) == 1:
        return _positive_int(parts[0])
    if not 2 <= len(parts) <= 3 or not all(parts):  # ("x32", "16,,32": a size left out)
        raise argparse.ArgumentTypeError(
            f"expected a tile size or one per spatial axis (e.g. 16x256x256), got {text!r}"
        )
    return tuple(_positive_int(p) for p in parts)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not 0 < value < float("inf"):  # inf would never end a run bounded by time alone
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


#: The largest seed: what the random generators of numpy and torch all take.
MAX_SEED = 2**63 - 1


def _seed(text: str, most: int | None = MAX_SEED) -> int:
    """A --seed: an integer from 0 to `most` (training's seeds are torch's, at most
    :data:`MAX_SEED`; synthesize's numpy's, of any size: `most` None)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0 or (most is not None and value > most):
        accepted = ">= 0" if most is None else f"from 0 to {most}"
        raise argparse.ArgumentTypeError(f"expected an integer {accepted}, got {text!r}")
    return value


def _noise_seed(text: str) -> int:
    return _seed(text, None)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction, got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}")
    return value


def _pair(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH, got {text!r}") from None
    # (refused once, here, not once per file of a batch; an infinite side is no bound)
    if math.isnan(low) or math.isnan(high) or low > high:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH with LOW <= HIGH, got {text!r}")
    return low, high


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
    )
    common.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="no progress bars, nor notes of what was chosen for you (warnings and errors stay)",
    )
    parser = _Parser(
        prog=PROG,
        description="Restore (denoise, deconvolve) images with deconvolution networks.",
        epilog="Exit status: 0 success, 1 failure, 2 usage error, 130 interrupted.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parser.commands = sub.choices  # type: ignore[attr-defined]

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, parents=[common])

    def param_option(p: argparse.ArgumentParser, help: str) -> None:
        p.add_argument(
            "--param", action="append", default=[], metavar="NAME=VALUE", help=help + "; repeat"
        )

    def psf_options(p: argparse.ArgumentParser, what: str, channels: bool = False) -> None:
        what = f"{what}: a PSF image file (.tif, .npy) or a PSF kind[:k=v,...]"
        if channels:
            what += "; repeat it to give one PSF per channel, in the order of the C axis"
        p.add_argument(
            "--psf",
            default=None,
            action="append" if channels else "store",
            metavar="PSF",
            help=_specs.choices_help("psf", what),
        )
        p.add_argument(
            "--psf-param",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="a parameter of the PSF kind, e.g. sigma=2 (see the methods command); repeat",
        )

    def model_output(p: argparse.ArgumentParser, kept: str) -> None:
        """train's and adapt's model file, --overwrite and --resume (`kept`: the autosave's
        other files)."""
        p.add_argument("-o", "--output", required=True, metavar="MODEL.safetensors")
        p.add_argument("--overwrite", action="store_true", help="replace an existing model file")
        p.add_argument(
            "--resume",
            action="store_true",
            help="continue a run that was interrupted (crash, Ctrl-C, a killed job): it "
            f"autosaves beside the output (OUT.autosave.safetensors and {kept}, removed "
            "when the model is written); run the same command with --resume",
        )

    def device(p: argparse.ArgumentParser) -> None:
        p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")

    def precision(p: argparse.ArgumentParser, text: str) -> None:
        from ..core.model_specs import PRECISIONS

        p.add_argument(
            "--precision",
            choices=PRECISIONS,
            default=None,
            help=text,
        )

    def output_files(p: argparse.ArgumentParser, tag: str) -> None:
        p.add_argument(
            "-o",
            "--output",
            required=True,
            metavar="OUT",
            help="output file (.tif, .ome.tif, .ome.zarr, .npy, or .png for 8- and 16-bit "
            "photos: the input's type, rounded and clipped) for one input, or a folder "
            f"(files named STEM_{tag}.tif, or see --format)",
        )
        p.add_argument(
            "--format", choices=list(FORMATS), default=None, help="format of files in a folder"
        )
        p.add_argument("--overwrite", action="store_true", help="replace existing outputs")

    p = command("restore", "restore image files (batch over files, folders and globs)")
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="IN",
        help="TIFF/OME-TIFF, PNG, JPEG, .npy files, .zarr folders, folders of images or globs",
    )
    output_files(p, "restored")
    p.add_argument(
        "--method",
        default=None,
        metavar="NAME",
        help=_specs.choices_help(
            "method",
            "a shipped model (see the models command; default: default), a .safetensors "
            "model file, or a classical method",
        ),
    )
    p.add_argument(
        "--model", default=None, help="the older name of --method (models and model files)"
    )
    param_option(p, "the method's parameters (see the methods command), e.g. iterations=20")
    p.add_argument(
        "--axes",
        default=None,
        help="one letter per dimension from TZCYXS, e.g. ZYX (default: the file's, or guessed); "
        "classical methods run on every YX plane, or ZYX volume where the axes have a Z",
    )
    p.add_argument(
        "--tile",
        type=_tile,
        default=None,
        help="models: tile size in pixels, or one per spatial axis as ZxYxX (auto)",
    )
    psf_options(
        p,
        "for deconvolution methods (without --method: deconv-2d, or deconv-3d for a 3D PSF)",
        channels=True,
    )
    device(p)
    precision(
        p,
        "models: auto (default): float16 on CUDA, float32 on the CPU (the same numbers "
        "whatever the tiles or blocks); bfloat16: 1.1-2x faster on CPUs with bfloat16 "
        "units (AMX, AVX512-BF16), rounding that depends on the tiles",
    )
    p.set_defaults(func=_restore.cmd_restore)

    p = command("train", "train a model on image files and save it")
    p.add_argument(
        "--input",
        nargs="+",
        action="extend",
        required=True,
        metavar="IN",
        help="training images, folders or globs (repeatable)",
    )
    p.add_argument(
        "--target",
        nargs="+",
        action="extend",
        default=None,
        metavar="T",
        help="clean targets, one per input, in the same order (repeatable)",
    )
    p.add_argument(
        "--noise",
        default=None,
        metavar="SPEC",
        help=_specs.choices_help(
            "noise",
            "inputs are clean: make noisy pairs with NAME[:k=v,...], e.g. "
            "poisson-gaussian:peak=40,read_noise=2",
        ),
    )
    psf_options(
        p,
        "blur clean inputs by this PSF; with --model deconv-2d/deconv-3d and --target, the "
        "PSF the inputs are blurred with (the model's classical channel uses it)",
        channels=True,
    )
    p.add_argument("--epochs", type=_positive_int, default=None, help="number of epochs")
    p.add_argument(
        "--time", type=_positive_float, default=None, metavar="SECONDS", help="time budget"
    )
    model_output(p, "its .resume file")
    p.add_argument("--model", default=None, help="fine-tune this model (name or file)")
    p.add_argument(
        "--keep",
        choices=KEEP_NAMES,
        default="yes",
        help="fine-tuning: keep what the model knew (yes: dn.train's L2-SP pull and "
        "rehearsal; weakly: l2sp 10; no: a specialist of your data, l2sp 0 and no "
        "rehearsal, whose restores of unlike data warn)",
    )
    p.add_argument(
        "--network", default=None, metavar="SPEC", help="new network, e.g. ndim=3,base_channels=8"
    )
    p.add_argument(
        "--patch-size",
        type=_positive_int,
        default=None,
        help="patch side in pixels (default: automatic, 64 in 2D and 32x64x64 in 3D, "
        "smaller for small images)",
    )
    p.add_argument("--batch-size", type=_positive_int, default=16)
    p.add_argument(
        "--loss", default="mse", help="mse, l1, ssim, mse+ssim, balanced-mse or hdr-mse"
    )
    p.add_argument("--validation", type=_fraction, default=0.1, help="fraction held out")
    p.add_argument(
        "--self-supervision",
        choices=("neighbor2neighbor", "random", "median"),
        default=None,
        help="without --target and --noise: how the noise is hidden from the network "
        "(default: neighbor2neighbor for a new network, random (Noise2Void's blind spot) "
        "when fine-tuning; median: N2V2's replacement)",
    )
    p.add_argument(
        "--intensity-jitter",
        type=float,
        default=None,
        metavar="J",
        help="random gain (1/(1+J) to 1+J) and offset (within 0.4 J) of each patch's input "
        "and target, so a new network is not thrown by other images' intensities; default "
        "0.25 for a new denoiser, 0 when fine-tuning",
    )
    p.add_argument(
        "--axes",
        default=None,
        help="one letter per dimension from TZCYXS, the same for every file, e.g. YXC "
        "(default: the files' own where they have a channel axis, C or S: each channel "
        "trains the one single-channel network, as restore applies it; else leading axes "
        "are samples)",
    )
    p.add_argument("--seed", type=_seed, default=0, help="seeds patches, noise and weights")
    p.add_argument("--name", default=None, help="model name stored in the file")
    p.add_argument("--description", default=None, help="one-line description stored in the file")
    device(p)
    precision(p, TRAIN_PRECISION_HELP)
    p.set_defaults(func=commands.cmd_train)

    p = command(
        "adapt", "adapt a shipped model to an image's PSF and noise (no clean data) and save it"
    )
    p.add_argument("image", help="the image to adapt to (TIFF, OME-TIFF, OME-Zarr, .npy)")
    psf_options(
        p,
        "the microscope's PSF (the adapted model deconvolves it; none: a denoiser adapts to "
        "the noise alone)",
        channels=True,
    )
    p.add_argument(
        "--model",
        default=None,
        help="the model to adapt (default: deconv-2d/deconv-3d with a PSF, else denoise-2d)",
    )
    p.add_argument(
        "--noise",
        default="auto",
        metavar="SPEC",
        help="auto (estimated from the image, the default) or the camera's noise as "
        "NAME[:k=v,...] in the image's units, e.g. poisson-gaussian:gain=2,offset=100,"
        "read_noise=3",
    )
    p.add_argument(
        "--time",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="wall-clock budget of the whole run (120 s is typical on a laptop CPU)",
    )
    p.add_argument(
        "--steps",
        type=_positive_int,
        default=None,
        help="a bound on the optimisation steps, rounded up to whole epochs of 25 steps "
        "(fewer than 25: one epoch of that many)",
    )
    p.add_argument(
        "--scenes",
        choices=("both", "image", "phantoms"),
        default=None,
        help="where the synthetic pairs' structures come from (default both: half the "
        "package's phantoms, half the image as the model restores it)",
    )
    p.add_argument(
        "--axes",
        default=None,
        help="one letter per dimension from TZCYX, e.g. CYX (default: the file's own where "
        "it has a C axis; needed with one PSF per channel)",
    )
    p.add_argument("--patch-size", type=_positive_int, default=None, help="patch side")
    p.add_argument("--batch-size", type=_positive_int, default=None)
    p.add_argument("--seed", type=_seed, default=None, help="seeds phantoms, noise and weights")
    model_output(p, "its .resume and .adapt files")
    p.add_argument("--description", default=None, help="one-line description stored in the file")
    device(p)
    precision(p, TRAIN_PRECISION_HELP)
    p.set_defaults(func=_adapt.cmd_adapt)

    p = command("synthesize", "degrade clean images with a noise model and an optional PSF")
    p.add_argument("inputs", nargs="+", metavar="IN", help="clean images, folders or globs")
    output_files(p, "noisy")
    p.add_argument(
        "--noise",
        default=None,
        metavar="NAME",
        help=_specs.choices_help(
            "noise",
            "a noise model, optionally NAME:k=v,... (default: none, only the PSF)",
        ),
    )
    param_option(p, "a parameter of the noise model (see the methods command), e.g. sigma=0.1")
    psf_options(p, "blur first", channels=True)
    p.add_argument(
        "--axes",
        default=None,
        help="one letter per dimension from TZCYXS (default: the file's): noise and blur "
        "per YX plane, or ZYX volume where the axes have a Z",
    )
    p.add_argument(
        "--seed",
        type=_noise_seed,
        default=0,
        help="seeds the noise: the first file takes SEED (as dn.synthesize(seed=SEED)), "
        "the k-th of several [SEED, k], each its own draw",
    )
    p.add_argument("--clip", type=_pair, default=None, metavar="LOW,HIGH")
    p.set_defaults(func=commands.cmd_synthesize)

    p = command("evaluate", "print SSIM and PSNR of a result against a reference")
    evaluate.add_arguments(p)

    p = command("info", "show a model file's metadata (or a shipped model's)")
    p.add_argument("model")
    p.add_argument("--json", action="store_true", help="print the raw metadata as JSON")
    p.set_defaults(func=commands.cmd_info)

    p = command("export", "export a model as a bioimage.io package, ONNX or TorchScript")
    p.add_argument("model", help="shipped model name, .safetensors file or bioimage.io package")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="out.zip, .onnx or .pt")
    p.add_argument(
        "--format",
        choices=["bioimageio", "onnx", "torchscript"],
        default=None,
        help="default: from the output's suffix (.zip, .onnx, .pt)",
    )
    p.add_argument("--name", default=None, help="bioimageio: package name (default: the model's)")
    p.add_argument("--description", default=None, help="bioimageio: default: the model's")
    p.add_argument("--author", action="append", default=None, help="bioimageio: repeatable")
    p.add_argument("--license", default="CC-BY-4.0", help="bioimageio: SPDX identifier")
    p.add_argument("--test-image", default=None, metavar="IMAGE", help="bioimageio: test input")
    p.add_argument("--psf", default=None, help="bioimageio, deconvolution models: the test PSF")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=commands.cmd_export)

    p = command("models", "list the shipped models")
    p.set_defaults(func=commands.cmd_models)

    p = command("methods", "list the methods, noise models and PSF kinds with their parameters")
    p.add_argument("family", nargs="?", choices=["method", "noise", "psf"], default=None)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--no-models", action="store_true", help="leave the shipped models out (faster)"
    )
    p.set_defaults(func=_specs.cmd_methods)

    p = command("sample", "list the samples, or write one (degraded, clean, PSF) as TIFFs")
    p.add_argument("key", nargs="?", default=None)
    p.add_argument("-o", "--output", default=None, metavar="FOLDER")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=commands.cmd_sample)

    p = command("demo", "open napari with a sample and the Restore widget")
    p.add_argument("--sample", default="noisy_camera", help="sample key (see the sample command)")
    p.add_argument(
        "--headless",
        action="store_true",
        help="no window: restore the sample, write it and print PSNR before and after",
    )
    p.add_argument("-o", "--output", default=None, metavar="OUT.tif", help="with --headless")
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing --output (with --headless)"
    )
    p.add_argument(
        "--model",
        default=None,
        help="shipped model name or .safetensors file (default: as the Restore widget "
        "chooses: the deconvolution model with the sample's PSF where it has one, else the "
        "default denoiser)",
    )
    device(p)
    p.set_defaults(func=commands.cmd_demo)
    return parser


def _one_line(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return " ".join(text.split())


def _same_file(a: str, b: str) -> bool:
    """Whether the paths `a` and `b` name one file."""
    try:
        return bool(b) and Path(a).resolve() == Path(b).resolve()
    except (OSError, ValueError):
        return False


def _plain_warnings(where: str) -> None:
    """Our own warnings (data unlike a model's training data, a PSF clipped) in CLI words.

    Warnings raised from this package's code print as one ``PROG COMMAND:
    warning: ...`` line, without a source location; others as Python shows them.
    """
    from napari_deconvnet.core.conditions import ConditionsWarning

    shown = warnings.showwarning
    package = str(Path(__file__).resolve().parent.parent)

    said: set[tuple[str, str]] = set()  # (each file's warnings once: filtered "always")
    warnings.simplefilter("always", UserWarning)

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        from ._files import current_input

        key = (str(current_input()), f"{category.__name__}: {message}")
        if key in said:
            return
        said.add(key)
        inside = str(Path(filename).resolve()).startswith(package)
        ours = inside
        # a warning that names its caller's line (core._validation.user_stacklevel) names
        # the console script: ours too (session 73: "napari-deconvnet:8: UserWarning:
        # ..." beside the "train: warning:" lines)
        ours = ours or _same_file(filename, sys.argv[0])
        # (a RuntimeWarning of the package's own code too: a training stopped on a NaN)
        plain = issubclass(category, UserWarning) or (
            inside and issubclass(category, RuntimeWarning)
        )
        if issubclass(category, ConditionsWarning) or (ours and plain):
            from ._files import cli_words

            src = current_input()  # (in a batch: the file it is about)
            text = cli_words(str(message))  # (the core's argument names as options)
            named = src is not None and not text.startswith(f"{src}:")  # (said once)
            print(f"{where}: {f'{src}: ' if named else ''}warning: {text}", file=sys.stderr)
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0, 1, 2 or 130)."""
    args = _parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    where = f"{PROG} {args.command}"
    tiff_log = logging.getLogger("tifffile")
    propagate = tiff_log.propagate
    if not debug:  # a damaged TIFF's own log lines ("invalid offset to first page"): the
        # error line that follows says it once, naming the file (the reader still sees
        # them: its handler on this logger judges a truncated file by them)
        tiff_log.propagate = False
    try:
        return _run(args, debug, where)
    finally:
        tiff_log.propagate = propagate


def _run(args: argparse.Namespace, debug: bool, where: str) -> int:
    """:func:`main`'s command, its errors as one line and an exit status."""
    from ._files import working_on

    try:
        with warnings.catch_warnings():
            _plain_warnings(where)
            try:
                return args.func(args)
            finally:
                working_on(None)  # (a batch's last file is not the next call's)
    except UsageError as err:
        if debug:
            traceback.print_exc()
        print(f"{where}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except Failure as err:
        if debug:
            traceback.print_exc()
        print(f"{where}: error: {_one_line(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        if debug:
            traceback.print_exc()
        kept = getattr(err, "kept", None)  # what an interrupted run keeps, and how to go on
        if kept is not None:
            print(f"{where}: interrupted; {kept}", file=sys.stderr)
        else:
            print(f"{where}: interrupted; no partial output was left", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `napari-deconvnet models | head`: the reader has enough
        # point stdout at nothing, so that Python's flush at exit does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a program killed by SIGPIPE
    except Exception as err:  # anything else: one line, the traceback with --debug
        if debug:
            traceback.print_exc()
        hint = "" if debug else " (run with --debug for the traceback)"
        print(f"{where}: error: {type(err).__name__}: {_one_line(err)}{hint}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
