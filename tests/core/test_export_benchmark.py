"""Size and speed of an export: the median of timed one-image runs after a warm-up, the file's
bytes, and the run's record of the latest export of each format. (Every real format is timed
in tests/core/test_ensemble.py, on the exported ensemble.)"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from finetune_gui.core.export import benchmark
from finetune_gui.core.export.benchmark import (
    EXPORTS_FILE,
    MAX_RUNS,
    WARM_UP_RUNS,
    SpeedMeasurement,
    file_size,
    measure_speed,
    read_exports,
    record_export,
    size_text,
    speed_card_lines,
)


def _slow_start_runner(calls: list[int], cold_ms: float, warm_ms: float):
    """A stand-in runtime whose first WARM_UP_RUNS calls are slow, as real first calls are."""

    def make(fmt, path, pixels):
        assert pixels.shape == (1, 8, 8, 3) and pixels.dtype == np.float32  # batch 1

        def classify():
            calls.append(1)
            time.sleep((cold_ms if len(calls) <= WARM_UP_RUNS else warm_ms) / 1000)

        return classify

    return make


def test_the_warm_up_is_left_out_and_the_median_is_kept(tmp_path, monkeypatch):
    model = tmp_path / "model.tflite"
    model.write_bytes(b"x" * 12_345)
    calls: list[int] = []
    monkeypatch.setattr(benchmark, "_single_image_runner", _slow_start_runner(calls, 200, 2))
    speed = measure_speed("tflite", model, np.zeros((8, 8, 3), dtype=np.uint8))
    assert len(calls) == WARM_UP_RUNS + speed.runs
    assert speed.runs == MAX_RUNS  # 30 runs of 2 ms fit in the time budget
    assert 2 <= speed.ms_per_image < 50  # the 200 ms warm-up calls do not count
    assert speed.fastest_ms <= speed.ms_per_image <= speed.slowest_ms < 200
    assert (speed.size_bytes, speed.batch, speed.warm_up_runs) == (12_345, 1, WARM_UP_RUNS)
    assert "TensorFlow Lite" in speed.runtime and f"{os.cpu_count()} logical" in speed.computer


def test_a_slow_model_stops_after_the_time_budget_with_at_least_five_runs(tmp_path, monkeypatch):
    model = tmp_path / "model.onnx"
    model.write_bytes(b"x")
    calls: list[int] = []
    monkeypatch.setattr(benchmark, "_single_image_runner", _slow_start_runner(calls, 1, 700))
    monkeypatch.setattr(benchmark, "TIME_BUDGET", 1.0)
    speed = measure_speed("onnx", model, np.zeros((8, 8, 3), dtype=np.uint8))
    assert speed.runs == 5 and speed.ms_per_image >= 700


def test_a_real_keras_file_is_timed_with_keras(tmp_path):
    import keras

    inputs = keras.Input((8, 8, 3), name="pixels")
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs))
    path = tmp_path / "model.keras"
    keras.Model(inputs, outputs).save(path)
    speed = measure_speed("keras", path, np.full((8, 8, 3), 128, dtype=np.uint8))
    assert speed.size_bytes == path.stat().st_size and speed.ms_per_image > 0
    assert speed.runs >= 5 and speed.runtime.startswith("Keras 3")


def test_a_folder_size_counts_every_file_inside(tmp_path):
    (tmp_path / "saved_model" / "variables").mkdir(parents=True)
    (tmp_path / "saved_model" / "saved_model.pb").write_bytes(b"a" * 100)
    (tmp_path / "saved_model" / "variables" / "data").write_bytes(b"b" * 250)
    assert file_size(tmp_path / "saved_model") == 350
    assert [size_text(n) for n in (930_000, 3_600_000)] == ["930 KB", "3.6 MB"]


def _measurement(fmt: str, ms: float) -> SpeedMeasurement:
    return SpeedMeasurement(fmt, 2_000_000, ms, ms, ms, 10, 3, 1, benchmark.RUNTIMES[fmt],
                            "this computer", "2026-12-01T17:00:00")


def test_the_run_keeps_the_latest_export_of_each_format_in_format_order(tmp_path):
    assert read_exports(tmp_path) == []
    assert record_export(tmp_path, _measurement("onnx", 4.0), tmp_path / "a" / "model.onnx")
    assert record_export(tmp_path, _measurement("keras", 9.0), tmp_path / "b" / "model.keras")
    assert record_export(tmp_path, _measurement("onnx", 3.0), tmp_path / "c" / "model.onnx")
    entries = read_exports(tmp_path)
    assert [(e["format"], e["ms_per_image"], Path(e["path"]).parent.name) for e in entries] == [
        ("keras", 9.0, "b"), ("onnx", 3.0, "c")]


def test_a_damaged_record_reads_as_none_and_an_unwritable_record_is_no_error(tmp_path):
    (tmp_path / EXPORTS_FILE).write_text("{not json")
    assert read_exports(tmp_path) == []
    (tmp_path / EXPORTS_FILE).write_text(json.dumps([{"format": "keras"}, "x"]))
    assert read_exports(tmp_path) == []
    # A folder where the record goes: writing fails (as on a read-only or full disk), and the
    # export that asked is not failed for it.
    blocked = tmp_path / "blocked"
    (blocked / EXPORTS_FILE).mkdir(parents=True)
    assert record_export(blocked, _measurement("keras", 1.0), tmp_path / "m.keras") is False
    assert list((blocked / EXPORTS_FILE).iterdir()) == []


def test_the_card_section_gives_size_median_runs_and_where_it_was_measured():
    lines = "\n".join(speed_card_lines(_measurement("tflite", 0.5).to_dict()))
    assert "## Size and speed on the computer that exported it" in lines
    assert "File size: 2.0 MB (2,000,000 bytes)" in lines
    assert "Time per image: 0.50 ms (median of 10 runs of batch 1 after 3 warm-up runs" in lines
    assert "TensorFlow Lite interpreter" in lines and "this computer" in lines
    assert speed_card_lines(None) == []
