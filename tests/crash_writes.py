"""A write cut off halfway, in a child process: the test's stand-in for a crash or a full disk.

    python -m tests.crash_writes CASE TARGET LIMIT HOW [ARGUMENT]

runs the app's own write of `CASE` (a run's run.json, a project, a report, a model) onto
`TARGET`, and lets no file in TARGET's folder grow past LIMIT bytes from the moment the write
opens its first file there (RLIMIT_FSIZE, set by an audit hook on `open`): the kernel itself
stops the write, whatever code makes it. HOW is "killed" (SIGXFSZ at its default: the kernel
kills the process at the first byte past LIMIT, a crash mid-write) or "disk-full" (SIGXFSZ
ignored, as Python does: the write fails with EFBIG, like a full disk). Exit status: 0 the write
finished (the limit was never reached), 3 it failed with an exception (its type and message on
stdout), -SIGXFSZ killed.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
from pathlib import Path

ARMED: dict[str, bool] = {"armed": False}


def _writing(mode, flags) -> bool:
    if mode:  # builtins.open / io.open: ("path", "wb", flags)
        return any(c in mode for c in "wax+")
    return bool(flags & (os.O_WRONLY | os.O_RDWR))  # os.open: (path, None, flags)


def cut_writes_in(folder: Path, limit: int):
    """An audit hook that sets the file size limit when a file in `folder` is opened to write."""
    folder = os.path.realpath(folder)

    def hook(event: str, args: tuple) -> None:
        if event != "open" or ARMED["armed"] or not isinstance(args[0], str | bytes | os.PathLike):
            return
        path, mode, flags = args
        if _writing(mode, flags) and os.path.dirname(os.path.realpath(os.fsdecode(path))) == folder:
            ARMED["armed"] = True
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    return hook


# -- the writes, each the app's own ----------------------------------------------------------
def write_run_file(target: Path, argument: str) -> None:
    """What training does to run.json when it learns a fact (core/run/record.py)."""
    from finetune_gui.core.run.record import update_facts

    update_facts(target.parent, status="completed", message=argument)


def write_project(target: Path, argument: str) -> None:
    """Save a project (core/project.py), as the window's Save and its autosave do."""
    from finetune_gui.core.project import Project

    runs = [target.parent / f"runs/{argument}-{i:03d}" for i in range(40)]
    Project(data_dir=target.parent / "photos", runs=runs).save(target)


def write_report(target: Path, argument: str) -> None:
    """The HTML report of the run `argument` (core/insight/report.py)."""
    from finetune_gui.core.insight.report import write_report as report

    report(argument, target)


def write_model(target: Path, argument: str) -> None:
    """A run's model.keras (core/run/folder.py save_model): a small Keras model of seed
    `argument`."""
    from finetune_gui.core.run.folder import save_model

    save_model(small_model(int(argument)), target)


def small_model(seed: int):
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((64,)), keras.layers.Dense(256),
                             keras.layers.Dense(3, activation="softmax")])


CASES = {"run-file": write_run_file, "project": write_project, "report": write_report,
         "model": write_model}


def main(argv: list[str]) -> int:
    case, target, limit, how = argv[:4]
    argument = argv[4] if len(argv) > 4 else ""
    target = Path(target)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL if how == "killed" else signal.SIG_IGN)
    write = CASES[case]
    sys.addaudithook(cut_writes_in(target.parent, int(limit)))
    try:
        write(target, argument)
    except BaseException as exc:
        print(f"{type(exc).__name__}: {exc}", flush=True)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
