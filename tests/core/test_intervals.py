"""Wilson 95% intervals for test scores, and the plain note under small test splits."""

from __future__ import annotations

import pytest

from finetune_gui.core.run.intervals import format_interval, rough_note, wilson_interval


@pytest.mark.parametrize(
    ("successes", "total", "low", "high"),
    [
        (5, 10, 0.2366, 0.7634),  # textbook value
        (0, 10, 0.0, 0.2775),  # upper bound z^2 / (n + z^2)
        (10, 10, 0.7225, 1.0),
        (12, 18, 0.4375, 0.8372),  # the "66.7%" on 18 images
        (81, 263, 0.2553, 0.3662),
    ],
)
def test_the_interval_is_right_for_known_counts(successes, total, low, high):
    found = wilson_interval(successes, total)
    assert found == pytest.approx((low, high), abs=1e-4)


def test_no_images_give_the_whole_range_and_bad_counts_are_refused():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_a_small_test_split_is_called_rough_and_a_large_one_is_not():
    assert "rough estimate" in rough_note(18) and "18 test images" in rough_note(18)
    assert rough_note(50) == ""
    assert format_interval(0.4375, 0.8372) == "95% interval 43.8%-83.7%"
