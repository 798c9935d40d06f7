"""`explain`, `suspects` and `report`: what a run's model looks at, which labels it doubts,
and the whole run on one HTML page."""

from __future__ import annotations

import json
from pathlib import Path

from finetune_gui.cli.terminal import EXIT_OK, TerminalProgress
from finetune_gui.core.words import counted


def add_parsers(commands) -> None:
    """Add the `explain`, `suspects` and `report` commands."""
    explain = commands.add_parser(
        "explain", help="show which part of an image made a run's model choose a class (Grad-CAM)"
    )
    explain.add_argument("run", type=Path)
    explain.add_argument("image", type=Path)
    explain.add_argument("--out", type=Path, required=True, help="PNG file: the heatmap over the image")
    explain.add_argument(
        "--class", dest="class_name", default=None, help="explain this class (default: the predicted one)"
    )

    suspects = commands.add_parser(
        "suspects",
        help="the run's images whose label looks wrong, surest first (the window's Suspect "
        "labels list)",
    )
    suspects.add_argument("run", type=Path)
    output = suspects.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the list as JSON")
    output.add_argument(
        "--csv", type=Path, default=None, metavar="FILE",
        help="write one row per suspect: path, given label, suggested label, how sure, split",
    )
    suspects.add_argument(
        "--data", type=Path, default=None, help="where the run's image folder is now, if moved"
    )

    report = commands.add_parser("report", help="write a run's report as one self-contained HTML file")
    report.add_argument("run", type=Path)
    report.add_argument("--out", type=Path, required=True, help="the .html file to write")
    report.add_argument(
        "--data", type=Path, default=None, help="where the run's image folder is now, if moved"
    )


def cmd_explain(args) -> int:
    from finetune_gui.core.data.images import ImageReadError
    from finetune_gui.core.errors import UserError
    from finetune_gui.core.files import require_writable
    from finetune_gui.core.insight.gradcam import explain_image, write_png
    from finetune_gui.core.run.folder import RunFolder

    if not args.image.is_file():
        raise UserError(f"No such image file: {args.image}.")
    if args.out.suffix.lower() != ".png":
        raise UserError(f"The heatmap is written as a PNG picture: give --out a name ending in "
                        f".png (not {args.out.name}).")
    require_writable(args.out)
    run = RunFolder.open(args.run)
    try:
        explained = explain_image(run, args.image, args.class_name)
    except ImageReadError as exc:
        raise UserError(f"{args.image} cannot be read ({exc.reason}).") from exc
    written = write_png(explained.overlay, args.out)
    print(
        f"{args.image}: {explained.label} {explained.probability:.1%}; heatmap of what points to "
        f"{explained.label} written to {written}"
    )
    return EXIT_OK


def cmd_suspects(args) -> int:
    from finetune_gui.core.files import require_writable
    from finetune_gui.core.insight.suspects import review_suspects, suspects_csv
    from finetune_gui.core.run.folder import RunFolder

    if args.csv is not None:
        require_writable(args.csv)
    run = RunFolder.open(args.run)
    review = review_suspects(run, data_root=args.data,
                             progress=TerminalProgress(enabled=not args.json))
    if args.json:
        print(json.dumps([s.to_dict() for s in review.suspects], indent=2, ensure_ascii=False))
        return EXIT_OK
    if args.csv is not None:
        from finetune_gui.core.files import atomic_write_text

        atomic_write_text(args.csv, suspects_csv(review.suspects))
        print(f"wrote {args.csv}: {counted(len(review.suspects), 'suspect label')} among "
              f"{review.images} images, surest first")
        return EXIT_OK
    print(f"{counted(len(review.suspects), 'suspect label')} among {review.images} images, "
          f"surest first.")
    if review.suspects:
        print(f"{'how sure':>8}  {'labelled':<14} {'looks like':<14} {'used for':<8}  path")
    for s in review.suspects:
        print(f"{s.sureness:>8.0%}  {s.given_label:<14} {s.suggested_label:<14} "
              f"{s.split:<8}  {s.path}")
    if review.saw_labels:
        print("note: this run trained the network's own layers on these labels, so some wrong "
              "labels among its training images may have been learned and are not listed.")
    return EXIT_OK


def cmd_report(args) -> int:
    from finetune_gui.core.insight.report import write_report

    written = write_report(args.run, args.out, data_root=args.data, progress=TerminalProgress())
    print(f"wrote {written}")
    return EXIT_OK


COMMANDS = {"explain": cmd_explain, "suspects": cmd_suspects, "report": cmd_report}
