"""The model card as data (model_card.json): the file, its input and output, the model, the data."""

from __future__ import annotations

import hashlib
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np

from finetune_gui import __version__
from finetune_gui.core.data.split import DatasetSplit
from finetune_gui.core.events import ProgressCallback, ignore_progress
from finetune_gui.core.export import web
from finetune_gui.core.export.dataset_summary import dataset_summary
from finetune_gui.core.export.formats import ExportFormat
from finetune_gui.core.export.serving import INPUT_NAME, OUTPUT_NAME
from finetune_gui.core.export.snippets import usage_snippet
from finetune_gui.core.export.verify import Verification
from finetune_gui.core.model.backbones import get_backbone, weights_kind, weights_phrase
from finetune_gui.core.run.ensemble import read_ensemble
from finetune_gui.core.run.folder import LABELS_FILE, RunFolder

CARD_MARKDOWN = "model_card.md"
CARD_JSON = "model_card.json"

PREPROCESSING = {
    "tf": "scaled to -1..1",
    "caffe": "RGB to BGR, ImageNet mean subtracted",
    "torch": "ImageNet mean and standard deviation",
    "none": "the backbone normalises the pixels itself",
}


def model_card(
    run: RunFolder,
    spec: ExportFormat,
    model_file: Path,
    file_name: str,
    split: DatasetSplit,
    verification: Verification,
    progress: ProgressCallback = ignore_progress,
) -> dict:
    """Everything a user of the file needs to know, as a JSON-ready dict."""
    import keras
    import tensorflow as tf

    backbone = get_backbone(run.settings.backbone)
    size = run.image_size
    report = run.report
    quantisation = _tflite_quantisation(model_file) if spec.name == "tflite-int8" else None
    card = {
        "name": run.path.name,
        "format": spec.name,
        "format_title": spec.title,
        "purpose": spec.purpose,
        "file": file_name,
        "file_sha256": tree_sha256(model_file),
        "labels_file": LABELS_FILE,
        "exported": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "exported_with": {
            "finetune_gui": __version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
        "classes": list(run.classes),
        "input": _input_card(size, backbone.preprocess, quantisation),
        "output": {
            "name": OUTPUT_NAME,
            "shape": [None, len(run.classes)],
            "meaning": "softmax probabilities, one per class in labels.txt order (sum 1)",
            "calibration": _calibration_card(run.facts),
        },
        "backbone": {
            "name": backbone.name,
            "keras_application": backbone.keras_name,
            "weights": _weights_text(run.settings.weights),
            "params_millions": backbone.params_millions,
        },
        "training": {
            "settings": run.settings.to_dict(),
            "status": run.status,
            "best_epoch": run.facts.best_epoch,
            "trained_with": {"tensorflow": run.facts.tensorflow, "keras": run.facts.keras,
                             "finetune_gui": run.facts.finetune_gui},
        },
        "dataset": dataset_summary(split, progress),
        "test_metrics": _metrics_card(report),
        "verification": verification.to_dict(),
        "usage_python": usage_snippet(spec, file_name, size, quantisation),
    }
    members = read_ensemble(run)
    if members is not None:
        card["ensemble"] = members
    if spec.name == "web":
        config = web.page_config(
            run.path.name, list(run.classes), size, report, run.facts, INPUT_NAME, OUTPUT_NAME
        )
        card["usage_web"] = web.api_doc(file_name, config)
        card["web_runtime"] = web.runtime_facts(web.require_runtime())
    return card


def _input_card(size: int, preprocess: str, quantisation: tuple[dict, dict] | None) -> dict:
    data = {
        "name": INPUT_NAME,
        "shape": [None, size, size, 3],
        "dtype": "float32",
        "pixel_range": [0, 255],
        "colour": "RGB",
        "resize": f"bilinear to {size} x {size} pixels, whole image, no crop",
        "preprocessing": f"inside the model ({PREPROCESSING[preprocess]}); give raw pixels",
    }
    if quantisation is not None:
        source, result = quantisation
        data["dtype"] = np.dtype(source["dtype"]).name
        data["quantization"] = {
            "input": {"scale": source["scale"], "zero_point": source["zero_point"]},
            "output": {"scale": result["scale"], "zero_point": result["zero_point"]},
            "rule": "input = round(pixel / scale + zero_point); "
            "probability = (output - zero_point) * scale",
        }
    return data


def _tflite_quantisation(model_file: Path) -> tuple[dict, dict]:
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(model_file))

    def describe(detail: dict) -> dict:
        scale, zero_point = detail["quantization"]
        return {"dtype": detail["dtype"], "scale": float(scale), "zero_point": int(zero_point)}

    return (
        describe(interpreter.get_input_details()[0]),
        describe(interpreter.get_output_details()[0]),
    )


def _weights_text(weights: str) -> str:
    """The weights as the window names them (`weights_phrase`), with where they came from."""
    kind = weights_kind(weights)
    if kind == "none":
        return "none (trained from scratch)"
    source = " (Keras Applications)" if kind == "imagenet" else ", a local file"
    return weights_phrase(weights) + source


def _calibration_card(facts) -> dict:
    """How the probabilities were calibrated (core/run/calibration.py), in the file itself."""
    if not facts.calibration:
        return {"temperature": 1.0, "note": "not calibrated (a run from before calibration, or "
                                            "too few images it did not learn)"}
    return {"temperature": facts.temperature, "answers": facts.calibration.get("answers"),
            "note": "the logits are divided by the temperature inside the model file, fitted on "
                    "answers about images the model did not learn; every answer is unchanged"}


def _metrics_card(report) -> dict | None:
    if report is None:
        return None
    return {
        "images": report.count,
        "accuracy": report.accuracy,
        "accuracy_interval_95": report.accuracy_interval,
        "rough_estimate_note": report.rough_note,
        "kfold_estimate": report.kfold,
        "macro_avg": report.macro_avg,
        "weighted_avg": report.weighted_avg,
        "per_class": [asdict(m) for m in report.per_class],
        "roc_auc": report.roc_auc,
        **report.calibration_facts(),
    }


def tree_sha256(path: Path) -> str:
    """sha256 of a file, or of a folder's relative paths and file hashes in sorted order."""
    if path.is_file():
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    digest = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{item.relative_to(path).as_posix()}\t{tree_sha256(item)}\n".encode())
    return digest.hexdigest()

