""""Not sure": the rule that says a picture is unlike anything the model was trained on, or that
the model cannot decide, calibrated on the run's validation images and kept in `unsure.json`.

Three signals are measured: "confidence", the softmax maximum (low when the model hesitates;
known to stay high on many unrelated pictures); "content", the distance from the picture to its
nearest training image in the backbone's pooled features; and "look", the same distance in
statistics of the backbone's first block's output (per channel: the mean over positions and the
log of the spread; colours, edges and texture: a base that never saw photos can still tell that
a photo does not look like an icon). Distances are cosine distances
after subtracting the training images' mean. Each candidate rule (any non-empty set of signals,
"not sure" when any of them fires) gets thresholds so that TARGET_RATE of the validation images
would be "not sure", split evenly between its signals. The candidate that catches the most
pseudo-outliers made from the validation images (tiles shuffled, smooth colour noise) is kept;
fewer signals win a tie. The file is plain JSON so that other programs (an exported model, a
web page) can apply the same rule; see `card_text` in core/run/unsure_card.py.
"""

from __future__ import annotations

import base64
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from finetune_gui.core.events import CancelToken, ProgressCallback, ignore_progress

UNSURE_FILE = "unsure.json"
RULE_FORMAT = 2  # 2: "look" measures mean and log spread (1: the mean only)
TARGET_RATE = 0.05  # share of validation images the rule may call "not sure"
MAX_REFERENCE = 1000  # training images kept as the distance reference (spread over classes)
MAX_PSEUDO = 200  # validation images turned into pseudo-outliers for choosing the rule
SIGNALS = ("confidence", "look", "content")
UNLIKE = "unlike the training images"
UNDECIDED = "the model cannot decide"


@dataclass
class DistanceSignal:
    """Distance to the nearest training image in one feature space, after centring."""

    layer: str
    mean: np.ndarray  # (C,) mean of the training features, subtracted first
    reference: np.ndarray  # (M, C) centred, L2-normalised training features
    max_distance: float = 2.0

    @classmethod
    def fit(cls, layer: str, train: np.ndarray, labels: np.ndarray) -> DistanceSignal:
        mean = train.mean(axis=0) if len(train) else np.zeros(train.shape[1], np.float32)
        reference = _unit(spread_reference(train, labels) - mean)
        return cls(layer, mean.astype(np.float32), reference.astype(np.float32))

    def distances(self, features: np.ndarray, leave_out_self: bool = False) -> np.ndarray:
        """Distance of each row to its nearest reference row (with `leave_out_self`, a training
        image's own row, at distance 0, does not count)."""
        if len(features) == 0 or len(self.reference) == 0:
            return np.zeros(len(features), np.float32)
        similarity = _unit(np.asarray(features, np.float32) - self.mean) @ self.reference.T
        if leave_out_self:
            similarity = np.where(similarity > 1 - 1e-6, -1.0, similarity)
        return (1.0 - similarity.max(axis=1)).astype(np.float32)

    def to_dict(self) -> dict:
        return {
            "layer": self.layer,
            "max_distance": round(float(self.max_distance), 6),
            "mean": [round(float(v), 7) for v in self.mean],
            "reference": _encode(self.reference),
        }

    @classmethod
    def from_dict(cls, data: dict) -> DistanceSignal:
        mean = np.asarray(data["mean"], np.float32)
        return cls(data["layer"], mean, _decode(data["reference"]), float(data["max_distance"]))


@dataclass
class UnsureRule:
    """How "not sure" is decided for one run, with the numbers that chose it."""

    signals: tuple[str, ...]  # the chosen subset of SIGNALS
    min_confidence: float  # "confidence": largest probability below this
    look: DistanceSignal
    content: DistanceSignal
    measured: dict = field(default_factory=dict)

    def scores(self, early, pooled, probabilities, training=False) -> dict[str, np.ndarray]:
        return {
            "confidence": np.asarray(probabilities).max(axis=1),
            "look": self.look.distances(early, leave_out_self=training),
            "content": self.content.distances(pooled, leave_out_self=training),
        }

    def flags(self, scores: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {
            "confidence": scores["confidence"] < self.min_confidence,
            "look": scores["look"] > self.look.max_distance,
            "content": scores["content"] > self.content.max_distance,
        }

    def judge(self, early, pooled, probabilities) -> list[str | None]:
        """For each image: None when sure, else the plain reason it is not."""
        flags = self.flags(self.scores(early, pooled, probabilities))
        verdicts: list[str | None] = []
        for i in range(len(flags["confidence"])):
            if any(flags[s][i] for s in ("look", "content") if s in self.signals):
                verdicts.append(UNLIKE)
            elif "confidence" in self.signals and flags["confidence"][i]:
                verdicts.append(UNDECIDED)
            else:
                verdicts.append(None)
        return verdicts

    def share(self, scores: dict[str, np.ndarray]) -> float:
        flags = self.flags(scores)
        n = len(scores["confidence"])
        if n == 0:
            return 0.0
        hit = np.zeros(n, bool)
        for s in self.signals:
            hit |= flags[s]
        return round(float(hit.mean()), 4)

    def to_dict(self) -> dict:
        data: dict = {
            "format": RULE_FORMAT,
            "signals": list(self.signals),
            "unsure_when": "any listed signal fires",
            "confidence": {"min_confidence": round(float(self.min_confidence), 6)},
        }
        for name in ("look", "content"):
            if name in self.signals:
                data[name] = getattr(self, name).to_dict()
        data["measured"] = self.measured
        return data

    @classmethod
    def from_dict(cls, data: dict) -> UnsureRule:
        if data.get("format") != RULE_FORMAT:
            raise ValueError(f"an unsure rule of format {data.get('format')}")
        signals = tuple(data["signals"])
        unused = DistanceSignal("", np.zeros(0, np.float32), np.zeros((0, 0), np.float32))
        return cls(
            signals,
            float(data["confidence"]["min_confidence"]),
            DistanceSignal.from_dict(data["look"]) if "look" in data else unused,
            DistanceSignal.from_dict(data["content"]) if "content" in data else unused,
            data.get("measured", {}),
        )


def _unit(features: np.ndarray) -> np.ndarray:
    from finetune_gui.core.run.dataset_features import normalise

    return normalise(features)


def _encode(array: np.ndarray) -> dict:
    array = np.ascontiguousarray(array, dtype="<f4")
    return {
        "dtype": "float32",
        "byte_order": "little",
        "shape": list(array.shape),
        "base64": base64.b64encode(array.tobytes()).decode("ascii"),
    }


def _decode(data: dict) -> np.ndarray:
    raw = base64.b64decode(data["base64"])
    return np.frombuffer(raw, dtype="<f4").reshape(data["shape"]).astype(np.float32)


def calibrate(
    look: DistanceSignal,
    content: DistanceSignal,
    val: tuple[np.ndarray, np.ndarray, np.ndarray],
    train: tuple[np.ndarray, np.ndarray, np.ndarray],
    pseudo: tuple[np.ndarray, np.ndarray, np.ndarray],
    target_rate: float = TARGET_RATE,
) -> UnsureRule:
    """Choose the signals and their thresholds; `val`, `train` and `pseudo` are (early
    features, pooled features, probabilities) of validation images, training images and
    pseudo-outliers.

    Thresholds come from validation and training images together (a training image's distance
    leaves itself out): a validation split of a few dozen images alone puts the cut at its one
    most extreme image, and the held-out test images then cross it far more often than asked
    (measured: 22% of 18 test images against 0% of 18 validation images).
    """
    probe = UnsureRule(SIGNALS, 0.0, look, content)
    val_scores = probe.scores(*val)
    train_scores = probe.scores(*train, training=True)
    calibration = {k: np.concatenate([val_scores[k], train_scores[k]]) for k in val_scores}
    pseudo_scores = probe.scores(*pseudo)
    candidates: dict[str, UnsureRule] = {}
    measured: dict[str, dict] = {}
    for size in (1, 2, 3):
        for signals in itertools.combinations(SIGNALS, size):
            rate = target_rate / len(signals)
            # "lower"/"higher": on a few validation images, never flag more of them than asked.
            rule = UnsureRule(
                signals,
                float(np.quantile(calibration["confidence"], rate, method="lower")),
                _with_threshold(look, np.quantile(calibration["look"], 1 - rate, method="higher")),
                _with_threshold(
                    content, np.quantile(calibration["content"], 1 - rate, method="higher")
                ),
            )
            name = "+".join(signals)
            candidates[name] = rule
            measured[name] = {
                "validation_unsure": rule.share(val_scores),
                "training_unsure": rule.share(train_scores),
                "pseudo_outliers_unsure": rule.share(pseudo_scores),
            }
    best = max(candidates, key=lambda n: measured[n]["pseudo_outliers_unsure"])
    chosen = candidates[best]
    chosen.measured = {
        "target_rate": target_rate,
        "validation_images": len(val_scores["confidence"]),
        "training_images": len(train_scores["confidence"]),
        "pseudo_outliers": len(pseudo_scores["confidence"]),
        "reference_images": len(look.reference),
        "confidence_only_min_confidence": candidates["confidence"].min_confidence,
        "candidates": measured,
        "chosen_because": f"{best} caught the most pseudo-outliers "
        f"({measured[best]['pseudo_outliers_unsure']:.0%}) while calling "
        f"{measured[best]['validation_unsure']:.0%} of validation images not sure",
    }
    return chosen


def _with_threshold(signal: DistanceSignal, threshold: float) -> DistanceSignal:
    return DistanceSignal(signal.layer, signal.mean, signal.reference, float(threshold))


def pseudo_outliers(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """Pictures made from validation images that belong to no class: each image's 4x4 tiles
    shuffled, and smooth random colour fields of the same size."""
    rng = np.random.default_rng(seed)
    images = np.asarray(images[:MAX_PSEUDO])
    n, size = len(images), images.shape[1] if len(images) else 0
    if n == 0:
        return images
    tile = size // 4
    shuffled = images.copy()
    for i in range(n):
        tiles = [
            images[i, r * tile : (r + 1) * tile, c * tile : (c + 1) * tile]
            for r in range(4)
            for c in range(4)
        ]
        order = rng.permutation(16)
        for slot, source in enumerate(order):
            r, c = divmod(slot, 4)
            shuffled[i, r * tile : (r + 1) * tile, c * tile : (c + 1) * tile] = tiles[source]
    coarse = rng.integers(0, 256, (n, 4, 4, 3)).astype(np.float32)
    smooth = np.repeat(np.repeat(coarse, -(-size // 4), axis=1), -(-size // 4), axis=2)
    smooth = smooth[:, :size, :size] + rng.normal(0, 12, (n, size, size, 3))
    noise = np.clip(smooth, 0, 255).astype(np.uint8)
    return np.concatenate([shuffled, noise])


def spread_reference(features: np.ndarray, labels: np.ndarray, limit: int = MAX_REFERENCE):
    """At most `limit` rows, taken evenly from each class so no class is left without any."""
    if len(features) <= limit:
        return features
    keep: list[int] = []
    classes = np.unique(labels)
    per_class = max(1, limit // len(classes))
    for label in classes:
        rows = np.flatnonzero(labels == label)
        keep += rows[np.linspace(0, len(rows) - 1, min(per_class, len(rows))).astype(int)].tolist()
    return features[sorted(keep)]


def unsure_rule(
    run,
    *,
    model=None,
    data_root: Path | str | None = None,
    pixels: dict[str, np.ndarray] | None = None,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> UnsureRule | None:
    """The run's rule from `unsure.json`, or calibrated now and saved (None: no validation
    images to calibrate on)."""
    source = run.path / UNSURE_FILE
    if source.is_file():
        try:
            return UnsureRule.from_dict(json.loads(source.read_text("utf-8")))
        except (ValueError, KeyError, TypeError):
            pass  # a damaged rule, or one from an older version, is calibrated again
    from finetune_gui.core.data.pipeline import decode_images
    from finetune_gui.core.model.parts import POOL_LAYER
    from finetune_gui.core.run.dataset_features import (
        dataset_features,
        early_layer,
        probe,
        probe_model,
    )
    from finetune_gui.core.run.folder import write_json

    model = model or run.load_model()
    if POOL_LAYER not in [layer.name for layer in model.layers]:
        return None  # an ensemble (core/run/ensemble.py): no single feature space to measure in
    found = dataset_features(
        run, model=model, pixels=pixels, data_root=data_root, progress=progress, cancel=cancel
    )
    val, train = found.of_part("val"), found.of_part("train")
    if not val.any() or not train.any():
        return None
    labels = found.labels[train]
    look = DistanceSignal.fit(early_layer(model), found.early[train], labels)
    content = DistanceSignal.fit(POOL_LAYER, found.features[train], labels)
    val_pixels = (pixels or {}).get("val")
    if val_pixels is None or len(val_pixels) != int(val.sum()):
        val_paths = [p for p, is_val in zip(found.paths, val, strict=True) if is_val]
        val_pixels = decode_images(val_paths, run.image_size, cancel=cancel, stage="features")
    pseudo = probe(probe_model(model), pseudo_outliers(val_pixels), len(run.classes))
    rule = calibrate(look, content, _rows(found, val), _rows(found, train), pseudo)
    write_json(source, rule.to_dict())
    _note_in_run_facts(run, rule)
    return rule


def _note_in_run_facts(run, rule: UnsureRule) -> None:
    """run.json's "unsure_rule": where the rule is, and the part any exported file can apply
    on its probabilities alone (the web page export reads it)."""
    from finetune_gui.core.run.folder import RUN_FILE, write_json

    path = run.path / RUN_FILE
    facts = json.loads(path.read_text("utf-8")) if path.is_file() else {}
    facts["unsure_rule"] = {
        "file": UNSURE_FILE,
        "signals": list(rule.signals),
        "min_confidence": rule.measured.get("confidence_only_min_confidence", 0.0),
    }
    write_json(path, facts)
    run.facts["unsure_rule"] = facts["unsure_rule"]


def _rows(found, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return found.early[mask], found.features[mask], found.probabilities[mask]
