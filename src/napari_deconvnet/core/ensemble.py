"""Self-ensemble restores: the mean of the restorations of rotated and mirrored views.

A network restores a rotated image almost, not exactly, as the rotation of
its restoration of the image: its filters are not symmetric. Averaging the
restorations of the eight views of the Y/X plane (the four quarter turns,
each mirrored or not), each turned back, cancels part of that error. The
views act on the Y and X axes only: a volume's Z axis (often sampled more
coarsely, with an elongated PSF) is never turned into a lateral one. A PSF
turns with the image, so a deconvolution model sees each view with its own
PSF, and the views are exact symmetries of the problem.

``ensemble=n`` averages the first `n` views of :data:`VIEWS`: 2 adds the
transpose, 4 the four views that keep the image's diagonals, 8 all of them.
It costs `n` restores.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["VIEWS", "check_ensemble", "to_view", "from_view"]

#: ``(quarter_turns, mirrored)`` in the order ``ensemble=n`` takes them: the
#: first 2 and the first 4 are groups (the transpose; the Klein four-group of
#: the diagonals), so those averages are as symmetric as the full eight.
VIEWS: tuple[tuple[int, bool], ...] = (
    (0, False),
    (3, True),  # the transpose
    (2, False),
    (1, True),  # the transpose about the other diagonal
    (1, False),
    (0, True),
    (3, False),
    (2, True),
)


def check_ensemble(ensemble: Any) -> int:
    """`ensemble` as an int from 1 to 8, or a clear error."""
    if isinstance(ensemble, bool) or not isinstance(ensemble, (int, np.integer)):
        raise TypeError(
            f"ensemble must be an integer from 1 to {len(VIEWS)} (the number of rotated and "
            f"mirrored views averaged), not {type(ensemble).__name__}"
        )
    if not 1 <= int(ensemble) <= len(VIEWS):
        raise ValueError(
            f"ensemble must be from 1 (one view, the default) to {len(VIEWS)} (every quarter "
            f"turn, mirrored and not), got {int(ensemble)}"
        )
    return int(ensemble)


def to_view(array: np.ndarray, view: tuple[int, bool], y: int, x: int) -> np.ndarray:
    """`array` turned by ``view[0]`` quarter turns in the (`y`, `x`) plane, then mirrored in X."""
    turns, mirrored = view
    out = np.rot90(array, turns, axes=(y, x))
    if mirrored:
        out = np.flip(out, x)
    return np.ascontiguousarray(out)


def from_view(array: np.ndarray, view: tuple[int, bool], y: int, x: int) -> np.ndarray:
    """The inverse of :func:`to_view`."""
    turns, mirrored = view
    out = np.flip(array, x) if mirrored else array
    return np.rot90(out, -turns, axes=(y, x))


def view_tile(tile: Any, view: tuple[int, bool]) -> Any:
    """A per-axis tile size for a view: an odd number of quarter turns swaps Y and X."""
    if tile is None or np.ndim(tile) == 0 or view[0] % 2 == 0:
        return tile
    sizes = list(tile)
    if len(sizes) >= 2:
        sizes[-2], sizes[-1] = sizes[-1], sizes[-2]
    return type(tile)(sizes) if isinstance(tile, (tuple, list)) else sizes
