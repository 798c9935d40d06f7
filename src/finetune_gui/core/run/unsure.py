""""Not sure": the rule that says a picture is unlike anything the model was trained on, or that
the model cannot decide, calibrated on the run's validation images and kept in `unsure.json`.

Three signals are measured: "confidence", the softmax maximum (low when the model hesitates;
known to stay high on many unrelated pictures); "content", the distance from the picture to its
nearest training image in the backbone's pooled features; and "look", the distances in
statistics of the backbone's first block's output (per channel: the mean over positions and the
log of the spread; colours, edges and texture: a base that never saw photos can still tell that
a photo does not look like an icon). The distances are in core/run/distance_signal.py. Each
candidate rule (any non-empty set of signals, "not sure" when any of them fires) gets
thresholds so that TARGET_RATE of the validation images would be "not sure", split evenly
between its signals. The candidate that catches the most pseudo-outliers made from the
validation images (tiles shuffled, smooth colour noise) is kept; fewer signals win a tie, and
more signals must win by more than a standard error. The file is plain JSON so that other
programs (an exported model, a web page) can apply the same rule; see `card_text` in
core/run/unsure_card.py.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from finetune_gui.core.events import CancelToken, LogMessage, ProgressCallback, ignore_progress
from finetune_gui.core.run.distance_signal import DistanceSignal, cuts_together

UNSURE_FILE = "unsure.json"
# 3: confidence held out for learned images, "look" adds the straight-line distance; 2: "look"
# adds the log spread
RULE_FORMAT = 3
TARGET_RATE = 0.05  # share of validation images the rule may call "not sure"
MAX_PSEUDO = 200  # validation images turned into pseudo-outliers for choosing the rule
SIGNALS = ("confidence", "look", "content")
UNLIKE = "unlike the training images"
UNDECIDED = "the model cannot decide"


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
            "look_straight": self.look.straight_distances(early, leave_out_self=training),
            "content": self.content.distances(pooled, leave_out_self=training),
            "content_straight": self.content.straight_distances(pooled, leave_out_self=training),
        }

    def flags(self, scores: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {
            "confidence": scores["confidence"] < self.min_confidence,
            "look": self.look.fires(scores["look"], scores["look_straight"]),
            "content": self.content.fires(scores["content"], scores["content_straight"]),
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
    leaves itself out; give the probabilities of learned images held out, see
    `unseen_probabilities`): a validation split of a few dozen images alone puts the cut at its one
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
                _with_cuts(look, calibration, "look", rate),
                _with_cuts(content, calibration, "content", rate),
            )
            name = "+".join(signals)
            candidates[name] = rule
            measured[name] = {
                "validation_unsure": rule.share(val_scores),
                "training_unsure": rule.share(train_scores),
                "pseudo_outliers_unsure": rule.share(pseudo_scores),
            }
    best = choose_candidate(measured, len(pseudo_scores["confidence"]))
    chosen = candidates[best]
    chosen.measured = {
        "target_rate": target_rate,
        "validation_images": len(val_scores["confidence"]),
        "training_images": len(train_scores["confidence"]),
        "pseudo_outliers": len(pseudo_scores["confidence"]),
        "reference_images": len(look.reference),
        "confidence_only_min_confidence": candidates["confidence"].min_confidence,
        "candidates": measured,
        "chosen_because": f"{best} caught {measured[best]['pseudo_outliers_unsure']:.0%} of "
        "pseudo-outliers (no candidate with as few signals caught more, none with more caught "
        f"clearly more) while calling {measured[best]['validation_unsure']:.0%} of validation "
        "images not sure",
    }
    return chosen


def choose_candidate(measured: dict[str, dict], pseudo_count: int) -> str:
    """The candidate (names in order of size) that catches the most pseudo-outliers; one with
    more signals must beat the best smaller one by more than a standard error.

    Each added signal halves the others' share of the rate: "confidence+look" caught 60% of
    pseudo-outliers against 59% for "look" alone, one image in a hundred, and the photo crops
    "not sure" fell from 91% to 72% (docs/benchmarks.md).
    """
    best, best_rate = None, -1.0
    for name, numbers in measured.items():
        rate = numbers["pseudo_outliers_unsure"]
        if best is None:
            best, best_rate = name, rate
            continue
        more = name.count("+") > best.count("+")
        margin = np.sqrt(best_rate * (1 - best_rate) / max(pseudo_count, 1)) if more else 0.0
        if rate > best_rate + margin:
            best, best_rate = name, rate
    return best


def _with_cuts(signal: DistanceSignal, calibration: dict, name: str, rate: float):
    if signal.points is None:
        return signal.with_cuts(np.quantile(calibration[name], 1 - rate, method="higher"))
    return signal.with_cuts(*cuts_together(calibration[name], calibration[f"{name}_straight"], rate))


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
    noise = np.empty_like(shuffled)
    for i in range(n):
        # One image at a time: the whole set's float64 noise was 0.5 GB at 224 px, the peak of
        # a 50,000-image run. The generator draws the same numbers either way.
        smooth = np.repeat(np.repeat(coarse[i], -(-size // 4), axis=0), -(-size // 4), axis=1)
        smooth = smooth[:size, :size] + rng.normal(0, 12, (size, size, 3))
        noise[i] = np.clip(smooth, 0, 255).astype(np.uint8)
    return np.concatenate([shuffled, noise])


def unsure_rule(
    run,
    *,
    model=None,
    data_root: Path | str | None = None,
    pixels: dict[str, np.ndarray] | None = None,
    seeing=None,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
    pseudo_rows: tuple | None = None,
) -> UnsureRule | None:
    """The run's rule from `unsure.json`, or calibrated now and saved (None: no validation
    images to calibrate on). `seeing`: the model's `probe_model` when the caller has it;
    `pseudo_rows`: the pseudo-outliers' (early, pooled, probabilities) when the caller has
    them (training took them in its frozen pass), else they go through the model now."""
    source = run.path / UNSURE_FILE
    if source.is_file():
        try:
            return UnsureRule.from_dict(json.loads(source.read_text("utf-8")))
        except (ValueError, KeyError, TypeError):
            pass  # a damaged rule, or one from an older version, is calibrated again
    from finetune_gui.core.model.parts import POOL_LAYER
    from finetune_gui.core.run.dataset_features import (
        dataset_features,
        early_layer,
        probe_model,
    )
    from finetune_gui.core.run.folder import write_json
    from finetune_gui.core.run.unseen_answers import (
        head_penalty,
        learned_parts,
        unseen_probabilities,
    )

    model = model or run.load_model()
    if POOL_LAYER not in [layer.name for layer in model.layers]:
        return None  # an ensemble (core/run/ensemble.py): no single feature space to measure in
    seeing = seeing or probe_model(model)
    found = dataset_features(run, model=model, pixels=pixels, seeing=seeing, data_root=data_root,
                             progress=progress, cancel=cancel)
    total = int(np.isin(found.parts, ("train", "val")).sum())
    val_images = int((found.parts == "val").sum())
    found = _within_budget(found, progress)
    val, train = found.of_part("val"), found.of_part("train")
    if not val.any() or not train.any():
        return None
    labels = found.labels[train]
    look = DistanceSignal.fit(early_layer(model), found.early[train], labels, straight=True)
    content = DistanceSignal.fit(POOL_LAYER, found.features[train], labels)
    pseudo = pseudo_rows or _pseudo_rows(run, seeing, found, val, val_images, pixels, cancel)
    learned = learned_parts(run.facts)
    found = replace(found, probabilities=unseen_probabilities(
        found, learned, head_penalty(run.facts), run.facts.temperature))
    rule = calibrate(look, content, _rows(found, val), _rows(found, train), pseudo)
    write_json(source, rule.to_dict())
    _note_in_run_facts(run, rule, sampled=len(found.labels) < total)
    return rule


def _pseudo_rows(run, seeing, found, val, val_images: int, pixels: dict | None, cancel):
    """The pseudo-outliers' (early, pooled, probabilities), through the whole model."""
    from finetune_gui.core.data.pipeline import decode_images
    from finetune_gui.core.run.dataset_features import probe

    val_pixels = (pixels or {}).get("val")
    if val_pixels is None or len(val_pixels) != val_images:
        # Only the images the pseudo-outliers are made from: all of them were 1.1 GB of pixels
        # for 7,500 validation images at 224 px.
        val_paths = [p for p, is_val in zip(found.paths, val, strict=True) if is_val]
        val_pixels = decode_images(val_paths[:MAX_PSEUDO], run.image_size, cancel=cancel,
                                   stage="features")
    return probe(seeing, pseudo_outliers(val_pixels), len(run.classes))


def _within_budget(found, progress: ProgressCallback):
    """The training and validation rows the rule is calibrated on: all of them, or a capped
    sample at one rate for both (their mix sets the thresholds), every class in proportion, read
    from features.npz (in RAM, or the disk store beyond the budget) without the rest. A
    threshold at a 5% rate and a mean need no more; the held-out answers then fit on it too."""
    from finetune_gui.core.data.storage import capped_sample, rows_in_budget

    own = np.flatnonzero(np.isin(found.parts, ("train", "val")))
    width = int(np.prod(found.features.shape[1:]))
    picked = capped_sample(found.labels[own], rows_in_budget(3 * 8 * width, share=8))
    if picked is None:
        return found
    rows = own[picked]
    progress(LogMessage(f'"Not sure" was calibrated on a sample of {len(rows):,} of the '
                        f"{len(own):,} training and validation images, so their features "
                        f"fit the memory budget."))
    return replace(found, paths=[found.paths[i] for i in rows], labels=found.labels[rows],
                   parts=found.parts[rows], features=np.asarray(found.features[rows]),
                   probabilities=found.probabilities[rows], early=found.early[rows],
                   held_out=None if found.held_out is None else found.held_out[rows])


def _note_in_run_facts(run, rule: UnsureRule, sampled: bool = False) -> None:
    """run.json's "unsure_rule": where the rule is, and the part any exported file can apply
    on its probabilities alone (the web page export reads it)."""
    from finetune_gui.core.run.record import update_facts

    summary = {
        "file": UNSURE_FILE,
        "signals": list(rule.signals),
        "min_confidence": rule.measured.get("confidence_only_min_confidence", 0.0),
    }
    if sampled:
        summary["sampled"] = True  # calibrated on a capped sample (the log says how many)
    update_facts(run.path, unsure_rule=summary)
    run.facts = run.facts.with_changes(unsure_rule=summary)


def _rows(found, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return found.early[mask], found.features[mask], found.probabilities[mask]
