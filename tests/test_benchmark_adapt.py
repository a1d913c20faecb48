"""``benchmarks/adapt.py`` in a smoke run: its record and table say what was run."""

import json

import pytest


@pytest.fixture
def adapt_bench(benchmark_script):
    return benchmark_script("adapt")


def test_adapt_benchmark_records_precision_and_the_images_it_scored(adapt_bench, tmp_path):
    out = tmp_path / "a.json"
    argv = ["--quick", "--steps", "2", "--tasks", "deconv-gaussian", "--start", "shipped"]
    argv += ["--images", "validation", "--precision", "bfloat16", "--no-classical"]
    results = adapt_bench.main([*argv, "--json", str(out)])
    record = json.loads(out.read_text())
    assert record["settings"]["precision"] == "bfloat16"
    assert record["settings"]["images"] == "validation"
    task = results["tasks"]["deconv-gaussian"]
    assert task["adapt"]["steps"] == 2
    # the start is the shipped model, so both restore the same images identically
    assert task["methods"]["start"]["psnr"] == pytest.approx(task["methods"]["shipped"]["psnr"])
    text = adapt_bench.markdown(record)
    assert "first degraded validation image" in text and "precision bfloat16" in text
    assert "test image" not in text
