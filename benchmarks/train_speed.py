"""Quality per second of training: ``dn.train`` against a plain PyTorch loop, on the CPU.

For two kinds of noise on a 256x512 image (train on the left half, report
PSNR on the held-out right half):

- **Poisson-Gaussian** camera noise (peak 20 photons, read noise 2 e-,
  offset 100 ADU) on nuclei and filaments: noise the shipped model knows;
- **spatially correlated Gaussian** noise (white noise blurred by a
  Gaussian of sigma 1 px, std 0.1) on textures: noise that blind denoisers
  cannot remove,

and three set-ups:

- (a) supervised from scratch (a new network of the shipped size);
- (b) supervised fine-tuning of the shipped ``denoise-2d``;
- (c) self-supervised (Noise2Void) fine-tuning of ``denoise-2d``,

each after 30, 60, 120 and 300 s of training (``--budgets``; each budget is
its own run, as a user would run it, with the schedule spread over it),
beside a plain PyTorch loop over the same network, the same patches,
batch, optimiser and budget (the loop one writes by hand: whole image
normalised once, random crops with flips and rotations, AdamW, cosine
schedule over the time budget; fine-tuning starts from the same weights
with the same peak learning rate; it keeps the last weights). Columns
beside them: the noisy input, the shipped model without training and
non-local means (scikit-image, sigma estimated).

**Forgetting**: each fine-tuned model of the correlated-noise task is also
scored on a different image type (membranes and beads) with
Poisson-Gaussian noise that the shipped model knows; the table gives its
PSNR minus the shipped model's there. Models trained from scratch (a) are
also scored on a held-out image of another type with the same noise
(membranes and beads), beside NLM there.

``--choose`` runs the fine-tuning learning-rate, L2-SP and rehearsal sweep
(fixed step counts, so that a shared CPU does not skew it) whose numbers
are in the README; ``--choose-on left`` (the README's) fine-tunes on the top
of the correlated task's training half, scores the gain on its bottom and
the forgetting on the left half of the membranes-and-beads image, so that
the right halves the table reports never choose. ``--overhead STEPS``
times dn.train and the plain loop per step at a fixed step count (CPU
seconds of the process, so other jobs do not count). ``--figure`` draws
PSNR against seconds from the ``--json`` records.

Usage::

    python benchmarks/train_speed.py --json r.json --figure docs/train_speed.png
    python benchmarks/train_speed.py --budgets 30 60      # shorter
    python benchmarks/train_speed.py --setups b --tasks "correlated Gaussian"
    python benchmarks/train_speed.py --choose --choose-on left --steps 30
    python benchmarks/train_speed.py --overhead 60 --setups a
    python benchmarks/train_speed.py --equal-steps 100 --seeds 0 1   # (a) at equal steps
    python benchmarks/train_speed.py --forgetting 30 60 --seeds 0 1 2  # (b): spread over seeds
    python benchmarks/train_speed.py --trajectory 600 50 --seeds 0   # (a): validation vs held-out
    python benchmarks/train_speed.py --plot-only --json a.json b.json --figure f.png
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import napari_deconvnet as dn
from napari_deconvnet.core.adapt import phantom
from napari_deconvnet.core.patches import blind_spot

PATCH, BATCH, CLIP, WD = 64, 16, 1.0, 1e-4
SHAPE = (256, 512)
CAMERA = dict(gain=1.0, offset=100.0, read_noise=2.0)
PEAK = 20.0


# ---------------------------------------------------------------- data


def poisson_gaussian(kinds, seed):
    clean = PEAK * phantom(SHAPE, kinds, rng=seed, mix=2)
    noisy = dn.synthesize(clean, "poisson-gaussian", seed=seed + 1000, **CAMERA)
    return np.asarray(noisy, np.float32), (clean + CAMERA["offset"]).astype(np.float32)


def correlated(kinds, seed):
    clean = phantom(SHAPE, kinds, rng=seed, mix=1)
    rng = np.random.default_rng(seed + 1000)
    from scipy import ndimage

    field = ndimage.gaussian_filter(rng.standard_normal(SHAPE), 1.0)
    noise = 0.1 * field / field.std()
    return (clean + noise).astype(np.float32), clean.astype(np.float32)


TASKS = {
    "Poisson-Gaussian": lambda: poisson_gaussian(["nuclei", "filaments"], 1),
    "correlated Gaussian": lambda: correlated("textures", 2),
}
OTHER = lambda: poisson_gaussian(["membranes", "beads"], 3)  # noqa: E731  forgetting probe


# from scratch must also carry over: a held-out image of another type, same noise
ANOTHER_TYPE = {
    "Poisson-Gaussian": OTHER,
    "correlated Gaussian": lambda: correlated(["membranes", "beads"], 4),
}


def halves(noisy, clean):
    w = SHAPE[1] // 2
    return (noisy[:, :w], clean[:, :w]), (noisy[:, w:], clean[:, w:])


def score(net_or_image, test, model=True):
    noisy, clean = test
    rng = float(clean.max() - clean.min())
    if model:
        out = dn.restore(noisy, copy.deepcopy(net_or_image).cpu().eval(), device="cpu")
    else:
        out = net_or_image
    return float(dn.psnr(out, clean, data_range=rng))


def nlm(test):
    from skimage.restoration import denoise_nl_means, estimate_sigma

    noisy, clean = test
    lo, hi = np.percentile(noisy, [0.5, 99.5])
    x = (noisy - lo) / (hi - lo)
    sigma = float(estimate_sigma(x))
    out = denoise_nl_means(x, h=0.8 * sigma, sigma=sigma, patch_size=5, patch_distance=6)
    return score(out * (hi - lo) + lo, test, model=False)


# ---------------------------------------------------------------- the two loops


def ours(train, setup, budget, seed=0, **extra):
    noisy, clean = train
    kw = dict(max_seconds=budget, patch_size=PATCH, batch_size=BATCH, seed=seed, device="cpu")
    kw.update(preview=False, **extra)
    if setup == "a":
        result = dn.train(noisy, clean, network=dn.load_model("default").config.to_dict(), **kw)
    elif setup == "b":
        result = dn.train(noisy, clean, model="default", **kw)
    else:
        result = dn.train(noisy, model="default", **kw)
    return result.model, result.steps


def plain(train, setup, budget, seed=0, lr=None, steps=None):
    """The hand-written loop: same network, batch, optimiser and budget; last weights.

    ``steps``: run this many steps instead (the schedule spread over them).
    """
    noisy, clean = train
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    lo, hi = np.percentile(noisy, [0.5, 99.5])
    scale = np.float32(hi - lo)
    x_all, y_all = (noisy - np.float32(lo)) / scale, (clean - np.float32(lo)) / scale
    if setup == "a":
        net = dn.DeconvNet(dn.load_model("default").config)
        lr = lr or 3e-3
    else:
        net = copy.deepcopy(dn.load_model("default"))
        lr = lr or 5e-4
    net = net.to(memory_format=torch.channels_last).train()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=WD)
    gen = torch.Generator().manual_seed(seed)
    h, w = x_all.shape
    start, n = time.perf_counter(), 0
    while (elapsed := time.perf_counter() - start) < budget if steps is None else n < steps:
        p = elapsed / budget if steps is None else n / steps
        factor = (
            max(p / 0.05, 0.01)
            if p < 0.05
            else 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * (p - 0.05) / 0.95))
        )
        for group in opt.param_groups:
            group["lr"] = lr * factor
        xs, ys = [], []
        for _ in range(BATCH):
            i, j = rng.integers(h - PATCH + 1), rng.integers(w - PATCH + 1)
            a, b = x_all[i : i + PATCH, j : j + PATCH], y_all[i : i + PATCH, j : j + PATCH]
            k, flip = rng.integers(4), rng.integers(2)
            a, b = np.rot90(a, k), np.rot90(b, k)
            if flip:
                a, b = a[:, ::-1], b[:, ::-1]
            xs.append(np.ascontiguousarray(a))
            ys.append(np.ascontiguousarray(b))
        xb = torch.from_numpy(np.stack(xs))[:, None]
        if setup == "c":
            masked, mask = blind_spot(xb, gen)
            out = net(masked.contiguous(memory_format=torch.channels_last))
            loss = F.mse_loss(out[mask], xb[mask])
        else:
            yb = torch.from_numpy(np.stack(ys))[:, None]
            loss = F.mse_loss(net(xb.contiguous(memory_format=torch.channels_last)), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), CLIP)
        opt.step()
        n += 1
    return net.eval(), n


# ---------------------------------------------------------------- runs


def table(budgets: list[float], setups: str, out: Path | None, tasks=None) -> None:
    shipped = dn.load_model("default")
    other_test = halves(*OTHER())[1]
    other_shipped = score(shipped, other_test)
    rows, record = [], {}
    for task, make in TASKS.items():
        if tasks and task not in tasks:
            continue
        train, test = halves(*make())
        base = {
            "noisy": score(test[0], test, model=False),
            "shipped": score(shipped, test),
            "NLM": nlm(test),
        }
        another = halves(*ANOTHER_TYPE[task]())[1] if "a" in setups else None
        if another is not None:
            base["another type: shipped"] = score(shipped, another)
            base["another type: NLM"] = nlm(another)
        record[task] = {"baselines": base, "runs": []}
        print(f"\n{task}: " + ", ".join(f"{k} {v:.2f} dB" for k, v in base.items()), flush=True)
        for setup in setups:
            for budget in budgets:
                entry = {"setup": setup, "budget": budget}
                for loop, fn in (("ours", ours), ("plain", plain)):
                    net, steps = fn(train, setup, budget)
                    entry[loop] = score(net, test)
                    entry[f"{loop}_steps"] = steps
                    if setup != "a" and task == "correlated Gaussian":
                        entry[f"{loop}_forgetting"] = score(net, other_test) - other_shipped
                    if setup == "a":
                        entry[f"{loop}_another_type"] = score(net, another)
                record[task]["runs"].append(entry)
                print(json.dumps(entry), flush=True)
                rows.append((task, entry, base))
    print_table(rows, other_shipped)
    if out:
        out.write_text(json.dumps(record, indent=1))


def print_table(rows, other_shipped) -> None:
    names = {
        "a": "(a) supervised, from scratch",
        "b": "(b) supervised fine-tuning",
        "c": "(c) self-supervised fine-tuning",
    }
    print(
        "\n| noise | set-up | budget (s) | dn.train PSNR (steps) | plain loop PSNR (steps) "
        "| shipped | NLM | forgetting: dn.train / plain (dB) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for task, e, base in rows:
        forget = (
            f"{e['ours_forgetting']:+.2f} / {e['plain_forgetting']:+.2f}"
            if "ours_forgetting" in e
            else ""
        )
        print(
            f"| {task} | {names[e['setup']]} | {e['budget']:g} | {e['ours']:.2f} "
            f"({e['ours_steps']}) | {e['plain']:.2f} ({e['plain_steps']}) | "
            f"{base['shipped']:.2f} | {base['NLM']:.2f} | {forget} |"
        )
    print(f"\n(forgetting probe: shipped model {other_shipped:.2f} dB on membranes and beads)")
    for task, e, base in rows:
        if "ours_another_type" in e:
            print(
                f"(a) {task}, {e['budget']:g} s, on another image type: dn.train "
                f"{e['ours_another_type']:.2f}, plain {e['plain_another_type']:.2f}, shipped "
                f"{base['another type: shipped']:.2f}, NLM {base['another type: NLM']:.2f} dB"
            )


# images for --choose that the table never sees (other seeds of the same kinds)
CHOICE_TASK = lambda: correlated("textures", 12)  # noqa: E731
CHOICE_KNOWN = lambda: poisson_gaussian(["nuclei", "filaments"], 11)  # noqa: E731
CHOICE_OTHER = lambda: poisson_gaussian(["membranes", "beads"], 13)  # noqa: E731


def fine_tune(train, steps, lr, l2sp, rehearsal, seed=0):
    """``dn.train`` fine-tuning of the shipped model for a fixed number of steps.

    About ten steps an epoch (``steps`` rounded down to a multiple of the
    epochs), as a 60 s run on a 256x256 training half has them (the
    training area over the batch, at least 10), so that validations and
    the keep-the-best rule act as in the timed runs.
    """
    epochs = max(1, math.ceil(steps / 10))
    return dn.train(
        *train,
        model="default",
        epochs=epochs,
        steps_per_epoch=max(1, steps // epochs),
        lr=lr,
        l2sp=l2sp,
        rehearsal=rehearsal,
        patch_size=PATCH,
        batch_size=BATCH,
        seed=seed,
        device="cpu",
        preview=False,
    )


def top_bottom(half):
    """A (noisy, clean) half split into its top (training) and bottom (scoring) halves."""
    h = half[0].shape[0] // 2
    return (half[0][:h], half[1][:h]), (half[0][h:], half[1][h:])


def choose_on_left(steps, configs, known=False):
    """--choose on the table's training halves, never on the right halves it reports.

    Fine-tunes on the top of the correlated task's left half and scores the
    gain on its bottom; the forgetting probe is the left half of the
    membranes-and-beads image (the table scores its right half).
    """
    train, test = top_bottom(halves(*TASKS["correlated Gaussian"]())[0])
    other_test = halves(*OTHER())[0]
    shipped = dn.load_model("default")
    s_task, s_other = score(shipped, test), score(shipped, other_test)
    print(f"images: left halves; shipped: {s_task:.2f} dB task, {s_other:.2f} dB probe")
    if known:
        k_train, k_test = top_bottom(halves(*TASKS["Poisson-Gaussian"]())[0])
        s_known = score(shipped, k_test)
        print(f"shipped: {s_known:.2f} dB on known noise (Poisson-Gaussian nuclei, filaments)")
    head = "| lr | l2sp | rehearsal | steps | task PSNR (gain) | forgetting probe (change) |"
    print("\n" + head + (" known noise (change) |" if known else ""))
    print("|---|---|---|---|---|---|" + ("---|" if known else ""))
    for lr, l2sp, rehearsal, *n in configs:
        n = int(n[0]) if n else steps
        result = fine_tune(train, n, lr, l2sp, rehearsal)
        a, b = score(result.model, test), score(result.model, other_test)
        line = (
            f"| {lr:g} | {l2sp:g} | {rehearsal:g} | {result.steps} | "
            f"{a:.2f} ({a - s_task:+.2f}) | {b:.2f} ({b - s_other:+.2f}) |"
        )
        if known:
            k = score(fine_tune(k_train, n, lr, l2sp, rehearsal).model, k_test)
            line += f" {k:.2f} ({k - s_known:+.2f}) |"
        print(line, flush=True)


def choose(
    steps: int, configs: list[tuple[float, float, float]], data: str = "separate", known=False
) -> None:
    """Fine-tuning lr, L2-SP strength and rehearsal at a fixed step count.

    ``data="separate"`` (the default) chooses on images the table never
    uses: other seeds of the same image kinds, trained on their left half
    and scored on their right half; ``"left"`` on the table's training
    halves only (see :func:`choose_on_left`); ``"table"`` uses the table's
    own images (the held-out right halves it reports). ``known`` adds a fine-tuning on
    Poisson-Gaussian nuclei and filaments (noise the shipped model knows).
    """
    if data == "left":  # the table's training halves: top quarter trains, bottom scores
        choice = choose_on_left(steps, configs, known)
        return choice
    if data == "separate":
        make_task, make_other, make_known = CHOICE_TASK, CHOICE_OTHER, CHOICE_KNOWN
    else:
        make_task, make_other = TASKS["correlated Gaussian"], OTHER
        make_known = TASKS["Poisson-Gaussian"]
    train, test = halves(*make_task())
    other_test = halves(*make_other())[1]
    shipped = dn.load_model("default")
    s_task, s_other = score(shipped, test), score(shipped, other_test)
    print(
        f"images: {data}; shipped: {s_task:.2f} dB on the task, {s_other:.2f} dB on the "
        "forgetting probe"
    )
    if known:
        k_train, k_test = halves(*make_known())
        s_known = score(shipped, k_test)
        print(f"shipped: {s_known:.2f} dB on known noise (Poisson-Gaussian nuclei, filaments)")
    head = "| lr | l2sp | rehearsal | steps | task PSNR (gain) | forgetting probe (change) |"
    print("\n" + head + (" known noise (change) |" if known else ""))
    print("|---|---|---|---|---|---|" + ("---|" if known else ""))
    for lr, l2sp, rehearsal in configs:
        result = fine_tune(train, steps, lr, l2sp, rehearsal)
        a, b = score(result.model, test), score(result.model, other_test)
        line = (
            f"| {lr:g} | {l2sp:g} | {rehearsal:g} | {result.steps} | "
            f"{a:.2f} ({a - s_task:+.2f}) | {b:.2f} ({b - s_other:+.2f}) |"
        )
        if known:
            k = score(fine_tune(k_train, steps, lr, l2sp, rehearsal).model, k_test)
            line += f" {k:.2f} ({k - s_known:+.2f}) |"
        print(line, flush=True)


def equal_steps(steps: int, seeds: list[int], tasks=None) -> None:
    """From scratch (a) at a fixed step count: dn.train against the plain loop, per seed.

    Both train a new network of the shipped size for exactly `steps` steps
    (dn.train: 5 epochs, a validation after each, the best kept; the plain
    loop: its last weights), so that only the recipes differ, not how many
    steps a loaded machine let each make. PSNR on the held-out right half
    and on a held-out image of another type with the same noise.
    """
    print("\n| noise | seed | steps | dn.train | plain loop | another type: dn.train / plain |")
    print("|---|---|---|---|---|---|")
    for task in tasks or TASKS:
        train, test = halves(*TASKS[task]())
        other = halves(*ANOTHER_TYPE[task]())[1]
        for seed in seeds:
            net, n = plain(train, "a", 1e9, seed=seed, steps=steps)
            p_test, p_other = score(net, test), score(net, other)
            epochs = max(1, min(5, steps))
            result = dn.train(
                *train,
                network=dn.load_model("default").config.to_dict(),
                epochs=epochs,
                steps_per_epoch=steps // epochs,
                patch_size=PATCH,
                batch_size=BATCH,
                seed=seed,
                device="cpu",
                preview=False,
            )
            o_test, o_other = score(result.model, test), score(result.model, other)
            print(
                f"| {task} | {seed} | {result.steps} / {n} | {o_test:.2f} | {p_test:.2f} | "
                f"{o_other:.2f} / {p_other:.2f} |",
                flush=True,
            )


def scratch_checkpoints(data, steps: int, every: int, seed: int = 0, jitter=None):
    """The epoch events, every `every` steps, of one ``dn.train_iter`` run from scratch.

    A new network of the shipped size on `data` (``(noisy, clean)``, or
    ``(noisy,)`` for Noise2Void: ``blind_spot="random"``, as the README's
    figures were made, before Neighbor2Neighbor became a new network's
    default), the table's patch and batch, `steps` steps in epochs of 10 (a
    validation after each), ``intensity_jitter=jitter``.
    """
    extra = {"blind_spot": "random"} if len(data) == 1 else {}
    events = dn.train_iter(
        *data,
        **extra,
        network=dn.load_model("default").config.to_dict(),
        epochs=max(1, steps // 10),
        steps_per_epoch=10,
        patch_size=PATCH,
        batch_size=BATCH,
        seed=seed,
        device="cpu",
        preview=False,
        intensity_jitter=jitter,
    )
    return (e for e in events if e.kind == "epoch" and e.step % every == 0)


def trajectory(steps: int, every: int, tasks=None, seed: int = 0, jitters=(None,)) -> None:
    """(a) from scratch along one run: validation PSNR against held-out PSNR.

    One ``dn.train`` run of `steps` steps (epochs of 10 steps, a validation
    after each), and every `every` steps the live network scores the
    held-out right half and the image of another type. Shows whether the
    validation split, cut from the training half, tracks what the model
    does on data it never saw. Validation PSNR is in normalised units
    (data range 1), the held-out columns in the clean image's range, so
    compare their trends, not their values.
    """
    print(
        "\n| noise | intensity jitter | step | validation (training half) | held-out right half "
        "| another type |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for task, jitter in ((t, j) for t in tasks or TASKS for j in jitters):
        train, test = halves(*TASKS[task]())
        other = halves(*ANOTHER_TYPE[task]())[1]
        for event in scratch_checkpoints(train, steps, every, seed, jitter):
            val = event.metrics.get("val_psnr", float("nan"))
            p_test, p_other = score(event.model, test), score(event.model, other)
            print(
                f"| {task} | {'auto' if jitter is None else jitter} | {event.step} | {val:.2f} | "
                f"{p_test:.2f} | {p_other:.2f} |",
                flush=True,
            )


def jitter_choice(
    steps: int,
    jitters: list[float],
    image_seeds: list[int],
    every: int = 100,
    self_supervised: bool = False,
):
    """(a) from scratch with each intensity jitter, on images the table never uses.

    Poisson-Gaussian nuclei and filaments of each seed in `image_seeds`
    (trained on the left half, scored on the right) and membranes and beads
    of seed + 2 (another type, the right half), as :data:`CHOICE_KNOWN` and
    :data:`CHOICE_OTHER` are for seed 11; ``dn.train_iter`` from scratch, the
    table's patch and batch, epochs of 10 steps, the live network scored every
    `every` steps. Chooses ``train``'s default ``intensity_jitter`` without
    the table's images. `self_supervised`: Noise2Void on the noisy half
    alone (no clean target), as ``dn.train(noisy)`` from scratch ran before
    2026-12-04 (now Neighbor2Neighbor by default).
    """
    print(
        "\n| image seed | jitter | "
        + " | ".join(f"step {k}: same / other" for k in range(every, steps + 1, every))
        + " |"
    )
    print("|---|---|" + "---|" * (steps // every))
    finals: dict[float, list[tuple[float, float]]] = {j: [] for j in jitters}
    for image_seed in image_seeds:
        train, test = halves(*poisson_gaussian(["nuclei", "filaments"], image_seed))
        other = halves(*poisson_gaussian(["membranes", "beads"], image_seed + 2))[1]
        data = train[:1] if self_supervised else train
        for jitter in jitters:
            cells = []
            for event in scratch_checkpoints(data, steps, every, 0, jitter):
                a, b = score(event.model, test), score(event.model, other)
                cells.append(f"{a:.2f} / {b:.2f}")
            finals[jitter].append((a, b))
            print(f"| {image_seed} | {jitter:g} | " + " | ".join(cells) + " |", flush=True)
    print(f"\nMean over image seeds at step {steps} (same type / another type):")
    for jitter, rows in finals.items():
        same, other = np.mean([r[0] for r in rows]), np.mean([r[1] for r in rows])
        print(f"- jitter {jitter:g}: {same:.2f} / {other:.2f} dB")


def forgetting_seeds(step_counts: list[int], seeds: list[int]) -> None:
    """(b) on the correlated task at fixed step counts, several seeds: gain and forgetting.

    The default fine-tuning recipe (``fine_tune`` with dn.train's own lr,
    L2-SP and rehearsal) for each step count and seed, on the table's images
    (training half, held-out right half, the membranes-and-beads probe), so
    that the spread of the forgetting over seeds shows beside the timed
    table's single runs.
    """
    train, test = halves(*TASKS["correlated Gaussian"]())
    other_test = halves(*OTHER())[1]
    shipped = dn.load_model("default")
    s_task, s_other = score(shipped, test), score(shipped, other_test)
    print(f"shipped: {s_task:.2f} dB on the task, {s_other:.2f} dB on the forgetting probe")
    print("\n| steps | seeds | gain (mean, min to max) | forgetting (mean, min to max) |")
    print("|---|---|---|---|")
    for steps in step_counts:
        gains, losses = [], []
        for seed in seeds:
            result = fine_tune(train, steps, None, None, None, seed=seed)
            gains.append(score(result.model, test) - s_task)
            losses.append(score(result.model, other_test) - s_other)
        print(
            f"| {steps} | {len(seeds)} | {np.mean(gains):+.2f} ({min(gains):+.2f} to "
            f"{max(gains):+.2f}) | {np.mean(losses):+.2f} ({min(losses):+.2f} to "
            f"{max(losses):+.2f}) |",
            flush=True,
        )


def overhead(steps: int, repeats: int, setups: str = "ab") -> None:
    """Time per step of ``dn.train`` and of the plain loop at a fixed step count.

    Both whole calls are timed (set-up, data, validations included), in CPU
    seconds of this process (``time.process_time``: what other jobs on a
    shared machine take does not count) and in wall seconds; runs
    interleave, ours then plain, ``repeats`` times, and the ratio is the
    median of the paired ratios. (a) trains a new network of the shipped
    size; (b) fine-tunes it with the default recipe, whose rehearsal adds
    ``REHEARSAL_FINE_TUNE`` of a batch to every step (the plain loop has
    none).
    """
    train, _ = halves(*TASKS["correlated Gaussian"]())
    print(f"\n{steps} steps per run, {repeats} interleaved repeats")
    print("| set-up | dn.train CPU s/step | plain CPU s/step | ratio (CPU) | ratio (wall) |")
    print("|---|---|---|---|---|")
    for setup in setups:
        cpu, wall = {"ours": [], "plain": []}, {"ours": [], "plain": []}
        for r in range(repeats):
            for loop in ("ours", "plain"):
                c0, w0 = time.process_time(), time.perf_counter()
                if loop == "ours":
                    kw = dict(epochs=max(1, math.ceil(steps / 10)), steps_per_epoch=min(steps, 10))
                    kw.update(patch_size=PATCH, batch_size=BATCH, seed=r, device="cpu")
                    if setup == "a":
                        net = dn.load_model("default").config.to_dict()
                        result = dn.train(*train, network=net, preview=False, **kw)
                    else:
                        result = dn.train(*train, model="default", preview=False, **kw)
                    n = result.steps
                else:
                    n = plain(train, setup, None, seed=r, steps=steps)[1]
                cpu[loop].append((time.process_time() - c0) / n)
                wall[loop].append((time.perf_counter() - w0) / n)
        ratio_cpu = np.median(np.divide(cpu["ours"], cpu["plain"]))
        ratio_wall = np.median(np.divide(wall["ours"], wall["plain"]))
        print(
            f"| ({setup}) | {np.median(cpu['ours']):.3f} | {np.median(cpu['plain']):.3f} | "
            f"{ratio_cpu:.3f} | {ratio_wall:.3f} |",
            flush=True,
        )


def figure(record_path: Path, out: Path) -> None:
    """PSNR against seconds from ``--json`` records: one panel per kind of noise."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    record = {}
    for path in record_path if isinstance(record_path, list) else [record_path]:
        for task, data in json.loads(Path(path).read_text()).items():
            record.setdefault(task, {"baselines": data["baselines"], "runs": []})
            record[task]["runs"] += data["runs"]
    fig, axes = plt.subplots(1, len(record), figsize=(6 * len(record), 4.2), squeeze=False)
    colours = {"a": "tab:blue", "b": "tab:orange", "c": "tab:green"}
    names = {"a": "(a) from scratch", "b": "(b) fine-tuning", "c": "(c) self-sup. fine-tuning"}
    for ax, (task, data) in zip(axes[0], record.items(), strict=True):
        for setup in "abc":
            runs = sorted(
                (e for e in data["runs"] if e["setup"] == setup), key=lambda e: e["budget"]
            )
            if not runs:
                continue
            t = [e["budget"] for e in runs]
            for loop, style in (("ours", "-o"), ("plain", "--x")):
                label = f"{names[setup]}, {'dn.train' if loop == 'ours' else 'plain loop'}"
                ax.plot(t, [e[loop] for e in runs], style, color=colours[setup], label=label)
                for e in runs:  # the step count beside each point
                    ax.annotate(
                        str(e[f"{loop}_steps"]),
                        (e["budget"], e[loop]),
                        textcoords="offset points",
                        xytext=(4, -9 if loop == "ours" else 4),
                        fontsize=6,
                        color=colours[setup],
                    )
        for name, style in (("shipped", ":"), ("NLM", "-.")):
            ax.axhline(data["baselines"][name], color="grey", ls=style, lw=1)
            ax.annotate(
                name,
                (1.0, data["baselines"][name]),
                xycoords=("axes fraction", "data"),
                fontsize=8,
                color="grey",
                ha="right",
                va="bottom",
            )
        ax.set_xscale("log")
        ax.minorticks_off()
        budgets = sorted({e["budget"] for e in data["runs"]})
        ax.set_xticks(budgets, [f"{b:g}" for b in budgets])
        ax.set_xlabel("training time (s, CPU, 1 thread)")
        ax.set_ylabel("PSNR on the held-out half (dB)")
        ax.set_title(f"{task} noise (steps beside the points)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=float, nargs="+", default=[30, 60, 120, 300])
    parser.add_argument("--setups", default="abc")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument(
        "--json",
        type=Path,
        nargs="+",
        default=None,
        help="write the results here (--plot-only: read them from one or more files)",
    )
    parser.add_argument(
        "--tasks",
        nargs="+",
        choices=tuple(TASKS),
        default=None,
        help="only these kinds of noise (default: both)",
    )
    parser.add_argument("--choose", action="store_true", help="the lr / L2-SP sweep")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument(
        "--configs",
        nargs="+",
        default=["3e-3,0,0", "5e-4,0,0", "5e-4,10,0", "5e-4,100,0", "5e-4,10,0.25", "5e-4,0,0.25"],
        help="lr,l2sp,rehearsal triples for --choose (a fourth value: its own step count, "
        "with --choose-on left)",
    )
    parser.add_argument(
        "--choose-on",
        choices=("separate", "left", "table"),
        default="separate",
        help="--choose on images the table never uses (other seeds; default) or on its own",
    )
    parser.add_argument(
        "--known", action="store_true", help="--choose: also fine-tune on Poisson-Gaussian noise"
    )
    parser.add_argument(
        "--overhead",
        type=int,
        default=None,
        metavar="STEPS",
        help="time per step of dn.train and the plain loop at this fixed step count",
    )
    parser.add_argument("--repeats", type=int, default=3, help="--overhead: interleaved repeats")
    parser.add_argument(
        "--equal-steps",
        type=int,
        default=None,
        metavar="STEPS",
        help="(a) from scratch: dn.train against the plain loop at this step count",
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1], help="--equal-steps, --forgetting"
    )
    parser.add_argument(
        "--trajectory",
        type=int,
        nargs=2,
        default=None,
        metavar=("STEPS", "EVERY"),
        help="(a) from scratch: one run of STEPS steps, validation and held-out PSNR every "
        "EVERY steps (a multiple of 10)",
    )
    parser.add_argument(
        "--jitter-choice",
        type=int,
        default=None,
        metavar="STEPS",
        help="(a) from scratch with each of --jitters, on --image-seeds (not the table's "
        "images): the held-out half and another type every 100 steps",
    )
    parser.add_argument("--jitters", type=float, nargs="+", default=[0.0, 0.25])
    parser.add_argument("--image-seeds", type=int, nargs="+", default=[11, 21, 31])
    parser.add_argument(
        "--self-supervised",
        action="store_true",
        help="--jitter-choice: Noise2Void on the noisy half alone",
    )
    parser.add_argument(
        "--forgetting",
        type=int,
        nargs="+",
        default=None,
        metavar="STEPS",
        help="(b) on the correlated task at these step counts, for each of --seeds: the "
        "gain and the forgetting, mean and range",
    )
    parser.add_argument(
        "--figure",
        type=Path,
        default=None,
        help="write the PSNR-against-seconds figure (PNG) from --json; with --json FILE "
        "alone and no run, --figure only plots an existing record",
    )
    parser.add_argument(
        "--plot-only", action="store_true", help="only draw --figure from an existing --json"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)",
        flush=True,
    )
    if args.plot_only:
        figure(args.json, args.figure)
        return
    json_out = args.json[0] if args.json else None
    if args.overhead:
        overhead(args.overhead, args.repeats, args.setups.replace("c", "") or "a")
        return
    if args.equal_steps:
        equal_steps(args.equal_steps, args.seeds, args.tasks)
        return
    if args.forgetting:
        forgetting_seeds(args.forgetting, args.seeds)
        return
    if args.jitter_choice:
        jitter_choice(
            args.jitter_choice,
            args.jitters,
            args.image_seeds,
            self_supervised=args.self_supervised,
        )
        return
    if args.trajectory:
        trajectory(*args.trajectory, args.tasks, args.seeds[0], args.jitters)
        return
    if args.choose:
        configs = [tuple(float(v) for v in c.split(",")) for c in args.configs]
        choose(args.steps, configs, args.choose_on, args.known)
    else:
        table(args.budgets, args.setups, json_out, args.tasks)
        if args.figure and json_out:
            figure(json_out, args.figure)


if __name__ == "__main__":
    main()
