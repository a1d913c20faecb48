"""Big data: streaming a large uint16 zarr through a model into an OME-Zarr.

Every measured case runs in a fresh subprocess with one torch thread (and
``OMP_NUM_THREADS=1``), ``denoise-2d`` in float32, so that its peak resident
memory (``ru_maxrss`` of that process) is its own and every case gets the
same share of the CPU:

- **stream**: peak RSS, wall and CPU seconds per megapixel of
  ``dn.restore_to_zarr`` restoring the ``--size``² uint16 zarr (chunks 1024²)
  into an OME-Zarr in one process (``client=False``);
- **in memory**: seconds per megapixel of ``dn.restore`` on a
  ``--memory-size``² image already in memory (the baseline; an in-memory
  restore of 16384² would need ~3 GB, which is what streaming avoids);
- **pairs**: ``--pairs`` back-to-back pairs, in memory and streamed at the
  same size (``--ratio-size``², a crop of the source), alternating which
  runs first, so that a shared machine's load hits both alike; the ratio of
  each pair and their median;
- **cluster**: the same streamed run (``--cluster-size``², default the whole
  source) on a 2-worker ``LocalCluster`` (processes, 1 thread each) against
  a one-process run of it made right before, as a ratio of wall seconds;
- **equality** on a ``--check-size``² crop: eager (``dn.restore`` with the
  same statistics) vs lazy (``dn.restore`` of the dask array) vs distributed
  (the cluster's OME-Zarr) vs streamed in one process, the largest absolute
  difference divided by the range;
- **resume**: a streamed run of ``--resume-size``² (default the whole source)
  killed with SIGKILL by this script once a third of its blocks are marked
  done, then run again (it resumes), against the uninterrupted run: every
  pyramid level compared bit for bit.

Rows are printed (and appended to ``--out``) as each case finishes.

Usage::

    python benchmarks/scale.py --out scale.md          # 16384² (about 270 MP per pass)
    python benchmarks/scale.py --size 8192             # a quarter of that
    python benchmarks/scale.py --size 2048 --memory-size 1024 --ratio-size 1024 \\
        --check-size 1024 --pairs 1                    # a quick check (a minute or two)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

MODEL = "denoise-2d"
CHUNK = 1024


def make_source(path: Path, size: int, chunk: int = CHUNK) -> None:
    """A uint16 zarr of smooth blobs with Poisson-Gaussian noise, written chunk by chunk."""
    import zarr

    partial = path.with_name(path.name + ".partial")  # renamed when complete
    arr = zarr.open_array(
        str(partial), mode="w", shape=(size, size), chunks=(chunk, chunk), dtype=np.uint16
    )
    for i in range(0, size, chunk):
        for j in range(0, size, chunk):
            rng = np.random.default_rng(i * size + j)
            h, w = min(chunk, size - i), min(chunk, size - j)
            yy, xx = np.mgrid[i : i + h, j : j + w].astype(np.float32)
            clean = 800 + 600 * np.sin(yy / 37.0) * np.cos(xx / 53.0)
            noisy = rng.poisson(np.clip(clean, 0, None)) + rng.normal(0, 20, clean.shape)
            arr[i : i + h, j : j + w] = np.clip(noisy, 0, 65535).astype(np.uint16)
    partial.rename(path)


def crop_source(source: Path, path: Path, n: int) -> Path:
    """The top-left n² of `source` as its own zarr (same chunks), written strip by strip."""
    import zarr

    if path.exists():
        return path
    src = zarr.open_array(str(source), mode="r")
    partial = path.with_name(path.name + ".partial")
    arr = zarr.open_array(str(partial), mode="w", shape=(n, n), chunks=(CHUNK, CHUNK), dtype="u2")
    for i in range(0, n, CHUNK):
        arr[i : i + CHUNK] = src[i : min(i + CHUNK, n), :n]
    partial.rename(path)
    return path


# ------------------------------------------------------------- child processes


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def child(args: argparse.Namespace) -> None:
    """One measured run in this (fresh) process; prints a JSON line."""
    _one_thread()
    import zarr

    import napari_deconvnet as dn

    result: dict = {}
    if args.child == "stream":
        pixels = int(np.prod(zarr.open_array(args.source, mode="r").shape))
        cpu, start = _cpu_seconds(), time.perf_counter()
        dn.restore_to_zarr(
            args.source,
            args.target,
            MODEL,
            precision="float32",
            client=False,
            overwrite=not args.resume,
        )
    elif args.child == "memory":
        x = zarr.open_array(args.source, mode="r")[:]
        pixels = x.size
        cpu, start = _cpu_seconds(), time.perf_counter()
        dn.restore(x, MODEL, precision="float32")
    else:
        result = cluster_child(args)
        pixels, cpu, start = 0, _cpu_seconds(), time.perf_counter()
    result.update(
        seconds=time.perf_counter() - start,
        cpu=_cpu_seconds() - cpu,
        pixels=pixels,
        rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    )
    print(json.dumps(result))


def cluster_child(args: argparse.Namespace) -> dict:
    """The cluster run and the eager/lazy/distributed/streamed equality check."""
    import dask
    import dask.array as da
    import distributed
    import zarr

    import napari_deconvnet as dn

    work = Path(args.target)
    # a fork server, not a fork of this process: a fork copies the locks other
    # threads hold at that moment (a test's forked worker once hung in a log flush)
    method = "forkserver" if sys.platform.startswith("linux") else "spawn"
    out: dict = {}
    with (
        dask.config.set({"distributed.worker.multiprocessing-method": method}),
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.run(_one_thread)
        client.run(lambda: __import__("napari_deconvnet"))  # imports before the clock
        start = time.perf_counter()
        dn.restore_to_zarr(
            args.source,
            work / "cluster.ome.zarr",
            MODEL,
            precision="float32",
            client=client,
            overwrite=True,
        )
        out["cluster_seconds"] = time.perf_counter() - start
        check = work / "check.zarr"
        dn.restore_to_zarr(
            check,
            work / "check-dist.ome.zarr",
            MODEL,
            precision="float32",
            client=client,
            overwrite=True,
        )
    dn.restore_to_zarr(
        check,
        work / "check-one.ome.zarr",
        MODEL,
        precision="float32",
        client=False,
        overwrite=True,
    )
    lazy_x = da.from_zarr(str(check))
    stats = dn.compute_normalization(lazy_x, MODEL)
    results = {
        "eager": dn.restore(lazy_x.compute(), MODEL, precision="float32", normalization=stats),
        "lazy": dn.restore(lazy_x, MODEL, precision="float32").compute(),
        "distributed": zarr.open_array(str(work / "check-dist.ome.zarr" / "0"), mode="r")[:],
        "streamed": zarr.open_array(str(work / "check-one.ome.zarr" / "0"), mode="r")[:],
    }
    span = float(np.ptp(results["eager"]))
    names = list(results)
    out["diffs"] = {
        f"{a}-{b}": float(np.abs(results[a] - results[b]).max()) / span
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    }
    return out


# ------------------------------------------------------------------ the parent


def run_child(kind: str, args: argparse.Namespace, source: Path, target: Path, **extra) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--source", str(source)]
    cmd += ["--target", str(target)] + (["--resume"] if extra.get("resume") else [])
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(f"{kind} child failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def killed_run(source: Path, target: Path, n_blocks: int) -> int:
    """A streamed run SIGKILLed once a third of its blocks are marked done; blocks done then."""
    cmd = [sys.executable, __file__, "--child", "stream", "--source", str(source)]
    cmd += ["--target", str(target)]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done_dir = target / ".napari_deconvnet_job" / "done"
    while proc.poll() is None:
        done = len(os.listdir(done_dir)) if done_dir.exists() else 0
        if done >= max(1, n_blocks // 3):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return len(os.listdir(done_dir))
        time.sleep(0.05)
    raise RuntimeError(f"the run to kill finished first (exit {proc.returncode})")


def same_levels(a: Path, b: Path) -> bool:
    """Every level of two OME-Zarrs equal bit for bit, compared strip by strip."""
    import zarr

    levels = sorted(p.name for p in a.iterdir() if p.name.isdigit())
    if levels != sorted(p.name for p in b.iterdir() if p.name.isdigit()):
        return False
    for k in levels:
        x, y = zarr.open_array(str(a / k), mode="r"), zarr.open_array(str(b / k), mode="r")
        if x.shape != y.shape:
            return False
        for i in range(0, x.shape[0], CHUNK):
            if not np.array_equal(x[i : i + CHUNK], y[i : i + CHUNK]):
                return False
    return True


class Report:
    """Table rows printed and appended to a file as they are measured."""

    def __init__(self, path: str | None) -> None:
        self.path = path

    def line(self, text: str = "") -> None:
        print(text, flush=True)
        if self.path:
            with open(self.path, "a") as fh:
                fh.write(text + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16384)
    parser.add_argument("--memory-size", type=int, default=4096)
    parser.add_argument("--ratio-size", type=int, default=4096)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--cluster-size", type=int, default=None, help="default: --size")
    parser.add_argument("--check-size", type=int, default=2048)
    parser.add_argument("--resume-size", type=int, default=None, help="default: --size")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--out", default=None, help="also append the table to this file")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--source", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--target", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--resume", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    _one_thread()
    from _machine import machine

    cluster_size = args.cluster_size or args.size
    resume_size = args.resume_size or args.size
    work = Path(args.workdir or tempfile.mkdtemp(prefix="scale-"))
    work.mkdir(parents=True, exist_ok=True)
    source = work / f"source-{args.size}.zarr"
    if not source.exists():
        t = time.perf_counter()
        make_source(source, args.size)
        print(f"made {source} in {time.perf_counter() - t:.0f} s", file=sys.stderr)

    def crop(n: int) -> Path:
        return source if n == args.size else crop_source(source, work / f"crop-{n}.zarr", n)

    out = Report(args.out)
    out.line(
        f"\n{machine()}, {os.cpu_count()} CPUs, load average at start "
        f"{os.getloadavg()[0]:.1f}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n"
    )
    out.line("| measurement | value | target |")
    out.line("|---|---|---|")

    def per_mp(r: dict, key: str = "seconds") -> float:
        return r[key] / (r["pixels"] / 1e6)

    stream = run_child("stream", args, source, work / "out.ome.zarr")
    memory = run_child("memory", args, crop(args.memory_size), work / "unused")
    out.line(
        f"| peak RSS, {args.size}² uint16 zarr -> OME-Zarr (fresh process) | "
        f"{stream['rss'] / 1e9:.2f} GB | < 1.5 GB |"
    )
    out.line(
        f"| in-memory restore of {args.memory_size}², peak RSS (for scale) | "
        f"{memory['rss'] / 1e9:.2f} GB | |"
    )
    for key, what in (("seconds", "wall"), ("cpu", "CPU")):
        s, m = per_mp(stream, key), per_mp(memory, key)
        out.line(
            f"| {what} s per MP, streamed {args.size}² / in memory {args.memory_size}² "
            f"(one after the other) | {s:.3f} / {m:.3f} = {s / m:.2f} | <= 1.15 |"
        )

    ratio_src = crop(args.ratio_size)
    ratios = {"seconds": [], "cpu": []}
    for i in range(args.pairs):
        order = ("memory", "stream") if i % 2 == 0 else ("stream", "memory")
        pair = {k: run_child(k, args, ratio_src, work / "pair.ome.zarr") for k in order}
        for key in ratios:
            ratios[key].append(per_mp(pair["stream"], key) / per_mp(pair["memory"], key))
    for key, what in (("seconds", "wall"), ("cpu", "CPU")):
        each = ", ".join(f"{r:.2f}" for r in ratios[key])
        out.line(
            f"| {what} s per MP, streamed / in memory, both {args.ratio_size}², "
            f"{args.pairs} alternating back-to-back pairs (median; each) | "
            f"{statistics.median(ratios[key]):.2f} ({each}) | <= 1.15 |"
        )

    crop_source(source, work / "check.zarr", args.check_size)
    cluster_src = crop(cluster_size)
    # the one-process run right before the cluster's, so that both see the same load
    one = run_child("stream", args, cluster_src, work / "one.ome.zarr")
    cl = run_child("cluster", args, cluster_src, work)
    out.line(
        f"| 2-worker `LocalCluster` (processes, 1 thread each) vs 1 process (1 thread), "
        f"{cluster_size}² (ratio of wall seconds) | {cl['cluster_seconds']:.0f} s / "
        f"{one['seconds']:.0f} s = {cl['cluster_seconds'] / one['seconds']:.2f} | |"
    )
    d = cl["diffs"]
    out.line(
        f"| max abs difference / range, {args.check_size}²: "
        + ", ".join(d)
        + " | "
        + ", ".join(f"{v:.1e}" for v in d.values())
        + " | <= 1e-5 |"
    )

    resume_src = crop(resume_size)
    full = work / "out.ome.zarr"
    if resume_size != args.size:
        full = work / "full.ome.zarr"
        run_child("stream", args, resume_src, full)
    killed = work / "killed.ome.zarr"
    shutil.rmtree(killed, ignore_errors=True)
    n_blocks = math.ceil(resume_size / CHUNK) ** 2
    at = killed_run(resume_src, killed, n_blocks)
    again = run_child("stream", args, resume_src, killed, resume=True)
    same = same_levels(killed, full)
    out.line(
        f"| {resume_size}² run SIGKILLed after {at} of {n_blocks} blocks, resumed "
        f"({again['seconds']:.0f} s), vs uninterrupted: every level | "
        f"{'equal bit for bit' if same else 'DIFFERENT'} | equal |"
    )
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
