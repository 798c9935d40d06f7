"""Ensembles: several runs on the same images, combined into one model that averages their
probabilities, scored on their shared test split beside each member, saved as a run (made by
`core/training/ensemble_run.py`, which writes it through the run writer like any run).

Runs with a test split must share their split: a test image one member trained on would flatter
the ensemble. Runs without test images (a test share of 0) protect nothing, so any seeds
combine; the ensemble is then not scored, and is scored with `evaluate` on another folder.

The saved `model.keras` is one self-contained Keras model: the members' whole models nested
inside (their preprocessing included), each behind a resize when its input size differs from
the ensemble's, and an `Average` layer named `probabilities`. So it loads in plain Keras and
exports and verifies like any run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from finetune_gui.core.data.split import DatasetSplit
from finetune_gui.core.errors import EnsembleError, RunFolderError
from finetune_gui.core.events import (
    CancelToken,
    ProgressCallback,
    StageProgress,
    StageStarted,
    check_cancel,
    ignore_progress,
)
from finetune_gui.core.files import atomic_write_text
from finetune_gui.core.run import folder as rf
from finetune_gui.core.run.evaluation import EvaluationReport, build_report
from finetune_gui.core.run.folder import RunFolder

ENSEMBLE_FILE = "ensemble.json"
METHOD = "mean of the members' class probabilities"
CHUNK = 16  # images per forward pass: every member's activations are alive at once


@dataclass(frozen=True)
class MemberScore:
    """One member as the ensemble sees it: scored on the shared test split, now (None: the
    runs have no test images)."""

    name: str  # readable: network · data folder · time · accuracy
    path: str
    backbone: str
    image_size: int
    resized_inside: bool  # its input is resized from the ensemble's input size
    test_accuracy: float | None
    recorded_test_accuracy: float | None  # what the member's own metrics.json says


@dataclass(frozen=True)
class EnsembleResult:
    path: Path
    members: list[MemberScore]
    report: EvaluationReport | None  # the ensemble's own, on the shared test split (None: none)

    @property
    def accuracy(self) -> float | None:
        return self.report.accuracy if self.report else None

    @property
    def summary(self) -> str:
        """What the window says once the ensemble is saved: its score beside the members', or
        how to score it when the runs kept no test images."""
        if self.report is None:
            return (f"Ensemble saved as the run {self.path.name}. {NO_TEST_IMAGES} "
                    f"{how_to_score(self.path)}")
        members = ", ".join(f"{m.test_accuracy:.1%}" for m in self.members)
        return (f"Ensemble saved as the run {self.path.name}: test accuracy {self.accuracy:.1%} "
                f"on {self.report.count} test images; its members scored {members} on the same "
                f"images. Export it on the Export page like any run.")


NO_TEST_IMAGES = ("These runs kept no test images aside, so neither the ensemble nor its members "
                  "have a test score.")


def how_to_score(run: Path) -> str:
    """The sentence that says how to score an ensemble without test images."""
    return (f"Score it on a labelled folder none of its members trained on with: "
            f"finetune-gui evaluate {run} FOLDER")


def read_ensemble(run: RunFolder) -> dict | None:
    """The members and method of an ensemble run (None for a run trained on its own)."""
    source = run.path / ENSEMBLE_FILE
    if not source.is_file():
        return None
    try:
        return json.loads(source.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise EnsembleError(f"The ensemble file {source} is damaged: {exc}.") from exc


def write_ensemble(run_dir: Path, members: list[MemberScore], report: EvaluationReport | None,
                   size: int) -> None:
    """ensemble.json: the method, the input size and each member beside the ensemble's score."""
    from dataclasses import asdict

    atomic_write_text(run_dir / ENSEMBLE_FILE, json.dumps({
        "method": METHOD,
        "image_size": size,
        "test_accuracy": report.accuracy if report else None,
        "members": [asdict(m) for m in members],
    }, indent=2, ensure_ascii=False))


def check_combinable(runs: list[RunFolder]) -> DatasetSplit:
    """The ensemble's split: the members' shared one, or, when none kept test images, what
    they learned from together (`_learned_together`); refuse, in one sentence, runs that
    differ."""
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
        if split.root != splits[0].root:
            raise EnsembleError(
                f"These runs cannot be combined: {first.path.name} learned from "
                f"{splits[0].root} but {run.path.name} from {split.root}.")
    tested = any(split.test for split in splits)
    for run, split in zip(runs[1:], splits[1:], strict=True):
        if tested and any(_part(split, p) != _part(splits[0], p) for p in ("train", "val", "test")):
            raise EnsembleError(
                f"These runs cannot be combined: {first.path.name} and {run.path.name} split "
                f"the images into training, validation and test differently, so no test image "
                f"is unseen by every member.")
    return splits[0] if tested else _learned_together(splits)


def _learned_together(splits: list[DatasetSplit]) -> DatasetSplit:
    """The split of an ensemble of runs without test images, whatever their seeds: every image
    a member trained on is a training image of the ensemble; the images no member trained on
    stay validation images. Runs that share one split give that split back."""
    trained = {path: label for split in splits for path, label in split.train}
    validated: dict[Path, int] = {}
    for split in splits:
        for path, label in split.val:
            if path not in trained:
                validated.setdefault(path, label)
    first = splits[0]
    return DatasetSplit(root=first.root, classes=list(first.classes), train=list(trained.items()),
                        val=list(validated.items()), test=[], seed=first.seed)


def _split_of(run: RunFolder) -> DatasetSplit:
    if not rf.has_split(run.path):
        raise EnsembleError(
            f"The run {run.path} has no list of its images, so it cannot be told which images it "
            f"trained on; it cannot join an ensemble.")
    try:
        return rf.read_split(run.path)
    except RunFolderError as exc:
        raise EnsembleError(str(exc)) from exc


def _part(split: DatasetSplit, name: str) -> list:
    return sorted((str(path), int(label)) for path, label in getattr(split, name))


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


def score_members(folders: list[RunFolder], model, member_outputs: list, split: DatasetSplit,
                  progress: ProgressCallback = ignore_progress, cancel: CancelToken | None = None,
                  ) -> tuple[EvaluationReport | None, list[MemberScore]]:
    """The ensemble's report on the shared test split and each member's score on the same
    images (no report, no scores when the runs kept no test images)."""
    from finetune_gui.core.run.compare import readable_name

    size = ensemble_size(folders)
    probabilities: list[np.ndarray | None] = [None] * (len(folders) + 1)
    report = None
    y_true = np.array([label for _, label in split.test], dtype=int)
    if split.test:
        import keras

        scorer = keras.Model(model.input, [*member_outputs, model.output])
        images = _decode([p for p, _ in split.test], size, progress, cancel)
        probabilities = _predict_all(scorer, images, len(folders) + 1, progress, cancel)
        report = build_report(folders[0].classes, y_true, probabilities[-1],
                              [p for p, _ in split.test])
    members = []
    for run, member_probabilities in zip(folders, probabilities[:-1], strict=True):
        recorded = run.report
        members.append(MemberScore(
            name=readable_name(run), path=str(run.path), backbone=run.settings.backbone,
            image_size=run.image_size, resized_inside=run.image_size != size,
            test_accuracy=None if member_probabilities is None else
            float(np.mean(member_probabilities.argmax(axis=1) == y_true)),
            recorded_test_accuracy=recorded.accuracy if recorded else None))
    return report, members


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


def ensemble_card_lines(ensemble: dict | None) -> list[str]:
    """The model card's section on an ensemble's members (nothing for a single run)."""
    if not ensemble:
        return []
    members = ensemble["members"]
    scored = ensemble.get("test_accuracy") is not None
    lines = [
        "## Ensemble",
        "",
        f"This model averages the class probabilities of {len(members)} runs, all inside the "
        f"file. "
        f"The backbone and training above are those of the member whose input size "
        f"({ensemble['image_size']} px) the ensemble takes; each member's own is below. "
        + ("Test accuracy on the shared test split:" if scored else NO_TEST_IMAGES),
        "",
        "| member | network | input | test accuracy |",
        "|---|---|---|---|",
    ]
    for member in members:
        resized = f", resized inside from {ensemble['image_size']} px" \
            if member["resized_inside"] else ""
        lines.append(f"| `{Path(member['path']).name}` | {member['backbone']} | "
                     f"{member['image_size']} px{resized} | {_score(member['test_accuracy'])} |")
    lines += [f"| the ensemble | | {ensemble['image_size']} px | "
              f"{_score(ensemble.get('test_accuracy'))} |", ""]
    return lines


def _score(accuracy: float | None) -> str:
    return "no test images" if accuracy is None else f"{accuracy:.1%}"


def format_result(result: EnsembleResult) -> str:
    """The ensemble's test accuracy beside each member's, as lines for the terminal."""
    width = max(len(m.name) for m in result.members)
    if result.report is None:
        return "\n".join([
            f"Combined {len(result.members)} runs:",
            *(f"  {member.name}" for member in result.members),
            f"Saved as a run in {result.path}",
            NO_TEST_IMAGES,
            how_to_score(result.path),
        ])
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
