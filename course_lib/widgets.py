"""Interactive widgets for the lessons: a photo upload (lesson 01) and a dream explorer (lessons 04 and 05).

Both are classes that hold their state in plain attributes (``.image``, ``.result``) and expose
the widget as ``.widget``, so a lesson displays them with one call and a test drives them without
a browser: :meth:`PhotoUpload.load_bytes` is what the upload button calls, :meth:`DreamExplorer.run`
and :meth:`DreamExplorer.save` are what the Run and Save buttons call.

Every photo goes through :func:`course_lib.images.load`, so a file that is not a picture (or is too
small for the network) shows the loader's message in the widget instead of raising in a callback,
where a student would never see the traceback.

Example:
    >>> upload = widgets.photo_upload(max_dim=500)        # lesson 01
    >>> explorer = widgets.dream_explorer(backbone, photo)  # lessons 04 and 05
"""
from __future__ import annotations

import html
import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from course_lib import config, images, validate
from course_lib.progress import in_notebook

#: Where the Save button puts dreams unless told otherwise (``data/`` is ignored by git).
DREAMS_FOLDER_NAME = "dreams"

#: Widths of the two pictures shown side by side, in screen pixels.
_PICTURE_WIDTH = "360px"


def default_save_folder() -> Path:
    """``<data dir>/dreams``: the course's data folder (git-ignored), or ``$DEEPDREAM_DATA_DIR/dreams``."""
    return config.settings.data_dir / DREAMS_FOLDER_NAME


def unused_path(path: str | Path) -> Path:
    """``path`` if no file is there yet, else the first free ``<stem>-2<suffix>``, ``<stem>-3<suffix>`` ...

    Saving never overwrites: an earlier dream with the same name stays.

    Example:
        >>> unused_path("dreams/dream.png")   # dreams/dream.png exists
        PosixPath('dreams/dream-2.png')
    """
    path = Path(path)
    candidate, counter = path, 1
    while candidate.exists():
        counter += 1
        candidate = path.with_name(f"{path.stem}-{counter}{path.suffix}")
    return candidate


def _png_bytes(image: np.ndarray) -> bytes:
    """Encode an RGB uint8 array as PNG bytes, what ``ipywidgets.Image`` shows."""
    import PIL.Image

    buffer = io.BytesIO()
    PIL.Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _error_html(text: str) -> str:
    return f"<span style='color:#b00020'>{html.escape(text)}</span>"


def _display(widget: Any) -> None:
    """Show a widget in Jupyter; elsewhere (scripts, tests) there is nothing to show it on."""
    if in_notebook():
        from IPython.display import display

        display(widget)


# ---------------------------------------------------------------------------------------------
# Photo upload (lesson 01)
# ---------------------------------------------------------------------------------------------


class PhotoUpload:
    """An upload button whose :attr:`image` is the uploaded photo, checked by :func:`images.load`.

    A good upload sets :attr:`image` (RGB uint8, shrunk to ``max_dim``) and shows a small preview;
    a bad one (a text file, a damaged or tiny picture) leaves the previous :attr:`image` in place
    and shows why in :attr:`message`, never an exception in a callback.

    Args:
        max_dim: shrink uploads so the longer side is at most this many pixels (None: keep the size).
        min_size: the smallest side accepted, in pixels, or a backbone (its ``min_size``).
        on_load: called with the new image after every good upload (the dream explorer uses it).

    Attributes:
        image: the last good upload, or ``None`` before the first one.
        name: its file name.
        error: the message of the last failed upload, or ``None``.
        widget: the ipywidgets box to display.

    Example:
        >>> upload = PhotoUpload(max_dim=500)
        >>> upload.load_bytes(Path("dog.jpg").read_bytes(), "dog.jpg").shape
        (375, 500, 3)
    """

    def __init__(self, max_dim: int | None = None, *, min_size: Any = 1,
                 on_load: Callable[[np.ndarray], None] | None = None):
        import ipywidgets as widgets

        validate.max_dim(max_dim)  # a bad max_dim fails now, not at the first upload
        self.max_dim = max_dim
        self.min_size = min_size
        self.image: np.ndarray | None = None
        self.name: str | None = None
        self.error: str | None = None
        self._on_load = on_load
        self.button = widgets.FileUpload(accept="image/*", multiple=False, description="Upload a photo")
        self.message = widgets.HTML(value="No photo uploaded yet (JPEG or PNG).")
        self.preview = widgets.Image(format="png", layout=widgets.Layout(max_width="240px", display="none"))
        self.widget = widgets.VBox([widgets.HBox([self.button, self.message]), self.preview])
        self.button.observe(self._on_upload, names="value")

    def load_bytes(self, content: bytes | bytearray | memoryview, name: str = "the upload") -> np.ndarray | None:
        """Check and load an uploaded file's bytes: what the upload button does.

        Returns:
            The image (RGB uint8), or ``None`` if the bytes are not a usable picture; then
            :attr:`error` and the widget's message say why.
        """
        try:
            image = images.load(bytes(content), max_dim=self.max_dim, min_size=self.min_size)
        except ValueError as error:  # images.ImageError is a ValueError
            self.error = f"{name}: {error}"
            self.message.value = _error_html(f"Not loaded. {self.error}")
            return None
        self.image, self.name, self.error = image, name, None
        height, width = image.shape[:2]
        self.message.value = f"Loaded {html.escape(name)}: {width}x{height} px."
        self.preview.value = _png_bytes(image)
        self.preview.layout.display = None
        if self._on_load is not None:
            self._on_load(image)
        return image

    def _on_upload(self, change: dict) -> None:
        # ipywidgets 8: a tuple of {"name", "type", "size", "content" (memoryview), "last_modified"}.
        for upload in change["new"] or ():
            self.load_bytes(upload["content"], upload.get("name") or "the upload")


def photo_upload(max_dim: int | None = None, *, min_size: Any = 1) -> PhotoUpload:
    """Show an upload button for your own photo; its ``.image`` is the loaded picture (or None).

    Args:
        max_dim: shrink the photo so its longer side is at most this many pixels.
        min_size: the smallest side accepted (pixels), or a backbone.

    Returns:
        The :class:`PhotoUpload`; read ``.image`` in a later cell, after uploading.

    Example:
        >>> upload = widgets.photo_upload(max_dim=500)
        >>> photo = upload.image if upload.image is not None else original_img
    """
    upload = PhotoUpload(max_dim, min_size=min_size)
    _display(upload.widget)
    return upload


# ---------------------------------------------------------------------------------------------
# Dream explorer (lessons 04 and 05)
# ---------------------------------------------------------------------------------------------


class DreamExplorer:
    """Try DeepDream settings on a photo: layers, steps, step size, octaves; run, compare, save.

    The dream is :func:`course_lib.dream.run_deep_dream` with the chosen settings.
    One feature extractor (hence one compiled engine) is kept per choice of layers, so going back
    to layers tried before starts at once.

    Args:
        backbone: a :class:`course_lib.models.Backbone`; its blocks are the layers offered.
        image: the starting photo (anything :func:`images.load` reads); an upload replaces it.
        max_dim: the starting photo and any upload are shrunk to this longer side (the tutorial's
            500 px), so every dream takes seconds, not minutes. ``None`` keeps their size.
        save_folder: where the Save button writes (default :func:`default_save_folder`).
        steps_per_octave: the starting value of the steps slider.
        octaves: the starting octave range (default the tutorial's ``range(-2, 3)``;
            ``range(0, 1)`` is the simple loop of lesson 04).

    Attributes:
        image: the photo the next run dreams on.
        result: the last dream (RGB uint8), or ``None`` before the first run.
        seconds: how long the last run took.
        widget: the ipywidgets box to display.

    Example:
        >>> explorer = DreamExplorer(models.backbone("dog_breeds"), photo)
        >>> explorer.layers.value = ("block_3_expand_relu",)
        >>> dreamed = explorer.run()
        >>> explorer.save()
        PosixPath('.../data/dreams/dream-photo-20250101-120000.png')
    """

    def __init__(self, backbone: Any, image: Any, *, max_dim: int | None = 500,
                 save_folder: str | Path | None = None, steps_per_octave: int = 20,
                 octaves: range | None = None):
        import ipywidgets as widgets

        from course_lib import dream

        self.backbone = backbone
        self.image = images.load(image, max_dim=max_dim, min_size=backbone)
        self.image_name = "photo"
        self.result: np.ndarray | None = None
        self.result_settings: dict | None = None
        self.seconds: float | None = None
        self.save_folder = Path(save_folder) if save_folder is not None else default_save_folder()
        self._extractors: dict[tuple[str, ...], Any] = {}

        style = {"description_width": "110px"}
        # Wide sliders: a narrow one cannot place its handle on every value (one pixel per value),
        # and the browser may then report a neighbouring value.
        wide = widgets.Layout(width="480px")
        self.layers = widgets.SelectMultiple(
            options=list(backbone.blocks), value=tuple(backbone.dream_layers), rows=8,
            description="layers", style=style, layout=wide,
        )
        self.steps = widgets.IntSlider(value=steps_per_octave, min=1, max=100, description="steps / octave",
                                       style=style, layout=wide)
        self.step_size = widgets.FloatLogSlider(
            value=dream.STEP_SIZE, base=10, min=-3, max=-1, step=0.1, readout_format=".3f",
            description="step size", style=style, layout=wide,
        )
        octaves = dream.OCTAVES if octaves is None else octaves
        if not isinstance(octaves, range) or len(octaves) == 0 or octaves.step != 1 or not -4 <= octaves.start <= octaves[-1] <= 4:
            raise ValueError(f"octaves must be a range of whole numbers within -4..4, like range(-2, 3); got {octaves!r}.")
        self.octaves = widgets.IntRangeSlider(
            value=(octaves.start, octaves[-1]), min=-4, max=4,
            description="octaves", style=style, layout=wide,
        )
        self.upload = PhotoUpload(max_dim, min_size=backbone, on_load=self._use_upload)
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.save_button = widgets.Button(description="Save", icon="save", disabled=True)
        self.status = widgets.HTML(value="Choose settings and press Run.")
        self.progress_area = widgets.Output()
        self.original_view = widgets.Image(value=_png_bytes(self.image), format="png",
                                           layout=widgets.Layout(width=_PICTURE_WIDTH))
        # An Image widget with no picture shows a broken-image icon, so the result stays hidden (and a
        # line says what will appear there) until the first dream.
        self.result_view = widgets.Image(format="png", layout=widgets.Layout(width=_PICTURE_WIDTH, display="none"))
        self.result_placeholder = widgets.HTML("<i>Your dream appears here: press Run.</i>",
                                               layout=widgets.Layout(width=_PICTURE_WIDTH))
        self.run_button.on_click(lambda _button: self._report_errors(self.run))
        self.save_button.on_click(lambda _button: self._report_errors(self.save))

        hint = widgets.HTML("<small>Ctrl/Shift-click to pick several layers. Octaves (-2, 2) are the "
                            "tutorial's range(-2, 3); (0, 0) is the simple loop.</small>")
        controls = widgets.VBox([self.layers, self.steps, self.step_size, self.octaves, hint, self.upload.widget,
                                 widgets.HBox([self.run_button, self.save_button])])
        pictures = widgets.HBox([
            widgets.VBox([widgets.HTML("<b>original</b>"), self.original_view]),
            widgets.VBox([widgets.HTML("<b>dream</b>"), self.result_placeholder, self.result_view]),
        ])
        self.widget = widgets.VBox([controls, self.status, self.progress_area, pictures])

    # -- settings ------------------------------------------------------------------------------

    def chosen_settings(self) -> dict:
        """The current choices, checked: layers, steps_per_octave, step_size, octaves (a range).

        Raises:
            ValueError: when no layer is chosen.
        """
        layers = tuple(self.layers.value)
        if not layers:
            raise ValueError("No layer is chosen. Pick at least one layer in the list "
                             f"(the default is {', '.join(self.backbone.dream_layers)}).")
        first, last = self.octaves.value
        return {
            "layers": layers,
            "steps_per_octave": int(self.steps.value),
            "step_size": float(self.step_size.value),
            "octaves": range(int(first), int(last) + 1),
        }

    def _use_upload(self, image: np.ndarray) -> None:
        self.image = image
        self.image_name = Path(self.upload.name or "photo").stem or "photo"
        self.original_view.value = _png_bytes(image)
        self.status.value = "New photo loaded; press Run to dream on it."

    def _extractor(self, layers: tuple[str, ...]):
        from course_lib import models

        if layers not in self._extractors:
            self._extractors[layers] = models.feature_extractor(self.backbone, list(layers))
        return self._extractors[layers]

    # -- actions -------------------------------------------------------------------------------

    def run(self) -> np.ndarray:
        """Dream on :attr:`image` with the current settings; show it beside the original.

        Returns:
            The dream (RGB uint8, the photo's size), also kept in :attr:`result`.

        Raises:
            ValueError: for settings the engine refuses (no layer, a bad step size ...).
        """
        from course_lib import dream

        chosen = self.chosen_settings()
        self.run_button.disabled = True
        self.status.value = f"Dreaming with {', '.join(chosen['layers'])} ..."
        started = time.perf_counter()
        notebook = in_notebook()
        try:
            if notebook:
                self.progress_area.clear_output()
            with self.progress_area:  # in Jupyter, the progress bar and preview appear inside the widget
                result = dream.run_deep_dream(
                    self.image, self._extractor(chosen["layers"]),
                    steps_per_octave=chosen["steps_per_octave"], step_size=chosen["step_size"],
                    octaves=chosen["octaves"], show_progress=notebook,
                )
        finally:
            self.run_button.disabled = False
        if notebook:
            self.progress_area.clear_output()
        self.seconds = time.perf_counter() - started
        self.result, self.result_settings = result, chosen
        self.result_view.value = _png_bytes(result)
        self.result_view.layout.display = None
        self.result_placeholder.layout.display = "none"
        self.save_button.disabled = False
        octaves = chosen["octaves"]
        self.status.value = (
            f"Dreamed in {self.seconds:.1f} s: {len(octaves)} octave(s) ({octaves.start}..{octaves.stop - 1}) x "
            f"{chosen['steps_per_octave']} steps, step size {chosen['step_size']:.3f}, "
            f"layers {', '.join(chosen['layers'])}."
        )
        return result

    def save(self, path: str | Path | None = None) -> Path:
        """Save the last dream as PNG or JPEG (atomically, via :func:`images.save`) and say where.

        Never replaces a file: when the target exists (two saves in the same second, or a path
        chosen twice), a counter goes before the extension (``dream-2.png``, ``dream-3.png`` ...),
        so a dream a student liked is never lost to the next one.

        Args:
            path: the file to write; default ``<save folder>/dream-<photo>-<date-time>.png``.

        Returns:
            The path written (with a counter if the target existed).

        Raises:
            ValueError: nothing dreamed yet, or an extension other than .png/.jpg/.jpeg.
        """
        if self.result is None:
            raise ValueError("There is no dream to save yet: press Run (or call run()) first.")
        if path is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path = self.save_folder / f"dream-{self.image_name}-{stamp}.png"
        written = images.save(self.result, unused_path(path))
        self.status.value = f"Saved to {html.escape(str(Path(written).resolve()))}"
        return written

    def _report_errors(self, action: Callable[[], Any]) -> None:
        """Run a button's action; show any error in the widget instead of raising.

        An exception raised in a widget callback never reaches the notebook's output (it goes to
        the Jupyter server's log), so the student would see nothing happen.
        """
        try:
            action()
        except ValueError as error:  # our own errors: the message says what to do
            self.status.value = _error_html(str(error))
        except Exception as error:  # e.g. out of memory on a huge photo
            self.status.value = _error_html(f"The dream failed: {type(error).__name__}: {error}")


def dream_explorer(backbone: Any = None, image: Any = None, **options: Any) -> DreamExplorer:
    """Show the dream explorer: pick layers, steps, step size and octaves, upload a photo, Run, Save.

    Args:
        backbone: a backbone (default: ``models.backbone("auto")``).
        image: the starting photo (default: the tutorial's Labrador).
        **options: passed to :class:`DreamExplorer` (``max_dim``, ``save_folder``, ``steps_per_octave``, ``octaves``).

    Returns:
        The :class:`DreamExplorer`; its ``.result`` holds the last dream.

    Example:
        >>> explorer = widgets.dream_explorer(backbone, original_img)
    """
    if backbone is None:
        from course_lib import models

        backbone = models.backbone("auto")
    if image is None:
        from course_lib import data

        image = data.sample_image("labrador")
    explorer = DreamExplorer(backbone, image, **options)
    _display(explorer.widget)
    return explorer
