"""Lazy and streamed restores of the shipped models against the in-memory one, on random cases.

The README promises that a dask image restored lazily, or streamed block by
block into an OME-Zarr store, gives the in-memory restore's result (within
1e-5 of the range in float32). The tests hold that with small random
networks; this draws cases the way users' data come, through the shipped
models with their guards, switches and conditioning channels:

- a model (``denoise-2d``, ``denoise-2d-nl``, ``deconv-2d``, ``deconv-3d``,
  ``denoise-3d``, ``salt-and-pepper``), a scene (the package's phantoms, cells,
  or the camera photo), a shape, random chunks and a tile (or the automatic
  one), float32 or rounded to uint16;
- a degradation: photon counts (2 to 300 photons), light or heavy Gaussian
  noise, sCMOS units (offset 100, gain 2, read noise) or salt-and-pepper, after
  the model's PSF for the deconvolution models.

Each case is restored with ``dn.restore`` on the numpy array, on the dask
array (``.compute()``) and with ``dn.restore_to_zarr``, all with their own
statistics, and the largest difference is printed as a share of the
in-memory result's range. A case is flagged above 1e-4, or when one path
raises and another does not. Documented exceptions show up as flagged rows
with their warning: an image with a few very bright objects is streamed in
one intensity range (*A dim scene beside very bright objects*); a lazy image
of more than 4 M values or 1,024 chunks is normalised from a sample.

    python benchmarks/lazy_agreement.py --cases 100 [--first 0] [--markdown out.md]
    python benchmarks/lazy_agreement.py --quick      # three cases (a smoke test)
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from _machine import machine, report, set_threads

import napari_deconvnet as dn
from napari_deconvnet.core.phantoms import cells_2d, phantom

MODELS = ("denoise-2d", "deconv-2d", "salt-and-pepper", "denoise-2d-nl", "deconv-3d", "denoise-3d")
NOISES = ("counts", "light", "gaussian", "camera", "impulses")
#: Differences above this share of the range are flagged (float32 agrees to ~1e-6)
FLAG = 1e-4


def _scene(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    if len(shape) == 3:
        return phantom(shape, str(rng.choice(["beads", "nuclei", "filaments"])), rng)
    kind = str(rng.choice(["cells", "beads", "nuclei", "filaments", "photo"]))
    if kind == "cells":
        return cells_2d(rng, max(shape))[: shape[0], : shape[1]]
    if kind == "photo":
        from skimage import data

        return (data.camera()[: shape[0], : shape[1]] / 255.0).astype(np.float32)
    return phantom(shape, kind, rng)


def draw_case(index: int) -> dict[str, Any]:
    """Case `index`: the same image, model and options on every run."""
    rng = np.random.default_rng([2026, 12, 6, index])
    model = str(rng.choice(MODELS))
    ndim = 3 if model.endswith("3d") else 2
    if ndim == 3:
        shape = (int(rng.integers(8, 24)), int(rng.integers(24, 80)), int(rng.integers(24, 80)))
    else:
        shape = (int(rng.integers(20, 200)), int(rng.integers(20, 200)))
    clean = np.asarray(_scene(rng, shape), np.float32)
    shape = clean.shape
    noise = "impulses" if model == "salt-and-pepper" else str(rng.choice(NOISES))
    options: dict[str, Any] = {}
    if model.startswith("deconv"):
        sigma = (2.0, 1.2, 1.2) if ndim == 3 else 1.5
        psf = dn.make_psf("gaussian", shape=(7,) * ndim, sigma=sigma)
        clean = np.asarray(dn.synthesize(clean, "none", psf=psf), np.float32)
        options["psf"] = psf
    if noise == "counts":
        image = rng.poisson(np.clip(clean, 0, None) * float(rng.choice([2, 10, 30, 300])))
    elif noise in ("light", "gaussian"):
        image = clean + rng.normal(0, 0.01 if noise == "light" else 0.1, shape)
    elif noise == "camera":
        image = 100 + 2.0 * rng.poisson(np.clip(clean, 0, None) * 20) + rng.normal(0, 1.5, shape)
    else:
        image = dn.synthesize(clean, "salt-and-pepper", amount=0.1, seed=index)
    image = np.asarray(image, np.float32)
    if ndim == 2 and rng.random() < 0.3:
        image = np.round(np.clip(image, 0, None)).astype(np.uint16)
    chunks = tuple(int(rng.integers(4, s + 1)) for s in shape)
    tile = None
    if rng.random() < 0.5:
        tile = min(int(rng.integers(16, 96)), *shape)
    return {
        "index": index,
        "model": model,
        "noise": noise,
        "image": image,
        "chunks": chunks,
        "tile": tile,
        "options": options,
    }


def _share(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    span = float(np.ptp(b))
    diff = float(np.abs(a - b).max())
    return diff / span if span > 0 else diff


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    """The three restores of one case and their differences (or what each raised)."""
    import dask.array as da
    import zarr

    image, model, tile = case["image"], case["model"], case["tile"]
    kw = {"tile": tile, "precision": "float32", **case["options"]}
    row: dict[str, Any] = {"warnings": []}
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            eager = dn.restore(image, model, **kw)
        except ValueError as err:
            eager = err
        lazy_image = da.from_array(image, chunks=case["chunks"])
        try:
            lazy = np.asarray(dn.restore(lazy_image, model, **kw).compute())
        except ValueError as err:
            lazy = err
        with tempfile.TemporaryDirectory() as folder:
            try:
                target = Path(folder) / "out.ome.zarr"
                dn.restore_to_zarr(lazy_image, target, model=model, client=False, **kw)
                streamed = np.asarray(zarr.open_array(str(target / "0"), mode="r")[:])
            except ValueError as err:
                streamed = err
    row["warnings"] = sorted({str(w.message).split(":")[0][:60] for w in seen})
    outcomes = {"lazy": lazy, "streamed": streamed}
    if isinstance(eager, Exception):
        for name, out in outcomes.items():
            row[name] = "refused" if isinstance(out, Exception) else "ran"
        row["flag"] = any(not isinstance(v, Exception) for v in outcomes.values())
        row["eager"] = f"refused: {str(eager)[:60]}"
        return row
    row["eager"] = "ran"
    flag = False
    for name, out in outcomes.items():
        if isinstance(out, Exception):
            row[name], flag = f"raised: {str(out)[:60]}", True
        else:
            share = _share(out.reshape(eager.shape), eager)
            row[name], flag = share, flag or share > FLAG
    row["flag"] = flag
    return row


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--first", type=int, default=0, help="index of the first case")
    parser.add_argument("--quick", action="store_true", help="three cases")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    count = 3 if args.quick else args.cases
    start = time.perf_counter()
    rows = []
    for index in range(args.first, args.first + count):
        case = draw_case(index)
        row = run_case(case)
        row.update({k: case[k] for k in ("index", "model", "noise", "chunks", "tile")})
        row["shape"], row["dtype"] = case["image"].shape, case["image"].dtype.name
        rows.append(row)

    def cell(value: Any) -> str:
        return f"{value:.1e}" if isinstance(value, float) else str(value)

    lines = [
        "| case | model | noise | dtype | shape | chunks | tile | lazy − eager | "
        "streamed − eager | warnings |",
        "|---:|---|---|---|---|---|---|---:|---:|---|",
    ]
    for r in rows:
        mark = " **flagged**" if r["flag"] else ""
        lines.append(
            f"| {r['index']}{mark} | {r['model']} | {r['noise']} | {r['dtype']} | "
            f"{r['shape']} | {r['chunks']} | {r['tile']} | {cell(r['lazy'])} | "
            f"{cell(r['streamed'])} | {'; '.join(r['warnings'])} |"
        )
    flagged = sum(r["flag"] for r in rows)
    lines += ["", f"{len(rows)} cases, {flagged} flagged (above {FLAG:g} of the range)."]
    caption = (
        f"{machine()}; float32; differences as a share of the in-memory result's range; "
        f"{time.perf_counter() - start:.0f} s"
    )
    report(
        "Lazy and streamed against in-memory restores",
        "lazy_agreement.py",
        argv,
        caption,
        "\n".join(lines),
        args.markdown,
    )
    return rows


if __name__ == "__main__":
    main()
