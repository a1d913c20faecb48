"""Soak test: many restores and a long training run in one process, in bounded memory.

Two phases, each watching the process's resident memory (RSS, psutil):

1. ``--restores`` (default 1000) restores of small images (64 x 64, a new
   random image each time, shipped ``default`` model) in a loop. After a
   warm-up of ``--warmup`` restores (default 50: allocator pools, thread
   pools and caches fill up), RSS must stay within ``--tolerance`` (5 %) of
   its value at the end of the warm-up.
2. ``--train-seconds`` (default 600) of ``dn.train`` (self-supervised, a new
   network, 64-pixel patches) with RSS sampled at every training event. After
   the first tenth of the run, RSS must stay within ``--train-tolerance``
   (10 %) of its value then.

Run::

    python benchmarks/soak.py                            # the full soak (~15 min on a CPU)
    python benchmarks/soak.py --restores 200 --train-seconds 60

It prints a markdown table and exits with status 1 if memory grew past a bound.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time

import numpy as np


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def soak_restores(count: int, warmup: int, size: int, device: str) -> dict:
    import napari_deconvnet as dn

    model = dn.load_model("default")
    rng = np.random.default_rng(0)
    rss = []
    start = time.perf_counter()
    for _ in range(count):
        image = rng.random((size, size), dtype=np.float32)
        out = dn.restore(image, model, device=device)
        if not np.isfinite(out).all():
            raise RuntimeError("restore returned non-finite values")
        rss.append(rss_mb())
    seconds = time.perf_counter() - start
    base = rss[min(warmup, count) - 1]
    after = rss[min(warmup, count) :] or [base]
    return {
        "count": count,
        "seconds": seconds,
        "rss_first": rss[0],
        "rss_base": base,
        "rss_max_after": max(after),
        "rss_last": rss[-1],
        "growth": max(after) / base - 1,
    }


def soak_training(seconds: float, device: str) -> dict:
    import napari_deconvnet as dn

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:256, 0:256] / 256
    clean = 0.5 + 0.3 * np.sin(12 * xx) * np.cos(9 * yy)
    images = [(clean + rng.normal(0, 0.1, clean.shape)).astype(np.float32) for _ in range(4)]
    samples: list[tuple[float, float]] = []
    start = time.perf_counter()

    def callback(event) -> None:
        samples.append((time.perf_counter() - start, rss_mb()))

    result = dn.train(
        images,
        max_seconds=seconds,
        epochs=10**6,
        patch_size=64,
        batch_size=8,
        seed=0,
        device=device,
        callback=callback,
    )
    elapsed = time.perf_counter() - start
    cut = next((i for i, (t, _) in enumerate(samples) if t >= elapsed / 10), 0)
    base = samples[cut][1] if samples else rss_mb()
    after = [r for _, r in samples[cut:]] or [base]
    history = result.history
    return {
        "seconds": elapsed,
        "events": len(samples),
        "epochs": len(history),
        "rss_start": samples[0][1] if samples else base,
        "rss_base": base,
        "rss_max_after": max(after),
        "rss_last": after[-1],
        "growth": max(after) / base - 1,
        "stop_reason": getattr(result, "stop_reason", None),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restores", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--size", type=int, default=64, help="image side (pixels)")
    parser.add_argument("--tolerance", type=float, default=0.05)
    parser.add_argument("--train-seconds", type=float, default=600.0, help="0 skips training")
    parser.add_argument("--train-tolerance", type=float, default=0.10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    gc.collect()
    report = {"rss_at_start": rss_mb(), "threads": args.threads, "device": args.device}
    ok = True
    rows = ["| phase | work | time | RSS after warm-up | max RSS after | growth | bound |"]
    rows.append("|---|---|---:|---:|---:|---:|---:|")
    if args.restores:
        r = soak_restores(args.restores, args.warmup, args.size, args.device)
        report["restores"] = r
        ok &= r["growth"] <= args.tolerance
        rows.append(
            f"| restore | {r['count']} x {args.size}² (warm-up {args.warmup}) | "
            f"{r['seconds']:.0f} s | {r['rss_base']:.0f} MB | {r['rss_max_after']:.0f} MB | "
            f"{100 * r['growth']:+.1f} % | {100 * args.tolerance:.0f} % |"
        )
    if args.train_seconds > 0:
        t = soak_training(args.train_seconds, args.device)
        report["training"] = t
        ok &= t["growth"] <= args.train_tolerance
        rows.append(
            f"| train | {t['epochs']} epochs, {t['events']} events (warm-up: first tenth) | "
            f"{t['seconds']:.0f} s | {t['rss_base']:.0f} MB | {t['rss_max_after']:.0f} MB | "
            f"{100 * t['growth']:+.1f} % | {100 * args.train_tolerance:.0f} % |"
        )
    print("\n".join(rows))
    print(f"\nRSS at start {report['rss_at_start']:.0f} MB; {'PASS' if ok else 'FAIL'}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
