"""The pictures' own grey levels: a second view beside the network's features, for proposals.

A network pretrained on other pictures can see little of what tells a folder's classes apart:
on scikit-learn's handwritten digits the base this machine has (MobileNetV2 pretrained on
letters) gives 90.9% with every label, where the digits' own grey levels give more. Each
picture's grey levels at 16 x 16 come from the fingerprint the check keeps of it (the 32 px
grey thumbnail of `core/data/hashing.py`, halved), so no file is read again. They are centred
and scaled to the network features' spread and put beside the features, as spread as they
(weight 1) or twice (weight 2); whether and how much they help is for the user's labels to say
(`core/label/proposals.py` keeps the weight whose held-out answers are best, or none).

Measured on the labelling benchmark's folders (docs/benchmarks.md, issue 27): with 10% of the
digits labelled the proposals on the rest went from 83.2% right to 95.1%; on the icons and the
faces about two points better on average (one faces start of three worse).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from finetune_gui.core.data.hashing import grey_thumbnail
from finetune_gui.core.data.pixel_measures import shrink

PIXEL_SIDE = 16


def grey_levels(fingerprints: Sequence[bytes | None]) -> np.ndarray:
    """(N, PIXEL_SIDE ** 2) grey levels 0-255 of each fingerprint's thumbnail, averaged down;
    a picture without a fingerprint gets the others' mean (it then adds nothing)."""
    rows = np.zeros((len(fingerprints), PIXEL_SIDE * PIXEL_SIDE), np.float32)
    known = np.array([f is not None for f in fingerprints], dtype=bool)
    for k, fingerprint in enumerate(fingerprints):
        if fingerprint is not None:
            rows[k] = shrink(grey_thumbnail(fingerprint), PIXEL_SIDE).ravel()
    if known.any() and not known.all():
        rows[~known] = rows[known].mean(axis=0)
    return rows


def spread_like(levels: np.ndarray, features: np.ndarray) -> np.ndarray:
    """The centred `levels`, scaled to spread as `features` do (the same mean squared distance
    from their centre), so that the head's one penalty weighs both views alike."""
    features, levels = np.asarray(features, np.float32), np.asarray(levels, np.float32)
    centred = levels - levels.mean(axis=0)
    spread = float(np.sqrt(np.mean(np.sum(centred**2, axis=1))))
    own = float(np.sqrt(np.mean(np.sum((features - features.mean(axis=0)) ** 2, axis=1))))
    return (centred * np.float32(own / spread if spread > 0 else 0.0)).astype(np.float32)


def beside(features: np.ndarray, grey: np.ndarray, weight: float = 1.0) -> np.ndarray:
    """`features` with the grey levels of `spread_like` beside them, `weight` times as spread."""
    return np.hstack([np.asarray(features, np.float32), grey * np.float32(weight)])
