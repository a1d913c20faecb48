"""``dn.adapt`` on the public benchmark's deconvolution and Poisson-Gaussian tasks.

For each task of :mod:`quality` (its degradations, test images and noise
seeds, imported from ``benchmarks/quality.py``, so that the numbers line up
with the README's quality table), the first degraded test image is handed to
``dn.adapt(start, image, psf=<the task's PSF or None>, noise="auto",
seconds=...)``: no clean image is used; the noise model, level and offset are
what ``dn.estimate_noise`` finds in that image. The adapted model then
restores every test image of the task (the one it adapted to and the others),
beside:

- ``input``: the degraded image;
- ``shipped``: the task's shipped model as the quality benchmark runs it
  (``deconv-2d``/``deconv-3d`` given the PSF, ``denoise-2d`` for noise);
- ``start``: the model adaptation starts from: ``denoise-2d``/``denoise-3d``,
  which never saw the PSF, or with ``--start shipped`` the shipped model
  itself (a PSF-conditioned ``deconv-2d``/``deconv-3d`` adapts with its
  classical channel computed for every synthetic patch);
- ``classical``: Richardson-Lucy (deconvolution) or BM3D on the Anscombe
  transform (Poisson-Gaussian), tuned as the quality benchmark tunes them
  (on training images only).

PSNR and SSIM against the clean image, every output clipped to [0, 1], data
range 1, mean over the task's test images (as ``benchmarks/quality.py``
scores them). One torch thread.

Usage::

    python benchmarks/adapt.py                        # 120 s per task (about 15-25 min)
    python benchmarks/adapt.py --seconds 5 --quick    # a smoke run (tiny crops)
    python benchmarks/adapt.py --tasks deconv-gaussian --markdown out.md
    python benchmarks/adapt.py --tasks 3d-lowlight-20 --start shipped --steps 150
    python benchmarks/adapt.py --images validation ...   # choose recipes off the test set
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _machine import machine

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality  # noqa: E402  (its tasks, test sets, degradations and scoring)

import napari_deconvnet as dn  # noqa: E402
from napari_deconvnet.core.kinds import central_box, kind_of  # noqa: E402

#: The tasks measured, by their name in quality.TASKS.
TASKS = (
    "deconv-gaussian",
    "deconv-airy-poisson",
    "poisson-gaussian-5",
    "poisson-gaussian-20",
    "3d-lowlight-20",
)
#: More 3D tasks of quality.py that ``--tasks`` accepts (not run by default).
MORE_3D = ("3d-lowlight-10", "3d-lowlight-50", "3d-widefield-20")
#: 3D test volumes are cropped to this shape (Z 2x lateral sampling of the PSF);
#: ``--full-volumes`` keeps quality.py's own (32 x 128 x 128), to compare with its table.
VOLUME = (32, 64, 64)
#: ``--images validation``: this many of the quality benchmark's training images.
VALIDATION_IMAGES = 3


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _task(name: str) -> tuple[int, Any]:
    for index, task in enumerate(quality.TASKS):
        if task.name == name:
            return index, task
    raise ValueError(f"unknown task {name!r}; choose among {', '.join(TASKS + MORE_3D)}")


def _progress(name: str, cpu0: float):
    def callback(event: Any) -> None:
        if event.kind == "epoch":
            _log(
                f"  {name} adapt: step {event.step}, val loss {event.val_loss:.5f}, "
                f"{event.elapsed:.0f} s wall, {time.process_time() - cpu0:.0f} s CPU"
            )

    return callback


def _scores(outputs: list[np.ndarray], cleans: list[np.ndarray]) -> dict[str, float]:
    pairs = [quality.score(o, x) for o, x in zip(outputs, cleans, strict=True)]
    return {
        "psnr": float(np.mean([p for p, _ in pairs])),
        "ssim": float(np.mean([s for _, s in pairs])),
    }


def run_task(name: str, args: Any, sizes: Any) -> dict[str, Any]:
    index, task = _task(name)
    psf = task.make_psf()
    if args.images == "validation":  # CARE's training sources: never a test image
        cleans = quality.training_set(task.data, sizes, tuning=False)[:VALIDATION_IMAGES]
        draw = 2
    else:
        cleans = [x for _, x in quality.load_test_set(task.data, sizes)]
        draw = 0
    degraded = [
        quality.degrade(task, x, np.random.default_rng([args.seed, index, draw, i]), psf)
        for i, x in enumerate(cleans)
    ]
    ctx: dict[str, Any] = {"psf": psf, "device": "cpu", "nets": {}}
    record: dict[str, Any] = {"images": len(cleans), "shape": list(cleans[0].shape), "methods": {}}

    def measure(method: str, restore) -> None:
        t0 = time.perf_counter()
        outputs = [restore(y) for y in degraded]
        record["methods"][method] = {
            **_scores(outputs, cleans),
            "restore_seconds": time.perf_counter() - t0,
            # the image adapted to, and the others (scenes="image" learns from the first)
            "first": _scores(outputs[:1], cleans[:1]),
            **({"others": _scores(outputs[1:], cleans[1:])} if len(outputs) > 1 else {}),
        }
        entry = record["methods"][method]
        _log(
            f"  {name} {method}: {entry['psnr']:.2f} dB / {entry['ssim']:.3f} "
            f"(adapted-to image {entry['first']['psnr']:.2f}, others "
            f"{entry.get('others', entry['first'])['psnr']:.2f})"
        )

    measure("input", lambda y: y)
    ctx["nets"]["ours"] = dn.load_model(task.model)
    measure("shipped", lambda y: quality.apply("ours", task, y, {}, ctx))
    start = task.model if args.start == "shipped" else f"denoise-{task.ndim}d"
    start_net = dn.load_model(start)
    conditioned = kind_of(start_net).needs_psf  # the PSF goes to the model too
    restore_psf = psf if conditioned else None
    measure("start", lambda y: dn.restore(y, start_net, psf=restore_psf, device="cpu"))

    t0, cpu0 = time.perf_counter(), time.process_time()
    budget = {"seconds": None, "steps": args.steps} if args.steps else {"seconds": args.seconds}
    adapted = dn.adapt(
        start,
        degraded[0],
        psf=psf,
        noise="auto",
        **budget,
        **({} if args.l2sp is None else {"l2sp": args.l2sp}),
        scenes=args.scenes,
        validate_on=args.validate_on,
        seed=args.seed,
        device="cpu",
        precision=args.precision,
        preview=False,
        callback=_progress(name, cpu0),
    )
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    training = adapted.metadata.get("training", {})
    record["adapt"] = {
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "best_epoch": training.get("best_epoch"),
        "batch_size": training.get("settings", {}).get("batch_size"),
        "patch_size": training.get("settings", {}).get("patch_size"),
        "seconds": training.get("seconds"),
        "steps": training.get("steps"),
        "improved": training.get("improved"),
        "noise": training.get("noise"),
        "start_val_psnr": training.get("start_val_psnr"),
        "best_val_psnr": training.get("best_val_psnr"),
    }
    steps, noise = training.get("steps"), training.get("noise")
    _log(f"  {name} adapt: {steps} steps in {wall:.0f} s wall, {cpu:.0f} s CPU, noise {noise}")
    measure("adapted", lambda y: dn.restore(y, adapted, psf=restore_psf, device="cpu"))
    record["start"] = start

    classical = "richardson-lucy" if task.family == "deconv" else "bm3d"
    if classical == "bm3d" and importlib.util.find_spec("bm3d") is None:
        _log(f"  {name} bm3d: not installed")
    elif not args.no_classical:
        tune_data = quality.training_set(task.data, sizes, tuning=True)
        if task.ndim == 3:
            tune_data = [_crop(v, sizes.volume) for v in tune_data]
        pairs = [
            (quality.degrade(task, x, np.random.default_rng([args.seed, index, 1, i]), psf), x)
            for i, x in enumerate(tune_data)
        ]
        params, _ = quality.tune(classical, task, pairs, ctx, args.quick)
        measure(classical, lambda y: quality.apply(classical, task, y, params, ctx))
        record["methods"][classical]["params"] = params
    return record


def _crop(volume: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return np.ascontiguousarray(volume[central_box(volume.shape, shape)])


def markdown(results: dict[str, Any]) -> str:
    s = results["settings"]
    # --images validation: training images of quality.py that its tests never use
    kind = "validation" if s.get("images") == "validation" else "test"
    lines = [
        "## dn.adapt on the benchmark's tasks",
        "",
        f"Machine: {results['machine']}",
        "",
        "Adaptation: "
        + (f"{s['steps']} steps" if s.get("steps") else f"{s['seconds']:g} s")
        + f" per task on the first degraded {kind} image, noise='auto', "
        f"seed {s['seed']}, training precision {s.get('precision', 'auto')}; "
        f"{s['minutes']:.1f} min in all. PSNR (dB) / SSIM, mean over the task's "
        f"{kind} images, outputs clipped to [0, 1].",
        "",
        "| task | images | input | shipped | start | adapted | classical (tuned) | adapt steps "
        "| adapt s | adapted - shipped |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results["tasks"].items():
        m = r["methods"]

        def cell(key: str, m: dict = m) -> str:
            e = m.get(key)
            return "—" if e is None else f"{e['psnr']:.2f} / {e['ssim']:.3f}"

        classical = next((k for k in ("richardson-lucy", "bm3d") if k in m), None)
        classical_text = "—" if classical is None else f"{cell(classical)} ({classical})"
        gain = m["adapted"]["psnr"] - m["shipped"]["psnr"]
        a = r["adapt"]
        lines.append(
            f"| {name} | {r['images']} | {cell('input')} | {cell('shipped')} | {cell('start')} "
            f"| {cell('adapted')} | {classical_text} | {a['steps']} | {a['seconds']:.0f} "
            f"| {gain:+.2f} dB |"
        )
    lines += [
        "",
        "shipped: the task's shipped model as benchmarks/quality.py runs it (deconv-2d/3d given "
        "the PSF; denoise-2d for noise). start: the model adapt starts from ("
        + ", ".join(f"{n} {r.get('start', '?')}" for n, r in results["tasks"].items())
        + "). "
        "Noise found by dn.estimate_noise: "
        + "; ".join(f"{n} {r['adapt']['noise']}" for n, r in results["tasks"].items()),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=TASKS + MORE_3D, default=list(TASKS))
    parser.add_argument(
        "--full-volumes",
        action="store_true",
        help="quality.py's 3D test volumes whole (its table's numbers), not crops",
    )
    parser.add_argument("--seconds", type=float, default=120.0, help="adaptation per task")
    parser.add_argument(
        "--steps", type=int, help="a fixed step budget instead of --seconds (seconds=None)"
    )
    parser.add_argument(
        "--start",
        choices=("denoise", "shipped"),
        default="denoise",
        help="adapt denoise-2d/3d (default) or the task's shipped model (deconv-2d/3d...)",
    )
    parser.add_argument(
        "--images",
        choices=("test", "validation"),
        default="test",
        help="score on the task's test images, or on training images never tested on "
        "(to choose a recipe without looking at the test set)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--precision",
        choices=("auto", "float32", "bfloat16"),
        default="auto",
        help="dn.adapt's training precision (restores follow precision='auto')",
    )
    parser.add_argument(
        "--l2sp", type=float, default=None, help="dn.adapt's L2-SP strength (default: its own)"
    )
    parser.add_argument(
        "--scenes",
        choices=("phantoms", "image", "both"),
        default="both",
        help="dn.adapt's scenes: the package's phantoms, the image's own structures, or both "
        "(dn.adapt's default)",
    )
    parser.add_argument(
        "--validate-on",
        choices=("image", "mix"),
        default="image",
        help="dn.adapt's validation: a held-out strip of the image's structures (its "
        "default) or the training mix",
    )
    parser.add_argument("--quick", action="store_true", help="quality.py's tiny crops and grids")
    parser.add_argument("--no-classical", action="store_true", help="skip tuned RL / BM3D")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    parser.add_argument("--json", type=Path, help="write every number here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    sizes = quality.QUICK if args.quick else quality.FULL
    if not args.full_volumes:
        sizes = replace(sizes, volume=(16, 48, 48) if args.quick else VOLUME)
    started = time.perf_counter()
    tasks = {}
    for name in args.tasks:
        t0 = time.perf_counter()
        tasks[name] = run_task(name, args, sizes)
        _log(f"{name}: done in {time.perf_counter() - t0:.0f} s")
    results = {
        "machine": machine(),
        "settings": {
            "seconds": args.seconds,
            "steps": args.steps,
            "seed": args.seed,
            "precision": args.precision,
            "start": args.start,
            "images": args.images,
            "l2sp": args.l2sp,
            "scenes": args.scenes,
            "validate_on": args.validate_on,
            "volume": list(sizes.volume),
            "quick": args.quick,
            "minutes": (time.perf_counter() - started) / 60,
        },
        "tasks": tasks,
    }
    text = markdown(results)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return results


if __name__ == "__main__":
    main()
