"""A run interrupted anywhere, then resumed, ends as the same run uninterrupted: the same kept
model, the same refit of the head, the same test score, and phases where history.csv has them.

The interruption is a kill as the process sees it: an exception no `except Exception` catches,
so nothing gets to write "failed" or "cancelled", and the folder is left as a power cut leaves
it (run.json says "running", the checkpoint is at the last finished epoch).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from finetune_gui.core.events import EpochEnded, LogMessage, PhaseStarted, StageStarted
from finetune_gui.core.run.folder import RunFolder, run_state
from finetune_gui.core.settings import TrainingSettings
from finetune_gui.core.training.job import TrainingJob

pytestmark = pytest.mark.slow


class Killed(BaseException):
    """The process died here."""


def settings(weights) -> TrainingSettings:
    # Fine-tuning at a learning rate too small to change anything, run even after a perfect
    # head: the head is kept and refitted whatever the CPU's round-off, and phase 2's epochs
    # are there to be interrupted. (A fine-tuned model is not compared weight for weight: the
    # optimizer's state and the shuffling position are not part of the checkpoint.)
    return TrainingSettings(
        backbone="mobilenetv2", weights=str(weights), image_size=48, epochs_head=1,
        epochs_finetune=3, unfreeze_blocks=1, lr_finetune=1e-9, finetune_when="always",
        batch_size=16, augment="none", patience=0, seed=0,
    )  # fmt: skip


def kill_at(when):
    def progress(event) -> None:
        if when(event):
            raise Killed()

    return progress


KILL_POINTS = {
    "before its first epoch": lambda e: isinstance(e, PhaseStarted) and e.phase == "head",
    "in phase 2": lambda e: isinstance(e, EpochEnded) and e.epoch == 3,
    "during the head's refit": lambda e: isinstance(e, LogMessage)
    and e.text.startswith("The kept head was solved again"),
    "after training, before the test": lambda e: isinstance(e, StageStarted)
    and e.stage == "evaluate",
    "while calibrating \"not sure\"": "calibration",
}


def killed_run(data, weights, run: Path, where: str, monkeypatch) -> None:
    """Train into `run` until it is killed at `where` (an event, or inside a step)."""
    when = KILL_POINTS[where]
    if when == "calibration":  # the test was scored; features.npz and unsure.json come next
        import finetune_gui.core.training.kept_features as kept

        def die(*args, **kwargs):
            raise Killed()

        with monkeypatch.context() as patch:
            patch.setattr(kept, "unsure_rule", die)
            TrainingJob(data, settings(weights), run).run()
        return
    TrainingJob(data, settings(weights), run, progress=kill_at(when)).run()


def facts_of(run_dir: Path) -> dict:
    facts = json.loads((run_dir / "run.json").read_text())
    return {key: facts.get(key) for key in
            ("status", "kept_model", "head_refit", "best_epoch", "head_l2_tried", "counts")}


def phases_of(run_dir: Path) -> list[tuple[int, str]]:
    return [(row["epoch"], row["phase"]) for row in RunFolder.read_history(run_dir)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, pretrained_base):
    from finetune_gui.demo import make_shapes_dataset

    root = tmp_path_factory.mktemp("parity")
    data = make_shapes_dataset(root / "data", per_class=12, size=48, seed=5)
    result = TrainingJob(data, settings(pretrained_base), root / "whole").run()
    assert result.status == "completed"
    return data, root / "whole"


@pytest.mark.parametrize("where", list(KILL_POINTS))
def test_a_run_resumed_after_a_kill_ends_as_the_uninterrupted_run(
    uninterrupted, pretrained_base, tmp_path, where, monkeypatch
):
    data, whole = uninterrupted
    run = tmp_path / "run"
    with pytest.raises(Killed):
        killed_run(data, pretrained_base, run, where, monkeypatch)
    assert json.loads((run / "run.json").read_text())["status"] == "running"

    result = TrainingJob.resume(run).run()
    assert result.status == "completed"
    assert facts_of(run) == facts_of(whole)
    assert facts_of(run)["head_refit"]["images"] > 0  # the kept head was refitted
    assert phases_of(run) == phases_of(whole) == [(1, "head"), (2, "finetune"), (3, "finetune"),
                                                   (4, "finetune")]
    mine, theirs = RunFolder.open(run).report, RunFolder.open(whole).report
    assert (mine.accuracy, mine.count, mine.confusion) == (
        theirs.accuracy, theirs.count, theirs.confusion)
    for row, other in zip(mine.predictions, theirs.predictions, strict=True):
        assert row["path"] == other["path"]
        assert row["probabilities"] == pytest.approx(other["probabilities"], abs=1e-4)


def test_a_run_killed_before_its_first_epoch_is_interrupted_and_the_cli_restarts_it(
    uninterrupted, pretrained_base, tmp_path, capsys
):
    from finetune_gui.cli import main

    data, whole = uninterrupted
    run = tmp_path / "run"
    with pytest.raises(Killed):
        TrainingJob(data, settings(pretrained_base), run,
                    progress=kill_at(KILL_POINTS["before its first epoch"])).run()  # fmt: skip
    # The process that wrote "running" is gone (a finished child's pid stands in for it).
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    facts = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**facts, "pid": int(gone)}))
    assert run_state(run) == "interrupted"  # offered for resume, not listed as failed

    split_before = (run / "split.json").read_bytes()
    assert main(["train", "--resume", str(run)]) == 0
    assert "Test accuracy" in capsys.readouterr().out
    assert (run / "split.json").read_bytes() == split_before  # the same images, the same split
    assert RunFolder.open(run).settings == RunFolder.open(whole).settings
    assert facts_of(run)["kept_model"] == facts_of(whole)["kept_model"]
    assert RunFolder.open(run).report.accuracy == RunFolder.open(whole).report.accuracy


def test_a_run_with_a_trained_head_resumed_in_phase_1_follows_the_uninterrupted_run(
    uninterrupted, pretrained_base, tmp_path
):
    """A head with a hidden layer is trained, not solved: killed in phase 1 and resumed, the run
    goes through the same epochs and phases, records the same facts (no head to refit) and is
    scored on the same test images. (Its weights are not compared: the optimizer's state is
    not part of the checkpoint.)"""
    data, _ = uninterrupted
    trained_head = settings(pretrained_base).with_changes(dense_units=8, epochs_head=3)
    whole = tmp_path / "whole"
    assert TrainingJob(data, trained_head, whole).run().status == "completed"
    run = tmp_path / "run"
    with pytest.raises(Killed):
        TrainingJob(data, trained_head, run,
                    progress=kill_at(lambda e: isinstance(e, EpochEnded) and e.epoch == 2)).run()
    assert phases_of(run) == [(1, "head")]  # killed before epoch 2 was written down
    assert TrainingJob.resume(run).run().status == "completed"
    assert phases_of(run) == phases_of(whole) == [(1, "head"), (2, "head"), (3, "head"),
                                                   (4, "finetune"), (5, "finetune"),
                                                   (6, "finetune")]
    mine, theirs = facts_of(run), facts_of(whole)
    assert mine["head_refit"] is None and theirs["head_refit"] is None
    assert {k: mine[k] for k in ("status", "kept_model", "counts", "head_l2_tried")} == {
        k: theirs[k] for k in ("status", "kept_model", "counts", "head_l2_tried")}
    assert RunFolder.open(run).report.count == RunFolder.open(whole).report.count


def test_a_run_whose_images_moved_is_not_resumed_nor_scored_and_says_which(
    pretrained_base, tmp_path, monkeypatch
):
    """A picture moved out of the folder after the split: resuming and scoring the test split
    each refuse with one sentence naming it, and the run folder is left as it was."""
    from finetune_gui.core.errors import RunFolderError
    from finetune_gui.core.run.folder import evaluate_test_split
    from finetune_gui.demo import make_shapes_dataset

    data = make_shapes_dataset(tmp_path / "data", per_class=12, size=48, seed=5)
    run = tmp_path / "run"
    with pytest.raises(Killed):
        killed_run(data, pretrained_base, run, "in phase 2", monkeypatch)
    from finetune_gui.core.run.folder import read_split

    test_image = read_split(run).test[0][0]

    def files() -> dict:
        return {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}

    test_image.rename(tmp_path / test_image.name)
    before = files()
    with pytest.raises(RunFolderError) as resumed:
        TrainingJob.resume(run)
    assert str(resumed.value) == (
        f"1 image of this run is no longer where it was (for example {test_image}); put the "
        f"image folder back to resume.")
    assert files() == before

    (tmp_path / test_image.name).rename(test_image)  # put back: the run resumes and ends
    assert TrainingJob.resume(run).run().status == "completed"
    test_image.rename(tmp_path / test_image.name)
    before = files()
    with pytest.raises(RunFolderError) as scored:
        evaluate_test_split(RunFolder.open(run))
    assert str(scored.value) == (
        f"1 test image of this run is no longer where it was (for example {test_image}); put "
        f"the image folder back.")
    assert files() == before
