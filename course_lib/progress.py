"""One progress display for every long loop in the course: dreams, class images, training.

In Jupyter it is an ipywidgets progress bar with a status line, plus an optional preview image
that is replaced in place (so a notebook does not fill up with hundreds of pictures). On the
command line it is a single plain text line on stderr, rewritten with ``\\r``.
"""
from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where widgets and in-place images work)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


class Progress:
    """A progress bar: ``update(done, status)`` as work advances, ``close()`` at the end.

    Args:
        total: how many units of work (steps, iterations, epochs) in all.
        description: a few words shown before the bar, e.g. ``"dreaming"``.
        preview: in Jupyter, also show an image that :meth:`preview` replaces in place.
        enabled: ``False`` shows nothing at all (for tests and library callers that want silence).

    Example:
        >>> bar = Progress(total=50, description="dreaming")
        >>> for step in range(50):
        ...     bar.update(step + 1, f"loss {loss:.2f}")
        >>> bar.close()
    """

    def __init__(self, total: int, description: str = "", *, preview: bool = False, enabled: bool = True):
        self.total = max(int(total), 1)
        self.description = description
        self.enabled = enabled
        self.started = time.perf_counter()
        self._notebook = enabled and in_notebook()
        # The preview is displayed with the first picture (see preview()), never as a placeholder: a blank
        # image would sit under the bar while the dream compiles, and stay if the run stops before a picture.
        self._wants_preview = preview and self._notebook
        self._preview_handle = None
        self._last_text = 0.0
        if not enabled:
            return
        if self._notebook:
            import ipywidgets as widgets
            from IPython.display import display

            self._bar = widgets.IntProgress(value=0, min=0, max=self.total, description=description[:20])
            self._label = widgets.Label(value="")
            display(widgets.HBox([self._bar, self._label]))
        else:
            self._write(0, "")

    def update(self, done: int, status: str = "") -> None:
        """Show that ``done`` of ``total`` units are finished, with a short status text."""
        if not self.enabled:
            return
        if self._notebook:
            self._bar.value = min(int(done), self.total)
            self._label.value = f"{done}/{self.total} {status}  ({self.elapsed():.0f} s)"
        else:
            now = time.perf_counter()
            if done >= self.total or now - self._last_text > 0.2:
                self._last_text = now
                self._write(done, status)

    def preview(self, image: np.ndarray) -> None:
        """Replace the preview image (uint8 HxWx3) in place; a no-op outside Jupyter."""
        if not (self.enabled and self._wants_preview):
            return
        import PIL.Image

        picture = PIL.Image.fromarray(np.asarray(image))
        if self._preview_handle is None:
            from IPython.display import display

            self._preview_handle = display(picture, display_id=True)  # the first picture: shown, then replaced
        else:
            self._preview_handle.update(picture)

    def close(self, status: str = "") -> None:
        """Finish the bar, leaving a last status line."""
        if not self.enabled:
            return
        if self._notebook:
            self._bar.value = self.total
            self._bar.bar_style = "success"
            self._label.value = f"{status}  ({self.elapsed():.1f} s)".strip()
        else:
            self._write(self.total, status)
            sys.stderr.write("\n")
            sys.stderr.flush()

    def elapsed(self) -> float:
        """Seconds since the bar was created."""
        return time.perf_counter() - self.started

    def _write(self, done: int, status: str) -> None:
        width = 30
        filled = int(width * min(done, self.total) / self.total)
        bar = "#" * filled + "-" * (width - filled)
        sys.stderr.write(f"\r{self.description} [{bar}] {done}/{self.total} {status}".rstrip() + "   ")
        sys.stderr.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
