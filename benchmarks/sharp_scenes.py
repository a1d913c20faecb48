"""Denoisers on sharp and on smooth fluorescence scenes, against BM3D.

The shipped denoisers were trained on procedural scenes smoothed by 0.5 to 2
pixels (plus photographs), which teaches a prior: objects are smoother than
the pixel grid. Real fluorescence has sub-resolution structures (beads,
filaments, membranes a pixel wide) that such a prior blurs away. This
benchmark measures that: the package's phantoms
(:func:`napari_deconvnet.core.phantoms.cells_2d` / ``cells_3d``) drawn
*sharp* (spots and filaments down to a pixel, no scene smoothing) and drawn
as default (smoothed) scenes, with Gaussian and Poisson-Gaussian noise.

Baselines
    BM3D (the ``bm3d`` package), given the true noise: the Gaussian sigma, or
    for Poisson-Gaussian noise sigma 1 after the generalised Anscombe
    transform of the known photon counts and read noise (the same code as
    ``benchmarks/quality.py``). An oracle's budget, stated beside ours: our
    models are blind. In 3D, BM3D runs plane by plane.

Scenes
    Seeds 61, 62, 63 by default (``numpy.random.default_rng(seed)``). The
    training scripts draw their phantoms from generators seeded by their
    ``--seed`` (0) and their validation from ``[seed, 1]``; these seeds are
    neither, and no recipe or checkpoint is chosen on them.

Usage::

    python benchmarks/sharp_scenes.py --threads 1 \
        --models denoise-2d path/to/candidate.safetensors --markdown out.md
    python benchmarks/sharp_scenes.py --dims 3 --models-3d denoise-3d denoise-2d

Each model column is a model name or a ``.safetensors`` file; a 2D model
restores a volume plane by plane. The table gives PSNR (dB) / SSIM against the
clean scene (every output clipped to [0, 1]) and each model minus BM3D.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import quality  # noqa: E402  (the benchmark's tasks, BM3D with the Anscombe transform)
from _machine import heading, machine, publish, set_threads  # noqa: E402

import napari_deconvnet as dn  # noqa: E402
from napari_deconvnet.core.phantoms import cells_2d, cells_3d  # noqa: E402

NOISES = (
    quality.Task("gaussian-10", "photos", "denoise", "gaussian", {"sigma": 10 / 255}),
    quality.Task("gaussian-25", "photos", "denoise", "gaussian", {"sigma": 25 / 255}),
    quality.Task(
        "poisson-gaussian-20",
        "phantoms",
        "denoise",
        "poisson-gaussian",
        {"peak": 20.0, "read_noise": 1.0},
    ),
    quality.Task(
        "poisson-gaussian-100",
        "phantoms",
        "denoise",
        "poisson-gaussian",
        {"peak": 100.0, "read_noise": 1.0},
    ),
)
SCENES = {"sharp": 1.0, "default": 0.0}


def scene(ndim: int, seed: int, sharp: float, size: int, depth: int) -> np.ndarray:
    """One clean scene, maximum 1."""
    rng = np.random.default_rng(seed)
    if ndim == 2:
        image = cells_2d(rng, size, sharp=sharp)
    else:
        image = cells_3d(rng, (depth, size, size), sharp=sharp)
    return (image / image.max()).astype(np.float32)


def bm3d(task: quality.Task, noisy: np.ndarray) -> np.ndarray:
    """BM3D with the true noise (Anscombe domain for photon noise); planes in 3D."""
    planes = noisy if noisy.ndim == 3 else noisy[None]
    out = [quality.apply("bm3d", task, p, {}, {}) for p in planes]
    return np.stack(out) if noisy.ndim == 3 else out[0]


def label(model: str) -> str:
    path = Path(model)
    return f"{path.parent.name}/{path.stem}" if path.suffix == ".safetensors" else model


def score(clean: np.ndarray, out: np.ndarray) -> tuple[float, float]:
    out = np.clip(out, 0, 1)
    return dn.psnr(clean, out, data_range=1), dn.ssim(clean, out, data_range=1)


def run(args: argparse.Namespace) -> dict:
    results: dict = {"settings": {k: v for k, v in vars(args).items() if k != "markdown"}}
    for ndim in args.dims:
        names = args.models if ndim == 2 else args.models_3d
        models = {label(m): dn.load_model(m) for m in names}
        columns = ["noisy", *(["BM3D (true noise)"] if args.bm3d else []), *models]
        rows = {}
        for scene_name in args.scenes:
            for task in NOISES:
                per: dict[str, list] = {c: [] for c in columns}
                for seed in args.seeds:
                    clean = scene(ndim, seed, SCENES[scene_name], args.size, args.depth)
                    noisy = quality.add_noise(task, clean, seed)
                    per["noisy"].append(score(clean, noisy))
                    if args.bm3d:
                        per["BM3D (true noise)"].append(score(clean, bm3d(task, noisy)))
                    for name, net in models.items():
                        axes = "ZYX" if ndim == 3 else None
                        out = dn.restore(noisy, net, axes=axes, precision=args.precision)
                        per[name].append(score(clean, out))
                key = f"{scene_name} / {task.name}"
                rows[key] = {c: np.mean(v, axis=0).tolist() for c, v in per.items()}
                print(
                    f"{ndim}D {key}: " + " ".join(f"{c} {v[0]:.2f}" for c, v in rows[key].items()),
                    flush=True,
                )
        results[f"{ndim}d"] = {"columns": columns, "models": list(models), "rows": rows}
    return results


def markdown(results: dict, header: str) -> str:
    lines = [header, ""]
    for key in ("2d", "3d"):
        if key not in results:
            continue
        part = results[key]
        cols, models = part["columns"], part["models"]
        base = "BM3D (true noise)" if "BM3D (true noise)" in cols else None
        lines += [f"**{key.upper()}** (PSNR dB / SSIM, mean over the seeds)", ""]
        extra = [f"{m} − BM3D" for m in models] if base else []
        lines.append("| scene / noise | " + " | ".join(cols + extra) + " |")
        lines.append("|---|" + "---:|" * (len(cols) + len(extra)))
        for row, values in part["rows"].items():
            best = max(values[c][0] for c in cols)
            cells = []
            for c in cols:
                text = f"{values[c][0]:.2f} / {values[c][1]:.3f}"
                cells.append(f"**{text}**" if values[c][0] == best else text)
            if base:
                cells += [f"{values[m][0] - values[base][0]:+.2f}" for m in models]
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def scene_options(parser: argparse.ArgumentParser, seeds: list[int]) -> None:
    """The options this benchmark shares with ``noise_range.py``."""
    parser.add_argument("--dims", type=int, nargs="+", choices=(2, 3), default=[2])
    parser.add_argument("--models", nargs="+", default=["denoise-2d"], help="2D columns")
    parser.add_argument(
        "--models-3d", nargs="+", default=["denoise-3d", "denoise-2d"], help="3D columns"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=seeds)
    parser.add_argument("--size", type=int, default=192, help="scene width and height")
    parser.add_argument("--depth", type=int, default=24, help="planes of a 3D scene")
    parser.add_argument("--no-bm3d", dest="bm3d", action="store_false")
    parser.add_argument("--precision", default="float32", help="of the networks (float32)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--json", type=Path)


def run_and_report(args, argv, run_fn, markdown_fn, title: str, script: str) -> int:
    """Set threads, check for bm3d, run, print the tables and write the files."""
    if args.quick:
        args.seeds, args.size, args.depth = args.seeds[:1], 64, 16
    set_threads(args.threads)
    if args.bm3d:
        try:
            import bm3d as _  # noqa: F401
        except ImportError:
            print("bm3d is not installed: its column is skipped", file=sys.stderr)
            args.bm3d = False
    t0 = time.perf_counter()
    results = run_fn(args)
    header = (
        heading(title, script, argv)
        + f"\n\nMachine: {machine()}. Seeds {', '.join(map(str, args.seeds))}, "
        f"{args.size}² ({args.depth} planes in 3D), networks in {args.precision}, "
        f"{time.perf_counter() - t0:.0f} s in all."
    )
    publish(markdown_fn(results, header), args.markdown, end="\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    scene_options(parser, [61, 62, 63])
    parser.add_argument("--scenes", nargs="+", choices=tuple(SCENES), default=list(SCENES))
    parser.add_argument("--quick", action="store_true", help="one small seed (seconds)")
    args = parser.parse_args(argv)
    return run_and_report(args, argv, run, markdown, "Sharp and default scenes", "sharp_scenes.py")


if __name__ == "__main__":
    sys.exit(main())
