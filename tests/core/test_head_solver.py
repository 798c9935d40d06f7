"""Phase 1 solved: the softmax head reaches the optimum of its convex problem."""

from __future__ import annotations

import numpy as np
import pytest

from finetune_gui.core.model.head_features import softmax
from finetune_gui.core.model.softmax_head import SoftmaxHead, search_softmax_head
from finetune_gui.core.model.softmax_solver import fit_softmax


def three_blobs(n_per_class: int, dims: int, spread: float, seed: int):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, dims)) * 2
    x = np.concatenate([c + spread * rng.normal(size=(n_per_class, dims)) for c in centres])
    return x, np.repeat(np.arange(3), n_per_class)


def one_signal_among_noise(rng, n: int):
    """n images of 3 classes: one informative feature among 60 noisy ones of a larger spread."""
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 60)) * 5 + 100
    x[:, 0] = y * 3 + rng.normal(size=n) + 100
    return x, y


def test_the_fitted_head_is_the_known_optimum_of_regularised_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    x, y = three_blobs(20, 4, 1.5, seed=0)
    c = 0.5
    # scikit-learn minimises C * sum(CE) + |W|^2 / 2, i.e. mean(CE) + |W|^2 / (2 C n).
    reference = LogisticRegression(C=c, tol=1e-12, max_iter=10_000).fit(x, y)
    params, _, _ = fit_softmax(x, y, 3, l2=1 / (c * len(y)))
    kernel, bias = params[:-1], params[-1]
    # Softmax weights are fixed only up to a constant per feature; compare centred.
    ours = kernel - kernel.mean(axis=1, keepdims=True)
    theirs = reference.coef_.T - reference.coef_.T.mean(axis=1, keepdims=True)
    assert ours == pytest.approx(theirs, abs=1e-4)
    assert bias - bias.mean() == pytest.approx(
        reference.intercept_ - reference.intercept_.mean(), abs=1e-4
    )


def test_the_gradient_vanishes_at_the_solution():
    x, y = three_blobs(15, 3, 1.0, seed=1)
    l2 = 0.01
    params, _, _ = fit_softmax(x, y, 3, l2)
    logits = x @ params[:-1] + params[-1]
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    grad_kernel = x.T @ p / len(y) + l2 * params[:-1]
    assert np.abs(grad_kernel).max() < 1e-5
    assert np.abs(p.sum(axis=0) / len(y)).max() < 1e-5


def test_the_blocks_solved_on_several_cores_give_the_single_cores_head_to_the_last_bit(
        monkeypatch):
    """The head solver shares an evaluation's blocks of rows among the cores and adds their
    shares in block order, so a run's head (and the strength its search keeps) does not
    depend on the machine's number of cores."""
    import finetune_gui.core.block_workers as block_workers

    x, y = three_blobs(400, 2048, 3.0, seed=4)  # 1,200 x 2,048 float32: three blocks of rows
    x = x.astype(np.float32)
    threads = []
    original = block_workers.ThreadPoolExecutor

    def counted(*args, **kwargs):
        threads.append(kwargs["max_workers"])
        return original(*args, **kwargs)

    monkeypatch.setattr(block_workers, "ThreadPoolExecutor", counted)
    heads = {}
    for cores in (1, 2, 3):
        monkeypatch.setattr(block_workers, "usable_cores", lambda cores=cores: cores)
        heads[cores] = fit_softmax(x, y, 3, l2=1e-3, max_iterations=60)
    assert threads == [2, 3]  # one core solves in its own thread
    for cores in (2, 3):
        assert np.array_equal(heads[cores][0], heads[1][0])
        assert heads[cores][1:] == heads[1][1:]


def test_the_head_finished_on_every_row_is_the_same_on_any_number_of_cores(monkeypatch):
    """`finish_on_every_row` (a folder beyond the memory budget) shares its parts of the rows
    among the cores as the solver does, and adds them in order: the same head to the last bit."""
    import finetune_gui.core.block_workers as block_workers
    from finetune_gui.core.data.storage import row_chunks
    from finetune_gui.core.model.head_features import Standardiser
    from finetune_gui.core.model.softmax_solver import finish_on_every_row

    monkeypatch.setenv("FINETUNE_GUI_MEMORY_BUDGET_MB", "16")  # parts of 128 rows
    x, y = three_blobs(200, 64, 3.0, seed=5)
    x = x.astype(np.float32)
    assert len(list(row_chunks(len(x), 8 * 64))) >= 3
    scaler = Standardiser(x)
    start = np.zeros((65, 3))
    heads = {}
    for cores in (1, 2, 3):
        monkeypatch.setattr(block_workers, "usable_cores", lambda cores=cores: cores)
        heads[cores] = finish_on_every_row(x, y, 3, 1e-3, scaler, start)
    for cores in (2, 3):
        assert np.array_equal(heads[cores][0], heads[1][0])
        assert heads[cores][1:] == heads[1][1:]
    assert (scaler(x) @ heads[1][0][:-1] + heads[1][0][-1]).argmax(1).tolist() == y.tolist()


def test_the_l2_strength_is_chosen_on_validation_and_the_weights_take_raw_features():
    # One informative feature among 60 noisy ones, few training images: without shrinkage the
    # head fits the noise, so validation must pick a strong penalty.
    rng = np.random.default_rng(2)
    (x, y), (xv, yv) = one_signal_among_noise(rng, 30), one_signal_among_noise(rng, 300)
    search = search_softmax_head(x, y, xv, yv, 3)
    plain = search.tried[0]
    assert not plain["standardised"] and plain["l2"] == pytest.approx(1 / 30)  # C = 1
    best = max(row["val_accuracy"] for row in search.tried)
    # The plain head's 60 unscaled features of spread 5 drown the one that matters; a strong
    # standardised penalty wins by far more than a standard error (2.9 points on 300 images).
    assert best > plain["val_accuracy"] + 0.08
    assert search.chosen["val_accuracy"] == best and search.head.standardised
    assert search.head.l2 > min(row["l2"] for row in search.tried)
    # Standardisation is folded into the weights: raw features give the validation score.
    raw_accuracy = (search.head.probabilities(xv).argmax(axis=1) == yv).mean()
    assert raw_accuracy == pytest.approx(best)


def test_the_plain_logistic_regression_is_kept_unless_a_strength_wins_clearly():
    """The default head is scikit-learn's `LogisticRegression()` on the features as they are
    (C = 1); a standardised strength replaces it only when it beats it on validation by more
    than a standard error."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(5)
    x, y = three_blobs(20, 8, 2.5, seed=5)
    xv, yv = three_blobs(10, 8, 2.5, seed=6)
    x, xv = x * rng.uniform(0.1, 3, 8), xv * rng.uniform(0.1, 3, 8)
    search = search_softmax_head(x, y, xv, yv, 3)
    plain = search.tried[0]
    margin = np.sqrt(plain["val_accuracy"] * (1 - plain["val_accuracy"]) / len(yv))
    others = [row["val_accuracy"] for row in search.tried[1:]]
    assert max(others) <= plain["val_accuracy"] + margin  # no strength won clearly here
    assert not search.head.standardised and search.chosen is plain
    reference = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(x, y)
    np.testing.assert_allclose(search.head.probabilities(xv), reference.predict_proba(xv),
                               atol=1e-4)


def test_the_plain_head_is_finished_to_its_optimum_only_when_it_may_be_kept(monkeypatch):
    """The plain head is first solved to a looser tolerance: a standardised strength that beats
    it clearly is kept without finishing it (the same choice and head as a search that finishes
    it), and a plain head that is kept is always solved to the end."""
    from finetune_gui.core.model import softmax_head
    from finetune_gui.core.model.lbfgs import GRADIENT_TOLERANCE

    rng = np.random.default_rng(2)
    (x, y), (xv, yv) = one_signal_among_noise(rng, 30), one_signal_among_noise(rng, 300)
    looked = search_softmax_head(x, y, xv, yv, 3)
    assert looked.head.standardised
    assert looked.tried[0]["looked_to_gradient"] == softmax_head.PLAIN_LOOK_GTOL
    monkeypatch.setattr(softmax_head, "PLAIN_LOOK_GTOL", GRADIENT_TOLERANCE)
    finished = search_softmax_head(x, y, xv, yv, 3)
    assert "looked_to_gradient" not in finished.tried[0]
    assert looked.tried[0]["iterations"] < finished.tried[0]["iterations"]
    assert abs(looked.tried[0]["val_accuracy"] - finished.tried[0]["val_accuracy"]) <= 1 / 300
    assert looked.chosen["l2"] == finished.chosen["l2"]
    np.testing.assert_array_equal(looked.head.kernel, finished.head.kernel)
    monkeypatch.undo()

    # Kept: the optimum itself, as the plain problem solved to the end in one go gives it.
    x, y = three_blobs(20, 8, 2.5, seed=5)
    xv, yv = three_blobs(10, 8, 2.5, seed=6)
    kept = search_softmax_head(x, y, xv, yv, 3)
    assert not kept.head.standardised and "looked_to_gradient" not in kept.chosen
    centred = x - x.mean(axis=0)
    params, loss, _ = fit_softmax(centred, y, 3, kept.head.l2)
    assert kept.chosen["train_loss"] == pytest.approx(loss, rel=1e-9)
    np.testing.assert_allclose(kept.head.probabilities(xv), softmax(
        (xv - x.mean(axis=0)) @ params[:-1] + params[-1]), atol=2e-5)


def test_the_search_stops_at_the_first_strength_that_gets_every_validation_image_right():
    """Ties go to the stronger penalty, so no weaker strength can be chosen after a perfect
    one: the grid ends there (on 4,000 images the weak strengths took 18 s of 20), and is
    skipped when the plain head is already perfect."""
    from finetune_gui.core.model.softmax_head import L2_GRID

    # Four features separate the classes but have a tiny scale: the plain head's penalty, on
    # the features as they are, hides them behind three of ordinary scale that carry nothing.
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(3, 4)) * 2

    def sample(n):
        y = np.repeat(np.arange(3), n // 3)
        signal = (centres[y] + 0.1 * rng.normal(size=(len(y), 4))) * 1e-3
        return np.concatenate([signal, rng.normal(size=(len(y), 3))], axis=1), y

    (x, y), (xv, yv) = sample(60), sample(60)
    search = search_softmax_head(x, y, xv, yv, 3)
    assert search.tried[0]["val_accuracy"] < 0.9
    assert search.chosen["val_accuracy"] == 1.0 and search.head.standardised
    assert search.tried[-1] is search.chosen
    grid = [row["l2"] for row in search.tried[1:]]
    assert grid == sorted(L2_GRID, reverse=True)[: len(grid)] and len(grid) < len(L2_GRID)
    # The strength a full search keeps: the best validation accuracy, the stronger breaking ties.
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scores = {}
    for l2 in L2_GRID:
        params, _, _ = fit_softmax((x - mean) / scale, y, 3, l2)
        scores[l2] = (((xv - mean) / scale @ params[:-1] + params[-1]).argmax(axis=1) == yv).mean()
    assert search.head.l2 == max(L2_GRID, key=lambda l2: (scores[l2], l2))

    easy, easy_labels = three_blobs(20, 5, 0.3, seed=7)
    perfect = search_softmax_head(easy, easy_labels, easy, easy_labels, 3)
    assert len(perfect.tried) == 1 and not perfect.head.standardised


def test_the_search_stops_after_two_strengths_that_do_not_beat_the_best():
    """Weaker strengths are the slowest to solve; past a peak that two of them did not beat the
    search stops, and it keeps what the whole grid would have kept up to there."""
    rng = np.random.default_rng(100)
    centres = np.random.default_rng(0).normal(size=(3, 40)) * 2
    x, y = three_blobs(15, 40, 3.0, seed=0)  # noisy: the strongest penalties do best
    xv = np.concatenate([c + 3.0 * rng.normal(size=(30, 40)) for c in centres])
    yv = np.repeat(np.arange(3), 30)
    full = search_softmax_head(x, y, xv, yv, 3, patience=None)
    stopped = search_softmax_head(x, y, xv, yv, 3, patience=2)
    assert len(full.tried) == 12  # the plain head and the 11 strengths

    def scores(search):
        return [(row["l2"], row["val_accuracy"]) for row in search.tried]

    # The grid's first strength scores best and the next two only tie: the search ends there.
    assert scores(stopped) == scores(full)[:4]
    assert stopped.tried[1]["val_accuracy"] > stopped.tried[0]["val_accuracy"]
    assert stopped.tried[2]["val_accuracy"] == stopped.tried[3]["val_accuracy"] == \
        stopped.tried[1]["val_accuracy"]
    assert stopped.chosen["l2"] == full.chosen["l2"]


def test_without_validation_images_one_fallback_strength_is_fitted():
    x, y = three_blobs(10, 3, 0.5, seed=3)
    search = search_softmax_head(x, y, None, None, 3, fallback_l2=0.01)
    assert [row["l2"] for row in search.tried] == [0.01]
    assert (search.head.probabilities(x).argmax(axis=1) == y).mean() > 0.9


def test_the_kept_head_is_solved_again_with_the_validation_images_at_the_chosen_strength():
    from types import SimpleNamespace

    from finetune_gui.core.model.build import build_classifier
    from finetune_gui.core.settings import TrainingSettings
    from finetune_gui.core.training.head_refit import refit_on_train_and_val

    classifier = build_classifier(
        TrainingSettings(backbone="mobilenetv2", weights="none", image_size=32), 2)
    rng = np.random.default_rng(0)
    dims = classifier.head_layers[-1].kernel.shape[0]

    def cloud(centre, n):
        points = rng.normal(scale=0.3, size=(n, dims)).astype(np.float32)
        points[:, :2] += centre
        return points

    # Class 1 shows up in a new place only among the validation images.
    train = np.concatenate([cloud((0, 0), 40), cloud((4, 0), 40)])
    train_labels = np.array([0] * 40 + [1] * 40)
    val = cloud((0, 4), 30)
    val_labels = np.ones(30, dtype=int)
    stored = SimpleNamespace(train=SimpleNamespace(pooled=train), val=SimpleNamespace(pooled=val),
                             views=1)
    messages = []
    chosen = SoftmaxHead(np.zeros((dims, 2)), np.zeros(2), 1e-3, 0.0, 0)  # standardised
    facts = refit_on_train_and_val(classifier, chosen, stored, train_labels, val_labels,
                                   ["a", "b"], "off", messages.append)
    assert {k: facts.pop(k) for k in ("images", "l2", "standardised")} == {
        "images": 110, "l2": 1e-3, "standardised": True}
    # run.json says what the solver took, as for each strength of the search: started from a
    # zero head, it took iterations, and ended below the zero head's loss (log 2 per image).
    assert set(facts) == {"iterations", "train_loss"} and facts["iterations"] > 0
    assert 0 < facts["train_loss"] < np.log(2)
    kernel, bias = classifier.head_layers[-1].get_weights()
    predicted = (np.concatenate([train, val]) @ kernel + bias).argmax(axis=1)
    assert (predicted == np.concatenate([train_labels, val_labels])).mean() > 0.95
    assert "110 in all" in messages[0].text and "test images stay unseen" in messages[0].text

    # Without validation images there is nothing to add: the head is left as it was.
    before = [w.copy() for w in classifier.head_layers[-1].get_weights()]
    empty = SimpleNamespace(train=stored.train, val=SimpleNamespace(pooled=val[:0]), views=1)
    assert refit_on_train_and_val(classifier, chosen, empty, train_labels, val_labels[:0],
                                  ["a", "b"], "off", messages.append) == {}
    for a, b in zip(before, classifier.head_layers[-1].get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)

    # The plain head is solved again as scikit-learn would on all 110 images: C = 1.
    plain = SoftmaxHead(np.zeros((dims, 2)), np.zeros(2), 1 / 80, 0.0, 0, standardised=False)
    facts = refit_on_train_and_val(classifier, plain, stored, train_labels, val_labels,
                                   ["a", "b"], "off", messages.append)
    assert facts["l2"] == pytest.approx(1 / 110) and facts["standardised"] is False
    everything = np.concatenate([train, val])
    assert facts["feature_norm"] == pytest.approx(np.linalg.norm(everything, axis=1).mean(), rel=0.05)
    assert "C = 1" in messages[-1].text

    # With an augmented copy of every training image the rows are not the images: the log
    # counts images (it said "190 in all" of 110 images) and names the copies.
    copied = SimpleNamespace(train=SimpleNamespace(pooled=np.concatenate([train, train])),
                             val=stored.val, views=2)
    refit_on_train_and_val(classifier, chosen, copied, np.tile(train_labels, 2), val_labels,
                           ["a", "b"], "off", messages.append)
    assert ("110 in all, the 80 training images also as 1 augmented copy each; L2 0.001"
            in messages[-1].text)


def test_a_fit_started_from_a_nearby_head_reaches_the_same_optimum_in_fewer_steps():
    """The kept head is solved again on training + validation images starting from itself."""
    x, y = three_blobs(40, 6, 1.5, seed=8)
    part = search_softmax_head(x[::2], y[::2], None, None, 3, fallback_l2=0.01).head
    for standardised in (True, False):
        cold = search_softmax_head(x, y, None, None, 3, fallback_l2=0.01,
                                   fallback_standardised=standardised).head
        warm = search_softmax_head(x, y, None, None, 3, fallback_l2=0.01,
                                   fallback_standardised=standardised, start=part).head
        np.testing.assert_allclose(warm.probabilities(x), cold.probabilities(x), atol=1e-5)
        assert warm.iterations < cold.iterations


def test_the_log_says_which_head_was_kept_and_why():
    from finetune_gui.core.model.softmax_head import HeadSearch
    from finetune_gui.core.training.head_solver import head_choice_text

    def row(l2, standardised, accuracy, chosen=False):
        return {"l2": l2, "standardised": standardised, "val_accuracy": accuracy,
                "chosen": chosen}  # fmt: skip

    head = SoftmaxHead(np.zeros((2, 2)), np.zeros(2), 0.01, 0.0, 0, standardised=False)
    kept_plain = HeadSearch(head, [row(0.01, False, 0.6, True), row(1.0, True, 0.65)])
    assert head_choice_text(kept_plain) == (
        "Head solved as scikit-learn's logistic regression solves it (C = 1): validation "
        "accuracy 60.0%; no standardised L2 strength beat it by more than chance (best: 65.0% "
        "at L2 1).")
    head = SoftmaxHead(np.zeros((2, 2)), np.zeros(2), 0.3, 0.0, 0)
    switched = HeadSearch(head, [row(0.01, False, 0.5), row(1.0, True, 0.7),
                                 row(0.3, True, 0.8, True)])  # fmt: skip
    assert head_choice_text(switched) == (
        "Head solved: standardised features at L2 0.3 (validation accuracy 80.0%, clearly above "
        "the plain logistic regression's 50.0%; 2 strengths tried).")
