"""Model selection that is stable on small validation sets, and says what it kept."""

from __future__ import annotations

from finetune_gui.core.training.selection import criterion, improves, kept_model


def test_more_images_right_beats_a_lower_loss_and_the_loss_breaks_ties():
    confident_but_wrong_more = criterion(0.70, 0.45, 0.1)
    right_more_but_less_sure = criterion(0.75, 0.80, 0.1)
    assert right_more_but_less_sure < confident_but_wrong_more
    assert criterion(0.75, 0.50, 0.1) < criterion(0.75, 0.60, 0.1)
    assert criterion(None, None, 0.3) == 0.3  # no validation split: the training loss


def rows(phases_and_scores):
    return [
        {"epoch": i + 1, "phase": phase, "val_accuracy": acc, "val_loss": loss, "loss": 0.1}
        for i, (phase, acc, loss) in enumerate(phases_and_scores)
    ]


def test_head_only_is_kept_and_said_when_fine_tuning_is_worse_on_validation():
    history = rows([("head", 0.80, 0.5), ("finetune", 0.78, 0.4), ("finetune", 0.80, 0.6)])
    kept, note = kept_model(history, best_epoch=1)
    assert kept == "head-only"
    assert "did not beat the head alone" in note and "80.0%" in note


def test_fine_tuned_is_kept_when_it_wins():
    history = rows([("head", 0.80, 0.5), ("finetune", 0.85, 0.7)])
    kept, note = kept_model(history, best_epoch=2)
    assert kept == "fine-tuned" and "85.0%" in note


def test_nothing_to_say_without_a_fine_tuning_phase():
    assert kept_model(rows([("head", 0.8, 0.5)]), best_epoch=1) == (None, "")


def test_a_loss_gain_below_noise_at_equal_accuracy_is_no_improvement():
    head = criterion(1.0, 0.014700, 0.1)
    assert not improves(criterion(1.0, 0.014699, 0.1), head)
    assert improves(criterion(1.0, 0.0062, 0.1), head)
    assert improves(criterion(0.95 + 1 / 18, 0.9, 0.1), criterion(0.95, 0.01, 0.1))


def test_the_same_count_in_float32_and_float64_is_a_tie_decided_by_the_loss():
    head = criterion(20 / 22, 0.2468, 0.1)  # the solved head, numpy float64
    tuned = criterion(0.9090909361839294, 0.2751, 0.1)  # Keras' float32 of 20/22, worse loss
    assert not improves(tuned, head)
