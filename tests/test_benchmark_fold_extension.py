"""benchmarks/fold_extension.py: the mirror extension by slices against gathers."""


def test_both_ways_give_the_same_outputs_and_a_table(benchmark_script, capsys):
    fold = benchmark_script("fold_extension")
    import torch

    threads = torch.get_num_threads()
    try:
        rows = fold.run(quick=True, repeats=1)
    finally:
        torch.set_num_threads(threads)
    assert len(rows) == 4 and all(r["equal"] for r in rows)
    assert all(r["gather"] > 0 and r["slices"] > 0 for r in rows)
    # the gathering way really is the previous path, and it is restored afterwards
    from napari_deconvnet.core.deconv_operators import FoldedFFT

    assert FoldedFFT.__init__ is fold.deconv_operators.FoldedFFT.__init__
    import numpy as np

    op = FoldedFFT(np.ones((3, 3)) / 9, (1, 16, 16), "reflect", "cpu")
    assert op.sliced
    text = fold.table(rows, 1)
    assert text.count("| `") == 4 and "| yes |" in text
