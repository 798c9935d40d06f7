"""Probabilities that mean what they say: "90% sure" right about 9 times in 10.

A head solved to fit its training images is over-confident on new ones (on held-out icons 5 of
23 mistakes were said with more than 99% confidence). One temperature T, fitted on answers the
model did not learn, divides the output layer's logits: softmax(z / T). It changes no answer
(the largest logit stays the largest) and, folded into the output layer's weights (W / T,
b / T), it travels inside model.keras into every export unchanged: no new layer, no runtime
that needs to know about it.

Since softmax(log p / T) = softmax(z / T) for p = softmax(z), the temperature can be fitted and
applied on probabilities alone.
"""

from __future__ import annotations

import numpy as np

ECE_BINS = 15  # the usual number of equal-width confidence bins (Guo et al., 2017)
MIN_ANSWERS = 20  # fewer held-out answers than this fit nothing better than T = 1
TEMPERATURE_RANGE = (0.05, 20.0)
CLOSE, OFF = 0.05, 0.1  # calibration errors called close, then somewhat off, then far off


def with_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """`probabilities` as the same logits divided by `temperature` would give them."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if temperature == 1.0 or not len(probabilities):
        return probabilities.astype(np.float32)
    logits = np.log(np.clip(probabilities, 1e-30, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return (scaled / scaled.sum(axis=1, keepdims=True)).astype(np.float32)


def mean_log_loss(probabilities: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """The mean log loss of `probabilities` for their `labels` at `temperature`: what the
    temperature is fitted to lower."""
    scaled = with_temperature(probabilities, temperature).astype(np.float64)
    return float(-np.log(np.clip(scaled[np.arange(len(labels)), labels], 1e-30, 1.0)).mean())


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the log loss of held-out `probabilities` for their
    `labels` (1.0 when there are too few answers to fit it on), but no lower than
    `no_surer_than_seen` allows.

    The log loss alone has no floor when every answer is right: it falls as T goes to 0, and a
    model that got 36 validation images right was fitted T = 0.05 and said at least 99.4% on
    every test image, three of them wrong (1 in 12)."""
    from scipy.optimize import minimize_scalar

    labels = np.asarray(labels, dtype=int)
    if len(labels) < MIN_ANSWERS or len(np.unique(labels)) < 2:
        return 1.0
    low, high = np.log(TEMPERATURE_RANGE[0]), np.log(TEMPERATURE_RANGE[1])
    found = minimize_scalar(lambda log_t: mean_log_loss(probabilities, labels, np.exp(log_t)),
                            bounds=(low, high), method="bounded", options={"xatol": 1e-4})
    temperature = float(np.exp(found.x))
    # Keep T = 1 unless the fit is really better (a flat optimum says nothing).
    if mean_log_loss(probabilities, labels, temperature) >= mean_log_loss(
            probabilities, labels, 1.0) - 1e-6:
        temperature = 1.0
    return max(temperature, no_surer_than_seen(probabilities, labels))


def no_surer_than_seen(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The lowest temperature at which the answers' mean confidence is at most what their
    right answers support by Laplace's rule of succession, (right + 1) / (answers + 2): with
    36 of 36 right, 97.4% (the chance of a mistake estimated at 1 in 38, not 0). Where
    mistakes were seen the log loss's own fit mostly stays under it; it binds hard when nearly
    all are right."""
    from scipy.optimize import brentq

    probabilities = np.asarray(probabilities, dtype=np.float64)
    right = int((probabilities.argmax(axis=1) == np.asarray(labels)).sum())
    most = (right + 1) / (len(labels) + 2)

    def surer_than_seen(log_t: float) -> float:
        return float(with_temperature(probabilities, np.exp(log_t)).max(axis=1).mean()) - most

    low, high = np.log(TEMPERATURE_RANGE[0]), np.log(TEMPERATURE_RANGE[1])
    if surer_than_seen(low) <= 0:
        return TEMPERATURE_RANGE[0]
    if surer_than_seen(high) > 0:
        return TEMPERATURE_RANGE[1]
    # The mean of the largest probabilities falls as T rises: one crossing.
    return float(np.exp(brentq(surer_than_seen, low, high, xtol=1e-4)))


def reliability(probabilities: np.ndarray, labels: np.ndarray,
                bins: int = ECE_BINS) -> list[dict]:
    """Confidence against accuracy, per equal-width bin of the largest probability: the rows of
    the reliability picture (`low`, `high`, `count`, `right` answers among them, mean
    `confidence`, `accuracy`), empty bins left out."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=int)
    if not len(labels):
        return []
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bin i holds confidences in (edges[i], edges[i+1]]; a confidence of 0 goes to the first.
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    rows = []
    for i in range(bins):
        inside = which == i
        if inside.any():
            rows.append({"low": float(edges[i]), "high": float(edges[i + 1]),
                         "count": int(inside.sum()), "right": int(correct[inside].sum()),
                         "confidence": float(confidence[inside].mean()),
                         "accuracy": float(correct[inside].mean())})
    return rows


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray,
                               bins: int = ECE_BINS) -> float | None:
    """The gap between confidence and accuracy, averaged over the bins weighted by how many
    answers each holds (0 is perfect); None without answers."""
    rows = reliability(probabilities, labels, bins)
    total = sum(row["count"] for row in rows)
    if not total:
        return None
    return float(sum(row["count"] * abs(row["confidence"] - row["accuracy"])
                     for row in rows) / total)


def error_by_chance(confidences: np.ndarray, bins: int = ECE_BINS, draws: int = 1000,
                    seed: int = 0) -> tuple[float, float] | None:
    """The calibration error a model that is exactly right about itself would show on these
    answers by chance alone: (mean, 95th percentile) over `draws` simulated test sets in which
    each answer is right with the probability it states. None without answers.

    On a few hundred test images that is far from 0: 148 icons at 59% accuracy give a mean of
    0.094 (0.135 at the 95th percentile), so an error of 0.12 there says nothing against the
    calibration, and a goal of 0.05 cannot be measured on so few (docs/benchmarks.md).
    """
    confidences = np.asarray(confidences, dtype=np.float64)
    n = len(confidences)
    if not n:
        return None
    edges = np.linspace(0.0, 1.0, bins + 1)
    where = np.clip(np.digitize(confidences, edges[1:-1]), 0, bins - 1)
    in_bin = np.zeros((n, bins))
    in_bin[np.arange(n), where] = 1.0
    said = confidences @ in_bin  # (bins,) the confidences summed per bin
    rng = np.random.default_rng(seed)
    errors = []
    for start in range(0, draws, 100):  # 100 test sets at a time: 100 x n booleans in RAM
        right = rng.random((min(100, draws - start), n)) < confidences
        errors.append(np.abs(said - right @ in_bin).sum(axis=1) / n)
    errors = np.concatenate(errors)
    return float(errors.mean()), float(np.quantile(errors, 0.95))


def calibration_verdict(error: float, by_chance: tuple[float, float] | None) -> str:
    """How close the model's confidence is to how often it is right, in words (the Results
    page's sentence). An error above "close" but within what chance alone gives on so few test
    images (`by_chance`: `error_by_chance`, under its 95th percentile) is said to be that,
    instead of calling a model off that nothing shows to be: 0.054 on 201 digits, where chance
    gives 0.048 (0.068), was called "somewhat off"."""
    if error > CLOSE and by_chance is not None and error <= by_chance[1]:
        return (f"as close to what it says as so few test images can show (a model exactly "
                f"right about itself would score about {by_chance[0]:.3f} on them by chance).")
    verdict = ("close to what it says" if error <= CLOSE else
               "somewhat off" if error <= OFF else "far from what it says")
    return f"how often the model is right is {verdict}."


def calibration_text(error: float, by_chance: tuple[float, float] | None = None) -> str:
    """The test split's calibration error in words, beside what chance alone would give on as
    many test images (`by_chance`: mean and 95th percentile, `error_by_chance`): the model
    card's and the terminal report's sentence."""
    text = (f"Calibration error {error:.3f} on the test images (15 bins; 0 means a \"90% sure\" "
            f"answer is right 9 times in 10).")
    if by_chance:
        mean, high = by_chance
        text += (f" A model exactly right about its own confidence would score {mean:.3f} on "
                 f"this many test images by chance alone (up to {high:.3f} in 95 of 100 test "
                 f"sets); {'within' if error <= high else 'above'} what chance explains.")
    return text


def fold_into_output_layer(layer, temperature: float) -> None:
    """Divide a softmax Dense layer's weights by `temperature`: softmax((xW + b) / T)."""
    kernel, bias = layer.get_weights()
    layer.set_weights([(kernel / temperature).astype(kernel.dtype),
                       (bias / temperature).astype(bias.dtype)])
