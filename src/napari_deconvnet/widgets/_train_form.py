"""The Train widget's task settings: synthetic pairs rendered from specs, and *Start from*.

The noise models are those of :func:`napari_deconvnet.list_noise_models`,
each with the fields of its parameters (:class:`~._forms.SpecForms`); the PSF
is the dock widgets' one picker (:class:`~._psf.PsfPicker`). A noise model or
a PSF kind registered in core appears here without an edit.
:func:`suggested_start` is the *Start from* model that fits the task.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from magicgui.widgets import ComboBox, Container

from napari_deconvnet.core.specs import list_noise_models

from ._forms import SpecForms
from ._psf import PsfPicker

__all__ = [
    "NEW_NETWORK",
    "NO_NOISE",
    "SELF_SUPERVISED",
    "SYNTHETIC",
    "SyntheticPairsForm",
    "suggested_start",
]

#: The noise choice for blur-only pairs (a PSF is then needed).
NO_NOISE = "none"
#: The *Target* choices that are not layers, and the *Start from* choice of a new network.
SELF_SUPERVISED = "none: self-supervised"

#: *Self-supervision* menu: label -> ``dn.train``'s ``blind_spot`` (None: its default,
#: Neighbor2Neighbor for a new network, Noise2Void's blind spot when fine-tuning).
SELF_SUPERVISION = {
    "automatic": None,
    "Neighbor2Neighbor": "neighbor2neighbor",
    "Noise2Void (random neighbour)": "random",
    "N2V2 (median of neighbours)": "median",
}
SYNTHETIC = "synthetic: noise model + PSF"
NEW_NETWORK = "new network"
#: *Keep what it knew* when fine-tuning: each choice's key of
#: :data:`~napari_deconvnet.core.train_setup.KEEP` (``dn.train``'s options).
KEEP_CHOICES = {
    "yes (default)": "yes",
    "weakly (L2-SP 10)": "weakly",
    "no: my data only": "no",
}


def suggested_start(
    target: Any,
    net_ndim: int,
    synthetic_psf: bool,
    models: list[str],
    blurred_pairs: bool = False,
    synthetic_noise: str | None = None,
    pairs_psf: bool = False,
) -> tuple[str, str]:
    """The *Start from* choice that fits the task, and why, in plain words.

    A shipped denoiser fits denoising: supervised pairs, self-supervised
    training and synthetic pairs without a PSF, of its dimensionality
    (``denoise-2d`` or ``denoise-3d``). Fine-tuning it starts from what it
    knows and gains in seconds where a new network needs minutes. Synthetic
    deconvolution pairs fine-tune the shipped deconvolution model
    (``deconv-2d`` or ``deconv-3d``), whose classical input channel is
    computed with the chosen PSF; a new network when it is not installed.
    So do a target layer's pairs that look blurred (`blurred_pairs`, see
    :func:`~napari_deconvnet.core.noise_estimation.pairs_look_blurred`): the
    user then chooses the PSF they are blurred with (unless `pairs_psf`: one is
    chosen already, e.g. preselected from a PSF layer). Synthetic
    salt-and-pepper pairs (`synthetic_noise`) without a PSF fine-tune the
    shipped ``salt-and-pepper`` model in 2D.
    """
    deconv = f"deconv-{net_ndim}d"
    impulse = "salt-and-pepper"
    if target == SYNTHETIC and synthetic_noise == impulse and not synthetic_psf:
        if net_ndim == 2 and impulse in models:
            return impulse, f"fine-tunes {impulse}, the shipped impulse-noise model"
    if target == SYNTHETIC and synthetic_psf:
        if deconv in models:
            return deconv, (
                f"fine-tunes {deconv}, the shipped {net_ndim}D deconvolution model, with "
                "the chosen PSF"
            )
        return NEW_NETWORK, f"a new network: no shipped {net_ndim}D deconvolution model"
    if blurred_pairs and target not in (SYNTHETIC, SELF_SUPERVISED) and deconv in models:
        then = (
            "with the chosen Pairs' PSF"
            if pairs_psf
            else "choose the PSF they are blurred with (Pairs' PSF)"
        )
        return deconv, (
            f"the pairs look blurred: fine-tunes {deconv}, the shipped {net_ndim}D "
            f"deconvolution model; {then}"
        )
    shipped = f"denoise-{net_ndim}d"
    if shipped not in models:
        return NEW_NETWORK, f"a new network: no shipped {net_ndim}D denoiser is installed"
    return shipped, f"fine-tunes {shipped}, the shipped {net_ndim}D denoiser (faster than new)"


class SyntheticPairsForm(Container):
    """How clean input layers are degraded into training pairs.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    exclude : callable, optional
        Returns the layer never offered as a PSF (the training input).

    Attributes
    ----------
    noise : ComboBox
        ``"none"`` or a registered noise model (``"gaussian"`` first chosen).
    noise_params : SpecForms
        The chosen model's parameters, each at its spec's default.
    psf : PsfPicker
        ``"none"`` (the default), a PSF kind with its parameters, or a layer.
    """

    def __init__(self, viewer: Any, *, exclude: Callable[[], Any] | None = None) -> None:
        super().__init__(labels=True)
        self.margins = (0, 0, 0, 0)
        self.noise = ComboBox(label="Noise model", choices=self._noise_choices)
        self.noise.value = "gaussian" if "gaussian" in self.models() else NO_NOISE
        self.noise_params = SpecForms()
        self.psf = PsfPicker(viewer, exclude=exclude, optional=True)
        self.extend([self.noise, self.noise_params, self.psf])
        self.noise.changed.connect(self.refresh)
        self.refresh()

    @staticmethod
    def models() -> dict[str, Any]:
        """The registered noise models, by name."""
        return list_noise_models()

    def _noise_choices(self, _widget: Any = None) -> list[str]:
        return [NO_NOISE, *self.models()]

    def refresh(self, *_: Any) -> None:
        """Show the chosen noise model's fields and the PSF picker's."""
        models = self.models()
        self.noise.tooltip = "\n".join(
            [f"{NO_NOISE}: blur only (choose a PSF)"]
            + [f"{n}: {s.description}" for n, s in models.items()]
        )
        self.noise_params.show(models.get(self.noise.value))
        self.psf.refresh()

    def options(self, net_ndim: int, spatial: tuple[int, ...]) -> dict[str, Any]:
        """``noise`` and ``psf_description`` for the training job (GUI thread).

        Raises
        ------
        ValueError
            A parameter out of range, or neither a noise model nor a PSF.
        """
        noise = None
        if self.noise.value != NO_NOISE:
            params = self.noise_params.values()
            # empty optional fields mean "automatic": the function's default
            noise = {"model": self.noise.value}
            noise.update({k: v for k, v in params.items() if v is not None})
        described = self.psf.spec("synthetic training")
        if noise is None and described is None:
            raise ValueError(
                "synthetic training needs a noise model or a PSF (or both); choose one"
            )
        out: dict[str, Any] = {"noise": noise}
        if described is not None:
            out["psf_description"] = {"psf": described, "ndim": net_ndim, "spatial": spatial}
        return out
