"""Where every file dialog starts: where the user's images or run are, decided here, once.

A dialog names what it asks for; the folder comes from the shared project state:

| asks for | starts in |
|---|---|
| `IMAGES`: image files, or a folder of new images | the image folder (the Data page's, else the current run's) |
| `IMAGE_FOLDER`: the image folder itself | that folder (or where it was, when it has moved) |
| `RUN_OUTPUT`: a report, an exported model | the current run's folder |
| `PROJECT`: a project file | beside the open project, else the last project folder, else beside the images |
| `WEIGHTS`: a weights file | beside the weights file chosen before, else Keras' download folder |

A folder that does not exist any more gives way to its nearest parent that does; with nothing
known, the home folder.
"""

from __future__ import annotations

from pathlib import Path

from finetune_gui.core.model.backbones import keras_models_dir, weights_kind

IMAGES = "images"
IMAGE_FOLDER = "image folder"
RUN_OUTPUT = "run output"
PROJECT = "project"
WEIGHTS = "weights"


def data_folder(state=None, run_path: Path | None = None) -> Path | None:
    """The user's image folder: the one chosen on the Data page, else the one the current run
    (or the run at `run_path`) learned from."""
    if state is not None and state.data_dir is not None:
        return Path(state.data_dir)
    if run_path is None and state is not None and state.current_run is not None:
        return _run_data(state.current_run.folder.facts)
    if run_path is not None:
        from finetune_gui.core.run.record import read_facts

        return _run_data(read_facts(run_path))
    return None


def _run_data(facts) -> Path | None:
    return Path(facts.data) if facts.data else None


def start_folder(
    purpose: str,
    state=None,
    *,
    run_path: Path | None = None,
    remembered: str | Path | None = None,
    current: str | Path | None = None,
) -> str:
    """The folder a file dialog asking for `purpose` starts in (see the module's table).

    `state` is the window's `ProjectState`; a dialog without it gives its run's folder as
    `run_path`. `remembered` is a folder the app kept for this purpose (the last project's).
    `current` is what the dialog's own field holds: typed or chosen there, it comes first.
    """
    run = run_path
    if run is None and state is not None and state.current_run is not None:
        run = state.current_run.path
    images = data_folder(state, run_path)
    candidates: list[Path | None]
    if purpose in (IMAGES, IMAGE_FOLDER):
        candidates = [images, run]
    elif purpose == RUN_OUTPUT:
        candidates = [run, images]
    elif purpose == PROJECT:
        project = state.project_path if state is not None else None
        candidates = [project.parent if project else None,
                      Path(remembered) if remembered else None,
                      images.parent if images else None]
    elif purpose == WEIGHTS:
        weights = state.settings.weights if state is not None else ""
        chosen = Path(weights).parent if weights_kind(weights) == "file" else None
        keras = keras_models_dir()
        candidates = [chosen, keras if keras.is_dir() else None, images]
    else:
        raise ValueError(f"no start folder for {purpose!r}")
    typed = str(current or "").strip()
    if typed:
        candidates.insert(0, Path(typed).expanduser())
    for candidate in candidates:
        found = _existing(candidate)
        if found is not None:
            return str(found)
    return str(Path.home())


def _existing(folder: Path | None) -> Path | None:
    """`folder`, or its nearest parent that exists (a moved folder's old place); None for
    nothing or only the file system's root left."""
    if folder is None:
        return None
    for candidate in [folder, *folder.parents]:
        if candidate.is_dir():
            return candidate if candidate.parent != candidate else None
    return None
