"""`train`: a new run from a folder, from a project saved by the window, or the rest of an
interrupted run."""

from __future__ import annotations

import signal
from pathlib import Path

from finetune_gui.cli.settings_options import add_setting_options, settings_from_args
from finetune_gui.cli.terminal import EXIT_CANCELLED, EXIT_OK, TerminalProgress


def add_parsers(commands) -> None:
    """Add the `train` command, with one option per training setting."""
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
    add_setting_options(train)
    train.add_argument(
        "--auto",
        action="store_true",
        help="try unfreeze depths, learning rates and head regularisation on the validation "
        "images first, then train the best (its settings are saved with the run)",
    )
    train.add_argument(
        "--budget", type=float, default=None, metavar="MINUTES",
        help="time for --auto to try settings (default 10)",
    )
    train.add_argument(
        "--kfold",
        action="store_true",
        help="folders under 2,000 images: also a 5-fold estimate of the head on the frozen "
        "base over all training and validation images (more images than the test split)",
    )


def cmd_train(args) -> int:
    from finetune_gui.core.errors import UserError
    from finetune_gui.core.events import CancelToken
    from finetune_gui.core.run.evaluation import format_report
    from finetune_gui.core.training.job import TrainingJob

    cancel = CancelToken()
    progress = TerminalProgress(last_line_on_stdout=True)  # the result's line, printed below
    if args.budget is not None and not args.auto:
        raise UserError("--budget MINUTES sets the time for --auto; add --auto or leave it out.")
    if args.budget is not None and not args.budget > 0:  # refused before any work is done
        raise UserError(f"The --budget must be a positive number of minutes; got {args.budget}.")
    if args.auto and (args.resume or args.project):
        raise UserError("--auto chooses settings for a new run from a folder: use FOLDER --out RUN.")
    if args.resume:
        if args.folder or args.project or args.out:
            raise UserError("--resume RUN takes no folder, --project or --out: it continues RUN.")
        job = TrainingJob.resume(args.resume, progress=progress, cancel=cancel)
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
            args.folder, settings_from_args(args), args.out, progress=progress, cancel=cancel,
            kfold=args.kfold,
        )
        if args.auto:
            job = _AutoRun(args, job.settings, progress, cancel)
    # Ctrl-C asks the run to stop after the current batch and keep its best weights.
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    try:
        result = job.run()
    finally:
        signal.signal(signal.SIGINT, previous)
    progress.finish(result.message)
    if result.report is not None:
        print(format_report(result.report))
    if result.wrote_run_folder:  # a line of its own: a message may end in a command to type
        print(f"Run folder: {result.run_dir}")
    print(result.message)  # the last line, where scripts read it
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
            kfold=self.args.kfold,
        )


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


COMMANDS = {"train": cmd_train}
