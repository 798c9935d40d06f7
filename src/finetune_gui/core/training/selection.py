"""Which epoch's weights a run keeps: a criterion that is stable on small validation sets.

Validation loss alone is a poor judge on a few dozen images: it rises as soon as the model grows
confident, even while more images are classified right, so early stopping on it kept the first
fine-tuning epoch (issue 12). The criterion here ranks by validation accuracy first and uses the
loss only to break ties, folded into one number that is smaller for better weights (so it can be
compared and saved like the loss was).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from finetune_gui.core.settings import TrainingSettings

# The loss is scaled far below one accuracy step (1 / validation images, at least 1e-7 for up to
# ten million images), so it can only decide between equal accuracies.
_TIE_BREAK_SCALE = 1e-9
_LOSS_CAP = 100.0


def criterion(val_accuracy: float | None, val_loss: float | None, train_loss: float) -> float:
    """Smaller is better: -accuracy (loss as tie-break) on validation, or the training loss."""
    if val_accuracy is None or val_loss is None or not math.isfinite(val_accuracy):
        return train_loss if math.isfinite(train_loss) else math.inf
    loss = min(val_loss, _LOSS_CAP) if math.isfinite(val_loss) else _LOSS_CAP
    # Rounded: Keras reports 20/22 as 0.9090909361839294 (float32), numpy as 0.9090909090909091;
    # unrounded, a fine-tuning epoch with the same count and a worse loss replaced the head.
    return -round(val_accuracy, 6) + _TIE_BREAK_SCALE * loss


# Equal accuracy and a validation loss lower by less than this is no improvement: fine-tuning
# at a negligible rate "won" on a loss 1e-7 lower and replaced the head it had not changed.
MIN_LOSS_GAIN = 1e-3


def improves(new: float, old: float) -> bool:
    """True when criterion value `new` is better than `old` by more than noise."""
    return new < old - _TIE_BREAK_SCALE * MIN_LOSS_GAIN


def switch_margin(val_accuracy: float | None, val_images: int) -> float:
    """How much validation accuracy a more complex model (fine-tuning over the head alone, other
    settings over the ones given) must gain before it replaces the simpler one: one standard
    error of the simpler one's accuracy, and at least one image (the one-standard-error rule).

    On small validation sets accuracy moves by whole images: on 66 icons, fine-tuning won by
    one image on validation and lost three points on the held-out test images (issue 12). A win
    by exactly one image never counts: when two models differ on one image, which of them gets
    it right is a coin toss. On 22 validation faces `--auto` chose a trial that won 22 to 21 and
    lost a test image to the settings as given.
    """
    if val_accuracy is None or val_images <= 0:
        return 0.0
    p = min(max(val_accuracy, 0.0), 1.0)
    # + 1e-6: above the rounding of `criterion` (6 decimals), below any whole image.
    return max(math.sqrt(p * (1.0 - p) / val_images), 1.0 / val_images) + 1e-6


def describe(value: float) -> str:
    """The criterion as a user reads it: 'validation accuracy 83.3%'."""
    if value <= 0:
        return f"validation accuracy {-value:.1%}"
    return f"training loss {value:.4f}"


def _scores(row: dict) -> str:
    if row.get("val_accuracy") is None:
        return f"training loss {row['loss']:.4f}"
    return f"validation accuracy {row['val_accuracy']:.1%}, loss {row['val_loss']:.4f}"


def kept_model_note(best_phase: str | None, head: dict, tuned: dict) -> str:
    """The log line saying whether fine-tuning earned its place on validation (best rows)."""
    if best_phase == "finetune":
        return f"Fine-tuning kept: {_scores(tuned)}, against {_scores(head)} for the head alone."
    # Without validation images the training loss decides (`criterion`), and no chance enters.
    judged = ("on validation by more than chance" if head.get("val_accuracy") is not None
              else "on the training images, as there are no validation images")
    return (
        f"Fine-tuning did not beat the head alone {judged} "
        f"({_scores(tuned)}, against {_scores(head)}), so the head-only model is kept."
    )


def best_row(rows: list[dict]) -> dict:
    """The history row of the best weights among `rows` (by `criterion`)."""
    return min(rows, key=lambda r: criterion(r["val_accuracy"], r["val_loss"], r["loss"]))


def kept_model(history: list[dict], best_epoch: int | None) -> tuple[str | None, str]:
    """('fine-tuned' or 'head-only', the note saying why) when phase 2 ran, else (None, '')."""
    tuned = [r for r in history if r["phase"] == "finetune"]
    head = [r for r in history if r["phase"] == "head"]
    if not tuned or not head or best_epoch is None:
        return None, ""
    best_phase = next((r["phase"] for r in history if r["epoch"] == best_epoch), None)
    note = kept_model_note(best_phase, best_row(head), best_row(tuned))
    return ("fine-tuned" if best_phase == "finetune" else "head-only"), note


def finetune_cannot_win(history: list[dict], settings: TrainingSettings | None = None,
                        val_images: int = 0) -> str:
    """Why phase 2 need not run, or "": fine-tuning replaces the head only when it beats it on
    validation by more than chance (`switch_margin`, at least one image), so a head whose
    mistakes are no more than that margin could never be replaced: even a fine-tuned model
    that got every validation image right would be thrown away. A head with every validation
    image right is the common case (on the speed benchmark phase 2 was 19 s of 85 s); one
    mistake among 30 is another. A run whose `finetune_when` is "always" runs phase 2 all the
    same. `val_images` 0 (unknown) skips only after a perfect head."""
    if settings is not None and settings.finetune_when == "always":
        return ""
    heads = [r for r in history if r["phase"] == "head" and r.get("val_accuracy") is not None]
    if not heads:
        return ""
    best = max(r["val_accuracy"] for r in heads)
    if round(best, 6) >= 1.0:
        return ("Fine-tuning skipped: the head alone already gets every validation image "
                "right, and fine-tuning is kept only when it beats the head by more than chance.")
    if val_images <= 0:
        return ""
    mistakes = round((1.0 - best) * val_images)
    needed = math.floor(switch_margin(best, val_images) * val_images) + 1  # images to win by
    if mistakes >= needed:
        return ""
    return (f"Fine-tuning skipped: the head alone gets all but {mistakes} of the {val_images:,} "
            f"validation images right, and fine-tuning is kept only when it beats the head by "
            f"more than chance ({needed} images here), which it could not do.")


# A head that gets every training image right with a mean training loss (cross-entropy) at or
# below this leaves fine-tuning on the same images almost nothing to learn: each image's error
# signal is about its loss, and Adam scales even such small gradients up to steps of the full
# learning rate (on MNIST the first epoch took the training loss from 0.03 to 0.11). On the real
# folders measured (digits, faces, MNIST: training losses 0.0004 to 0.03) such a phase 2 never
# beat the head by more than chance, and cost up to a fifth of the run (docs/benchmarks.md).
NOTHING_TO_LEARN_LOSS = 0.05


# How a skip message ends: the way to fine-tune all the same.
FINETUNE_ALL_THE_SAME = ("Set \"when to fine-tune\" to \"always\", or train in exact mode "
                         "with augmentation, to fine-tune all the same.")


def trains_on_the_heads_images(settings: TrainingSettings) -> bool:
    """Phase 2 would train on exactly the images the head was solved on: speed mode's stored
    features (any number of copies) or no augmentation, and not set to run "always"."""
    if settings.finetune_when == "always":
        return False
    return settings.cache_mode == "fast" or not settings.augmentation_used


def finetune_nothing_to_learn(history: list[dict], settings: TrainingSettings) -> str:
    """Why phase 2 need not run, or "": it would train on exactly the images the head was
    fitted to (the stored features of speed mode, or no augmentation), and the head already
    gets every one of them right at a training loss of at most `NOTHING_TO_LEARN_LOSS`.
    Not with `finetune_when` "always", and not where each epoch draws new augmented images."""
    if not trains_on_the_heads_images(settings):
        return ""
    heads = [r for r in history if r["phase"] == "head" and r.get("accuracy") is not None]
    if not heads:
        return ""
    head = best_row(heads)  # where phase 2 would start from
    if round(head["accuracy"], 6) < 1.0 or not head["loss"] <= NOTHING_TO_LEARN_LOSS:
        return ""
    return (f"Fine-tuning skipped: the head alone already gets every training image right "
            f"(training loss {head['loss']:.4f}), so fine-tuning on the same images would have "
            f"almost nothing left to learn from them, and on real folders it then never beat "
            f"the head by more than chance. {FINETUNE_ALL_THE_SAME}")


def finetune_fits_closer(search: list[dict] | None, settings: TrainingSettings) -> str:
    """Why phase 2 need not run, or "": it would train on exactly the images the head was
    solved on, and the head's search (`search`: run.json's `head_l2_tried`) already found that
    fitting them more closely does not pay: validation kept a standardised penalty although a
    weaker one, which fits the same images more closely, was tried (the search keeps a weaker
    strength only when it scores higher). Phase 2 fits those images more closely still. Where
    this held (MNIST at 96 and 160 px, scikit-learn's digits at 96 px; 36 runs) phase 2 set to
    "always" never beat the head: best epochs 82.4% against 82.4%, 83.8% against 84.2%, 85.4%
    against 86.9% (docs/benchmarks.md), and on MNIST it was a tenth of the run."""
    if not trains_on_the_heads_images(settings) or not search:
        return ""
    chosen = next((row for row in search if row.get("chosen")), None)
    if chosen is None or not chosen.get("standardised"):
        return ""
    weaker = [row for row in search if row.get("standardised") and row["l2"] < chosen["l2"]
              and row.get("val_accuracy") is not None]
    if not weaker or any(row["val_accuracy"] > chosen["val_accuracy"] for row in weaker):
        return ""
    weakest = min(weaker, key=lambda row: row["l2"])
    return (f"Fine-tuning skipped: validation kept the head at L2 {chosen['l2']:g} "
            f"({chosen['val_accuracy']:.1%}) over weaker penalties that fit the training "
            f"images more closely (L2 {weakest['l2']:g}: {weakest['val_accuracy']:.1%}), and "
            f"fine-tuning on the same images would fit them more closely still; where that "
            f"held on real folders it never beat the head. {FINETUNE_ALL_THE_SAME}")


def finetune_skipped(history: list[dict], settings: TrainingSettings, val_images: int,
                     search: list[dict] | None = None) -> str:
    """Why phase 2 need not run after the head in `history`, or "": nothing to win on
    validation (`finetune_cannot_win`), nothing to learn from its images
    (`finetune_nothing_to_learn`), or the head's search (`search`) found that fitting them more
    closely does not pay (`finetune_fits_closer`). The run asks it before phase 2, and --auto to
    leave out a trial that would only repeat the settings as given."""
    return (finetune_cannot_win(history, settings, val_images)
            or finetune_nothing_to_learn(history, settings)
            or finetune_fits_closer(search, settings))


def finetune_losing(row: dict, kept_head: dict | None, val_images: int,
                    when: str = "") -> str:
    """Why phase 2 should stop after the epoch `row`, or "": its validation accuracy is below
    that of the kept head (`kept_head`, its best row) by more than chance (`switch_margin`).
    Fine-tuning is kept only when it beats the head by more than chance, and an epoch that is
    clearly worse is evidence it will not: on real folders (digits, icons, emoji) every such
    phase 2 went on to lose, its epochs thrown away (issue 26). `when` says where in the phase
    the row was scored ("after epoch 3" unless given)."""
    if (row.get("phase") != "finetune" or kept_head is None or kept_head.get("phase") != "head"
            or row.get("val_accuracy") is None or kept_head.get("val_accuracy") is None):
        return ""
    margin = switch_margin(kept_head["val_accuracy"], val_images)
    if round(row["val_accuracy"], 6) >= round(kept_head["val_accuracy"] - margin, 6):
        return ""
    when = when or f"after epoch {row['epoch']}"
    return (f"Fine-tuning stopped {when}: validation accuracy "
            f"{row['val_accuracy']:.1%} is clearly below the head alone "
            f"({kept_head['val_accuracy']:.1%}), so it is not going to be kept.")


def asks_if_stalled(settings: TrainingSettings) -> bool:
    """Whether a run asks `finetune_stalled` after phase 2's first epoch: only where the head
    was solved to its optimum on the very images phase 2 trains on (speed mode, not "always").
    In exact mode the head is trained for a few epochs, not solved, so phase 2 does not start
    from its optimum."""
    from finetune_gui.core.training.head_solver import solves_head

    return solves_head(settings) and trains_on_the_heads_images(settings)


def finetune_stalled(history: list[dict], kept_head: dict | None, val_images: int) -> str:
    """Why phase 2 should stop after its first epoch (the last row of `history`), or "": one
    whole pass over the images the head was solved on left it no better than the head alone on
    validation by either measure, no more images right and a higher loss. Asked only where
    phase 2 starts from the head's optimum on its own images (`asks_if_stalled`). In 21
    runs fine-tuned for 8 epochs regardless (icons, digits, faces, MNIST; two bases; 48 to
    224 px; docs/benchmarks.md) 15 first epochs went this way, 5 of them not clearly worse,
    and no later epoch of any of the 21 beat the head by more than chance; early stopping's
    patience had the icons wait two epochs more."""
    tuned = [r for r in history if r.get("phase") == "finetune"]
    if (len(tuned) != 1 or tuned[0] is not history[-1] or kept_head is None
            or kept_head.get("phase") != "head" or val_images <= 0
            or None in (tuned[0].get("val_accuracy"), tuned[0].get("val_loss"),
                        kept_head.get("val_accuracy"), kept_head.get("val_loss"))):
        return ""
    row = tuned[0]
    right, head_right = (round(r["val_accuracy"] * val_images) for r in (row, kept_head))
    if right > head_right or not row["val_loss"] > kept_head["val_loss"]:
        return ""
    return (f"Fine-tuning stopped after epoch {row['epoch']}: its first pass over the images "
            f"the head was solved on left it no better on validation than the head alone "
            f"({right:,} against {head_right:,} images right, loss {row['val_loss']:.3f} "
            f"against {kept_head['val_loss']:.3f}); it is kept only when it wins by more than "
            f"chance, and where a first epoch went this way on real folders, none did.")
