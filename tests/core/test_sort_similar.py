"""Sort a folder (copies by class, never touching the source) and similar images."""

from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path

import pytest
from tests.insight_runs import flipped_run


@pytest.fixture(scope="module")
def run(tmp_path_factory, pretrained_base):
    return flipped_run(tmp_path_factory, pretrained_base)


def messy_folder(root: Path, data: Path) -> Path:
    """Images from two classes with clashing names in sub-folders, plus four unusable files."""
    (root / "a").mkdir(parents=True)
    (root / "b" / "deeper").mkdir(parents=True)
    for i in range(6):
        shutil.copyfile(data / "circles" / f"circles_{20 + i:03d}.png", root / "a" / f"img_{i}.png")
        shutil.copyfile(data / "squares" / f"squares_{20 + i:03d}.png", root / "b" / f"img_{i}.png")
    shutil.copyfile(data / "circles" / "circles_030.png", root / "b" / "deeper" / "img_0.png")
    (root / "empty.png").write_bytes(b"")
    (root / "notes.txt").write_text("not an image")
    (root / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    (root / "b" / "fake.png").write_bytes(b"GIF89a...")
    return root


def checksums(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_sort_copies_every_readable_image_and_never_changes_the_source(run, tmp_path):
    from finetune_gui.core.run.predict import csv_text, list_images, predict_paths
    from finetune_gui.core.run.sort import CSV_NAME, sort_folder

    source = messy_folder(tmp_path / "in", run.data)
    before = checksums(source)
    summary = sort_folder(run.run, source, tmp_path / "out", model=run.model)
    assert checksums(source) == before
    copies = [p for p in (tmp_path / "out").rglob("*") if p.is_file() and p.name != CSV_NAME]
    assert len(copies) == summary.total_copied == 13
    assert summary.renamed >= 1  # a/img_0.png and b/deeper/img_0.png are both circles
    assert sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in copies) == sorted(
        v for k, v in before.items() if k.endswith(".png") and "img_" in k
    )
    assert {p.name for p, _ in summary.unreadable} == {"empty.png", "notes.txt", "broken.jpg", "fake.png"}
    assert all(reason for _, reason in summary.unreadable)
    predicted = csv_text(predict_paths(run.run, list_images(source)[0], model=run.model))
    with open(tmp_path / "out" / CSV_NAME, encoding="utf-8", newline="") as written:
        assert written.read() == predicted
    rows = list(csv.DictReader((tmp_path / "out" / CSV_NAME).open(encoding="utf-8")))
    for row in rows:
        if not row["error"]:
            folder = "not sure" if row["unsure"] == "yes" else row["label"]
            assert (tmp_path / "out" / folder).is_dir()
    assert "13 images copied" in summary.text() and "could not be read" in summary.text()


def test_sort_refuses_a_destination_inside_the_source_and_writes_nothing(run, tmp_path):
    from finetune_gui.core.errors import UserError
    from finetune_gui.core.run.sort import sort_folder

    source = messy_folder(tmp_path / "in", run.data)
    before = checksums(source)
    with pytest.raises(UserError, match="inside the folder being sorted"):
        sort_folder(run.run, source, source / "sorted", model=run.model)
    assert checksums(source) == before


def test_free_name_counts_up_past_taken_names(tmp_path):
    from finetune_gui.core.run.sort import free_name

    (tmp_path / "a.png").write_bytes(b"x")
    assert free_name(tmp_path, "a.png", set()) == "a (2).png"
    assert free_name(tmp_path, "a.png", {"a (2).png"}) == "a (3).png"
    assert free_name(tmp_path, "b.png", set()) == "b.png"


def test_similar_images_finds_the_planted_copy_first(run):
    from tests.insight_runs import PLANTED_COPY

    from finetune_gui.core.run.similar import similar_images

    label, original, copy = PLANTED_COPY
    found = similar_images(run.run, run.data / label / original, top=8, model=run.model)
    assert len(found) == 8
    assert found[0].path.name == copy and found[0].distance < 1e-3
    assert [s.distance for s in found] == sorted(s.distance for s in found)
    assert all(s.path.name != original for s in found)  # the image itself is left out
    assert sum(s.label == label for s in found) >= 6


def test_similar_refuses_an_unreadable_image_plainly(run, tmp_path):
    from finetune_gui.core.errors import UserError
    from finetune_gui.core.run.similar import similar_images

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nothing")
    with pytest.raises(UserError, match="cannot be read"):
        similar_images(run.run, bad, model=run.model)
