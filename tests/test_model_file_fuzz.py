"""A fast, seeded sample of benchmarks/fuzz_model_files.py: every mutated model file is refused.

The full run (10,000 files) is ``python benchmarks/fuzz_model_files.py``.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz_model_files.py"


@pytest.fixture(scope="module")
def fuzz():
    spec = importlib.util.spec_from_file_location("fuzz_model_files", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_model_files"] = module  # pickle finds Payload by module name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("fuzz_model_files", None)


def test_every_mutated_model_file_is_refused_with_a_value_error(fuzz, tmp_path):
    result = fuzz.run(count=296, seed=12345, folder=tmp_path, limit=30.0)
    assert result["failures"] == []
    assert not (tmp_path / "code-ran").exists()
    for kind in fuzz.KINDS:
        counts = result["table"][kind]
        assert sum(counts.values()) == 37
        # only an equivalent file (the checksum stripped) may load, and only a document edit
        loaded = counts.get("loaded, same model", 0)
        assert counts[fuzz.OK] + loaded == 37
        assert loaded == 0 or kind == "document"
    table = fuzz.markdown(result)
    assert "| **all** | **296** |" in table


def test_the_pickle_payload_is_live(fuzz, tmp_path):
    # the fuzz's pickle mutation would create the marker if anything unpickled it
    import pickle

    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(fuzz.Payload(str(marker))))
    assert marker.exists()


def test_the_fuzz_reports_a_loader_that_lets_errors_escape(fuzz, tmp_path, monkeypatch):
    import napari_deconvnet as dn

    real = dn.load_model

    def leaky(path):
        if Path(path).name != "base.safetensors":
            raise KeyError("config")
        return real(path)

    monkeypatch.setattr(dn, "load_model", leaky)
    result = fuzz.run(count=16, seed=0, folder=tmp_path)
    assert len(result["failures"]) == 16
    assert {f["outcome"] for f in result["failures"]} == {"KeyError"}
