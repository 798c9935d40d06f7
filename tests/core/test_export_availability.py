"""Which export formats this computer can make: the core decides, in words, before any job."""

from __future__ import annotations

from pathlib import Path

from finetune_gui.core.export import availability
from finetune_gui.core.export.availability import all_formats_availability, format_availability


def runtime_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "onnxruntime-web" / "dist"
    folder.mkdir(parents=True)
    for name in ("ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm"):
        (folder / name).write_bytes(b"x")
    return folder


def test_without_the_web_runtime_the_web_page_is_unavailable_with_what_to_do(
        tmp_path, monkeypatch):
    monkeypatch.setenv("FINETUNE_GUI_WEB_RUNTIME", str(tmp_path / "nowhere"))
    found = format_availability("web")
    assert not found.available
    assert "ONNX Runtime Web" in found.reason and "make web-runtime" in found.reason
    assert "Traceback" not in found.reason
    others = {name: a.available for name, a in all_formats_availability().items() if name != "web"}
    assert all(others.values()), others


def test_with_the_runtime_and_no_chromium_the_page_is_offered_marked_not_checked(
        tmp_path, monkeypatch):
    monkeypatch.setenv("FINETUNE_GUI_WEB_RUNTIME", str(runtime_folder(tmp_path)))
    monkeypatch.setattr(availability, "find_chromium", lambda: None)
    found = format_availability("web")
    assert found.available and found.reason == "" and not found.in_browser
    assert "not checked in a browser" in found.note and "apt-get install chromium" in found.note


def test_with_the_runtime_and_chromium_the_page_is_offered_plainly(tmp_path, monkeypatch):
    monkeypatch.setenv("FINETUNE_GUI_WEB_RUNTIME", str(runtime_folder(tmp_path)))
    monkeypatch.setattr(availability, "find_chromium", lambda: Path("/usr/bin/chromium"))
    assert format_availability("web") == availability.Availability("web", True, in_browser=True)


def test_without_the_onnx_packages_onnx_and_web_say_what_to_install(monkeypatch):
    monkeypatch.setattr(availability, "missing_onnx_packages", lambda: ["tf2onnx"])
    for fmt in ("onnx", "web"):
        found = format_availability(fmt)
        assert not found.available and "pip install 'finetune-gui[onnx]'" in found.reason
    assert format_availability("keras").available


def test_a_convnext_run_gets_no_onnx_or_web_page_and_is_told_why():
    for fmt in ("onnx", "web"):
        found = format_availability(fmt, "convnexttiny")
        assert not found.available
        assert "ConvNeXt" in found.reason and "TFLite formats work" in found.reason
    assert format_availability("tflite", "convnexttiny").available
    assert format_availability("onnx", "efficientnetb0") == format_availability("onnx")
