"""Fine-tuning made ready on a second thread while phase 1 solves the head.

Before fine-tuning's first step TensorFlow traces its training step (the top blocks forward and
backward, the optimizer): 0.9 s on 150 faces at 48 px. While the head's search runs in numpy,
a second thread can build fine-tuning's model, compile it, trace that step and run it once (at
learning rate 0, changing nothing); phase 2 then starts at its first step. It competes with the
search for the interpreter, so a run prepares only a phase 2 that is sure to run (fine-tuning
set to "always"; `PhaseTrainer._prepare_finetune`): on MNIST that saved 3-4 s of 82-86 s, and a
preparation thrown away cost 2.3-2.6 s.

It changes no weight and sends no events. The trainable flags it sets are
the ones phase 2 sets anyway, and they are put back when phase 2 does not run (`discard`).
Only with TensorFlow's default strategy and float32: a mirrored strategy's scope and Keras'
mixed-precision policy are kept per thread, so those runs prepare fine-tuning themselves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from finetune_gui.core.model.build import set_trainable_blocks
from finetune_gui.core.training.recipe import compile_for_training

# Training images times classes below which phase 1 is too short to hide the preparation in:
# on 150 faces (106 x 2) the head was solved in 0.3 s, and the preparation (1.9 s there) then
# only competed with it for the interpreter (phase 2 2.3 s against 1.9 s without it); on icons
# (310 x 6, phase 1 2.4 s) it took phase 2 from 1.0 s to 0.6 s.
PREPARE_MIN_ROWS_TIMES_CLASSES = 1_000


def can_prepare(strategy, train_images: int, classes: int) -> bool:
    """Whether fine-tuning can be made ready on another thread under `strategy`, and phase 1
    on `train_images` in `classes` lasts long enough for it."""
    import keras
    import tensorflow as tf

    return (strategy is tf.distribute.get_strategy()
            and keras.mixed_precision.global_policy().name == "float32"
            and train_images * classes >= PREPARE_MIN_ROWS_TIMES_CLASSES)


def trace_training_step(model, dataset) -> bool:
    """Trace `model`'s (compiled) training step for batches like `dataset`'s, without running
    it: `fit` on a dataset of the same element spec then takes this trace. False where this
    Keras keeps its step elsewhere (`fit` then traces it, as without this)."""
    import tensorflow as tf

    model.make_train_function()
    cells = getattr(model.train_function, "__closure__", None) or ()
    steps = [cell.cell_contents for cell in cells
             if isinstance(cell.cell_contents, tf.types.experimental.PolymorphicFunction)]
    if len(steps) != 1:
        return False
    steps[0].get_concrete_function(iter(dataset))
    return True


def run_first_step(model, dataset) -> bool:
    """Run `model`'s traced training step once on a batch of `dataset`, changing nothing.

    TensorFlow optimises a traced function's graph and sets it up when it first runs it (0.4 s
    of fine-tuning on 150 faces at 48 px); run here, that is done before phase 2 begins. The
    step runs at learning rate 0, which leaves every weight as it was (each update is the
    learning rate times a finite number), and the optimizer's variables (its step count, its
    moments, the learning rate) and the metrics are then put back as they were, so `fit` starts
    as on a model that never ran."""
    optimizer = model.optimizer
    if not hasattr(optimizer.learning_rate, "assign"):
        return False  # a schedule: fit's first step sets the function up, as without this
    saved = [variable.numpy() for variable in optimizer.variables]
    optimizer.learning_rate.assign(0.0)
    try:
        model.train_function(iter(dataset))
    finally:
        for variable, value in zip(optimizer.variables, saved, strict=True):
            variable.assign(value)
        model.reset_metrics()
    return True


class FinetunePreparation:
    """Phase 2's model, compiled and traced on a thread started at construction.

    `build()` returns (model, training inputs, validation inputs) as `fast_path.phase_model`
    does; `make_train(inputs, batch_size)` training batches as phase 2's, of the first rows of
    its inputs given (a few rows are enough to trace)."""

    def __init__(self, classifier, strategy, unfrozen_blocks: int, optimizer: str, lr: float,
                 batch_size: int, build: Callable[[], tuple],
                 make_train: Callable[[tuple, int], object]) -> None:
        self.classifier = classifier
        base = classifier.base
        self._flags = [(base, base.trainable)] + [(layer, layer.trainable) for layer in base.layers]
        self._args = (strategy, unfrozen_blocks, optimizer, lr, batch_size, build, make_train)
        self._built: tuple | None = None
        self._taken = False
        self.traced = self.ran = False
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._prepare, name="finetune-prep", daemon=True)
        self._thread.start()

    def _prepare(self) -> None:
        strategy, unfrozen_blocks, optimizer, lr, batch_size, build, make_train = self._args
        try:
            with strategy.scope():
                set_trainable_blocks(self.classifier, unfrozen_blocks)
                model, inputs, val_inputs = build()
                compile_for_training(model, optimizer, lr)
            self._built = (model, inputs, val_inputs)
            rows = _first_rows(inputs)
            self.traced = trace_training_step(model, make_train(rows, batch_size))
            self.ran = self.traced and run_first_step(model, make_train(rows, batch_size))
        except Exception as error:  # phase 2 then prepares itself, as without this
            self.error = error

    def take(self) -> tuple | None:
        """(model compiled for phase 2, training inputs, validation inputs), or None when the
        preparation failed (phase 2 then builds and compiles its own)."""
        self._thread.join()
        self._taken = self.error is None
        return self._built if self._taken else None

    def discard(self) -> None:
        """Done with the preparation: wait for the thread, and unless phase 2 took its model,
        put the trainable flags back."""
        self._thread.join()
        if self._taken:
            return
        for layer, trainable in self._flags:
            layer.trainable = trainable


def _first_rows(inputs, rows: int = 2):
    """The first `rows` rows of `inputs` (an array or a tuple of arrays) as in-memory arrays."""
    if isinstance(inputs, tuple):
        return tuple(np.array(part[:rows]) for part in inputs)
    return np.array(inputs[:rows])
