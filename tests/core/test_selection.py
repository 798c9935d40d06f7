"""Model selection that is stable on small validation sets, and says what it kept."""

from __future__ import annotations

import numpy as np

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


def test_without_validation_images_the_note_says_the_training_images_decided():
    history = [{"epoch": 1, "phase": "head", "val_accuracy": None, "val_loss": None, "loss": 0.09},
               {"epoch": 2, "phase": "finetune", "val_accuracy": None, "val_loss": None,
                "loss": 0.14}]
    kept, note = kept_model(history, best_epoch=1)
    assert kept == "head-only" and "validation by more than chance" not in note
    assert ("did not beat the head alone on the training images, as there are no validation "
            "images (training loss 0.1400, against training loss 0.0900)") in note


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


def test_a_more_complex_choice_must_win_by_more_than_one_standard_error():
    from finetune_gui.core.training.selection import switch_margin

    # 0.6 on 66 images: one standard error is sqrt(0.6 * 0.4 / 66) = 0.0603, four images.
    assert abs(switch_margin(0.6, 66) - 0.0603) < 1e-3
    assert abs(switch_margin(1.0, 20) - 0.05) < 2e-6  # never less than one image
    assert switch_margin(None, 20) == 0.0 and switch_margin(0.7, 0) == 0.0


def test_fine_tuning_that_wins_by_one_validation_image_does_not_replace_the_head():
    from finetune_gui.core.training.callbacks import EarlyStopping
    from finetune_gui.core.training.tracking import BestWeights, PhaseStop

    def epochs(scores, val_images):
        history, best = [], BestWeights()
        stopper = EarlyStopping(best, [], history, PhaseStop(), patience=0,
                                progress=lambda e: None, on_improvement=lambda: None,
                                val_images=val_images)
        for row in rows(scores):
            history.append(row)
            stopper.on_epoch_end(row["epoch"] - 1)
        return best.epoch

    # 66 validation images: 40 right, then 41 (one more image), then 45 (clearly more).
    one_more = [("head", 40 / 66, 0.9), ("finetune", 41 / 66, 0.8)]
    assert epochs(one_more, 66) == 1
    assert epochs([*one_more, ("finetune", 45 / 66, 0.8)], 66) == 3
    # Within a phase the best epoch is kept as before: one image is an improvement.
    assert epochs([("head", 40 / 66, 0.9), ("head", 41 / 66, 0.9)], 66) == 2


def test_auto_keeps_the_settings_as_given_unless_a_trial_wins_clearly():
    from finetune_gui.core.training.auto import Trial, chosen_trial

    given = Trial({}, 20 / 22, 0.3, "head-only", 1.0)
    one_more = Trial({"unfreeze_blocks": 4}, 21 / 22, 0.2, "fine-tuned", 1.0)
    assert chosen_trial([given, one_more], 22) is given
    # Near 100% one standard error is less than an image: a one-image win is still a coin toss.
    almost = Trial({}, 21 / 22, 0.07, "head-only", 1.0)
    perfect = Trial({"unfreeze_blocks": 4}, 22 / 22, 0.06, "fine-tuned", 1.0)
    assert chosen_trial([almost, perfect], 22) is almost
    two_more = Trial({"unfreeze_blocks": 4}, 22 / 22, 0.06, "fine-tuned", 1.0)
    assert chosen_trial([Trial({}, 20 / 22, 0.3, "head-only", 1.0), two_more], 22) is two_more
    clearly = Trial({"unfreeze_blocks": 4}, 300 / 300, 0.1, "fine-tuned", 1.0)
    assert chosen_trial([Trial({}, 270 / 300, 0.3, "head-only", 1.0), clearly], 300) is clearly


def test_fine_tuning_is_skipped_only_when_the_head_gets_every_validation_image_right():
    from finetune_gui.core.training.selection import finetune_cannot_win

    def head(accuracy):
        return {"phase": "head", "epoch": 1, "loss": 0.1, "val_accuracy": accuracy,
                "val_loss": 0.2}

    assert "every validation image right" in finetune_cannot_win([head(1.0)])
    # Keras reports float32 accuracies: 1.0 may come as 0.99999994.
    assert finetune_cannot_win([head(0.99999994)])
    assert finetune_cannot_win([head(21 / 22)]) == ""
    assert finetune_cannot_win([{**head(None), "val_loss": None}]) == ""  # no validation images
    assert finetune_cannot_win([]) == ""


def test_fine_tuning_is_skipped_when_the_heads_mistakes_are_within_the_margin_it_must_win_by():
    from finetune_gui.core.training.selection import finetune_cannot_win, switch_margin

    def head(right, of):
        return [{"phase": "head", "epoch": 1, "loss": 0.1, "val_accuracy": right / of,
                 "val_loss": 0.2}]

    # One mistake among 30: a fine-tuned model with all 30 right wins by one image, a coin toss.
    said = finetune_cannot_win(head(29, 30), None, 30)
    assert said == ("Fine-tuning skipped: the head alone gets all but 1 of the 30 validation "
                    "images right, and fine-tuning is kept only when it beats the head by more "
                    "than chance (2 images here), which it could not do.")
    # Two mistakes among 200: one standard error is 1.4 images, so 0 mistakes would win.
    assert finetune_cannot_win(head(198, 200), None, 200) == ""
    assert finetune_cannot_win(head(29, 30)) == ""  # the number of images unknown
    # Exactly at the edge the rule agrees with the margin the kept model is chosen by.
    for right, of in [(29, 30), (198, 200), (2998, 3000), (29_998, 30_000), (190, 200)]:
        can_win = 1.0 - right / of > switch_margin(right / of, of)
        assert (finetune_cannot_win(head(right, of), None, of) == "") == can_win, (right, of)


def test_fine_tuning_set_to_always_runs_even_after_a_perfect_head():
    from finetune_gui.core.settings import TrainingSettings
    from finetune_gui.core.training.selection import finetune_cannot_win

    perfect = [{"phase": "head", "epoch": 1, "loss": 0.1, "val_accuracy": 1.0, "val_loss": 0.2}]
    default = TrainingSettings(weights="none")
    assert default.finetune_when == "can-win" and finetune_cannot_win(perfect, default)
    assert finetune_cannot_win(perfect, default.with_changes(finetune_when="always")) == ""


def test_fine_tuning_on_the_images_the_head_already_fits_has_nothing_to_learn():
    from finetune_gui.core.settings import TrainingSettings
    from finetune_gui.core.training.selection import (
        NOTHING_TO_LEARN_LOSS,
        finetune_nothing_to_learn,
    )

    def head(accuracy, loss):
        return [{"phase": "head", "epoch": 1, "loss": loss, "accuracy": accuracy,
                 "val_accuracy": 0.8, "val_loss": 0.5}]

    fast = TrainingSettings(weights="none")  # speed mode, one plain copy per image
    said = finetune_nothing_to_learn(head(1.0, 0.0295), fast)
    assert said.startswith("Fine-tuning skipped: the head alone already gets every training "
                           "image right (training loss 0.0295)")
    assert finetune_nothing_to_learn(head(1.0, NOTHING_TO_LEARN_LOSS), fast)
    # Something left to learn: a training image wrong, or right but not surely.
    assert finetune_nothing_to_learn(head(0.99, 0.01), fast) == ""
    assert finetune_nothing_to_learn(head(1.0, 0.2), fast) == ""
    assert finetune_nothing_to_learn(head(1.0, float("nan")), fast) == ""
    assert finetune_nothing_to_learn([], fast) == ""
    # Speed mode's augmented copies are stored: phase 2 trains on the rows the head fitted.
    views = fast.with_changes(views=3, augment="standard")
    assert finetune_nothing_to_learn(head(1.0, 0.01), views)
    # Exact mode draws new augmented images every epoch: something new to learn.
    exact = fast.with_changes(cache_mode="exact", augment="standard")
    assert finetune_nothing_to_learn(head(1.0, 0.01), exact) == ""
    assert finetune_nothing_to_learn(head(1.0, 0.01), exact.with_changes(augment="none"))
    assert finetune_nothing_to_learn(head(1.0, 0.01),
                                     fast.with_changes(finetune_when="always")) == ""
    # The best head row decides, as phase 2 starts from it.
    rows = [{**head(0.9, 0.3)[0], "val_accuracy": 0.7},
            {**head(1.0, 0.01)[0], "epoch": 2, "val_accuracy": 0.8}]
    assert finetune_nothing_to_learn(rows, exact.with_changes(augment="none"))


def standardised_search_rows(seed: int = 0) -> list[dict]:
    """A real head search (`search_softmax_head`) on features whose telling columns are a
    twentieth of the spread of 400 noise columns, 120 training images: only a standardised,
    strongly penalised head finds them, and weaker penalties fit the noise."""
    from finetune_gui.core.model.softmax_head import search_softmax_head

    rng = np.random.default_rng(seed)

    def made(n):
        labels = rng.integers(0, 3, n)
        features = rng.normal(size=(n, 400)).astype(np.float32)
        features[:, :3] = 0.05 * (features[:, :3] + 1.5 * np.eye(3)[labels])
        return features, labels

    return search_softmax_head(*made(120), *made(300), 3).tried


def test_fine_tuning_is_skipped_where_the_heads_search_found_closer_fits_do_not_pay():
    from finetune_gui.core.settings import TrainingSettings
    from finetune_gui.core.training.selection import finetune_fits_closer, finetune_skipped

    search = standardised_search_rows()
    chosen = next(row for row in search if row["chosen"])
    weaker = [row for row in search if row["standardised"] and row["l2"] < chosen["l2"]]
    assert chosen["standardised"] and weaker  # the case: a closer fit was tried and lost
    weakest = min(weaker, key=lambda row: row["l2"])
    fast = TrainingSettings(weights="none")  # speed mode: phase 2 trains on the head's images
    said = finetune_fits_closer(search, fast)
    assert said == (
        f"Fine-tuning skipped: validation kept the head at L2 {chosen['l2']:g} "
        f"({chosen['val_accuracy']:.1%}) over weaker penalties that fit the training images "
        f"more closely (L2 {weakest['l2']:g}: {weakest['val_accuracy']:.1%}), and fine-tuning "
        f"on the same images would fit them more closely still; where that held on real "
        f"folders it never beat the head. Set \"when to fine-tune\" to \"always\", or train in "
        f"exact mode with augmentation, to fine-tune all the same.")
    head = [{"phase": "head", "epoch": 1, "loss": 0.6, "accuracy": 0.9,
             "val_accuracy": chosen["val_accuracy"], "val_loss": 0.5}]
    assert finetune_skipped(head, fast, 300, search) == said
    assert finetune_skipped(head, fast, 300) == ""  # no search, no evidence
    # Phase 2 that sees new pictures every epoch, or set to "always", runs.
    exact = fast.with_changes(cache_mode="exact", augment="standard")
    assert finetune_fits_closer(search, exact) == ""
    assert finetune_fits_closer(search, exact.with_changes(augment="none")) == said
    assert finetune_fits_closer(search, fast.with_changes(finetune_when="always")) == ""
    # Not where the plain head was kept, nor where no weaker penalty was tried.
    plain = [{**row, "chosen": not row["standardised"]} for row in search]
    assert finetune_fits_closer(plain, fast) == ""
    alone = [row for row in search if not (row["standardised"] and row["l2"] < chosen["l2"])]
    assert finetune_fits_closer(alone, fast) == ""
    # A weaker penalty that scored higher is a closer fit that paid (run.json edited by hand,
    # or another search): no skip.
    better = [{**row, "val_accuracy": 1.0} if row is weakest else row for row in search]
    assert finetune_fits_closer(better, fast) == ""
