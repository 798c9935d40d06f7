"""The model card as a page a person reads (model_card.md), written from the card's data."""

from __future__ import annotations

from finetune_gui.core.export.benchmark import speed_card_lines
from finetune_gui.core.export.verify import NOT_CHECKED_IN_BROWSER
from finetune_gui.core.run.calibration import calibration_text
from finetune_gui.core.run.ensemble import ensemble_card_lines
from finetune_gui.core.run.intervals import kfold_text
from finetune_gui.core.words import counted


def card_markdown(card: dict) -> str:
    """The model card as a page a person reads."""
    v = card["verification"]
    data = card["dataset"]
    source = card["input"]
    settings = card["training"]["settings"]
    lines = [
        f"# {card['name']}: {card['format_title']}",
        "",
        f"{card['purpose']}",
        "",
        f"- File: `{card['file']}` (sha256 `{card['file_sha256']}`)",
        f"- Labels: `{card['labels_file']}`, one class a line, in output order",
        f"- Exported {card['exported']} with finetune-gui {card['exported_with']['finetune_gui']}, "
        f"TensorFlow {card['exported_with']['tensorflow']}, Keras {card['exported_with']['keras']}",
        "",
        *_other_format_lines(card.get("other_formats", []), card["input"]),
        "## Classes",
        "",
        *[f"{i}. {name}" for i, name in enumerate(card["classes"])],
        "",
        "## Input and output",
        "",
        f"- Input `{source['name']}`: {source['dtype']}, shape "
        f"{_shape(source['shape'])}, {source['colour']} pixels "
        f"{source['pixel_range'][0]}-{source['pixel_range'][1]}, "
        f"{source['resize']}; preprocessing is {source['preprocessing']}.",
    ]
    if "quantization" in source:
        q = source["quantization"]
        lines.append(
            f"- Quantisation: input scale {q['input']['scale']:g}, zero point "
            f"{q['input']['zero_point']}; output scale {q['output']['scale']:g}, zero point "
            f"{q['output']['zero_point']} ({q['rule']})."
        )
    lines += [
        f"- Output `{card['output']['name']}`: shape {_shape(card['output']['shape'])}, "
        f"{card['output']['meaning']}.",
        "",
        "## Model and training",
        "",
        f"- Backbone: {card['backbone']['keras_application']} "
        f"({card['backbone']['params_millions']} M parameters), weights: "
        f"{card['backbone']['weights']}",
        f"- Training at {card['input']['shape'][1]} px: "
        f"{counted(settings['epochs_head'], 'epoch')} "
        f"on the new head (learning rate {settings['lr_head']:g}), "
        f"{counted(settings['epochs_finetune'], 'epoch')} of fine-tuning with the top "
        f"{counted(settings['unfreeze_blocks'], 'block')} unfrozen; "
        f"batch {settings['batch_size']}, "
        f"{settings['optimizer']}, augmentation {_augment_text(settings['augment'])}, "
        f"dropout {settings['dropout']:g}, seed {settings['seed']}",
        f"- Run status: {card['training']['status']}; best epoch: "
        f"{card['training']['best_epoch']}",
        "",
        *ensemble_card_lines(card.get("ensemble")),
        "## Data",
        "",
        f"- Folder: `{data['root']}`, {data['images']} images: {data['counts']['train']} "
        f"train, {data['counts']['val']} validation, {data['counts']['test']} test "
        f"(split seed {data['split_seed']})",
        *[
            f"- {name}: {c['train']} train, {c['val']} validation, {c['test']} test"
            for name, c in data["per_class"].items()
        ],
        f"- Content hash: `{data['content_sha256'] or 'not available'}` ({data['hash_note']})",
        f"- File list hash: `{data['file_list_sha256']}`",
        "",
        "## Test results",
        "",
    ]
    metrics = card["test_metrics"]
    if metrics is None:
        lines.append("Not measured: the run ended before its test images were evaluated.")
    else:
        lines += [
            f"Accuracy {metrics['accuracy']:.1%}{_accuracy_interval(metrics)} on "
            f"{metrics['images']} test images; macro F1 {metrics['macro_avg'].get('f1', 0):.3f}.",
            *([metrics["rough_estimate_note"]] if metrics.get("rough_estimate_note") else []),
            *([kfold_text(metrics["kfold_estimate"]) + "."] if metrics.get("kfold_estimate") else []),
            *([calibration_text(metrics["calibration_error"],
                                metrics.get("calibration_error_by_chance"))]
              if metrics.get("calibration_error") is not None else []),
            "",
            "| class | precision | recall | recall 95% interval | F1 | images |",
            "|---|---|---|---|---|---|",
            *[
                f"| {m['name']} | {m['precision']:.3f} | {m['recall']:.3f} | "
                f"{_range(m.get('recall_interval'))} | {m['f1']:.3f} | {m['support']} |"
                for m in metrics["per_class"]
            ],
        ]
    if "usage_web" in card:
        runtime = card["web_runtime"]
        lines += [
            "",
            "## Use it in a web browser",
            "",
            card["usage_web"].rstrip("\n"),
            "",
            f"Runtime inside the page: {runtime['package']} {runtime['version']} (npm, MIT "
            f"licence); sha256 of its files: "
            + ", ".join(f"{name} `{digest}`" for name, digest in runtime["files"].items()),
        ]
    lines += ["", *_check_lines(v)]
    lines += [
        *speed_card_lines(card.get("size_and_speed")),
        "## Use it in Python",
        "",
        "Run beside the model file, labels.txt and load_image.py (the loader training used):",
        "",
        "```python",
        card["usage_python"].rstrip("\n"),
        "```",
        "",
    ]
    return "\n".join(lines)


def _other_format_lines(others: list[dict], source: dict) -> list[str]:
    """The same model in other formats in this folder (model_card.json's `other_formats`
    holds each one's details as its own card had them); `source`: this file's input."""
    if not others:
        return []
    lines = ["## The same model in other formats here", ""]
    for other in others:
        check = other.get("verification") or {}
        checked = (f"; gave the trained model's top class on {check['agreement']:.1%} of "
                   f"{check['n_images']} {check['images']}" if "agreement" in check else "")
        lines.append(f"- `{other['file']}`: {other.get('format_title', other.get('format'))}, "
                     f"exported {other.get('exported', '(time not recorded)')}{checked}")
    same = ("The classes, input, output and training below are the same for each."
            if all(other.get("input", source) == source for other in others) else
            "The classes, output and training below are the same for each; an int8 file takes "
            "its input quantised (each file's input is in model_card.json).")
    return [*lines, "", same, ""]


def _check_lines(v: dict) -> list[str]:
    """How the file was checked against the trained model; a page no browser opened says so."""
    same = f"- Same top class: {v['agreement']:.1%} of images" + (
        f" ({counted(v['near_tie_flips'], 'swap')} where the Keras model's top two classes were "
        f"within {v['tie_margin']:g}, counted as agreeing: {v['judged_agreement']:.1%})"
        if v["near_tie_flips"]
        else ""
    )
    largest = f"- Largest difference of any class probability: {v['max_abs_diff']:.3g}"
    if v.get("not_checked"):
        return [
            "## Check of this file",
            "",
            f"**This page was {NOT_CHECKED_IN_BROWSER}**: {v['not_checked']}. Only the model "
            f"inside it was checked: run with ONNX Runtime for Python on {v['n_images']} "
            f"{v['images']} and compared with the Keras model:",
            "",
            same,
            largest,
            f"- Required of the model inside: at least {v['min_agreement']:.0%} agreement; met.",
            "",
        ]
    return [
        "## Verification of this file",
        "",
        f"Reloaded with its own runtime and run on {v['n_images']} {v['images']}, then "
        f"compared with the Keras model:",
        "",
        same,
        largest,
        f"- Required: at least {v['min_agreement']:.0%} agreement; passed.",
        "",
    ]


def _shape(shape: list) -> str:
    return "[" + ", ".join("batch" if d is None else str(d) for d in shape) + "]"


def _augment_text(augment: dict) -> str:
    active = [f"{k} {v}" for k, v in augment.items() if v not in (0, 0.0, "none", None, "")]
    return ", ".join(active) if active else "none"


def _accuracy_interval(metrics: dict) -> str:
    """' (95% interval 43.8%-83.7%)', or '' for a card written before intervals existed."""
    interval = metrics.get("accuracy_interval_95")
    return f" (95% interval {interval[0]:.1%}-{interval[1]:.1%})" if interval else ""


def _range(interval) -> str:
    return f"{interval[0]:.3f}-{interval[1]:.3f}" if interval else "-"
