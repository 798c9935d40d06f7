"""`scan`: what in an image folder is usable, and why the rest is not."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from finetune_gui.cli.terminal import EXIT_OK, EXIT_USER_ERROR, TerminalProgress


def add_parsers(commands) -> None:
    """Add the `scan` command."""
    scan = commands.add_parser("scan", help="check an image folder and report what is usable")
    scan.add_argument("folder", type=Path)
    scan.add_argument("--json", action="store_true", help="print the full result as JSON")


def cmd_scan(args) -> int:
    from finetune_gui.core.data.class_names import display_name
    from finetune_gui.core.data.scan import scan_folder, scan_summary_line
    from finetune_gui.core.words import counted

    scan = scan_folder(args.folder, progress=TerminalProgress(enabled=not args.json))
    if args.json:
        print(json.dumps(scan.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(scan_summary_line(scan))
        for summary in scan.summaries:
            w0, h0 = summary.min_size
            w1, h1 = summary.max_size
            print(f"  {display_name(summary.name)}: {counted(summary.count, 'image')} "
                  f"({w0}x{h0} to {w1}x{h1})")
        for problem in scan.problems:
            print(f"  skipped {problem.path}: {problem.reason}")
        for warning in scan.warnings:
            print(f"warning: {warning}")
        if scan.refusal:
            print(f"error: {scan.refusal}", file=sys.stderr)
    return EXIT_OK if scan.can_train else EXIT_USER_ERROR


COMMANDS = {"scan": cmd_scan}
