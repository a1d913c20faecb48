"""Training in bfloat16 against float32 on the CPU: steps per second, and quality.

On a CPU with bfloat16 units (AMX or AVX512-BF16), ``dn.train(...,
precision="bfloat16")`` runs the forward and backward passes under
``torch.autocast("cpu", dtype=torch.bfloat16)``, the weights and the
optimiser staying in float32. Issue 11 asks to use it for training only if
it does not hurt the result. This script measures both sides on the tasks
of ``benchmarks/train_speed.py`` (train on the left half of a 256x512
image, score on the held-out right half):

- **equal steps** (``--steps``): the same seed, the same patches and the
  same number of optimiser steps in each precision: the PSNR each reaches
  (what bfloat16 costs per step) and the CPU seconds per step (what it
  saves);
- **equal time** (``--budgets``): fine-tuning the shipped model (set-up b of
  ``train_speed.py``) and training from scratch (a) for a fixed number of
  seconds, as a user of the Train widget does: the PSNR each reaches.

Every score is a float32 restore (``precision="float32"``), so that only the
training differs. Runs alternate between the precisions.

Usage::

    python benchmarks/train_precision.py                       # the README table
    python benchmarks/train_precision.py --steps 20 --budgets 10 --tasks "correlated Gaussian"
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import torch

import napari_deconvnet as dn

sys.path.insert(0, str(Path(__file__).parent))
import train_speed as ts  # noqa: E402  the tasks and data of the quality-per-second table
from _machine import machine  # noqa: E402

PRECISIONS = ("float32", "bfloat16")


def score(net, test) -> float:
    """PSNR of a float32 restore of the held-out half."""
    noisy, clean = test
    span = float(clean.max() - clean.min())
    out = dn.restore(noisy, copy.deepcopy(net).cpu().eval(), device="cpu", precision="float32")
    return float(dn.psnr(out, clean, data_range=span))


def train(train_half, setup: str, precision: str, *, steps=None, seconds=None, seed=0):
    """dn.train for `steps` optimiser steps or `seconds`; (model, steps, CPU seconds)."""
    noisy, clean = train_half
    kw = dict(
        patch_size=ts.PATCH,
        batch_size=ts.BATCH,
        seed=seed,
        device="cpu",
        precision=precision,
        preview=False,
    )
    if steps is not None:
        epochs = max(1, steps // 10)  # about ten steps an epoch, as a short timed run has
        kw.update(epochs=epochs, steps_per_epoch=max(1, steps // epochs))
    else:
        kw.update(max_seconds=seconds)
    if setup == "a":
        kw["network"] = dn.load_model("default").config.to_dict()
    else:
        kw["model"] = "default"
    cpu0 = time.process_time()
    result = dn.train(noisy, clean, **kw)
    return result.model, result.steps, time.process_time() - cpu0


def both_precisions(data: dict, setups: str, **budget):
    """For each task and set-up: ``(task, setup, right half, {precision: (psnr, steps, cpu)})``."""
    for task, (left, right) in data.items():
        for setup in setups:
            row = {}
            for precision in PRECISIONS:  # alternating: the machine's load hits both alike
                net, steps, cpu = train(left, setup, precision, **budget)
                row[precision] = (score(net, right), steps, cpu)
            yield task, setup, right, row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="equal-steps comparison")
    parser.add_argument("--budgets", type=float, nargs="+", default=[60.0])
    parser.add_argument("--setups", default="ab", help="a: from scratch, b: fine-tuning")
    parser.add_argument("--tasks", nargs="+", choices=tuple(ts.TASKS), default=list(ts.TASKS))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from napari_deconvnet.core.devices import cpu_has_native_bfloat16

    print(
        f"Machine: {machine()}; {torch.get_num_threads()} torch thread(s); native bfloat16 "
        f"(AMX or AVX512-BF16): {cpu_has_native_bfloat16()}; load {os.getloadavg()[0]:.1f}\n"
    )
    names = {"a": "(a) from scratch", "b": "(b) fine-tuning"}
    data = {task: ts.halves(*ts.TASKS[task]()) for task in args.tasks}
    shipped = dn.load_model("default")
    if args.steps:
        print(f"Equal steps ({args.steps} optimiser steps, batch {ts.BATCH} of {ts.PATCH}²):\n")
        print(
            "| noise | set-up | shipped | PSNR float32 | PSNR bfloat16 | difference "
            "| CPU s/step float32 | CPU s/step bfloat16 | speed-up |"
        )
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for task, setup, right, row in both_precisions(data, args.setups, steps=args.steps):
            (p32, s32, c32), (pbf, sbf, cbf) = row["float32"], row["bfloat16"]
            t32, tbf = c32 / max(s32, 1), cbf / max(sbf, 1)
            print(
                f"| {task} | {names[setup]} | {score(shipped, right):.2f} | {p32:.2f} | "
                f"{pbf:.2f} | {pbf - p32:+.2f} | {t32:.3f} | {tbf:.3f} | {t32 / tbf:.2f}× |",
                flush=True,
            )
    if args.budgets:
        print("\nEqual time (wall seconds of training, as the Train widget runs it):\n")
        print(
            "| noise | set-up | budget (s) | shipped | float32 PSNR (steps) "
            "| bfloat16 PSNR (steps) | difference |"
        )
        print("|---|---|---:|---:|---:|---:|---:|")
        for budget in args.budgets:
            for task, setup, right, row in both_precisions(data, args.setups, seconds=budget):
                (p32, s32, _), (pbf, sbf, _) = row["float32"], row["bfloat16"]
                print(
                    f"| {task} | {names[setup]} | {budget:g} | {score(shipped, right):.2f} "
                    f"| {p32:.2f} ({s32}) | {pbf:.2f} ({sbf}) | {pbf - p32:+.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
