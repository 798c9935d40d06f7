"""`predict FOLDER --csv`, `sort` and `similar` from the command line, end to end."""

from __future__ import annotations

import csv
import json

import pytest
from tests.core.test_sort_similar import checksums, messy_folder
from tests.insight_runs import PLANTED_COPY, flipped_run


@pytest.fixture(scope="module")
def run(tmp_path_factory, pretrained_base):
    return flipped_run(tmp_path_factory, pretrained_base)


def test_predict_a_folder_to_csv_then_sort_gives_the_same_rows(run, tmp_path, capsys):
    from finetune_gui.cli import main

    source = messy_folder(tmp_path / "in", run.data)
    before = checksums(source)
    assert main(["predict", str(run.run_dir), str(source), "--csv", str(tmp_path / "p.csv")]) == 0
    assert "17 files, " in capsys.readouterr().out
    rows = list(csv.DictReader((tmp_path / "p.csv").open(encoding="utf-8")))
    assert len(rows) == 17 and sum(bool(r["error"]) for r in rows) == 4
    assert {r["unsure"] for r in rows if not r["error"]} <= {"yes", "no"}
    assert main(["sort", str(run.run_dir), str(source), "--into", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "13 images copied" in out and "could not be read" in out
    assert (tmp_path / "out" / "predictions.csv").read_text("utf-8") == (tmp_path / "p.csv").read_text("utf-8")
    assert checksums(source) == before


def test_predict_json_says_unsure_for_each_image(run, capsys):
    from finetune_gui.cli import main

    image = run.data / "circles" / "circles_020.png"
    assert main(["predict", str(run.run_dir), str(image), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found[0]["unsure"] in (True, False) and found[0]["top"][0]["label"] == "circles"


def test_similar_prints_the_planted_copy_first(run, capsys):
    from finetune_gui.cli import main

    label, original, copy = PLANTED_COPY
    args = ["similar", str(run.run_dir), str(run.data / label / original), "--top", "3", "--json"]
    assert main(args) == 0
    found = json.loads(capsys.readouterr().out)
    assert len(found) == 3 and found[0]["path"].endswith(copy) and found[0]["label"] == label


def test_sort_into_the_source_is_refused_in_one_line(run, tmp_path, capsys):
    from finetune_gui.cli import main

    source = messy_folder(tmp_path / "in", run.data)
    assert main(["sort", str(run.run_dir), str(source), "--into", str(source / "x")]) == 2
    assert "inside the folder being sorted" in capsys.readouterr().err
