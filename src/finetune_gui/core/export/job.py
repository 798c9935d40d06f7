"""Exporting a trained model for other programs, checked before it is kept.

Every export is built in a private scratch folder, reloaded with the runtime that will use it
(Keras, TensorFlow, TensorFlow Lite, ONNX Runtime) and compared with the Keras model on
held-out images. Only a file that passes is copied to the destination, together with
labels.txt, metrics.json and a model card (Markdown and JSON); the copies are staged beside
their targets and renamed into place at the end, so a failure, a full disk or a cancel leaves
no partial file behind.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from dataclasses import replace as changed
from pathlib import Path

from finetune_gui.core.errors import ExportError, SettingsError
from finetune_gui.core.events import (
    CancelToken,
    LogMessage,
    ProgressCallback,
    StageProgress,
    StageStarted,
    check_cancel,
    ignore_progress,
)
from finetune_gui.core.export import web
from finetune_gui.core.export.availability import NO_CHROMIUM
from finetune_gui.core.export.benchmark import SpeedMeasurement, measure_speed, record_export
from finetune_gui.core.export.browser_check import find_chromium
from finetune_gui.core.export.card import CARD_JSON, CARD_MARKDOWN, model_card
from finetune_gui.core.export.card_markdown import card_markdown
from finetune_gui.core.export.check_images import (
    calibration_paths,
    decode,
    load_split,
    verification_paths,
)
from finetune_gui.core.export.convert import convert, require_onnx
from finetune_gui.core.export.destination import check_destination, publish, resolve_destination
from finetune_gui.core.export.earlier import earlier_export, other_formats, stale_companions
from finetune_gui.core.export.formats import FORMATS, ExportFormat, export_format
from finetune_gui.core.export.runtimes import predict_keras_model, run_export
from finetune_gui.core.export.session import session_models
from finetune_gui.core.export.templates import LOADER_FILE, LOADER_TEMPLATE
from finetune_gui.core.export.verify import (
    Verification,
    failure_message,
    judge,
    verification_line,
)
from finetune_gui.core.run.folder import RunFolder
from finetune_gui.core.run.unsure import UNSURE_FILE
from finetune_gui.core.run.unsure_card import unsure_for_export, unsure_markdown

STEPS = ("images", "convert", "verify", "speed", "card", "save")


@dataclass(frozen=True)
class ExportResult:
    format: str
    model_path: Path
    written: list[Path]  # model, labels.txt, metrics.json (if the run has it), cards, unsure.json
    card_markdown: Path
    card_json: Path
    verification: Verification
    speed: SpeedMeasurement | None = None  # size and time per image on this computer
    replaced: list[Path] = field(default_factory=list)  # an earlier export's files, now gone
    beside: list[Path] = field(default_factory=list)  # the same run's other formats there

    @property
    def agreement(self) -> float:
        return self.verification.agreement

    @property
    def max_abs_diff(self) -> float:
        return self.verification.max_abs_diff

    @property
    def n_images(self) -> int:
        return self.verification.n_images


def export_model(
    run: RunFolder | Path | str,
    fmt: str,
    to: Path | str,
    *,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
    data_root: Path | str | None = None,
    min_agreement: float | None = None,
    in_browser: bool | None = None,
    replace: bool = False,
) -> ExportResult:
    """Write `run`'s model as `fmt` to `to`, verified, with labels and a model card beside it.

    `to` ending in the format's suffix (.keras, .tflite, .onnx) names the model file; anything
    else is a folder (created, with any missing parents) that receives the model under its
    default name. A web page is checked in headless Chromium; without one it is still written,
    its model checked in ONNX Runtime, and marked not checked in a browser (`not_checked`).
    `in_browser` is that choice made by the caller (the window asks `format_availability` in
    its own process); None looks for Chromium here. `data_root` is where the run's images are
    now, if the folder was moved. `min_agreement` overrides the format's floor for the share
    of images where the export and Keras agree. An earlier export's files at the destination
    are replaced only with `replace` (its companions the new export does not write go too);
    without it the export is refused before any work (`earlier.py`).
    """
    run = run if isinstance(run, RunFolder) else RunFolder.open(run)
    spec = export_format(fmt)
    if fmt in ("onnx", "web"):
        require_onnx()
    if fmt == "web":
        web.require_runtime()
    if in_browser is None:
        in_browser = find_chromium() is not None
    in_browser = fmt == "web" and in_browser
    floor = spec.min_agreement if min_agreement is None else float(min_agreement)
    if not 0.0 <= floor <= 1.0:
        raise SettingsError(f"The minimum agreement must be between 0 and 1; got {min_agreement}.")
    folder, model_target = resolve_destination(spec, to)
    check_destination(run.path, spec, folder, model_target)
    earlier = earlier_export(folder, model_target, run)
    if earlier is not None and not replace:
        raise ExportError(earlier.refusal())
    beside = [] if earlier is not None else other_formats(folder, model_target, run)
    progress(StageStarted("export", len(STEPS), f"Exporting {run.path.name} as {spec.title}"))

    scratch = Path(tempfile.mkdtemp(prefix="finetune-gui-export-"))
    try:
        out = scratch / "out"
        out.mkdir()
        split = load_split(run, data_root)
        verify_paths, described = verification_paths(split, progress)
        verify_images = decode(verify_paths, run.image_size, progress, cancel)
        calibration = None
        if fmt == "tflite-int8":
            calibration = decode(
                calibration_paths(split), run.image_size, progress, cancel
            )
        progress(StageProgress("export", 1, len(STEPS)))
        check_cancel(cancel)

        model = session_models.model(run)
        # First: the web page reads the rule from the run's facts while it is built.
        not_sure = unsure_for_export(run, model, out, spec.name)
        reference = predict_keras_model(model, verify_images)
        built = out / model_target.name
        convert(spec, run, model, built, calibration)
        progress(StageProgress("export", 2, len(STEPS)))
        check_cancel(cancel)

        if fmt == "web" and not in_browser:
            verification = _check_model_inside(built, reference, verify_images, spec, floor,
                                               described)
        else:
            # The web page is checked on the image files themselves (it prepares their pixels),
            # its answers read by the run's class names: a page naming the classes wrongly fails.
            inputs = (verify_paths, list(run.classes)) if fmt == "web" else verify_images
            exported = run_export(spec, built, inputs)
            verification = judge(reference, exported, spec, floor, described)
        progress(LogMessage(f"{spec.title}: " + verification_line(verification)))
        if not verification.passed:
            raise ExportError(failure_message(spec, verification))
        progress(StageProgress("export", 3, len(STEPS)))
        check_cancel(cancel)

        speed = None  # a web page is timed in the browser: without one, not at all
        if fmt != "web" or in_browser:
            speed = measure_speed(spec.name, built, verify_images[0], verify_paths[0])
            progress(LogMessage(f"{spec.title}: {speed.size_text}, {speed.ms_per_image:.1f} ms "
                                f"per image (batch 1, median of {speed.runs} runs)."))
        progress(StageProgress("export", 4, len(STEPS)))
        check_cancel(cancel)

        results = run.copy_results_into(out)
        card = model_card(run, spec, built, model_target.name, split, verification, progress)
        card["size_and_speed"] = speed.to_dict() if speed else None
        if fmt == "web":
            card["checked_in_browser"] = in_browser
        card["not_sure"] = not_sure
        if beside:  # the same run's other formats in the folder: this card describes them too
            card["other_formats"] = beside
        (out / CARD_JSON).write_text(
            json.dumps(card, indent=2, ensure_ascii=False), encoding="utf-8"
        )
        (out / CARD_MARKDOWN).write_text(
            card_markdown(card) + unsure_markdown(not_sure), encoding="utf-8"
        )
        shutil.copyfile(LOADER_TEMPLATE, out / LOADER_FILE)  # the card's snippet imports it
        progress(StageProgress("export", 5, len(STEPS)))
        check_cancel(cancel)

        names = [model_target.name, *results]
        names += [CARD_MARKDOWN, CARD_JSON, LOADER_FILE]
        names += [UNSURE_FILE] if (out / UNSURE_FILE).is_file() else []
        written = publish([(out / name, folder / name) for name in names], folder, cancel)
        for stale in stale_companions(earlier, written):
            try:
                stale.unlink(missing_ok=True)  # it described the model just replaced
            except OSError:
                progress(LogMessage(f"{stale} is left from the earlier export and could not be "
                                    f"removed; it describes the model that was replaced.",
                                    level="warning"))
        if earlier is not None:
            progress(LogMessage(f"Replaced the earlier export's {earlier.description()}."))
        progress(StageProgress("export", 6, len(STEPS)))
        progress(LogMessage(f"Exported {model_target} ({spec.title})."))
        if speed is not None:
            record_export(run.path, speed, model_target)
        return ExportResult(
            fmt, model_target, written, folder / CARD_MARKDOWN, folder / CARD_JSON, verification,
            speed, list(earlier.files) if earlier is not None else [],
            [folder / entry["file"] for entry in beside],
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _check_model_inside(
    page: Path, reference, images, spec: ExportFormat, floor: float, described: str
) -> Verification:
    """Without a browser: the ONNX model inside the page, run in ONNX Runtime for Python and
    judged as the page would be; the result says the page itself was not checked."""
    inside = page.with_name("model-inside-page.onnx")
    inside.write_bytes(web.model_inside(page.read_text(encoding="utf-8")))
    try:
        exported = run_export(FORMATS["onnx"], inside, images)
    finally:
        inside.unlink()
    return changed(judge(reference, exported, spec, floor, described), not_checked=NO_CHROMIUM)


def export_run(run: RunFolder | Path | str, to: Path | str, fmt: str = "keras") -> list[Path]:
    """Export the model as `fmt`, verified, with labels.txt, metrics.json and a model card.

    `to` ending in the format's suffix (e.g. `.keras`) names the model file (the rest goes
    beside it); otherwise `to` is a folder (created if needed) that receives all.
    Returns the paths written. `export_model` has progress, cancel and the verification numbers.
    """
    return export_model(run, fmt, to).written
