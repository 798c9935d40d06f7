"""`evaluate` and `predict`: a trained run applied to new images."""

from __future__ import annotations

import json
from pathlib import Path

from finetune_gui.cli.terminal import EXIT_OK, EXIT_USER_ERROR, TerminalProgress


def add_parsers(commands) -> None:
    """Add the `evaluate` and `predict` commands."""
    evaluate = commands.add_parser("evaluate", help="score a trained run on a labelled folder")
    evaluate.add_argument("run", type=Path)
    evaluate.add_argument("folder", type=Path)
    evaluate.add_argument("--json", action="store_true")

    predict = commands.add_parser("predict", help="classify images with a trained run")
    predict.add_argument("run", type=Path)
    predict.add_argument("images", type=Path, nargs="+")
    predict.add_argument("--top-k", type=int, default=3)
    predict.add_argument("--json", action="store_true")


def cmd_evaluate(args) -> int:
    from finetune_gui.core.run.evaluation import format_report
    from finetune_gui.core.run.folder import evaluate_folder

    report = evaluate_folder(
        args.run, args.folder, progress=TerminalProgress(enabled=not args.json)
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(format_report(report))
    return EXIT_OK


def cmd_predict(args) -> int:
    from finetune_gui.core.run.folder import predict_images

    if args.top_k < 1:
        from finetune_gui.core.errors import SettingsError

        raise SettingsError("--top-k must be 1 or more.")
    missing = [str(p) for p in args.images if not p.is_file()]
    if missing:
        from finetune_gui.core.errors import UserError

        raise UserError(f"No such image file: {', '.join(missing)}.")
    predictions = predict_images(args.run, args.images, top_k=args.top_k)
    if args.json:
        print(json.dumps([_prediction_dict(p) for p in predictions], indent=2, ensure_ascii=False))
    else:
        for p in predictions:
            if p.error:
                print(f"{p.path}: cannot be read ({p.error})")
            else:
                ranked = ", ".join(f"{label} {prob:.1%}" for label, prob in p.top)
                print(f"{p.path}: {ranked}")
    return EXIT_USER_ERROR if all(p.error for p in predictions) else EXIT_OK


def _prediction_dict(p) -> dict:
    return {
        "path": str(p.path),
        "error": p.error,
        "top": [{"label": label, "probability": round(prob, 6)} for label, prob in p.top],
    }


COMMANDS = {"evaluate": cmd_evaluate, "predict": cmd_predict}
