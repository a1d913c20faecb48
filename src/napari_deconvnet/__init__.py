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
    estimate_noise,
    list_models,
    load_model,
    make_psf,
    model_info,
    psnr,
    receptive_field,
    restore,
    restore_iter,
    save_model,
    ssim,
    synthesize,
    train,
    train_iter,
)

__all__ = [
    "Cancelled",
    "DeconvNet",
    "DeconvNetConfig",
    "SSIMLoss",
    "TrainEvent",
    "TrainResult",
    "__version__",
    "estimate_noise",
    "list_models",
    "load_model",
    "make_psf",
    "model_info",
    "psnr",
    "receptive_field",
    "restore",
    "restore_iter",
    "save_model",
    "ssim",
    "synthesize",
    "train",
    "train_iter",
]
