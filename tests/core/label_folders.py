"""Folders to label, for the labelling tests: a heap of shapes, partly sorted, with bad files
and copies; features without TensorFlow (the pictures' mean colour, which tells the shapes'
colour families apart)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from finetune_gui.demo import make_shapes_dataset


def make_heap(root: Path, per_class: int = 10, size: int = 32, seed: int = 3) -> dict:
    """A folder as people leave it: `circles/` sorted by hand, the rest loose at the top and in
    nested folders (`unsorted/2023/05/`), an empty file, a text file, a truncated PNG, an exact
    copy and a near copy (resized, saved as JPEG). Returns facts: the truth per relative path
    (copies included), the copies, the bad files."""
    made = make_shapes_dataset(root.parent / f"{root.name}-made", per_class=per_class, size=size,
                               seed=seed)
    truth: dict[str, str] = {}
    for label in ("circles", "squares", "triangles"):
        for i, source in enumerate(sorted((made / label).glob("*.png"))):
            if label == "circles" and i < per_class // 2:
                rel = f"circles/{source.name}"
            elif i % 2:
                rel = f"unsorted/2023/05/{source.name}"
            else:
                rel = source.name
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, root / rel)
            truth[rel] = label
    shutil.rmtree(made)
    loose_square = next(r for r, label in sorted(truth.items()) if label == "squares"
                        and "/" not in r)
    shutil.copyfile(root / loose_square, root / "unsorted" / "copy-of-square.png")
    truth["unsorted/copy-of-square.png"] = "squares"
    loose_triangle = next(r for r, label in sorted(truth.items()) if label == "triangles"
                          and "/" not in r)
    near = Image.open(root / loose_triangle).convert("RGB").resize((size - 4, size - 4))
    near.save(root / "unsorted" / "near-triangle.jpg", quality=92)
    truth["unsorted/near-triangle.jpg"] = "triangles"
    (root / "empty.png").write_bytes(b"")
    (root / "notes.txt").write_text("not a picture")
    whole = (root / loose_square).read_bytes()
    (root / "unsorted" / "cut.png").write_bytes(whole[: len(whole) // 2])
    return {
        "truth": truth,
        "copies": {loose_square: "unsorted/copy-of-square.png",
                   loose_triangle: "unsorted/near-triangle.jpg"},
        "bad": {"empty.png", "notes.txt", "unsorted/cut.png"},
    }


def colour_features(paths: list[Path]) -> np.ndarray:
    """Per picture: the mean and spread of each colour channel, and of the darkest pixels,
    standardised (network features are of that size; at 0-1 the plain head's fixed penalty
    would flatten every answer)."""
    rows = []
    for path in paths:
        pixels = np.asarray(Image.open(path).convert("RGB").resize((24, 24)), np.float32) / 255
        flat = pixels.reshape(-1, 3)
        dark = flat[flat.sum(axis=1) <= np.quantile(flat.sum(axis=1), 0.3)]
        rows.append(np.concatenate([flat.mean(0), flat.std(0), dark.mean(0)]))
    rows = np.array(rows, np.float32)
    return (rows - rows.mean(0)) / np.maximum(rows.std(0), 1e-6)
