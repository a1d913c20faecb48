"""Time-lapses with bright objects: two intensity ranges for the whole stack, or per frame.

``dn.restore`` restores an image that holds a few objects far brighter than
its scene in two ranges (``core.dynamic_range``): the objects, then the
scene without them in its own range. For a stack it used to measure one
scene range over all frames together, and restore every frame with it: the
scene of a time-lapse that bleaches was then normalised by its brightest
frames, and frames without objects were split too, with the range of
frames that had them. Now each frame (each image the network restores) is
decided and restored on its own, exactly as alone.

This script restores held-out stacks both ways: *whole stack* (the previous
behaviour, rebuilt here from the same pieces: one
:func:`~napari_deconvnet.core.dynamic_range.scene_range` of all frames, the
objects' pass, :func:`~napari_deconvnet.core.dynamic_range.split_objects`,
the scene's pass, each pass blended by the middle frame's light-noise
weight as it was; under the previous release this equals its restore to
the last digit) and *per frame* (``dn.restore`` as it is now), and prints
the PSNR of the scene around the objects (pixels 3 and more from where
the objects exceed 1e-3 of their peak, against the whole truth; data range:
that frame's scene). Scenes and
objects are ``benchmarks/bright_objects.py``'s (scikit-image's ``cell`` and
``camera``, its own tissue generator; its own beads and discs).

    python benchmarks/bright_stacks.py --threads 1 --markdown out.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bright_objects as bo  # noqa: E402
from _machine import heading, machine, publish, set_threads  # noqa: E402

import napari_deconvnet as dn  # noqa: E402
from napari_deconvnet.core.dynamic_range import scene_range, split_objects  # noqa: E402
from napari_deconvnet.core.light_noise import guard_weight  # noqa: E402
from napari_deconvnet.core.restoration import private_model  # noqa: E402

#: name -> (frames, which frames hold the objects)
STACKS = {
    "objects in every frame, scene bleaches 10x": (6, None),
    "objects in the first 2 frames, scene bleaches 10x": (6, 2),
}


def make_stack(name: str, base: np.ndarray, beads: np.ndarray) -> np.ndarray:
    n, first = STACKS[name]
    decay = np.geomspace(1.0, 0.1, n)
    frames = [base * d + (beads if first is None or t < first else 0) for t, d in enumerate(decay)]
    return np.stack(frames), decay


def _pass(image: np.ndarray, net, normalization: dict | None) -> np.ndarray:
    """One restore of the stack as the previous release ran it: the light-noise
    weight of the middle frame for every frame."""
    raw = dn.restore(
        image,
        net,
        axes="TYX",
        precision="float32",
        normalization=normalization,
        light_noise_guard=False,
    )
    middle = image[len(image) // 2]
    norm = normalization or dn.compute_normalization(middle, net)
    w = guard_weight(net, middle, float(norm["offset"]), float(norm["scale"]))
    return raw if w is None else image + np.float32(w) * (raw - image)


def whole_stack(noisy: np.ndarray, model: str) -> np.ndarray:
    """The previous restore of a denoiser: one scene range for all frames."""
    net = private_model(model)
    found = scene_range(noisy, 2)
    if found is None:
        return _pass(noisy, net, None)
    first = _pass(noisy, net, found.objects_normalization())
    objects, rest = split_objects(noisy, first, found, None, None)
    return _pass(rest, net, found.normalization()) + objects


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--photons", type=float, nargs="+", default=[20.0, 200.0])
    ap.add_argument("--contrast", type=float, default=100.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="one scene, one noise")
    ap.add_argument("--markdown", type=Path)
    args = ap.parse_args(argv)
    set_threads(args.threads)
    started = time.perf_counter()
    scenes = ("cell",) if args.quick else bo.SCENES
    photons = args.photons[:1] if args.quick else args.photons
    rows = []
    for scene_name in scenes:
        rng = np.random.default_rng(args.seed)
        base = bo.scene(scene_name, rng)
        beads = bo.objects(rng, args.contrast)
        # the scene 3 pixels and more from where the objects exceed 1e-3 of their peak,
        # against the whole truth there (the objects' faint tails included), as
        # benchmarks/bright_objects.py measures it
        around = ndimage.distance_transform_edt(beads < 1e-3 * beads.max()) >= 3
        for stack_name in STACKS:
            clean, decay = make_stack(stack_name, base, beads)
            for peak in photons:
                noise = np.random.default_rng(args.seed + 1)
                noisy = (noise.poisson(clean * peak) / peak).astype(np.float32)
                before = whole_stack(noisy, "denoise-2d")
                now = dn.restore(noisy, "denoise-2d", axes="TYX", precision="float32")
                alone = dn.restore(noisy[-1], "denoise-2d", precision="float32")
                scores = np.array(
                    [
                        [
                            bo._psnr(out[t], clean[t], around, np.ptp(base * decay[t]))
                            for out in (noisy, before, now)
                        ]
                        for t in range(len(clean))
                    ]
                )
                d = scores[:, 2] - scores[:, 1]
                rows.append(
                    {
                        "scene": scene_name,
                        "stack": stack_name,
                        "photons": peak,
                        "input": scores[:, 0].mean(),
                        "before": scores[:, 1].mean(),
                        "now": scores[:, 2].mean(),
                        "mean": d.mean(),
                        "worst": d.min(),
                        "last": d[-1],
                        "alone": float(np.abs(now[-1] - alone).max()),
                    }
                )
    body = [
        "| scene | stack | photons (first frame) | input | whole stack (before) | per frame "
        "(now) | mean | worst frame | last frame |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    body += [
        f"| {r['scene']} | {r['stack']} | {r['photons']:g} | {r['input']:.2f} | "
        f"{r['before']:.2f} | **{r['now']:.2f}** | {r['mean']:+.2f} | {r['worst']:+.2f} | "
        f"{r['last']:+.2f} |"
        for r in rows
    ]
    alone = max(r["alone"] for r in rows)
    text = "\n\n".join(
        [
            heading(
                "Time-lapses with bright objects: one scene range for the stack, or each frame's",
                "bright_stacks.py",
                argv,
            ),
            machine() + f"; `denoise-2d` in float32; 192² frames; objects {args.contrast:g}x "
            f"the first frame's scene; Poisson noise; seed {args.seed}; "
            f"{time.perf_counter() - started:.0f} s in all. PSNR in dB of the scene around the "
            "objects, mean over the frames; *mean*, *worst frame*, *last frame* (the dimmest): "
            f"now − before. The stack's last frame restored in it equals that frame restored "
            f"alone within {alone:.1e}.",
            "\n".join(body),
            f"Over all {len(rows)} rows: mean {np.mean([r['mean'] for r in rows]):+.2f} dB, "
            f"worst frame {min(r['worst'] for r in rows):+.2f} dB.",
        ]
    )
    publish(text, args.markdown, "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
