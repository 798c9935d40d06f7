"""The command line: `finetune-gui scan|label|train|evaluate|predict|sort|similar|export|
ensemble|explain|suspects|report`, or the window with none.

A thin layer over `core`: it parses, calls, and prints. User errors print one plain line and
exit 2; anything unexpected is logged to a file and named in one line, never a bare traceback.
One module per command group (`data`, `label`, `train`, `use`, `organise`, `export`,
`ensemble`, `insight`); `parser` puts them together.
"""

from __future__ import annotations

import sys

from finetune_gui.cli.parser import COMMANDS, SUBCOMMANDS, build_parser
from finetune_gui.cli.terminal import (
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USER_ERROR,
    TerminalProgress,
    format_seconds,
)

__all__ = [
    "EXIT_CANCELLED", "EXIT_FAILED", "EXIT_OK", "EXIT_USER_ERROR", "SUBCOMMANDS",
    "TerminalProgress", "build_parser", "format_seconds", "main", "report_error",
]


def main(argv: list[str] | None = None) -> int:
    """Run one command (or open the window when there is none); returns the exit code."""
    import multiprocessing

    # A frozen app starts the GUI's child processes from this same executable.
    multiprocessing.freeze_support()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*SUBCOMMANDS, "-h", "--help", "--version"):
        return _open_window(argv)
    args = build_parser().parse_args(argv)
    from finetune_gui.quiet import library_output_to_log, route_warnings_to_log

    route_warnings_to_log()
    # Libraries' own lines (TensorFlow's C++ log: oneDNN, CUDA) go to the log file, the
    # command's to the terminal: one line per fact.
    try:
        with library_output_to_log():
            return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("Stopped.", file=sys.stderr)
        return EXIT_CANCELLED
    except Exception as exc:
        return report_error(exc)


def report_error(exc: Exception) -> int:
    """A user error as one plain line; anything else logged to a file and named in one line."""
    from finetune_gui.core.errors import UserError

    if isinstance(exc, UserError):
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    from finetune_gui.applog import log_exception

    log = log_exception(exc, "cli")
    print(f"Unexpected error: {exc}. The details were written to {log}.", file=sys.stderr)
    return EXIT_FAILED


def _open_window(argv: list[str]) -> int:
    try:
        from finetune_gui.gui.app import run_app
    except ImportError as exc:
        print(f"The window cannot start ({exc}). Use a command instead:\n", file=sys.stderr)
        build_parser().print_help()
        return EXIT_USER_ERROR
    return run_app(argv)
