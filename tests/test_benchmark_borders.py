"""benchmarks/borders.py: zero-padded, periodic, mirrored and cropped blurs, before and now."""


def test_the_dark_borders_table_gains_on_zero_padded_blurs_only(benchmark_script, capsys):
    bench = benchmark_script("borders")
    bench.main(["--quick"])
    out = capsys.readouterr().out
    rows = {}
    for line in out.splitlines():
        if line.startswith("| gaussian 2 |"):
            cells = [c.strip() for c in line.split("|")[1:-1]]
            rows[cells[1]] = cells
    assert set(rows) == {"zero", "wrap", "mirror", "crop"}
    zero = rows["zero"]
    before, now = float(zero[4]), float(zero[5])
    assert now > before + 2  # measured: 14.22 before, 20.90 now (one 96² photo)
    assert zero[8] == "4/4"
    wrap = rows["wrap"]
    assert float(wrap[5]) > float(wrap[4]) + 0.5 and wrap[8] == "4/4"  # measured +1.48
    for mode in ("mirror", "crop"):  # nothing found, nothing changed
        assert rows[mode][8] == "0/4" and rows[mode][4] == rows[mode][5]
