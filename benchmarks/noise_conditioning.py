"""Blind against noise-conditioned denoising (denoise-2d, denoise-2d-nl) on validation data.

Both models restore the same noisy images through ``dn.restore``; the
table gives the PSNR of each and their difference, per noise, from light to
heavy, Gaussian and Poisson-Gaussian (camera units: gain 2 ADU per
electron, offset 100 ADU, read noise 1.5 electrons). The images are the
validation data of ``scripts/train_default.py`` (the held-out right strips
of two training photographs and phantoms of seeds no training used), never
a benchmark test image: this is what a recipe or checkpoint may be chosen
on. ``benchmarks/quality.py`` then reports the test images
(``ours-denoise-2d-nl`` column).

The last row compares the restore time per megapixel of the two models on a
512x512 image in the same run (the noise map's estimate included).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/noise_conditioning.py
    python benchmarks/noise_conditioning.py --candidate /path/to/denoise-2d-nl.safetensors
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import napari_deconvnet as dn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

#: (label, synthesize model, parameters); camera noise in ADU of the clean image times the peak.
NOISES = [
    ("gaussian σ 5/255", "gaussian", {"sigma": 5 / 255}),
    ("gaussian σ 15/255", "gaussian", {"sigma": 15 / 255}),
    ("gaussian σ 35/255", "gaussian", {"sigma": 35 / 255}),
    ("gaussian σ 50/255", "gaussian", {"sigma": 50 / 255}),
    ("camera, 3 photons", "camera", {"peak": 3.0}),
    ("camera, 10 photons", "camera", {"peak": 10.0}),
    ("camera, 50 photons", "camera", {"peak": 50.0}),
    ("camera, 300 photons", "camera", {"peak": 300.0}),
]
CAMERA = {"gain": 0.5, "offset": 100.0, "read_noise": 1.5}  # gain in electrons per ADU


def validation_images(seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """The held-out strips of train_default.py and two unseen phantoms, 160x160, in [0, 1]."""
    import train_default as td

    out = []
    for name, cut in td.VALIDATION_STRIPS.items():
        strip = td.load_gray(name)[:, -cut:]
        h = strip.shape[0]
        for top in (h // 4 - 80, 3 * h // 4 - 80):
            out.append((f"{name}@{top}", strip[top : top + 160, :160]))
    rng = np.random.default_rng([seed, 99])
    out += [(f"phantom{i}", td.make_phantom(rng, 160).astype(np.float32)) for i in range(2)]
    return out


def degrade(clean: np.ndarray, model: str, params: dict, seed: int):
    """(noisy, clean) in the same units: camera ADU for the camera noise."""
    if model == "gaussian":
        return dn.synthesize(clean, "gaussian", seed=seed, **params), clean
    signal = clean * params["peak"] / CAMERA["gain"]  # expected ADU above the offset
    noisy = dn.synthesize(signal, "poisson-gaussian", seed=seed, **CAMERA)
    return noisy, signal + CAMERA["offset"]


def score(restored: np.ndarray, clean: np.ndarray) -> float:
    lo, hi = float(clean.min()), float(clean.max())
    return float(dn.psnr(np.clip(restored, lo, hi), clean, data_range=hi - lo))


def run(models: dict[str, object], seed: int) -> list[dict]:
    images = validation_images(seed)
    rows = []
    for k, (label, model, params) in enumerate(NOISES):
        psnr = {name: [] for name in models}
        for i, (_, clean) in enumerate(images):
            noisy, target = degrade(clean, model, params, seed=1000 * seed + 10 * k + i)
            for name, net in models.items():
                psnr[name].append(score(dn.restore(noisy, model=net, device="cpu"), target))
        rows.append({"noise": label, **{n: float(np.mean(v)) for n, v in psnr.items()}})
        print(f"  {label}: " + ", ".join(f"{n} {rows[-1][n]:.2f}" for n in models), flush=True)
    return rows


def speed(models: dict[str, object], repeats: int = 3) -> dict[str, float]:
    """Seconds per megapixel of a 512x512 restore, best of `repeats`, interleaved."""
    rng = np.random.default_rng(0)
    image = dn.synthesize(rng.random((512, 512)).astype(np.float32), "gaussian", sigma=0.1)
    best = {name: np.inf for name in models}
    for net in models.values():
        dn.restore(image[:64, :64], model=net, device="cpu")  # warm-up
    for _ in range(repeats):
        for name, net in models.items():
            t0 = time.perf_counter()
            dn.restore(image, model=net, device="cpu")
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: t / (image.size / 1e6) for name, t in best.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="denoise-2d", help="the blind model")
    parser.add_argument(
        "--candidate", default="denoise-2d-nl", help="the noise-conditioned model (name or file)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    models = {"blind": dn.load_model(args.baseline), "conditioned": dn.load_model(args.candidate)}
    rows = run(models, args.seed)
    rates = speed(models)
    print(f"\nMachine: {machine()}; torch threads {args.threads}; seed {args.seed}\n")
    print(f"| noise | {args.baseline} (blind) | {args.candidate} | difference |")
    print("|---|---:|---:|---:|")
    for r in rows:
        diff = r["conditioned"] - r["blind"]
        print(f"| {r['noise']} | {r['blind']:.2f} | {r['conditioned']:.2f} | {diff:+.2f} dB |")
    mean = {n: np.mean([r[n] for r in rows]) for n in ("blind", "conditioned")}
    print(
        f"| **mean** | {mean['blind']:.2f} | {mean['conditioned']:.2f} | "
        f"{mean['conditioned'] - mean['blind']:+.2f} dB |"
    )
    print(
        f"| restore s/MP (512², ratio) | {rates['blind']:.3f} | {rates['conditioned']:.3f} | "
        f"{rates['conditioned'] / rates['blind']:.2f}× |"
    )


if __name__ == "__main__":
    main()
