"""The argument parser: the top level and `--version` here, each command group's options in
its own module."""

from __future__ import annotations

import argparse

from finetune_gui.cli import data, ensemble, export, insight, label, organise, train, use

GROUPS = (data, label, train, use, organise, export, ensemble, insight)
COMMANDS = {name: run for group in GROUPS for name, run in group.COMMANDS.items()}
SUBCOMMANDS = tuple(COMMANDS)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: `finetune-gui [--version] COMMAND ...`."""
    parser = argparse.ArgumentParser(
        prog="finetune-gui",
        description="Fine-tune a pretrained CNN on a folder of images. "
        "Run without a command to open the window.",
    )
    parser.add_argument(
        "--version",
        action=PrintVersions,
        help="show the versions of finetune-gui, Python, TensorFlow, Keras and Qt, and the GPU",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in GROUPS:
        group.add_parsers(commands)
    return parser


class PrintVersions(argparse.Action):
    """`--version`: what `finetune_gui.about.version_text` says, then exit 0."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from finetune_gui.about import version_text
        from finetune_gui.quiet import route_warnings_to_log

        route_warnings_to_log()
        print(version_text())  # on stdout, as argparse's own version action does
        parser.exit()
