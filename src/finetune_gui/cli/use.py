"""`evaluate` and `predict`: a trained run applied to new images."""

from __future__ import annotations

import json
from pathlib import Path

from finetune_gui.cli.terminal import EXIT_OK, EXIT_USER_ERROR, TerminalProgress
from finetune_gui.core.words import counted


def add_parsers(commands) -> None:
    """Add the `evaluate` and `predict` commands."""
    evaluate = commands.add_parser("evaluate", help="score a trained run on a labelled folder")
    evaluate.add_argument("run", type=Path)
    evaluate.add_argument("folder", type=Path)
    evaluate.add_argument("--json", action="store_true")

    predict = commands.add_parser(
        "predict", help="classify images (or every image in folders) with a trained run"
    )
    predict.add_argument("run", type=Path)
    predict.add_argument("images", type=Path, nargs="+", help="image files and/or folders")
    predict.add_argument("--top-k", type=int, default=3)
    predict.add_argument("--json", action="store_true")
    predict.add_argument(
        "--csv", type=Path, default=None, metavar="OUT.csv",
        help="write one row per file: top class, confidence, unsure, top-k, error",
    )


def cmd_evaluate(args) -> int:
    from finetune_gui.core.run.evaluation import format_report
    from finetune_gui.core.run.folder import evaluate_folder

    report = evaluate_folder(
        args.run, args.folder, progress=TerminalProgress(enabled=not args.json)
    )
    if args.json:
        # The calibration error is worked out from the answers, not stored in the report: it
        # is added as the model card adds it.
        print(json.dumps({**report.to_dict(), **report.calibration_facts()}, indent=2,
                         ensure_ascii=False))
    else:
        print(format_report(report))
    return EXIT_OK


def cmd_predict(args) -> int:
    from finetune_gui.core.errors import SettingsError, UserError
    from finetune_gui.core.run.folder import RunFolder
    from finetune_gui.core.run.predict import PredictionCsv, list_images, predict_paths

    if args.top_k < 1:
        raise SettingsError("--top-k must be 1 or more.")
    missing = [str(p) for p in args.images if not p.exists()]
    if missing:
        raise UserError(f"No such image file or folder: {', '.join(missing)}.")
    paths: list[Path] = []
    for given in args.images:
        paths += list_images(given)[0] if given.is_dir() else [given]
    if not paths:
        raise UserError("The folders given hold no files to classify.")
    run = RunFolder.open(args.run)
    progress = TerminalProgress(enabled=not args.json)
    found = predict_paths(run, paths, top_k=args.top_k, total=len(paths), progress=progress)
    errors = unsure = count = 0
    as_json = []
    with _csv_file(args.csv) as handle:
        table = PredictionCsv(handle) if handle else None
        for p in found:
            count += 1
            errors += p.error is not None
            unsure += p.unsure is not None
            if table:
                table.write(p)
            if args.json:
                as_json.append(p.to_dict())
            elif not table:
                print(_prediction_line(p))
    if args.json:
        print(json.dumps(as_json, indent=2, ensure_ascii=False))
    elif table:
        print(
            f"wrote {args.csv}: {counted(count, 'file')}, {unsure} not sure, {errors} unreadable"
        )
    return EXIT_USER_ERROR if errors == count else EXIT_OK


def _prediction_line(p) -> str:
    if p.error:
        return f"{p.path}: cannot be read ({p.error})"
    ranked = ", ".join(f"{label} {prob:.1%}" for label, prob in p.top)
    return f"{p.path}: " + (f"not sure ({p.unsure}); " if p.unsure else "") + ranked


def _csv_file(path: Path | None):
    import contextlib

    if path is None:
        return contextlib.nullcontext(None)
    from finetune_gui.core.files import atomic_path, require_writable

    require_writable(path)

    @contextlib.contextmanager
    def opened():
        with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
            yield handle

    return opened()


COMMANDS = {"evaluate": cmd_evaluate, "predict": cmd_predict}
