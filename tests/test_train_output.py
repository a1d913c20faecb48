"""The Train widget's hand-off to Restore: the model file stays in its session folder."""

from pathlib import Path

import numpy as np

import napari_deconvnet as dn
from napari_deconvnet.io import registry
from napari_deconvnet.widgets import _train_output
from napari_deconvnet.widgets._train_output import register_for_restore


def test_use_in_restore_keeps_any_model_name_inside_the_session_folder(tmp_path, monkeypatch):
    """Session 67: the file name was the model's metadata name as it was, so "a/b" made
    a sub-folder, "../x" or "/abs/x" wrote (or overwrote) a file outside the folder."""
    session = tmp_path / "session"
    session.mkdir()
    monkeypatch.setattr(_train_output, "_session_dir", [session])
    outside = tmp_path / "escape.safetensors"
    outside.write_bytes(b"keep me")
    x = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    monkeypatch.setattr(registry, "_models", {})  # (the models listed stay this test's)
    for name in ["a/b", "../escape", str(tmp_path / "abs"), "..", "", "deconv-2d-finetuned"]:
        net = dn.DeconvNet(dn.DeconvNetConfig(ndim=2, depth=2, base_channels=4))
        net.metadata = {"name": name}
        path = Path(registry.resolve(register_for_restore(net)))
        assert path.parent.parent == session, (name, path)
        assert "/" not in path.name and not path.name.startswith(".")
        np.testing.assert_array_equal(  # it restores as the model it is
            dn.restore(x, dn.load_model(path), device="cpu"), dn.restore(x, net, device="cpu")
        )
    assert outside.read_bytes() == b"keep me"
    assert not (tmp_path / "abs.safetensors").exists()
