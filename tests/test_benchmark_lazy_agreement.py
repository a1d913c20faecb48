"""benchmarks/lazy_agreement.py: lazy and streamed restores of the shipped models against eager."""

import numpy as np


def test_cases_are_seeded_and_the_quick_table_agrees(benchmark_script, capsys):
    bench = benchmark_script("lazy_agreement")
    first, again = bench.draw_case(5), bench.draw_case(5)
    np.testing.assert_array_equal(first["image"], again["image"])
    assert (first["model"], first["chunks"], first["tile"]) == (
        again["model"],
        again["chunks"],
        again["tile"],
    )
    rows = bench.main(["--quick"])
    assert len(rows) == 3 and not any(r["flag"] for r in rows)
    assert all(isinstance(r["lazy"], float) and r["lazy"] <= bench.FLAG for r in rows)
    assert "3 cases, 0 flagged" in capsys.readouterr().out


def test_a_difference_is_flagged(benchmark_script, monkeypatch):
    bench = benchmark_script("lazy_agreement")
    import napari_deconvnet as dn

    real = dn.restore_to_zarr

    def off_by_one(source, target, **kw):  # a stream that writes something else
        out = real(source, target, **kw)
        import zarr

        level = zarr.open_array(f"{target}/0", mode="r+")
        level[:] = level[:] + 1
        return out

    monkeypatch.setattr(dn, "restore_to_zarr", off_by_one)
    row = bench.run_case(bench.draw_case(1))
    assert row["flag"] and row["streamed"] > bench.FLAG and row["lazy"] <= bench.FLAG
