"""Starting the window: `run_app(argv)` is what `finetune-gui` (no subcommand) calls."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from finetune_gui.gui.state import STEPS

APP_NAME = "finetune-gui"


def default_runs_root() -> Path:
    """Where runs go unless a project says otherwise: the user's data folder."""
    override = os.environ.get("FINETUNE_GUI_RUNS_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "runs"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=APP_NAME, description="Open the finetune-gui window.")
    parser.add_argument("project", nargs="?", type=Path,
                        help="a project file to open, or a folder of images to check")
    parser.add_argument("--screenshot", type=Path, metavar="FILE",
                        help="open the demo project offscreen, save a PNG of --page, and exit")
    parser.add_argument("--page", choices=STEPS, nargs="+", default=["data"], metavar="PAGE",
                        help="the pages to show (with --screenshot): "
                        f"{', '.join(STEPS)}; with several, FILE-<page>.png for each, and the "
                        "pages after training share one run")
    parser.add_argument("--data", type=Path, metavar="FOLDER",
                        help="the image folder to open (with --screenshot); default: the demo "
                        "images")
    return parser.parse_args(argv)


def install_excepthook() -> None:
    """Unexpected exceptions in slots go to the log file and to a dialog that names it."""
    previous = sys.excepthook

    def hook(kind, value, tb) -> None:
        if issubclass(kind, KeyboardInterrupt):
            previous(kind, value, tb)
            return
        trace = "".join(traceback.format_exception(kind, value, tb))
        from PySide6.QtCore import QThread
        from PySide6.QtWidgets import QApplication

        from finetune_gui.gui.logfile import log_trace
        from finetune_gui.gui.widgets.error_dialog import show_error

        app = QApplication.instance()
        if app is None or QThread.currentThread() is not app.thread():
            log_trace("Unexpected error outside the GUI thread", trace)
            return
        show_error(app.activeWindow(), value, trace, "handling your last action",
                   title="Unexpected problem")

    sys.excepthook = hook


def no_screen_message(environ=os.environ, system: str = sys.platform) -> str | None:
    """Why the window cannot open here, or None. Without this check Qt aborts the process with
    "could not connect to display" and a core dump."""
    if not system.startswith("linux") or environ.get("QT_QPA_PLATFORM"):
        return None
    if environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"):
        return None
    return ("No screen was found (neither DISPLAY nor WAYLAND_DISPLAY is set), so the window "
            "cannot open. Run finetune-gui on a desktop, or use the command line: "
            "finetune-gui --help.")


def run_app(argv: list[str]) -> int:
    """Open the window (or take a screenshot); return the process exit code."""
    args = parse_args(list(argv))
    if args.screenshot is not None:
        # A screenshot needs no screen; an explicit platform (e.g. xcb under Xvfb) still wins.
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    elif (reason := no_screen_message()) is not None:
        print(reason, file=sys.stderr)
        return 2
    from PySide6.QtWidgets import QApplication

    from finetune_gui.gui.logfile import setup_logging
    from finetune_gui.quiet import route_warnings_to_log

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else APP_NAME])
    app.setOrganizationName(APP_NAME)
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    apply_style(app)
    collect_garbage_on_gui_thread(app)
    setup_logging()
    route_warnings_to_log()
    install_excepthook()
    if args.screenshot is not None:
        from finetune_gui.gui.screenshot import take_screenshot

        return take_screenshot(args.screenshot, args.page, args.data)

    from finetune_gui.gui.main_window import MainWindow
    from finetune_gui.gui.preferences import default_preferences

    window = MainWindow(default_preferences(), default_runs_root())
    window.show()
    window.start(args.project)
    return int(app.exec())


def collect_garbage_on_gui_thread(app) -> None:
    """Python's cyclic collector runs in whichever thread happens to allocate; when that is a
    worker thread and the garbage holds Qt objects, Qt deletes them off their thread and the
    process crashes at random (seen here: a segfault while a scan thread collected). pyqtgraph's
    GarbageCollector turns automatic collection off and collects on a GUI-thread timer."""
    from pyqtgraph.util.garbage_collector import GarbageCollector

    app.garbage_collector = GarbageCollector(interval=1.0)


def apply_style(app) -> None:
    """The app's style sheet from resources/style.qss, when present."""
    from finetune_gui.resources import resource_path

    sheet = resource_path("style.qss")
    if sheet.is_file():
        app.setStyleSheet(sheet.read_text(encoding="utf-8"))
