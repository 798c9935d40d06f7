"""What a finished run keeps about its own images (features.npz, the "not sure" rule), made
from what training already computed rather than by running every image through the network
again.

In speed mode the frozen layers' output of every training and validation image is stored, so
only the layers above the cut and the first block run again; the test images' rows come from the
pass that scores them (core/training/held_out.py). Computing all of it again after training took
29 s of a 132 s run of 4,000 images at 160 px (docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from finetune_gui.core.data.pipeline import INFERENCE_BATCH, batches
from finetune_gui.core.events import CancelToken, ProgressCallback
from finetune_gui.core.model.frozen_pass import above_stored_model, stored_inputs
from finetune_gui.core.run.dataset_features import dataset_features, first_block_model, normalise
from finetune_gui.core.run.unsure import unsure_rule


def keep_image_features(
    run, classifier, *, stored, pixels: dict, seeing, test_rows: tuple | None,
    progress: ProgressCallback, cancel: CancelToken | None, base_changed: bool = True,
    held_out: np.ndarray | None = None,
) -> None:
    """Write the run's features.npz and unsure.json. `stored`: the fast path's
    StoredActivations (None after a run trained from pixels), `pixels`: the decoded "train" and
    "val" images, `seeing`: the model's `probe_model`, `test_rows`: the test images' rows from
    scoring them (None without a test split), `base_changed`: False when the kept model's
    base is the one the activations were stored from (fine-tuning skipped, or undone); the
    pseudo-outliers' rows then come from the frozen pass too (`StoredActivations.pseudo`);
    `held_out`: the calibration's k-fold answers on the training then validation images
    (`calibrate_model.unlearned_answers`), kept in features.npz for the rule."""
    if stored is not None and not base_changed:
        # The stored pooled features are then the kept model's own: only the head runs again
        # (running the top blocks over every stored activation took 4.5 s of a 67 s run).
        stored = replace(stored, cut=None)
    known = split_rows(classifier, stored, pixels) if stored is not None else {}
    if test_rows is not None:
        known["test"] = test_rows
    dataset_features(run, model=classifier.model, pixels=pixels, known=known, seeing=seeing,
                     held_out=held_out, progress=progress, cancel=cancel)
    pseudo_rows = None
    if stored is not None and stored.pseudo is not None and not base_changed:
        pseudo_rows = stored_rows(classifier, above_stored_model(classifier, None), None,
                                  stored.pseudo)
    unsure_rule(run, model=classifier.model, pixels=pixels, seeing=seeing, progress=progress,
                cancel=cancel, pseudo_rows=pseudo_rows)


def split_rows(classifier, stored, pixels: dict) -> dict[str, tuple]:
    """The training and validation images' rows of features.npz (first-block statistics,
    normalised pooled features, probabilities) for the classifier as it is now, from the
    stored activations: only the layers above the cut run again, and only the first block on
    the pixels (`pixels`: "train" and "val" arrays). The rows of the plain copies are used
    (the first of each image's views).
    """
    above = above_stored_model(classifier, stored.cut)
    return {part: stored_rows(classifier, above, stored.cut, found, pixels[part])
            for part, found in (("train", stored.train), ("val", stored.val))
            if len(pixels[part])}


def stored_rows(classifier, above, cut: str | None, found, images=None) -> tuple:
    """One part's rows of features.npz from its stored activations `found` (of the plain
    copies, the first rows), with `above` (`above_stored_model` at `cut`); `images`: the
    part's pixels, for the first block's statistics when an older cache lacks them (None:
    `found` has them)."""
    from finetune_gui.core.data.storage import allocate, row_chunks

    classes = classifier.head_layers[-1].units
    n = len(images) if images is not None else len(found.early)
    # A chunk of stored rows at a time, into arrays the memory budget holds (or the disk
    # store): a slice of the disk store is read into RAM, so the whole part at once was
    # every stored activation of it (2.2 GB for 35,000 images at 224 px).
    width = int(above.outputs[0].shape[-1])
    pooled = allocate((n, width), np.float32)
    probabilities = np.zeros((n, classes), np.float32)
    source_rows = found.pooled if cut is None else found.at_cut
    for chunk in row_chunks(n, int(np.prod(source_rows.shape[1:])) * 4):
        part_rows = replace(found, pooled=found.pooled[chunk],
                            at_cut=None if found.at_cut is None else found.at_cut[chunk])
        if cut is None:
            # The head alone, called on the whole chunk: `predict` traced a new function for
            # every such model (about 1 s each, three a run) to run a few small products.
            found_pooled, found_probabilities = (np.asarray(output) for output in above(
                np.asarray(part_rows.pooled), training=False))
        else:
            found_pooled, found_probabilities = above.predict(
                batches([stored_inputs(classifier, cut, part_rows)], INFERENCE_BATCH),
                verbose=0)
        pooled[chunk] = normalise(found_pooled)
        probabilities[chunk] = np.asarray(found_probabilities, np.float32)[:, :classes]
    early = found.early  # from the extraction pass, unless an older cache lacked it
    if early is None or len(early) != n:
        early = first_block_model(classifier.model).predict(
            batches([images], INFERENCE_BATCH), verbose=0)
    return np.asarray(early, np.float32), pooled, probabilities
