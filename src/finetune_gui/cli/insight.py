"""`explain` and `report`: what a run's model looks at, and the whole run on one HTML page."""

from __future__ import annotations

from pathlib import Path

from finetune_gui.cli.terminal import EXIT_OK, TerminalProgress


def add_parsers(commands) -> None:
    """Add the `explain` and `report` commands."""
    explain = commands.add_parser(
        "explain", help="show which part of an image made a run's model choose a class (Grad-CAM)"
    )
    explain.add_argument("run", type=Path)
    explain.add_argument("image", type=Path)
    explain.add_argument("--out", type=Path, required=True, help="PNG file: the heatmap over the image")
    explain.add_argument(
        "--class", dest="class_name", default=None, help="explain this class (default: the predicted one)"
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
    from finetune_gui.core.insight.gradcam import explain_image, write_png
    from finetune_gui.core.run.folder import RunFolder

    if not args.image.is_file():
        raise UserError(f"No such image file: {args.image}.")
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


def cmd_report(args) -> int:
    from finetune_gui.core.insight.report import write_report

    written = write_report(args.run, args.out, data_root=args.data, progress=TerminalProgress())
    print(f"wrote {written}")
    return EXIT_OK


COMMANDS = {"explain": cmd_explain, "report": cmd_report}
