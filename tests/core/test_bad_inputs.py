"""The scan on a folder full of the bad files users really have (built by tests/corpus.py).

Every bad file must be skipped with a plain reason, every good one read the way a person sees
it (EXIF rotation, CMYK, 16-bit, transparency), and the folder must stay byte-for-byte the same.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from finetune_gui.core.data.images import UNREADABLE, ImageReadError, inspect_image, load_rgb
from finetune_gui.core.data.scan import DatasetScan, scan_folder
from finetune_gui.core.data.split import split_dataset
from finetune_gui.core.errors import DatasetError
from finetune_gui.demo import make_shapes_dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for corpus.py
from corpus import (
    ALL_CASES,
    ARABIC,
    CHINESE,
    CYRILLIC,
    EXCLUDED_CLASSES,
    LINK_CASES,
    PROBLEM_CASES,
    RED,
    SHAPE_CLASSES,
    SILENT_CASES,
    USABLE_CASES,
    WHITE,
    ExpectedCorpus,
    build_messy_folder,
    call_with_timeout,
    chmod_locks_files,
    folder_unchanged,
    without_root_privileges,
    world_traversable_dir,
)

SCAN_TIMEOUT = 60.0  # seconds; the whole corpus scans in well under one


def is_plain(text: str, max_length: int = 100) -> bool:
    """One line of words: no exception names, no tracebacks, no Python reprs."""
    machine = ("Error", "Exception", "Traceback", "errno", "Errno", "<", "\n", "PIL", "None")
    return 0 < len(text) <= max_length and not any(token in text for token in machine)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Iterator[ExpectedCorpus]:
    expected = build_messy_folder(tmp_path_factory.mktemp("bad-inputs") / "my photos")
    yield expected
    expected.release_blocked_readers()


def case_path(corpus: ExpectedCorpus, case: str) -> Path:
    if case in corpus.not_built:
        pytest.skip(f"this platform cannot make the '{case}' case")
    return corpus.cases[case]


@pytest.fixture(scope="module")
def scan(corpus) -> DatasetScan:
    return call_with_timeout(lambda: scan_folder(corpus.root), SCAN_TIMEOUT)


def problems_of(scan: DatasetScan) -> dict[Path, str]:
    return {p.path: p.reason for p in scan.problems}


def records_of(scan: DatasetScan) -> dict[Path, object]:
    return {r.path: r for r in scan.records}


def test_the_corpus_builds_every_case(corpus):
    assert sorted([*corpus.cases, *corpus.not_built]) == sorted(ALL_CASES)


@pytest.mark.parametrize("case", PROBLEM_CASES)
def test_bad_file_is_skipped_with_its_plain_reason(corpus, scan, case):
    path = case_path(corpus, case)
    assert path not in records_of(scan)
    reason = problems_of(scan).get(path)
    assert reason == corpus.reasons[path], f"{path.name}: {reason!r}"
    assert is_plain(reason)


@pytest.mark.parametrize(
    "case",
    [
        c
        for c in PROBLEM_CASES
        if c not in ("text_file", "no_extension", "stray_top_level_image", "stray_top_level_text")
    ],
)
def test_loading_a_bad_file_for_training_gives_the_same_reason(corpus, case):
    """Training must not hit a surprise mid-epoch: the loader refuses with the scan's reason."""
    path = case_path(corpus, case)
    for size in (None, 32):
        with pytest.raises(ImageReadError) as caught:
            call_with_timeout(lambda size=size: load_rgb(path, size), 20)
        assert caught.value.reason == corpus.reasons[path]


@pytest.mark.parametrize("case", USABLE_CASES)
def test_usable_file_is_read_as_a_person_sees_it(corpus, scan, case):
    path = case_path(corpus, case)
    expected = corpus.usable[path]
    record = records_of(scan).get(path)
    assert record is not None, f"{path.name} was skipped: {problems_of(scan).get(path)!r}"
    assert record.label == expected.label
    assert (record.width, record.height) == expected.size
    pixels = load_rgb(path, expected.load_size)
    assert pixels.dtype == np.uint8
    if expected.load_size is None:
        assert pixels.shape == (expected.size[1], expected.size[0], 3)
    for fact in expected.pixels:
        got = pixels[fact.y, fact.x].astype(int)
        assert np.all(np.abs(got - fact.rgb) <= fact.tolerance), (
            f"{path.name} at ({fact.x}, {fact.y}): {tuple(got)} instead of {fact.rgb}"
        )
    assert load_rgb(path, 32).shape == (32, 32, 3)


@pytest.mark.parametrize("case", SILENT_CASES)
def test_system_and_hidden_files_are_skipped_without_a_word(corpus, scan, case):
    path = case_path(corpus, case)
    assert path not in records_of(scan)
    assert path not in problems_of(scan)


def test_nothing_below_a_hidden_folder_is_mentioned(scan):
    for path in [*records_of(scan), *problems_of(scan)]:
        hidden = [part for part in path.relative_to(scan.root).parts if part.startswith(".")]
        assert not hidden, path


@pytest.mark.parametrize("case", LINK_CASES)
def test_folder_links_leading_back_up_are_not_followed(corpus, scan, case):
    link = case_path(corpus, case)
    for path in [*records_of(scan), *problems_of(scan)]:
        assert not path.is_relative_to(link), f"followed {link.name}: {path}"


def test_every_file_is_accounted_for_exactly_once(corpus, scan):
    """Nothing good lost, nothing counted twice (a link to the parent used to do that)."""
    paths = [r.path for r in scan.records]
    assert len(paths) == len(set(paths))
    assert sorted(paths) == sorted(corpus.usable)
    assert problems_of(scan) == corpus.reasons
    assert len(scan.problems) == len(corpus.reasons)


def test_classes_that_cannot_take_part_are_named_with_a_reason(corpus, scan):
    assert scan.excluded_classes == EXCLUDED_CLASSES
    for name, why in EXCLUDED_CLASSES.items():
        assert f"Class '{name}' was left out: {why}." in scan.warnings
    assert scan.classes == sorted(SHAPE_CLASSES) == corpus.classes
    assert not corpus.in_excluded_classes & set(records_of(scan))
    assert scan.can_train


def test_non_latin_names_with_spaces_survive_the_round_trip(scan):
    assert {CYRILLIC, CHINESE, ARABIC} <= set(scan.classes)
    names = {r.path.name for r in scan.records}
    assert {"фото кота.png", "猫 图片.png", "صورة قطة.png"} <= names
    assert ARABIC in [c["name"] for c in scan.to_dict()["classes"]]


def test_reading_everything_leaves_the_folder_byte_for_byte_unchanged(corpus, tmp_path):
    with folder_unchanged(corpus.root):
        scan = call_with_timeout(lambda: scan_folder(corpus.root), SCAN_TIMEOUT)
        for path in [*corpus.usable, *corpus.reasons]:
            if path.suffix.lower() in {".png", ".jpg", ".jpeg", ".gif", ".webp"}:
                for reader in (inspect_image, lambda p: load_rgb(p, 48)):
                    with contextlib.suppress(ImageReadError):
                        call_with_timeout(lambda r=reader, p=path: r(p), 20)
        split = split_dataset(scan, seed=3)
        split.save(tmp_path / "split.json")


def test_the_snapshot_notices_every_kind_of_change(tmp_path):
    """The unchanged-folder check must be able to fail."""
    changes = {
        "same bytes rewritten": lambda f: f.write_bytes(f.read_bytes()),
        "one byte": lambda f: f.write_bytes(f.read_bytes()[:-1] + b"\x00"),
        "chmod": lambda f: f.chmod(0o400),
        "hidden file added": lambda f: f.with_name(".cache").write_bytes(b""),
        "renamed": lambda f: f.rename(f.with_name("x.png")),
        "folder added": lambda f: f.with_name("sub").mkdir(),
    }
    for what, change in changes.items():
        folder = make_shapes_dataset(tmp_path / what, per_class=2, size=32)
        first = folder / "circles" / "circles_000.png"
        os.utime(first, ns=(10**9, 10**9))  # so a rewrite moves mtime even on coarse clocks
        with (
            pytest.raises(AssertionError, match="the folder was changed"),
            folder_unchanged(folder),
        ):
            change(first)


def test_split_puts_only_usable_images_in_train_val_test(corpus, scan):
    split = split_dataset(scan, val_fraction=0.2, test_fraction=0.2, seed=7)
    everything = [*split.train, *split.val, *split.test]
    paths = [path for path, _ in everything]
    assert len(paths) == len(set(paths))
    assert sorted(paths) == sorted(corpus.usable)
    assert split.classes == corpus.classes
    for path, label in everything:
        assert split.classes[label] == corpus.usable[path].label
    for part in (split.train, split.val, split.test):
        assert {split.classes[label] for _, label in part} == set(corpus.classes)


def test_a_big_camera_jpeg_is_decoded_at_full_size_then_resized(corpus):
    """6000x4000 at full size, never Pillow's reduced-scale draft: a browser decodes JPEGs at
    full size (byte for byte as Pillow), so the web export sees the pixels training saw."""
    path = corpus.cases["jpeg_6000x4000"]
    small = load_rgb(path, 64)
    full = load_rgb(path)
    assert small.shape == (64, 64, 3) and full.shape == (4000, 6000, 3)
    resized = Image.fromarray(full).resize((64, 64), Image.Resampling.BILINEAR, reducing_gap=2.0)
    assert np.array_equal(small, np.asarray(resized))


def test_exif_rotation_holds_at_training_size_too(corpus):
    pixels = load_rgb(corpus.cases["jpeg_exif_orientation_6"], 64).astype(int)
    top_right, top_left = pixels[12, 52], pixels[12, 12]
    bottom_left, bottom_right = pixels[52, 12], pixels[52, 52]
    assert np.all(np.abs(top_right - RED) < 40), top_right
    for other in (top_left, bottom_left, bottom_right):
        assert np.all(np.abs(other - WHITE) < 40), other


def test_a_one_pixel_image_scales_to_the_requested_size(corpus):
    pixels = load_rgb(corpus.cases["one_pixel_png"], 64)
    assert pixels.shape == (64, 64, 3)
    assert np.all(pixels == (10, 20, 30))


def test_sixteen_bit_png_keeps_its_gradient(corpus):
    grey = load_rgb(corpus.cases["png_16bit_grey"])[0, :, 0].astype(int)
    assert grey[0] == 0 and grey[-1] == 255
    assert np.all(np.diff(grey) >= 0) and len(np.unique(grey)) > 50


def test_unreadable_file_in_the_corpus_is_reported(corpus, scan):
    if not chmod_locks_files():
        pytest.skip("root reads a chmod 000 file anyway (see the unprivileged test below)")
    path = corpus.cases["unreadable_png"]
    assert problems_of(scan)[path] == UNREADABLE


@pytest.mark.skipif(not hasattr(os, "seteuid"), reason="needs POSIX users")
def test_unreadable_file_and_folders_as_an_ordinary_user():
    """chmod 000 on a file, a subfolder and a class folder; as root the test acts as 'nobody'."""
    with world_traversable_dir() as root:
        make_shapes_dataset(
            root, per_class=3, size=32, classes=dict(list(SHAPE_CLASSES.items())[:2])
        )
        cyr, chi = root / CYRILLIC, root / CHINESE
        locked_file = cyr / f"{CYRILLIC}_000.png"
        locked_sub = chi / "locked album"
        locked_sub.mkdir()
        shutil.copy(chi / f"{CHINESE}_000.png", locked_sub / "inside.png")
        locked_class = root / "locked class"
        locked_class.mkdir()
        shutil.copy(chi / f"{CHINESE}_001.png", locked_class / "inside.png")
        for path in (locked_file, locked_sub, locked_class):
            path.chmod(0)
        scan_folder(root)  # as ourselves first, so every lazy import is done
        with without_root_privileges():
            scan = call_with_timeout(lambda: scan_folder(root), SCAN_TIMEOUT)
            with pytest.raises(ImageReadError) as caught:
                inspect_image(locked_file)
        assert caught.value.reason == UNREADABLE
        problems = problems_of(scan)
        for path in (locked_file, locked_sub, locked_class):
            assert problems.get(path) == UNREADABLE, path
        assert scan.class_counts == {CYRILLIC: 2, CHINESE: 3}
        assert "locked class" in scan.excluded_classes
        assert "no images" not in scan.excluded_classes["locked class"]


@pytest.mark.skipif(not hasattr(os, "seteuid"), reason="needs POSIX users")
def test_a_split_folder_that_cannot_be_opened_is_a_plain_error():
    with world_traversable_dir() as root:
        make_shapes_dataset(root / "train", per_class=2, size=32)
        make_shapes_dataset(root / "val", per_class=2, size=32)
        (root / "val").chmod(0)
        with without_root_privileges(), pytest.raises(DatasetError) as caught:
            scan_folder(root)
        assert str(root / "val") in str(caught.value)
        assert "permission denied" in str(caught.value)


def test_a_folder_with_one_class_only_is_refused_clearly(tmp_path):
    root = make_shapes_dataset(
        tmp_path / "one class", per_class=5, size=32, classes={"cats": SHAPE_CLASSES[CYRILLIC]}
    )
    (root / "dogs").mkdir()
    (root / "dogs" / "dog.jpg").write_bytes(b"")
    scan = scan_folder(root)
    assert not scan.can_train
    message = scan.refusal
    assert "at least 2 classes" in message and "'cats'" in message and str(root) in message
    assert is_plain(message.replace(str(root), "FOLDER"), max_length=300)
    with pytest.raises(DatasetError) as caught:
        scan.require_trainable()
    assert str(caught.value) == message
    with pytest.raises(DatasetError):
        split_dataset(scan)


def test_a_folder_with_no_class_folders_is_refused_clearly(tmp_path):
    (tmp_path / "photo.png").write_bytes(b"")
    scan = scan_folder(tmp_path)
    assert "has none" in scan.refusal
    assert scan.problems[0].reason == "not inside a class folder (ignored)"


@pytest.mark.parametrize("kind", ["file", "missing"])
def test_a_path_that_is_not_a_folder_is_a_dataset_error_naming_it(tmp_path, kind):
    path = tmp_path / "фото.zip"
    if kind == "file":
        path.write_bytes(b"PK\x03\x04")
    with pytest.raises(DatasetError) as caught:
        scan_folder(path)
    assert str(path) in str(caught.value)
    assert ("is a file" if kind == "file" else "does not exist") in str(caught.value)
