"""The computational core: numpy and torch only, never napari or Qt."""

from .adapt import adapt
from .bioimageio import export_bioimageio
from .classical import richardson_lucy, wiener
from .conditions import ConditionsWarning
from .denoisers import (
    denoise_bm3d,
    denoise_median,
    denoise_nlm,
    denoise_switching_median,
    denoise_tv,
    denoise_wavelet,
)
from .export import export
from .measurement import Measurement, measure, measure_iter
from .metrics import SSIMLoss, psnr, ssim
from .model import DeconvNet, DeconvNetConfig
from .noise import estimate_noise, synthesize
from .operations import run_method, run_method_iter, synthesize_iter
from .persistence import list_models, load_model, model_info, receptive_field, save_model
from .psf import make_psf
from .restoration import Cancelled, compute_normalization, restore, restore_iter
from .specs import Param, Spec, list_methods, list_noise_models, list_psfs
from .specs import register as register_spec
from .streaming import restore_to_zarr
from .training import TrainEvent, TrainResult, train, train_iter

__all__ = [
    "adapt",
    "Cancelled",
    "ConditionsWarning",
    "Param",
    "Spec",
    "TrainEvent",
    "TrainResult",
    "DeconvNet",
    "DeconvNetConfig",
    "SSIMLoss",
    "denoise_bm3d",
    "denoise_median",
    "denoise_switching_median",
    "denoise_nlm",
    "denoise_tv",
    "denoise_wavelet",
    "compute_normalization",
    "estimate_noise",
    "export",
    "export_bioimageio",
    "list_methods",
    "list_models",
    "list_noise_models",
    "list_psfs",
    "load_model",
    "make_psf",
    "measure",
    "measure_iter",
    "Measurement",
    "model_info",
    "psnr",
    "receptive_field",
    "register_spec",
    "restore",
    "restore_iter",
    "restore_to_zarr",
    "richardson_lucy",
    "run_method",
    "run_method_iter",
    "save_model",
    "ssim",
    "synthesize",
    "synthesize_iter",
    "train",
    "train_iter",
    "wiener",
]
