"""course_lib: the helper library behind the DeepDream course's notebooks.

One module per idea; ``docs/MODULES.md`` has the map and how data flows between them. Import the
module a lesson needs, e.g. ``from course_lib import images, models``.
"""
from __future__ import annotations

import os as _os
import sys as _sys

__version__ = "0.1.0"


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow and find its devices with the C++ start-up chatter kept off stderr.

    TensorFlow 2.21 prints lines about oneDNN, CUDA drivers and absl logging while it loads and
    looks for GPUs, before its own ``TF_CPP_MIN_LOG_LEVEL`` setting applies. They mean nothing to a
    student and, in Jupyter, land in the first cell's output. They are silenced at the
    file-descriptor level for the import only; Python errors still show. Import ``course_lib``
    before ``tensorflow`` to benefit.
    """
    _os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in _sys.modules:
        return
    _sys.stderr.flush()
    saved = _os.dup(2)
    try:
        with open(_os.devnull, "w") as devnull:
            _os.dup2(devnull.fileno(), 2)
            import tensorflow

            tensorflow.config.list_physical_devices()
    finally:
        _os.dup2(saved, 2)
        _os.close(saved)


_import_tensorflow_quietly()
