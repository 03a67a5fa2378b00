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


def _course_lib_imports(path: Path) -> set[str]:
    """The course_lib modules a file imports anywhere in it (top level, inside functions, TYPE_CHECKING aside)."""
    import ast

    tree = ast.parse(path.read_text())
    type_checking = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
                     and "TYPE_CHECKING" in ast.unparse(block.test) for node in ast.walk(block)}
    package = ".".join(path.relative_to(COURSE_LIB.parent).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(tree):
        if id(node) in type_checking:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("course_lib")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # a relative import: from . import x, from .y import z
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            if base.startswith("course_lib"):
                found.add(base)
                found |= {f"{base}.{alias.name}" for alias in node.names}  # from course_lib import dream
    modules = {".".join(p.relative_to(COURSE_LIB.parent).with_suffix("").parts).removesuffix(".__init__")
               for p in MODULES}
    return {name for name in found if name in modules}


def import_graph() -> dict[str, set[str]]:
    """course_lib module -> the course_lib modules it imports (a package's __init__ stands for the package)."""
    graph = {}
    for path in MODULES:
        name = ".".join(path.relative_to(COURSE_LIB.parent).with_suffix("").parts).removesuffix(".__init__")
        # A submodule's import of its own package runs the package's __init__ first: no edge back to it.
        graph[name] = {target for target in _course_lib_imports(path)
                       if target != name and not name.startswith(target + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle (as a list of modules, the first repeated at the end), or [] when there is none."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str]:
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[module] = "done"
        stack.pop()
        return []

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return []


def test_find_cycle_finds_a_cycle_and_only_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycle_in_course_lib():
    """No module imports one that (directly or not) imports it back, not even inside a function:
    such a cycle works only by the order modules happen to load in (dream and tiles had one)."""
    graph = import_graph()
    assert "course_lib.ascent" in graph["course_lib.dream"] and "course_lib.ascent" in graph["course_lib.tiles"]
    assert "course_lib.dream" in graph["course_lib.widgets"]  # imports inside functions are read too
    cycle = find_cycle(graph)
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_no_lessons_check_module_imports_another_lessons():
    """What two lessons' checks share lives in checks/common, so each check module reads on its own
    (lesson04 once borrowed lesson03's caller, lesson06 lesson05's model)."""
    graph = import_graph()
    lessons = sorted(name for name in graph if name.startswith("course_lib.checks.lesson"))
    assert len(lessons) == 11 and "course_lib.checks.common" in graph["course_lib.checks.lesson04"]
    crossing = {name: sorted(target for target in graph[name] if target in lessons) for name in lessons}
    assert not any(crossing.values()), f"check modules importing another lesson's: {crossing}"
