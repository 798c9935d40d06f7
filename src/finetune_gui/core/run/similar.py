"""Similar images: the dataset's images nearest to one picture in the run's pooled-feature space.

A near-duplicate shows up at a distance close to 0; a neighbour with another label than its
look-alikes is worth a second look (a mislabel, or two classes that overlap).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from finetune_gui.core.events import CancelToken, ProgressCallback, ignore_progress

DEFAULT_TOP = 8


@dataclass(frozen=True)
class SimilarImage:
    path: Path
    label: str  # the label it has in the run's dataset
    part: str  # "train", "val" or "test"
    distance: float  # cosine distance of pooled features: 0 same, 2 opposite

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "label": self.label,
            "part": self.part,
            "distance": round(self.distance, 6),
        }


def similar_images(
    run,
    image: Path | str,
    *,
    top: int = DEFAULT_TOP,
    model=None,
    data_root: Path | str | None = None,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> list[SimilarImage]:
    """The `top` images of the run's dataset nearest to `image` (the image itself left out)."""
    from finetune_gui.core.data.images import ImageReadError, load_rgb
    from finetune_gui.core.errors import SettingsError, UserError
    from finetune_gui.core.run.dataset_features import dataset_features, probe, probe_model

    if top < 1:
        raise SettingsError("The number of similar images must be 1 or more.")
    image = Path(image).expanduser()
    if not image.is_file():
        raise UserError(f"No such image file: {image}.")
    try:
        pixels = load_rgb(image, run.image_size)
    except ImageReadError as exc:
        raise UserError(f"{image} cannot be read ({exc.reason}).") from exc
    model = model or run.load_model()
    found = dataset_features(
        run, model=model, data_root=data_root, progress=progress, cancel=cancel
    )
    _, query, _ = probe(probe_model(model), pixels[None], len(run.classes))
    distances = 1.0 - found.features @ query[0]
    same = np.array([_same_file(p, image) for p in found.paths], dtype=bool)
    distances[same] = np.inf
    order = np.argsort(distances, kind="stable")[: min(top, int((~same).sum()))]
    return [
        SimilarImage(
            found.paths[i], run.classes[found.labels[i]], str(found.parts[i]),
            max(0.0, float(distances[i])),
        )
        for i in order
    ]


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False
