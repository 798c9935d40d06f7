"""GUI test fixtures: offscreen Qt, private settings and folders, a window factory, one shared run."""

from __future__ import annotations

import faulthandler
import gc
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
_private = Path(tempfile.mkdtemp(prefix="finetune-gui-gui-tests-"))
os.environ.setdefault("FINETUNE_GUI_LOG_DIR", str(_private / "logs"))

import pytest  # noqa: E402
from PySide6.QtCore import QObject, QSettings, QTimer  # noqa: E402

from finetune_gui.demo import make_shapes_dataset  # noqa: E402

TINY = {
    "backbone": "mobilenetv3small",
    "weights": "none",
    "image_size": 32,
    "epochs_head": 1,
    "epochs_finetune": 1,
    "batch_size": 16,
}


@pytest.fixture(scope="session", autouse=True)
def private_qsettings():
    """Even a QSettings made with the default constructor must not touch the user's own."""
    folder = _private / "qsettings"
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(folder))
        QSettings.setPath(fmt, QSettings.Scope.SystemScope, str(folder / "system"))
    return folder


@pytest.fixture(scope="session", autouse=True)
def garbage_collected_on_the_gui_thread(qapp):
    """As in the app (gui/app.py): windows from earlier tests must not be collected by a worker
    thread, which crashed the suite once with a segfault."""
    from finetune_gui.gui.app import collect_garbage_on_gui_thread

    collect_garbage_on_gui_thread(qapp)
    yield
    import gc

    qapp.garbage_collector.timer.stop()
    gc.enable()


@pytest.fixture
def prefs(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "preferences.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_window(qtbot, tmp_path, prefs):
    """Build (and start) a main window on private preferences; closed after the test."""
    from finetune_gui.gui.main_window import MainWindow

    windows = []

    def make(start: bool = True, settings: QSettings | None = None, wait_scan: bool = True):
        window = MainWindow(settings or prefs, tmp_path / "runs")
        qtbot.addWidget(window)
        windows.append(window)
        window.resize(1280, 860)
        window.show()
        if start:
            if wait_scan:
                with qtbot.waitSignal(window.pages["data"].scan_finished, timeout=30_000):
                    window.start()
            else:
                window.start()
        return window

    yield make
    for window in windows:
        # A test that left a job running must not leave a thread behind.
        for page in window.pages.values():
            page.shutdown()
        window.warm_up_runner.shutdown()


@pytest.fixture(scope="session")
def base_weights_file(tmp_path_factory) -> Path:
    """A weights file for MobileNetV3Small at 32 px (random weights: we are offline). Training
    from a weights file runs both phases, so the phase-2 marker can be checked."""
    from finetune_gui.core.model.backbones import build_base, get_backbone

    path = tmp_path_factory.mktemp("weights") / "mobilenetv3small-32.weights.h5"
    build_base(get_backbone("mobilenetv3small"), 32, None).save_weights(str(path))
    return path


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, base_weights_file) -> Path:
    """One real tiny run on generated shapes, made by the core (no window), shared by tests that
    read a finished run. From a weights file: the fast path, less than half the time of
    training from scratch."""
    from finetune_gui.core.settings import TrainingSettings
    from finetune_gui.core.training.job import train_folder

    data = make_shapes_dataset(tmp_path_factory.mktemp("run-data") / "data", per_class=16,
                               size=32, seed=3)
    out = tmp_path_factory.mktemp("runs") / "shared-run"
    settings = TrainingSettings(**{**TINY, "weights": str(base_weights_file),
                                   "unfreeze_blocks": 1})
    result = train_folder(data, settings, out)
    assert result.status == "completed"
    return out


class GapMeter(QObject):
    """A 20 ms timer that records the longest time between two of its ticks: how long the
    GUI thread's event loop was blocked.

    `longest_busy` is the most CPU time the GUI thread itself used between two ticks: work done
    on the GUI thread, which is what a stall test guards. It does not grow when a loaded machine
    (2 cores shared by a training child process and other programs) leaves the thread waiting
    for a core, which stretches `longest` by hundreds of milliseconds at times; so tests bound
    `longest_busy` tightly and `longest` only generously (a freeze, not a slow scheduler).

    Each tick re-arms faulthandler's watchdog, so when the loop stalls past `dump_after`, the
    stacks of all threads at that moment are written to `stacks` (shown when a test fails).
    """

    def __init__(self, stacks_file: Path, interval_ms: int = 20, dump_after: float = 0.15):
        super().__init__()
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.longest = 0.0
        self.longest_busy = 0.0  # the most GUI-thread CPU time spent between two ticks
        self.ticks = 0
        self.long_gaps: list[tuple[float, float]] = []
        self.long_collections: list[tuple[int, float]] = []
        self._gc_started = 0.0
        self._last = self._last_cpu = 0.0
        self._dump_after = dump_after
        self._stacks_path = stacks_file
        self._stacks = open(stacks_file, "w")  # noqa: SIM115 - faulthandler needs a real file

    def start(self) -> None:
        # The app collects garbage on a GUI-thread timer (gui/app.py), automatic collection off.
        # Earlier tests of this process that ran no event loop left their garbage uncollected
        # (a generation-1 collection of it took 0.384 s once, inside this meter's window): it
        # is collected before measuring, so only the work measured here counts.
        gc.collect()
        self._last, self._last_cpu = time.perf_counter(), time.thread_time()
        self.timer.start()
        gc.callbacks.append(self._on_gc)
        faulthandler.dump_traceback_later(self._dump_after, repeat=False, file=self._stacks)

    def stop(self) -> None:
        self.timer.stop()
        faulthandler.cancel_dump_traceback_later()
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict) -> None:
        """Garbage collections that stop every thread for a while (a suspect in any stall)."""
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        took = time.perf_counter() - self._gc_started
        if took > 0.05:
            self.long_collections.append((info["generation"], round(took, 3)))

    def _tick(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        self.longest = max(self.longest, now - self._last)
        self.longest_busy = max(self.longest_busy, cpu - self._last_cpu)
        if now - self._last > 0.1:
            # (wall seconds, of which this thread ran on a CPU): little CPU means the thread
            # was waiting (for the operating system or a lock), not working.
            self.long_gaps.append((round(now - self._last, 3), round(cpu - self._last_cpu, 3)))
        self._last, self._last_cpu = now, cpu
        self.ticks += 1
        faulthandler.dump_traceback_later(self._dump_after, repeat=False, file=self._stacks)

    def stacks(self) -> str:
        """The thread stacks written during stalls (empty when there were none)."""
        self._stacks.flush()
        text = self._stacks_path.read_text()[:6000]
        return (f"longest gap {self.longest:.3f} s, most GUI-thread CPU between ticks "
                f"{self.longest_busy:.3f} s\n"
                f"gaps over 100 ms (wall s, GUI-thread CPU s): {self.long_gaps}\n"
                f"garbage collections over 50 ms (generation, s): {self.long_collections}\n"
                f"{text}")

    def close(self) -> None:
        self.stop()
        self._stacks.close()


@pytest.fixture
def gap_meter(tmp_path):
    meter = GapMeter(tmp_path / "stalls.txt")
    yield meter
    meter.close()
