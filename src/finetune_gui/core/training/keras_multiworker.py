"""Two repairs that let Keras 3 `fit` train under MultiWorkerMirroredStrategy.

Keras 3 (checked with 3.15 on TensorFlow 2.21) fails in two places when several workers train
together; both are reported upstream (keras-team/keras#20585, tensorflow/tensorflow#72388):

1. Before the first step `fit` builds the model from a batch that it averages across workers
   with one `strategy.reduce` over the whole (x, y, weights) tuple. MultiWorkerMirroredStrategy
   cannot reduce a tuple ("Attempt to convert a value (PerReplica...) to a Tensor"). Building
   needs only the shapes, so this worker's own part of the batch is used instead.
2. After each step the loss and metrics, which are scalars, are averaged across workers with
   `axis=0` ("Invalid reduction dimension 0 for input with 0 dimensions"). A scalar is averaged
   with `axis=None`, which is the same all-reduce without the axis.

Both repairs change behaviour only under a multi-worker MultiWorkerMirroredStrategy; every
other strategy goes through the original Keras code.
"""

from __future__ import annotations

from finetune_gui.core.errors import SettingsError

_installed = False


def repair_keras_for_multiworker() -> None:
    """Install both repairs (once per process)."""
    global _installed
    if _installed:
        return
    import keras
    from keras.src.backend.tensorflow import trainer as tf_trainer

    needed = ("reduce_per_replica", "_collective_all_reduce_multi_worker", "TensorFlowTrainer")
    if not all(hasattr(tf_trainer, name) for name in needed) or not hasattr(
        tf_trainer.TensorFlowTrainer, "_maybe_symbolic_build"
    ):
        raise SettingsError(
            f"Training on several machines needs Keras 3.10 to 3.15; Keras {keras.__version__} "
            f"changed the parts finetune-gui repairs for it. Train on one machine, or install "
            f"keras==3.15."
        )
    tf_trainer.reduce_per_replica = _scalar_safe_reduce(tf_trainer.reduce_per_replica)
    tf_trainer.TensorFlowTrainer._maybe_symbolic_build = _build_from_local_batch(
        tf_trainer.TensorFlowTrainer._maybe_symbolic_build
    )
    _installed = True


def _is_multiworker(strategy) -> bool:
    from keras.src.backend.tensorflow import trainer as tf_trainer

    return strategy is not None and tf_trainer._collective_all_reduce_multi_worker(strategy)


def _scalar_safe_reduce(original):
    def reduce_per_replica(values, strategy, reduction):
        if reduction not in ("auto", "mean") or not _is_multiworker(strategy):
            return original(values, strategy, reduction)
        from keras import tree

        return tree.map_structure(
            lambda value: strategy.reduce("MEAN", value, axis=0 if value.shape.rank else None),
            values,
        )

    return reduce_per_replica


def _build_from_local_batch(original):
    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if not _is_multiworker(strategy):
            return original(self, iterator=iterator, data_batch=data_batch)
        import tensorflow as tf
        from keras import tree

        def local_part(value):
            if isinstance(value, tf.distribute.DistributedValues):
                return strategy.experimental_local_results(value)[0]
            return value

        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tree.map_structure(local_part, next(batches))
                break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    return _maybe_symbolic_build
