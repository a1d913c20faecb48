"""Speed and memory of ``dn.restore`` against the same network called untiled.

Each case runs in a fresh subprocess, so that its peak resident memory is its
own. The baseline normalises the image, reflect-pads it and calls the network
once on the whole image: the fastest a single call can be, but with memory
that grows with the network's width times the image size. The ratio
``restore / untiled`` of seconds is the tiling overhead.

Two more measurements, each a ratio against float32 in the same process:

- ``--bfloat16``: ``precision="bfloat16"`` against ``"float32"`` with the
  shipped ``denoise-2d``: speed on a 1024² image, and the PSNR cost on the
  quality benchmark's held-out test data (``benchmarks/quality.py``: tasks
  ``gaussian-25`` on centre crops of the test photos and
  ``poisson-gaussian-20`` on the test phantoms, same seeds). The ``"auto"``
  precision may only pick bfloat16 where this cost is below 0.05 dB and the
  CPU has bfloat16 units (:data:`napari_deconvnet.core.devices.CPU_AUTO_BFLOAT16`).
- ``--3d``: the shipped ``denoise-3d`` on a 64×256×256 volume: today's
  float32 path against variants that give the same output (bfloat16 where
  the CPU has bfloat16 units; an experimental swap of the two layers that
  oneDNN runs slowly in channels-last 3D, not shipped), with the maximum
  difference.

Usage::

    python benchmarks/restore_speed.py            # the README table
    python benchmarks/restore_speed.py --quick    # 512² and 2048² only
    python benchmarks/restore_speed.py --bfloat16 # bfloat16: speed and PSNR cost
    python benchmarks/restore_speed.py --3d       # 3D restore variants
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


def _timed(call, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = call()
        times.append(time.perf_counter() - t0)
    return min(times), out


def bfloat16_cost(repeats: int, crop: int) -> None:
    """Speed ratio and PSNR cost of bfloat16 against float32 (denoise-2d)."""
    import warnings

    import numpy as np

    import napari_deconvnet as dn
    from napari_deconvnet.core.devices import cpu_has_native_bfloat16

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    import quality as q

    warnings.simplefilter("ignore", RuntimeWarning)  # emulated bfloat16
    net = dn.load_model("denoise-2d")
    image = np.random.default_rng(0).random((1024, 1024), dtype=np.float32)
    dn.restore(image[:64, :64], net, device="cpu", precision="bfloat16")  # warm-up
    f32_s, _ = _timed(lambda: dn.restore(image, net, device="cpu", precision="float32"), repeats)
    bf_s, _ = _timed(lambda: dn.restore(image, net, device="cpu", precision="bfloat16"), repeats)
    native = cpu_has_native_bfloat16()
    print(f"Machine: {machine()}; native bfloat16 (AMX or AVX512-BF16): {native}\n")
    print(
        f"Speed on 1024² (denoise-2d): float32 {f32_s:.2f} s, bfloat16 {bf_s:.2f} s, "
        f"ratio {f32_s / bf_s:.2f}× (> 1: bfloat16 is faster)\n"
    )
    sizes = q.Sizes(**{**q.FULL.__dict__, "crop": crop})
    print("| task | image | PSNR float32 | PSNR bfloat16 | cost (dB) | max diff (of range) |")
    print("|---|---|---|---|---|---|")
    costs = []
    for index, task in enumerate(q.TASKS):
        if task.name not in ("gaussian-25", "poisson-gaussian-20"):
            continue
        for i, (name, clean) in enumerate(q.load_test_set(task.data, sizes)):
            noisy = q.degrade(task, clean, np.random.default_rng([0, index, 0, i]), None)
            f32 = dn.restore(noisy, net, device="cpu", precision="float32")
            bf16 = dn.restore(noisy, net, device="cpu", precision="bfloat16")
            p32, pbf = q.score(f32, clean)[0], q.score(bf16, clean)[0]
            diff = float(np.abs(bf16 - f32).max() / (np.ptp(f32) or 1.0))
            costs.append(p32 - pbf)
            print(
                f"| {task.name} | {name} | {p32:.3f} | {pbf:.3f} | {p32 - pbf:+.3f} | {diff:.1e} |"
            )
    mean = float(np.mean(costs))
    print(
        f"\nMean PSNR cost of bfloat16: {mean:+.3f} dB (max {max(costs):+.3f} dB); "
        f"'auto' may pick bfloat16 on the CPU only if < 0.05 dB and the CPU has "
        f"bfloat16 units: {'yes' if mean < 0.05 and native else 'no'}"
    )


class _Pointwise(__import__("torch").nn.Module):
    """A 1×1×1 convolution as a matrix product over channels-last voxels."""

    def __init__(self, conv) -> None:
        super().__init__()
        out_c = conv.out_channels
        self.register_buffer("w", conv.weight.detach().reshape(out_c, -1).t().contiguous())
        self.register_buffer("b", conv.bias.detach().clone())

    def forward(self, x):
        return (x.permute(0, 2, 3, 4, 1) @ self.w + self.b).permute(0, 4, 1, 2, 3)


class _Im2col(__import__("torch").nn.Module):
    """A 3×3×3 convolution of few input channels as one matrix product."""

    def __init__(self, conv) -> None:
        super().__init__()
        self.k = conv.kernel_size
        w = conv.weight.detach().permute(2, 3, 4, 1, 0)
        self.register_buffer("w", w.reshape(-1, conv.out_channels).contiguous())
        self.register_buffer("b", conv.bias.detach().clone())

    def forward(self, x):
        import torch
        import torch.nn.functional as F

        n, c, d, h, w = x.shape
        kz, ky, kx = self.k
        pad = (kx // 2, kx // 2, ky // 2, ky // 2, kz // 2, kz // 2)
        xp = F.pad(x, pad).permute(0, 2, 3, 4, 1)
        cols = torch.empty(n, d, h, w, kz * ky * kx * c, dtype=x.dtype, device=x.device)
        i = 0
        for a in range(kz):
            for b in range(ky):
                for e in range(kx):
                    cols[..., i * c : (i + 1) * c] = xp[:, a : a + d, b : b + h, e : e + w]
                    i += 1
        y = torch.addmm(self.b, cols.view(-1, cols.shape[-1]), self.w)
        return y.view(n, d, h, w, -1).permute(0, 4, 1, 2, 3)


def restore_3d(repeats: int, shape: tuple[int, int, int]) -> None:
    """Today's 3D float32 restore against same-output variants (ratios)."""
    import copy
    import warnings

    import numpy as np

    import napari_deconvnet as dn
    from napari_deconvnet.core.devices import cpu_has_native_bfloat16
    from napari_deconvnet.core.tiling import plan_tiles

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    import quality as q

    net = dn.load_model("denoise-3d")
    clean = q._volume(shape, q.TEST_VOLUME_SEEDS[0])
    volume = (clean + np.random.default_rng(0).normal(0, 0.1, shape)).astype(np.float32)
    fast = copy.deepcopy(net)
    first = fast.encoder[0][0]
    fast.encoder[0][0] = _Im2col(first)
    fast.head = _Pointwise(fast.head)
    dn.restore(volume[:8, :32, :32], net, device="cpu")  # warm-up
    variants = {"float32 (today)": (net, "float32"), "float32, swapped layers": (fast, "float32")}
    if cpu_has_native_bfloat16():
        variants["bfloat16"] = (net, "bfloat16")
    plan = plan_tiles(shape, net)
    haloed = np.prod([t + 2 * plan["halo"] for t in plan["tile"]])
    work = haloed * plan["n_tiles"] / np.prod(shape)
    print(f"Machine: {machine()}\n")
    print(
        f"denoise-3d on {'×'.join(map(str, shape))}: tile {plan['tile']}, halo "
        f"{plan['halo']}, {plan['n_tiles']} tile(s); voxels computed per output voxel "
        f"{work:.2f}\n"
    )
    print("| variant | MVox/s | ratio to float32 (today) | max diff (of range) |")
    print("|---|---|---|---|")
    base = ref = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for label, (model, precision) in variants.items():
            seconds, out = _timed(
                lambda m=model, p=precision: dn.restore(volume, m, device="cpu", precision=p),
                repeats,
            )
            if base is None:
                base, ref = seconds, out
            diff = float(np.abs(out - ref).max() / (np.ptp(ref) or 1.0))
            print(
                f"| {label} | {volume.size / seconds / 1e6:.3f} | {base / seconds:.2f}× | "
                f"{diff:.1e} |"
            )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="512² and 2048² only")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--bfloat16", action="store_true", help="bfloat16: speed, PSNR cost")
    parser.add_argument("--crop", type=int, default=256, help="test photo crop (--bfloat16)")
    parser.add_argument("--3d", dest="three_d", action="store_true", help="3D restore variants")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bfloat16:
        bfloat16_cost(args.repeats, args.crop)
        return
    if args.three_d:
        restore_3d(args.repeats, (32, 128, 128) if args.quick else (64, 256, 256))
        return
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
