"""`--screenshot FILE --page NAME`: open the demo project offscreen, get the page into a
representative state (a short real training run for train/results/export), save a PNG, exit."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, QTimer
from PySide6.QtWidgets import QApplication

from finetune_gui.demo import demo_dataset_dir
from finetune_gui.gui.main_window import MainWindow

TIMEOUT_MS = 15 * 60 * 1000
# Tiny and quick on a laptop CPU; weights "none" because a screenshot must not need the internet.
SCREENSHOT_SETTINGS = {
    "backbone": "mobilenetv3small",
    "weights": "none",
    "image_size": 32,
    "epochs_head": 2,
    "epochs_finetune": 1,
    "batch_size": 16,
}
WINDOW_SIZE = (1280, 860)


class ScreenshotDirector(QObject):
    """Walks the window through the steps the page needs, then grabs it."""

    def __init__(self, window: MainWindow, page: str, target: Path) -> None:
        super().__init__(window)
        self.window = window
        self.page = page
        self.target = target
        self.exit_code = 1

    def begin(self) -> None:
        data = self.window.pages["data"]
        if self.window.state.scan is not None:
            self._after_scan()
        else:
            data.scan_finished.connect(self._after_scan)

    def _after_scan(self) -> None:
        self.window.pages["data"].scan_finished.disconnect()
        page = self.page
        if page == "model":
            model = self.window.pages["model"]
            model.network_described.connect(lambda: self._capture(400))
            self.window.go_to("model")
        elif page == "augment":
            augment = self.window.pages["augment"]
            self.window.state.update_settings(augment="standard")
            # A triangle shows rotation and flips; a circle looks the same after them.
            triangle = next((i for i in range(augment.image_choice.count())
                             if augment.image_choice.itemText(i).startswith("triangles")), 0)
            augment.image_choice.setCurrentIndex(triangle)
            augment.preview_shown.connect(lambda: self._capture(200))
            self.window.go_to("augment")
        elif page in ("train", "results", "export"):
            self.window.state.update_settings(**SCREENSHOT_SETTINGS)
            train = self.window.pages["train"]
            train.run_finished.connect(self._after_training)
            train.start_training()
        else:
            self._capture(300)

    def _after_training(self, status: str) -> None:
        if status != "completed":
            print(f"screenshot: training ended with status {status}", file=sys.stderr)
            QApplication.instance().exit(1)
            return
        if self.page == "results":
            results = self.window.pages["results"]
            if not self.window.state.current_run.report.misclassified:
                self._capture(300)
                return
            # The most confident mistake, chosen, with its heatmap beside the gallery.
            results.heatmap_panel.shown.connect(lambda: self._capture(300))
            results.gallery_filled.connect(lambda: results.gallery.setCurrentRow(0))
        elif self.page == "export":
            trial = self.window.pages["export"].try_panel
            examples = [s.examples[0] for s in self.window.state.scan.summaries]
            # The first tried image is explained at once: capture with its heatmap in place.
            trial.heatmap_panel.shown.connect(lambda: self._capture(300))
            trial.predict(examples)
        else:
            self._capture(300)

    def _capture(self, delay_ms: int) -> None:
        self.window.go_to(self.page)
        QTimer.singleShot(delay_ms, self._save)

    def _save(self) -> None:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        ok = self.window.grab().save(str(self.target))
        self.exit_code = 0 if ok else 1
        if not ok:
            print(f"screenshot: could not write {self.target}", file=sys.stderr)
        QApplication.instance().exit(self.exit_code)


def take_screenshot(target: Path, page: str) -> int:
    """Run the app on the demo images in a throw-away profile; write `target`; 0 on success."""
    app = QApplication.instance()
    with tempfile.TemporaryDirectory(prefix="finetune-gui-screenshot-") as scratch:
        # A throw-away settings file: a screenshot must not change the user's own preferences.
        prefs = QSettings(str(Path(scratch) / "preferences.ini"), QSettings.Format.IniFormat)
        window = MainWindow(prefs, Path(scratch) / "runs")
        window.resize(*WINDOW_SIZE)
        window.show()
        window.start()
        if window.state.data_dir != demo_dataset_dir():
            window.state.set_data_dir(demo_dataset_dir())
        director = ScreenshotDirector(window, page, Path(target))
        QTimer.singleShot(0, director.begin)
        # A timer that is stopped on the way out: a fire-and-forget one outlived the screenshot
        # and, 15 minutes later, exited whatever event loop the process was then running (in
        # the test suite: every later test's wait, which then all failed).
        timeout = QTimer()
        timeout.setSingleShot(True)
        timeout.timeout.connect(lambda: (print("screenshot: timed out", file=sys.stderr),
                                         app.exit(1)))
        timeout.start(TIMEOUT_MS)
        try:
            code = app.exec()
        finally:
            timeout.stop()
        window.close()
        return code if code else director.exit_code
