"""Shared fixtures. Core tests need no Qt; widget tests use napari's make_napari_viewer."""

import numpy as np
import pytest
import torch


def _random_net(ndim=2, seed=0, **config):
    import napari_deconvnet as dn

    torch.manual_seed(seed)
    net = dn.DeconvNet(ndim=ndim, depth=config.pop("depth", 2), base_channels=8, **config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    net.metadata = {"name": f"random-{ndim}d", "description": "random weights for tests"}
    return net.eval()


@pytest.fixture
def random_net():
    """A factory of small DeconvNets with seeded random (non-trivial) weights."""
    return _random_net


@pytest.fixture(params=["cpu", "cuda", "mps"])
def device(request):
    """Each available device; unavailable hardware is skipped."""
    name = request.param
    if name == "cuda" and not torch.cuda.is_available():
        pytest.skip("CUDA not available")
    if name == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        pytest.skip("MPS not available")
    return name


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def benchmark_script(monkeypatch):
    """``load(name)``: ``benchmarks/<name>.py`` as a module (its folder on the path).

    The module is registered in ``sys.modules`` under `module_name` (default
    `name`) for the test's duration, as its dataclasses need.
    """
    import importlib.util
    import sys
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    monkeypatch.syspath_prepend(str(folder))

    def load(name: str, module_name: str | None = None):
        module_name = module_name or name
        spec = importlib.util.spec_from_file_location(module_name, folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, module_name, module)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def quality_benchmark(benchmark_script):
    """``benchmarks/quality.py`` as a module (its tasks, degradations, test sets)."""
    return benchmark_script("quality", "quality_benchmark")


@pytest.fixture(autouse=True)
def _float32_auto_precision_on_the_cpu(monkeypatch):
    """Keep precision="auto" float32 on CPUs with bfloat16 units too, so that
    tiled-equals-untiled checks stay exact; tests/test_precision.py covers bfloat16."""
    from napari_deconvnet.core import devices

    # the environment variable reaches the processes tests start too (the command
    # line, dask workers), where a monkeypatched attribute would not
    monkeypatch.setenv(devices.CPU_BFLOAT16_ENV, "0")


@pytest.fixture(autouse=True)
def _train_session_folder(tmp_path_factory, monkeypatch):
    """Train-widget autosaves go to a temporary folder, never the user's cache."""
    monkeypatch.setenv("NAPARI_DECONVNET_SESSION", str(tmp_path_factory.mktemp("session")))


@pytest.fixture(scope="session")
def quiet_specialist(tmp_path_factory):
    """``denoise-2d`` fine-tuned without rehearsal on a smooth scene with noise 0.02.

    Returns ``(model file, clean scene)``: restoring that scene with noise
    0.3 is far outside the model's training conditions (core/conditions.py).
    """
    import napari_deconvnet as dn

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:96, 0:96] / 96
    clean = (0.5 + 0.4 * np.sin(6 * (x + y))).astype(np.float32)
    net = dn.train(
        (clean + rng.normal(0, 0.02, clean.shape)).astype(np.float32),
        clean,
        model="default",
        rehearsal=0,
        epochs=1,
        steps_per_epoch=1,
        patch_size=32,
        batch_size=2,
        device="cpu",
        preview=False,
    ).model
    path = dn.save_model(net, tmp_path_factory.mktemp("specialist") / "quiet.safetensors")
    return path, clean
