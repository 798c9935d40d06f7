"""`finetune-gui label suggest|groups|sort` in real child processes, as a user runs them: the
JSON keys the issue names, copies followed, the folder byte-identical, labels.csv read back,
and every bad input refused in one line with exit code 2 and nothing written."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import folder_fingerprint
from tests.core.label_folders import make_heap

pytestmark = pytest.mark.slow
NETWORK = ["--backbone", "mobilenetv3small", "--weights", "none", "--image-size", "32"]


def label(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "FINETUNE_GUI_LOG_DIR": os.environ.get("FINETUNE_GUI_LOG_DIR", "")}
    return subprocess.run([sys.executable, "-m", "finetune_gui.cli", "label", *args],
                          capture_output=True, text=True, env=env, timeout=600, check=False,
                          cwd=cwd)


@pytest.fixture(scope="module")
def heap(tmp_path_factory) -> tuple[Path, dict, Path]:
    """The heap, and a labels.csv with 2 pictures of each class (one named by its copy)."""
    root = tmp_path_factory.mktemp("label-cli") / "heap"
    facts = make_heap(root, per_class=8)
    truth = facts["truth"]
    chosen = []
    for name in ("circles", "squares", "triangles"):
        chosen += [r for r in sorted(truth) if truth[r] == name and r not in facts["copies"]][:2]
    labels = root.parent / "labels.csv"
    with labels.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        for rel in chosen:
            writer.writerow([rel, truth[rel]])
    return root, facts, labels


def test_suggest_json_groups_and_sort_follow_copies_and_leave_the_folder_alone(heap, tmp_path):
    root, facts, labels = heap
    before = folder_fingerprint(root)
    done = label("suggest", str(root), "--labels", str(labels), *NETWORK, "--ask", "5", "--json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert set(found) == {"proposals", "ask", "estimated_accuracy"}
    given = {row[0] for row in csv.reader(labels.open()) if row[0] != "path"}
    paths = {p["path"] for p in found["proposals"]}
    # Every usable file not labelled, copies included (they follow their picture).
    assert paths == set(facts["truth"]) - given
    for picture, copy in facts["copies"].items():
        proposal = {p["path"]: p for p in found["proposals"]}
        if picture in paths:
            assert proposal[copy]["label"] == proposal[picture]["label"]
    assert all(set(p) == {"path", "label", "probability", "unsure"} for p in found["proposals"])
    assert len(found["ask"]) == 5 and not set(found["ask"]) & given
    assert found["estimated_accuracy"] is None or 0 <= found["estimated_accuracy"] <= 1

    done = label("groups", str(root), "--k", "3", *NETWORK, "--json")
    assert done.returncode == 0, done.stderr
    groups = json.loads(done.stdout)
    assert len(groups) == 3
    members = [m for g in groups for m in g["members"]]
    assert len(members) == len(set(members)) == len(facts["truth"]) - len(facts["copies"])

    out = tmp_path / "out"
    done = label("sort", str(root), "--labels", str(labels), "--into", str(out))
    assert done.returncode == 0, done.stderr
    assert "6 pictures copied" in done.stdout or "7 pictures copied" in done.stdout
    rows = list(csv.DictReader((out / "labels.csv").open(encoding="utf-8")))
    assert {r["decided_by"] for r in rows} == {"user"}
    for row in rows:
        assert (out / row["label"] / Path(row["path"]).name).is_file()
    # The output's labels.csv reads back as the same labels.
    again = tmp_path / "again"
    done = label("sort", str(root), "--labels", str(out / "labels.csv"), "--into", str(again),
                 "--accept-above", "0.2", *NETWORK)
    assert done.returncode == 0, done.stderr
    rows_again = list(csv.DictReader((again / "labels.csv").open(encoding="utf-8")))
    users = {(r["path"], r["label"]) for r in rows_again if r["decided_by"] == "user"}
    assert users == {(r["path"], r["label"]) for r in rows}
    model = [r for r in rows_again if r["decided_by"] == "model"]
    assert model and all(float(r["probability"]) >= 0.2 for r in model)
    assert folder_fingerprint(root) == before


def test_suggest_from_a_run_starts_from_its_classes(heap, tmp_path):
    from finetune_gui.core.settings import TrainingSettings
    from finetune_gui.core.training.job import train_folder
    from finetune_gui.demo import make_shapes_dataset

    root, facts, _ = heap
    data = make_shapes_dataset(tmp_path / "data", per_class=8, size=32, seed=11)
    settings = TrainingSettings(backbone="mobilenetv3small", weights="none", image_size=32,
                                epochs_head=1, epochs_finetune=0, batch_size=16, augment="none",
                                test_fraction=0.0)
    assert train_folder(data, settings, tmp_path / "run").status == "completed"
    nothing = tmp_path / "none.csv"
    nothing.write_text("path,label\n")
    table = tmp_path / "proposals.csv"
    done = label("suggest", str(root), "--labels", str(nothing), "--from", str(tmp_path / "run"),
                 "--csv", str(table), "--ask", "3")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(table.open(encoding="utf-8")))
    assert list(rows[0]) == ["path", "label", "probability", "unsure"]
    assert {r["path"] for r in rows} == set(facts["truth"])  # nothing labelled: every file
    assert {r["label"] for r in rows} <= {"circles", "squares", "triangles"}
    assert {r["unsure"] for r in rows} <= {"yes", "no"}
    asked = done.stdout.split("Label next (3):")[1].split("\n")[1:4]
    assert all(line.startswith("  ") and line.strip() in facts["truth"] for line in asked)


@pytest.mark.parametrize("rows, extra, words", [
    ("file,class\nx.png,a\n", [], "needs a header row with the columns path and label"),
    ("path,label\n{one},a/b\n", [], "has a slash in it"),
    ("path,label\n../elsewhere.png,a\n", [], "is outside the folder"),
    ("path,label\nmissing.png,a\n", [], "does not exist"),
    ("path,label\n,lonely\n", [], "has no picture"),
    ("path,label\n{one},a\n", [], "at least 2 classes"),
    ("path,label\n{one},a\n{two},b\n", ["--csv", "{nowhere}/p.csv"], "does not exist"),
])
def test_suggest_refuses_bad_input_in_one_line(heap, tmp_path, rows, extra, words):
    root, facts, _ = heap
    one, two = sorted(r for r in facts["truth"] if "/" not in r)[:2]
    labels = tmp_path / "labels.csv"
    labels.write_text(rows.format(one=one, two=two))
    extra = [e.format(nowhere=tmp_path / "nowhere") for e in extra]
    before = folder_fingerprint(root)
    done = label("suggest", str(root), "--labels", str(labels), *NETWORK, *extra)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], lines
    assert folder_fingerprint(root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.csv"]


@pytest.mark.parametrize("case, words", [
    ("inside", "inside the folder being sorted"),
    ("accept", "--accept-above is a probability"),
    ("bad label", "starts with a space"),
])
def test_sort_refuses_bad_input_and_writes_nothing(heap, tmp_path, case, words):
    root, facts, labels = heap
    before = folder_fingerprint(root)
    out = root / "sorted" if case == "inside" else tmp_path / "out"
    extra = ["--accept-above", "1.5"] if case == "accept" else []
    if case == "bad label":
        labels = tmp_path / "bad.csv"
        one = sorted(facts["truth"])[0]
        labels.write_text(f"path,label\n{one}, cats\n")
    done = label("sort", str(root), "--labels", str(labels), "--into", str(out), *extra)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], lines
    assert not out.exists()
    assert folder_fingerprint(root) == before
