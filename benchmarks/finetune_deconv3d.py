"""Fine-tuning `deconv-3d` on one condition: what it gains there, what it loses elsewhere.

A user with clean volumes of their microscope fine-tunes the shipped
``deconv-3d`` with ``dn.train`` (synthetic pairs: their clean volumes,
degraded afresh every batch by their PSF and noise). This script does that
for the quality benchmark's ``3d-lowlight-20`` task (Gaussian PSF of sigma
3/1.5/1.5, 20 photons, read noise 1; CARE's clean training volumes, its
patch and batch sizes) with several L2-SP strengths, then scores each
model, the shipped one and Wiener (the model's own classical channel) on:

- **validation volumes** (seeds 8201-8204, 32x128x128, the benchmark's
  volume generator; never trained on, never a test volume) at the task's
  condition and at three others: 50 photons with the same PSF, 100 photons
  with another Gaussian PSF (``3d-poisson-blur``), 20 photons with a
  widefield PSF (``3d-widefield-20``): the gain, and the forgetting;
- the benchmark's **test volumes** at the task's condition (as
  ``quality.py`` degrades them: the fair-CARE table's numbers).

    OMP_NUM_THREADS=1 python benchmarks/finetune_deconv3d.py --l2sp 0 10 100 --steps 600

``--scratch 0 1`` trains new networks instead, from scratch on the same
pairs and steps, one per planar-levels value (``DeconvNetConfig.planar_levels``:
anisotropic pooling; 1-channel, 16/32/64 channels like ``deconv-3d``, no
PSF input), to compare the architectures on this anisotropic task
(``--l2sp`` with no value skips the fine-tunings)::

    OMP_NUM_THREADS=1 python benchmarks/finetune_deconv3d.py --l2sp --scratch 0 1 --steps 600

About 20 minutes per fine-tuning on one thread of this CPU; ``--quick``
for a smoke run (tiny sizes). Prints a markdown table (PSNR dB).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import quality as q  # noqa: E402

import napari_deconvnet as dn  # noqa: E402

TARGET = "3d-lowlight-20"
OTHERS = ("3d-lowlight-50", "3d-poisson-blur", "3d-widefield-20")
VALIDATION_SEEDS = (8201, 8202, 8203, 8204)


def fine_tune(
    l2sp: float,
    steps: int,
    sizes: q.Sizes,
    seed: int = 7,
    planar: int | None = None,
    lr: float | None = None,
):
    """`deconv-3d` fine-tuned with `l2sp`; with `planar`, a new network trained from scratch."""
    task = {t.name: t for t in q.TASKS}[TARGET]
    start = (
        {"model": "deconv-3d", "l2sp": l2sp}
        if planar is None
        else {"network": {"ndim": 3, "depth": 2, "base_channels": 16, "planar_levels": planar}}
    )
    train = q.training_set("volumes", sizes, tuning=False)
    epochs = max(1, steps // 50)
    t0 = time.perf_counter()
    result = dn.train(
        list(train),
        noise={"model": task.noise, **task.params},
        psf=task.make_psf(),
        epochs=epochs,
        steps_per_epoch=max(1, steps // epochs),
        patch_size=sizes.care_patch_3d,
        batch_size=sizes.care_batch[1],
        seed=seed,
        device="cpu",
        preview=False,
        lr=lr,
        **start,
    )
    return result.model, time.perf_counter() - t0, result.best_epoch


def score(method, task_name: str, volumes: list[np.ndarray], stream: int) -> float:
    """Mean PSNR of `method` on `volumes` degraded by a task (seeds: quality.py's form)."""
    task = {t.name: t for t in q.TASKS}[task_name]
    psf = task.make_psf()
    index = q.TASK_NAMES.index(task_name)
    net = None if method == "wiener" else dn.load_model(method)
    # a network trained from scratch on the task takes no PSF
    net_psf = psf if net is not None and net.metadata.get("needs_psf", False) else None
    values = []
    for i, x in enumerate(volumes):
        y = q.degrade(task, x, np.random.default_rng([0, index, stream, i]), psf)
        out = dn.wiener(y, psf) if net is None else dn.restore(y, net, psf=net_psf)
        values.append(q.score(np.asarray(out), x)[0])
    return float(np.mean(values))


def evaluate(method, sizes: q.Sizes, shape) -> dict[str, float]:
    validation = [q._volume(shape, s) for s in VALIDATION_SEEDS]
    test = [x for _, x in q.load_test_set("volumes", sizes)]
    row = {name: score(method, name, validation, 7) for name in (TARGET, *OTHERS)}
    row["test"] = score(method, TARGET, test, 0)
    return row


def markdown(rows: list[dict]) -> str:
    base = next(r for r in rows if r["model"] == "shipped deconv-3d")
    head = f"| model | {TARGET} (target) | " + " | ".join(OTHERS) + f" | {TARGET}, test volumes |"
    lines = [head, "|" + "---|" * (len(OTHERS) + 3)]
    for r in rows:
        cells = []
        for key in (TARGET, *OTHERS, "test"):
            diff = r[key] - base[key]
            cells.append(f"{r[key]:.2f}" + ("" if r is base else f" ({diff:+.2f})"))
        lines.append(f"| {r['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--l2sp", type=float, nargs="*", default=[0.0, 10.0, 100.0])
    parser.add_argument(
        "--scratch",
        type=int,
        nargs="*",
        default=[],
        metavar="PLANAR",
        help="also train new networks from scratch, one per planar-levels value",
    )
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument(
        "--lr", type=float, default=None, help="learning rate (default: dn.train's)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes and steps (smoke run)")
    parser.add_argument("--json", type=Path, help="write the rows here too")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    sizes = q.QUICK if args.quick else q.FULL
    shape = (16, 48, 48) if args.quick else (32, 128, 128)
    steps = 2 if args.quick else args.steps
    rows = [
        {"model": "Wiener (its channel)", **evaluate("wiener", sizes, shape)},
        {"model": "shipped deconv-3d", **evaluate("deconv-3d", sizes, shape)},
    ]
    for l2sp in args.l2sp:
        net, seconds, best = fine_tune(l2sp, steps, sizes, lr=args.lr)
        label = f"fine-tuned, l2sp {l2sp:g} ({steps} × {sizes.care_batch[1]}, kept epoch {best})"
        rows.append({"model": label, "seconds": seconds, **evaluate(net, sizes, shape)})
        print(json.dumps(rows[-1]), flush=True)
    for planar in args.scratch:
        net, seconds, best = fine_tune(0.0, steps, sizes, planar=planar, lr=args.lr)
        label = (
            f"from scratch, planar levels {planar} ({steps} × {sizes.care_batch[1]}, "
            f"lr {args.lr or 'default'}, kept epoch {best})"
        )
        rows.append({"model": label, "seconds": seconds, **evaluate(net, sizes, shape)})
        print(json.dumps(rows[-1]), flush=True)
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
