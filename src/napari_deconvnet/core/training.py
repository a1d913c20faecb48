"""Training: supervised pairs, self-supervised blind-spot masking, synthetic pairs.

:func:`train_iter` checks and resolves the arguments
(:func:`.train_setup.build_trainer`) and runs a :class:`~.trainer.Trainer`,
whose loop yields a :class:`TrainEvent` after every step and every epoch and
returns a :class:`TrainResult`; :func:`train` drains it. Patches are read
lazily from the inputs (:mod:`.patches`), normalised with the contract of
:func:`napari_deconvnet.restore` (the 0.5/99.5 percentiles of the whole noisy
input map to 0 and 1, for input and target alike), and fed to AdamW with a
cosine or one-cycle learning-rate schedule peaking at :data:`LR_SCRATCH`
(3e-3) for a new 2D network, :data:`LR_SCRATCH_3D` (1e-3) for a new 3D one
and :data:`LR_FINE_TUNE` (1e-3) when fine-tuning, and gradient clipping.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Sequence
from typing import Any

import torch

from .generators import as_stop
from .losses import LOSSES
from .train_setup import (
    L2SP_FINE_TUNE,
    LR_FINE_TUNE,
    LR_SCRATCH,
    LR_SCRATCH_3D,
    MODES,
    OPTIONS,
    REHEARSAL_FINE_TUNE,
    build_trainer,
    check_options,
)
from .train_types import run_events
from .trainer import TrainConfig, TrainEvent, TrainResult

__all__ = [
    "L2SP_FINE_TUNE",
    "LOSSES",
    "LR_FINE_TUNE",
    "LR_SCRATCH",
    "LR_SCRATCH_3D",
    "MODES",
    "OPTIONS",
    "REHEARSAL_FINE_TUNE",
    "TrainConfig",
    "TrainEvent",
    "TrainResult",
    "train",
    "train_iter",
]


def train_iter(inputs: Any, targets: Any = None, **options: Any) -> Generator:
    """Generator form of :func:`train`: yields :class:`TrainEvent`, returns :class:`TrainResult`.

    Takes the arguments of :func:`train` except `callback` (:data:`OPTIONS`
    lists the keyword options). Arguments are checked at the first
    ``next()``. Closing the generator (or a napari worker's ``quit``)
    abandons the run; setting ``stop`` ends it after the current step and
    still returns the best model. GPU memory is released either way.
    """
    check_options(options, "train_iter")
    if "stop" in options:  # a callable, or a TypeError now rather than after the set-up
        options["stop"] = as_stop(options["stop"])
    try:
        trainer = build_trainer(inputs, targets, **options)
        return (yield from trainer.run())
    finally:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def train(
    inputs: Any,
    targets: Any = None,
    *,
    model: Any = None,
    noise: Any = None,
    psf: Any = None,
    epochs: int | None = None,
    max_seconds: float | None = None,
    patch_size: int | Sequence[int] | None = None,
    batch_size: int = 16,
    loss: str | Callable = "mse",
    validation: Any = 0.1,
    seed: int = 0,
    device: str | torch.device = "auto",
    callback: Callable[[TrainEvent], Any] | None = None,
    stop: threading.Event | None = None,
    **options: Any,
) -> TrainResult:
    """Train a deconvolution network on images: supervised, self-supervised or synthetic.

    Parameters
    ----------
    inputs : (..., M, N) or (..., P, M, N) ndarray or dask array, or a list of them
        Training images, any real dtype. The trailing 2 (3 for a 3D network)
        axes are spatial; leading axes (time, planes) are independent
        samples. Noisy images in supervised and self-supervised mode; clean
        images in synthetic mode. Patches are read lazily, so memory-mapped
        and dask arrays larger than memory work.
    targets : array or list of arrays, optional
        Clean (denoising) or unblurred (deconvolution) counterparts of
        `inputs`, of equal shapes: **supervised** training. Use it when you
        have registered high/low-quality acquisitions or a simulated ground
        truth; it gives the best models.
    model : str, path or DeconvNet, optional
        Fine-tune this model (a shipped name such as ``"default"``, a model
        file or a loaded network; it is copied, never modified). Fine-tuning
        is what most users want: pass ``model="default"`` for 2D denoising
        (``"denoise-3d"`` with a 3D network). It starts from what the shipped
        model knows, uses the fine-tuning learning rate (``lr`` 1e-3 instead
        of a new 2D network's 3e-3), pulls the weights back toward the start (L2-SP, see
        ``l2sp``) and rehearses synthetic pairs with the noise the shipped
        model knows (``rehearsal``), so that it gains on data like yours
        without forgetting the rest (measured in the README). None trains a
        new network, shaped by ``network=``: that is the
        default because ``train`` cannot tell which shipped model fits your
        task (denoising or deconvolution, 2D or 3D, a network size of your
        choosing) and because existing scripts rely on it. The
        PSF-conditioned ``deconv-2d`` and ``deconv-3d`` fine-tune too, given
        ``psf=`` (the PSF of supervised pairs, or the one synthetic pairs
        get): their classical channel is computed as restore computes it.
        ``salt-and-pepper`` (impulse-switched) cannot be trained here.
        A noise-conditioned model (``denoise-2d-nl``, whose second channel
        is the noise map, see :class:`~.kinds.NoiseConditioned`) fine-tunes
        like the others: every batch gets its map, estimated from its
        image as restore estimates it, and the result keeps the kind.
        A new network needs minutes to catch up with a shipped one; use it
        for data unlike anything shipped.
    noise : str or dict, optional
        **Synthetic pairs**: `inputs` are clean, and each batch is degraded on
        the fly by :func:`napari_deconvnet.synthesize`, e.g.
        ``dict(model="poisson-gaussian", peak=50, read_noise=2)``;
        parameters are in the input's intensity units. Use it when you know
        the noise (see ``estimate_noise``) and have clean-looking data.
    psf : ndarray, str, dict or a list of them, optional
        Synthetic pairs: blur the clean patches by this PSF before the noise
        (deconvolution training); with ``noise=None`` the pairs are blurred
        only. The trained model takes no PSF at inference. A name or dict
        is a :func:`make_psf` PSF in the network's dimensions. For a
        deconvolution model (``deconv-2d``, ``deconv-3d``) it is the PSF
        its classical input is computed with, pairs or synthetic. A list
        gives one PSF per channel of the ``C`` axis `axes` names
        (:mod:`~napari_deconvnet.core.channel_psfs`): each channel is
        blurred, and its classical input computed, with its own.
    epochs : int, optional
        Number of epochs of ``steps_per_epoch`` steps (default 10 when
        `max_seconds` is None too).
    max_seconds : float, optional
        Wall-clock budget of the whole call, its set-up (patches, the
        rehearsal pool) included; with `epochs` too, whichever comes first.
        When it is the only bound, the learning-rate schedule follows the
        clock.
    patch_size : int, tuple of int or None
        Patch side (or one size per spatial axis), a multiple of the
        network's ``2**depth`` grid, no larger than the images. None (the
        default): 64 x 64 in 2D, 32 x 64 x 64 in 3D, each axis no larger
        than the smallest input, and smaller (down to 1/8) until
        training patches fit beside the validation patches (a 96 x 96 image
        trains with 48 x 48 patches); the size used is in the result's
        ``config.patch_size``.
    batch_size : int
        Patches per step.
    loss : {"mse", "l1", "ssim", "mse+ssim"} or callable
        ``"ssim"`` is ``1 - SSIM``; ``"mse+ssim"`` is
        ``(1 - w) * mse + w * (1 - SSIM)`` with ``w = ssim_weight`` (0.5). A
        callable ``loss(prediction, target)`` returns a scalar tensor (in
        self-supervised mode it gets the masked pixels only).
    validation : float, data or None
        A fraction of the training area held out as validation patches (at
        most 64 patches, never overlapped by training patches); or explicit
        validation images (a ``(inputs, targets)`` tuple in supervised mode),
        scored on patches of `patch_size` that cover every pixel of them (a
        grid, and where it leaves a border, a last patch flush with the far
        side, overlapping its neighbour; beyond 64 patches, 64 of them, a
        seeded random choice, with a warning); or 0/None for no validation; not
        with `validation_regions`, which is the alternative on the training
        images (a share other than the default beside them is not applied,
        with a warning). The best model by validation loss is returned.
    seed : int
        Seeds patch sampling, augmentation, noise, masks and a new network's
        weights: the same seed, data and device give the same history on
        the CPU (when the run is bounded by epochs, not by time).
    device : {"auto", "cpu", "cuda", "cuda:N", "mps"}
        ``"auto"`` picks CUDA, then MPS, then the CPU. On CUDA training uses
        float16 mixed precision with loss scaling (``precision="float32"`` to
        turn it off).
    callback : callable, optional
        Called with a :class:`TrainEvent` after set-up, every step, every
        epoch and at the end. An exception raised in it ends the run.
    stop : threading.Event, optional
        When set, training ends after the current step; the best model so far
        (after a last validation) is returned.
    **options
        More settings: ``network`` (a dict of :class:`DeconvNetConfig`
        fields for a new network, e.g. ``{"ndim": 3, "base_channels": 8}``),
        ``mode`` (``"supervised"``, ``"self-supervised"`` or
        ``"synthetic"``; inferred by default), ``steps_per_epoch`` (default:
        the training area in patches over the batch size, within 10..100),
        ``lr`` (the peak: 3e-3 for a new 2D network, 1e-3 for a new 3D
        network, where 3e-3 diverges, and 1e-3 when fine-tuning),
        ``weight_decay`` (1e-4; off when L2-SP is on), ``l2sp`` (the
        strength of the pull toward the starting weights when fine-tuning:
        after every AdamW step each weight moves back by ``lr * l2sp`` of
        its distance from the start; 100 when fine-tuning, 0 for a new
        network), ``rehearsal`` (the share of each batch, on top of it
        and up to 4 batches' worth, drawn from synthetic phantom pairs
        with the Gaussian and Poisson-Gaussian noise the shipped denoisers
        were trained for, so that fine-tuning does not forget them; 1.0
        when fine-tuning, 0 for a new network and for the deconvolution
        models, whose knowledge is of PSFs, not noise: their record then
        says 0), ``ema`` (keep an exponential moving average of
        the weights with this decay, e.g. 0.999, validate it beside the raw
        weights and return whichever scores better; None, off, by default),
        ``blind_spot`` (self-supervised runs: how the network is kept from
        seeing the noise it must predict: ``"random"``, a masked pixel
        replaced by a random other neighbour as in Noise2Void, ``"median"``,
        by the median of its 5x5 (5x5x5) neighbourhood without itself as in
        N2V2 [2]_, or ``"neighbor2neighbor"``, no mask: each 2x2 cell of a
        patch gives one pixel to each of two sub-images, two neighbours, and
        the network learns to map one sub-image to the other, with the
        regulariser of Huang et al. [3]_; it sees every pixel, takes patches
        that are multiples of twice the network's grid in Y and X (in 3D it
        pairs pixels within a plane), and cannot train a noise-conditioned
        network; default ``"neighbor2neighbor"`` for a new network (when
        its patches fit, else ``"random"`` with a warning) and ``"random"``
        when fine-tuning, see the README's *Self-supervised* measurements;
        the N2V2 network options are ``network={"pool": "blur",
        "top_skip": False}``, see the README's measurements; with median
        replacement or ``top_skip=False`` a new network has no residual
        input unless ``network`` asks for one, since it would learn to pass
        the noisy input through),
        ``autosave`` (a ``.safetensors`` path: the best model so
        far is written there whenever validation improves, and the resume
        state beside it, as ``<name>.resume.safetensors``, after every
        epoch; both atomically, safetensors and JSON, no pickle), ``resume``
        (that path: continue the interrupted run; the step count, history,
        optimiser moments and schedule go on, and ``epochs``/``max_seconds``
        count the whole run; it goes on autosaving there unless ``autosave``
        names another path), ``axes`` (the inputs' axes, e.g. ``"YXC"``,
        ``"YXS"`` for RGB or ``"TYX"``: channels train one shared
        single-channel network, each channel normalised on its own, as
        :func:`restore` applies it with the same axes; T, and Z for a 2D
        network, are samples; ``(Y, X, 3|4)`` arrays are taken as RGB(A)
        when axes is None), ``schedule``
        (``"cosine"``, ``"one-cycle"`` or ``"constant"``), ``clip_norm``
        (1.0; None or 0: no clipping), ``patience`` (epochs without improvement before early
        stopping; None), ``ssim_weight``, ``regions`` and
        ``validation_regions`` (where training and validation patches may
        lie: per input None, a mask, or a list of polygon vertex arrays in
        pixel coordinates, as napari Labels and Shapes layers hold them; None
        is the whole input for ``regions`` and no validation on that input for
        ``validation_regions``; a validation region too small for a patch is
        not scored but still kept out of training, with a warning),
        ``augment`` (random flips and 90-degree rotations in the image plane;
        True), ``intensity_jitter`` (a random gain, log-uniform in
        ``[1 / (1 + j), 1 + j]``, and offset, within ``0.4 j`` of the
        normalised range, per patch, applied to its input and target alike,
        so that a network trained on one field of view is not thrown by
        another one's intensities; None, the default, is 0.25 for a new
        plain network trained on pairs or noisy images, and 0 when
        fine-tuning, whose start already knows many images, and for
        synthetic pairs, whose noise the gain would scale; plain denoisers
        only, see :func:`~.train_setup._intensity_jitter`), ``precision``
        (``"auto"``: float16 with loss scaling on CUDA, float32 elsewhere;
        ``"bfloat16"`` on CPUs with AMX: 2.4-2.7x the steps per second, but
        not always better per second, see
        :func:`~.train_setup.training_precision`), ``name`` and
        ``preview``, and ``validation_noise`` (self-supervised runs: how
        checkpoints are scored. None, the default, estimates the noise and
        scores by Stein's unbiased risk estimate, SURE or its
        Poisson-Gaussian form, see :mod:`~.sure`; a dict such as
        ``estimate_noise`` returns gives the noise instead; False keeps the
        masked Noise2Void loss. Spatially correlated noise, a noise that
        cannot be fitted, or a noise-conditioned network fall back to the
        masked loss; ``result.config.validation_score`` says which was
        used). Any other name raises a TypeError listing these.

    Returns
    -------
    TrainResult
        ``.model`` (the best network, with ``metadata["training"]``
        recording data shapes, mode, noise/PSF, loss, epochs, time and
        library versions, saved with it by :func:`save_model`),
        ``.history``, ``.config``, ``.stop_reason``, ``.improved`` and
        ``.message``. **Never worse than the start:** before the first step
        the starting model (the given one, or the new network) is scored on
        the validation split, a held-out part of your data that no training
        patch overlaps; the returned model is the best by validation loss,
        and when nothing beat the start it is the start itself, unchanged
        (``improved`` False, and ``message`` says so).

    Raises
    ------
    ValueError
        Mismatched input/target shapes, patches larger than the images or
        off the network's grid, batch sizes below 1, unknown losses, modes
        or schedules, empty regions, 3D patches with a 2D network, NaN or
        infinite data.
    TypeError
        Non-array inputs, bad argument types.

    Warns
    -----
    RuntimeWarning
        When the loss becomes NaN or infinite: training stops there, and the
        best model so far is returned (``stop_reason == "non-finite loss"``).

    Notes
    -----
    The three modes:

    - **Supervised** (`targets` given): the network learns input -> target.
    - **Self-supervised** (no targets, no noise): training on the noisy
      images alone. A new network learns by Neighbor2Neighbor [3]_: the
      network maps one of two neighbour sub-images of each patch to the
      other. Fine-tuning (and ``blind_spot="random"``) uses Noise2Void [1]_:
      in every patch about one pixel in 36 (64 in 3D) is replaced by a
      random neighbour and the loss compares the prediction there with the
      original value. Both need no clean data, but assume noise that is
      independent from pixel to pixel with zero mean: they cannot remove
      spatially correlated noise (stripes, noise blurred by the optics or by
      demosaicing), and they do not deblur.
    - **Synthetic** (`noise` and/or `psf` given): clean inputs are blurred
      and noised on the fly, a fresh draw every batch, and the network
      learns to undo it: denoising for a known noise model, deconvolution
      for a known PSF.

    Normalisation follows :func:`napari_deconvnet.restore`: each input's
    0.5 and 99.5 percentiles (of the degraded image in synthetic mode) map to
    0 and 1, and its target is mapped with the same numbers. Validation
    PSNR is in those units (data range 1), which equals the PSNR in the
    image's units with a data range of that percentile span.

    References
    ----------
    .. [1] A. Krull, T.-O. Buchholz and F. Jug, "Noise2Void - Learning
           Denoising From Single Noisy Images", CVPR 2019.
           :arXiv:`1811.10980`
    .. [2] E. Höck, T.-O. Buchholz, A. Brachmann, F. Jug and A. Freytag,
           "N2V2 - Fixing Noise2Void checkerboard artifacts with modified
           sampling strategies and a tweaked network architecture", ECCV
           Workshops 2022. :arXiv:`2211.08512`
    .. [3] T. Huang, S. Li, X. Jia, H. Lu and J. Liu, "Neighbor2Neighbor:
           Self-Supervised Denoising from Single Noisy Images", CVPR 2021.
           :arXiv:`2101.02824`

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> clean = np.tile(np.linspace(0, 1, 32, dtype=np.float32), (32, 1))
    >>> noisy = clean + rng.normal(0, 0.1, clean.shape).astype(np.float32)
    >>> result = train(noisy, clean, epochs=1, steps_per_epoch=2, patch_size=16,
    ...                batch_size=2, network={"base_channels": 4}, device="cpu")
    >>> result.model.metadata["training"]["mode"], len(result.history)
    ('supervised', 2)
    """
    check_options(options, "train")
    gen = train_iter(
        inputs,
        targets,
        model=model,
        noise=noise,
        psf=psf,
        epochs=epochs,
        max_seconds=max_seconds,
        patch_size=patch_size,
        batch_size=batch_size,
        loss=loss,
        validation=validation,
        seed=seed,
        device=device,
        stop=stop,
        **options,
    )
    return run_events(gen, callback)
