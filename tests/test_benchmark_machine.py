"""The machine line of the benchmarks names the CPU's vector units (benchmarks/_machine.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from _machine import machine, vector_units  # noqa: E402


def test_vector_units_tell_apart_cpus_of_one_model_name():
    assert vector_units({"sse2", "avx2", "fma"}) == "AVX2"
    assert vector_units({"avx2", "avx512f", "avx512_bf16"}) == "AVX-512, AVX512-BF16"
    assert vector_units({"avx2", "avx512f", "avx512_bf16", "amx_tile"}) == (
        "AVX-512, AVX512-BF16, AMX"
    )
    assert vector_units(set()) == ""


def test_machine_line_keeps_its_fields():
    line = machine()
    # quality_targets._where cuts the CPU and threads off at ", torch 2"
    assert ", torch 2" in line or ", torch v" in line
    assert " torch threads, " in line
