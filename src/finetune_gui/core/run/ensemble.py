"""Ensembles: several runs on the same images and split, combined into one model that averages
their probabilities, scored on their shared test split beside each member, saved as a run.

The saved `model.keras` is one self-contained Keras model: the members' whole models nested
inside (their preprocessing included), each behind a resize when its input size differs from
the ensemble's, and an `Average` layer named `probabilities`. So it loads in plain Keras and
exports and verifies like any run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from finetune_gui.core.errors import EnsembleError, RunFolderError, UserError
from finetune_gui.core.events import (
    CancelToken,
    LogMessage,
    ProgressCallback,
    StageProgress,
    StageStarted,
    check_cancel,
    ignore_progress,
)
from finetune_gui.core.files import give_user_permissions
from finetune_gui.core.run import folder as rf
from finetune_gui.core.run.evaluation import EvaluationReport, build_report
from finetune_gui.core.run.folder import RunFolder

ENSEMBLE_FILE = "ensemble.json"
METHOD = "mean of the members' class probabilities"
CHUNK = 16  # images per forward pass: every member's activations are alive at once


@dataclass(frozen=True)
class MemberScore:
    """One member as the ensemble sees it: scored on the shared test split, now."""

    name: str  # readable: network · data folder · time · accuracy
    path: str
    backbone: str
    image_size: int
    resized_inside: bool  # its input is resized from the ensemble's input size
    test_accuracy: float
    recorded_test_accuracy: float | None  # what the member's own metrics.json says


@dataclass(frozen=True)
class EnsembleResult:
    path: Path
    members: list[MemberScore]
    report: EvaluationReport  # the ensemble's own, on the shared test split

    @property
    def accuracy(self) -> float:
        return self.report.accuracy


def read_ensemble(run: RunFolder) -> dict | None:
    """The members and method of an ensemble run (None for a run trained on its own)."""
    source = run.path / ENSEMBLE_FILE
    if not source.is_file():
        return None
    try:
        return json.loads(source.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise EnsembleError(f"The ensemble file {source} is damaged: {exc}.") from exc


def check_combinable(runs: list[RunFolder]) -> dict:
    """The members' shared split.json (as a dict); refuse, in one sentence, runs that differ."""
    if len(runs) < 2:
        raise EnsembleError(f"Combining needs at least two runs; got {len(runs)}.")
    seen: dict[Path, RunFolder] = {}
    for run in runs:
        key = run.path.resolve()
        if key in seen:
            raise EnsembleError(f"The run {run.path} is given twice; give each run once.")
        seen[key] = run
    first, splits = runs[0], [_split_of(run) for run in runs]
    for run, split in zip(runs[1:], splits[1:], strict=True):
        if run.classes != first.classes:
            raise EnsembleError(
                f"These runs cannot be combined: {first.path.name} has the classes "
                f"{', '.join(first.classes)} but {run.path.name} has {', '.join(run.classes)}.")
        if split.get("root") != splits[0].get("root"):
            raise EnsembleError(
                f"These runs cannot be combined: {first.path.name} learned from "
                f"{splits[0].get('root')} but {run.path.name} from {split.get('root')}.")
        if any(_part(split, p) != _part(splits[0], p) for p in ("train", "val", "test")):
            raise EnsembleError(
                f"These runs cannot be combined: {first.path.name} and {run.path.name} split "
                f"the images into training, validation and test differently, so no test image "
                f"is unseen by every member.")
    if not splits[0].get("test"):
        raise EnsembleError(
            "These runs have no test images, so the ensemble cannot be scored; train them with "
            "a test share above 0.")
    return splits[0]


def _split_of(run: RunFolder) -> dict:
    if not rf.has_split(run.path):
        raise EnsembleError(
            f"The run {run.path} has no list of its images, so it cannot be told which images it "
            f"trained on; it cannot join an ensemble.")
    try:
        return rf.read_split_record(run.path)
    except RunFolderError as exc:
        raise EnsembleError(str(exc)) from exc


def _part(split: dict, name: str) -> list:
    return sorted((str(path), int(label)) for path, label in split.get(name, []))


def ensemble_size(runs: list[RunFolder]) -> int:
    """The ensemble's input size: the largest member's, so no member gets an upscaled image."""
    return max(run.image_size for run in runs)


def build_ensemble_model(runs: list[RunFolder], models: list | None = None):
    """One Keras model: raw pixels at the largest member size in, the members' mean out."""
    import keras

    size = ensemble_size(runs)
    models = models if models is not None else [_load_member(run) for run in runs]
    inputs = keras.Input((size, size, 3), name="pixels")
    outputs = []
    for number, (run, member) in enumerate(zip(runs, models, strict=True), start=1):
        # Two members of one backbone share a model name; the names inside a model must differ.
        member.name = f"member_{number}"
        member.trainable = False
        x = inputs
        if run.image_size != size:
            x = keras.layers.Resizing(run.image_size, run.image_size, interpolation="bilinear",
                                      name=f"resize_for_member_{number}")(x)
        outputs.append(member(x, training=False))
    average = keras.layers.Average(name="probabilities")(outputs)
    return keras.Model(inputs, average, name=f"ensemble_of_{len(runs)}"), outputs


def _load_member(run: RunFolder):
    """A member's model without its optimizer: saved inside the ensemble, the optimizer's
    variables would only grow the file and warn when it is loaded."""
    import keras

    try:
        return keras.models.load_model(run.model_path, compile=False)
    except Exception as exc:  # zip, h5 and Keras errors alike mean "damaged"
        raise EnsembleError(f"The model file {run.model_path} cannot be loaded: {exc}") from exc


def combine_runs(
    runs: list[RunFolder | Path | str],
    out: Path | str,
    *,
    data_root: Path | str | None = None,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> EnsembleResult:
    """Combine `runs` into a new run folder `out`, scored on their shared test split.

    `data_root` is where the runs' images are now, if their folder was moved.
    """
    from finetune_gui.core.data.split import DatasetSplit
    from finetune_gui.core.run.compare import readable_name

    folders = [r if isinstance(r, RunFolder) else RunFolder.open(r) for r in runs]
    shared = check_combinable(folders)
    out = Path(out).expanduser()
    _check_out(out, folders)
    split = DatasetSplit.from_dict(shared, Path(data_root).expanduser() if data_root else None)
    missing = [str(p) for p, _ in split.test if not p.is_file()]
    if missing:
        raise EnsembleError(
            f"{len(missing)} of the {len(split.test)} test images are no longer in "
            f"{split.root} (for example {missing[0]}), so the ensemble cannot be scored; put "
            f"them back or give the folder's new place.")
    size = ensemble_size(folders)
    progress(LogMessage(f"Combining {len(folders)} runs at {size} px: loading their models…"))
    check_cancel(cancel)
    import keras

    ensemble, member_outputs = build_ensemble_model(folders)
    scorer = keras.Model(ensemble.input, [*member_outputs, ensemble.output])
    images = _decode([p for p, _ in split.test], size, progress, cancel)
    y_true = np.array([label for _, label in split.test], dtype=int)
    probabilities = _predict_all(scorer, images, len(folders) + 1, progress, cancel)
    paths = [p for p, _ in split.test]
    report = build_report(folders[0].classes, y_true, probabilities[-1], paths)
    members = []
    for run, member_probabilities in zip(folders, probabilities[:-1], strict=True):
        recorded = run.report
        members.append(MemberScore(
            name=readable_name(run), path=str(run.path), backbone=run.settings.backbone,
            image_size=run.image_size, resized_inside=run.image_size != size,
            test_accuracy=float(np.mean(member_probabilities.argmax(axis=1) == y_true)),
            recorded_test_accuracy=recorded.accuracy if recorded else None))
    check_cancel(cancel)
    _write_run(out, ensemble, folders, shared, report, members, size)
    progress(LogMessage(
        f"Ensemble test accuracy {report.accuracy:.1%} on {report.count} images; members: "
        + ", ".join(f"{m.test_accuracy:.1%}" for m in members) + f". Saved in {out}."))
    return EnsembleResult(out, members, report)


def _check_out(out: Path, folders: list[RunFolder]) -> None:
    if any(out.resolve() == run.path.resolve() for run in folders):
        raise EnsembleError(f"Cannot save the ensemble over its member {out}; choose a new folder.")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise EnsembleError(
            f"Cannot save the ensemble in {out}: something is already there; choose a new folder.")
    if not out.parent.is_dir():
        raise EnsembleError(
            f"Cannot save the ensemble in {out}: the folder {out.parent} does not exist.")


def _decode(paths: list[Path], size: int, progress, cancel) -> np.ndarray:
    from finetune_gui.core.data.pipeline import decode_images

    return np.asarray(decode_images(paths, size, progress=progress, cancel=cancel,
                                    stage="evaluate"))


def _predict_all(scorer, images: np.ndarray, outputs: int, progress, cancel) -> list[np.ndarray]:
    """Each output of `scorer` (the members', then the mean) on all images."""
    progress(StageStarted("ensemble", len(images), f"Scoring {len(images)} test images"))
    parts: list[list[np.ndarray]] = [[] for _ in range(outputs)]
    for start in range(0, len(images), CHUNK):
        check_cancel(cancel)
        results = scorer(images[start:start + CHUNK].astype("float32"), training=False)
        for part, result in zip(parts, results, strict=True):
            part.append(np.asarray(result, dtype="float32"))
        progress(StageProgress("ensemble", min(start + CHUNK, len(images)), len(images)))
    return [np.concatenate(part) for part in parts]


def _write_run(out: Path, model, folders: list[RunFolder], split: dict,
               report: EvaluationReport, members: list[MemberScore], size: int) -> None:
    """Every file in a hidden folder beside `out`, then one rename: never half an ensemble."""
    largest = next(run for run in folders if run.image_size == size)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
    try:
        give_user_permissions(staging)
        model.save(staging / rf.MODEL_FILE)
        rf.write_labels(staging / rf.LABELS_FILE, folders[0].classes)
        rf.write_json(staging / rf.METRICS_FILE, report.to_dict())
        # The settings of the member whose size the ensemble takes: the run's input size, and
        # the settings a model card or the Compare table reads; the members are in ensemble.json.
        rf.write_json(staging / rf.SETTINGS_FILE,
                      largest.settings.with_changes(image_size=size).to_dict())
        rf.write_json(staging / rf.SPLIT_FILE, split)
        rf.write_json(staging / ENSEMBLE_FILE, {
            "method": METHOD,
            "image_size": size,
            "test_accuracy": report.accuracy,
            "members": [asdict(m) for m in members],
        })
        rf.write_json(staging / rf.RUN_FILE, rf.run_facts(
            "completed", data=folders[0].facts.data or split.get("root"),
            ensemble_of=[m.path for m in members], image_size=size))
        if out.is_dir():
            out.rmdir()  # empty (checked): a folder cannot be renamed over a folder
        os.replace(staging, out)
    except OSError as exc:
        from finetune_gui.core.files import _describe_os_error

        raise UserError(_describe_os_error(out / rf.MODEL_FILE, exc)) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def ensemble_card_lines(ensemble: dict | None) -> list[str]:
    """The model card's section on an ensemble's members (nothing for a single run)."""
    if not ensemble:
        return []
    members = ensemble["members"]
    lines = [
        "## Ensemble",
        "",
        f"This model averages the class probabilities of {len(members)} runs, all inside the "
        f"file. "
        f"The backbone and training above are those of the member whose input size "
        f"({ensemble['image_size']} px) the ensemble takes; each member's own is below. Test "
        f"accuracy on the shared test split:",
        "",
        "| member | network | input | test accuracy |",
        "|---|---|---|---|",
    ]
    for member in members:
        resized = f", resized inside from {ensemble['image_size']} px" \
            if member["resized_inside"] else ""
        lines.append(f"| `{Path(member['path']).name}` | {member['backbone']} | "
                     f"{member['image_size']} px{resized} | {member['test_accuracy']:.1%} |")
    lines += [f"| the ensemble | | {ensemble['image_size']} px | "
              f"{ensemble['test_accuracy']:.1%} |", ""]
    return lines


def format_result(result: EnsembleResult) -> str:
    """The ensemble's test accuracy beside each member's, as lines for the terminal."""
    width = max(len(m.name) for m in result.members)
    lines = [f"Test accuracy on the shared test split ({result.report.count} images):"]
    for member in result.members:
        resized = (f"  (its {member.image_size} px input resized inside from "
                   f"{ensemble_size_of(result)} px)" if member.resized_inside else "")
        lines.append(f"  {member.name:<{width}}  {member.test_accuracy:6.1%}{resized}")
    lines.append(f"  {'ensemble (' + METHOD + ')':<{width}}  {result.accuracy:6.1%}")
    lines.append(f"Saved as a run in {result.path}")
    return "\n".join(lines)


def ensemble_size_of(result: EnsembleResult) -> int:
    return max(m.image_size for m in result.members)
