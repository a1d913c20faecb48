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
PSNR minus the shipped model's there.

``--choose`` runs the fine-tuning learning-rate and L2-SP sweep (fixed step
counts, so that a shared CPU does not skew it) whose numbers are in the
README.

Usage::

    python benchmarks/train_speed.py                      # budgets 30 60 120 300
    python benchmarks/train_speed.py --budgets 30 60      # shorter
    python benchmarks/train_speed.py --choose --steps 60  # the lr / L2-SP sweep
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


def plain(train, setup, budget, seed=0, lr=None):
    """The hand-written loop: same network, batch, optimiser and budget; last weights."""
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
    start, steps = time.perf_counter(), 0
    while (elapsed := time.perf_counter() - start) < budget:
        p = elapsed / budget
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
        steps += 1
    return net.eval(), steps


# ---------------------------------------------------------------- runs


def table(budgets: list[float], setups: str, out: Path | None) -> None:
    shipped = dn.load_model("default")
    other_test = halves(*OTHER())[1]
    other_shipped = score(shipped, other_test)
    rows, record = [], {}
    for task, make in TASKS.items():
        train, test = halves(*make())
        base = {
            "noisy": score(test[0], test, model=False),
            "shipped": score(shipped, test),
            "NLM": nlm(test),
        }
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


def choose(steps: int, configs: list[tuple[float, float]]) -> None:
    """Fine-tuning lr and L2-SP strength at a fixed step count: gain and forgetting."""
    train, test = halves(*TASKS["correlated Gaussian"]())
    other_test = halves(*OTHER())[1]
    shipped = dn.load_model("default")
    s_task, s_other = score(shipped, test), score(shipped, other_test)
    print(f"shipped: {s_task:.2f} dB on the task, {s_other:.2f} dB on the forgetting probe")
    print("\n| lr | l2sp | rehearsal | steps | task PSNR (gain) | forgetting probe (change) |")
    print("|---|---|---|---|---|---|")
    for lr, l2sp, rehearsal in configs:
        result = dn.train(
            *train,
            model="default",
            epochs=max(1, steps // 20),
            steps_per_epoch=20,
            lr=lr,
            l2sp=l2sp,
            rehearsal=rehearsal,
            patch_size=PATCH,
            batch_size=BATCH,
            device="cpu",
            preview=False,
        )
        a, b = score(result.model, test), score(result.model, other_test)
        print(
            f"| {lr:g} | {l2sp:g} | {rehearsal:g} | {result.steps} | "
            f"{a:.2f} ({a - s_task:+.2f}) | "
            f"{b:.2f} ({b - s_other:+.2f}) |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=float, nargs="+", default=[30, 60, 120, 300])
    parser.add_argument("--setups", default="abc")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--choose", action="store_true", help="the lr / L2-SP sweep")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument(
        "--configs",
        nargs="+",
        default=["3e-3,0,0", "5e-4,0,0", "5e-4,10,0", "5e-4,100,0", "5e-4,10,0.25", "5e-4,0,0.25"],
        help="lr,l2sp,rehearsal triples for --choose",
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
    if args.choose:
        configs = [tuple(float(v) for v in c.split(",")) for c in args.configs]
        choose(args.steps, configs)
    else:
        table(args.budgets, args.setups, args.json)


if __name__ == "__main__":
    main()
