"""The measurements of ``benchmarks/gpu_check.sh``: restore on a CUDA GPU.

Sections, each recorded even when another fails:

- ``environment``: torch, CUDA, the card's name and memory, bfloat16 support;
- ``throughput``: ``dn.restore`` in MP/s (MVox/s in 3D) for float32, float16
  and bfloat16, with the largest difference from float32 (relative to its
  range) and the PSNR between them;
- ``auto_tile``: the tile and batch that ``tile=None`` picks from free memory,
  and whether that restore equals one with small explicit tiles (float32);
- ``oom_fallback``: a restore whose planned tiles do not fit (the allocator is
  capped with ``torch.cuda.set_per_process_memory_fraction``) falls back to
  smaller tiles with a warning and the same output;
- ``richardson_lucy``: ``dn.richardson_lucy`` on the GPU against
  scikit-image on the CPU, same input, with the difference;
- ``training``: a few seconds of float16 (loss-scaled) and bfloat16
  training, which have never run on hardware before.

``--tiny`` runs the same code on the CPU with tiny sizes (float16 is then
refused by design, and the out-of-memory error is simulated), so that the
script is tested before GPU time is spent. Results go to ``results.json``
and ``results.md`` in ``--out``, each written to a temporary file and renamed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np

SIZES = {
    # name: (model, full shape, tiny shape)
    "2D": ("denoise-2d", (4096, 4096), (96, 128)),
    "3D": ("denoise-3d", (64, 512, 512), (16, 48, 64)),
}


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _image(shape: tuple[int, ...]) -> np.ndarray:
    """A smooth, noisy test image in [0, 1] (seeded)."""
    from scipy import ndimage

    rng = np.random.default_rng(0)
    small = rng.random(tuple(max(4, s // 8) for s in shape), dtype=np.float32)
    clean = ndimage.zoom(small, [s / m for s, m in zip(shape, small.shape, strict=True)], order=1)
    clean = clean[tuple(slice(0, s) for s in shape)]
    return (clean + rng.normal(0, 0.1, clean.shape)).astype(np.float32)


def environment(device) -> dict[str, Any]:
    import torch

    import napari_deconvnet as dn
    from napari_deconvnet.core.devices import cpu_has_native_bfloat16, free_memory

    info: dict[str, Any] = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "napari_deconvnet": getattr(dn, "__version__", "?"),
        "device": str(device),
        "free_memory_gb": free_memory(device) / 1e9,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            card=torch.cuda.get_device_name(device),
            total_memory_gb=props.total_memory / 1e9,
            capability=".".join(map(str, torch.cuda.get_device_capability(device))),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            bf16_supported=torch.cuda.is_bf16_supported(),
        )
    else:
        info.update(card=platform.processor() or "CPU", cpu_native_bf16=cpu_has_native_bfloat16())
    return info


def throughput(device, tiny: bool, repeats: int) -> list[dict[str, Any]]:
    import napari_deconvnet as dn

    rows = []
    for kind, (model, full, small) in SIZES.items():
        shape = small if tiny else full
        image = _image(shape)
        net = dn.load_model(model)
        ref = None
        for precision in ("float32", "float16", "bfloat16"):
            row: dict[str, Any] = {"case": f"{kind} {'×'.join(map(str, shape))}", "model": model}
            row["precision"] = precision
            if device.type == "cpu" and precision == "bfloat16" and kind == "3D":
                from napari_deconvnet.core.devices import cpu_has_native_bfloat16

                if not cpu_has_native_bfloat16():
                    row["error"] = "skipped: emulated bfloat16 Conv3d is very slow on this CPU"
                    rows.append(row)
                    continue
            try:
                dn.restore(
                    image[(slice(0, 32),) * image.ndim], net, device=device, precision=precision
                )  # warm-up: kernels, allocator
                times = []
                for _ in range(repeats):
                    _sync(device)
                    t0 = time.perf_counter()
                    out = dn.restore(image, net, device=device, precision=precision)
                    _sync(device)
                    times.append(time.perf_counter() - t0)
                row["seconds"] = min(times)
                row["rate"] = image.size / row["seconds"] / 1e6
                row["unit"] = "MVox/s" if kind == "3D" else "MP/s"
                if ref is None:
                    ref = out
                span = float(np.ptp(ref)) or 1.0
                row["max_diff_vs_float32"] = float(np.abs(out - ref).max()) / span
                row["psnr_vs_float32"] = (
                    float(dn.psnr(out, ref, data_range=span)) if out is not ref else None
                )
            except Exception as err:  # noqa: BLE001 - recorded, the check goes on
                row["error"] = f"{type(err).__name__}: {err}"
            rows.append(row)
    return rows


def auto_tile(device, tiny: bool) -> dict[str, Any]:
    import torch

    import napari_deconvnet as dn
    from napari_deconvnet.core.devices import free_memory
    from napari_deconvnet.core.tiling import plan_tiles

    net = dn.load_model("denoise-2d")
    result: dict[str, Any] = {}
    for label, shape in (("2D 4096²", (4096, 4096)), ("2D 16384²", (16384, 16384))):
        plan = plan_tiles(shape, net, device=device)
        result[label] = {k: plan[k] for k in ("tile", "batch_size", "n_tiles", "halo")}
    result["free_memory_gb"] = free_memory(device) / 1e9
    shape = (96, 128) if tiny else (2048, 2048)
    image = _image(shape)
    auto = dn.restore(image, net, device=device, precision="float32")
    small = dn.restore(image, net, device=device, precision="float32", tile=32 if tiny else 256)
    result["equal_check_shape"] = list(shape)
    result["auto_vs_small_tiles_max_diff"] = float(np.abs(auto - small).max()) / float(
        np.ptp(auto) or 1.0
    )
    result["auto_equals_small_tiles"] = bool(result["auto_vs_small_tiles_max_diff"] < 1e-4)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def oom_fallback(device, tiny: bool) -> dict[str, Any]:
    import torch

    import napari_deconvnet as dn
    from napari_deconvnet.core.tiling import plan_tiles

    net = dn.load_model("denoise-2d")
    shape = (96, 128) if tiny else (4096, 4096)
    image = _image(shape)
    ref = dn.restore(image, net, device=device, precision="float32", tile=64 if tiny else 512)
    plan = plan_tiles(shape, net, device=device)
    need = (
        net.activation_bytes_per_pixel(4)
        * plan["batch_size"]
        * np.prod([t + 2 * plan["halo"] for t in plan["tile"]])
    )
    result: dict[str, Any] = {"planned_tile": plan["tile"], "planned_batch": plan["batch_size"]}
    patched: dict[str, Any] = {}
    if device.type == "cuda":
        # set_per_process_memory_fraction wants an index: "cuda" alone is refused
        device = torch.device(
            "cuda", torch.cuda.current_device() if device.index is None else device.index
        )
        total = torch.cuda.get_device_properties(device).total_memory
        torch.cuda.empty_cache()
        cap = max(need / 8, 256 * 2**20)
        result["memory_cap_gb"] = cap / 1e9
        torch.cuda.set_per_process_memory_fraction(min(cap / total, 1.0), device)
    else:  # simulated: the network refuses inputs above a quarter of the planned tile
        limit = int(np.prod([t + 2 * plan["halo"] for t in plan["tile"]]) // 4)
        result["simulated_limit_elements"] = limit
        # tiles go through forward_center (their centres only), whole images through forward
        for name in ("forward", "forward_center"):
            patched[name] = getattr(type(net), name)

            def limited(self, x, *args, _method=patched[name]):
                if x.numel() > limit:
                    raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
                return _method(self, x, *args)

            setattr(type(net), name, limited)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = dn.restore(image, net, device=device, precision="float32")
        messages = [str(w.message) for w in caught if "out of memory" in str(w.message)]
        result["warnings"] = messages[:3]
        result["fell_back"] = bool(messages)
        result["max_diff_vs_small_tiles"] = float(np.abs(out - ref).max()) / float(
            np.ptp(ref) or 1.0
        )
        result["equal"] = bool(result["max_diff_vs_small_tiles"] < 1e-4)
    finally:
        if device.type == "cuda":
            torch.cuda.set_per_process_memory_fraction(1.0, device)
            torch.cuda.empty_cache()
        for name, method in patched.items():
            setattr(type(net), name, method)
    return result


def richardson_lucy(device, tiny: bool) -> dict[str, Any]:
    from skimage.restoration import richardson_lucy as sk_rl

    import napari_deconvnet as dn

    shape = (128, 128) if tiny else (2048, 2048)
    psf = dn.make_psf("gaussian", (15, 15), sigma=2.5).astype(np.float32)
    psf /= psf.sum()
    image = np.clip(_image(shape), 0, None)
    t0 = time.perf_counter()
    ref = sk_rl(image, psf, num_iter=30, clip=False)
    sk_seconds = time.perf_counter() - t0
    dn.richardson_lucy(image[:64, :64], psf, 2, pad=None, device=device)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    out = dn.richardson_lucy(image, psf, 30, pad=None, device=device)
    _sync(device)
    seconds = time.perf_counter() - t0
    return {
        "shape": list(shape),
        "iterations": 30,
        "skimage_cpu_seconds": sk_seconds,
        "dn_seconds": seconds,
        "ratio": sk_seconds / seconds,
        "max_diff": float(np.abs(out - ref).max()) / float(image.max()),
    }


def training(device, tiny: bool) -> list[dict[str, Any]]:
    import napari_deconvnet as dn

    rng = np.random.default_rng(0)
    clean = _image((64, 64) if tiny else (512, 512))
    noisy = clean + rng.normal(0, 0.1, clean.shape).astype(np.float32)
    rows = []
    precisions = ("bfloat16",) if device.type == "cpu" else ("float16", "bfloat16")
    for precision in precisions:
        row: dict[str, Any] = {"precision": precision}
        try:
            t0 = time.perf_counter()
            result = dn.train(
                noisy,
                clean,
                patch_size=32,
                batch_size=4 if tiny else 32,
                max_seconds=3 if tiny else 20,
                device=device,
                precision=precision,
            )
            row["seconds"] = time.perf_counter() - t0
            row["steps"] = int(result.steps)
            row["stop_reason"] = result.stop_reason
            losses = [h.get("train_loss") for h in result.history if h.get("train_loss")]
            row["finite_loss"] = bool(np.isfinite(losses).all()) if losses else None
            row["precision_used"] = getattr(result.config, "precision", None)
            row["message"] = result.message
        except Exception as err:  # noqa: BLE001 - recorded, the check goes on
            row["error"] = f"{type(err).__name__}: {err}"
        rows.append(row)
    return rows


def _markdown(res: dict[str, Any]) -> str:
    env = res.get("environment", {})
    lines = [
        f"# GPU check ({'tiny CPU mode' if res['tiny'] else 'CUDA'})",
        "",
        f"Card: {env.get('card', '?')}, torch {env.get('torch', '?')}, "
        f"CUDA {env.get('cuda', '-')}, "
        f"{res['minutes']:.1f} min in all. Tests exit status: {res.get('tests_rc', 'not run')}.",
        "",
        "| case | precision | throughput | max diff vs float32 (of range) | PSNR vs float32 |",
        "|---|---|---|---|---|",
    ]
    for row in res.get("throughput", []):
        if "error" in row:
            lines.append(f"| {row['case']} | {row['precision']} | {row['error']} | | |")
            continue
        psnr = row.get("psnr_vs_float32")
        lines.append(
            f"| {row['case']} | {row['precision']} | {row['rate']:.2f} {row['unit']} | "
            f"{row['max_diff_vs_float32']:.1e} | {'-' if psnr is None else f'{psnr:.1f} dB'} |"
        )
    for key in ("auto_tile", "oom_fallback", "richardson_lucy", "training"):
        lines += ["", f"## {key}", "", "```", json.dumps(res.get(key), indent=1), "```"]
    errors = res.get("errors", {})
    if errors:
        lines += ["", "## errors", ""] + [
            f"- {k}: {v.splitlines()[-1]}" for k, v in errors.items()
        ]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--tiny", action="store_true", help="CPU, tiny sizes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tests-rc", default=None, help="exit status of the test run")
    args = parser.parse_args(argv)
    import torch

    from napari_deconvnet.core.devices import resolve_device

    start = time.perf_counter()
    device = torch.device("cpu") if args.tiny else resolve_device("cuda")
    args.out.mkdir(parents=True, exist_ok=True)
    res: dict[str, Any] = {"tiny": args.tiny, "tests_rc": args.tests_rc, "errors": {}}
    steps = {
        "environment": lambda: environment(device),
        "throughput": lambda: throughput(device, args.tiny, 1 if args.tiny else args.repeats),
        "auto_tile": lambda: auto_tile(device, args.tiny),
        "oom_fallback": lambda: oom_fallback(device, args.tiny),
        "richardson_lucy": lambda: richardson_lucy(device, args.tiny),
        "training": lambda: training(device, args.tiny),
    }
    for name, step in steps.items():
        t0 = time.perf_counter()
        print(f"gpu_check: {name} ...", flush=True)
        try:
            res[name] = step()
        except Exception:  # noqa: BLE001 - recorded, the check goes on
            res["errors"][name] = traceback.format_exc()
            print(res["errors"][name], flush=True)
        print(f"gpu_check: {name} done in {time.perf_counter() - t0:.1f} s", flush=True)
        res["minutes"] = (time.perf_counter() - start) / 60
        _write(args.out / "results.json", json.dumps(res, indent=1, default=str))
    _write(args.out / "results.md", _markdown(res))
    print(_markdown(res))
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
