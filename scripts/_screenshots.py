"""Shared helpers of the screenshot scripts: wait on Qt without blocking it, then shoot."""

from __future__ import annotations

import time
from pathlib import Path

from qtpy.QtWidgets import QApplication

DOCS = Path(__file__).resolve().parents[1] / "docs"


def wait_until(predicate, timeout: float = 300.0, what: str = "the widget") -> None:
    """Process Qt events until `predicate()` is true (or fail after `timeout` s)."""
    app = QApplication.instance()
    end = time.monotonic() + timeout
    while not predicate():
        app.processEvents()
        if time.monotonic() > end:
            raise TimeoutError(f"{what} did not finish within {timeout:.0f} s")
        time.sleep(0.02)


def shoot(viewer, name: str, settle: int = 20) -> Path:
    """Let the canvas redraw, then save a whole-window screenshot as docs/<name>."""
    for _ in range(settle):
        QApplication.instance().processEvents()
        time.sleep(0.05)
    out = DOCS / name
    out.parent.mkdir(exist_ok=True)
    viewer.screenshot(str(out), canvas_only=False)
    return out


def shoot_grid(viewer, name: str) -> Path:
    """Show the layers side by side (napari's grid), shoot docs/<name>, close the viewer."""
    grid = viewer.canvas.grid if hasattr(viewer, "canvas") else viewer.grid  # napari >= 0.9
    grid.enabled = True
    grid.stride = 1
    viewer.reset_view()
    out = shoot(viewer, name, settle=20)
    viewer.close()
    print(f"wrote {out}")
    return out
