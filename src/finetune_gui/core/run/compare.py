"""Runs side by side: which settings differ, how they scored, and their training curves."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

# Higher is better for every metric except those named here.
LOWER_IS_BETTER = frozenset({"best val_loss"})


@dataclass
class RunComparison:
    """Column i of every table is run i."""

    names: list[str]  # run folder names, made unique when two are alike
    paths: list[Path]
    differing: dict[str, list]  # setting -> value per run, only settings that differ
    shared: dict[str, object]  # settings every run had alike
    metrics: dict[str, list[float | int | str | None]]  # metric -> value per run
    histories: list[list[dict]] = field(default_factory=list)

    def best_run(self, metric: str) -> int | None:
        """Index of the run with the best value of a numeric metric (None: no run has one)."""
        values = [
            (v, i) for i, v in enumerate(self.metrics.get(metric, []))
            if isinstance(v, int | float) and not math.isnan(v)
        ]
        if not values:
            return None
        pick = min if metric in LOWER_IS_BETTER else max
        return pick(values)[1]

    def rows(self) -> list[list[str]]:
        """A text table: a header, then the differing settings, then the metrics."""
        table = [["", *self.names]]
        for name, values in self.differing.items():
            table.append([name, *(_text(v) for v in values)])
        for name, values in self.metrics.items():
            table.append([name, *(_text(v) for v in values)])
        return table

    def to_dict(self) -> dict:
        return {
            "runs": [{"name": n, "path": str(p)} for n, p in zip(self.names, self.paths, strict=True)],
            "differing": self.differing,
            "shared": self.shared,
            "metrics": self.metrics,
            "histories": self.histories,
        }


def compare_runs(runs: list) -> RunComparison:
    """Compare `RunFolder`s (or their paths): settings differences, metrics and histories."""
    from finetune_gui.core.run.folder import RunFolder

    folders = [r if isinstance(r, RunFolder) else RunFolder.open(r) for r in runs]
    settings = [flat_settings(f.settings.to_dict()) for f in folders]
    keys = sorted({key for s in settings for key in s})
    differing, shared = {}, {}
    for key in keys:
        values = [s.get(key) for s in settings]
        if all(v == values[0] for v in values):
            shared[key] = values[0]
        else:
            differing[key] = values
    return RunComparison(
        names=_unique_names(folders),
        paths=[f.path for f in folders],
        differing=differing,
        shared=shared,
        metrics=_metrics(folders),
        histories=[f.history for f in folders],
    )


def flat_settings(data: dict, prefix: str = "") -> dict:
    """Nested settings (augmentation) as one level: {"augment.flip": ...}."""
    flat = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flat_settings(value, f"{name}."))
        elif isinstance(value, list):
            flat[name] = tuple(value)
        else:
            flat[name] = value
    return flat


def _metrics(folders) -> dict[str, list]:
    rows: dict[str, list] = {
        "status": [],
        "test accuracy": [],
        "macro f1": [],
        "macro roc-auc": [],
        "test images": [],
        "epochs run": [],
        "best epoch": [],
        "best val_loss": [],
        "best val_accuracy": [],
    }
    for folder in folders:
        report, history = folder.report, folder.history
        rows["status"].append(folder.status)
        rows["test accuracy"].append(report.accuracy if report else None)
        rows["macro f1"].append(report.macro_avg.get("f1") if report else None)
        rows["macro roc-auc"].append(report.roc_auc.get("macro") if report else None)
        rows["test images"].append(report.count if report else None)
        rows["epochs run"].append(len(history))
        rows["best epoch"].append(folder.facts.get("best_epoch"))
        val_losses = [h["val_loss"] for h in history if h.get("val_loss") is not None]
        val_accuracies = [h["val_accuracy"] for h in history if h.get("val_accuracy") is not None]
        rows["best val_loss"].append(min(val_losses) if val_losses else None)
        rows["best val_accuracy"].append(max(val_accuracies) if val_accuracies else None)
    return rows


def _unique_names(folders) -> list[str]:
    names = [f.path.name for f in folders]
    if len(set(names)) == len(names):
        return names
    return [f"{f.path.parent.name}/{f.path.name}" for f in folders]


def _text(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, tuple):
        return ", ".join(_text(v) for v in value)
    return str(value)
