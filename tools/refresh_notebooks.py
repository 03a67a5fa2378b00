"""Execute lessons in fast mode and keep only the outputs nbval should compare.

Notebooks are committed as sources. The only outputs kept are the text outputs of cells marked
``# NBVAL_CHECK_OUTPUT`` (deterministic lines such as a check's "Correct: ..."), which
``pytest --nbval-lax`` compares on every run. Pictures, progress bars and timings are stripped:
they differ from run to run and large images do not belong in git.

Usage (from the course folder, inside the course's environment):

    python tools/refresh_notebooks.py notebooks/03_calculate_loss.ipynb [more.ipynb ...]
    python tools/refresh_notebooks.py --strip-only notebooks/*.ipynb   # no execution
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import nbformat

MARKER = "NBVAL_CHECK_OUTPUT"
TEXT_ONLY = {"text/plain"}


def keep_checked_outputs(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Strip every output except the text outputs of cells marked NBVAL_CHECK_OUTPUT."""
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        if MARKER in cell.source:
            kept = []
            for output in cell.get("outputs", []):
                if output.output_type == "stream" and output.name == "stdout":
                    kept.append(output)
                elif output.output_type in ("execute_result", "display_data"):
                    data = {k: v for k, v in output.data.items() if k in TEXT_ONLY}
                    if data:
                        output.data = data
                        output.metadata = {}
                        kept.append(output)
            cell.outputs = kept
        else:
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    # Saved widget state (progress bars, the dream explorer) is output too: it belongs to a run.
    notebook.metadata.pop("widgets", None)
    return notebook


def refresh(path: Path, *, execute: bool, timeout: int) -> None:
    notebook = nbformat.read(path, as_version=4)
    if execute:
        from nbclient import NotebookClient

        os.environ.setdefault("DEEPDREAM_FAST", "1")
        NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(keep_checked_outputs(notebook), path)
    print(f"refreshed {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--strip-only", action="store_true", help="strip outputs without executing")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        refresh(path, execute=not args.strip_only, timeout=args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
