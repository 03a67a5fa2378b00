"""The course's command line, for instructors and scripts: ``python -m course_lib COMMAND ...``.

Each command lives in its own module under ``course_lib/commands/`` with two functions,
``add_arguments(parser)`` and ``run(args) -> int``; its module docstring is its help text.

Errors a user can fix (a bad file, a wrong option, no internet) print one line on stderr and exit
with code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

#: Command name -> module in course_lib.commands, in the order ``--help`` lists them.
COMMANDS = {
    "dream": "dream",
    "bench": "bench",
    "train": "train",
    "evaluate": "evaluate",
    "classviz": "classviz",
}

#: Exceptions that mean "the user asked for something that cannot be done": one line, exit 2.
#: OSError covers a missing or unwritable file or folder, a full disk, a read-only file system.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse's own convention)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m course_lib", description="DeepDream course: command line for instructors.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(f"course_lib.commands.{module_name}")
        except ModuleNotFoundError as missing:
            if missing.name != f"course_lib.commands.{module_name}":
                raise
            continue
        doc = (module.__doc__ or "").strip()
        command = sub.add_parser(name, help=doc.splitlines()[0] if doc else None, description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


#: Options whose value may start with "-" (``--octaves -2..2``), which argparse would take for an option.
NEGATIVE_VALUE_OPTIONS = ("--octaves",)


def _join_negative_values(argv: list[str]) -> list[str]:
    joined: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        if token in NEGATIVE_VALUE_OPTIONS:
            value = next(tokens, None)
            joined.append(token if value is None else f"{token}={value}")
        else:
            joined.append(token)
    return joined


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_join_negative_values(sys.argv[1:] if argv is None else list(argv)))
    from course_lib.models import ModelUnavailableError

    try:
        return int(args._run(args) or 0)
    except (*USER_ERRORS, ModelUnavailableError, _offline_error()) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _offline_error() -> type[BaseException]:
    try:
        from course_lib.downloads import OfflineError
    except ImportError:  # pragma: no cover - data module always present in a full install
        return ValueError
    return OfflineError


if __name__ == "__main__":
    sys.exit(main())
