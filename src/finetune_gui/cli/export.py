"""`export`: a run's model written for other programs, verified, with a model card."""

from __future__ import annotations

from pathlib import Path

from finetune_gui.cli.terminal import EXIT_OK, TerminalProgress
from finetune_gui.core.export.formats import FORMATS


def add_parsers(commands) -> None:
    """Add the `export` command."""
    export = commands.add_parser(
        "export", help="write a run's model for other programs, verified, with a model card"
    )
    export.add_argument("run", type=Path)
    export.add_argument(
        "--format", default="keras", choices=list(FORMATS),
        help="onnx and web need: pip install 'finetune-gui[onnx]'; web also needs the runtime "
        "(make web-runtime, or npm ci --prefix web) and, to check the page, Chromium",
    )
    export.add_argument(
        "--to", type=Path, required=True,
        help="a folder, or a file path ending in .keras, .tflite, .onnx or .html",
    )
    export.add_argument(
        "--data", type=Path, default=None, help="where the run's image folder is now, if moved"
    )
    export.add_argument(
        "--replace", action="store_true",
        help="replace an earlier export's files at the destination (without it, an export "
        "into a folder that holds one is refused and nothing is written)",
    )
    export.add_argument(
        "--min-agreement", type=float, default=None,
        help="share of check images on which the export must pick the Keras model's class "
        "(default 0.99; 0.9 for tflite-int8)",
    )


def cmd_export(args) -> int:
    from finetune_gui.core.export.job import export_model
    from finetune_gui.core.export.verify import check_sentence

    result = export_model(
        args.run, args.format, args.to, progress=TerminalProgress(), data_root=args.data,
        min_agreement=args.min_agreement, replace=args.replace,
    )
    for path in result.replaced:
        print(f"replaced {path}")
    for path in result.beside:
        print(f"beside {path} (the same run in another format; the model card describes both)")
    for path in result.written:
        print(f"wrote {path}")
    v = result.verification
    if v.not_checked:  # a web page without Chromium: written, never called verified
        print(check_sentence(v))
        return EXIT_OK
    print(
        f"verified on {v.n_images} {v.images}: same top class as the Keras model on "
        f"{v.agreement:.1%}, largest probability difference {v.max_abs_diff:.2g}"
    )
    return EXIT_OK


COMMANDS = {"export": cmd_export}
