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
    list_models,
    load_model,
    model_info,
    receptive_field,
    restore,
    restore_iter,
    save_model,
)

__all__ = [
    "Cancelled",
    "DeconvNet",
    "DeconvNetConfig",
    "__version__",
    "list_models",
    "load_model",
    "model_info",
    "receptive_field",
    "restore",
    "restore_iter",
    "save_model",
]
