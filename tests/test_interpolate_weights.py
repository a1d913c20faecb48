"""scripts/interpolate_weights.py: the weights between two models of one architecture."""

import json
import sys
from pathlib import Path

import pytest
import torch

import napari_deconvnet as dn
from napari_deconvnet.core.persistence import save_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
interpolate_weights = pytest.importorskip("interpolate_weights")


def _net(seed, **config):
    torch.manual_seed(seed)
    net = dn.DeconvNet(dn.DeconvNetConfig(**{"ndim": 2, "base_channels": 4, "depth": 1, **config}))
    for p in net.parameters():
        torch.nn.init.normal_(p)
    net.metadata = {"name": f"m{seed}", "training": {"steps": seed}}
    return net


def test_halfway_is_the_mean_and_the_file_says_so(tmp_path):
    start, end = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save_model(_net(1), start)
    save_model(_net(2), end)
    (tmp_path / "b.log.json").write_text(json.dumps({"training": {"steps": 2}, "history": []}))
    out = tmp_path / "c.safetensors"
    assert interpolate_weights.main([str(start), str(end), "0.5", str(out), "--why", "test"]) == 0
    a, b, c = (dn.load_model(p).state_dict() for p in (start, end, out))
    for k in c:
        torch.testing.assert_close(c[k], 0.5 * a[k] + 0.5 * b[k])
    record = dn.load_model(out).metadata["training"]["weight_interpolation"]
    assert record["alpha"] == 0.5 and record["why"] == "test" and len(record["start_sha256"]) == 64
    log = json.loads((tmp_path / "c.log.json").read_text())
    assert log["training"]["weight_interpolation"] == record
    # the ends are the two models
    for alpha, ref in ((0.0, a), (1.0, b)):
        mixed = interpolate_weights.interpolate(dn.load_model(start), dn.load_model(end), alpha)
        for k, v in mixed.state_dict().items():
            torch.testing.assert_close(v, ref[k])


def test_other_architectures_and_alphas_are_refused():
    with pytest.raises(ValueError, match="architecture"):
        interpolate_weights.interpolate(_net(1), _net(2, base_channels=8), 0.5)
    with pytest.raises(ValueError, match="alpha"):
        interpolate_weights.interpolate(_net(1), _net(2), 1.5)
