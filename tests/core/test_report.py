"""The HTML report: one self-contained file with the run's numbers, curves and pictures."""

from __future__ import annotations

import base64
import io
import re
import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for insight_runs.py
from finetune_gui.cli import main
from finetune_gui.core.insight.report_svg import Series, line_chart
from insight_runs import PLANTED_COPY, flipped_run

EMBEDDED_PNG = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def flipped(tmp_path_factory, pretrained_base):
    return flipped_run(tmp_path_factory, pretrained_base)


@pytest.fixture(scope="module")
def written(flipped, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", str(flipped.run_dir), "--out", str(out)]) == 0
    return out, out.read_text("utf-8")


def test_the_file_needs_nothing_beside_it(written):
    out, html = written
    references = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", html, flags=re.I)
    assert references and all(r.startswith("data:image/png;base64,") for r in references)
    assert not re.search(r"url\(|@import|<link|<script|https?://", html, flags=re.I)
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temporary file left


def test_the_per_class_table_and_confusion_matrix_hold_the_run_numbers(flipped, written):
    _, html = written
    report = flipped.run.report
    table = re.search(r'<table id="per-class">(.*?)</table>', html, flags=re.S).group(1)
    for m in report.per_class:
        row = re.search(rf"<tr><td>{m.name}</td>(.*?)</tr>", table).group(1)
        low, high = m.recall_interval
        assert re.findall(r"<td>([^<]*)</td>", row)[:4] == [
            f"{m.precision:.3f}", f"{m.recall:.3f} ({low:.2f}-{high:.2f})", f"{m.f1:.3f}",
            str(m.support),
        ]
    low, high = report.accuracy_interval
    assert f"{report.accuracy:.1%}</b> (95% interval {low:.1%}-{high:.1%})" in html
    if report.count < 50:
        assert "rough estimate" in html
    confusion = re.search(r'<table id="confusion">(.*?)</table>', html, flags=re.S).group(1)
    cells = [int(v) for v in re.findall(r"<td[^>]*>(\d+)</td>", confusion)]
    assert cells == [v for row in report.confusion for v in row]


def test_misclassified_and_suspect_images_are_embedded_with_heatmaps(flipped, written):
    _, html = written
    report = flipped.run.report
    pictures = EMBEDDED_PNG.findall(html)
    shown_wrong = min(len(report.misclassified), 12)
    # Two pictures (the image and its heatmap) per misclassified image and per suspect.
    assert len(pictures) >= 2 * (shown_wrong + len(flipped.flipped))
    first = Image.open(io.BytesIO(base64.b64decode(pictures[0])))
    assert first.format == "PNG" and first.size == (144, 144)
    suspects = html[html.index("<h2>Suspect labels</h2>") : html.index("<h2>Map of the images</h2>")]
    for path in flipped.flipped:
        assert str(path) in suspects


def test_the_map_crosses_the_suspects_listed_above_it(flipped, written):
    """One rule, one number: the report's map crosses the images of its Suspect labels list,
    as the window's map does (it used to ring only images far from their class)."""
    _, html = written
    suspects = html[html.index("<h2>Suspect labels</h2>") : html.index("<h2>Map of the images</h2>")]
    shown = suspects.count("labelled <b>")
    more = re.search(r"and (\d+) more\.", suspects)
    listed = shown + (int(more.group(1)) if more else 0)
    assert listed >= len(flipped.flipped)
    image_map = html[html.index("<h2>Map of the images</h2>") :]
    assert image_map.count('class="suspect"') == listed
    assert f"crossed: {listed} suspect labels (the list above)" in image_map


def test_dataset_settings_and_curves_are_there(flipped, written):
    _, html = written
    copy = PLANTED_COPY[2]
    assert "Duplicate images" in html and copy in html  # the planted exact copy
    assert "mobilenetv2" in html and "epochs_head" in html
    assert html.count("<svg") == 3  # loss, accuracy and the map
    assert html.count("<polyline") == 4  # training and validation, for loss and accuracy


def test_each_stage_after_reading_the_images_is_reported_in_order(flipped, tmp_path):
    """The report used to stay at "570 of 570" for minutes after reading the images."""
    from finetune_gui.core.events import StageProgress, StageStarted
    from finetune_gui.core.insight.report import write_report

    events = []
    write_report(flipped.run_dir, tmp_path / "report.html", progress=events.append)
    started = [i for i, e in enumerate(events) if isinstance(e, StageStarted)]
    last_reading = max(i for i in started if events[i].text.startswith("Reading"))
    after = [events[i].text for i in started if i > last_reading]
    expected = ["Running the model on the", "Finding suspect labels",
                "Computing heat maps of the suspect images", "Drawing the map of the images",
                "Writing the page"]
    assert [next(t for t in after if t.startswith(e)) for e in expected] == [
        t for t in after if any(t.startswith(e) for e in expected)]
    assert after[-1] == "Writing the page"
    heat_start = next(i for i in started if events[i].text.startswith(expected[2]))
    total = events[heat_start].total
    counted = [(e.done, e.total) for e in events[heat_start + 1:]
               if isinstance(e, StageProgress) and e.stage == "heatmaps"]
    assert total > 0 and counted == [(k, total) for k in range(1, total + 1)]


def test_a_report_that_cannot_be_written_is_refused_before_any_work(flipped, tmp_path,
                                                                    monkeypatch, capsys):
    """It used to read every image and draw every picture (50 s) before finding that the
    folder to write into did not exist."""
    from finetune_gui.core.run.folder import RunFolder

    def no_work(*args, **kwargs):
        raise AssertionError("the model was loaded before the destination was checked")

    monkeypatch.setattr(RunFolder, "load_model", no_work)
    missing = tmp_path / "no such folder" / "report.html"
    assert main(["report", str(flipped.run_dir), "--out", str(missing)]) == 2
    assert f"the folder {missing.parent} does not exist" in capsys.readouterr().err
    (tmp_path / "taken.html").mkdir()
    assert main(["report", str(flipped.run_dir), "--out", str(tmp_path / "taken.html")]) == 2
    assert "a folder of that name is in the way" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.html"]  # nothing written


def test_line_chart_skips_missing_values_and_scales_to_the_data():
    svg = line_chart(
        [Series("a", [(1, 0.5), (2, None), (3, 2.0)], "#000")], title="t", markers=[(2, "best")]
    )
    points = re.search(r'<polyline points="([^"]+)"', svg).group(1).split()
    assert len(points) == 2
    ys = [float(p.split(",")[1]) for p in points]
    assert ys[1] < ys[0]  # the larger value is drawn higher
    assert "best" in svg and "None" not in svg
