"""course_lib: the helper library behind the DeepDream course's notebooks.

One module per idea (see the README): ``config``, ``images``, ``data``, ``models``, ``dream``,
``classviz``, ``transfer``, ``plots``, ``widgets``, ``checks``, ``progress``, ``files``.
Import the module a lesson needs, e.g. ``from course_lib import images, models``.
"""
import os as _os

# TensorFlow prints several lines of start-up chatter that mean nothing to a student.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
