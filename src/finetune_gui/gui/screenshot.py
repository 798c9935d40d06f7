"""`--screenshot FILE --page NAME [NAME ...] [--data FOLDER]`: open the demo images (or FOLDER)
offscreen, get each page into a representative state (one short real training run for
train/results/export), save a PNG of each, exit. The frozen app's smoke test drives the window
this way."""

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


TRAINED_PAGES = ("train", "results", "export")


def page_targets(target: Path, pages: list[str]) -> dict[str, Path]:
    """Where each page's PNG goes: `target` itself for one page; for several, `target` with
    "-<page>" before its suffix (window.png -> window-train.png, window-results.png)."""
    pages, target = list(dict.fromkeys(pages)), Path(target)
    if len(pages) == 1:
        return {pages[0]: target}
    return {page: target.with_name(f"{target.stem}-{page}{target.suffix or '.png'}")
            for page in pages}


class ScreenshotDirector(QObject):
    """Walks the window through the steps each page needs, then grabs it. Pages after a
    training run (train, results, export) share one run: it is trained once, when the first of
    them comes up."""

    def __init__(self, window: MainWindow, targets: dict[str, Path]) -> None:
        super().__init__(window)
        self.window = window
        self.queue = list(targets.items())
        self.page = ""
        self.target = Path()
        self.exit_code = 1
        self._trained = False
        self._gallery_ready = False

    def begin(self) -> None:
        data = self.window.pages["data"]
        if self.window.state.scan is not None:
            self._after_scan()
        else:
            data.scan_finished.connect(self._after_scan)

    def _after_scan(self) -> None:
        self.window.pages["data"].scan_finished.disconnect()
        self._next()

    def _next(self) -> None:
        """The next page in the queue; exit 0 once every page is saved."""
        if not self.queue:
            self.exit_code = 0
            QApplication.instance().exit(0)
            return
        self.page, self.target = self.queue.pop(0)
        if self.page in TRAINED_PAGES and not self._trained:
            self.window.state.update_settings(**SCREENSHOT_SETTINGS)
            train = self.window.pages["train"]
            train.run_finished.connect(self._after_training)
            # The results page fills its gallery in the background after the run; whichever
            # page comes first, the results page must know when it is ready.
            self.window.pages["results"].gallery_filled.connect(self._on_gallery_filled)
            train.start_training()
            return
        self._show()

    def _show(self) -> None:
        page = self.page
        if page == "model":
            model = self.window.pages["model"]
            self._capture_when(model.network_described, 400)
            self.window.go_to("model")
        elif page == "augment":
            augment = self.window.pages["augment"]
            self.window.state.update_settings(augment="standard")
            # A triangle shows rotation and flips; a circle looks the same after them.
            triangle = next((i for i in range(augment.image_choice.count())
                             if augment.image_choice.itemText(i).startswith("triangles")), 0)
            augment.image_choice.setCurrentIndex(triangle)
            self._capture_when(augment.preview_shown, 200)
            self.window.go_to("augment")
        elif page == "results":
            results = self.window.pages["results"]
            if not self.window.state.current_run.report.misclassified:
                self._capture(300)
                return
            # The most confident mistake, chosen, with its heatmap beside the gallery.
            self._capture_when(results.heatmap_panel.shown, 300)
            if self._gallery_ready:
                self._choose_first_mistake()
        elif page == "export":
            trial = self.window.pages["export"].try_panel
            examples = [s.examples[0] for s in self.window.state.scan.summaries]
            # The first tried image is explained at once: capture with its heatmap in place.
            self._capture_when(trial.heatmap_panel.shown, 300)
            trial.predict(examples)
        else:
            self._capture(300)

    def _after_training(self, status: str) -> None:
        if status != "completed":
            print(f"screenshot: training ended with status {status}", file=sys.stderr)
            QApplication.instance().exit(1)
            return
        self._trained = True
        self._show()

    def _on_gallery_filled(self) -> None:
        self._gallery_ready = True
        if self.page == "results":
            self._choose_first_mistake()

    def _choose_first_mistake(self) -> None:
        gallery = self.window.pages["results"].gallery
        gallery.setCurrentRow(-1)
        gallery.setCurrentRow(0)

    def _capture_when(self, signal, delay_ms: int) -> None:
        """Capture the current page the first time `signal` fires (and not again: a later
        page must not be saved under this one's name)."""

        def fire(*_args) -> None:
            signal.disconnect(fire)
            self._capture(delay_ms)

        signal.connect(fire)

    def _capture(self, delay_ms: int) -> None:
        self.window.go_to(self.page)
        QTimer.singleShot(delay_ms, self._save)

    def _save(self) -> None:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        if not self.window.grab().save(str(self.target)):
            print(f"screenshot: could not write {self.target}", file=sys.stderr)
            self.exit_code = 1
            QApplication.instance().exit(1)
            return
        self._next()


def take_screenshot(target: Path, pages: str | list[str], data: Path | None = None) -> int:
    """Run the app on `data` (default: the demo images) in a throw-away profile; write a PNG of
    each page (see `page_targets`); 0 on success."""
    app = QApplication.instance()
    with tempfile.TemporaryDirectory(prefix="finetune-gui-screenshot-") as scratch:
        # A throw-away settings file: a screenshot must not change the user's own preferences.
        prefs = QSettings(str(Path(scratch) / "preferences.ini"), QSettings.Format.IniFormat)
        window = MainWindow(prefs, Path(scratch) / "runs")
        window.resize(*WINDOW_SIZE)
        window.show()
        window.start()
        folder = Path(data).expanduser().resolve() if data else demo_dataset_dir()
        if window.state.data_dir != folder:
            window.state.set_data_dir(folder)
        pages = [pages] if isinstance(pages, str) else list(pages)
        director = ScreenshotDirector(window, page_targets(Path(target), pages))
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
