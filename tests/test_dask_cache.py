"""napari's dask cache and our worker threads (session 59, seen in CI)."""

import dask.array as da
import numpy as np
import pytest

pytest.importorskip("cachey")


def test_a_compute_whose_timings_another_thread_cleared_still_succeeds():
    """napari registers a global dask Cache; a compute ending in one thread clears the
    start times of every task, so a worker's compute of the same lazy layer raised
    ``KeyError: 'getitem-original-from-zarr-...'`` (the reader's restore failed at
    random). The order of events is replayed here in one thread."""
    from dask.cache import Cache

    import napari_deconvnet.io.restored_reader  # noqa: F401  (applies the patch)

    cache = Cache(1e6)
    cache._start({})
    cache._pretask("k", {}, {})
    cache._finish({}, {}, False)  # another thread's compute ends
    cache._posttask("k", np.zeros(3), {}, {"dependencies": {"k": set()}}, 0)  # no KeyError
    assert "k" not in cache.cache.data  # not cached, nothing else changes
    with cache:
        x = da.ones((8, 8), chunks=4)
        assert float(x.sum().compute()) == 64.0
