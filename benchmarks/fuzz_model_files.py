"""Fuzz the model-file loader with mutated copies of a saved model.

Every mutated file must make ``dn.load_model`` raise ``ValueError``, within a
second, without running any code it contains; ``dn.model_info`` (header only)
must raise ``ValueError`` or read a valid header. A pickle payload that would
create a marker file when unpickled is among the mutations; the marker must
never appear.

Mutations (chosen at random with a seeded generator, one file each):

- ``truncate``: the file cut at a random length;
- ``bit-flip``: 1 to 8 random bits flipped, in the header or anywhere;
- ``byte-edit``: 1 to 4 header bytes replaced by random printable bytes;
- ``header-length``: the 8-byte header length set to 0, huge, or off by a bit;
- ``tensor-entry``: a tensor's dtype, shape or data offsets edited in the JSON
  header (the file rewritten with a consistent header length);
- ``document``: the napari-deconvnet document edited (config values, types,
  format, version, checksum, metadata);
- ``append``: bytes appended or inserted;
- ``pickle``: a pickle payload as the whole file, after a valid length
  prefix, or in a ``.pt`` zip archive.

Run::

    python benchmarks/fuzz_model_files.py              # 10,000 files
    python benchmarks/fuzz_model_files.py -n 300 --seed 1

It prints a markdown table of outcomes per mutation and exits with status 1
if any file was not refused with a ValueError within the time limit.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pickle
import signal
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

KINDS = (
    "truncate",
    "bit-flip",
    "byte-edit",
    "header-length",
    "tensor-entry",
    "document",
    "append",
    "pickle",
)
OK = "ValueError"


class Payload:
    """Unpickling this creates the file `marker`: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def base_model_bytes() -> bytes:
    """A small saved model (seeded random weights), as bytes."""
    import torch

    import napari_deconvnet as dn

    torch.manual_seed(0)
    net = dn.DeconvNet(ndim=2, depth=2, base_channels=4)
    net.metadata = {"name": "fuzz", "description": "model for fuzzing", "training": {"x": [1, 2]}}
    with tempfile.TemporaryDirectory() as folder:
        path = dn.save_model(net, Path(folder) / "base.safetensors")
        return path.read_bytes()


def _pick(rng: np.random.Generator, options: list):
    return options[int(rng.integers(len(options)))]


def _split(data: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def _join(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + body


def _tensor_entry(data: bytes, rng: np.random.Generator) -> bytes:
    header, body = _split(data)
    keys = sorted(k for k in header if k != "__metadata__")
    entry = header[keys[int(rng.integers(len(keys)))]]
    what = int(rng.integers(9))
    if what == 0:
        entry["dtype"] = _pick(rng, ["F16", "BF16", "F64", "I32", "U8", "BOOL", "X9", ""])
        if entry["dtype"] == "F32":
            entry["dtype"] = "F16"
    elif what == 1:
        entry["shape"] = entry["shape"] + [1]
    elif what == 2:
        entry["shape"] = entry["shape"][:-1] if entry["shape"] else [2]
    elif what == 3 and entry["shape"]:
        i = int(rng.integers(len(entry["shape"])))
        entry["shape"][i] = int(_pick(rng, [0, -1, entry["shape"][i] + 1, 2**40, 2**64]))
    elif what == 4:
        entry["data_offsets"][int(rng.integers(2))] += int(_pick(rng, [-4, -1, 1, 4, 2**40]))
    elif what == 5:
        entry["data_offsets"] = entry["data_offsets"][::-1]
    elif what == 6:
        del entry[_pick(rng, ["dtype", "shape", "data_offsets"])]
    elif what == 7:
        entry["shape"] = _pick(rng, ["[3, 3]", "3", "null"])
    else:
        header[keys[int(rng.integers(len(keys)))]] = _pick(rng, [None, 1, "x", [1, 2]])
    return _join(header, body)


def _document(data: bytes, rng: np.random.Generator) -> bytes:
    header, body = _split(data)
    doc = json.loads(header["__metadata__"]["napari_deconvnet"])
    what = int(rng.integers(14))
    config = doc["config"]
    if what == 0:
        config[_pick(rng, sorted(config))] = _pick(rng, [None, "x", -1, 0, 2.5, [1]])
    elif what == 1:
        config["depth"] = int(_pick(rng, [0, 1, 3, 40, 10**6]))
    elif what == 2:
        config["base_channels"] = int(_pick(rng, [1, 5, 2**31, 2**62]))
    elif what == 3:
        config["kernel_size"] = int(_pick(rng, [1, 2, 5, 10**9]))
    elif what == 4:
        config["normalization"] = _pick(rng, [None, "percentile", 3, ["x"]])
    elif what == 5:
        config["unknown_field"] = 1
    elif what == 6:
        del config[_pick(rng, sorted(config))]
    elif what == 7:
        doc["format_version"] = _pick(rng, [0, 2, -1, "1", None, 1.5, True])
    elif what == 8:
        doc["format"] = "something-else"
    elif what == 9:
        doc["checksum"] = _pick(rng, ["sha256:00", "", 5, None])
    elif what == 10:
        doc["metadata"] = {"name": "edited"}
    elif what == 11:
        doc["config"] = _pick(rng, [None, "x", 1, [1, 2]])
    elif what == 12:
        doc = _pick(rng, [None, "x", 1, [1, 2]])
    else:
        config["ndim"] = int(_pick(rng, [1, 3, 4]))
    header["__metadata__"]["napari_deconvnet"] = json.dumps(doc)
    return _join(header, body)


def mutate(data: bytes, kind: str, rng: np.random.Generator, marker: str) -> tuple[bytes, str]:
    """One mutated copy of `data` and the suffix of the file to write it to."""
    size = len(data)
    (n,) = struct.unpack("<Q", data[:8])
    suffix = ".safetensors"
    if kind == "truncate":
        return data[: int(rng.integers(0, size))], suffix
    if kind == "bit-flip":
        out = bytearray(data)
        end = 8 + n if rng.random() < 0.5 else size
        for _ in range(int(rng.integers(1, 9))):
            i = int(rng.integers(0, end))
            out[i] ^= 1 << int(rng.integers(8))
        return bytes(out), suffix
    if kind == "byte-edit":
        out = bytearray(data)
        for _ in range(int(rng.integers(1, 5))):
            i = int(rng.integers(8, 8 + n))
            new = int(rng.integers(32, 127))
            if new == out[i]:
                new = 32 + (new - 31) % 95
            out[i] = new
        return bytes(out), suffix
    if kind == "header-length":
        value = _pick(rng, [0, 1, n - 1, n + 1, size, size - 7, 2**32, 2**63, 2**64 - 1])
        return struct.pack("<Q", value % 2**64) + data[8:], suffix
    if kind == "tensor-entry":
        return _tensor_entry(data, rng), suffix
    if kind == "document":
        return _document(data, rng), suffix
    if kind == "append":
        extra = rng.bytes(int(rng.integers(1, 64)))
        if rng.random() < 0.5:
            return data + extra, suffix
        i = int(rng.integers(0, size))
        return data[:i] + extra + data[i:], suffix
    if kind == "pickle":
        payload = pickle.dumps(Payload(marker), protocol=int(rng.integers(2, 6)))
        where = int(rng.integers(4))
        if where == 0:
            return payload, suffix
        if where == 1:
            return struct.pack("<Q", len(payload)) + payload, suffix
        if where == 2:
            return payload, _pick(rng, [".pt", ".pth", ".pkl"])
        import torch

        with tempfile.TemporaryDirectory() as folder:
            pt = Path(folder) / "m.pt"
            torch.save({"state_dict": Payload(marker)}, pt)
            return pt.read_bytes(), _pick(rng, [".pt", ".safetensors"])
    raise ValueError(f"unknown mutation {kind!r}")


def _timeout(signum, frame):
    raise TimeoutError("load_model hung")


def run(count: int, seed: int, folder: Path, limit: float = 1.0) -> dict:
    """Mutate, load and classify `count` files; return the outcome counts and failures."""
    import napari_deconvnet as dn

    if hasattr(signal, "SIGALRM"):
        signal.signal(signal.SIGALRM, _timeout)

    base = base_model_bytes()
    original = dn.load_model(_write(folder / "base.safetensors", base))
    reference = {k: v.clone() for k, v in original.state_dict().items()}
    marker = folder / "code-ran"
    rng = np.random.default_rng(seed)
    table: dict[str, collections.Counter] = {k: collections.Counter() for k in KINDS}
    failures = []
    slowest = slowest_cpu = 0.0
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        data, suffix = mutate(base, kind, rng, str(marker))
        path = _write(folder / f"m{i % 50}{suffix}", data)
        start, cpu = time.perf_counter(), time.process_time()
        if hasattr(signal, "SIGALRM"):  # a hang becomes a TimeoutError, not a stuck run
            signal.alarm(int(max(limit, 1) * 10))
        try:
            net = dn.load_model(path)
        except ValueError:
            outcome = OK
        except Exception as err:  # noqa: BLE001 - classified, not hidden
            outcome = type(err).__name__
        else:
            same = (
                net.config == original.config
                and _public(net.metadata) == _public(original.metadata)
                and all(v.equal(reference[k]) for k, v in net.state_dict().items())
            )
            # a mutation can leave an equivalent file (e.g. one without its checksum)
            outcome = "loaded, same model" if same else "loaded, different model"
        finally:
            if hasattr(signal, "SIGALRM"):
                signal.alarm(0)
        elapsed = time.perf_counter() - start
        elapsed_cpu = time.process_time() - cpu
        slowest = max(slowest, elapsed)
        slowest_cpu = max(slowest_cpu, elapsed_cpu)
        # CPU time: on a shared machine the wall clock also counts other processes
        if elapsed_cpu > limit:
            outcome = f"slow (> {limit:g} s CPU)"
        try:  # the header-only reader must fail the same way (or read a valid header)
            dn.model_info(path)
        except ValueError:
            pass
        except Exception as err:  # noqa: BLE001 - classified, not hidden
            outcome = f"model_info {type(err).__name__}"
        if marker.exists():
            outcome = "code ran"
            marker.unlink()
        table[kind][outcome] += 1
        if outcome not in (OK, "loaded, same model"):
            failures.append({"index": i, "kind": kind, "outcome": outcome})
    return {
        "count": count,
        "seed": seed,
        "table": table,
        "failures": failures,
        "slowest": slowest,
        "slowest_cpu": slowest_cpu,
    }


def _public(metadata: dict) -> dict:
    return {k: v for k, v in metadata.items() if k != "path"}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def markdown(result: dict) -> str:
    outcomes = sorted({o for c in result["table"].values() for o in c}, key=lambda o: o != OK)
    lines = [
        "| mutation | files | " + " | ".join(outcomes) + " |",
        "|---|---:|" + "---:|" * len(outcomes),
    ]
    for kind, counts in result["table"].items():
        cells = " | ".join(str(counts.get(o, 0)) for o in outcomes)
        lines.append(f"| {kind} | {sum(counts.values())} | {cells} |")
    total = collections.Counter()
    for counts in result["table"].values():
        total.update(counts)
    cells = " | ".join(f"**{total.get(o, 0)}**" for o in outcomes)
    lines.append(f"| **all** | **{result['count']}** | {cells} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=float, default=1.0, help="CPU seconds allowed per file")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        result = run(args.count, args.seed, Path(folder), args.limit)
    print(markdown(result))
    print(
        f"\n{result['count']} mutated files (seed {result['seed']}) in "
        f"{time.perf_counter() - start:.0f} s; slowest load {result['slowest_cpu'] * 1000:.0f} ms "
        f"CPU time ({result['slowest'] * 1000:.0f} ms wall clock); "
        f"{len(result['failures'])} not refused with a ValueError"
    )
    for failure in result["failures"][:20]:
        print(failure)
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
