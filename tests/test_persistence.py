"""Model files: safetensors + JSON metadata, atomic writes, clear refusals."""

import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import napari_deconvnet as dn
from napari_deconvnet.core import persistence
from napari_deconvnet.core.kinds import kind_of


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


# ------------------------------------------------ damaged files (issue 16)


def _header_and_body(path):
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def _write_header(path, header, body):
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + body)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda e: e.pop("data_offsets"), "not.*dtype, shape, data_offsets"),  # was a KeyError
        (lambda e: e.update(dtype="I32"), "float dtype"),
        (lambda e: e.update(shape="3"), "non-negative integers"),
        (lambda e: e.update(shape=[-1, 3]), "non-negative integers"),
        (lambda e: e.update(shape=[7, 7, 7, 7]), "does not fill"),
        (lambda e: e["data_offsets"].reverse(), "does not fill"),
    ],
)
def test_edited_tensor_entries_are_value_errors(tmp_path, random_net, edit, message):
    path = dn.save_model(random_net(), tmp_path / "m.safetensors")
    header, body = _header_and_body(path)
    edit(header["head.weight"])
    _write_header(path, header, body)
    with pytest.raises(ValueError, match=message):
        dn.load_model(path)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.clear(), "not a napari-deconvnet model"),
        (lambda d: d.update(config=[1, 2]), "corrupt napari-deconvnet metadata"),
        (lambda d: d.update(metadata="x"), "corrupt napari-deconvnet metadata"),
        (lambda d: d["config"].update(normalization="percentile"), "invalid model configuration"),
        (lambda d: d["config"].update(depth=10**6), "depth 1000000"),
        (lambda d: d["config"].update(kernel_size=10**9 + 1), "1000000001"),
        (lambda d: d.update(format_version=True), "invalid model format version"),
        (lambda d: d["metadata"].update(name="renamed"), "SHA-256"),
    ],
)
def test_edited_documents_are_value_errors(tmp_path, random_net, edit, message):
    path = dn.save_model(random_net(), tmp_path / "m.safetensors")
    header, body = _header_and_body(path)
    doc = json.loads(header["__metadata__"]["napari_deconvnet"])
    edit(doc)
    header["__metadata__"]["napari_deconvnet"] = json.dumps(doc)
    _write_header(path, header, body)
    with pytest.raises(ValueError, match=message):
        dn.load_model(path)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c.update(residual=None), "residual must be True or False, got None"),
        (lambda c: c.update(residual="yes"), "residual must be True or False"),
        (lambda c: c.update(normalization=None), "normalization must be a dict"),
        (
            lambda c: c["normalization"].update(low=99, high=1),
            r"0 <= low < high <= 100, got low=99, high=1",
        ),
        (lambda c: c["normalization"].update(low=-5), "0 <= low < high <= 100"),
        (lambda c: c["normalization"].update(high="99.5"), "0 <= low < high <= 100"),
        (
            lambda c: c.update(normalization={"method": "fixed", "offset": 0.0, "scale": 0.0}),
            "scale > 0",
        ),
        (
            lambda c: c.update(normalization={"method": "fixed", "offset": 0.0, "scale": -2.0}),
            r"scale > 0, got offset=0.0, scale=-2.0",
        ),
    ],
)
def test_edited_configurations_without_a_checksum_are_value_errors(
    tmp_path, random_net, edit, message
):
    """Session 59: without a checksum (files saved before it, or by hand) a config of
    ``"residual": null`` loaded as a network without its input skip (the restore came
    out 0.99 of the range away), percentiles 99 and 1 restored an inverted image,
    ``low=-5`` failed at restore with numpy's words and ``normalization: null`` said
    "'NoneType' object has no attribute 'get'"."""
    path = dn.save_model(random_net(), tmp_path / "m.safetensors")
    header, body = _header_and_body(path)
    doc = json.loads(header["__metadata__"]["napari_deconvnet"])
    del doc["checksum"]
    edit(doc["config"])
    header["__metadata__"]["napari_deconvnet"] = json.dumps(doc)
    _write_header(path, header, body)
    with pytest.raises(ValueError, match=message):
        dn.load_model(path)


@pytest.mark.parametrize("key", ["name", "description"])
def test_a_name_or_description_that_is_not_text_is_refused(tmp_path, random_net, key):
    path = dn.save_model(random_net(), tmp_path / "m.safetensors")
    header, body = _header_and_body(path)
    doc = json.loads(header["__metadata__"]["napari_deconvnet"])
    del doc["checksum"]
    doc["metadata"][key] = [1]
    header["__metadata__"]["napari_deconvnet"] = json.dumps(doc)
    _write_header(path, header, body)
    with pytest.raises(ValueError, match=f"its {key} must be text, got list"):
        dn.load_model(path)


def test_a_flipped_bit_in_the_weights_is_caught_by_the_checksum(tmp_path, random_net):
    path = dn.save_model(random_net(), tmp_path / "m.safetensors")
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x04  # a mantissa bit of the last weight: still a finite float
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="SHA-256"):
        dn.load_model(path)


def test_files_without_a_checksum_still_load_and_non_finite_weights_are_refused(
    tmp_path, random_net
):
    net = random_net()
    path = dn.save_model(net, tmp_path / "m.safetensors")
    header, body = _header_and_body(path)
    doc = json.loads(header["__metadata__"]["napari_deconvnet"])
    del doc["checksum"]  # as files saved before the checksum was added
    header["__metadata__"]["napari_deconvnet"] = json.dumps(doc)
    _write_header(path, header, body)
    loaded = dn.load_model(path)
    assert torch.equal(loaded.head.weight, net.head.weight)
    offset = header["head.bias"]["data_offsets"][0]
    body = body[:offset] + struct.pack("<f", float("nan")) + body[offset + 4 :]
    _write_header(path, header, body)
    with pytest.raises(ValueError, match="'head.bias' holds NaN"):
        dn.load_model(path)


def test_trailing_bytes_are_refused(tmp_path, random_net):
    path = dn.save_model(random_net(), tmp_path / "m.safetensors")
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ValueError, match="truncated or padded"):
        dn.load_model(path)


def test_unexpected_errors_below_the_checks_become_value_errors(tmp_path, random_net, monkeypatch):
    path = dn.save_model(random_net(), tmp_path / "m.safetensors")

    def boom(*args, **kwargs):
        raise KeyError("weights")

    monkeypatch.setattr("safetensors.torch.load_file", boom)
    with pytest.raises(ValueError, match="not a readable napari-deconvnet model file.*KeyError"):
        dn.load_model(path)


def test_save_model_creates_missing_folders(tmp_path, random_net):
    path = tmp_path / "a" / "b" / "m.safetensors"
    assert dn.save_model(random_net(), path) == path
    assert dn.load_model(path).config == random_net().config
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.safetensors"]
    # a file where a folder should be: a ValueError naming it (session 73: an OSError,
    # "File exists")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match="afile is a file, not a folder"):
        dn.save_model(random_net(), tmp_path / "afile" / "sub" / "m.safetensors")
    assert (tmp_path / "afile").read_text() == "x"


# ------------------------------------------- umask and crash safety (issue 16)


def _write_everything(folder):
    import numpy as np

    from napari_deconvnet.io import writer

    net = dn.DeconvNet(depth=1, base_channels=4)
    dn.save_model(net, folder / "m.safetensors")
    image = np.zeros((16, 16), np.float32)
    for name in ("a.tif", "a.ome.tif", "a.ome.zarr"):
        writer.write_image(folder / name, image, {"name": "a"})


def test_saving_and_writing_never_touch_the_umask(tmp_path, monkeypatch):
    import os

    def forbidden(mask):
        raise AssertionError("os.umask called: it races with other threads")

    monkeypatch.setattr(os, "umask", forbidden)
    _write_everything(tmp_path)
    _write_everything(tmp_path)  # and again, replacing every file and the folder
    assert (tmp_path / "a.ome.zarr" / ".zattrs").exists()


def test_new_files_follow_the_process_umask(tmp_path):
    import subprocess
    import sys

    code = (
        "import os, sys, pathlib; os.umask(0o027); "
        "sys.path.insert(0, sys.argv[2]); "
        "from test_persistence import _write_everything; "
        "_write_everything(pathlib.Path(sys.argv[1]))"
    )
    here = str(__import__("pathlib").Path(__file__).parent)
    subprocess.run([sys.executable, "-c", code, str(tmp_path), here], check=True)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == {
        "m.safetensors": 0o640,
        "a.tif": 0o640,
        "a.ome.tif": 0o640,
        "a.ome.zarr": 0o750,
    }


def _zarr_value(path):
    import zarr

    return float(zarr.open_group(str(path), mode="r")["0"][0, 0])


def test_a_crash_between_the_two_folder_renames_is_recovered(tmp_path, monkeypatch):
    import os

    import numpy as np

    from napari_deconvnet.io import writer

    path = tmp_path / "out.ome.zarr"
    writer.write_image(path, np.full((8, 8), 1.0, np.float32), {"name": "old"})
    real = os.replace
    calls = []

    class Crash(BaseException):
        """The process dies: nothing after it runs, the rollback included."""

    def crashing(src, dst):
        # zarr renames its own files inside the new folder: count only the swap
        if Path(dst) == path or Path(src) == path or calls:
            calls.append((Path(src).name, Path(dst).name))
            if len(calls) >= 2:
                raise Crash
        return real(src, dst)

    monkeypatch.setattr(os, "replace", crashing)
    with pytest.raises(Crash):
        writer.write_image(path, np.full((8, 8), 2.0, np.float32), {"name": "new"})
    monkeypatch.setattr(os, "replace", real)
    # aside, then the new one in (crash), then the rollback (dead too)
    assert calls[0] == ("out.ome.zarr", ".out.ome.zarr.old")
    assert calls[1][1] == "out.ome.zarr" and len(calls) == 3
    assert not path.exists()
    aside = tmp_path / ".out.ome.zarr.old"
    assert _zarr_value(aside) == 1.0  # the previous version is complete, aside
    assert writer.recover_folder(path) is True
    assert _zarr_value(path) == 1.0 and not aside.exists()
    assert writer.recover_folder(path) is False
    # the next write recovers too, then replaces
    real(path, aside)
    writer.write_image(path, np.full((8, 8), 3.0, np.float32), {"name": "newer"})
    assert _zarr_value(path) == 3.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.ome.zarr"]


def test_a_failed_second_rename_puts_the_old_folder_back(tmp_path, monkeypatch):
    import os

    import numpy as np

    from napari_deconvnet.io import writer

    path = tmp_path / "out.ome.zarr"
    writer.write_image(path, np.full((8, 8), 1.0, np.float32), {"name": "old"})
    real = os.replace
    calls = []

    def failing(src, dst):
        if Path(dst) == path and str(src).endswith(".tmp"):  # the new folder in
            calls.append(src)
            raise OSError("device busy")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError, match="device busy"):
        writer.write_image(path, np.full((8, 8), 2.0, np.float32), {"name": "new"})
    assert _zarr_value(path) == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.ome.zarr"]


def test_a_stale_old_folder_beside_a_good_target_is_removed(tmp_path):
    import numpy as np

    from napari_deconvnet.io import writer

    path = tmp_path / "out.ome.zarr"
    writer.write_image(path, np.full((8, 8), 1.0, np.float32), {"name": "a"})
    (tmp_path / ".out.ome.zarr.old").mkdir()  # a crash while deleting the old version
    writer.write_image(path, np.full((8, 8), 2.0, np.float32), {"name": "b"})
    assert _zarr_value(path) == 2.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.ome.zarr"]


def test_writes_are_flushed_to_disk(tmp_path, monkeypatch):
    import os

    flushed = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: flushed.append(fd) or real(fd))
    _write_everything(tmp_path)
    # the model file and two TIFFs, each with its folder; the zarr's files and folders
    assert len(flushed) >= 6 + len(list((tmp_path / "a.ome.zarr").rglob("*")))


def test_a_damaged_document_key_is_refused(random_net, tmp_path):
    """A byte edit that renames "checksum" must not leave a file that loads unchecked."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    path = tmp_path / "m.safetensors"
    dn.save_model(random_net(ndim=2), path)
    with safe_open(str(path), "pt") as f:
        meta = dict(f.metadata())
    doc = json.loads(meta["napari_deconvnet"])
    doc["checksVm"] = doc.pop("checksum")
    meta["napari_deconvnet"] = json.dumps(doc)
    save_file(load_file(str(path)), str(tmp_path / "damaged.safetensors"), metadata=meta)
    with pytest.raises(ValueError, match=r"unknown entries \['checksVm'\]"):
        dn.load_model(tmp_path / "damaged.safetensors")


#: The configuration fields model files had before pooling, the top skip and
#: planar levels were added; a release of that time refuses any other key.
FIRST_RELEASE_FIELDS = {
    "ndim", "in_channels", "out_channels", "depth", "base_channels", "convs_per_level",
    "kernel_size", "activation", "skip", "residual", "normalization", "residual_input",
}  # fmt: skip


def test_files_of_networks_without_new_features_stay_readable_by_older_releases(tmp_path):
    torch.manual_seed(0)
    plain = dn.DeconvNet(ndim=3, depth=2, base_channels=4)
    path = dn.save_model(plain, tmp_path / "plain.safetensors")
    stored = persistence.model_info(path)["config"]
    assert set(stored) <= FIRST_RELEASE_FIELDS
    loaded = dn.load_model(path)
    assert loaded.config == plain.config
    x = torch.rand(1, 1, 8, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), plain(x))
    # a network that uses a newer feature keeps it in its file
    planar = dn.DeconvNet(ndim=3, depth=2, base_channels=4, planar_levels=1, pool="blur")
    path = dn.save_model(planar, tmp_path / "planar.safetensors")
    stored = persistence.model_info(path)["config"]
    assert stored["planar_levels"] == 1 and stored["pool"] == "blur"
    assert "top_skip" not in stored
    assert dn.load_model(path).config == planar.config


def test_shipped_models_are_read_once_and_every_load_is_its_own_copy():
    persistence._SHIPPED_CACHE.clear()
    first = dn.load_model("deconv-2d")
    path = persistence._resolve("deconv-2d")
    assert [k[0] for k in persistence._SHIPPED_CACHE] == [path]
    fresh = persistence._load(path)  # read and checked again, not from the cache
    with torch.no_grad():
        for p in first.parameters():
            p.add_(1.0)  # a caller changing its copy (training in place)
    first.metadata["name"] = "changed"
    second = dn.load_model("deconv-2d")
    assert second is not first and second.metadata["name"] == "deconv-2d"
    for key, value in fresh.state_dict().items():
        assert torch.equal(second.state_dict()[key], value), key
    assert all(p.requires_grad and not p.is_meta for p in second.parameters())
    assert not second.training


def test_a_changed_shipped_file_is_read_again(tmp_path, random_net, monkeypatch):
    path = tmp_path / "mine.safetensors"
    dn.save_model(random_net(seed=0), path)
    monkeypatch.setattr(persistence, "_weights_dir", lambda: tmp_path)  # a shipped folder
    before = dn.load_model("mine")
    other = random_net(seed=1)  # other weights, the same file size
    dn.save_model(other, path)
    stat = path.stat()  # another modification time, even within the clock's resolution
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    after = dn.load_model("mine")
    key = next(iter(other.state_dict()))
    assert torch.equal(after.state_dict()[key], other.state_dict()[key])
    assert not torch.equal(after.state_dict()[key], before.state_dict()[key])
    assert sum(k[0] == path for k in persistence._SHIPPED_CACHE) == 1  # the old entry dropped


def test_a_loaded_network_is_built_from_the_file_without_random_weights(
    tmp_path, random_net, monkeypatch
):
    path = tmp_path / "m.safetensors"
    saved = random_net()
    dn.save_model(saved, path)
    drawn = []
    original = torch.nn.init.kaiming_uniform_

    def spy(*args, **kwargs):
        drawn.append((args[0] if args else kwargs["tensor"]).is_meta)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.nn.init, "kaiming_uniform_", spy)
    net = dn.load_model(path)
    assert drawn and all(drawn)  # initialised on the meta device only: nothing computed
    for key, value in saved.state_dict().items():
        assert torch.equal(net.state_dict()[key], value)
    loss = net(torch.rand(1, 1, 16, 16)).square().mean()
    loss.backward()  # trainable as loaded
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("key", ["conditioning", "training"])
def test_a_conditioning_or_training_record_that_is_no_dict_is_refused(tmp_path, random_net, key):
    # "conditioning": "richardson-lucy" was saved and loaded; every restore then failed in
    # "AttributeError: 'str' object has no attribute 'get'"
    net = random_net()
    net.metadata = {key: "richardson-lucy"}
    with pytest.raises(ValueError, match=f"metadata\\['{key}'\\] must be a dict"):
        dn.save_model(net, tmp_path / "refused.safetensors")
    assert not (tmp_path / "refused.safetensors").exists()
    path = dn.save_model(random_net(), tmp_path / "m.safetensors")
    header, body = _header_and_body(path)
    doc = json.loads(header["__metadata__"]["napari_deconvnet"])
    del doc["checksum"]
    doc["metadata"][key] = "richardson-lucy"
    header["__metadata__"]["napari_deconvnet"] = json.dumps(doc)
    _write_header(path, header, body)
    with pytest.raises(ValueError, match=f"its {key} must be a JSON object"):
        dn.load_model(path)
    with pytest.raises(ValueError, match="metadata\\['conditioning'\\] must be a dict"):
        kind_of({"conditioning": ["wiener"]})


def test_save_refuses_what_load_would_refuse_and_writes_nothing(tmp_path, random_net):
    path = tmp_path / "m.safetensors"
    net = random_net()
    net.metadata = {"name": 5}
    with pytest.raises(ValueError, match="name'\\] must be text"):
        dn.save_model(net, path)
    net.metadata = {"name": "ok"}
    with torch.no_grad():
        next(net.parameters())[0].fill_(float("nan"))
    with pytest.raises(ValueError, match="NaN or infinite"):
        dn.save_model(net, path)
    (tmp_path / "folder.safetensors").mkdir()
    with pytest.raises(ValueError, match="is a folder"):
        dn.save_model(net, tmp_path / "folder.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.safetensors"]
    with pytest.raises(TypeError, match="name must be text"):
        dn.train(np.zeros((64, 64), np.float32), noise="gaussian", name=5, device="cpu")


def test_a_model_file_renamed_zip_loads_and_an_empty_name_is_named(tmp_path):
    """Session 70: a .safetensors model renamed .zip was refused as "not a readable zip
    archive ... export the package again" (any other extension loads by content), and
    load_model("") said "model path '.' is not a file"."""
    import shutil

    import napari_deconvnet as dn

    path = tmp_path / "m.safetensors"
    dn.save_model(dn.load_model("denoise-2d"), path)
    shutil.copy(path, tmp_path / "m.zip")
    assert dn.load_model(tmp_path / "m.zip").metadata["name"] == "denoise-2d"
    assert dn.model_info(str(tmp_path / "m.zip"))["metadata"]["name"] == "denoise-2d"
    (tmp_path / "bad.zip").write_bytes(b"hello, not a zip")
    with pytest.raises(ValueError, match="not a readable zip archive"):
        dn.load_model(tmp_path / "bad.zip")
    with pytest.raises(ValueError, match="empty name; use a shipped name"):
        dn.load_model("")
