"""Every figure the course draws: pictures and grids of pictures, animations, feature maps, training
curves, confusion charts.

Functions return the Matplotlib figure (built without pyplot, so it shows exactly once, when a
cell ends with it) so that a lesson can save or restyle it; :func:`show` draws one picture at
about its own size, like the tutorial's ``show``.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from course_lib import images, validate

if TYPE_CHECKING:  # for the hints only: TensorFlow and Matplotlib load when a figure is drawn
    import tensorflow as tf
    from matplotlib.figure import Figure


# --- Pictures: one, or a grid (MATLAB's imtile) ---


#: Matplotlib backends that draw to files only: :func:`show` closes its figure instead of showing it.
_NON_INTERACTIVE_BACKENDS = {"agg", "pdf", "ps", "svg", "pgf", "cairo", "template"}


def show(image: Any, title: str | None = None) -> None:
    """Show one image at about its own size, with an optional title and no axes.

    Like the tutorial's ``show``. Anything :func:`course_lib.images.load` accepts works, so a float
    image in the model range is refused with a hint to call ``images.from_model_range`` first.

    Args:
        image: the picture (array, path, PIL image, ...).
        title: a few words above it.

    Example:
        >>> plots.show(photo, title="original")
    """
    import matplotlib
    import matplotlib.pyplot as plt

    pixels = images.load(image)
    height, width = pixels.shape[:2]
    dpi = 100
    # About one screen pixel per image pixel, between 3 and 10 inches wide, so titles stay readable.
    fig_width = min(max(width / dpi, 3.0), 10.0)
    fig_height = fig_width * height / width + (0.4 if title else 0.0)
    fig, axes = plt.subplots(figsize=(fig_width, fig_height), dpi=dpi)
    axes.imshow(pixels)
    axes.set_axis_off()
    if title:
        axes.set_title(title, fontsize=12)
    fig.tight_layout(pad=0.2)
    if matplotlib.get_backend().lower() in _NON_INTERACTIVE_BACKENDS:
        plt.close(fig)  # nowhere to show it (tests, CI); do not leak the figure
    else:
        plt.show()


def show_returned_figures_inline() -> None:
    """In Jupyter, draw a Matplotlib figure that a cell returns (its last expression) as a picture.

    The course's figure functions build figures without pyplot, so a figure shows exactly once:
    when a cell ends with it. IPython only knows how to draw such a figure once its inline
    support has been configured (``%matplotlib inline`` does it); this does the same, once.
    Outside Jupyter it does nothing.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    from IPython.core.pylabtools import print_figure
    from matplotlib.figure import Figure

    png = shell.display_formatter.formatters["image/png"]
    if Figure not in png.type_printers:
        png.for_type(Figure, lambda figure: print_figure(figure, "png", bbox_inches="tight"))


def show_grid(
    pictures_in: Sequence[Any] | np.ndarray,
    titles: Sequence[str] | None = None,
    *,
    columns: int | None = None,
) -> Figure:
    """Tile several images in one figure, one panel each: MATLAB's ``imtile`` (plus titles).

    Images may have different sizes; each keeps its aspect ratio in its panel.

    Args:
        pictures_in: a list of anything :func:`course_lib.images.load` accepts, or an array batch (N, H, W, C).
        titles: one title per image (shown above it), or ``None``.
        columns: panels per row; default: a near-square grid, as ``imtile`` chooses.

    Returns:
        The Matplotlib figure. Jupyter shows it when it is the cell's last expression (once:
        it is not registered with pyplot); in a script, save it with ``fig.savefig(path)``.

    Example:
        >>> plots.show_grid([photo, dream], ["original", "dream"])
    """
    from matplotlib.figure import Figure

    show_returned_figures_inline()
    pictures = [images.load(image) for image in _as_list(pictures_in)]
    count = len(pictures)
    if count == 0:
        raise ValueError("show_grid needs at least one image; got an empty list.")
    if titles is not None:
        titles = list(titles) if not isinstance(titles, str) else [titles]
        if len(titles) != count:
            raise ValueError(f"show_grid got {count} images but {len(titles)} titles; give one title per image, or none.")
    if columns is None:
        columns = math.ceil(math.sqrt(count))
    columns = min(validate.whole_number("columns", columns, low=1, example=4), count)
    rows = math.ceil(count / columns)
    panel = 3.0  # inches per panel: big enough to see texture, small enough for 4 across a screen
    figure = Figure(figsize=(panel * columns, (panel + (0.35 if titles else 0.0)) * rows), dpi=100)
    for index, picture in enumerate(pictures):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.imshow(picture)
        axes.set_axis_off()
        if titles is not None:
            axes.set_title(str(titles[index]), fontsize=11)
    figure.tight_layout(pad=0.3)
    return figure


def _as_list(pictures: Any) -> list:
    import PIL.Image

    if isinstance(pictures, np.ndarray) and pictures.ndim == 4:
        return list(pictures)
    if isinstance(pictures, (str, os.PathLike, bytes, np.ndarray, PIL.Image.Image)):
        raise ValueError("show_grid takes a list of images; for one image use plots.show(image).")
    return list(pictures)



# --- Feature-map grids (lesson 02) ---


def show_feature_maps(
    activations: np.ndarray | tf.Tensor,
    *,
    channels: int | list[int] = 16,
    columns: int = 8,
    title: str | None = None,
    cmap: str = "viridis",
) -> Figure:
    """Show the feature maps of one layer as a grid of small heat maps, one per channel.

    A layer's output is a stack of 2-D maps, one per channel ("feature"); bright means the
    feature was found there. Showing a few of them is how one sees *what* a layer responds to.
    By default the channels with the largest mean activation are shown, because most channels of
    a deep layer are near zero on any one photo and would show as blank squares.

    Args:
        activations: one layer's output, shape (1, height, width, channels) or (height, width, channels),
            a NumPy array or a tensor.
        channels: how many of the strongest channels to show, or a list of channel numbers.
        columns: heat maps per row.
        title: the figure title (default: the map size and channel count).
        cmap: Matplotlib colour map.

    Returns:
        The Matplotlib figure.

    Raises:
        ValueError: if ``activations`` is not one image's 3-D stack of maps, or a channel number is out of range.

    Example:
        >>> features = models.feature_extractor(bb, ["block_3_expand_relu"])(img[None])
        >>> show_feature_maps(features, channels=16, title="block_3_expand_relu")
    """
    import matplotlib.pyplot as plt
    import numpy as np

    maps = np.asarray(activations, dtype=np.float32)
    if maps.ndim == 4 and maps.shape[0] == 1:
        maps = maps[0]
    if maps.ndim != 3:
        raise ValueError(
            f"show_feature_maps needs one layer's activations of shape (1, height, width, channels) or "
            f"(height, width, channels); got shape {tuple(np.shape(activations))}. Pass one layer's output "
            "for one image, e.g. features[0] for the first layer of a list."
        )
    total = maps.shape[-1]
    if isinstance(channels, (int, np.integer)):
        if channels < 1:
            raise ValueError(f"channels must be at least 1 (how many maps to show); got {channels}.")
        strength = maps.mean(axis=(0, 1))
        chosen = [int(c) for c in np.argsort(-strength)[: min(int(channels), total)]]
    else:
        chosen = [int(c) for c in channels]
        bad = [c for c in chosen if not 0 <= c < total]
        if bad or not chosen:
            raise ValueError(f"channel numbers must lie in 0..{total - 1} for this layer; got {chosen}.")
    if columns < 1:
        raise ValueError(f"columns must be at least 1; got {columns}.")
    columns = min(columns, len(chosen))
    rows = -(-len(chosen) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.6 * rows + 0.6), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, channel in zip(axes.flat, chosen):
        axis.imshow(maps[:, :, channel], cmap=cmap)
        axis.set_title(f"channel {channel}", fontsize=8)
    fig.suptitle(title or f"{len(chosen)} of {total} feature maps, each {maps.shape[0]}x{maps.shape[1]}")
    fig.tight_layout()
    return fig


# --- Training progress and confusion chart (lessons 07-08) ---

import keras as _keras  # noqa: E402  (the progress plot is a Keras callback, usable with model.fit too)


class TrainingProgressPlot(_keras.callbacks.Callback):
    """A live training plot, like MATLAB's ``trainingOptions(..., 'Plots','training-progress')``.

    Two panels, accuracy and loss, with the training and the validation curve; in Jupyter the
    figure is redrawn in place after every epoch (one picture, not one per epoch). Outside
    Jupyter it draws nothing: the training loop's progress line says the same in text.
    Works with :func:`course_lib.training.train_classifier` and with Keras' ``model.fit``.

    Args:
        title: the figure's title.
        enabled: ``False`` keeps the records but never draws (e.g. in tests).

    Example:
        >>> plot = TrainingProgressPlot()
        >>> training.train_classifier(classifier, train_set, valid_set, callbacks=[plot])
        >>> plot.figure().savefig("training.png")
    """

    def __init__(self, title: str = "Training progress", *, enabled: bool = True):
        super().__init__()
        from course_lib.progress import in_notebook

        self.title = title
        self.records: list[dict] = []
        self._live = enabled and in_notebook()
        self._handle = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.records = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        record = dict(logs or {})
        record.setdefault("epoch", epoch + 1)
        self.records.append(record)
        self._redraw()

    def on_train_end(self, logs: dict | None = None) -> None:
        """Mark the epoch whose weights were kept (``logs["best_epoch"]``, from early stopping)."""
        self.best_epoch = (logs or {}).get("best_epoch")
        if self.best_epoch is not None:
            self._redraw()

    def _redraw(self) -> None:
        if self._live:
            from IPython.display import display

            figure = self.figure()
            if self._handle is None:
                self._handle = display(figure, display_id=True)
            else:
                self._handle.update(figure)

    def figure(self) -> Figure:
        """The current figure (a Matplotlib Figure, not registered with pyplot)."""
        return plot_training_history(self.records, title=self.title, best_epoch=getattr(self, "best_epoch", None))


def plot_training_history(
    records: Sequence[Mapping[str, float | int | str]], *, title: str = "Training progress", best_epoch: int | None = None
) -> Figure:
    """Accuracy and loss per epoch, training and validation, from a list of epoch records.

    Args:
        records: dicts with ``epoch``, ``loss``, ``accuracy`` and optionally ``val_loss``,
            ``val_accuracy`` and ``phase`` (a vertical line marks where a new phase starts), e.g.
            ``TrainingHistory.epochs`` from :func:`course_lib.training.train_classifier`
            (or the history itself).
        title: the figure's title.
        best_epoch: the epoch whose weights were kept; marked with a star (default: the
            history's ``best_epoch`` if given a TrainingHistory).

    Returns:
        The Matplotlib figure.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    best_epoch = best_epoch if best_epoch is not None else getattr(records, "best_epoch", None)
    records = list(getattr(records, "epochs", records))
    figure = Figure(figsize=(10, 3.6), dpi=100)
    accuracy_axes, loss_axes = figure.subplots(1, 2)
    epochs = [r.get("epoch", i + 1) for i, r in enumerate(records)]
    for axes, key, label in ((accuracy_axes, "accuracy", "accuracy"), (loss_axes, "loss", "loss (cross-entropy)")):
        if records:
            axes.plot(epochs, [r.get(key) for r in records], "o-", color="tab:blue", label="training (augmented)")
            if any("val_" + key in r for r in records):
                axes.plot(epochs, [r.get("val_" + key) for r in records], "s--", color="black", label="validation")
        for previous, current in zip(records, records[1:]):
            if previous.get("phase") != current.get("phase"):
                axes.axvline(current.get("epoch") - 0.5, color="tab:orange", linestyle=":")
                axes.text(current.get("epoch") - 0.4, 0.5, str(current.get("phase")), color="tab:orange",
                          transform=axes.get_xaxis_transform(), va="center", fontsize=9,
                          bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8})
        kept = [r for r in records if r.get("epoch") == best_epoch and "val_" + key in r]
        if kept:
            axes.plot([best_epoch], [kept[0]["val_" + key]], "*", color="tab:red", markersize=14, zorder=5,
                      label=f"kept (epoch {best_epoch})")
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        if records:
            axes.legend(loc="lower right" if key == "accuracy" else "upper right", fontsize=9)
    accuracy_axes.set_ylim(0, 1.02)
    accuracy_axes.yaxis.set_major_formatter(lambda value, _: f"{value:.0%}")
    last = records[-1] if records else {}
    status = f" — epoch {last['epoch']}, validation accuracy {last['val_accuracy']:.1%}" if "val_accuracy" in last else ""
    kept = [r for r in records if r.get("epoch") == best_epoch and "val_accuracy" in r]
    if kept:
        status = f" — kept epoch {best_epoch} of {last['epoch']}: validation accuracy {kept[0]['val_accuracy']:.1%}"
    figure.suptitle(title + status)
    figure.tight_layout()
    return figure


def confusion_chart(
    confusion: np.ndarray | Sequence[Sequence[int]], class_names: Sequence[str], *, title: str = "Confusion chart"
) -> Figure:
    """MATLAB's ``confusionchart``: counts of true (rows) vs predicted (columns) classes.

    Cells are coloured by the share of the row (so a class with few photos reads as clearly as
    one with many), the diagonal in blue and mistakes in red, and each cell shows its count. A
    column on the right gives each class's accuracy (MATLAB's row summary). The figure grows
    with the number of classes and the column names are slanted, so 9 or 20 classes stay readable.

    Args:
        confusion: square array of counts, rows = true class, columns = predicted class.
        class_names: one name per row/column.
        title: the figure's title.

    Returns:
        The Matplotlib figure.

    Example:
        >>> confusion_chart(result.confusion, result.class_names, title="validation split")
    """
    import numpy as np
    from matplotlib.figure import Figure

    counts = np.asarray(confusion)
    names = [str(name) for name in class_names]
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] != len(names):
        raise ValueError(
            f"confusion must be a square matrix with one row per class name; got shape {counts.shape} "
            f"and {len(names)} names."
        )
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape, dtype=float), where=totals > 0)
    size = len(names)
    side = 2.5 + 0.62 * size
    figure = Figure(figsize=(side + 1.6, side), dpi=100)
    grid = figure.add_gridspec(1, 2, width_ratios=[size, 1.4], wspace=0.05)
    axes = figure.add_subplot(grid[0])
    summary = figure.add_subplot(grid[1], sharey=axes)
    colours = np.ones((size, size, 3))
    diagonal = np.eye(size, dtype=bool)
    blue, red = np.array([0.0, 0.35, 0.75]), np.array([0.85, 0.2, 0.1])
    strength = np.where(counts > 0, 0.15 + 0.85 * shares, 0.0)[..., None]
    colours = np.where(diagonal[..., None], 1 - strength * (1 - blue), 1 - strength * (1 - red))
    axes.imshow(colours, aspect="equal")
    for row in range(size):
        for column in range(size):
            if counts[row, column]:
                dark = shares[row, column] > 0.55
                axes.text(column, row, str(int(counts[row, column])), ha="center", va="center",
                          fontsize=10, color="white" if dark else "black")
    axes.set_xticks(range(size), names, rotation=45, ha="right", fontsize=9)
    axes.set_yticks(range(size), names, fontsize=9)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_xticks(np.arange(size + 1) - 0.5, minor=True)
    axes.set_yticks(np.arange(size + 1) - 0.5, minor=True)
    axes.grid(which="minor", color="0.85", linewidth=0.8)
    axes.tick_params(which="minor", length=0)
    recall = np.divide(np.diag(counts), totals[:, 0], out=np.full(size, np.nan), where=totals[:, 0] > 0)
    summary.imshow(np.where(np.isnan(recall), 1.0, 1 - 0.6 * np.nan_to_num(recall))[:, None],
                   cmap="Blues_r", vmin=0, vmax=1, aspect="auto")
    for row, value in enumerate(recall):
        summary.text(0, row, "—" if np.isnan(value) else f"{value:.0%}", ha="center", va="center", fontsize=9,
                     color="white" if not np.isnan(value) and value > 0.6 else "black")
    summary.set_xticks([0], ["per-class\naccuracy"], fontsize=9)
    summary.tick_params(axis="y", left=False, labelleft=False)
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    figure.suptitle(f"{title}: accuracy {accuracy:.1%} on {int(counts.sum())} photos")
    figure.subplots_adjust(left=0.22, bottom=0.22, right=0.97, top=0.92)
    return figure


# --- Animations: a dream forming (lessons 04, 05, 10; `dream.run_deep_dream(..., frames=[])`) ---

#: Formats :meth:`Animation.save` writes, by extension; both come with Pillow, no ffmpeg needed.
ANIMATION_FORMATS = {".gif": "GIF", ".webp": "WEBP"}


class Animation:
    """Frames played as a looping animation: inline in JupyterLab, the slides and the site.

    Inline, the animation is an animated WebP embedded in the notebook as data (a ``data:`` URI
    in an ``<img>``): it plays with no network, no JavaScript and no file beside the notebook, and
    a 20-frame dream of 256 px is about 150 kB (a GIF of the same frames is 4-5 times larger).
    :meth:`save` writes ``.webp`` or ``.gif`` (GIF plays in every program, at a larger size).

    Attributes:
        frames: the frames, uint8 RGB, all the same shape, at most ``max_dim`` pixels per side.
        fps: frames per second.
    """

    def __init__(self, frames: Sequence[Any], *, fps: float = 8.0, max_dim: int = 256, hold_last: float = 1.5):
        pictures = [images.load(frame) for frame in frames]
        if len(pictures) < 2:
            raise ValueError(f"An animation needs at least 2 frames, got {len(pictures)}. Record them with "
                             "dream.run_deep_dream(..., frames=my_list).")
        shapes = {picture.shape for picture in pictures}
        if len(shapes) != 1:
            raise ValueError(f"Every frame must have the same shape; got {sorted(shapes)}.")
        self.fps = validate.positive_number("fps", fps, example=8)
        max_dim = validate.whole_number("max_dim", max_dim, low=16, example=256)
        self.hold_last = validate.number("hold_last", hold_last, low=0.0, example=1.5)
        self.frames = [images.resize_max_dim(picture, max_dim) for picture in pictures]
        self._encoded: dict[str, bytes] = {}

    def _durations(self) -> list[int]:
        per_frame = round(1000 / self.fps)
        return [per_frame] * (len(self.frames) - 1) + [per_frame + round(1000 * self.hold_last)]

    def encode(self, kind: str = "WEBP") -> bytes:
        """The animation as ``"WEBP"`` or ``"GIF"`` bytes (made once per format)."""
        if kind not in self._encoded:
            import io

            import PIL.Image

            buffer = io.BytesIO()
            first, *rest = [PIL.Image.fromarray(frame) for frame in self.frames]
            if kind == "GIF":
                # 128 colours per frame, no dithering: dithered noise would bloat the file.
                first, *rest = [frame.quantize(colors=128, method=PIL.Image.Quantize.MEDIANCUT, dither=0)
                                for frame in [first, *rest]]
                first.save(buffer, format="GIF", save_all=True, append_images=rest, duration=self._durations(),
                           loop=0, optimize=True, disposal=1)
            else:
                first.save(buffer, format="WEBP", save_all=True, append_images=rest, duration=self._durations(),
                           loop=0, quality=70, method=4)
            self._encoded[kind] = buffer.getvalue()
        return self._encoded[kind]

    def _repr_html_(self) -> str:
        import base64

        height, width = self.frames[0].shape[:2]
        data = base64.b64encode(self.encode("WEBP")).decode("ascii")
        return (f'<img src="data:image/webp;base64,{data}" width="{width}" height="{height}" '
                f'alt="animation, {len(self.frames)} frames">')

    def save(self, path: str | os.PathLike) -> Path:
        """Write the animation as ``.webp`` or ``.gif``, atomically; returns the path."""
        from course_lib import files

        target = Path(path).expanduser()
        kind = ANIMATION_FORMATS.get(target.suffix.lower())
        if kind is None:
            raise ValueError(f"Save the animation as {' or '.join(ANIMATION_FORMATS)}, not {target.name!r}. "
                             "(MP4 would need ffmpeg; WebP and GIF need nothing but Pillow.)")
        with files.atomic_path(target) as temporary:
            temporary.write_bytes(self.encode(kind))
        return target


def animate(frames: Sequence[Any], *, fps: float = 8.0, max_dim: int = 256) -> Animation:
    """Play frames (e.g. a dream forming) as a looping animation; the cell's last expression shows it.

    Example:
        >>> frames = []
        >>> dreamed = dream.run_deep_dream(photo, bb, 50, octaves=range(-2, 3), frames=frames)
        >>> plots.animate(frames)                    # plays inline
        >>> plots.animate(frames).save("dream.gif")  # or keep it (.gif or .webp)
    """
    return Animation(frames, fps=fps, max_dim=max_dim)
