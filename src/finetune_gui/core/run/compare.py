"""Runs side by side: which settings differ, how they scored, and their training curves."""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

# Higher is better for every metric except those named here.
LOWER_IS_BETTER = frozenset({"best val_loss"})
# Rows that say which images a run learned from; they lead the differences when they differ.
DATA_FOLDER = "data folder"
DATA_IMAGES = "images (hash of names and classes)"
ENSEMBLE_OF = "ensemble of"  # the member runs' folder names; None for a run trained alone


@dataclass
class RunComparison:
    """Column i of every table is run i."""

    names: list[str]  # network · data folder · time · test accuracy, unique
    paths: list[Path]
    differing: dict[str, list]  # setting -> value per run, only settings that differ
    shared: dict[str, object]  # settings every run had alike
    metrics: dict[str, list[float | int | str | None]]  # metric -> value per run
    histories: list[list[dict]] = field(default_factory=list)

    @property
    def same_data(self) -> bool:
        """True when every run learned from the same images (or it cannot be told)."""
        return DATA_FOLDER not in self.differing and DATA_IMAGES not in self.differing

    @property
    def data_warning(self) -> str:
        """One sentence for runs on different images; empty when they share their data."""
        if self.same_data:
            return ""
        return ("These runs learned from different images, so their scores are not comparable "
                "and none is marked best.")

    def best_run(self, metric: str) -> int | None:
        """Index of the run with the best value of a numeric metric (None: no run has one, or
        the runs were trained on different data, where a score says nothing about the other)."""
        if not self.same_data:
            return None
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
    settings = [{**data_identity(f), ENSEMBLE_OF: _members_of(f),
                 **flat_settings(f.settings.to_dict())} for f in folders]
    keys = [DATA_FOLDER, DATA_IMAGES, *sorted({key for s in settings for key in s}
                                            - {DATA_FOLDER, DATA_IMAGES})]
    differing, shared = {}, {}
    for key in keys:
        values = [s.get(key) for s in settings]
        if all(v == values[0] for v in values):
            shared[key] = values[0]
        else:
            differing[key] = values
    return RunComparison(
        names=readable_names(folders),
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
        rows["best epoch"].append(folder.facts.best_epoch)
        val_losses = [h["val_loss"] for h in history if h.get("val_loss") is not None]
        val_accuracies = [h["val_accuracy"] for h in history if h.get("val_accuracy") is not None]
        rows["best val_loss"].append(min(val_losses) if val_losses else None)
        rows["best val_accuracy"].append(max(val_accuracies) if val_accuracies else None)
    return rows


def data_identity(folder) -> dict[str, str | None]:
    """The data folder a run learned from and a short hash of its images' names and classes.

    Read from the run's split.json (small), so comparing stays fast; the parts (train, val,
    test) are left out of the hash: another split of the same images is a setting, not other
    data. None where a run does not record it.
    """
    from finetune_gui.core.errors import RunFolderError
    from finetune_gui.core.run.folder import read_split_record

    try:
        split = read_split_record(folder.path)
        classes = split["classes"]
        lines = sorted(f"{name}\t{classes[int(label)]}" for part in ("train", "val", "test")
                       for name, label in split[part])
    except (RunFolderError, KeyError, IndexError, TypeError, ValueError):
        return {DATA_FOLDER: folder.facts.data, DATA_IMAGES: None}
    digest = hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:12]
    return {DATA_FOLDER: split.get("root") or folder.facts.data,
            DATA_IMAGES: f"{len(lines)} images, {digest}"}


def _members_of(folder) -> tuple[str, ...] | None:
    """The folder names of an ensemble run's members (from its run.json), else None."""
    members = folder.facts.ensemble_of
    return tuple(Path(m).name for m in members) if members else None


def readable_name(folder, state: str | None = None) -> str:
    """"MobileNetV3Small · shapes · 01 Dec 16:20 · 87.5%": what, on what, when, how well (or,
    without a test score, `state`: how the run ended, in words)."""
    from finetune_gui.core.errors import UserError
    from finetune_gui.core.model.backbones import get_backbone

    try:
        network = get_backbone(folder.settings.backbone).keras_name
    except UserError:
        network = folder.settings.backbone
    if _members_of(folder):
        network = f"Ensemble of {len(_members_of(folder))}"
    data = data_identity(folder)[DATA_FOLDER]
    updated = folder.facts.updated_at
    if updated is None:
        updated = folder.path.stat().st_mtime
    when = time.strftime("%d %b %H:%M", time.localtime(updated))
    report = folder.report
    score = f"{report.accuracy:.1%}" if report is not None else state or folder.status
    return " · ".join([network, Path(data).name if data else "unknown data", when, score])


def readable_names(folders) -> list[str]:
    """Each run's readable name; runs alike in all four get their folder name added."""
    names = [readable_name(f) for f in folders]
    return [f"{name} ({folder.path.name})" if names.count(name) > 1 else name
            for name, folder in zip(names, folders, strict=True)]


def _text(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, tuple):
        return ", ".join(_text(v) for v in value)
    return str(value)
