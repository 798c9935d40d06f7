"""`sort` and `similar`: a run's model put to work on a folder, and on one picture's neighbours."""

from __future__ import annotations

import json
from pathlib import Path

from finetune_gui.cli.terminal import EXIT_CANCELLED, EXIT_OK, TerminalProgress


def add_parsers(commands) -> None:
    """Add the `sort` and `similar` commands."""
    sort = commands.add_parser(
        "sort",
        help="copy every image of a folder into OUT/<class>/ or OUT/not sure/ (the source is "
        "never changed)",
    )
    sort.add_argument("run", type=Path)
    sort.add_argument("folder", type=Path)
    sort.add_argument("--into", type=Path, required=True, metavar="OUT")

    similar = commands.add_parser(
        "similar", help="the run's dataset images most similar to one image (pooled features)"
    )
    similar.add_argument("run", type=Path)
    similar.add_argument("image", type=Path)
    similar.add_argument("--top", type=int, default=8)
    similar.add_argument("--json", action="store_true")


def cmd_sort(args) -> int:
    import signal

    from finetune_gui.core.events import CancelToken
    from finetune_gui.core.run.sort import CSV_NAME, sort_folder

    cancel = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    try:
        summary = sort_folder(
            args.run, args.folder, args.into, progress=TerminalProgress(), cancel=cancel
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    print(summary.text())
    print(f"Every prediction: {summary.out / CSV_NAME}")
    return EXIT_CANCELLED if summary.cancelled else EXIT_OK


def cmd_similar(args) -> int:
    from finetune_gui.core.run.folder import RunFolder
    from finetune_gui.core.run.similar import similar_images

    run = RunFolder.open(args.run)
    found = similar_images(
        run, args.image, top=args.top, progress=TerminalProgress(enabled=not args.json)
    )
    if args.json:
        print(json.dumps([s.to_dict() for s in found], indent=2, ensure_ascii=False))
    else:
        for s in found:
            print(f"{s.distance:.4f}  {s.label:<12} {s.path}")
    return EXIT_OK


COMMANDS = {"sort": cmd_sort, "similar": cmd_similar}
