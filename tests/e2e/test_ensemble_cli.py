"""`finetune-gui ensemble` as a user meets it: two runs on the same images and split become one
run, scored beside its members, that exports (with its size and speed) and predicts like any
run; runs that differ are refused with one plain line and exit code 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.conftest import folder_fingerprint

from finetune_gui.cli import main
from finetune_gui.core.run.folder import RunFolder

pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def members(ensemble_members) -> list[Path]:
    """The same folder and seed (so the same split) at 32 and 40 px (tests/conftest.py)."""
    return ensemble_members


def test_ensemble_prints_each_member_beside_the_ensemble_and_saves_a_run(
        members, tmp_path, capsys):
    before = [folder_fingerprint(run) for run in members]
    out = tmp_path / "together"
    capsys.readouterr()
    assert main(["ensemble", *map(str, members), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    report = RunFolder.open(out).report
    saved = json.loads((out / "ensemble.json").read_text())["members"]
    assert printed[0] == f"Test accuracy on the shared test split ({report.count} images):"
    assert printed[1].startswith("  MobileNetV3Small · data · ")
    assert printed[1].endswith(f"{saved[0]['test_accuracy']:6.1%}  (its 32 px input resized "
                               f"inside from 40 px)")
    assert printed[2].endswith(f"{saved[1]['test_accuracy']:6.1%}")
    assert printed[3].startswith("  ensemble (mean of the members' class probabilities)")
    assert printed[3].endswith(f"{report.accuracy:6.1%}")
    assert printed[4] == f"Saved as a run in {out}"
    assert [folder_fingerprint(run) for run in members] == before

    # The ensemble is a run: export it (size and speed in the card), then predict with it.
    assert main(["export", str(out), "--format", "tflite", "--to", str(tmp_path / "app")]) == 0
    card = json.loads((tmp_path / "app" / "model_card.json").read_text())
    assert card["size_and_speed"]["size_bytes"] == (tmp_path / "app" / "model.tflite").stat().st_size
    assert len(card["ensemble"]["members"]) == 2
    image = next((Path(RunFolder.open(out).facts.data) / "circles").iterdir())
    capsys.readouterr()
    assert main(["predict", str(out), str(image), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)[0]
    assert answer["error"] is None and len(answer["top"]) == 3


def test_ensemble_json_has_the_members_and_the_ensemble(members, tmp_path, capsys):
    capsys.readouterr()
    assert main(["ensemble", *map(str, members), "--out", str(tmp_path / "e"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["test_accuracy"] == RunFolder.open(tmp_path / "e").report.accuracy
    assert [m["path"] for m in data["members"]] == [str(p) for p in members]


def test_runs_on_another_split_are_refused_in_one_line(members, tmp_path, capsys):
    # The same run, as another seed would have split its images: two test images swapped
    # with two training images.
    other = tmp_path / "other-seed"
    shutil.copytree(members[0], other)
    split = json.loads((other / "split.json").read_text())
    split["train"][:2], split["test"][:2] = split["test"][:2], split["train"][:2]
    (other / "split.json").write_text(json.dumps(split))
    capsys.readouterr()
    assert main(["ensemble", str(members[0]), str(other), "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert err == ("error: These runs cannot be combined: run-32 and other-seed split the "
                   "images into training, validation and test differently, so no test image "
                   "is unseen by every member.\n")
    assert not (tmp_path / "e").exists()


def test_runs_without_test_images_and_other_seeds_combine_and_say_how_to_score(
        tmp_path_factory, capsys):
    """Two runs with a test share of 0 and different seeds: nothing to protect, so they
    combine; the terminal says the ensemble has no test score and how to get one, and the
    command it gives scores the ensemble on another folder."""
    from finetune_gui.demo import make_shapes_dataset

    root = tmp_path_factory.mktemp("no-test")
    data = make_shapes_dataset(root / "data", per_class=10, size=32, seed=5)
    runs = [root / f"seed-{seed}" for seed in (1, 2)]
    for seed, run in zip((1, 2), runs, strict=True):
        assert main(["train", str(data), "--out", str(run), "--backbone", "mobilenetv3small",
                     "--weights", "none", "--image-size", "32", "--epochs-head", "1",
                     "--epochs-finetune", "0", "--augment", "none", "--test-fraction", "0",
                     "--seed", str(seed)]) == 0
    splits = [RunFolder.open(run).split() for run in runs]
    assert splits[0].train != splits[1].train and not splits[0].test and not splits[1].test
    out = root / "together"
    capsys.readouterr()
    assert main(["ensemble", *map(str, runs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "Combined 2 runs:" and len(printed) == 6
    assert printed[3] == f"Saved as a run in {out}"
    assert printed[4] == ("These runs kept no test images aside, so neither the ensemble nor "
                          "its members have a test score.")
    assert printed[5] == ("Score it on a labelled folder none of its members trained on with: "
                          f"finetune-gui evaluate {out} FOLDER")
    ensemble = RunFolder.open(out)
    assert ensemble.status == "completed" and ensemble.report is None
    assert json.loads((out / "ensemble.json").read_text())["test_accuracy"] is None
    learned = ensemble.split()
    assert learned.test == [] and len(learned.train) + len(learned.val) == 30
    assert {p for p, _ in learned.train} == {p for s in splits for p, _ in s.train}
    # What the terminal said to do: score it on a folder none of the members saw.
    other = make_shapes_dataset(root / "other", per_class=4, size=32, seed=6)
    capsys.readouterr()
    assert main(["evaluate", str(out), str(other), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 12
