"""Training on a GPU computes a deconvolution model's classical channels on the GPU.

On the first H200 lease the 3D samples' Wiener and Richardson-Lucy channels
ran on one CPU core each (90 % of a deconv-3d batch's synthesis), which held
the card to a few steps a second. The device now reaches the kind's
``channel_stack`` from the shipped-model sampler and from ``dn.train``'s
patches; on the CPU nothing changes, bit for bit.
"""

import sys
from pathlib import Path

import numpy as np
import torch

import napari_deconvnet as dn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))


def _spy_kind(monkeypatch, module, calls):
    real = module.kind_of

    def kind_of(net):
        kind = real(net)
        original = kind.channel_stack

        def channel_stack(images, kernel, **kwargs):
            calls.append(kwargs.get("device"))
            return original(images, kernel, **{**kwargs, "device": "cpu"})

        kind.channel_stack = channel_stack
        return kind

    monkeypatch.setattr(module, "kind_of", kind_of)


def test_the_shipped_model_sampler_sends_its_device_to_the_channels(monkeypatch):
    import _shipped_data as sd

    net = dn.load_model("deconv-2d")
    rng = np.random.default_rng(0)
    noisy = rng.random((40, 40)).astype(np.float32)
    psf = dn.make_psf("gaussian", ndim=2, sigma=1.5)
    ref = sd.network_input(noisy, psf, net)
    # the CPU as a device: the same input, bit for bit
    same = sd.network_input(noisy, psf, net, torch.device("cpu"))
    np.testing.assert_array_equal(same[0], ref[0])
    calls = []
    _spy_kind(monkeypatch, sd, calls)
    gpu_like = torch.device("meta")  # stands for a GPU: only passed through here
    out = sd.network_input(noisy, psf, net, gpu_like)
    sd.network_input(noisy, psf, net)
    assert calls == [gpu_like, None]
    np.testing.assert_array_equal(out[0], ref[0])


def test_dn_train_patches_take_the_trainers_device(monkeypatch):
    from napari_deconvnet.core import trainset

    net = dn.load_model("deconv-2d")
    psf = dn.make_psf("gaussian", ndim=2, sigma=1.5)
    image = np.random.default_rng(1).random((48, 48)).astype(np.float32)
    plain = trainset.PSFChannel(net, psf)
    on_cpu = trainset.PSFChannel(net, psf, torch.device("cpu"))
    stats = plain.statistics(image)
    np.testing.assert_array_equal(on_cpu.whole(image, stats), plain.whole(image, stats))
    calls = []
    _spy_kind(monkeypatch, trainset, calls)
    gpu_like = torch.device("meta")
    channel = trainset.PSFChannel(net, psf, gpu_like)
    channel.whole(image, stats)
    inside = (slice(0, None), slice(0, None))
    channel(image, stats, inside)
    assert calls == [gpu_like, gpu_like]
