"""The shape of course_lib that docs/MODULES.md promises: small modules, public Keras APIs only."""
from __future__ import annotations

import re
from pathlib import Path

COURSE_LIB = Path(__file__).resolve().parent.parent / "course_lib"
MODULES = sorted(COURSE_LIB.rglob("*.py"))
MAX_LINES = 620  # "about 600"


def test_no_module_is_over_about_600_lines():
    long = {str(p.relative_to(COURSE_LIB)): n for p in MODULES if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these modules by idea (docs/MODULES.md): {long}"


def test_no_private_keras_or_tensorflow_attribute_is_used():
    # e.g. tensor._keras_history, layer._inbound_nodes, model._layers: they change between Keras releases.
    private = re.compile(r"\._(keras_history|inbound_nodes|outbound_nodes|layers|trainable_weights|tracker|functional|"
                         r"self_tracked_trackables|keras_shape|keras_mask|inputs|outputs)\b")
    found = [f"{p.relative_to(COURSE_LIB)}:{i}: {line.strip()}"
             for p in MODULES for i, line in enumerate(p.read_text().splitlines(), 1) if private.search(line)]
    assert not found, "private Keras attributes used:\n" + "\n".join(found)


def test_every_module_is_in_the_module_map():
    text = (COURSE_LIB.parent / "docs" / "MODULES.md").read_text()
    names = {p.stem for p in MODULES if p.stem not in ("__init__", "__main__") and p.parent == COURSE_LIB}
    names |= {f"classviz/{p.stem}" for p in (COURSE_LIB / "classviz").glob("*.py") if p.stem != "__init__"}
    missing = sorted(name for name in names if f"`{name}`" not in text and f"`{name}" not in text)
    assert not missing, f"add these to docs/MODULES.md: {missing}"
