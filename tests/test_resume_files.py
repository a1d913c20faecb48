"""Resume files edited or damaged: a clear ValueError before any step, never a bare error.

Session 59 edited each entry of a resume file (the ``.resume.safetensors``
an ``autosave=`` run writes) and each kind of its tensors: a missing
``step`` or ``history`` raised ``KeyError``, odd values ``int()``'s own
messages, an empty history ``IndexError``, a ``best_epoch`` without its
history entry "generator raised StopIteration" at the next autosave,
weights of another shape torch's ``RuntimeError``; NaN weights and
optimiser moments of another shape (which broadcast) trained on silently.
"""

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import napari_deconvnet as dn
from napari_deconvnet.core.checkpoint import resume_path

KEY = "napari_deconvnet_resume"
RUN = dict(
    epochs=2,
    steps_per_epoch=2,
    patch_size=32,
    batch_size=2,
    seed=0,
    device="cpu",
    network={"depth": 2, "base_channels": 8},
)
RNG = np.random.default_rng(0)
CLEAN = RNG.random((96, 96)).astype(np.float32)
NOISY = (CLEAN + 0.1 * RNG.standard_normal(CLEAN.shape)).astype(np.float32)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "run.safetensors"
    dn.train(NOISY, CLEAN, autosave=path, **RUN)
    with safe_open(str(resume_path(path)), "pt") as fh:
        record = json.loads(fh.metadata()[KEY])
    return path, record, load_file(str(resume_path(path)))


def _write(saved, folder, record=None, tensors=None):
    path, original, weights = saved
    target = folder / "run.safetensors"
    target.write_bytes(path.read_bytes())
    meta = {KEY: json.dumps(original if record is None else record)}
    save_file(weights if tensors is None else tensors, str(resume_path(target)), metadata=meta)
    return target


def _edited(record, key, value):
    out = json.loads(json.dumps(record))
    if value is KeyError:
        del out[key]
    else:
        out[key] = value
    return out


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("step", KeyError, "step must be a non-negative integer"),
        ("step", "x", "step must be a non-negative integer"),
        ("step", 1e300, "step must be a non-negative integer"),
        ("epoch", -5, "epoch must be a non-negative integer"),
        ("seconds", None, "seconds must be a finite number"),
        ("best_epoch", 7, "best_epoch 7 has no entry in the history"),
        ("best_kind", "x", "best_kind must be 'raw' or 'ema'"),
        ("history", KeyError, "history must be a list"),
        ("history", [], "an empty history after epoch 2"),
        ("history", [1, 2], "history must be a list"),
        ("param_groups", [{"lr": 1e-3}], "param_groups must be"),
        ("settings", None, "settings must be an object"),
        ("format_version", 2, "format_version 2"),
    ],
)
def test_an_edited_record_is_refused_with_its_entry_named(saved, tmp_path, key, value, words):
    target = _write(saved, tmp_path, record=_edited(saved[1], key, value))
    with pytest.raises(ValueError, match="corrupt resume record") as info:
        dn.train(NOISY, CLEAN, resume=target, **RUN)
    assert words in str(info.value)


def test_a_record_that_is_not_an_object_is_refused(saved, tmp_path):
    target = _write(saved, tmp_path, record=[1, 2])
    with pytest.raises(ValueError, match="a JSON list, not an object"):
        dn.train(NOISY, CLEAN, resume=target, **RUN)


def _first(tensors, prefix):
    return next(k for k in tensors if k.startswith(prefix))


def test_damaged_tensors_are_refused(saved, tmp_path):
    weights = saved[2]
    net_key, opt_key = _first(weights, "net."), _first(weights, "opt.")
    renamed = {k: v for k, v in weights.items() if k != opt_key}
    renamed["opt.x.exp_avg"] = weights[opt_key]
    cases = {
        "nan": ({**weights, net_key: torch.full_like(weights[net_key], float("nan"))}, "NaN"),
        "shape": (
            {**weights, net_key: weights[net_key].flatten()[:1].contiguous()},
            "weights do not fit this network",
        ),
        "missing": (
            {k: v for k, v in weights.items() if k != net_key},
            "weights do not fit this network",
        ),
        "moment": (
            {**weights, opt_key: weights[opt_key].flatten()[:1].contiguous()},
            "optimiser state does not fit",
        ),
        "index": (
            {
                **{k: v for k, v in weights.items() if k != opt_key},
                "opt.x.exp_avg": weights[opt_key],
            },
            "is not opt.<index>.<name>",
        ),
    }
    for name, (tensors, words) in cases.items():
        target = _write(
            saved, tmp_path / name if (tmp_path / name).mkdir() is None else None, tensors=tensors
        )
        with pytest.raises(ValueError, match=words):
            dn.train(NOISY, CLEAN, resume=target, **RUN)


def test_the_saved_files_still_resume(saved, tmp_path):
    target = _write(saved, tmp_path)
    result = dn.train(NOISY, CLEAN, resume=target, **{**RUN, "epochs": 3})
    assert result.steps == 6 and result.history[-1]["epoch"] == 3


def test_a_resume_with_another_loss_is_refused_for_its_loss(saved, tmp_path):
    # its scores are in its own loss: an L1 run compared them with the recorded MSE and
    # was refused as "a run on other data"
    target = _write(saved, tmp_path)
    with pytest.raises(ValueError, match=r"loss='mse', but this run's loss is 'l1'"):
        dn.train(NOISY, CLEAN, resume=target, loss="l1", **{**RUN, "epochs": 3})
    # a file of a version before the loss was recorded: as before (no such check)
    record = dict(saved[1])
    record["settings"] = {k: v for k, v in record["settings"].items() if k != "loss"}
    (tmp_path / "older").mkdir()
    older = _write(saved, tmp_path / "older", record=record)
    result = dn.train(NOISY, CLEAN, resume=older, **{**RUN, "epochs": 3})
    assert result.steps == 6


def test_a_resume_with_other_settings_says_which(saved, tmp_path):
    # another learning rate or batch size was taken silently (session 67); the run goes
    # on with the new ones, and a warning names each with the interrupted run's value
    target = _write(saved, tmp_path)
    with pytest.warns(UserWarning, match=r"batch_size 4 \(was 2\), lr 0\.0005 \(was 0\.003\)"):
        result = dn.train(
            NOISY, CLEAN, resume=target, **{**RUN, "epochs": 3, "lr": 5e-4, "batch_size": 4}
        )
    assert result.steps == 6
    import warnings

    (tmp_path / "same").mkdir()
    same = _write(saved, tmp_path / "same")  # (the resumed run autosaved its own settings)
    with warnings.catch_warnings():  # the same settings: no warning
        warnings.filterwarnings("error", message=".*other settings.*")
        dn.train(NOISY, CLEAN, resume=same, **{**RUN, "epochs": 3})
