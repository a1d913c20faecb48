"""The computational core: numpy and torch only, never napari or Qt."""

from .model import DeconvNet, DeconvNetConfig, receptive_field
from .persistence import list_models, load_model, model_info, save_model
from .tiling import Cancelled, restore, restore_iter

__all__ = [
    "Cancelled",
    "DeconvNet",
    "DeconvNetConfig",
    "list_models",
    "load_model",
    "model_info",
    "receptive_field",
    "restore",
    "restore_iter",
    "save_model",
]
