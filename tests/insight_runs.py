"""One trained run with planted label mistakes, shared by the insight tests (suspects, Grad-CAM,
embedding map, comparison, report) so the model is trained once per test session.

The run fine-tunes only a new head on the session's pretrained MobileNetV2 base (48 px, the
`pretrained_base` fixture), as a user would on ImageNet weights: a frozen base never saw the
wrong labels, so they stay detectable.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from finetune_gui.demo import make_shapes_dataset

CLASSES = ("circles", "squares", "triangles")
FLIPS_PER_CLASS = 2
# Two images of each class are filed in another class's folder: a wrong label. The two go to
# different folders: two look-alike pictures under the same wrong label back each other up in
# the k-fold judge (a clear red circle was judged 0.88 "circle", under the 0.92 cut, because the
# other red circle filed under squares was in its training folds).
def wrong_folder(name: str, i: int) -> str:
    return CLASSES[(CLASSES.index(name) + 1 + i) % len(CLASSES)]
PLANTED_COPY = ("circles", "circles_010.png", "zz_copy_of_circles_010.png")


@dataclass
class FlippedRun:
    data: Path
    run_dir: Path
    flipped: dict[Path, str]  # path of each mislabelled image -> its true class
    fingerprint_before: dict[str, bytes]
    _model: object = field(default=None, repr=False)

    @property
    def run(self):
        from finetune_gui.core.run.folder import RunFolder

        return RunFolder.open(self.run_dir)

    @property
    def model(self):
        """The trained model, loaded once; tests must not change it."""
        if self._model is None:
            self._model = self.run.load_model()
        return self._model


def folder_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _build(folder: Path, pretrained_base: Path) -> Path:
    from finetune_gui.core.settings import TrainingSettings
    from finetune_gui.core.training.job import TrainingJob

    data = make_shapes_dataset(folder / "data", per_class=40, size=48, seed=21)
    plant_clear_flips(data)
    label, original, copy = PLANTED_COPY
    shutil.copyfile(data / label / original, data / label / copy)
    settings = TrainingSettings(
        backbone="mobilenetv2", weights=str(pretrained_base), image_size=48, epochs_head=8,
        epochs_finetune=0, batch_size=16, augment="none", patience=0, seed=0,
    )
    result = TrainingJob(data, settings, folder / "run").run()
    assert result.status == "completed", result.message
    return folder


# A planted mistake is a picture no judge can read as its folder's class on any CPU: a large
# shape (60-70% of the side) in its class's own colour. Moving generated pictures instead
# planted some small, blurred shapes, and with TensorFlow's oneDNN kernels on an AVX-512 CPU
# (a pretrained stand-in rounded differently) one of them was not listed.
CLEAR_EXTENT, CLEAR_JITTER = (0.6, 0.7), 10


def plant_clear_flips(data: Path) -> None:
    """Replace each image `_flips` names with a clear picture of its class, filed in the wrong
    folder: the class counts stay as generated."""
    import random

    from finetune_gui.demo import SHAPE_CLASSES, draw_shape

    rng = random.Random(77)
    for (source, target), name in _flips(data).items():
        shape, colour = SHAPE_CLASSES[name]
        size = Image.open(source).width
        source.unlink()
        draw_shape(shape, colour, size, rng, CLEAR_EXTENT, CLEAR_JITTER).save(target)


def _flips(data: Path) -> dict[tuple[Path, Path], str]:
    """(where each mislabelled image was made, where it is now) -> its true class."""
    return {
        (data / name / f"{name}_{i:03d}.png",
         data / wrong_folder(name, i) / f"flipped_{name}_{i:03d}.png"): name
        for name in CLASSES
        for i in range(FLIPS_PER_CLASS)
    }


_BUILT: dict[Path, FlippedRun] = {}


def flipped_run(tmp_path_factory, pretrained_base: Path) -> FlippedRun:
    """The session's run (trained on first use, once for all pytest-xdist workers: read only)."""
    from tests.conftest import made_once

    key = tmp_path_factory.getbasetemp()
    if key not in _BUILT:
        folder = made_once(tmp_path_factory, "flipped", lambda f: _build(f, pretrained_base))
        data = folder / "data"
        flipped = {target: name for (_, target), name in _flips(data).items()}
        _BUILT[key] = FlippedRun(data, folder / "run", flipped, folder_bytes(data))
    return _BUILT[key]
