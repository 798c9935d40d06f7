"""The agreement rule that decides whether an export behaves like the trained model.

Pure numbers, no model: each format's floor, near-tie swaps, invalid outputs.
"""

from __future__ import annotations

import numpy as np
import pytest

from finetune_gui.core.export.formats import FORMATS
from finetune_gui.core.export.verify import judge


def _probabilities(n: int, rng: np.random.Generator) -> np.ndarray:
    """Decisive three-class answers: the top class has 0.8, the others 0.1 each."""
    out = np.full((n, 3), 0.1)
    out[np.arange(n), rng.integers(0, 3, n)] = 0.8
    return out


def _flip(probabilities: np.ndarray, rows: int) -> np.ndarray:
    flipped = probabilities.copy()
    flipped[:rows] = np.roll(flipped[:rows], 1, axis=1)
    return flipped


def test_judge_float_formats_fail_below_99_percent():
    reference = _probabilities(100, np.random.default_rng(0))
    spec = FORMATS["tflite"]
    one = judge(reference, _flip(reference, 1), spec, spec.min_agreement)
    two = judge(reference, _flip(reference, 2), spec, spec.min_agreement)
    assert one.passed and one.agreement == 0.99 and one.max_abs_diff == pytest.approx(0.7)
    assert not two.passed and two.agreement == 0.98 and two.near_tie_flips == 0


def test_judge_int8_floor_is_90_percent():
    reference = _probabilities(100, np.random.default_rng(1))
    spec = FORMATS["tflite-int8"]
    assert judge(reference, _flip(reference, 10), spec, spec.min_agreement).passed
    assert not judge(reference, _flip(reference, 11), spec, spec.min_agreement).passed


def test_judge_excuses_swaps_of_near_ties_but_reports_them():
    reference = np.array([[0.5 + 0.004, 0.5 - 0.004, 0.0]] + [[0.9, 0.05, 0.05]] * 9)
    exported = reference.copy()
    exported[0] = [0.49, 0.51, 0.0]
    fp16 = judge(reference, exported, FORMATS["tflite-fp16"], 0.99)
    assert fp16.agreement == 0.9 and fp16.near_tie_flips == 1 and fp16.judged_agreement == 1.0
    assert fp16.passed
    # float32 formats allow only 0.001 of rounding: the same swap fails them.
    assert not judge(reference, exported, FORMATS["onnx"], 0.99).passed


def test_judge_rejects_invalid_numbers():
    reference = _probabilities(10, np.random.default_rng(2))
    exported = reference.copy()
    exported[3, 1] = np.nan
    verdict = judge(reference, exported, FORMATS["tflite"], 0.99)
    assert not verdict.passed and verdict.agreement == 0.0
