"""Odd inputs through every fast public function: a result or a clear refusal, never a crash.

A sweep of this kind found six bare errors (AttributeError, numpy's own
messages) in session 55: a 0-d image with Poisson noise, a torch tensor in
``compute_normalization``, ``progress``/``stop`` of the wrong kind, a model
name in ``receptive_field``, a seed of the wrong kind. Each call here must
either return (finite values, float32 arrays the input's shape where the
function keeps shapes) or raise ``ValueError``/``TypeError`` with a message
that says something (25 characters or more).
"""

import warnings

import numpy as np
import pytest
import torch
import zarr

import napari_deconvnet as dn

RNG = np.random.default_rng(0)
BASE = RNG.random((40, 48)).astype(np.float32)
PSF = dn.make_psf("gaussian", (7, 7), sigma=1.2)

INPUTS = {
    "float64": BASE.astype(np.float64),
    "float16": BASE.astype(np.float16),
    "uint8": (BASE * 255).astype(np.uint8),
    "uint16": (BASE * 4000).astype(np.uint16),
    "int16-negative": ((BASE - 0.5) * 2000).astype(np.int16),
    "bool": BASE > 0.5,
    "big-endian": BASE.astype(">f4"),
    "non-contiguous": np.asfortranarray(BASE)[:, ::2],
    "constant": np.full((40, 48), 3.0, np.float32),
    "one-row": BASE[:1],
    "1-D": BASE[0],
    "0-D": np.float32(0.5),
    "empty": np.zeros((0, 48), np.float32),
    "nan": np.where(BASE > 0.9, np.nan, BASE).astype(np.float32),
    "inf": np.where(BASE > 0.99, np.inf, BASE).astype(np.float32),
    "complex": BASE.astype(np.complex64),
    "object": BASE.astype(object),
    "list": BASE[:8, :8].tolist(),
    "torch": torch.from_numpy(BASE.copy()),
    "masked": np.ma.masked_greater(BASE, 2.0),  # nothing masked: no warning
    # beyond float32, in which images are restored (session 58: NaN, an OverflowError)
    "float64-huge": BASE.astype(np.float64) * 1e300,
    "float64-tiny": BASE.astype(np.float64) * 1e-300,
    "uint64-large": (BASE * 2.0**63).astype(np.uint64),
    "none": None,
    "string": "image.tif",
    # session 59: a zarr array (measure, compute_normalization: AttributeError) and a
    # read-only array (a memory map, a napari layer's data: SSIM and PSNR made torch warn)
    "zarr": zarr.array(BASE, chunks=(16, 16)),
    "read-only": np.lib.stride_tricks.as_strided(BASE, writeable=False),
}

#: name: (call, keeps the input's shape)
CALLS = {
    "restore": (lambda x: dn.restore(x, "denoise-2d", device="cpu"), True),
    "estimate_noise": (lambda x: dn.estimate_noise(x), False),
    "compute_normalization": (lambda x: dn.compute_normalization(x, "denoise-2d"), False),
    "synthesize-gaussian": (lambda x: dn.synthesize(x, "gaussian", sigma=0.1, seed=0), True),
    "synthesize-poisson": (lambda x: dn.synthesize(x, "poisson", peak=20, seed=0), True),
    "synthesize-pg": (lambda x: dn.synthesize(x, "poisson-gaussian", peak=20, seed=0), True),
    "synthesize-sp": (lambda x: dn.synthesize(x, "salt-and-pepper", amount=0.1, seed=0), True),
    "synthesize-speckle": (lambda x: dn.synthesize(x, "speckle", sigma=0.1, seed=0), True),
    "psnr": (lambda x: dn.psnr(x, x), False),
    "ssim": (lambda x: dn.ssim(x, x), False),
    "measure": (lambda x: dn.measure(x, x), False),
    "richardson_lucy": (lambda x: dn.richardson_lucy(x, PSF, iterations=3), True),
    "wiener": (lambda x: dn.wiener(x, PSF), True),
    "median": (lambda x: dn.denoise_median(x), True),
    "switching_median": (lambda x: dn.denoise_switching_median(x), True),
    "tv": (lambda x: dn.denoise_tv(x), True),
    "run_method-median": (lambda x: dn.run_method(x, "median"), True),
    "run_method-rl": (lambda x: dn.run_method(x, "richardson-lucy", psf=PSF, iterations=2), True),
}


@pytest.mark.parametrize("call", list(CALLS), ids=list(CALLS))
def test_odd_inputs_give_a_result_or_a_clear_refusal(call):
    fn, keeps_shape = CALLS[call]
    crashes = []
    for name, x in INPUTS.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = fn(x)
        except (ValueError, TypeError) as err:
            if len(str(err)) < 25:
                crashes.append(f"{name}: terse {type(err).__name__}: {err}")
            continue
        except Exception as err:  # noqa: BLE001 - what the test is for
            crashes.append(f"{name}: {type(err).__name__}: {err}")
            continue
        if keeps_shape and name not in ("nan", "inf"):
            out = out.detach().cpu().numpy() if isinstance(out, torch.Tensor) else out
            if np.shape(out) != np.shape(np.asarray(x)):
                crashes.append(f"{name}: shape {np.shape(out)} for {np.shape(np.asarray(x))}")
            elif not np.isfinite(np.asarray(out, np.float64)).all():
                crashes.append(f"{name}: non-finite output")
    assert not crashes, "\n".join(crashes)


def test_zarr_and_read_only_inputs_give_what_numpy_gives():
    """Session 59: `measure` and `compute_normalization` raised AttributeError on a zarr
    array ('Array' object has no attribute 'min' / 'transpose'); SSIM, PSNR and measure
    made torch warn "The given NumPy array is not writable" on a memory map."""
    store = zarr.array(BASE, chunks=(16, 16))
    locked = np.lib.stride_tricks.as_strided(BASE, writeable=False)
    reference = BASE[::-1].copy()
    plain = dn.measure(BASE, reference)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for x in (store, locked):
            got = dn.measure(x, reference)
            assert (got.ssim, got.psnr) == (plain.ssim, plain.psnr)
            assert dn.compute_normalization(x, "denoise-2d") == dn.compute_normalization(
                BASE, "denoise-2d"
            )
        assert dn.ssim(locked, reference) == dn.ssim(BASE, reference)
        assert dn.psnr(reference, locked) == dn.psnr(reference, BASE)
    # torch warns once per process, so the warning alone could pass unseen: the tensor
    # the metrics use is a copy of read-only data, never a view of it
    from napari_deconvnet.core.metrics import _as_tensor

    assert not np.shares_memory(_as_tensor(locked, "x").numpy(), locked)
    assert np.shares_memory(_as_tensor(BASE, "x").numpy(), BASE)  # writable: no copy


def test_training_on_zarr_arrays_equals_training_on_numpy():
    """Session 59: self-supervised training on a zarr array raised "'Array' object has no
    attribute 'reshape'" (its noise estimate); supervised training read it fine. A zarr
    array is now read through dask, and both modes train exactly as on the numpy data."""
    rng = np.random.default_rng(7)
    clean = rng.random((128, 128)).astype(np.float32)
    noisy = (clean + 0.1 * rng.standard_normal(clean.shape)).astype(np.float32)
    run = dict(epochs=1, patch_size=32, batch_size=2, steps_per_epoch=2, seed=0)
    run |= {"device": "cpu", "network": {"base_channels": 8}}
    for target in (clean, None):
        plain = dn.train(noisy, target, **run).model.state_dict()
        zarr_target = None if target is None else zarr.array(target, chunks=(64, 64))
        stored = dn.train(zarr.array(noisy, chunks=(64, 64)), zarr_target, **run).model
        assert all(torch.equal(stored.state_dict()[k], v) for k, v in plain.items())


def test_adapt_says_it_takes_one_image():
    with pytest.raises(TypeError, match="adapt takes one image.*got a list of 2"):
        dn.adapt("denoise-2d", [BASE, BASE], seconds=1)
