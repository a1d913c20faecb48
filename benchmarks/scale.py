"""Big data: streaming a large uint16 zarr through a model into an OME-Zarr.

Measured, each in one run, with ``denoise-2d`` in float32:

- **stream**: peak resident memory (RSS) and seconds per megapixel of
  ``dn.restore_to_zarr`` restoring a ``size x size`` uint16 zarr (chunks
  1024²) into an OME-Zarr, in a fresh subprocess (its peak RSS is its own);
- **in memory**: seconds per megapixel of ``dn.restore`` on an in-memory
  image of ``--memory-size``² pixels (the baseline; its peak RSS too);
- **cluster**: ``restore_to_zarr`` of a ``--cluster-size``² crop on a
  2-worker ``LocalCluster`` (processes, 1 thread each) against one process
  (``client=False``, all cores), as a ratio of seconds;
- **equality** on that crop: eager (``dn.restore`` with the same statistics)
  vs lazy (``dn.restore`` of the dask array) vs distributed (the cluster's
  OME-Zarr), the largest absolute difference divided by the range;
- **resume**: a run stopped after a third of its blocks, then resumed,
  against an uninterrupted run: bit-for-bit equality.

Usage::

    python benchmarks/scale.py                 # 16384² (about 270 MP per pass on 1 s/MP)
    python benchmarks/scale.py --size 8192     # a quarter of that
    python benchmarks/scale.py --size 2048 --memory-size 1024 --cluster-size 1024   # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

MODEL = "denoise-2d"


def make_source(path: Path, size: int, chunk: int = 1024) -> None:
    """A uint16 zarr of smooth blobs with Poisson-Gaussian noise, written chunk by chunk."""
    import zarr

    arr = zarr.open_array(
        str(path), mode="w", shape=(size, size), chunks=(chunk, chunk), dtype=np.uint16
    )
    for i in range(0, size, chunk):
        for j in range(0, size, chunk):
            rng = np.random.default_rng(i * size + j)
            h, w = min(chunk, size - i), min(chunk, size - j)
            yy, xx = np.mgrid[i : i + h, j : j + w].astype(np.float32)
            clean = 800 + 600 * np.sin(yy / 37.0) * np.cos(xx / 53.0)
            noisy = rng.poisson(np.clip(clean, 0, None)) + rng.normal(0, 20, clean.shape)
            arr[i : i + h, j : j + w] = np.clip(noisy, 0, 65535).astype(np.uint16)


def child(args: argparse.Namespace) -> None:
    """One measured run in this (fresh) process; prints a JSON line."""
    import napari_deconvnet as dn

    start = time.perf_counter()
    if args.child == "stream":
        dn.restore_to_zarr(
            args.source, args.target, MODEL, precision="float32", client=False, overwrite=True
        )
        pixels = args.size**2
    else:
        import zarr

        x = zarr.open_array(args.source, mode="r")[: args.memory_size, : args.memory_size]
        start = time.perf_counter()
        dn.restore(x, MODEL, precision="float32")
        pixels = x.size
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "pixels": pixels, "rss": rss}))


def run_child(kind: str, args: argparse.Namespace, target: Path) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--source",
        str(args.source),
        "--target",
        str(target),
        "--size",
        str(args.size),
        "--memory-size",
        str(args.memory_size),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def cluster_and_equality(args: argparse.Namespace, work: Path) -> dict:
    import dask
    import dask.array as da
    import distributed
    import zarr

    import napari_deconvnet as dn

    n = args.cluster_size
    crop = work / "crop.zarr"
    source = zarr.open_array(str(args.source), mode="r")
    arr = zarr.open_array(str(crop), mode="w", shape=(n, n), chunks=(1024, 1024), dtype="u2")
    arr[:] = source[:n, :n]
    x = arr[:]
    one = work / "one.ome.zarr"
    t = time.perf_counter()
    dn.restore_to_zarr(crop, one, MODEL, precision="float32", client=False, overwrite=True)
    t_one = time.perf_counter() - t
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    with (
        dask.config.set({"distributed.worker.multiprocessing-method": method}),
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        two = work / "two.ome.zarr"
        t = time.perf_counter()
        dn.restore_to_zarr(crop, two, MODEL, precision="float32", client=client, overwrite=True)
        t_two = time.perf_counter() - t
    lazy_x = da.from_zarr(str(crop))
    stats = dn.compute_normalization(lazy_x, MODEL)
    eager = dn.restore(x, MODEL, precision="float32", normalization=stats)
    lazy = dn.restore(lazy_x, MODEL, precision="float32").compute()
    dist = zarr.open_array(str(two / "0"), mode="r")[:]
    span = float(np.ptp(eager))
    diffs = {
        "eager-lazy": float(np.abs(eager - lazy).max()) / span,
        "eager-distributed": float(np.abs(eager - dist).max()) / span,
        "lazy-distributed": float(np.abs(lazy - dist).max()) / span,
    }
    # resume: stop after a third of the blocks, then finish
    resumed = work / "resumed.ome.zarr"
    stop = threading.Event()

    def third(done: int, total: int) -> None:
        if done >= max(1, total // 3):
            stop.set()

    try:
        dn.restore_to_zarr(
            crop, resumed, MODEL, precision="float32", client=False, progress=third, stop=stop
        )
    except dn.Cancelled:
        pass
    dn.restore_to_zarr(crop, resumed, MODEL, precision="float32", client=False)
    same = all(
        np.array_equal(
            zarr.open_array(str(resumed / k), mode="r")[:],
            zarr.open_array(str(one / k), mode="r")[:],
        )
        for k in ("0", "1")
        if (one / k).exists()
    )
    return {"one": t_one, "two": t_two, "diffs": diffs, "resume_equal": same}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16384)
    parser.add_argument("--memory-size", type=int, default=4096)
    parser.add_argument("--cluster-size", type=int, default=2048)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--source", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--target", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    from _machine import machine

    work = Path(args.workdir or tempfile.mkdtemp(prefix="scale-"))
    work.mkdir(parents=True, exist_ok=True)
    args.source = work / f"source-{args.size}.zarr"
    if not args.source.exists():
        t = time.perf_counter()
        make_source(args.source, args.size)
        print(f"made {args.source} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    stream = run_child("stream", args, work / "out.ome.zarr")
    memory = run_child("memory", args, work / "unused")
    other = cluster_and_equality(args, work)
    per_mp = {k: v["seconds"] / (v["pixels"] / 1e6) for k, v in (("s", stream), ("m", memory))}
    print(f"\n{machine()}, {os.cpu_count()} CPUs\n")
    print("| measurement | value | target |")
    print("|---|---|---|")
    print(
        f"| peak RSS, {args.size}² uint16 zarr -> OME-Zarr | {stream['rss'] / 1e9:.2f} GB | "
        "< 1.5 GB |"
    )
    print(
        f"| in-memory restore of {args.memory_size}², peak RSS (for scale) | "
        f"{memory['rss'] / 1e9:.2f} GB | |"
    )
    print(
        f"| seconds per MP, streamed ({args.size}²) / in memory ({args.memory_size}²) | "
        f"{per_mp['s']:.3f} / {per_mp['m']:.3f} = {per_mp['s'] / per_mp['m']:.2f} | <= 1.15 |"
    )
    print(
        f"| 2-worker LocalCluster vs 1 process, {args.cluster_size}² (ratio of seconds) | "
        f"{other['two']:.1f} s / {other['one']:.1f} s = {other['two'] / other['one']:.2f} | |"
    )
    d = other["diffs"]
    print(
        f"| max abs difference / range: eager-lazy, eager-distributed, lazy-distributed | "
        f"{d['eager-lazy']:.1e}, {d['eager-distributed']:.1e}, {d['lazy-distributed']:.1e} | "
        "<= 1e-5 |"
    )
    print(
        f"| killed (after 1/3 of the blocks) and resumed = uninterrupted | "
        f"{'equal' if other['resume_equal'] else 'DIFFERENT'} | equal |"
    )
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
