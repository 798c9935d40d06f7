"""Wall time, test accuracy and peak memory: the tutorial recipe against this engine.

Both recipes see the same generated dataset (train/ val/ test/ folders), the same backbone,
input size, epochs, unfrozen blocks, augmentation and weights file. Each runs in its own process
so that its peak resident memory is its own.

    python benchmarks/compare_tutorial.py --train-images 4000 --size 160 \
        --epochs-head 5 --epochs-finetune 5 --work /tmp/bench

Without --weights the script first trains a MobileNetV2 from scratch on a separate set of shapes
and saves its base weights (not timed): ImageNet weights cannot be downloaded offline, and a
frozen random base would make the accuracy comparison meaningless.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

from finetune_gui.core.words import counted

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def make_data(work: Path, train_images: int, size: int) -> Path:
    from finetune_gui.demo import make_shapes_dataset

    data = work / f"data-{train_images}-{size}"
    if (data / "test").exists():
        return data
    per_class = train_images // 3
    held_out = max(20, per_class * 15 // 70)
    make_shapes_dataset(data / "train", per_class, size, seed=1, fmt="jpg")
    make_shapes_dataset(data / "val", held_out, size, seed=2, fmt="jpg")
    make_shapes_dataset(data / "test", held_out, size, seed=3, fmt="jpg")
    return data


def make_weights(work: Path, size: int) -> Path:
    from finetune_gui.core.model.parts import split_classifier
    from finetune_gui.core.run.folder import RunFolder
    from finetune_gui.core.settings import TrainingSettings
    from finetune_gui.core.training.job import TrainingJob
    from finetune_gui.demo import make_shapes_dataset

    path = work / f"pretrained-mobilenetv2-{size}.weights.h5"
    if path.exists():
        return path
    data = make_shapes_dataset(work / f"pretrain-{size}", 120, size, seed=11, fmt="jpg")
    settings = TrainingSettings(
        backbone="mobilenetv2", weights="none", image_size=size, epochs_head=8,
        epochs_finetune=0, batch_size=32, augment="none", patience=0,
    )  # fmt: skip
    run = work / f"pretrain-run-{size}-{time.time_ns()}"
    TrainingJob(data, settings, run).run()
    model = RunFolder.open(run).load_model()
    split_classifier(model).base.save_weights(path)
    return path


def tutorial(args) -> dict:
    """The recipe as the Keras/TensorFlow transfer-learning tutorials write it."""
    import keras
    import tensorflow as tf

    from finetune_gui.core.model.backbones import block_ends, cut_layer, get_backbone

    keras.utils.set_random_seed(0)
    size, data = args.size, Path(args.data)

    def load(split, shuffle):
        return keras.utils.image_dataset_from_directory(
            data / split,
            image_size=(size, size),
            batch_size=args.batch_size,
            shuffle=shuffle,
            seed=0,
        )

    train, val, test = load("train", True), load("val", False), load("test", False)
    classes = len(train.class_names)  # 3 generated shapes, or a real folder's classes
    train, val, test = (part.prefetch(tf.data.AUTOTUNE) for part in (train, val, test))
    augmentation = keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal"),
            keras.layers.RandomRotation(0.03),
            keras.layers.RandomZoom(0.1),
            keras.layers.RandomTranslation(0.05, 0.05),
        ]
    )  # fmt: skip  -- the engine's "light" preset
    base = keras.applications.MobileNetV2(
        include_top=False, weights=None, input_shape=(size, size, 3)
    )
    base.load_weights(args.weights)
    base.trainable = False
    inputs = keras.Input((size, size, 3))
    x = augmentation(inputs)
    x = keras.applications.mobilenet_v2.preprocess_input(x)
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    model.fit(train, validation_data=val, epochs=args.epochs_head, verbose=0)
    # Unfreeze the same top blocks as the engine (the tutorial's "fine_tune_at").
    cut = cut_layer(block_ends(base, get_backbone("mobilenetv2")), args.unfreeze_blocks)
    names = [layer.name for layer in base.layers]
    fine_tune_at = names.index(cut) + 1
    base.trainable = True
    for layer in base.layers[:fine_tune_at]:
        layer.trainable = False
    model.compile(
        keras.optimizers.Adam(1e-4), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    model.fit(train, validation_data=val, epochs=args.epochs_head + args.epochs_finetune,
              initial_epoch=args.epochs_head, verbose=0)  # fmt: skip
    _, accuracy = model.evaluate(test, verbose=0)
    return {"accuracy": float(accuracy)}


def engine(args) -> dict:
    from finetune_gui.core.settings import TrainingSettings
    from finetune_gui.core.training.job import TrainingJob

    settings = TrainingSettings(
        backbone="mobilenetv2", weights=str(args.weights), image_size=args.size,
        epochs_head=args.epochs_head, epochs_finetune=args.epochs_finetune,
        unfreeze_blocks=args.unfreeze_blocks, batch_size=args.batch_size, augment="light",
        patience=0, cache_mode=args.mode,
    )  # fmt: skip
    out = Path(args.work) / f"engine-run-{time.time_ns()}"
    # A fresh feature cache: reusing an earlier run's extraction would time a second run, not
    # a first one.
    os.environ["FINETUNE_GUI_CACHE_DIR"] = str(out.with_name(out.name + "-cache"))
    result = TrainingJob(args.data, settings, out, views=args.views).run()
    return {"accuracy": result.report.accuracy}


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: the latter carries over
    from the parent process across fork and exec."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args) -> None:
    started = time.perf_counter()
    found = tutorial(args) if args.recipe == "tutorial" else engine(args)
    found["seconds"] = time.perf_counter() - started
    found["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(found))


def run_child(recipe: str, args, extra: list[str] | None = None) -> dict:
    command = [sys.executable, __file__, "--child", recipe, "--data", str(args.data),
               "--weights", str(args.weights), "--work", str(args.work), "--size", str(args.size),
               "--epochs-head", str(args.epochs_head), "--epochs-finetune", str(args.epochs_finetune),
               "--unfreeze-blocks", str(args.unfreeze_blocks), "--batch-size", str(args.batch_size),
               *(extra or [])]  # fmt: skip
    started = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, check=False)
    line = next((line for line in out.stdout.splitlines() if line.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"{recipe} failed:\n{out.stderr[-3000:]}")
    found = json.loads(line[7:])
    found["wall_seconds"] = time.perf_counter() - started  # includes starting Python and TF
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-images", type=int, default=4000)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--epochs-head", type=int, default=5)
    parser.add_argument("--epochs-finetune", type=int, default=5)
    parser.add_argument("--unfreeze-blocks", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--views", type=int, nargs="+", default=[1], help="engine: augmented views per image"
    )
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=Path("/tmp/finetune-gui-bench"))
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--mode", default="fast")
    parser.add_argument("--child", choices=["tutorial", "engine"])
    parser.add_argument("--skip-tutorial", action="store_true")
    args = parser.parse_args()
    if args.child:
        args.recipe, args.views = args.child, args.views[0]
        child(args)
        return
    args.work.mkdir(parents=True, exist_ok=True)
    args.data = args.data or make_data(args.work, args.train_images, args.size)
    args.weights = args.weights or make_weights(args.work, args.size)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")  # fmt: skip
    training_images = sum(1 for f in (args.data / "train").rglob("*") if f.is_file())
    print(f"data: {args.data} ({training_images:,} training images, {args.size} px), "
          f"MobileNetV2, {args.epochs_head}+{args.epochs_finetune} epochs, top {args.unfreeze_blocks} blocks")  # fmt: skip
    rows = []
    if not args.skip_tutorial:
        rows.append(("tutorial recipe", run_child("tutorial", args)))
    for views in args.views:
        rows.append(
            (f"engine, fast, {counted(views, 'view')}",
             run_child("engine", args, ["--views", str(views)]))
        )
    print(f"{'recipe':<26} {'wall s':>8} {'test acc':>9} {'peak RSS MB':>12}")
    for name, r in rows:
        print(f"{name:<26} {r['wall_seconds']:8.1f} {r['accuracy']:9.3f} {r['peak_rss_mb']:12.0f}")
    if not args.skip_tutorial:
        base = rows[0][1]
        for name, r in rows[1:]:
            print(f"{name}: {base['wall_seconds'] / r['wall_seconds']:.1f}x faster, accuracy "
                  f"{100 * (r['accuracy'] - base['accuracy']):+.1f} points")  # fmt: skip


if __name__ == "__main__":
    main()
