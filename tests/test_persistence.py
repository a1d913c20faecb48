"""Model files: safetensors + JSON metadata, atomic writes, clear refusals."""

import json
import pickle
import struct

import numpy as np
import pytest
import torch

import napari_deconvnet as dn
from napari_deconvnet.core import persistence


def test_roundtrip(tmp_path, random_net):
    net = random_net(ndim=3)
    net.metadata["training"] = {"epochs": 3, "loss": "mse"}
    path = dn.save_model(net, tmp_path / "m.safetensors")
    loaded = dn.load_model(path)
    assert loaded.config == net.config
    assert loaded.metadata["training"] == {"epochs": 3, "loss": "mse"}
    for (k, a), (_, b) in zip(net.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    x = np.random.default_rng(0).random((8, 16, 16)).astype(np.float32)
    np.testing.assert_array_equal(dn.restore(x, net), dn.restore(x, path))
    assert path.stat().st_mode & 0o044  # readable by others, like any saved file
    info = dn.model_info(path)
    assert info["format_version"] == persistence.FORMAT_VERSION
    assert info["library"]["torch"] == torch.__version__


def test_default_model_is_shipped():
    models = dn.list_models()
    assert "default" in models and "denoise-2d" in models
    net = dn.load_model("default")
    assert net.config.ndim == 2 and net.metadata["name"] == "denoise-2d"
    assert "training" in net.metadata


def test_atomic_save_keeps_old_file(tmp_path, random_net, monkeypatch):
    path = tmp_path / "m.safetensors"
    dn.save_model(random_net(seed=1), path)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.torch.save", broken)
    with pytest.raises(OSError, match="disk full"):
        dn.save_model(random_net(seed=2), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_refuses_pickle(tmp_path, random_net):
    pt = tmp_path / "model.pt"
    torch.save(random_net().state_dict(), pt)
    with pytest.raises(ValueError, match="zip archive.*never loaded"):
        dn.load_model(pt)
    pk = tmp_path / "model.pkl"
    pk.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="pickle"):
        dn.load_model(pk)


def test_refuses_truncated(tmp_path, random_net):
    path = dn.save_model(random_net(), tmp_path / "m.safetensors")
    data = path.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        dn.load_model(cut)
    tiny = tmp_path / "tiny.safetensors"
    tiny.write_bytes(data[:5])
    with pytest.raises(ValueError, match="too short"):
        dn.load_model(tiny)


def test_refuses_corrupt_header(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", 10) + b"{not json}" + b"\0" * 10)
    with pytest.raises(ValueError, match="corrupt"):
        dn.load_model(path)


def test_refuses_foreign_safetensors(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(3)}, str(path), metadata={"format": "pt"})
    with pytest.raises(ValueError, match="another tool"):
        dn.load_model(path)


def _rewrite_doc(src, dst, change):
    from safetensors.torch import load_file, save_file

    meta = json.loads(dn.model_info(src) and _raw_meta(src))
    change(meta)
    save_file(load_file(str(src)), str(dst), metadata={"napari_deconvnet": json.dumps(meta)})


def _raw_meta(path):
    from safetensors import safe_open

    with safe_open(str(path), "pt") as fh:
        return fh.metadata()["napari_deconvnet"]


def test_refuses_newer_version(tmp_path, random_net):
    src = dn.save_model(random_net(), tmp_path / "m.safetensors")
    dst = tmp_path / "new.safetensors"
    _rewrite_doc(src, dst, lambda m: m.update(format_version=99))
    with pytest.raises(ValueError, match="version 99.*upgrade"):
        dn.load_model(dst)


def test_refuses_shape_mismatch(tmp_path, random_net):
    src = dn.save_model(random_net(), tmp_path / "m.safetensors")
    dst = tmp_path / "wide.safetensors"
    _rewrite_doc(src, dst, lambda m: m["config"].update(base_channels=16))
    with pytest.raises(ValueError, match="has shape"):
        dn.load_model(dst)


def test_missing_file_and_wrong_types(tmp_path, random_net):
    with pytest.raises(ValueError, match="does not exist"):
        dn.load_model(tmp_path / "nope.safetensors")
    with pytest.raises(TypeError, match="name, a path or a DeconvNet"):
        dn.load_model(42)
    with pytest.raises(ValueError, match="end in .safetensors"):
        dn.save_model(random_net(), tmp_path / "m.pt")
    with pytest.raises(TypeError, match="needs a DeconvNet"):
        dn.save_model({}, tmp_path / "m.safetensors")


class _Payload:
    """Unpickling this creates the file `marker`: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


@pytest.mark.parametrize("name", ["evil.pkl", "evil.pt", "evil.safetensors"])
def test_loading_never_unpickles(tmp_path, name):
    from napari_deconvnet.io import reader

    marker = tmp_path / "code-ran"
    path = tmp_path / name
    if name.endswith(".pt"):
        torch.save({"state_dict": _Payload(marker)}, path)  # a zip archive holding a pickle
    else:
        path.write_bytes(pickle.dumps(_Payload(marker)))
    pickle.loads(pickle.dumps(_Payload(tmp_path / "works")))  # the payload is live ...
    assert (tmp_path / "works").exists()
    with pytest.raises(ValueError, match="never loaded|pickle"):
        dn.load_model(path)
    with pytest.raises(ValueError):
        dn.model_info(path)
    if name.endswith(".safetensors"):
        read = reader.get_model_reader(str(path))
        assert read is not None and read(str(path)) == [(None,)]  # an error notification
    assert not marker.exists()  # ... but loading never ran it


def test_header_length_that_looks_like_a_magic_number_is_still_a_model(tmp_path, random_net):
    # the first byte of a safetensors file is the low byte of its header length;
    # 0x80 (the pickle marker), "PK" or "II" there must not make a model foreign
    net = random_net()
    for pad in range(0, 600):
        net.metadata = {"name": "magic", "description": "x" * pad}
        path = tmp_path / "m.safetensors"
        dn.save_model(net, path)
        first = path.read_bytes()[:1]
        if first == b"\x80":
            break
    else:
        pytest.fail("no metadata length gave a header length of 0x..80")
    loaded = dn.load_model(path)
    assert loaded.metadata["description"] == "x" * pad
