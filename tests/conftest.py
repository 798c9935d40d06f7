"""Shared fixtures: quiet TensorFlow, private app folders, and small generated datasets."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Never write into the real user's cache, log or Keras folders from a test.
_private = Path(tempfile.mkdtemp(prefix="finetune-gui-tests-"))
atexit.register(shutil.rmtree, _private, True)  # each suite run left 10-30 MB behind
os.environ["FINETUNE_GUI_CACHE_DIR"] = str(_private / "cache")
os.environ["FINETUNE_GUI_LOG_DIR"] = str(_private / "logs")
os.environ["KERAS_HOME"] = str(_private / "keras")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# The suite trains some hundred tiny models for a few steps each. TensorFlow's graph optimiser
# (grappler) spends seconds on each new training graph that a few steps never win back:
# MobileNetV3Small from scratch, one epoch of 3 steps, 18.5 s -> 13.1 s on 2 cores. Tests in
# this process only; the app keeps it on (real runs take thousands of steps), and so do the
# training processes the window and the CLI tests start.
tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
from hypothesis import settings as hypothesis_settings  # noqa: E402
from hypothesis.database import DirectoryBasedExampleDatabase  # noqa: E402

from finetune_gui.demo import make_shapes_dataset  # noqa: E402

# Hypothesis: on a developer's machine, failing examples are kept in .hypothesis/ (ignored by git)
# and replayed first on the next run. In CI (CI=true) the examples are derandomised, so a run can
# be repeated exactly, and a failure prints the blob that reproduces it (@reproduce_failure).
hypothesis_settings.register_profile(
    "dev",
    database=DirectoryBasedExampleDatabase(str(Path(__file__).parent.parent / ".hypothesis")),
)
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.load_profile(
    "ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev"
)

# Fixtures that train a real model: every test that uses one (directly or through another
# fixture) is marked slow, so `-m "not slow"` is the quick run the marker promises.
TRAINING_FIXTURES = {
    "pretrained_base", "trained_run", "tiny", "flipped", "finished_run", "ensemble_members",
}


# The modules that take longest (1.5 to 5 minutes each on a 2-core machine), started first.
# `make test` runs two pytest-xdist workers that take a module at a time in collection order
# (--no-loadscope-reorder: xdist's own order, most tests first, started the two-test
# multi-worker module last, and it kept one worker busy for minutes after the other finished).
# Order only: every test still runs, and each module's own order is kept.
LONGEST_MODULES_FIRST = (
    "tests/core/test_training.py",
    "tests/e2e/test_ensemble_cli.py",
    "tests/gui/test_ensemble_speed.py",
    "tests/core/test_ensemble.py",
    "tests/core/test_settings_properties.py",
    "tests/e2e/test_multiworker.py",
    "tests/core/test_export.py",
    "tests/e2e/test_cli.py",
)


def pytest_collection_modifyitems(config, items) -> None:
    """Mark every test that uses a training fixture as slow; start the longest modules first."""
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    first = {module: rank for rank, module in enumerate(LONGEST_MODULES_FIRST)}
    items.sort(key=lambda item: first.get(item.nodeid.split("::")[0], len(first)))


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory) -> Path:
    """Three clearly different classes (red circles, blue squares, green triangles), 40 each, 48 px."""
    return make_shapes_dataset(
        tmp_path_factory.mktemp("shapes") / "data", per_class=40, size=48, seed=1
    )


@pytest.fixture
def small_shapes(tmp_path) -> Path:
    """A fresh small dataset a test may modify: 3 classes x 12 images of 32 px."""
    return make_shapes_dataset(tmp_path / "data", per_class=12, size=32, seed=5)


def folder_fingerprint(root: Path) -> dict[str, bytes]:
    """Every file below `root` with its bytes: equal before and after means untouched."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


@pytest.fixture(scope="session")
def pretrained_base(tmp_path_factory, shapes_dir) -> Path:
    """Weights of a MobileNetV2 base (48 px) trained from scratch on shapes, saved by the test.

    This stands in for an ImageNet download, which this machine cannot make: a real weights
    file, loaded through the same code path as any local file a user picks.
    $FINETUNE_GUI_TEST_PRETRAINED_BASE names a file made earlier by `make_pretrained_base`
    (tests/mutation_check.py makes it once, from the source as it is, for all its runs).
    """
    from tests.training_checks import make_pretrained_base

    made = os.environ.get("FINETUNE_GUI_TEST_PRETRAINED_BASE")
    if made and Path(made).is_file():
        return Path(made)
    return made_once(tmp_path_factory, "pretraining",
                     lambda folder: make_pretrained_base(shapes_dir, folder))


def made_once(tmp_path_factory, name: str, make) -> Path:
    """`make(folder)` once per test session, even with several pytest-xdist workers: the first
    worker makes it in a folder they all share, the others wait for it and reuse it (each
    worker making its own cost a minute of training twice). For read-only files only."""
    try:
        import fcntl
    except ImportError:  # not on Windows: each worker makes its own
        fcntl = None
    if not os.environ.get("PYTEST_XDIST_WORKER") or fcntl is None:
        return make(tmp_path_factory.mktemp(name))
    shared = tmp_path_factory.getbasetemp().parent / f"shared-{name}"
    shared.mkdir(exist_ok=True)
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        done = shared / ".made"
        if not done.is_file():  # a worker that failed to make it left no mark: try again
            done.write_text(str(make(Path(tempfile.mkdtemp(prefix="made-", dir=shared)))))
        return Path(done.read_text())


# 80 per class: a 15% test split of 36 images. With 40 per class (18 test images) accuracy
# tests sat one image from their 0.9 threshold: the base above is trained from scratch, and
# float rounding alone changes it (the same code scored 16/18 with TensorFlow's oneDNN kernels
# on this machine and 18/18 with TF_ENABLE_ONEDNN_OPTS=0), so the CPU decided the outcome.
OTHER_SHAPES_PER_CLASS = 80


@pytest.fixture(scope="session")
def other_shapes_dir(tmp_path_factory) -> Path:
    """The same three classes drawn with another seed: new images for fine-tuning."""
    return make_shapes_dataset(
        tmp_path_factory.mktemp("shapes2") / "data", per_class=OTHER_SHAPES_PER_CLASS, size=48,
        seed=9,
    )  # fmt: skip


ENSEMBLE_SIZES = (32, 40)


@pytest.fixture(scope="session")
def ensemble_members(tmp_path_factory) -> list[Path]:
    """Two real runs on one folder and one split (same seed), at 32 and 40 px input: what the
    ensemble tests of the core, the CLI and the window combine. Made once per session (each
    pair costs a minute of training); read only: combining never writes into a member."""
    from finetune_gui.core.settings import TrainingSettings
    from finetune_gui.core.training.job import train_folder

    def make(root: Path) -> Path:
        data = make_shapes_dataset(root / "data", per_class=12, size=40, seed=4)
        for size in ENSEMBLE_SIZES:
            settings = TrainingSettings(
                backbone="mobilenetv3small", weights="none", image_size=size, epochs_head=1,
                epochs_finetune=0, batch_size=16, augment="none",
            )  # fmt: skip
            assert train_folder(data, settings, root / f"run-{size}").status == "completed"
        return root

    root = made_once(tmp_path_factory, "ensemble-members", make)
    return [root / f"run-{size}" for size in ENSEMBLE_SIZES]
