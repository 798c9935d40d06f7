"""Class folders named whatever the file system allows (issue 25, item 16).

Names with quotes, commas, semicolons, accents and characters outside the basic plane train,
and every file the app writes keeps them exactly: labels.txt, the run's JSON files, the predict
CSV, the HTML report, the model card (Markdown and JSON) and the web page, each read back with
its own parser. Names the files cannot keep (a line break, a tab, another control character, a
space at either end) are refused by the scan in one sentence before training, and the folder is
left as it was.
"""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from tests.conftest import folder_fingerprint
from tests.web_tools import missing_web_tools

from finetune_gui.cli import main
from finetune_gui.core.data.scan import scan_folder
from finetune_gui.demo import make_shapes_dataset

# Sorted as the scan sorts classes: the order of labels.txt and of the model's outputs.
NAMES = sorted(['say "hi", ok', "🦠 cells; naïve ß"])


class Texts(HTMLParser):
    """Every text node of a page (entities resolved), and each <script> element's text by id."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.scripts: dict[str, str] = {}
        self._script: str | None = None
        self.feed(page)
        self.close()

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self._script = dict(attrs).get("id") or ""

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None

    def handle_data(self, data):
        if self._script:
            self.scripts[self._script] = self.scripts.get(self._script, "") + data
        elif self._script is None:
            self.texts.append(data)


@pytest.fixture(scope="module")
def named_run(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny real run (weights none, 32 px, one epoch) on two classes with such names."""
    root = tmp_path_factory.mktemp("names")
    data = make_shapes_dataset(root / "data", per_class=12, size=32, seed=3)
    (data / "circles").rename(data / NAMES[0])
    (data / "squares").rename(data / NAMES[1])
    for image in (data / "triangles").iterdir():
        image.unlink()
    (data / "triangles").rmdir()
    run = root / "run"
    assert main(["train", str(data), "--out", str(run), "--backbone", "mobilenetv3small",
                 "--weights", "none", "--image-size", "32", "--epochs-head", "1",
                 "--epochs-finetune", "0", "--augment", "none"]) == 0
    return data, run


def test_labels_and_the_runs_json_files_keep_every_name(named_run):
    _, run = named_run
    labels = (run / "labels.txt").read_text("utf-8")
    assert labels.split("\n") == [*NAMES, ""]  # one line a class, nothing shifted
    assert json.loads((run / "split.json").read_text("utf-8"))["classes"] == NAMES
    metrics = json.loads((run / "metrics.json").read_text("utf-8"))
    assert metrics["classes"] == NAMES
    assert [m["name"] for m in metrics["per_class"]] == NAMES


def test_predict_csv_and_json_keep_every_name(named_run, tmp_path, capsys):
    data, run = named_run
    out = tmp_path / "predicted.csv"
    assert main(["predict", str(run), str(data), "--csv", str(out)]) == 0
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 24 and {row["label"] for row in rows} <= set(NAMES)
    for row in rows:
        top = json.loads(row["top"])  # which probability goes with which name, unambiguously
        assert sorted(top) == NAMES and next(iter(top)) == row["label"]
        assert sum(top.values()) == pytest.approx(1, abs=1e-5)
    capsys.readouterr()
    assert main(["predict", str(run), str(data / NAMES[1]), "--json"]) == 0
    answers = json.loads(capsys.readouterr().out)
    assert all(sorted(t["label"] for t in a["top"]) == NAMES for a in answers)


def test_the_html_report_keeps_every_name(named_run, tmp_path):
    _, run = named_run
    out = tmp_path / "report.html"
    assert main(["report", str(run), "--out", str(out)]) == 0
    texts = Texts(out.read_text("utf-8")).texts
    for name in NAMES:  # a table cell of its own (per class, confusion matrix), read back exact
        assert texts.count(name) >= 2, name
    assert not [t for t in texts if "&quot;" in t or "&amp;" in t or "&#" in t]  # not escaped twice


def test_the_model_card_and_exported_labels_keep_every_name(named_run, tmp_path):
    _, run = named_run
    out = tmp_path / "keras"
    assert main(["export", str(run), "--format", "keras", "--to", str(out)]) == 0
    card = json.loads((out / "model_card.json").read_text("utf-8"))
    assert card["classes"] == NAMES
    assert [m["name"] for m in card["test_metrics"]["per_class"]] == NAMES
    assert list(card["dataset"]["per_class"]) == NAMES
    page = (out / "model_card.md").read_text("utf-8").splitlines()
    for number, name in enumerate(NAMES):
        assert f"{number}. {name}" in page  # the numbered list of classes, in output order
        assert any(line.startswith(f"| {name} | ") for line in page)  # the per-class table
        assert any(line.startswith(f"- {name}: ") for line in page)  # images per class
    assert (out / "labels.txt").read_text("utf-8") == "".join(f"{n}\n" for n in NAMES)


@pytest.mark.skipif(missing_web_tools() is not None, reason=f"{missing_web_tools()}")
def test_the_web_page_keeps_every_name(named_run, tmp_path):
    _, run = named_run
    out = tmp_path / "web"
    assert main(["export", str(run), "--format", "web", "--to", str(out)]) == 0
    page = Texts(next(out.glob("*.html")).read_text("utf-8"))
    assert json.loads(page.scripts["ftg-config"])["classes"] == NAMES
    assert json.loads((out / "model_card.json").read_text("utf-8"))["classes"] == NAMES


@pytest.mark.parametrize(("name", "problem", "shown"), [
    ("say\nhi", "has a line break in its name", "'say\\nhi'"),
    ("cells\there", "has a tab in its name", "'cells\\there'"),
    ("ring\x07", "has a control character in its name", "'ring\\x07'"),
    ("cells ", "ends with a space", "'cells '"),
    (" cells", "starts with a space", "' cells'"),
])
def test_a_name_the_files_cannot_keep_is_refused_by_the_scan(tmp_path, capsys, name, problem, shown):
    data = make_shapes_dataset(tmp_path / "data", per_class=3, size=32, seed=1)
    (data / "circles").rename(data / name)
    before = folder_fingerprint(data)
    expected = (f"The class folder {shown} in {data} {problem}, which labels.txt (one class a "
                f"line, read without spaces at either end) cannot keep; rename it without line "
                f"breaks, tabs, other control characters or spaces at either end.")
    scan = scan_folder(data)
    assert not scan.can_train and scan.refusal == expected
    capsys.readouterr()
    assert main(["scan", str(data)]) == 2
    printed = capsys.readouterr()
    assert printed.err.endswith(f"\nerror: {expected}\n")  # after the progress line
    assert f"\n  {shown}: 3 images (32x32 to 32x32)\n" in printed.out  # on one line, escaped
    assert main(["train", str(data), "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.endswith(f"error: {expected}\n")
    assert not (tmp_path / "run").exists()  # no run folder left behind
    assert folder_fingerprint(data) == before


def test_names_the_files_keep_are_not_refused_and_other_bad_names_are_listed(tmp_path):
    data = make_shapes_dataset(tmp_path / "data", per_class=3, size=32, seed=1)
    (data / "circles").rename(data / "👩‍🔬 lab, 'x'; é")  # a joiner inside an emoji is text
    assert scan_folder(data).can_train
    (data / "squares").rename(data / "a\u2028b")  # a line separator: splitlines() breaks there
    (data / "triangles").rename(data / "c\r")
    refusal = scan_folder(data).refusal
    assert refusal.startswith("The class folder 'a\\u2028b' in ") and refusal.count(". ") == 0
    assert refusal.endswith("(rename 'c\\r' too).")
