"""The Train widget's *Adapt to this image (no clean data)* mode: its fields and its job.

Adapting fine-tunes a shipped single-channel model on synthetic phantom
pairs degraded by the user's PSF and by the noise estimated in the user's
layer (:func:`napari_deconvnet.core.adapt.adapt_iter`); the noisy layer is
never a training target, so no clean data is needed. The form asks for what that
needs beyond the Train widget's shared fields (input layer, network
dimensions, patch and batch size, device, *Start from*): the PSF, from the
dock widgets' one picker (optional: without it the model is adapted to the
noise only), where the training structures come from (the package's
phantoms, this image as the starting model restores it, or both), and the
time budget.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from magicgui.widgets import ComboBox, Container, SpinBox

from ._psf import PsfPicker

__all__ = [
    "ADAPT",
    "SCENE_CHOICES",
    "TRAIN_LAYERS",
    "AdaptForm",
    "adapt_start",
    "check_adapt_model",
]

#: The Train widget's modes.
TRAIN_LAYERS = "Train on layers"
ADAPT = "Adapt to this image (no clean data)"
#: *Learn from*: label and :data:`napari_deconvnet.core.adapt.SCENES` key.
SCENE_CHOICES = (
    ("the package's phantoms", "phantoms"),
    ("this image, as restored", "image"),
    ("both", "both"),
)


def adapt_start(net_ndim: int, psf: bool, models: list[str]) -> tuple[str, str]:
    """The *Start from* model that adaptation fits, and why, in plain words.

    With a PSF, the shipped deconvolution model of the network's dimensions
    (``deconv-2d``/``deconv-3d``: it adapts with its classical channel and
    started better than the denoiser on every deconvolution task measured,
    README *Adapt*); without one, or when it is not installed, the shipped
    denoiser (which with a PSF learns the deconvolution from the synthetic
    pairs). Returns ``(None, why)`` when neither is installed.
    """
    deconv, shipped = f"deconv-{net_ndim}d", f"denoise-{net_ndim}d"
    if psf and deconv in models:
        return deconv, f"adapts {deconv} to this PSF and this image's noise"
    if shipped not in models:
        return None, f"no shipped {net_ndim}D denoiser is installed; choose a model to adapt"
    if psf:
        return shipped, f"adapts {shipped}: with the PSF it learns the deconvolution"
    return shipped, f"adapts {shipped} to this image's noise"


def check_adapt_model(name: str, path: str, net_ndim: int, psf: bool | None = None) -> None:
    """Refuse (ValueError) a *Start from* model that adaptation cannot fine-tune.

    :func:`napari_deconvnet.core.adapt.check_adaptable` on the model file's
    configuration and metadata (read without building the network), worded
    for the widget's fields.
    """
    from napari_deconvnet.core.adapt import check_adaptable
    from napari_deconvnet.core.persistence import model_info

    info = model_info(path)
    check_adaptable(name, info["config"], info.get("metadata") or {}, net_ndim, psf, gui=True)


class AdaptForm(Container):
    """What *Adapt to this image* needs besides the shared fields: the PSF and the time.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    exclude : callable, optional
        Returns the layer never offered as a PSF (the input).

    Attributes
    ----------
    psf : PsfPicker
        ``"none"`` (adapt to the noise only, the default), a PSF kind with
        its parameters, or a PSF layer.
    scenes : ComboBox
        Where the synthetic pairs' structures come from (``scenes=`` of
        :func:`napari_deconvnet.adapt`).
    seconds : SpinBox
        The adaptation's wall-clock budget (120 s by default).
    """

    def __init__(self, viewer: Any, *, exclude: Callable[[], Any] | None = None) -> None:
        super().__init__(labels=True)
        self.margins = (0, 0, 0, 0)
        self.psf = PsfPicker(viewer, exclude=exclude, optional=True)
        self.psf.tooltip = "The microscope's PSF: the adapted model deconvolves it (optional)"
        self.scenes = ComboBox(label="Learn from", choices=SCENE_CHOICES, value="both")
        self.scenes.tooltip = (
            "The structures the synthetic pairs show: the package's phantoms (beads, filaments, "
            "nuclei, membranes, textures), this image as the starting model restores it, or both"
        )
        self.seconds = SpinBox(label="Adapt for s", value=120, min=1, max=10**6)
        self.seconds.tooltip = "Time budget of the adaptation (120 s on a laptop CPU is typical)"
        self.extend([self.psf, self.scenes, self.seconds])

    def refresh(self, *_: Any) -> None:
        """Show the PSF picker's fields for its current choice."""
        self.psf.refresh()

    def options(self, net_ndim: int, spatial: tuple[int, ...]) -> dict[str, Any]:
        """``seconds`` and ``psf_description`` for the adapt job (GUI thread).

        Raises
        ------
        ValueError
            A PSF parameter out of range, or a PSF whose dimensionality is not
            the network's. A 3D network without a PSF adapts a 3D denoiser.
        """
        from ._psf import layer_psf_shape, psf_ndim

        described = self.psf.spec("adaptation")
        if (
            described is not None
            and psf_ndim(described) not in (None, net_ndim)
            # a (1, Y, X) layer: a plane's, or a volume's without blur along Z
            and not ("layer" in described and len(layer_psf_shape(described)) == net_ndim)
        ):
            raise ValueError(
                f"the PSF is {psf_ndim(described)}D but the network is {net_ndim}D; "
                "choose a PSF and a network of the same dimensions"
            )
        out: dict[str, Any] = {"seconds": float(self.seconds.value), "scenes": self.scenes.value}
        if described is not None:
            out["psf_description"] = {"psf": described, "ndim": net_ndim, "spatial": spatial}
        return out
