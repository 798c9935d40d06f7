"""The command line: `finetune-gui scan|train|evaluate|predict|export|explain|report`, or the
window with none.

A thin layer over `core`: it parses, calls, and prints. User errors print one plain line and
exit 2; anything unexpected is logged to a file and named in one line, never a bare traceback.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USER_ERROR, EXIT_CANCELLED = 0, 1, 2, 130
SUBCOMMANDS = ("scan", "train", "evaluate", "predict", "export", "explain", "report")


def build_parser() -> argparse.ArgumentParser:
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

    scan = commands.add_parser("scan", help="check an image folder and report what is usable")
    scan.add_argument("folder", type=Path)
    scan.add_argument("--json", action="store_true", help="print the full result as JSON")

    train = commands.add_parser(
        "train",
        help="fine-tune a backbone on an image folder",
        description="Train on FOLDER into --out; or repeat a project made in the window with "
        "--project FILE --out RUN; or continue an interrupted run with --resume RUN.",
    )
    train.add_argument("folder", type=Path, nargs="?")
    train.add_argument("--out", type=Path, help="new folder for the run")
    train.add_argument("--project", type=Path, help="a project file saved by the window")
    train.add_argument("--resume", type=Path, metavar="RUN", help="continue an interrupted run")
    train.add_argument(
        "--backbone", default="mobilenetv2", help="e.g. mobilenetv2, resnet50, efficientnetb0"
    )
    train.add_argument("--weights", default="imagenet", help="imagenet, none, or a weights file")
    train.add_argument(
        "--image-size", type=int, default=None, help="pixels (default: the backbone's)"
    )
    train.add_argument("--epochs-head", type=int, default=5)
    train.add_argument("--epochs-finetune", type=int, default=5)
    train.add_argument("--unfreeze-blocks", type=int, default=2)
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--lr-head", type=float, default=1e-3)
    train.add_argument("--lr-finetune", type=float, default=None, help="default: lr-head / 10")
    train.add_argument(
        "--augment", default="light", choices=["none", "light", "standard", "strong"]
    )
    train.add_argument("--val-fraction", type=float, default=0.15)
    train.add_argument("--test-fraction", type=float, default=0.15)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--dense-units", type=int, default=0, help="hidden layer in the head (0: none)"
    )
    train.add_argument("--dropout", type=float, default=0.2)
    train.add_argument("--class-weights", default="auto", choices=["auto", "on", "off"])
    train.add_argument("--patience", type=int, default=3, help="early-stopping patience in epochs")
    train.add_argument(
        "--mode",
        dest="cache_mode",
        default="fast",
        choices=["fast", "exact"],
        help="fast: compute frozen layers once (default); exact: every epoch",
    )
    train.add_argument(
        "--views",
        type=int,
        default=1,
        help="fast mode: augmented copies of each image computed once (default 1)",
    )
    train.add_argument(
        "--auto",
        action="store_true",
        help="try unfreeze depths, learning rates and head regularisation on the validation "
        "images first, then train the best (its settings are saved with the run)",
    )
    train.add_argument(
        "--kfold",
        action="store_true",
        help="folders under 2,000 images: also a 5-fold estimate of the head on the frozen "
        "base over all training and validation images (more images than the test split)",
    )
    train.add_argument(
        "--budget", type=float, default=None, metavar="MINUTES",
        help="time for --auto to try settings (default 10)",
    )  # fmt: skip

    evaluate = commands.add_parser("evaluate", help="score a trained run on a labelled folder")
    evaluate.add_argument("run", type=Path)
    evaluate.add_argument("folder", type=Path)
    evaluate.add_argument("--json", action="store_true")

    predict = commands.add_parser("predict", help="classify images with a trained run")
    predict.add_argument("run", type=Path)
    predict.add_argument("images", type=Path, nargs="+")
    predict.add_argument("--top-k", type=int, default=3)
    predict.add_argument("--json", action="store_true")

    export = commands.add_parser(
        "export", help="write a run's model for other programs, verified, with a model card"
    )
    export.add_argument("run", type=Path)
    export.add_argument(
        "--format", default="keras",
        choices=["keras", "savedmodel", "tflite", "tflite-fp16", "tflite-int8", "onnx"],
        help="onnx needs: pip install 'finetune-gui[onnx]'",
    )
    export.add_argument(
        "--to", type=Path, required=True,
        help="a folder, or a file path ending in .keras, .tflite or .onnx",
    )
    export.add_argument(
        "--data", type=Path, default=None, help="where the run's image folder is now, if moved"
    )
    export.add_argument(
        "--min-agreement", type=float, default=None,
        help="share of check images on which the export must pick the Keras model's class "
        "(default 0.99; 0.9 for tflite-int8)",
    )

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


def main(argv: list[str] | None = None) -> int:
    import multiprocessing

    # A frozen app starts the GUI's child processes from this same executable.
    multiprocessing.freeze_support()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*SUBCOMMANDS, "-h", "--help", "--version"):
        return _open_window(argv)
    args = build_parser().parse_args(argv)
    try:
        from finetune_gui.quiet import import_tensorflow_quietly, route_warnings_to_log

        route_warnings_to_log()
        import_tensorflow_quietly()
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("Stopped.", file=sys.stderr)
        return EXIT_CANCELLED
    except Exception as exc:
        return report_error(exc)


def report_error(exc: Exception) -> int:
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


# -- commands ---------------------------------------------------------------------------------
def cmd_scan(args) -> int:
    from finetune_gui.core.data.dataset import scan_folder, scan_summary_line

    scan = scan_folder(args.folder, progress=TerminalProgress(enabled=not args.json))
    if args.json:
        print(json.dumps(scan.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(scan_summary_line(scan))
        for summary in scan.summaries:
            w0, h0 = summary.min_size
            w1, h1 = summary.max_size
            print(f"  {summary.name}: {summary.count} images ({w0}x{h0} to {w1}x{h1})")
        for problem in scan.problems:
            print(f"  skipped {problem.path}: {problem.reason}")
        for warning in scan.warnings:
            print(f"warning: {warning}")
        if scan.refusal:
            print(f"error: {scan.refusal}", file=sys.stderr)
    return EXIT_OK if scan.can_train else EXIT_USER_ERROR


def cmd_train(args) -> int:
    from finetune_gui.core.errors import UserError
    from finetune_gui.core.events import CancelToken
    from finetune_gui.core.run.evaluation import format_report
    from finetune_gui.core.training.job import TrainingJob, resume_job

    cancel = CancelToken()
    progress = TerminalProgress()
    if args.budget is not None and not args.auto:
        raise UserError("--budget MINUTES sets the time for --auto; add --auto or leave it out.")
    if args.auto and (args.resume or args.project):
        raise UserError("--auto chooses settings for a new run from a folder: use FOLDER --out RUN.")
    if args.resume:
        if args.folder or args.project or args.out:
            raise UserError("--resume RUN takes no folder, --project or --out: it continues RUN.")
        job = resume_job(args.resume, progress=progress, cancel=cancel)
    elif args.project:
        if args.folder or not args.out:
            raise UserError("Use --project FILE with --out RUN and no folder.")
        job = _job_from_project(args.project, args.out, progress, cancel)
    else:
        if not args.folder or not args.out:
            raise UserError(
                "Give the image folder and --out RUN (or --project FILE, or --resume RUN)."
            )
        job = TrainingJob(
            args.folder, _settings_from_args(args), args.out, progress=progress, cancel=cancel,
            kfold=args.kfold,
        )  # fmt: skip
        if args.auto:
            job = _AutoRun(args, job.settings, progress, cancel)
    # Ctrl-C asks the run to stop after the current batch and keep its best weights.
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    try:
        result = job.run()
    finally:
        signal.signal(signal.SIGINT, previous)
    if result.report is not None:
        print(format_report(result.report))
    print(f"{result.message} Run folder: {result.run_dir}" if result.wrote_run_folder else result.message)
    return EXIT_OK if result.status == "completed" else EXIT_CANCELLED


class _AutoRun:
    """`train --auto`: choose settings within the budget, then run them (same .run() as a job)."""

    def __init__(self, args, settings, progress, cancel) -> None:
        self.args, self.settings, self.progress, self.cancel = args, settings, progress, cancel

    def run(self):
        from finetune_gui.core.training.auto import DEFAULT_BUDGET_MINUTES, auto_train

        budget = DEFAULT_BUDGET_MINUTES if self.args.budget is None else self.args.budget
        return auto_train(
            self.args.folder, self.settings, self.args.out,
            budget_minutes=budget, progress=self.progress, cancel=self.cancel,
        )  # fmt: skip


def _job_from_project(path: Path, out: Path, progress, cancel):
    from finetune_gui.core.project import Project, ProjectError
    from finetune_gui.core.training.job import TrainingJob

    project = Project.load(path)
    if project.data_dir is None:
        raise ProjectError(f"The project {path} has no image folder yet.")
    if project.data_dir_missing:
        raise ProjectError(project.missing_folder_message())
    return TrainingJob(
        project.data_dir,
        project.settings,
        out,
        progress=progress,
        cancel=cancel,
        exclude=set(project.excluded),
    )


def _settings_from_args(args):
    from finetune_gui.core.settings import TrainingSettings

    return TrainingSettings(
        backbone=args.backbone,
        weights=args.weights,
        image_size=args.image_size,
        epochs_head=args.epochs_head,
        epochs_finetune=args.epochs_finetune,
        unfreeze_blocks=args.unfreeze_blocks,
        batch_size=args.batch_size,
        lr_head=args.lr_head,
        lr_finetune=args.lr_finetune,
        augment=args.augment,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        seed=args.seed,
        dense_units=args.dense_units,
        dropout=args.dropout,
        class_weights=args.class_weights,
        patience=args.patience,
        cache_mode=args.cache_mode,
        views=args.views,
    )


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
        print(
            json.dumps(
                [
                    {
                        "path": str(p.path),
                        "error": p.error,
                        "top": [
                            {"label": label, "probability": round(prob, 6)} for label, prob in p.top
                        ],
                    }
                    for p in predictions
                ],
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        for p in predictions:
            if p.error:
                print(f"{p.path}: cannot be read ({p.error})")
            else:
                ranked = ", ".join(f"{label} {prob:.1%}" for label, prob in p.top)
                print(f"{p.path}: {ranked}")
    return EXIT_USER_ERROR if all(p.error for p in predictions) else EXIT_OK


def cmd_export(args) -> int:
    from finetune_gui.core.export.exporter import export_model

    result = export_model(
        args.run, args.format, args.to, progress=TerminalProgress(), data_root=args.data,
        min_agreement=args.min_agreement,
    )
    for path in result.written:
        print(f"wrote {path}")
    v = result.verification
    print(
        f"verified on {v.n_images} {v.images}: same top class as the Keras model on "
        f"{v.agreement:.1%}, largest probability difference {v.max_abs_diff:.2g}"
    )
    return EXIT_OK


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


COMMANDS = {
    "scan": cmd_scan,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "export": cmd_export,
    "explain": cmd_explain,
    "report": cmd_report,
}


class TerminalProgress:
    """Core events as a progress bar with ETA on a terminal, as plain lines elsewhere."""

    def __init__(self, enabled: bool = True, stream=None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last_draw = 0.0
        self.stage_started = time.monotonic()

    def __call__(self, event) -> None:
        if not self.enabled:
            return
        from finetune_gui.core import events as ev

        if isinstance(event, ev.LogMessage):
            self._line(("warning: " if event.level == "warning" else "") + event.text)
        elif isinstance(event, ev.StageStarted):
            self.stage_started = time.monotonic()
            if event.text:
                self._line(event.text)
        elif isinstance(event, ev.StageProgress):
            elapsed = time.monotonic() - self.stage_started
            eta = elapsed / event.done * (event.total - event.done) if event.done else None
            self._bar(event.stage, event.done, event.total, eta)
        elif isinstance(event, ev.BatchEnded):
            self._bar(
                f"epoch {event.epoch} ({event.phase})",
                event.batch,
                event.batches,
                event.eta_seconds,
                f"loss {event.loss:.4f}",
            )
        elif isinstance(event, ev.EpochEnded):
            parts = [f"{k} {v:.4f}" for k, v in event.metrics.items() if k != "lr"]
            self._line(f"epoch {event.epoch} ({event.phase}): " + ", ".join(parts))

    def _bar(self, label: str, done: int, total: int, eta: float | None, extra: str = "") -> None:
        if not self.tty:
            return
        now = time.monotonic()
        if done < total and now - self.last_draw < 0.1:
            return
        self.last_draw = now
        width = 30
        filled = int(width * done / max(total, 1))
        eta_text = f" ETA {format_seconds(eta)}" if eta is not None else ""
        self.stream.write(
            f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}{eta_text} {extra}\033[K"
        )
        self.stream.flush()

    def _line(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = round(seconds)
    return (
        f"{seconds // 60}:{seconds % 60:02d}"
        if seconds < 3600
        else f"{seconds // 3600}h{seconds // 60 % 60:02d}m"
    )


if __name__ == "__main__":
    raise SystemExit(main())
