"""Judging an export: does it pick the Keras model's class on the same images, and how closely."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from finetune_gui.core.export.formats import ExportFormat

# How an export whose file could not be run in its own runtime (a web page without Chromium)
# is marked in the window, the terminal and the model card: never called verified.
NOT_CHECKED_IN_BROWSER = "not checked in a browser"


@dataclass(frozen=True)
class Verification:
    """How closely the exported file follows the Keras model on the same images."""

    n_images: int
    images: str  # where they came from, in words
    agreement: float  # share of images where both pick the same top class
    max_abs_diff: float  # the largest difference of any class probability on any image
    near_tie_flips: int  # disagreements where the Keras model's top two were within tie_margin
    judged_agreement: float  # agreement counting near-tie flips as agreeing
    min_agreement: float
    tie_margin: float
    passed: bool
    # Why the file itself was not run in its own runtime ("" when it was): then the numbers
    # above are those of the model inside it (a web page's ONNX model, in ONNX Runtime).
    not_checked: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def judge(
    reference: np.ndarray,
    exported: np.ndarray,
    spec: ExportFormat,
    min_agreement: float,
    images: str = "images",
) -> Verification:
    """Compare the exported model's probabilities with the Keras model's on the same images."""
    n = len(reference)
    if exported.shape != reference.shape or not np.all(np.isfinite(exported)):
        return Verification(
            n, images, 0.0, float("inf"), 0, 0.0, min_agreement, spec.tie_margin, False
        )
    same = exported.argmax(axis=1) == reference.argmax(axis=1)
    top_two = np.sort(reference, axis=1)[:, -2:] if reference.shape[1] > 1 else None
    near_tie = (
        (top_two[:, 1] - top_two[:, 0]) < spec.tie_margin
        if top_two is not None
        else np.zeros(n, dtype=bool)
    )
    flips = int(np.sum(~same & near_tie))
    agreement = float(same.mean()) if n else 0.0
    judged = float((same | near_tie).mean()) if n else 0.0
    return Verification(
        n_images=n,
        images=images,
        agreement=agreement,
        max_abs_diff=float(np.abs(exported - reference).max()) if n else 0.0,
        near_tie_flips=flips,
        judged_agreement=judged,
        min_agreement=min_agreement,
        tie_margin=spec.tie_margin,
        passed=n > 0 and judged >= min_agreement,
    )


def verification_line(v: Verification) -> str:
    """One line for the log: how often the export agrees and how far apart the numbers are."""
    ties = f" ({v.near_tie_flips} near-tie swaps)" if v.near_tie_flips else ""
    inside = (
        f"{NOT_CHECKED_IN_BROWSER}; the model inside it in ONNX Runtime for Python: "
        if v.not_checked
        else ""
    )
    return inside + (
        f"same top class as Keras on {v.agreement:.1%} of {v.n_images} {v.images}{ties}; "
        f"largest probability difference {v.max_abs_diff:.2g}."
    )


def check_sentence(v: Verification) -> str:
    """What the check of a saved export showed, for the window and the terminal."""
    if v.not_checked:
        return (
            f"The page is {NOT_CHECKED_IN_BROWSER}: {v.not_checked}. The model inside it, run "
            f"with ONNX Runtime for Python, gives the trained model's answer on "
            f"{v.agreement:.1%} of {v.n_images} {v.images}."
        )
    return (
        f"Checked on {v.n_images} {v.images}: the file gives the trained model's answer on "
        f"{v.agreement:.1%} of them."
    )


def failure_message(spec: ExportFormat, v: Verification) -> str:
    """Why an export that failed its check was not saved, and what to do instead."""
    if not np.isfinite(v.max_abs_diff):
        what = "gives missing or invalid numbers (NaN, infinity or the wrong shape)"
    else:
        what = (
            f"picks the Keras model's class for only {v.judged_agreement:.1%} of "
            f"{v.n_images} {v.images}, where {v.min_agreement:.0%} is needed, and its "
            f"probabilities differ by up to {v.max_abs_diff:.3f}"
        )
    advice = (
        " Full-integer quantisation loses this much on some models: export tflite-fp16 "
        "instead, or accept it with a lower --min-agreement."
        if spec.name == "tflite-int8"
        else " This is a converter problem; the Keras format always works."
    )
    return f"The {spec.title} export does not behave like the trained model: it {what}. " \
        f"Nothing was saved.{advice}"

