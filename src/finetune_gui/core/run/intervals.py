"""How sure a test score is: Wilson 95% intervals for proportions counted on a test split.

A test split of 18 images that scores 66.7% is consistent with anything from about 44% to 84%;
printing the bare percentage hides that. The Wilson score interval stays inside [0, 1] and keeps
its coverage for small counts and for proportions near 0 or 1, where the normal approximation
does not.
"""

from __future__ import annotations

import math

Z_95 = 1.959963984540054  # two-sided 95% quantile of the standard normal
ROUGH_BELOW = 50  # fewer test images than this: the estimate is called rough


def wilson_interval(successes: int, total: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval for `successes` out of `total`; (0, 1) when `total` is 0."""
    if total < 0 or successes < 0 or successes > total:
        raise ValueError(f"Cannot form an interval for {successes} out of {total}.")
    if total == 0:
        return 0.0, 1.0
    p = successes / total
    z2 = z * z
    centre = (p + z2 / (2 * total)) / (1 + z2 / total)
    half = z / (1 + z2 / total) * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total))
    low, high = max(0.0, centre - half), min(1.0, centre + half)
    # At 0 or all successes the bound is exactly 0 or 1; rounding must not move it.
    if successes == 0:
        low = 0.0
    if successes == total:
        high = 1.0
    return low, high


def is_rough(total: int) -> bool:
    """True when a test split is too small for its accuracy to be more than a rough estimate."""
    return total < ROUGH_BELOW


def rough_note(total: int) -> str:
    """The plain sentence shown under a score measured on fewer than 50 images ('' otherwise)."""
    if not is_rough(total):
        return ""
    return (
        f"Only {total} test image{'s' if total != 1 else ''}: this is a rough estimate; "
        f"the 95% interval shows how far the true accuracy may lie from it (train with "
        f"--kfold for an estimate over all training and validation images)."
    )


def format_interval(low: float, high: float) -> str:
    """'95% interval 44.1%-84.0%'."""
    return f"95% interval {low:.1%}-{high:.1%}"


def kfold_text(kfold: dict) -> str:
    """'5-fold estimate on all 180 training and validation images (new head on the frozen
    base): 91.1% (95% interval 86.0%-94.8%)', from a k-fold estimate as metrics.json holds it."""
    low, high = kfold["interval"]
    return (
        f"{kfold['folds']}-fold estimate on all {kfold['images']} training and validation "
        f"images (new head on the frozen base): {kfold['accuracy']:.1%} "
        f"({format_interval(low, high)})"
    )
