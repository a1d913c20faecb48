"""core.memory: freed buffers kept for reuse during long CPU restores (glibc only).

The allocator's behaviour is checked by counting page faults (the kernel
counts them exactly; no timing), the wiring by what the restores see while
their tiles run, and the results by equality with the allocator left alone.
"""

import gc
import json
import os
import resource
import subprocess
import sys
import threading

import numpy as np
import pytest

import napari_deconvnet as dn
from napari_deconvnet.core import memory, restoration, tiling

glibc = pytest.mark.skipif(memory._glibc() is None, reason="needs Linux with glibc")


_FAULTS_SCRIPT = """
import json, resource, torch
from napari_deconvnet.core import memory

def faults():
    # minor page faults of allocating, filling and freeing 64 MiB, after two warm-ups
    # (buffers a kept heap can reuse: two, because an aligned request may not fit the
    # one hole a single freed buffer leaves, depending on where the heap stands)
    for _ in range(2):
        torch.ones(8 * 2**20, dtype=torch.float64).sum()
    counts = []
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        torch.ones(8 * 2**20, dtype=torch.float64).sum()
        counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return min(counts)

outside = faults()
with memory.reuse_freed_memory() as acts:
    active = memory.active()
    inside = faults()
print(json.dumps(dict(outside=outside, inside=inside, after=faults(), acts=acts,
                      active=active, active_after=memory.active())))
"""


@pytest.fixture(autouse=True)
def _no_restore_left_open():
    """A restore generator another test abandoned keeps memory until it is collected."""
    gc.collect()
    assert not memory.active()


_HEAP_SCRIPT = """
import ctypes, json, torch
from napari_deconvnet.core import memory

class Info(ctypes.Structure):  # glibc's struct mallinfo2
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]

libc = memory._glibc()
libc.mallinfo2.restype = Info

def where():
    # 512 MiB, never touched: bigger than any hole the imports leave in the heap
    block = torch.empty(2**29, dtype=torch.uint8)
    alive = libc.mallinfo2()
    del block
    return dict(mapped=alive.hblkhd, kept=libc.mallinfo2().fordblks)

outside = where()
with memory.reuse_freed_memory():
    inside = where()
print(json.dumps(dict(outside=outside, inside=inside, after=where())))
"""


def _run_fresh(script: str) -> dict:
    """The JSON a script prints last, run in a fresh interpreter.

    A fresh interpreter, because glibc serves a big block from any free chunk
    of the heap large enough, whatever its mmap threshold: after the suite's
    earlier tests (a 3D backward pass in float64 leaves 300 MB of free holes)
    a block can land in such a hole outside the context too.
    """
    env = {k: v for k, v in os.environ.items() if k != memory.ENV}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(
    memory._glibc() is None or not hasattr(memory._glibc(), "mallinfo2"),
    reason="needs glibc 2.33 or later (mallinfo2)",
)
def test_a_big_block_comes_from_the_heap_and_stays_there_only_inside_the_context():
    """What the allocator does with a block, as glibc itself reports it."""
    block = 2**29
    seen = _run_fresh(_HEAP_SCRIPT)
    # outside: mapped for itself (above the 32 MiB threshold), so not kept when freed
    assert seen["outside"]["mapped"] >= block and seen["outside"]["kept"] < block, seen
    # inside: taken from the heap and kept there, free, for the next one
    assert seen["inside"]["mapped"] < block and seen["inside"]["kept"] >= block, seen
    # after: the threshold is back, so a block bigger than the heap's holes is mapped again
    assert seen["after"]["mapped"] >= block, seen


@glibc
def test_a_freed_big_buffer_is_reused_without_page_faults_and_given_back_at_the_end():
    """The kernel's side: page faults of a 64 MiB buffer (as the network's feature maps are).

    The kernel may still fault a kept heap page in again for reasons of its
    own (one CI run, in a fresh interpreter, faulted every buffer inside the
    context although the heap held it; never reproduced in 40 runs), so the
    count is taken in up to three fresh interpreters and one that reuses the
    pages is enough; the allocator's side is the test above, exactly.
    (numpy asks the kernel for huge pages, which hides the faults' count but
    not their cost, hence torch.)
    """
    pages = 64 * 2**20 // resource.getpagesize()
    runs = []
    for _ in range(3):
        seen = _run_fresh(_FAULTS_SCRIPT)
        runs.append(seen)
        assert seen["acts"] and seen["active"] and not seen["active_after"], seen
        # glibc maps a 64 MiB block afresh every time (above its 32 MiB limit) ...
        assert seen["outside"] > pages // 4, (seen, pages)
        # and once the outermost use ends, the freed pages are given back (malloc_trim)
        assert seen["after"] > pages // 4, (seen, pages)
        if seen["inside"] < pages // 20:
            break
    # ... unless the heap keeps it: the second buffer lands on the first one's pages
    assert runs[-1]["inside"] < pages // 20, (runs, pages)


@glibc
def test_nested_uses_share_the_outermost_one():
    with memory.reuse_freed_memory():
        with memory.reuse_freed_memory() as inner:
            assert inner
        assert memory.active()  # the inner exit did not end it
    assert not memory.active()


def test_other_threads_the_environment_and_a_false_flag_leave_the_allocator_alone(monkeypatch):
    seen = []

    def worker():
        with memory.reuse_freed_memory() as acts:
            seen.append((acts, memory.active()))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [(False, False)]
    with memory.reuse_freed_memory(False) as acts:
        assert not acts and not memory.active()
    monkeypatch.setenv(memory.ENV, "0")
    with memory.reuse_freed_memory() as acts:
        assert not acts and not memory.active()


def test_worth_reusing_needs_big_buffers_and_several_passes():
    big = memory.GLIBC_REUSES_UP_TO + 1
    assert memory.worth_reusing(big, memory.MIN_REPEATS)
    assert not memory.worth_reusing(big, memory.MIN_REPEATS - 1)
    assert not memory.worth_reusing(memory.GLIBC_REUSES_UP_TO, 100)


def test_feature_map_bytes_counts_the_haloed_batch(random_net):
    import torch

    net = random_net(ndim=3)  # 8 base channels
    assert (
        memory.feature_map_bytes(net, (16, 32, 32), 8, 2, torch.float32)
        == 2 * 8 * (32 * 48 * 48) * 4
    )
    assert (
        memory.feature_map_bytes(net, (16, 32, 32), 8, 2, torch.bfloat16)
        == 2 * 8 * (32 * 48 * 48) * 2
    )


@pytest.fixture
def spy_tiles(monkeypatch):
    """Whether memory was kept while each run_tiles call ran (every buffer counts as big)."""
    monkeypatch.setattr(memory, "GLIBC_REUSES_UP_TO", 0)
    seen = []
    inner = tiling.run_tiles

    def run_tiles(*args, **kwargs):
        seen.append(memory.active())
        return (yield from inner(*args, **kwargs))

    monkeypatch.setattr(restoration, "run_tiles", run_tiles)
    monkeypatch.setattr(sys.modules["napari_deconvnet.core.blocks"], "run_tiles", run_tiles)
    return seen


@glibc
def test_restores_keep_memory_over_many_passes_only_and_give_the_same_result(
    spy_tiles, random_net, monkeypatch
):
    net = random_net(ndim=3)
    x = np.random.default_rng(0).random((8, 32, 32)).astype(np.float32)
    one = dn.restore(x, net)  # one tile: nothing to reuse
    assert spy_tiles == [False]
    spy_tiles.clear()
    many = dn.restore(x, net, tile=(8, 8, 8), batch_size=1)  # 16 batches of one tile
    assert spy_tiles == [True]
    spy_tiles.clear()
    views = dn.restore(x, net, ensemble=4)  # four views, each one tile
    assert spy_tiles == [True] * 4
    monkeypatch.setenv(memory.ENV, "0")
    spy_tiles.clear()
    np.testing.assert_array_equal(dn.restore(x, net, tile=(8, 8, 8), batch_size=1), many)
    np.testing.assert_array_equal(dn.restore(x, net, ensemble=4), views)
    assert spy_tiles == [False] * 5
    np.testing.assert_allclose(many, one, atol=1e-5 * float(np.ptp(one)))


@glibc
def test_a_streamed_restore_keeps_memory_from_block_to_block(spy_tiles, random_net, tmp_path):
    pytest.importorskip("zarr")
    net = random_net()
    x = (np.random.default_rng(1).random((128, 128)) * 1000).astype(np.uint16)
    kept = dn.restore_to_zarr(x, tmp_path / "kept.ome.zarr", net, chunks=32)
    assert spy_tiles == [True] * 16 and not memory.active()
    import zarr

    streamed = np.asarray(zarr.open(kept, mode="r")["0"])
    eager = dn.restore(x, net)
    np.testing.assert_allclose(streamed, eager, atol=1e-5 * float(np.ptp(eager)))
