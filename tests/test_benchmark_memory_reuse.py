"""benchmarks/memory_reuse.py: kept feature maps against the allocator alone, same output."""

import pytest

from napari_deconvnet.core import memory


@pytest.mark.skipif(memory._glibc() is None, reason="needs Linux with glibc")
def test_memory_reuse_benchmark_compares_fresh_processes_with_identical_outputs(
    benchmark_script, capsys
):
    bench = benchmark_script("memory_reuse")
    assert bench.main(["--quick", "--repeats", "1", "--cases", "ensemble-3d"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ensemble-3d")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].split("|")[1:-1]]
    # each side ran (a positive time) and both gave the same restoration
    assert float(cells[1].rstrip(" s")) > 0 and float(cells[2].rstrip(" s")) > 0
    assert cells[-1] == "0.0e+00"
    assert "one torch thread" in out and "alternating" in out


def test_memory_reuse_table_states_ratio_system_time_and_memory(benchmark_script):
    bench = benchmark_script("memory_reuse")
    row = {
        "case": "stream-3d",
        "alone_seconds": 10.0,
        "kept_seconds": 8.0,
        "speedup": 1.25,
        "alone_system_seconds": 4.5,
        "kept_system_seconds": 1.5,
        "alone_peak_rss_mb": 900.0,
        "kept_peak_rss_mb": 1100.0,
        "max_diff_of_range": 0.0,
    }
    line = bench.table([row]).splitlines()[-1]
    assert line == (
        "| stream-3d | 10.00 s | 8.00 s | **1.25×** | 4.5 / 1.5 s | 900 / 1100 MB | 0.0e+00 |"
    )
