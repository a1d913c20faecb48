"""Interpolate two model files of one architecture: ``(1 - alpha) * start + alpha * end``.

A fine-tuning run that gains on new conditions may lose a little on old ones;
the weights halfway between the start and the run's end often keep most of
both (as for ``deconv-3d`` in session 23 and ``denoise-2d`` in session 27).
Choose `alpha` on validation data, never on test images. The output carries
the end model's metadata and training record, plus ``weight_interpolation``
(alpha, the start's sha256 and the reason), and its log (``.log.json``) is
the end's with that record added.

Usage::

    python scripts/interpolate_weights.py START.safetensors END.safetensors 0.5 OUT.safetensors \
        --why "best on both validation sets"
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
from pathlib import Path

from _train_common import log_path_of

from napari_deconvnet.core.atomic import write_atomic
from napari_deconvnet.core.persistence import load_model, save_model


def interpolate(start, end, alpha: float):
    """A copy of `end` with weights ``(1 - alpha) * start + alpha * end``."""
    if start.config != end.config:
        raise ValueError("the two models differ in architecture; only the same one interpolates")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    out = copy.deepcopy(end)
    a, b = start.state_dict(), end.state_dict()
    out.load_state_dict(
        {k: (1 - alpha) * a[k] + alpha * b[k] if b[k].is_floating_point() else b[k] for k in b}
    )
    out.metadata = copy.deepcopy(getattr(end, "metadata", {}) or {})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("start", type=Path)
    parser.add_argument("end", type=Path)
    parser.add_argument("alpha", type=float, help="weight of END (0: START, 1: END)")
    parser.add_argument("out", type=Path)
    parser.add_argument("--why", default="", help="the reason, recorded in the file")
    args = parser.parse_args(argv)
    model = interpolate(load_model(args.start), load_model(args.end), args.alpha)
    record = {
        "alpha": args.alpha,
        "start_sha256": hashlib.sha256(args.start.read_bytes()).hexdigest(),
        "end_sha256": hashlib.sha256(args.end.read_bytes()).hexdigest(),
        "why": args.why,
    }
    model.metadata.setdefault("training", {})["weight_interpolation"] = record
    save_model(model, args.out)
    end_log = log_path_of(args.end)
    if end_log.exists():
        log = json.loads(end_log.read_text())
        log.setdefault("training", {})["weight_interpolation"] = record
        text = json.dumps(log, indent=1) + "\n"
        write_atomic(log_path_of(args.out), text.encode())
    print(f"saved {args.out} (alpha {args.alpha})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
