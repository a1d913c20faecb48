"""Precision choice, bfloat16 restore, loss scaling and the out-of-memory fallback."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import napari_deconvnet as dn
from napari_deconvnet.core import devices
from napari_deconvnet.core.devices import (
    cpu_has_native_bfloat16,
    forward_tiles,
    grad_scaler,
    resolve_precision,
)

CPU, CUDA, MPS = torch.device("cpu"), torch.device("cuda"), torch.device("mps")


@pytest.fixture
def native_bf16(monkeypatch):
    """Pretend the CPU does (or does not) compute bfloat16 natively."""

    def set_native(value: bool) -> None:
        monkeypatch.setattr(devices, "cpu_has_native_bfloat16", lambda: value)

    return set_native


@pytest.mark.parametrize(
    ("device", "allowed", "native", "expected"),
    [
        (CUDA, False, False, torch.float16),
        (CUDA, True, True, torch.float16),
        (MPS, True, True, torch.float32),
        (CPU, False, False, torch.float32),
        (CPU, False, True, torch.float32),  # not measured to be accurate enough
        (CPU, True, False, torch.float32),  # emulated bfloat16 is slower
        (CPU, True, True, torch.bfloat16),
    ],
)
def test_auto_precision(monkeypatch, native_bf16, device, allowed, native, expected):
    monkeypatch.delenv(devices.CPU_BFLOAT16_ENV)  # conftest's float32 for the whole suite
    monkeypatch.setattr(devices, "CPU_AUTO_BFLOAT16", allowed)
    native_bf16(native)
    assert resolve_precision("auto", device) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", torch.bfloat16), ("on", torch.bfloat16), ("True", torch.bfloat16),
     ("0", torch.float32), ("off", torch.float32), ("", torch.float32),
     ("maybe", torch.float32)],
)  # fmt: skip
def test_environment_variable_turns_bfloat16_on(monkeypatch, native_bf16, value, expected):
    monkeypatch.setenv(devices.CPU_BFLOAT16_ENV, value)
    native_bf16(True)
    assert resolve_precision("auto", CPU) == expected
    assert devices.precision_name("auto", "cpu") == str(expected).removeprefix("torch.")
    assert resolve_precision("auto", CUDA) == torch.float16  # the GPU keeps its own choice
    monkeypatch.setattr(devices, "CPU_AUTO_BFLOAT16", True)  # the constant decides the rest
    assert resolve_precision("auto", CPU) == (torch.float32 if value == "0" or value == "off"
                                              else torch.bfloat16)  # fmt: skip


def test_auto_is_float32_on_a_cpu_with_bfloat16_units(monkeypatch, native_bf16):
    """bfloat16's rounding depends on the tile shapes: not the default."""
    monkeypatch.delenv(devices.CPU_BFLOAT16_ENV)  # conftest's float32 for the whole suite
    native_bf16(True)
    assert resolve_precision("auto", CPU) == torch.float32
    assert resolve_precision("bfloat16", CPU) == torch.bfloat16  # on request


def test_lazy_equals_eager_with_the_default_precision_on_this_cpu(monkeypatch):
    """With nothing set, lazy and eager restores agree to 1e-5 of the range on any
    CPU (on one with AMX, bfloat16's rounding made them differ by about 1e-3)."""
    import dask.array as da

    monkeypatch.delenv(devices.CPU_BFLOAT16_ENV)
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, 300, dtype=np.float32)[None]
    image = (ramp + rng.normal(0, 0.1, (70, 300))).astype(np.float32)
    eager = dn.restore(image, "default", device="cpu")
    for chunks in ((70, 100), (20, 64)):
        lazy = np.asarray(dn.restore(da.from_array(image, chunks=chunks), "default", device="cpu"))
        assert np.abs(lazy - eager).max() <= 1e-5 * np.ptp(eager), chunks
    if cpu_has_native_bfloat16():  # the opt-in still differs there (why it is one)
        fast = dn.restore(image, "default", device="cpu", precision="bfloat16")
        assert np.abs(fast - eager).max() <= 0.02 * np.ptp(eager)


def test_precision_name_resolves_auto_and_names_the_rest(native_bf16):
    native_bf16(False)
    assert devices.precision_name("auto", "cpu") == "float32"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the restore warns of emulation, not its record
        assert devices.precision_name("bfloat16", "cpu") == "bfloat16"
    with pytest.raises(ValueError, match="needs a GPU"):
        devices.precision_name("float16", "cpu")


def test_explicit_precisions(native_bf16):
    native_bf16(False)
    assert resolve_precision("float32", CUDA) == torch.float32
    with pytest.warns(RuntimeWarning, match="emulated"):
        assert resolve_precision("bfloat16", CPU) == torch.bfloat16  # offered, even if emulated
    native_bf16(True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("bfloat16", CPU) == torch.bfloat16
    assert resolve_precision("float16", CUDA) == torch.float16
    with pytest.raises(ValueError, match="float16.*needs a GPU"):
        resolve_precision("float16", CPU)
    with pytest.raises(ValueError, match="unknown precision 'half'"):
        resolve_precision("half", CPU)
    with pytest.raises(TypeError, match="precision must be a string"):
        resolve_precision(16, CPU)


@pytest.mark.parametrize(
    ("mkldnn", "flags", "expected"),
    [
        (False, {"amx_bf16", "avx512_bf16"}, False),
        (True, {"avx2", "fma"}, False),
        (True, {"avx512f", "avx512_bf16"}, True),
        (True, {"amx_tile", "amx_bf16"}, True),
        (True, None, True),  # no /proc/cpuinfo: trust oneDNN
    ],
)
def test_native_bfloat16_detection(monkeypatch, mkldnn, flags, expected):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: mkldnn)
    monkeypatch.setattr(devices, "_cpu_flags", lambda: flags)
    cpu_has_native_bfloat16.cache_clear()
    try:
        assert cpu_has_native_bfloat16() is expected
    finally:
        cpu_has_native_bfloat16.cache_clear()


def test_grad_scaler_prefers_torch_amp():
    scaler = grad_scaler(CPU)
    assert type(scaler) is torch.amp.GradScaler


def test_grad_scaler_falls_back_on_old_torch(monkeypatch):
    monkeypatch.delattr(torch.amp, "GradScaler")
    with pytest.warns((FutureWarning, UserWarning)):  # deprecated; no CUDA here
        scaler = grad_scaler(CUDA)
    assert isinstance(scaler, torch.cuda.amp.GradScaler)
    with pytest.raises(ValueError, match="torch >= 2.3"):
        grad_scaler(CPU)


def _small_net(ndim=2):
    torch.manual_seed(0)
    cfg = dn.DeconvNetConfig(ndim=ndim, depth=2, base_channels=4)
    return dn.DeconvNet(cfg).eval()


class _Limited(torch.nn.Module):
    """A network that runs out of memory on inputs above `limit` elements."""

    def __init__(self, net, limit):
        super().__init__()
        self.net, self.limit, self.calls = net, limit, []

    def forward(self, x):
        self.calls.append(tuple(x.shape))
        if x.numel() > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return self.net(x)

    def forward_center(self, x, halo):
        self.calls.append(tuple(x.shape))
        if x.numel() > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return self.net.forward_center(x, halo)


@pytest.mark.parametrize("ndim", [2, 3])
def test_forward_tiles_center_splits_until_it_fits(ndim):
    """With center=True the split pieces' centres are joined: the centre of one call."""
    net = _small_net(ndim)
    halo, grid = net.halo, net.config.grid
    side = 3 * grid + 2 * halo
    x = torch.randn((2, 1) + (side,) * ndim, generator=torch.Generator().manual_seed(1))
    inner = (slice(None), slice(None)) + (slice(halo, side - halo),) * ndim
    with torch.inference_mode():
        expected = net(x)[inner]
        limited = _Limited(net, limit=x[0].numel() * 0.9)
        with pytest.warns(RuntimeWarning, match="out of memory"):
            got = forward_tiles(limited, x, halo=halo, grid=grid, center=True)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-5)
    assert any(s[0] == 1 and min(s[2:]) < side for s in limited.calls)


@pytest.mark.parametrize("ndim", [2, 3])
def test_forward_tiles_splits_until_it_fits(ndim):
    net = _small_net(ndim)
    halo, grid = net.halo, net.config.grid
    side = 3 * grid + 2 * halo if ndim == 3 else 5 * grid + 2 * halo
    x = torch.randn((3, 1) + (side,) * ndim, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = net(x)
        limited = _Limited(net, limit=x[0].numel() * 0.9)  # not even one whole tile fits
        with pytest.warns(RuntimeWarning, match="out of memory.*smaller tiles"):
            got = forward_tiles(limited, x, halo=halo, grid=grid)
    inner = (slice(None), slice(None)) + (slice(halo, side - halo),) * ndim
    np.testing.assert_allclose(got[inner].numpy(), expected[inner].numpy(), atol=1e-5)
    assert got.shape == expected.shape
    fitted = [s for s in limited.calls if np.prod(s) <= limited.limit]
    assert len(fitted) >= 6 and all(s[0] == 1 and min(s[2:]) < side for s in fitted)


def test_forward_tiles_gives_up_below_one_grid_cell():
    net = _small_net()
    halo, grid = net.halo, net.config.grid
    x = torch.zeros(1, 1, grid + 2 * halo, grid + 2 * halo)
    with pytest.warns(RuntimeWarning), pytest.raises(torch.cuda.OutOfMemoryError, match="fit"):
        forward_tiles(_Limited(net, limit=1), x, halo=halo, grid=grid)


def test_forward_tiles_passes_other_errors():
    def broken(x):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        forward_tiles(broken, torch.zeros(1, 1, 8, 8), halo=0, grid=4)


def test_restore_falls_back_to_smaller_tiles(monkeypatch):
    net = _small_net()
    image = np.random.default_rng(0).random((64, 72), dtype=np.float32)
    expected = dn.restore(image, net, device="cpu", precision="float32")
    # restore runs tiles through forward_center (their centres only)
    forward = type(net).forward_center
    limit = (32 + 2 * net.halo) ** 2

    def limited(self, x, halo):
        if x.numel() > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return forward(self, x, halo)

    monkeypatch.setattr(type(net), "forward_center", limited)
    with pytest.warns(RuntimeWarning, match="smaller tiles"):
        got = dn.restore(image, net, device="cpu", precision="float32", tile=64)
    np.testing.assert_allclose(got, expected, atol=1e-5 * np.ptp(expected))


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_half_precision_restore_is_close_to_float32(device, precision):
    if precision == "float16" and device == "cpu":
        pytest.skip("float16 needs a GPU")
    rng = np.random.default_rng(0)
    from skimage import data

    clean = data.camera()[200:264, 200:264].astype(np.float32) / 255
    noisy = clean + rng.normal(0, 25 / 255, clean.shape).astype(np.float32)
    f32 = dn.restore(noisy, "denoise-2d", device=device, precision="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # emulated bfloat16 on this CPU
        half = dn.restore(noisy, "denoise-2d", device=device, precision=precision)
    assert half.dtype == np.float32 and half.shape == noisy.shape
    diff = np.abs(half - f32) / np.ptp(f32)
    assert diff.max() < 3e-2 and diff.mean() < 3e-3
    assert not np.array_equal(half, f32)  # it did run in reduced precision


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_real_cuda_out_of_memory_falls_back_to_smaller_tiles():
    from napari_deconvnet.core.tiling import plan_tiles

    net = dn.load_model("denoise-2d")
    image = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    ref = dn.restore(image, net, device="cuda", precision="float32", tile=256)
    plan = plan_tiles(image.shape, net, device=torch.device("cuda"))
    need = (
        net.activation_bytes_per_pixel(4)
        * plan["batch_size"]
        * np.prod([t + 2 * plan["halo"] for t in plan["tile"]])
    )
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(max(need / 8, 128 * 2**20) / total)
    try:
        with pytest.warns(RuntimeWarning, match="out of memory.*smaller tiles"):
            out = dn.restore(image, net, device="cuda", precision="float32")
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    np.testing.assert_allclose(out, ref, atol=1e-4 * np.ptp(ref))


def test_3d_first_layer_under_cpu_autocast_warns_nothing_and_casts():
    """The 3D first layer asks autocast's dtype without torch's deprecated calls."""
    from napari_deconvnet.core.model import _conv3d_as_2d, _cpu_autocast_dtype

    torch.manual_seed(0)
    h = torch.rand(1, 2, 7, 12, 12)
    weight, bias = torch.randn(4, 2, 3, 3, 3), torch.randn(4)
    assert _cpu_autocast_dtype() is None
    reference = torch.nn.functional.conv3d(h, weight, bias)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DeprecationWarning would fail here
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert _cpu_autocast_dtype() == torch.bfloat16
            got = _conv3d_as_2d(h, weight, bias)
        plain = _conv3d_as_2d(h, weight, bias)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(plain, reference, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.float(), reference, rtol=3e-2, atol=5e-2)


def test_float32_on_cuda_is_ieee_not_tf32():
    """A float32 restore on CUDA turns TF32 convolutions off for its duration only.

    The flags are plain settings, so the switch is checked here without a GPU:
    on an H200, TF32 made tiles differ from a whole image by 3e-4 of the range.
    """
    cuda = torch.device("cuda")
    conv = torch.backends.cudnn.conv
    before = conv.fp32_precision
    with devices.inference_autocast(cuda, torch.float32):
        assert conv.fp32_precision == "ieee"
    assert conv.fp32_precision == before
    with pytest.raises(RuntimeError), devices.inference_autocast(cuda, torch.float32):
        raise RuntimeError("a failed restore restores the flag too")
    assert conv.fp32_precision == before
    # half precision on CUDA is autocast; float32 on the CPU changes nothing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "CUDA is not available ... Disabling autocast"
        assert isinstance(devices.inference_autocast(cuda, torch.bfloat16), torch.autocast)
    with devices.inference_autocast(torch.device("cpu"), torch.float32):
        assert conv.fp32_precision == before
