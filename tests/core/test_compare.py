"""Comparing runs: the data each run learned from is a difference, and scores on different data
are not ranked."""

from __future__ import annotations

from tests.compare_runs import FILES, fake_run

from finetune_gui.core.run.compare import DATA_FOLDER, DATA_IMAGES, compare_runs


def test_runs_on_different_folders_show_the_folder_and_warn(tmp_path):
    first = fake_run(tmp_path / "a", "/photos/flowers", FILES, accuracy_hits=4)
    second = fake_run(tmp_path / "b", "/photos/faces", FILES[:10], accuracy_hits=2)
    table = compare_runs([first, second])
    assert table.differing[DATA_FOLDER] == ["/photos/flowers", "/photos/faces"]
    assert list(table.differing)[:2] == [DATA_FOLDER, DATA_IMAGES]
    assert table.differing[DATA_IMAGES][0].startswith("12 images, ")
    assert not table.same_data and "different images" in table.data_warning
    assert table.best_run("test accuracy") is None  # 100% on flowers beats nothing on faces


def test_the_same_folder_with_other_files_is_other_data(tmp_path):
    first = fake_run(tmp_path / "a", "/photos/flowers", FILES, accuracy_hits=4)
    second = fake_run(tmp_path / "b", "/photos/flowers", FILES[:10], accuracy_hits=2)
    table = compare_runs([first, second])
    assert DATA_FOLDER not in table.differing and DATA_IMAGES in table.differing
    assert table.data_warning


def test_runs_on_the_same_images_are_ranked_and_say_nothing_about_data(tmp_path):
    first = fake_run(tmp_path / "a", "/photos/flowers", FILES, accuracy_hits=2)
    second = fake_run(tmp_path / "b", "/photos/flowers", list(reversed(FILES)), accuracy_hits=4)
    table = compare_runs([first, second])
    assert DATA_FOLDER not in table.differing and DATA_IMAGES not in table.differing
    assert table.same_data and table.data_warning == ""
    assert table.best_run("test accuracy") == 1


def test_runs_are_named_by_network_folder_time_and_accuracy(tmp_path):
    first = fake_run(tmp_path / "20261201-162000-mobilenetv3small", "/photos/flowers", FILES,
                     accuracy_hits=4, updated="2026-12-01T16:20:00")
    second = fake_run(tmp_path / "other", "/photos/faces", FILES, accuracy_hits=2,
                      updated="2026-12-02T09:05:00")
    table = compare_runs([first, second])
    assert table.names == ["MobileNetV3Small · flowers · 01 Dec 16:20 · 100.0%",
                           "MobileNetV3Small · faces · 02 Dec 09:05 · 50.0%"]
    twin = fake_run(tmp_path / "twin", "/photos/flowers", FILES, accuracy_hits=4)
    names = compare_runs([first, twin]).names
    assert names[0] != names[1] and names[1].endswith("(twin)")
