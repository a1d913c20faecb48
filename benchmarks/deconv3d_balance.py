"""What ``deconv-3d`` adds to its Wiener channel, per condition, and what the MSE loss weighs.

Draws degraded volumes from the ``deconv-3d`` training distribution
(``scripts/train_models.py``'s task: anisotropic Gaussian and widefield
PSFs, Poisson-Gaussian noise at 5-1000 photons with a camera offset on some,
Gaussian noise on others) on phantoms of an unseen seed, normalises them as
``dn.restore`` does, and reports for each model given:

- the mean PSNR gain of its output over its own Wiener input channel, per
  kind of condition (in normalised units, the units the loss sees);
- beside it, the share of a plain MSE loss each kind of condition carries
  (the Wiener channel's squared error, the network's starting point, summed
  per kind over the total).

A kind whose share is tiny gets almost no gradient under plain MSE: the
network can leave it at the Wiener filter's quality. ``balanced-mse``
(``napari_deconvnet.core.losses.balanced_mse``) weighs every sample alike.

Usage::

    python benchmarks/deconv3d_balance.py                       # the shipped model
    python benchmarks/deconv3d_balance.py --models shipped runs/cand.safetensors
    python benchmarks/deconv3d_balance.py --samples 120 --threads 1
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import train_models as tm  # noqa: E402  (the shipped models' training script)
from _machine import machine  # noqa: E402
from _shipped_data import degrade, make_phantom_3d, network_input, to_adu  # noqa: E402

import napari_deconvnet as dn  # noqa: E402


def condition(info: dict) -> str:
    """A coarse name for a sample's degradation."""
    psf = info.get("psf", {}).get("kind", "gaussian")
    if info.get("noise") == "gaussian":
        noise = "Gaussian noise"
    else:
        peak = info["peak"]
        noise = (
            "≤ 20 photons" if peak <= 20 else "20-100 photons" if peak <= 100 else "> 100 photons"
        )
    return f"{psf} PSF, {noise}"


def samples(n: int, seed: int, net) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(condition, normalised input, normalised target)`` from the training distribution."""
    task = tm.TASKS["deconv-3d"]
    rng = np.random.default_rng(seed)
    phantoms = [make_phantom_3d(rng, (48, 128, 128)) for _ in range(4)]
    sampler = tm.Sampler(task, {}, phantoms, net, rng)
    out = []
    while len(out) < n:
        clean = sampler._region()
        noisy, psf, info = degrade(rng, clean, task)
        x, lo, scale = network_input(noisy, psf, net)
        y = ((to_adu(clean, info) - lo) / scale).astype(np.float32)
        if np.abs(y).max() > 10 or np.abs(x).max() > 50:  # the sampler's own rejection
            continue
        out.append((condition(info), x, y))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["shipped"], help="'shipped' or files")
    parser.add_argument("--samples", type=int, default=80)
    parser.add_argument("--seed", type=int, default=4242, help="phantoms and degradations")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    nets = {
        name: dn.load_model("deconv-3d" if name == "shipped" else name).eval()
        for name in args.models
    }
    data = samples(args.samples, args.seed, next(iter(nets.values())))
    wiener_se: dict[str, float] = defaultdict(float)
    gains: dict[str, dict[str, list[float]]] = {m: defaultdict(list) for m in nets}
    for kind, x, y in data:
        mse_w = float(np.mean((x[1] - y) ** 2))
        wiener_se[kind] += mse_w
        for name, net in nets.items():
            with torch.inference_mode():
                out = net(torch.from_numpy(x[None]))[0, 0].numpy()
            gains[name][kind].append(10 * np.log10(mse_w / float(np.mean((out - y) ** 2))))
    total = sum(wiener_se.values())
    print(f"Machine: {machine()}\n")
    print(
        f"{len(data)} volumes of 32×96×96, phantom seed {args.seed}; "
        "gain over the Wiener channel\n"
    )
    print("| condition | volumes | share of plain MSE | " + " | ".join(nets) + " |")
    print("|---|---:|---:|" + "---:|" * len(nets))
    for kind in sorted(wiener_se):
        row = [f"{np.mean(gains[m][kind]):+.2f} dB" for m in nets]
        count = len(gains[next(iter(nets))][kind])
        print(f"| {kind} | {count} | {wiener_se[kind] / total:.1%} | " + " | ".join(row) + " |")
    means = [np.mean([g for v in gains[m].values() for g in v]) for m in nets]
    print(f"| all | {len(data)} | 100% | " + " | ".join(f"{g:+.2f} dB" for g in means) + " |")


if __name__ == "__main__":
    main()
