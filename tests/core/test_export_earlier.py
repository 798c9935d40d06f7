"""An earlier export at the destination is found before any work and described in words; what
it leaves behind once replaced is known (core/export/earlier.py)."""

from __future__ import annotations

import json

from finetune_gui.core.export.earlier import (
    earlier_export,
    earlier_export_at,
    stale_companions,
)


def test_a_folder_without_an_earlier_export_has_none(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")  # not a name an export writes
    assert earlier_export(tmp_path, tmp_path / "model.keras") is None
    assert earlier_export_at("keras", tmp_path / "missing") is None


def test_the_earlier_export_is_described_from_its_files_and_its_card(tmp_path):
    for name in ("model.keras", "labels.txt", "metrics.json", "model_card.md", "unsure.json"):
        (tmp_path / name).write_text("earlier")
    (tmp_path / "model_card.json").write_text(json.dumps(
        {"name": "run-7", "file": "model.keras", "exported": "2026-12-05T08:01:59"}))
    earlier = earlier_export_at("keras", tmp_path)
    assert [path.name for path in earlier.files] == [
        "model.keras", "labels.txt", "metrics.json", "model_card.md", "model_card.json",
        "unsure.json"]
    assert earlier.description() == (
        "model.keras, labels.txt and 4 more files (from run-7, exported 2026-12-05 08:01)")
    assert earlier.question().startswith(f"{tmp_path} already holds model.keras, labels.txt")
    assert "nothing was written" in earlier.refusal() and "--replace" in earlier.refusal()
    # A model file named as the destination: the same folder, that file first.
    named = earlier_export_at("tflite", tmp_path / "phone.tflite")
    assert named.files[0].name == "labels.txt" and named.folder == tmp_path
    # Another format beside it: the model stays, and the question says what is lost instead.
    assert earlier.question().endswith("and the earlier model is then gone.")
    assert named.question().endswith(
        "Saving here replaces them, and the model file already there stays, but the model card "
        "then describes the new one.")
    assert named.refusal().endswith("(the model file already there stays, but the model card "
                                    "then describes the new one).")
    # Companions the new export did not write go with the model they described.
    written = [tmp_path / n for n in ("model.keras", "labels.txt", "model_card.md",
                                      "model_card.json", "load_image.py")]
    assert [p.name for p in stale_companions(earlier, written)] == ["metrics.json",
                                                                    "unsure.json"]
    assert stale_companions(None, written) == []


def test_an_unreadable_card_still_names_the_files(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"\x00")
    (tmp_path / "model_card.json").write_text("{not json")
    earlier = earlier_export_at("onnx", tmp_path)
    assert earlier.description() == "model.onnx and model_card.json"
    (tmp_path / "model_card.json").write_text("[1, 2]")
    assert earlier_export_at("onnx", tmp_path).description() == "model.onnx and model_card.json"
