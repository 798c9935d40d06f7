"""What a run keeps track of across epochs and phases: the best weights, the first loss, and
why a phase stopped early. Plain Python, shared by the job and its Keras callbacks."""

from __future__ import annotations

import math
from dataclasses import dataclass

from finetune_gui.core.training.selection import improves

# Diverged: the loss is 50x worse than on the first batch of the run (and above 20, which a
# clipped cross-entropy on its own does not reach).
EXPLODING_FACTOR = 50.0
EXPLODING_FLOOR = 20.0


class BestWeights:
    """The weights of the layers being trained at the epoch with the best monitored value
    (`selection.criterion`: smaller is better)."""

    def __init__(self, value: float = math.inf, epoch: int | None = None) -> None:
        self.value = value
        self.epoch = epoch
        self.improved = False  # since this process started (a resumed run may not have)
        self.saved: dict[int, tuple[object, list]] = {}

    def remember_start(self, layers) -> None:
        """Record layers about to be trained as they are now, so 'no improvement' undoes them."""
        for layer in layers:
            self.saved.setdefault(id(layer), (layer, [w.copy() for w in layer.get_weights()]))

    def row(self, history: list[dict]) -> dict | None:
        """The history row of the best epoch so far (None before one)."""
        return next((r for r in history if r["epoch"] == self.epoch), None)

    @property
    def saved_this_session(self) -> bool:
        return self.improved

    def update(self, value: float, epoch: int, layers, margin: float = 0.0) -> bool:
        """Keep `layers`' weights when `value` beats the best so far (by more than `margin`, in
        the criterion's units); say whether it did."""
        if not improves(value + margin, self.value):
            return False
        self.value, self.epoch, self.improved = value, epoch, True
        for layer in layers:
            self.saved[id(layer)] = (layer, [w.copy() for w in layer.get_weights()])
        return True

    def restore(self) -> None:
        for layer, weights in self.saved.values():
            layer.set_weights(weights)


class LossWatch:
    """The run's first finite training loss: the yardstick for 'the loss exploded'."""

    def __init__(self, first_loss: float | None = None) -> None:
        self.first_loss = first_loss

    def divergence(self, loss: float) -> str | None:
        """How `loss` went wrong ("became NaN", "exploded to 87.1"), or None while it is sane."""
        if self.first_loss is None and math.isfinite(loss):
            self.first_loss = loss
        limit = max(EXPLODING_FLOOR, EXPLODING_FACTOR * (self.first_loss or 0.0))
        if not math.isfinite(loss) or loss > limit:
            return "became NaN" if math.isnan(loss) else f"exploded to {loss:.3g}"
        return None


@dataclass
class PhaseStop:
    """Why a phase stopped in the middle of an epoch (set by the batch callbacks)."""

    cancelled: bool = False
    diverged: str | None = None
    losing: str | None = None  # why phase 2 stopped at its first look (`callbacks.FirstLook`)

    @property
    def mid_epoch(self) -> bool:
        """Keras still ends such an epoch: it is then neither recorded nor compared."""
        return self.cancelled or bool(self.diverged) or bool(self.losing)


def trained_layers(model) -> list:
    """The layers of `model` with weights that train, looking inside nested models."""
    return [layer for layer in _all_layers(model) if layer.trainable_weights]


def _all_layers(model) -> list:
    """Every layer of `model`, looking inside nested models."""
    found = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            found.extend(_all_layers(layer))
        else:
            found.append(layer)
    return found
