"""The "not sure" rule written for people and other programs: the exact steps to apply it with
an exported file (model cards, the report), and the card's part that goes beside each export.
The rule itself is in core/run/unsure.py."""

from __future__ import annotations

from pathlib import Path

from finetune_gui.core.run.unsure import UNSURE_FILE, UnsureRule, unsure_rule


def card_text(rule: UnsureRule | None, fmt: str) -> str:
    """How to apply the rule with an exported file of format `fmt`, in exact steps."""
    if rule is None:
        return "No \"not sure\" rule: the run had no validation images to calibrate one."
    parts = []
    if "confidence" in rule.signals:
        parts.append(f"the largest probability is below {rule.min_confidence:.6f}")
    for name in ("look", "content"):
        if name in rule.signals:
            signal = getattr(rule, name)
            if name == "look":
                features = (
                    f"for each channel of the output of layer '{signal.layer}' inside the "
                    "backbone model, the mean over all positions; then, for each channel, the "
                    "natural log of (the standard deviation over all positions + 0.001)"
                )
            else:
                features = f"the output of layer '{signal.layer}'"
            parts.append(
                f"the {name} distance is above {signal.max_distance:.6f} (features: {features}; "
                f"subtract unsure.json's {name}.mean, divide by the length, distance = 1 - "
                f"largest dot product with the rows of {name}.reference)"
            )
            if signal.points is not None:
                parts.append(
                    f"the {name} straight-line distance is above {signal.max_straight:.6f} (the "
                    f"same features minus {name}.mean, not divided by their length; distance = "
                    f"the smallest Euclidean distance to the rows of {name}.points)"
                )
    text = "Answer \"not sure\" when " + ", or ".join(parts) + ". The rule is in unsure.json."
    if any(s in rule.signals for s in ("look", "content")) and fmt != "keras":
        fallback = rule.measured.get("confidence_only_min_confidence", rule.min_confidence)
        text += (
            f" This {fmt} file outputs only the probabilities, so the distances need the run's "
            f"model.keras; with this file alone, apply the probability part only: not sure when "
            f"the largest probability is below {fallback:.6f} (calibrated alone at the same "
            f"rate on validation images)."
        )
    return text


def unsure_for_export(run, model, out: Path, fmt: str) -> dict:
    """The model card's "not sure" part; unsure.json is copied into `out` beside the model."""
    rule = unsure_rule(run, model=model)
    if rule is None and run.facts.ensemble_of:
        return {"rule": None, "how_to_apply": (
            "No \"not sure\" rule: this model is an ensemble of several runs, with no single "
            "feature space to measure distances in; each member run has its own rule.")}
    if rule is None:
        return {"rule": None, "how_to_apply": card_text(None, fmt)}
    (Path(out) / UNSURE_FILE).write_text((run.path / UNSURE_FILE).read_text("utf-8"), "utf-8")
    return {
        "rule": UNSURE_FILE,
        "signals": list(rule.signals),
        "min_confidence": rule.min_confidence,
        "look_max_distance": rule.look.max_distance if "look" in rule.signals else None,
        "look_max_straight_distance": (
            rule.look.max_straight if "look" in rule.signals and rule.look.points is not None
            else None
        ),
        "content_max_distance": rule.content.max_distance if "content" in rule.signals else None,
        "measured": {k: v for k, v in rule.measured.items() if k != "candidates"},
        "how_to_apply": card_text(rule, fmt),
    }


def unsure_markdown(part: dict) -> str:
    """The card's "Not sure" section, in Markdown."""
    return "\n## Not sure\n\n" + part["how_to_apply"] + "\n"
