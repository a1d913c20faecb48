"""The Train widget's loss plot: training and validation loss per epoch (matplotlib).

Before the first epoch the plot shows its empty state: the axes labelled
``epoch`` and ``loss`` over a fixed range (epochs 0 to 1, loss 1e-3 to 1)
with the words "no data yet", never the meaningless autoscaled range of
empty lines. matplotlib is imported when the plot is built (the widget's
``__init__``), not at module import.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["EMPTY_TEXT", "EMPTY_XLIM", "EMPTY_YLIM", "LossPlot"]

#: What the empty plot says.
EMPTY_TEXT = "no data yet: press Train"
#: The empty plot's epoch range and loss range (log scale).
EMPTY_XLIM = (0.0, 1.0)
EMPTY_YLIM = (1e-3, 1.0)


class LossPlot:
    """A matplotlib canvas with the train and validation loss curves.

    Parameters
    ----------
    theme : napari Theme or None
        Colours the plot like the viewer (dark or light); None keeps
        matplotlib's.

    Attributes
    ----------
    figure, axes, canvas
        The matplotlib figure, its axes and the Qt canvas to dock.
    train_line, val_line : matplotlib Line2D
    empty_label : matplotlib Text
        "no data yet", shown while there is nothing to plot.
    """

    def __init__(self, theme: Any = None) -> None:
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        self.text_color: str | None = None
        self.figure = Figure(figsize=(4, 2.6), tight_layout=True)
        self.axes = self.figure.add_subplot(111)
        (self.train_line,) = self.axes.plot([], [], "o-", ms=3, label="train")
        (self.val_line,) = self.axes.plot([], [], "s-", ms=3, label="validation")
        self.axes.set_xlabel("epoch")
        self.axes.set_ylabel("loss")
        self.axes.set_yscale("log")
        self.axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        self.axes.legend(loc="upper right", fontsize="small")
        self.axes.grid(True, alpha=0.3)
        self.empty_label = self.axes.text(
            0.5,
            0.5,
            EMPTY_TEXT,
            transform=self.axes.transAxes,
            ha="center",
            va="center",
            fontsize="small",
            alpha=0.7,
        )
        if theme is not None:
            self.style(theme)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(200)
        self.clear()

    def style(self, theme: Any) -> None:
        background, text = theme.background.as_hex(), theme.text.as_hex()
        self.text_color = text
        self.figure.set_facecolor(background)
        self.axes.set_facecolor(background)
        for spine in self.axes.spines.values():
            spine.set_color(text)
        self.axes.tick_params(colors=text, which="both")
        self.axes.xaxis.label.set_color(text)
        self.axes.yaxis.label.set_color(text)
        self.axes.title.set_color(text)
        self.empty_label.set_color(text)
        legend = self.axes.get_legend()
        legend.get_frame().set_facecolor(background)
        for label in legend.get_texts():
            label.set_color(text)

    @property
    def empty(self) -> bool:
        """Whether no loss is plotted (the empty state is shown)."""
        return len(self.train_line.get_xdata()) == 0 and len(self.val_line.get_xdata()) == 0

    def clear(self, title: str = "") -> None:
        """The empty state: no curves, fixed axes, "no data yet"."""
        for line in (self.train_line, self.val_line):
            line.set_data([], [])
        self.axes.set_yscale("log")
        self.axes.set_xlim(*EMPTY_XLIM)
        self.axes.set_ylim(*EMPTY_YLIM)
        self.axes.set_title(title, fontsize="small", color=self.text_color)
        self.empty_label.set_visible(True)
        self.canvas.draw_idle()

    def plot(self, history: list[dict[str, Any]]) -> None:
        """Draw a run's history (one entry per validation); empty losses keep the empty state."""
        train = [(h["epoch"], h["train_loss"]) for h in history if h.get("train_loss")]
        val = [(h["epoch"], h["val_loss"]) for h in history if h.get("val_loss")]
        last = history[-1] if history else {"epoch": 0}
        title = f"epoch {last['epoch']}"
        if last.get("val_psnr") is not None:
            title += f"  val PSNR {last['val_psnr']:.2f} dB"
            if history[0].get("input_val_psnr") is not None:
                title += f" (input {history[0]['input_val_psnr']:.2f})"
        if not (train or val):
            self.clear(title)
            return
        for line, points in ((self.train_line, train), (self.val_line, val)):
            line.set_data([p[0] for p in points], [p[1] for p in points])
        self.empty_label.set_visible(False)
        self.axes.set_title(title, fontsize="small", color=self.text_color)
        # a self-supervised run's SURE estimate of its validation loss can be negative:
        # on a log scale its curve was not drawn, session 70
        finite = [p[1] for p in train + val if np.isfinite(p[1])]
        positive = not finite or min(finite) > 0  # (a NaN first loss: as it was)
        self.axes.set_yscale("log" if positive else "linear")
        self.axes.set_autoscale_on(True)  # the empty state fixed the limits
        self.axes.relim()
        self.axes.autoscale_view()
        if max(p[0] for p in train + val) == min(p[0] for p in train + val):
            epoch = train[0][0] if train else val[0][0]
            self.axes.set_xlim(epoch - 0.5, epoch + 0.5)  # one point: a readable range
        self.canvas.draw_idle()
