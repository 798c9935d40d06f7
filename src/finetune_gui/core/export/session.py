"""The last exported run's models, kept in memory so several exports in a row load them once."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from finetune_gui.core.export.serving import write_saved_model
from finetune_gui.core.run.folder import RunFolder


@dataclass
class _LoadedModel:
    key: tuple  # model file, its mtime and size, image size: a retrained file is a new key
    model: object
    saved_model: Path | None = None


class SessionModels:
    """The last exported run's Keras model and SavedModel, kept for the next export.

    Loading a model takes seconds and writing a SavedModel traces the whole network (seconds
    for a small model, a minute for a large one); the SavedModel and all three TensorFlow Lite
    formats start from it, and the GUI often exports several formats in a row. Only the latest
    model is kept, and its SavedModel is deleted when the next model or the process comes.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entry: _LoadedModel | None = None

    def model(self, run: RunFolder):
        with self.lock:
            return self._entry(run).model

    def saved_model(self, run: RunFolder) -> Path:
        with self.lock:
            entry = self._entry(run)
            if entry.saved_model is None or not (entry.saved_model / "saved_model.pb").is_file():
                folder = Path(tempfile.mkdtemp(prefix="finetune-gui-savedmodel-")) / "saved_model"
                try:
                    write_saved_model(entry.model, run.image_size, folder)
                except BaseException:
                    shutil.rmtree(folder.parent, ignore_errors=True)
                    raise
                entry.saved_model = folder
            return entry.saved_model

    def forget(self) -> None:
        if self.entry is not None and self.entry.saved_model is not None:
            shutil.rmtree(self.entry.saved_model.parent, ignore_errors=True)
        self.entry = None

    def _entry(self, run: RunFolder) -> _LoadedModel:
        stat = run.model_path.stat()
        key = (str(run.model_path.resolve()), stat.st_mtime_ns, stat.st_size, run.image_size)
        if self.entry is None or self.entry.key != key:
            self.forget()
            self.entry = _LoadedModel(key, run.load_model())
        return self.entry


session_models = SessionModels()
atexit.register(session_models.forget)
