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
  ``poisson-gaussian-20`` on the test phantoms, same seeds). Bfloat16 is
  opt-in (``"auto"`` is float32 on the CPU since 2026-12-05, as its rounding
  depends on the tiles: :data:`napari_deconvnet.core.devices.CPU_AUTO_BFLOAT16`);
  this measures what the option costs and gains.
  With ``--3d`` too: ``denoise-3d`` and ``deconv-3d`` on a 64×256×256 volume
  (speed, and how far small explicit tiles are from the automatic ones in
  each precision) and the PSNR cost of ``deconv-3d`` on the ``3d-poisson-blur``
  and ``3d-lowlight-20`` test volumes.
- ``--3d``: the shipped ``denoise-3d`` and ``deconv-3d`` on a 64×256×256
  volume (and ``denoise-2d`` on 1024²): centred tiles (each tile computes only
  what its centre depends on; the shipped path) against the whole haloed tile
  through the network (the path before 2026-11-30), alternating in one
  process, medians, with the maximum difference.
- ``--3d --against REV``: the same two 3D models against the package as it
  was at git revision ``REV`` (its ``src`` exported to a temporary folder),
  each restore in a fresh process with one torch thread, alternating old and
  new, the shipped weights of the present tree in both (re-saved in the form
  older releases read); medians and the maximum difference. Both restore in
  ``--precision`` (float32 by default; ``"auto"`` was bfloat16 on CPUs with
  AMX in the old code too). Issue 13's baseline ("3D network restore runs at
  about 0.2 MVox/s") is ``244f3be^``, the code before the centred tiles.
- ``--against REV`` without ``--3d``: the same for ``denoise-2d``,
  ``deconv-2d`` and ``salt-and-pepper`` on the 512² camera photo, each
  degraded as its quality benchmark task degrades it; with
  ``--near-threshold``, ``denoise-2d`` near the light-noise guard's
  threshold (the quality benchmark's first test phantom at 100 photons, its
  first test photo at sigma 15/255) and ``deconv-2d`` on its Airy task, as
  the task blurs it and blurred with nothing beyond the frame ("dark sides",
  which the restore extends: :mod:`napari_deconvnet.core.borders`) (images
  below a quarter megapixel are restored that often over and timed on
  average).

- ``--planar``: anisotropic pooling (``DeconvNetConfig.planar_levels``) at
  ``deconv-3d``'s size (depth 2, 16 base channels, image and Wiener
  channels), planar levels 0 (the shipped kind), 1 and 2, seeded random
  weights (speed does not depend on them), on the same volume, alternating
  in one process: MVox/s, the ratio to 0, and each axis's receptive-field
  extent beside the halo the tiles get (one for every axis, on the
  ``2**depth`` grid).

Usage::

    python benchmarks/restore_speed.py            # the README table
    python benchmarks/restore_speed.py --quick    # 512² and 2048² only
    python benchmarks/restore_speed.py --bfloat16 # bfloat16: speed and PSNR cost
    python benchmarks/restore_speed.py --bfloat16 --3d   # and the 3D models, and tiling
    python benchmarks/restore_speed.py --3d       # 3D restore variants
    python benchmarks/restore_speed.py --3d --against 244f3be^   # against issue 13's code
    python benchmarks/restore_speed.py --against ae89f22   # the 2D models against a revision
    python benchmarks/restore_speed.py --against f2cb956^ --near-threshold --repeats 5
    python benchmarks/restore_speed.py --3d --against 244f3be^ --precision bfloat16
    python benchmarks/restore_speed.py --planar   # anisotropic pooling: speed
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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


def bfloat16_cost(
    repeats: int, crop: int, volume_shape: tuple[int, int, int] | None = None
) -> None:
    """Speed ratio and PSNR cost of bfloat16 against float32 (denoise-2d; 3D with a shape)."""
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
        f"worth asking for (< 0.05 dB, and the CPU has bfloat16 units): "
        f"{'yes' if mean < 0.05 and native else 'no'}"
    )
    if volume_shape is not None:
        bfloat16_3d(repeats, volume_shape, q)


def bfloat16_3d(repeats: int, shape: tuple[int, int, int], q: Any) -> None:
    """The 3D models in bfloat16 against float32: speed, PSNR cost, and tiling.

    Speed on a `shape` volume (median of `repeats` alternating runs); the PSNR
    cost of ``deconv-3d`` on the quality benchmark's ``3d-poisson-blur`` and
    ``3d-lowlight-20`` test volumes (its seeds and PSFs); and how far a restore
    with small explicit tiles is from one with the automatic tiles, in each
    precision. In float32 tiles are exact (the halo holds the receptive
    field); in bfloat16 each convolution's output is rounded to 8 bits of
    mantissa, and tiles of other shapes sum in another order.
    """
    import numpy as np

    import napari_deconvnet as dn

    clean = q._volume(shape, q.TEST_VOLUME_SEEDS[0])
    volume = (clean + np.random.default_rng(0).normal(0, 0.1, shape)).astype(np.float32)
    cases = [("denoise-3d", {}), ("deconv-3d", {"psf": DECONV_3D_PSF})]
    print(f"\nVolume {'×'.join(map(str, shape))}; median of {repeats} alternating runs each\n")
    print(
        "| model | float32 | bfloat16 | speed-up | max diff bfloat16 vs float32 (of range) "
        "| tiles (16, 64, 64) vs automatic, float32 | the same, bfloat16 |"
    )
    print("|---|---|---|---|---|---|---|")
    small_tile = (16, 64, 64)
    for name, extra in cases:
        net = dn.load_model(name)
        dn.restore(volume[:24, :64, :64], net, device="cpu", precision="bfloat16", **extra)
        times: dict[str, list[float]] = {"float32": [], "bfloat16": []}
        outs = {}
        for _ in range(repeats):
            for precision in times:
                t0 = time.perf_counter()
                outs[precision] = dn.restore(
                    volume, net, device="cpu", precision=precision, **extra
                )
                times[precision].append(time.perf_counter() - t0)
        f32, bf = (float(np.median(times[k])) for k in ("float32", "bfloat16"))
        span = float(np.ptp(outs["float32"])) or 1.0
        diff = float(np.abs(outs["bfloat16"] - outs["float32"]).max()) / span
        tiled = {}
        for precision in times:
            out = dn.restore(
                volume, net, device="cpu", precision=precision, tile=small_tile, **extra
            )
            tiled[precision] = float(np.abs(out - outs[precision]).max()) / span
        print(
            f"| {name} | {volume.size / f32 / 1e6:.3f} MVox/s | {volume.size / bf / 1e6:.3f} "
            f"MVox/s | {f32 / bf:.2f}× | {diff:.1e} | {tiled['float32']:.1e} | "
            f"{tiled['bfloat16']:.1e} |"
        )
    print("\n| task | volume | PSNR float32 | PSNR bfloat16 | cost (dB) |")
    print("|---|---|---|---|---|")
    net = dn.load_model("deconv-3d")
    costs = []
    for index, task in enumerate(q.TASKS):
        if task.name not in ("3d-poisson-blur", "3d-lowlight-20"):
            continue
        psf = task.make_psf()
        for i, (name, vol) in enumerate(q.load_test_set(task.data, q.FULL)):
            noisy = q.degrade(task, vol, np.random.default_rng([0, index, 0, i]), psf)
            p32, pbf = (
                q.score(dn.restore(noisy, net, psf=psf, device="cpu", precision=p), vol)[0]
                for p in ("float32", "bfloat16")
            )
            costs.append(p32 - pbf)
            print(f"| {task.name} | {name} | {p32:.3f} | {pbf:.3f} | {p32 - pbf:+.3f} |")
    print(
        f"\nMean PSNR cost of bfloat16 for deconv-3d: {np.mean(costs):+.3f} dB "
        f"(max {max(costs):+.3f} dB)"
    )


def restore_3d(repeats: int, shape: tuple[int, int, int]) -> None:
    """Centred tiles (the shipped path) against the whole-haloed-tile path, in one process.

    ``napari_deconvnet.core.tiling.CENTERED_TILES`` switches between them; the
    runs alternate, and each variant's median is reported, with the maximum
    difference to the old path's output (as a fraction of its range).
    """
    import warnings

    import numpy as np

    import napari_deconvnet as dn
    from napari_deconvnet.core import tiling

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    import quality as q

    clean = q._volume(shape, q.TEST_VOLUME_SEEDS[0])
    volume = (clean + np.random.default_rng(0).normal(0, 0.1, shape)).astype(np.float32)
    image2d = np.random.default_rng(0).random((1024, 1024), dtype=np.float32)
    cases = [
        ("denoise-3d", volume, {}),
        ("deconv-3d", volume, {"psf": DECONV_3D_PSF}),
        ("denoise-2d", image2d, {}),
    ]
    print(f"Machine: {machine()}\n")
    print(
        f"Volume {'×'.join(map(str, shape))}, image 1024²; median of {repeats} alternating "
        "runs each\n"
    )
    print("| model | old (whole tiles) | new (centred tiles) | speed-up | max diff (of range) |")
    print("|---|---|---|---|---|")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for name, image, extra in cases:
            net = dn.load_model(name)
            small = image[(slice(0, 32),) * image.ndim]
            dn.restore(small, net, device="cpu", **extra)  # warm-up
            times: dict[bool, list[float]] = {False: [], True: []}
            outs = {}
            for _ in range(repeats):
                for centered in (False, True):
                    tiling.CENTERED_TILES = centered
                    t0 = time.perf_counter()
                    outs[centered] = dn.restore(image, net, device="cpu", **extra)
                    times[centered].append(time.perf_counter() - t0)
            tiling.CENTERED_TILES = True
            old, new = (float(np.median(times[c])) for c in (False, True))
            ref = outs[False]
            diff = float(np.abs(outs[True] - ref).max() / (np.ptp(ref) or 1.0))
            unit = "MVox/s" if image.ndim == 3 else "MP/s"
            print(
                f"| {name} | {image.size / old / 1e6:.3f} {unit} | "
                f"{image.size / new / 1e6:.3f} {unit} | {old / new:.2f}× | {diff:.1e} |"
            )


def restore_planar(repeats: int, shape: tuple[int, int, int]) -> None:
    """``deconv-3d``-sized networks with 0, 1 and 2 planar levels: restore speed, one process."""
    import numpy as np
    import torch

    import napari_deconvnet as dn

    volume = np.random.default_rng(0).random(shape, dtype=np.float32)
    nets = {}
    for planar in (0, 1, 2):
        torch.manual_seed(planar)
        net = dn.DeconvNet(
            ndim=3, in_channels=2, residual_input=1, depth=2, base_channels=16,
            planar_levels=planar,
        )  # fmt: skip
        with torch.no_grad():
            for p in net.parameters():
                p.normal_(0.0, 0.05)
        shipped = dn.load_model("deconv-3d").metadata
        net.metadata = {
            "name": f"planar-{planar}",
            "needs_psf": True,
            "conditioning": shipped["conditioning"],
        }
        nets[planar] = net.eval()
    psf = DECONV_3D_PSF
    print(f"Machine: {machine()}, {torch.get_num_threads()} torch threads\n")
    print(f"Volume {'×'.join(map(str, shape))}; median of {repeats} alternating runs each\n")
    times: dict[int, list[float]] = {k: [] for k in nets}
    for net in nets.values():  # warm-up
        dn.restore(volume[:24, :64, :64], net, psf=psf, device="cpu")
    for _ in range(repeats):
        for planar, net in nets.items():
            t0 = time.perf_counter()
            dn.restore(volume, net, psf=psf, device="cpu")
            times[planar].append(time.perf_counter() - t0)
    base = float(np.median(times[0]))
    print(
        "| planar levels | Z grid | receptive-field extent Z / Y / X | halo | MVox/s "
        "| speed vs 0 |"
    )
    print("|---|---|---|---|---|---|")
    for planar, net in nets.items():
        t = float(np.median(times[planar]))
        extents = " / ".join(str(e) for _, e in dn.receptive_field(net.config, per_axis=True))
        print(
            f"| {planar} | {net.config.grid_shape[0]} | {extents} | {net.halo} | "
            f"{volume.size / t / 1e6:.3f} | {base / t:.2f}× |"
        )


#: The PSF the 3D benchmarks give ``deconv-3d``.
DECONV_3D_PSF = {"kind": "gaussian", "sigma": [2.0, 1.0, 1.0]}
#: ... and the 2D ones ``deconv-2d``: a Gaussian of sigma 2, as in the quality
#: benchmark's deconv-gaussian task (there cut to 15 x 15; here make_psf's 17 x 17).
DECONV_2D_PSF = {"kind": "gaussian", "sigma": [2.0, 2.0]}


def _restore_child(
    name: str, weights: str, volume_path: str, out_path: str, precision: str
) -> dict:
    """One timed restore of a saved volume (the package on ``sys.path``), output saved.

    `precision` goes to ``dn.restore`` where it takes one (older releases
    ran their default, float32).
    """
    import inspect
    import warnings

    import numpy as np
    import torch

    torch.set_num_threads(1)
    import napari_deconvnet as dn

    volume = np.load(volume_path)
    extra = {}
    psf_path = Path(volume_path.replace(".input.npy", ".psf.npy"))
    if psf_path.exists():  # a PSF of its own (--near-threshold)
        extra["psf"] = np.load(psf_path)
    elif "deconv" in name:
        extra["psf"] = DECONV_3D_PSF if volume.ndim == 3 else DECONV_2D_PSF
    if "precision" in inspect.signature(dn.restore).parameters:
        extra["precision"] = precision
    net = dn.load_model(weights)
    # a small image is restored several times (a quarter megapixel in all) and timed
    # on average: one restore of 256² takes a tenth of a second
    times = max(1, round(0.25e6 / volume.size))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        dn.restore(volume[(slice(0, 32),) * volume.ndim], net, device="cpu", **extra)  # warm-up
        t0 = time.perf_counter()
        for _ in range(times):
            out = dn.restore(volume, net, device="cpu", **extra)
        seconds = (time.perf_counter() - t0) / times
    np.save(out_path, out)
    return {"seconds": seconds, "voxels": int(volume.size)}


def _inputs_2d() -> dict:
    """The 2D models' inputs: the 512² camera test photo, degraded like the quality
    benchmark's gaussian-25, deconv-gaussian and salt-and-pepper-20 tasks
    (Gaussian noise 25/255; blur sigma 2 and noise 0.01; 20% salt-and-pepper),
    one fixed seed."""
    import numpy as np
    from skimage import data

    import napari_deconvnet as dn

    clean = data.camera().astype(np.float32) / 255
    rng = np.random.default_rng(0)
    blurred = np.asarray(dn.synthesize(clean, "none", psf=dn.make_psf(**DECONV_2D_PSF)))
    return {
        "denoise-2d": (clean + rng.normal(0, 25 / 255, clean.shape)).astype(np.float32),
        "deconv-2d": (blurred + rng.normal(0, 0.01, clean.shape)).astype(np.float32),
        "salt-and-pepper": np.asarray(
            dn.synthesize(clean, "salt-and-pepper", amount=0.2, seed=0), np.float32
        ),
    }


#: --near-threshold: (model, quality benchmark task) pairs, each on the task's
#: first test image: noise near the light-noise guard's threshold (100 photons on
#: a 256² phantom, sigma 15/255 on a 512² photo) and photon counts with zeros
NEAR_THRESHOLD_CASES = (
    ("denoise-2d", "poisson-gaussian-100"),
    ("denoise-2d", "gaussian-15"),
    ("deconv-2d", "deconv-airy-poisson"),
)


def _inputs_near_threshold() -> dict:
    """The quality benchmark's first test image of each task of
    :data:`NEAR_THRESHOLD_CASES`, degraded as the task degrades it (its seed):
    {"model@task": (image, psf or None)}."""
    import numpy as np

    sys.path.insert(0, str(Path(__file__).parent))
    import quality as q

    names = [t.name for t in q.TASKS]
    inputs = {}
    for model, name in NEAR_THRESHOLD_CASES:
        task = q.TASKS[names.index(name)]
        clean = q.load_test_set(task.data, q.FULL)[0][1]
        psf = task.make_psf()
        rng = np.random.default_rng([0, names.index(name), 0, 0])
        inputs[f"{model}@{name}"] = (np.asarray(q.degrade(task, clean, rng, psf), np.float32), psf)
        if name == "deconv-airy-poisson":
            # the same scene blurred with nothing beyond the frame (fftconvolve's
            # "same"), so that the restore extends its dark sides (core.borders)
            from scipy.signal import fftconvolve

            blurred = np.clip(fftconvolve(clean, psf, mode="same"), 0, None)
            peak = task.params["peak"]
            counts = rng.poisson(blurred * peak) / peak
            inputs[f"{model}@{name}, dark sides"] = (counts.astype(np.float32), psf)
    return inputs


def restore_against(
    rev: str,
    repeats: int,
    shape: tuple[int, int, int] | None,
    precision: str = "float32",
    near_threshold: bool = False,
) -> None:
    """The shipped models now against the package at git revision `rev`, one thread each.

    With a volume `shape`, the 3D models on a noisy test volume; without, the
    2D models on the camera photo (:func:`_inputs_2d`), or with
    `near_threshold` on the quality benchmark's test images
    (:func:`_inputs_near_threshold`). Both load the same
    weights, re-saved by the present package (which leaves out configuration
    fields an older release would refuse when they hold their defaults), and
    restore in `precision` (``"auto"`` was bfloat16 on CPUs with AMX before
    the present code too).
    """
    import os
    import tarfile
    import tempfile

    import numpy as np

    sys.path.insert(0, str(Path(__file__).parent))
    import quality as q

    root = Path(__file__).resolve().parent.parent
    work = Path(tempfile.mkdtemp(prefix="restore3d-"))
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", rev, "src"], capture_output=True, check=True
    ).stdout
    (work / "old.tar").write_bytes(archive)
    with tarfile.open(work / "old.tar") as tar:
        tar.extractall(work / "old", filter="data")
    psfs = {}
    if near_threshold:
        cases = _inputs_near_threshold()
        inputs = {k: image for k, (image, _) in cases.items()}
        psfs = {k: psf for k, (_, psf) in cases.items() if psf is not None}
    elif shape is None:
        inputs = _inputs_2d()
    else:
        clean = q._volume(shape, q.TEST_VOLUME_SEEDS[0])
        volume = (clean + np.random.default_rng(0).normal(0, 0.1, shape)).astype(np.float32)
        inputs = {"denoise-3d": volume, "deconv-3d": volume}
    for name, image in inputs.items():
        np.save(work / f"{name}.input.npy", image)
        if name in psfs:
            np.save(work / f"{name}.psf.npy", psfs[name])
    paths = {"old": str(work / "old" / "src"), "new": str(root / "src")}
    import torch

    import napari_deconvnet as dn
    from napari_deconvnet.core.devices import precision_name

    for name in inputs:
        dn.save_model(dn.load_model(name.split("@")[0]), work / f"{name}.safetensors")
    resolved = precision_name(precision, "cpu")

    torch.set_num_threads(1)  # as the children: the header reports their threads
    print(f"Machine: {machine()}\n")
    what = "the camera photo, 512×512" if shape is None else f"Volume {'×'.join(map(str, shape))}"
    if near_threshold:
        what = "The quality benchmark's first test image of each task (@), degraded as it does"
    unit = "MP/s" if shape is None else "MVox/s"
    print(
        f"{what}; one torch thread per process; median of "
        f"{repeats} alternating fresh processes each; the package at `{rev}` against the "
        f"present one, the same weights, precision {precision!r} ({resolved} here)\n"
    )
    print(f"| model ({resolved}) | at `{rev}` | now | speed-up | max diff (of range) |")
    print("|---|---|---|---|---|")
    for name, image in inputs.items():
        times: dict[str, list[float]] = {"old": [], "new": []}
        refused = None
        for _ in range(repeats):
            for which in ("old", "new"):
                env = dict(os.environ, PYTHONPATH=paths[which], OMP_NUM_THREADS="1")
                out = str(work / f"{which}.npy")
                done = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--restore-child",
                        name,
                        str(work / f"{name}.safetensors"),
                        str(work / f"{name}.input.npy"),
                        out,
                        precision,
                    ],
                    capture_output=True,
                    text=True,
                    env=env,
                )
                if done.returncode and which == "old":
                    # e.g. weights with more conditioning channels than that code knew
                    refused = (done.stderr.strip().splitlines() or ["failed"])[-1]
                    break
                done.check_returncode()
                times[which].append(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])
            if refused:
                break
        if refused:
            print(f"| {name} | cannot restore with these weights ({refused[:120]}) | | | |")
            continue
        old, new = (float(np.median(times[k])) for k in ("old", "new"))
        a, b = np.load(work / "old.npy"), np.load(work / "new.npy")
        diff = float(np.abs(a - b).max() / (np.ptp(a) or 1.0))
        print(
            f"| {name} | {image.size / old / 1e6:.3f} {unit} | {image.size / new / 1e6:.3f} "
            f"{unit} | {old / new:.2f}× | {diff:.1e} |"
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="512² and 2048² only")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--bfloat16", action="store_true", help="bfloat16: speed, PSNR cost")
    parser.add_argument("--crop", type=int, default=256, help="test photo crop (--bfloat16)")
    parser.add_argument("--3d", dest="three_d", action="store_true", help="3D: old vs new path")
    parser.add_argument(
        "--against",
        default=None,
        metavar="REV",
        help="the 2D (or, with --3d, 3D) models now against the package at git revision REV",
    )
    parser.add_argument("--planar", action="store_true", help="anisotropic pooling: speed")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (--planar)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument(
        "--precision",
        default="float32",
        choices=("auto", "float32", "bfloat16"),
        help="--against: the precision both packages restore in",
    )
    parser.add_argument(
        "--near-threshold",
        action="store_true",
        help="--against: denoise-2d at 100 photons (256²) and sigma 15 (512²), deconv-2d (Airy)",
    )
    parser.add_argument("--restore-child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.restore_child:
        print(json.dumps(_restore_child(*args.restore_child)))
        return
    if args.against:
        shape = None
        if args.three_d:
            shape = (32, 128, 128) if args.quick else (64, 256, 256)
        restore_against(
            args.against,
            max(args.repeats, 3),
            shape,
            args.precision,
            near_threshold=args.near_threshold,
        )
        return
    if args.planar:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        restore_planar(max(args.repeats, 3), (32, 128, 128) if args.quick else (64, 256, 256))
        return
    if args.bfloat16:
        shape = None
        if args.three_d:
            shape = (32, 128, 128) if args.quick else (64, 256, 256)
        bfloat16_cost(args.repeats, args.crop, shape)
        return
    if args.three_d:
        restore_3d(max(args.repeats, 3), (32, 128, 128) if args.quick else (64, 256, 256))
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
