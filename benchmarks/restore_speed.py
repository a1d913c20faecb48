"""Speed and memory of ``dn.restore`` against the same network called untiled.

Each case runs in a fresh subprocess, so that its peak resident memory is its
own. The baseline normalises the image, reflect-pads it and calls the network
once on the whole image: the fastest a single call can be, but with memory
that grows with the network's width times the image size. The ratio
``restore / untiled`` of seconds is the tiling overhead.

Usage::

    python benchmarks/restore_speed.py            # the README table
    python benchmarks/restore_speed.py --quick    # 512² and 2048² only
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from _machine import machine

CASES = {
    "2D 512²": (512, 512),
    "2D 2048²": (2048, 2048),
    "2D 4096²": (4096, 4096),
    "3D 64×512×512": (64, 512, 512),
}


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _model(ndim: int):
    import torch

    import napari_deconvnet as dn

    net = dn.load_model("default")
    if ndim == 3:  # no shipped 3D model yet: same architecture in 3D, for speed only
        torch.manual_seed(0)
        net = dn.DeconvNet(net.config, ndim=3)
        net.metadata = {"name": "default-arch-3d"}
    return net.eval()


def _untiled(image, net):
    import numpy as np
    import torch

    lo, hi = np.percentile(image[:: max(1, image.size // (1 << 22))], [0.5, 99.5])
    halo = net.halo
    x = np.pad((image - lo) / (hi - lo), halo, mode="reflect").astype(np.float32)
    fmt = torch.channels_last if image.ndim == 2 else torch.channels_last_3d
    net = net.to(memory_format=fmt)
    with torch.inference_mode():
        y = net(torch.from_numpy(x)[None, None].contiguous(memory_format=fmt))[0, 0].numpy()
    crop = tuple(slice(halo, -halo) for _ in range(image.ndim))
    return y[crop] * (hi - lo) + lo


def run_case(name: str, method: str, repeats: int) -> dict:
    """Child process: time one (case, method) and report peak RSS above the start."""
    import numpy as np
    import torch

    import napari_deconvnet as dn

    torch.set_num_threads(torch.get_num_threads())
    shape = CASES[name]
    image = np.random.default_rng(0).random(shape, dtype=np.float32)
    net = _model(len(shape))
    small = image[(slice(0, 16),) * image.ndim]
    dn.restore(small, net)  # warm-up: threads, allocator
    before = _rss()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        if method == "restore":
            out = dn.restore(image, net, device="cpu")
        else:
            out = _untiled(image, net)
        times.append(time.perf_counter() - t0)
        del out
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "seconds": min(times),
        "extra_rss": peak - before,
        "input_bytes": image.size * 4,
        "pixels": image.size,
    }


def _child(name: str, method: str, repeats: int) -> dict:
    cmd = [sys.executable, __file__, "--child", name, method, str(repeats)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="512² and 2048² only")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        name, method, repeats = args.child
        print(json.dumps(run_case(name, method, int(repeats))))
        return
    names = list(CASES)[:2] if args.quick else list(CASES)
    print(f"Machine: {machine()}\n")
    print(
        "| case | restore (tiled, auto) | untiled network (baseline) | time ratio "
        "(tiling overhead) | extra RSS restore | extra RSS untiled | RSS target (2D) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in names:
        repeats = 1 if "4096" in name or "3D" in name else args.repeats
        tiled = _child(name, "restore", repeats)
        base = _child(name, "untiled", repeats)
        unit = "MVox/s" if "3D" in name else "MP/s"
        rate = tiled["pixels"] / tiled["seconds"] / 1e6
        base_rate = base["pixels"] / base["seconds"] / 1e6
        # the linear-memory target is for 2D; 3D tiles get a 2 GB budget on the CPU
        # because a halo on three axes makes small tiles mostly context
        target = 4 * tiled["input_bytes"] + 256 * 2**20
        ok = "met" if tiled["extra_rss"] <= target else "MISSED"
        target_text = f"≤ {target / 2**20:.0f} MB ({ok})" if "2D" in name else "n/a (3D)"
        print(
            f"| {name} | {rate:.2f} {unit} | {base_rate:.2f} {unit} | "
            f"{tiled['seconds'] / base['seconds']:.2f}× | {tiled['extra_rss'] / 2**20:.0f} MB | "
            f"{base['extra_rss'] / 2**20:.0f} MB | {target_text} |"
        )


if __name__ == "__main__":
    main()
