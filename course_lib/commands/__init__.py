"""One module per command of ``python -m course_lib`` (see ``course_lib/__main__.py``)."""
