"""`ensemble`: runs on the same images (and split, when they have test images) combined into one
model, saved as a run."""

from __future__ import annotations

from pathlib import Path

from finetune_gui.cli.terminal import EXIT_OK, TerminalProgress


def add_parsers(commands) -> None:
    """Add the `ensemble` command."""
    ensemble = commands.add_parser(
        "ensemble",
        help="combine two or more runs on the same images and split into one model that "
        "averages their probabilities, scored beside each member and saved as a run (runs "
        "without test images combine whatever their split; score those with evaluate)",
    )
    ensemble.add_argument("runs", type=Path, nargs="+", metavar="RUN")
    ensemble.add_argument("--out", type=Path, required=True,
                          help="the new run folder (must not exist yet, or be empty)")
    ensemble.add_argument(
        "--data", type=Path, default=None, help="where the runs' image folder is now, if moved"
    )
    ensemble.add_argument("--json", action="store_true",
                          help="print the members' and the ensemble's scores as JSON")


def cmd_ensemble(args) -> int:
    import json
    from dataclasses import asdict

    from finetune_gui.core.run.ensemble import format_result
    from finetune_gui.core.training.ensemble_run import combine_runs

    result = combine_runs(args.runs, args.out, data_root=args.data,
                          progress=TerminalProgress(enabled=not args.json))
    if args.json:
        print(json.dumps({"path": str(result.path), "test_accuracy": result.accuracy,
                          "test_images": result.report.count if result.report else 0,
                          "members": [asdict(m) for m in result.members]},
                         indent=2, ensure_ascii=False))
    else:
        print(format_result(result))
    return EXIT_OK


COMMANDS = {"ensemble": cmd_ensemble}
