"""Train the shipped models (denoise-2d, denoise-3d, deconv-2d, deconv-3d, salt-and-pepper).

``denoise-2d`` (the default model) is trained by ``scripts/train_default.py``;
``--model denoise-2d`` here hands over to it. The others share this script:

``salt-and-pepper``
    2D; input channels are the image and its switching median (impulses at
    the image's min/max replaced by a median of clean neighbours), which the
    network refines; at inference only the impulses change. Impulse noise
    on 1-50% of the pixels (salt share 20-80%, salt and pepper at the
    region's min and max), sometimes on top of mild
    Gaussian noise.
``deconv-2d``
    2D, PSF-conditioned: input channels are the blurred noisy image and its
    Richardson-Lucy pre-deconvolution (30 iterations;
    :mod:`napari_deconvnet.core.conditioning`), which the network corrects.
    PSFs: Gaussian (sigma 0.7-3.5 px, sometimes anisotropic) and Airy disks
    (first zero 1.5-6 px); noise: Gaussian (sigma 0.001-0.05) or
    Poisson-Gaussian (peak 10-2000 photons, read noise up to 2 e-).
``denoise-3d``
    3D, 1 channel. Gaussian (sigma 5-50/255) or Poisson-Gaussian noise (peak
    2-1000 photons) on procedural 3D fluorescence volumes.
``deconv-3d``
    3D, PSF-conditioned like ``deconv-2d`` but through a Wiener
    pre-deconvolution (cheaper in 3D): anisotropic 3D Gaussians (sigma
    0.7-2.5 px laterally, 1-2.5x that axially) and widefield PSFs; Poisson-
    Gaussian or Gaussian noise.

Data: scikit-image's bundled images of ``train_default.TRAIN_IMAGES`` (never
the benchmark images camera, astronaut, coins, moon, chelsea/cat, cell) and
procedural phantoms of :mod:`napari_deconvnet.core.phantoms` (the benchmark
uses the package's sample generators with other seeds). 3D models see only 3D
phantoms: no 3D images ship with the libraries.

Reproducible: seeded generators, deterministic torch, a fixed step count
(``--steps``), every setting in the model's metadata and in the log written
next to the model (``<name>.log.json``). The same inference path as users'
(``dn.restore``) scores validation pairs made from held-out strips and unseen
phantoms.

One engine: every model trains through the package's own loop
(:func:`napari_deconvnet.core.fit.fit`, the Trainer that ``dn.train`` runs),
so users' fine-tuning gets the same recipe: AdamW, the cosine schedule (by
the clock under ``--max-seconds``), gradient clipping, the weights' moving
average (``--ema``) validated beside them, the best of raw and EMA weights
(and the ``--init`` model) kept, and an autosave in ``--checkpoint`` that
``--resume`` continues. The phantoms and PSFs come from
:mod:`napari_deconvnet.core.phantoms`.

Usage::

    python scripts/train_models.py --model deconv-2d            # default steps
    python scripts/train_models.py --model all                  # the four models here
    python scripts/train_models.py --model salt-and-pepper --steps 200 --out /tmp/sp.safetensors
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _train_common as engine  # noqa: E402  (sibling module: the engine's helpers)
import train_default as base  # noqa: E402  (sibling script: data)
from _shipped_data import (  # noqa: E402  (sibling module: degradations, batches, validation)
    NORM,
    Sampler,
    evaluate,
    identity_psnr,
    make_phantom_3d,
    mix_general_phantoms,
    range_hdr_mse,
    range_mse,
    validation_set,
)

from napari_deconvnet.core.devices import resolve_device  # noqa: E402
from napari_deconvnet.core.fit import fit  # noqa: E402
from napari_deconvnet.core.kinds import WIENER_AND_RL, kind_of  # noqa: E402
from napari_deconvnet.core.losses import LOSSES  # noqa: E402
from napari_deconvnet.core.model import DeconvNet, DeconvNetConfig  # noqa: E402
from napari_deconvnet.core.persistence import load_model  # noqa: E402

ROOT = base.ROOT
WEIGHTS = ROOT / "src" / "napari_deconvnet" / "weights"
#: How the deconvolution models see the PSF (core/conditioning.py): Richardson-Lucy
#: in 2D; in 3D the cheaper Wiener filter (30 RL iterations on a training region
#: cost ~2.5 s there, a step's budget many times over on this CPU)
CONDITIONING = {
    "salt-and-pepper": {"method": "switching-median", "largest": 7},
    "deconv-2d": {"method": "richardson-lucy", "iterations": 30},
    "deconv-3d": {"method": "wiener", "balance_scale": 1.0},
}


#: ``--sparse-scenes``: the shape of the scenes of objects in the dark drawn before
#: training (``train_default.DARK_SCENES`` of them; a 3D training region is 32 x 96 x 96)
DARK_SCENE_SHAPES = {2: (256, 256), 3: (48, 128, 128)}


@dataclass
class Task:
    """What one shipped model learns and how it is trained."""

    name: str
    description: str
    ndim: int
    psf: bool
    steps: int
    batch_size: int
    patch: tuple[int, ...]
    region: tuple[int, ...]
    patches_per_region: int
    config: dict[str, Any] = field(default_factory=dict)
    photo_fraction: float = 0.5  # 2D: share of regions from photographs (rest phantoms)
    #: inference-only metadata, added to the saved file (validation runs without it)
    inference: dict[str, Any] = field(default_factory=dict)
    #: Poisson-Gaussian peak photons (log-uniform) and the largest read noise (e-)
    photons: tuple[float, float] = (10.0, 2000.0)
    read_noise: float = 2.0
    #: share of samples with Gaussian instead of Poisson-Gaussian noise
    gaussian_fraction: float = 0.5
    #: 3D Gaussian PSFs: axial sigma as a multiple of the lateral one
    axial_ratio: tuple[float, float] = (1.0, 2.5)
    #: share of samples with a camera offset and gain (sCMOS-like ADU)
    camera_fraction: float = 0.0
    #: denoisers: share of samples with light noise (``_shipped_data.LIGHT_*``)
    light_noise: float = 0.0
    #: validation also on scenes of the general generator and at light noise
    general_validation: bool = False
    #: 2D deconvolution: share of PSFs beyond the Gaussian/Airy family
    #: (core.phantoms.wide_psf: elongated, defocus, motion), in training and validation
    wide_psfs: float = 0.0
    #: deconvolution: share of training samples whose network is given a PSF wider or
    #: narrower than the blur's (core.phantoms.misjudged_psf); validation keeps the exact one
    psf_mismatch: float = 0.0
    #: share of regions with objects 3-300 times brighter than the scene
    #: (core.phantoms.bright_objects), for images of high dynamic range
    bright_objects: float = 0.0
    #: denoise-3d: share of samples of pure photon counts below the Poisson range
    #: (``_shipped_data.LOW_COUNT_PEAKS``, no read noise), with validation pairs there
    low_counts: float = 0.0


TASKS = {
    "salt-and-pepper": Task(
        name="salt-and-pepper",
        description=(
            "Impulse (salt-and-pepper) noise removal, 1-50% corrupted pixels (2D); refines a "
            "switching median"
        ),
        ndim=2,
        psf=False,
        steps=8000,
        batch_size=16,
        patch=(64, 64),
        region=(160, 160),
        patches_per_region=4,
        config={"depth": 2, "base_channels": 24},
        photo_fraction=0.8,
        # keep pixels that are not at the image's min/max: only impulses change
        inference={"impulse_switch": True},
    ),
    "deconv-2d": Task(
        name="deconv-2d",
        description=(
            "Non-blind 2D deconvolution for a given PSF (Gaussian, Airy/widefield) with "
            "Gaussian or Poisson noise; corrects a Richardson-Lucy pre-deconvolution"
        ),
        ndim=2,
        psf=True,
        steps=6000,
        batch_size=16,
        patch=(64, 64),
        region=(160, 160),
        patches_per_region=8,
        config={"depth": 2, "base_channels": 24},
        photo_fraction=0.5,
    ),
    "denoise-3d": Task(
        name="denoise-3d",
        description=(
            "Blind 3D denoiser for volumes with Gaussian or Poisson-Gaussian noise "
            "(sigma 5-50/255, peak 2-1000 photons)"
        ),
        ndim=3,
        psf=False,
        steps=2500,
        batch_size=4,
        patch=(24, 48, 48),
        region=(32, 96, 96),
        patches_per_region=4,
        config={"depth": 2, "base_channels": 16},
    ),
    "deconv-3d": Task(
        name="deconv-3d",
        description=(
            "Non-blind 3D deconvolution for a given PSF (anisotropic Gaussian, widefield) "
            "with Poisson-Gaussian (peak 5-1000 photons, camera offset) or Gaussian noise; "
            "Wiener-conditioned"
        ),
        ndim=3,
        psf=True,
        steps=5000,
        batch_size=4,
        patch=(24, 48, 48),
        region=(32, 96, 96),
        patches_per_region=4,
        config={"depth": 2, "base_channels": 16},
        photons=(5.0, 1000.0),
        read_noise=3.0,
        gaussian_fraction=0.2,
        axial_ratio=(1.0, 3.0),
        camera_fraction=0.3,
    ),
}


def model_config(task: Task, extra: int | None = None) -> dict[str, Any]:
    """`extra`: the conditioning's channels (default: the task's, one if it has any)."""
    if extra is None:
        extra = 1 if task.name in CONDITIONING else 0
    return {
        "ndim": task.ndim,
        "in_channels": 1 + extra,
        "out_channels": 1,
        "convs_per_level": 2,
        "skip": "add",
        "residual": True,
        # a conditioned model corrects its pre-restoration channel
        "residual_input": 1 if task.name in CONDITIONING else None,
        "normalization": NORM,
        **task.config,
    }


# ---------------------------------------------------------------- training


def train_task(task: Task, args: argparse.Namespace, out: Path) -> dict:
    torch.manual_seed(args.seed)
    rng = np.random.default_rng([args.seed, list(TASKS).index(task.name)])
    steps = args.steps if args.steps is not None else task.steps
    t0 = time.perf_counter()
    images, strips = {}, {}
    if task.ndim == 2:
        for name in base.TRAIN_IMAGES:
            image = base.load_gray(name)
            if name in base.VALIDATION_STRIPS:
                cut = base.VALIDATION_STRIPS[name]
                strips[name] = image[:, -cut:]
                image = image[:, : -cut - 32]
            images[name] = image
        phantoms = [
            base.make_phantom(rng, sharp=args.sharp_phantoms) for _ in range(args.phantoms)
        ]
    else:
        phantoms = [
            make_phantom_3d(rng, (48, 128, 128), sharp=args.sharp_phantoms)
            for _ in range(args.phantoms)
        ]
    if args.general_phantoms > 0:  # their own stream: the other scenes stay as they were
        phantoms = mix_general_phantoms(phantoms, args.general_phantoms, args.seed)
    if args.light_noise > 0 or args.general_phantoms > 0:
        if args.light_noise > 0 and task.name == "salt-and-pepper":
            raise SystemExit("--light-noise is for the denoising and deconvolution models")
        task = dataclasses.replace(
            task, light_noise=args.light_noise, general_validation=args.general_phantoms > 0
        )
    if args.low_counts > 0:
        if task.name != "denoise-3d":
            raise SystemExit("--low-counts is for denoise-3d (train_default.py has denoise-2d's)")
        if not 0.0 < args.low_counts <= 1.0:
            raise SystemExit(f"--low-counts must be in (0, 1], got {args.low_counts}")
        task = dataclasses.replace(task, low_counts=args.low_counts)
    if args.wide_psfs > 0:
        if not (task.psf and task.ndim == 2):
            raise SystemExit(f"--wide-psfs is for 2D deconvolution (deconv-2d), not {task.name}")
        task = dataclasses.replace(task, wide_psfs=args.wide_psfs)
    leaves = None
    if args.dead_leaves > 0:
        if task.ndim != 2 or task.photo_fraction <= 0:
            raise SystemExit(
                f"--dead-leaves is for the 2D models with photographs, not {task.name}"
            )
        if not 0.0 < args.dead_leaves <= 1.0:
            raise SystemExit(f"--dead-leaves must be in (0, 1], got {args.dead_leaves}")
        leaves = base.dead_leaves_pool(args.dead_leaves, args.dead_leaves_scenes, args.seed)
    sparse = None
    if args.sparse_scenes > 0:
        if task.name == "salt-and-pepper":
            raise SystemExit("--sparse-scenes is for the denoising and deconvolution models")
        if not 0.0 < args.sparse_scenes <= 1.0:
            raise SystemExit(f"--sparse-scenes must be in (0, 1], got {args.sparse_scenes}")
        if not 0.0 <= args.sparse_spot_share <= 1.0:
            raise SystemExit(
                f"--sparse-spot-share must be in [0, 1], got {args.sparse_spot_share}"
            )
        sparse = base.dark_scene_pool(
            args.sparse_scenes, DARK_SCENE_SHAPES[task.ndim], args.sparse_spot_share, args.seed
        )
    if args.psf_mismatch > 0:
        if not task.psf:
            raise SystemExit(f"--psf-mismatch is for the deconvolution models, not {task.name}")
        task = dataclasses.replace(task, psf_mismatch=args.psf_mismatch)
    if args.bright_objects > 0:
        if task.name == "salt-and-pepper":
            raise SystemExit("--bright-objects is for the denoising and deconvolution models")
        task = dataclasses.replace(task, bright_objects=args.bright_objects)
    metadata = {
        "name": task.name,
        "description": task.description,
        "needs_psf": task.psf,
    }
    if task.name in CONDITIONING:
        metadata["conditioning"] = CONDITIONING[task.name]
    if args.rl_conditioning:
        if not task.psf:
            raise SystemExit(f"--rl-conditioning needs a deconvolution model; {task.name} is not")
        iterations = args.rl_conditioning
        metadata["conditioning"] = {"method": "richardson-lucy", "iterations": iterations}
    if args.dual_conditioning:
        if not task.psf or args.rl_conditioning:
            raise SystemExit(
                "--dual-conditioning needs a deconvolution model and no --rl-conditioning"
            )
        metadata["conditioning"] = {
            "method": WIENER_AND_RL,
            "balance_scale": 1.0,
            "iterations": args.dual_conditioning,
        }
        both = (
            f"conditioned on its Wiener and Richardson-Lucy ({args.dual_conditioning} "
            "iterations) deconvolutions"
        )
        metadata["description"] = task.description.replace("Wiener-conditioned", both).replace(
            "corrects a Richardson-Lucy pre-deconvolution", both
        )
    config = model_config(task, kind_of(metadata).extra_channels)
    # where the old input channels go when --init has fewer (widen_input)
    positions = None
    if args.dual_conditioning and CONDITIONING[task.name]["method"] == "richardson-lucy":
        # the inputs are (image, Wiener, RL): the residual stays on the RL channel
        # the task's single-channel models corrected, and their RL weights move there
        config["residual_input"] = 2
        positions = [0, 2]
    if args.planar_levels:
        if task.ndim != 3:
            raise SystemExit(f"--planar-levels needs a 3D model; {task.name} is 2D")
        config["planar_levels"] = args.planar_levels
    if args.base_channels:
        config["base_channels"] = args.base_channels
    net = DeconvNet(DeconvNetConfig(**config))
    if args.init is not None:  # fine-tune a saved model of the same architecture
        # (one with fewer input or feature channels gets zero weights where the new
        # ones are read: it starts computing exactly what the saved model did)
        start = load_model(args.init)
        if positions is not None:
            method = (getattr(start, "metadata", None) or {}).get("conditioning", {})
            if start.config.in_channels == 2 and method.get("method") != "richardson-lucy":
                raise SystemExit(
                    f"--init {args.init} is conditioned on {method.get('method')!r}; "
                    "--dual-conditioning widens a Richardson-Lucy-conditioned deconv-2d"
                )
            if start.config.in_channels != 2:
                positions = None  # same width: the weights load as they are
        net.load_state_dict(engine.start_weights(start, net, positions))
    net.metadata = metadata  # validation restores with the conditioning, as users do
    device = resolve_device(args.device)
    # validation with the exact PSFs: a run with --psf-mismatch is scored as the others
    pairs = validation_set(
        dataclasses.replace(task, psf_mismatch=0.0), strips, args.seed, dark=sparse is not None
    )
    sampler = Sampler(
        task,
        images,
        phantoms,
        net,
        rng,
        range_weight=args.loss in ("range-mse", "range-hdr-mse"),
        range_power=args.range_power,
        # a GPU computes the Wiener and Richardson-Lucy channels of each sample:
        # on one CPU core they were 90 % of a deconv-3d batch (0.54 of 0.59 s),
        # which held an H200 to a few steps a second; the CPU keeps its path
        device=device if device.type != "cpu" else None,
        leaves=leaves,
        sparse=sparse,
    )
    print(f"[{task.name}] data ready in {time.perf_counter() - t0:.1f} s", flush=True)
    precision = engine.engine_precision(args.precision, device)
    identity = float(np.mean([identity_psnr(p) for p in pairs]))
    print(f"[{task.name}] identity val psnr {identity:.2f}", flush=True)

    def training_record(*, config, history, best_entry, stop_reason, seconds, steps, improved):
        return {
            "script": "scripts/train_models.py",
            "engine": "napari_deconvnet.core.fit",
            "argv": args.argv,
            "seed": args.seed,
            "task": {k: v for k, v in vars(task).items() if k not in ("description",)},
            "settings": {
                "init": None if args.init is None else str(args.init),
                "device": str(device),
                "max_seconds": args.max_seconds,
                "steps": steps,
                "lr": args.lr,
                "ema": args.ema,
                "precision": precision,
                "phantoms": args.phantoms,
                "sharp_phantoms": args.sharp_phantoms,
                "general_phantoms": args.general_phantoms,
                **({"wide_psfs": args.wide_psfs} if args.wide_psfs else {}),
                **({"psf_mismatch": args.psf_mismatch} if args.psf_mismatch else {}),
                **({"low_counts": args.low_counts} if args.low_counts else {}),
                **({"bright_objects": args.bright_objects} if args.bright_objects else {}),
                **(
                    {
                        "sparse_scenes": {
                            "share_of_phantom_regions": args.sparse_scenes,
                            "scenes": base.DARK_SCENES,
                            "shape": list(DARK_SCENE_SHAPES[task.ndim]),
                            "generator": "napari_deconvnet.core.dark_scenes.sparse_scene",
                            "spot_share": args.sparse_spot_share,
                        }
                    }
                    if args.sparse_scenes
                    else {}
                ),
                **(
                    {
                        "dead_leaves": base.dead_leaves_record(
                            args.dead_leaves, args.dead_leaves_scenes
                        )
                    }
                    if args.dead_leaves
                    else {}
                ),
                "conditioning": metadata.get("conditioning"),
                "threads": args.threads,
                "val_every": args.val_every,
                "loss": config.loss,
                **(
                    {"range_power": args.range_power}
                    if args.loss in ("range-mse", "range-hdr-mse")
                    else {}
                ),
                "optimizer": f"AdamW(weight_decay={config.weight_decay:g})",
                "schedule": config.schedule,
                "clip_norm": config.clip_norm,
            },
            "data": {
                "images": base.TRAIN_IMAGES if task.ndim == 2 else {},
                "photo_fraction": task.photo_fraction if task.ndim == 2 else 0.0,
                "phantoms": args.phantoms,
                "held_out_for_validation": (
                    {k: f"right {v} columns" for k, v in base.VALIDATION_STRIPS.items()}
                    if task.ndim == 2
                    else "unseen phantoms, each with every noise of "
                    f"_shipped_data.VALIDATION_NOISE_3D ({len(pairs)} pairs)"
                ),
                "never_used": list(base.TEST_IMAGES),
            },
            "normalization": NORM,
            "steps": steps,
            "seconds": round(seconds, 1),
            "stop_reason": stop_reason,
            "improved": improved,
            "val_psnr_identity": identity,
            **engine.best_record(best_entry, args.init is not None),
            **engine.init_record(args.init),
            **engine.versions(),
        }

    def model_metadata(**record) -> dict:
        return {**metadata, **task.inference, "training": training_record(**record)}

    result = fit(
        net,
        sampler,
        evaluate=engine.validation_score(evaluate, pairs),
        metadata=model_metadata,
        steps=steps,
        max_seconds=args.max_seconds,
        validate_every=args.val_every,
        batch_size=task.batch_size,
        patch_size=task.patch,
        lr=args.lr,
        loss={"range-mse": range_mse, "range-hdr-mse": range_hdr_mse}.get(args.loss, args.loss),
        ema=args.ema,
        device=device,
        precision=precision,
        autosave=engine.autosave_path(
            args.checkpoint or ROOT / "runs" / task.name, task.name, args.resume
        ),
        resume=args.resume,
        seed=args.seed,
        callback=engine.reporter(task.name),
    )
    training = result.model.metadata["training"]
    engine.save_with_log(result.model, out, training, result.history, init=args.init)
    print(
        f"[{task.name}] saved {out} ({out.stat().st_size / 1e6:.2f} MB): val psnr "
        f"{training['best_val_psnr']:.2f} vs identity {identity:.2f}",
        flush=True,
    )
    return training


#: Flags of a recorded run that belong to that run, not to its recipe (with their value count)
_RUN_FLAGS = {
    "--model": 1, "--init": 1, "--max-seconds": 1, "--steps": 1, "--threads": 1,
    "--checkpoint": 1, "--out": 1, "--device": 1, "--val-every": 1, "--seed": 1,
    "--resume": 0, "--recipe": 1,
}  # fmt: skip


def _without(argv: list[str], flags: dict[str, int]) -> list[str]:
    """`argv` without the given flags (each with its value count; ``--flag=value`` too)."""
    kept, i = [], 0
    while i < len(argv):
        flag, inline = argv[i].split("=", 1)[0], "=" in argv[i]
        if flag in flags:
            i += 1 + (0 if inline else flags[flag])
            continue
        kept.append(argv[i])
        i += 1
    return kept


def recipe_flags(recorded: list[str]) -> list[str]:
    """A recorded command line without the flags of its run (budget, files, threads, seed)."""
    return _without(recorded, _RUN_FLAGS)


def shipped_recipe(model: str) -> list[str]:
    """The command line that continues the shipped `model`: the recipe recorded in
    its weights (``training.argv``, without the run's own flags), from its weights."""
    from napari_deconvnet.core.persistence import load_model

    path = WEIGHTS / f"{model}.safetensors"
    record = load_model(path).metadata.get("training") or {}
    if isinstance(record, str):  # the shipped files keep the record as a Python literal
        import ast

        record = ast.literal_eval(record)
    if Path.cwd().resolve() == ROOT.resolve():  # recorded as the shipped runs were
        path = path.relative_to(ROOT)
    return ["--model", model, *recipe_flags([str(a) for a in record.get("argv") or []]),
            "--init", str(path)]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a == "--recipe" or a.startswith("--recipe=") for a in argv):
        pre = argparse.ArgumentParser(prog="train_models.py", add_help=False)
        pre.add_argument("--recipe", choices=("shipped", "task"), required=True)
        pre.add_argument("--model", required=True)
        known, _ = pre.parse_known_args(argv)
        own = _without(argv, {"--recipe": 1, "--model": 1})  # applied last: they win
        if known.recipe == "task":
            return main(["--model", known.model, *own])
        if known.model == "all":
            pre.error("--recipe shipped continues one model at a time; name it with --model")
        return main([*shipped_recipe(known.model), *own])
    names = ["denoise-2d", *TASKS, "all"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=names, required=True)
    parser.add_argument("--steps", type=int, default=None, help="override the task's step count")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="model file (one model only)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--ema", type=float, default=0.999)
    parser.add_argument(
        "--loss",
        choices=(*LOSSES, "range-mse", "range-hdr-mse"),
        default="mse",
        help="training loss; balanced-mse weights each sample by its inverse error (mixed "
        "noise); range-mse measures each sample's error in its clean target's range, as PSNR "
        "does (not for denoise-2d); range-hdr-mse does so on intensities mapped as hdr-mse "
        "maps them, in the range of the scene around bright objects (--bright-objects)",
    )
    parser.add_argument(
        "--range-power",
        type=float,
        default=2.0,
        help="range-mse weighs each sample by 1 / (clean range)**P: 2 is PSNR's unit, "
        "1 pushes less toward dim samples",
    )
    parser.add_argument("--precision", choices=("bfloat16", "float32"), default="bfloat16")
    parser.add_argument("--val-every", type=int, default=500)
    parser.add_argument("--phantoms", type=int, default=32)
    parser.add_argument(
        "--rl-conditioning",
        type=int,
        default=0,
        help="deconvolution models: condition on N Richardson-Lucy iterations (deconv-2d's "
        "kind) instead of the task's default (deconv-3d: Wiener)",
    )
    parser.add_argument(
        "--dual-conditioning",
        type=int,
        default=0,
        metavar="N",
        help="deconvolution models: condition on both the Wiener filter and N "
        "Richardson-Lucy iterations (two extra channels, 'wiener+richardson-lucy'); "
        "with --init from a one-channel model the new channel starts with zero weights",
    )
    parser.add_argument(
        "--sharp-phantoms",
        type=float,
        default=0.0,
        help="share of sharp training scenes (spots and filaments narrower than any PSF, "
        "no smoothing: sub-resolution structures; core.phantoms.cells_2d/cells_3d sharp=)",
    )
    parser.add_argument(
        "--general-phantoms",
        type=float,
        default=0.0,
        help="share of training scenes from the general generator (core.phantoms.phantom: "
        "beads, filaments, nuclei, membranes, textures on a dim background); above 0 the "
        "validation gains two such scenes and light noise",
    )
    parser.add_argument(
        "--light-noise",
        type=float,
        default=0.0,
        help="share of samples with light noise (denoisers: gaussian 0.5-5/255, 1000-30000 "
        "photons; deconvolution: gaussian 1e-4-1e-3, 2000-100000 photons), nearly clean "
        "data whose detail must be kept",
    )
    parser.add_argument(
        "--low-counts",
        type=float,
        default=0.0,
        help="denoise-3d: share of samples of pure photon counts at 0.5-4 photons (no read "
        "noise; below its Poisson range of 2-1000), where it lost to a Gaussian filter on "
        "sparse scenes; the validation gains such pairs (1 and 3 photons) and nearly clean "
        "ones (Gaussian 1/255, 10,000 photons), where the first such run lost",
    )
    parser.add_argument(
        "--wide-psfs",
        type=float,
        default=0.0,
        help="deconv-2d: share of PSFs beyond the Gaussian/Airy family (core.phantoms."
        "wide_psf: elongated at any angle, defocus disks, motion streaks), in training and "
        "validation",
    )
    parser.add_argument(
        "--dead-leaves",
        type=float,
        default=0.0,
        help="2D models: share of photograph regions cropped from dead-leaves scenes "
        "(core.phantoms.dead_leaves: occluding shapes of every size, textured, softly "
        "blurred) instead of the bundled photographs; the validation is unchanged",
    )
    parser.add_argument(
        "--sparse-scenes",
        type=float,
        default=0.0,
        help="denoising and deconvolution models: share of phantom regions cropped from "
        "scenes of objects in the dark (core.dark_scenes.sparse_scene: spots from sub-pixel "
        "to well sampled, thin filaments, on an exactly black background), where the "
        "deconvolution models lost to Richardson-Lucy and denoise-3d to a Gaussian filter; "
        "the validation gains such scenes (2D three, 3D one)",
    )
    engine.add_sparse_spot_share_flag(parser)
    parser.add_argument(
        "--dead-leaves-scenes",
        type=int,
        default=160,
        help="dead-leaves scenes drawn before training (384 px each)",
    )
    parser.add_argument(
        "--psf-mismatch",
        type=float,
        default=0.0,
        help="deconvolution: share of training samples whose network is given a PSF "
        "0.7-1.45 times as wide as the blur's (core.phantoms.misjudged_psf), against "
        "over-sharpening with a misjudged PSF; validation keeps the exact PSFs",
    )
    engine.add_bright_objects_flag(
        parser, "the general scenes with such objects (use with --loss range-hdr-mse or hdr-mse)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... or auto")
    parser.add_argument(
        "--max-seconds", type=float, default=None, help="stop after this long (schedule by time)"
    )
    parser.add_argument("--init", type=Path, default=None, help="start from this model file")
    parser.add_argument(
        "--planar-levels",
        type=int,
        default=0,
        help="3D models: the first N poolings keep every Z plane (anisotropic pooling; "
        "DeconvNetConfig.planar_levels)",
    )
    parser.add_argument(
        "--base-channels",
        type=int,
        default=None,
        help="feature channels at full resolution (the task's default otherwise); with a "
        "narrower --init the new channels start ignored, so training starts from its output "
        "(core.model.widen_channels)",
    )
    parser.add_argument(
        "--patches-per-region",
        type=int,
        default=None,
        help="patches cut from each degraded region (the task's default: 4, 8 for "
        "salt-and-pepper); fewer draw more regions, PSFs and noise levels per batch",
    )
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="checkpoint folder (default runs/<model>)"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from the checkpoint if there is one"
    )
    parser.add_argument(
        "--recipe",
        choices=("shipped", "task"),
        default="task",
        help="shipped: continue the shipped weights with the recipe recorded in them (their "
        "training argv without its run flags: budget, files, threads, seed); the flags given "
        "here are applied after it, so they win. task: this script's defaults (from scratch)",
    )
    args, rest = parser.parse_known_args(argv)
    args.argv = list(argv)
    if args.model == "denoise-2d":
        if args.loss in ("range-mse", "range-hdr-mse"):
            parser.error(
                f"--loss {args.loss} is this script's; train_default.py trains denoise-2d"
            )
        if args.planar_levels:
            parser.error("--planar-levels needs a 3D model; denoise-2d is 2D")
        forward = rest + ["--seed", str(args.seed)]
        if args.steps is not None:
            forward += ["--steps", str(args.steps)]
        if args.max_seconds is not None:
            forward += ["--max-seconds", str(args.max_seconds)]
        forward += ["--device", args.device, "--threads", str(args.threads)]
        flags = ("--val-every", "--phantoms", "--lr", "--ema", "--precision", "--loss")
        flags += ("--sharp-phantoms", "--light-noise", "--sparse-scenes", "--sparse-spot-share")
        for flag in flags:
            if any(a.startswith(flag) for a in args.argv):  # given: forwarded (else its default)
                forward += [flag, str(getattr(args, flag[2:].replace("-", "_")))]
        if args.out is not None:
            forward += ["--out", str(args.out)]
        if args.init is not None:
            forward += ["--init", str(args.init)]
        if args.checkpoint is not None:
            forward += ["--checkpoint", str(args.checkpoint)]
        if args.resume:
            forward += ["--resume"]
        if args.patches_per_region is not None:
            forward += ["--patches-per-region", str(args.patches_per_region)]
        if args.base_channels:
            forward += ["--base-channels", str(args.base_channels)]
        return base.main(forward)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    torch.set_num_threads(args.threads)
    # warn_only: CUDA has no deterministic max_pool3d backward (3D models stopped there)
    torch.use_deterministic_algorithms(True, warn_only=True)
    chosen = list(TASKS) if args.model == "all" else [args.model]
    if args.out is not None and len(chosen) > 1:
        parser.error("--out names one model file; use it with one --model")
    for name in chosen:
        out = args.out or WEIGHTS / f"{name}.safetensors"
        task = TASKS[name]
        if args.patches_per_region is not None:
            if args.patches_per_region < 1:
                parser.error("--patches-per-region must be at least 1")
            task = dataclasses.replace(task, patches_per_region=args.patches_per_region)
        train_task(task, args, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
