"""Accepting proposals in bulk waits until their confidence can be checked, and the estimate
says which classes it speaks for."""

from __future__ import annotations

import numpy as np

from finetune_gui.core.label.proposals import propose
from finetune_gui.core.run.calibration import MIN_ANSWERS


def blobs(classes: int, per_class: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, 16)) * 3
    truth = np.repeat(np.arange(classes), per_class)
    return (centres[truth] + rng.normal(size=(len(truth), 16))).astype(np.float32), truth


def test_bulk_acceptance_waits_for_enough_labels_to_check_how_sure_the_model_is():
    features, truth = blobs(6, 40)
    classes = [f"c{k}" for k in range(6)]
    # Two classes named, 14 labels: the proposals exist, but "95% sure" is the head's own.
    few = {int(r): classes[truth[r]] for k in (0, 1) for r in np.flatnonzero(truth == k)[:7]}
    early = propose(features, few, classes)
    assert early.available and early.judged_on == 14 < MIN_ANSWERS
    assert early.bulk_refusal() == (f"label at least {MIN_ANSWERS} pictures, two or more of "
                                    f"each class, first")
    assert "if every picture is one of the 2 classes labelled so far" in early.estimate_text()
    # Enough labels: accepting in bulk is allowed.
    many = {int(r): classes[truth[r]] for k in range(6) for r in np.flatnonzero(truth == k)[:5]}
    later = propose(features, many, classes)
    assert later.judged_on >= MIN_ANSWERS and later.bulk_refusal() == ""
    nothing = propose(features, {}, classes)
    assert nothing.bulk_refusal() == "label pictures of at least two classes first"
