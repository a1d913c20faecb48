"""napari-deconvnet: image restoration with encoder-decoder deconvolution networks.

>>> import napari_deconvnet as dn
>>> sorted(dn.list_models())[:1]
['default']
"""

from ._version import __version__
from .core import (
    Cancelled,
    DeconvNet,
    DeconvNetConfig,
    SSIMLoss,
    TrainEvent,
    TrainResult,
    denoise_bm3d,
    denoise_median,
    denoise_nlm,
    denoise_tv,
    denoise_wavelet,
    estimate_noise,
    list_models,
    load_model,
    make_psf,
    model_info,
    psnr,
    receptive_field,
    restore,
    restore_iter,
    richardson_lucy,
    save_model,
    ssim,
    synthesize,
    train,
    train_iter,
    wiener,
)

__all__ = [
    "Cancelled",
    "DeconvNet",
    "DeconvNetConfig",
    "SSIMLoss",
    "TrainEvent",
    "TrainResult",
    "__version__",
    "denoise_bm3d",
    "denoise_median",
    "denoise_nlm",
    "denoise_tv",
    "denoise_wavelet",
    "estimate_noise",
    "list_models",
    "load_model",
    "make_psf",
    "model_info",
    "psnr",
    "receptive_field",
    "restore",
    "restore_iter",
    "richardson_lucy",
    "save_model",
    "ssim",
    "synthesize",
    "train",
    "train_iter",
    "wiener",
]
