"""Does the default run beat the simple baselines? Test accuracy and wall time on real images.

Three real image sets made from files that installed packages ship (not generated shapes):

- digits: scikit-learn's 1,797 handwritten digits (8 x 8 grey), upscaled; 10 classes;
- icons: the GNOME Adwaita icon theme's 48 px icons, one class per folder (actions, devices,
  emblems, mimetypes, places, status), laid on white; 6 classes;
- faces: scikit-image's `lfw_subset` (100 face and 100 non-face photo crops, 25 x 25 grey);
  2 classes.

Each set has a fixed held-out test folder (25%, stratified); every recipe sees only the rest
(the pool) and every model is scored on the test folder with one loader, the app's
`load_rgb`. Rows, three seeds each: the default run (only the weights file and image size
chosen), `--auto` with a small budget, logistic regression (scikit-learn, C=1) on the same
frozen pooled features of all pool images, and the tutorial recipe (5 + 5 epochs, top 20
layers unfrozen). `--recipes anchor` adds the careful programmer's full fine-tune (`ANCHOR`:
13 of 17 blocks unfrozen, a new augmented version of each image every epoch, 12 fine-tuning
epochs, none stopped early), the mark `--auto` should get within half a point of.

ImageNet weights cannot be downloaded here and no installed package ships them, so the base is
a MobileNetV2 trained from scratch (not timed) on a fourth real set: the 26 capital letters
rendered from the 22 DejaVu font files that Debian ships, with random size, shift and rotation.

    python benchmarks/quality.py --work /tmp/quality --size 48 --seeds 0 1 2

scikit-image is not a dependency: `--skimage-data DIR` names the `skimage/data` folder of a
scikit-image wheel (`pip download scikit-image --no-deps`, then unzip) for the faces set.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import numpy as np

ICON_ROOT = Path("/usr/share/icons/Adwaita/48x48")
ICON_CLASSES = ("actions", "devices", "emblems", "mimetypes", "places", "status")
FONT_ROOT = Path("/usr/share/fonts/truetype/dejavu")
TEST_SHARE = 0.25


# -- the image sets ------------------------------------------------------------------------
def _save(image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def _write_set(root: Path, items: list[tuple[str, object]]) -> Path:
    """items: (class, PIL image); a fixed stratified 25% goes to test/, the rest to pool/."""
    rng = random.Random(123)
    by_class: dict[str, list] = {}
    for label, image in items:
        by_class.setdefault(label, []).append(image)
    for label, images in by_class.items():
        order = list(range(len(images)))
        rng.shuffle(order)
        n_test = max(1, round(len(images) * TEST_SHARE))
        for rank, index in enumerate(order):
            part = "test" if rank < n_test else "pool"
            _save(images[index], root / part / label / f"{label}-{index:04d}.png")
    return root


def make_digits(root: Path) -> Path:
    from PIL import Image
    from sklearn.datasets import load_digits

    if root.exists():
        return root
    digits = load_digits()
    items = []
    for values, label in zip(digits.images, digits.target, strict=True):
        grey = (255 - values / 16.0 * 255).astype(np.uint8)  # dark ink on white paper
        items.append((str(label), Image.fromarray(grey).resize((32, 32), Image.BICUBIC)))
    return _write_set(root, items)


def make_icons(root: Path) -> Path:
    from PIL import Image

    if root.exists():
        return root
    items = []
    for label in ICON_CLASSES:
        for path in sorted((ICON_ROOT / label).glob("*.png")):
            rgba = Image.open(path).convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            items.append((label, Image.alpha_composite(white, rgba).convert("RGB")))
    return _write_set(root, items)


def make_faces(root: Path, skimage_data: Path) -> Path:
    from PIL import Image

    if root.exists():
        return root
    faces = np.load(skimage_data / "lfw_subset.npy")  # 100 faces, then 100 non-faces, 0..1
    items = []
    for index, values in enumerate(faces):
        label = "face" if index < 100 else "not-face"
        items.append((label, Image.fromarray((values * 255).astype(np.uint8))))
    return _write_set(root, items)


def make_letters(root: Path, per_font: int = 3) -> Path:
    """Capital letters from every DejaVu font, jittered: the set the base is pretrained on."""
    from PIL import Image, ImageDraw, ImageFont

    if root.exists():
        return root
    rng = random.Random(7)
    for font_path in sorted(FONT_ROOT.glob("*.ttf")):
        for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
            for copy in range(per_font):
                font = ImageFont.truetype(str(font_path), rng.randint(20, 34))
                image = Image.new("RGB", (48, 48), (255, 255, 255))
                ink = tuple(rng.randint(0, 120) for _ in range(3))
                ImageDraw.Draw(image).text(
                    (24 + rng.randint(-5, 5), 24 + rng.randint(-5, 5)), letter,
                    font=font, fill=ink, anchor="mm",
                )  # fmt: skip
                image = image.rotate(rng.uniform(-15, 15), fillcolor=(255, 255, 255))
                _save(image, root / letter / f"{font_path.stem}-{copy}.png")
    return root


def pretrain_base(work: Path, size: int) -> Path:
    from finetune_gui.core.model.parts import split_classifier
    from finetune_gui.core.run.folder import RunFolder
    from finetune_gui.core.settings import TrainingSettings
    from finetune_gui.core.training.job import TrainingJob

    path = work / f"letters-mobilenetv2-{size}.weights.h5"
    if path.exists():
        return path
    data = make_letters(work / "letters")
    settings = TrainingSettings(
        backbone="mobilenetv2", weights="none", image_size=size, epochs_head=12,
        epochs_finetune=0, batch_size=32, augment="none", patience=0, test_fraction=0.1,
    )  # fmt: skip
    run = work / f"pretrain-run-{time.time_ns()}"
    result = TrainingJob(data, settings, run).run()
    print(f"base pretrained on letters: test accuracy {result.report.accuracy:.3f}", flush=True)
    split_classifier(RunFolder.open(run).load_model()).base.save_weights(path)
    return path


# -- scoring with one loader ---------------------------------------------------------------
def load_folder(folder: Path, classes: list[str], size: int) -> tuple[np.ndarray, np.ndarray]:
    from finetune_gui.core.data.images import load_rgb

    pixels, labels = [], []
    for index, name in enumerate(classes):
        for path in sorted((folder / name).glob("*.png")):
            pixels.append(load_rgb(path, size))
            labels.append(index)
    return np.stack(pixels), np.array(labels)


def score_model(model, test: tuple[np.ndarray, np.ndarray]) -> float:
    probs = model.predict(test[0].astype("float32"), verbose=0, batch_size=64)
    return float((probs.argmax(axis=1) == test[1]).mean())


# -- the recipes ---------------------------------------------------------------------------
# The careful programmer's full fine-tune (issue 26's anchor for what the images allow): most of
# the network unfrozen (13 of MobileNetV2's 17 blocks), a new random version of each image every
# epoch (exact mode, the light preset), all of a dozen fine-tuning epochs run (no early stop),
# fine-tuning run whatever the head scored. The app's rule still decides what is kept: the
# fine-tuned model only when it beats the head on validation by more than chance.
ANCHOR = {"cache_mode": "exact", "unfreeze_blocks": 13, "epochs_finetune": 12,
          "finetune_when": "always", "patience": 0}


def engine_run(pool: Path, weights: Path, size: int, seed: int, work: Path, test, auto=None,
               changes: dict | None = None):

    from finetune_gui.core.settings import TrainingSettings
    from finetune_gui.core.training.job import TrainingJob

    settings = TrainingSettings(weights=str(weights), image_size=size, seed=seed, test_fraction=0,
                                **(changes or {}))
    out = work / f"run-{time.time_ns()}"
    if auto is None:
        TrainingJob(pool, settings, out).run()
    else:
        from finetune_gui.core.training.auto import auto_train

        auto_train(pool, settings, out, budget_minutes=auto)
    from finetune_gui.core.run.calibration import (
        error_by_chance,
        expected_calibration_error,
        with_temperature,
    )
    from finetune_gui.core.run.folder import RunFolder

    run = RunFolder.open(out)
    probs = run.load_model().predict(test[0].astype("float32"), verbose=0, batch_size=64)
    # The same answers before calibration: the temperature taken out again (1 / T).
    raw = with_temperature(probs, 1.0 / run.facts.temperature)
    chance, chance_95 = error_by_chance(probs.max(axis=1))
    calibration = {"ece": round(expected_calibration_error(probs, test[1]), 4),
                   "ece_uncalibrated": round(expected_calibration_error(raw, test[1]), 4),
                   "temperature": round(run.facts.temperature, 4),
                   # what a model exactly right about itself would score on this test folder
                   "ece_by_chance": round(chance, 4), "ece_by_chance_95": round(chance_95, 4),
                   "mean_confidence": round(float(probs.max(axis=1).mean()), 4)}
    return float((probs.argmax(1) == test[1]).mean()), run.facts.kept_model or "", calibration


def probe(pool: Path, weights: Path, size: int, classes, test) -> float:
    import keras
    from sklearn.linear_model import LogisticRegression

    from finetune_gui.core.model.build import build_classifier
    from finetune_gui.core.model.frozen_pass import build_extractor
    from finetune_gui.core.settings import TrainingSettings

    keras.backend.clear_session()
    settings = TrainingSettings(weights=str(weights), image_size=size)
    extractor = build_extractor(build_classifier(settings, len(classes)), None)
    train_x, train_y = load_folder(pool, classes, size)
    features = extractor.predict(train_x.astype("float32"), verbose=0, batch_size=64)
    test_features = extractor.predict(test[0].astype("float32"), verbose=0, batch_size=64)
    classifier = LogisticRegression(C=1.0, max_iter=3000).fit(features, train_y)
    return float((classifier.predict(test_features) == test[1]).mean())


def tutorial(pool: Path, weights: Path, size: int, seed: int, classes, test) -> float:
    """The Keras transfer-learning tutorial: frozen base 5 epochs, then the top 20 layers."""
    import keras
    import tensorflow as tf

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)

    def load(subset):
        return keras.utils.image_dataset_from_directory(
            pool, image_size=(size, size), batch_size=32, validation_split=0.15,
            subset=subset, seed=seed, class_names=classes, verbose=False,
        ).prefetch(tf.data.AUTOTUNE)  # fmt: skip

    train, val = load("training"), load("validation")
    augmentation = keras.Sequential(
        [keras.layers.RandomFlip("horizontal"), keras.layers.RandomRotation(0.03),
         keras.layers.RandomZoom(0.1), keras.layers.RandomTranslation(0.05, 0.05)]
    )  # fmt: skip
    base = keras.applications.MobileNetV2(
        include_top=False, weights=None, input_shape=(size, size, 3)
    )
    base.load_weights(weights)
    base.trainable = False
    inputs = keras.Input((size, size, 3))
    x = keras.applications.mobilenet_v2.preprocess_input(augmentation(inputs))
    x = keras.layers.GlobalAveragePooling2D()(base(x, training=False))
    outputs = keras.layers.Dense(len(classes), activation="softmax")(keras.layers.Dropout(0.2)(x))
    model = keras.Model(inputs, outputs)
    loss = "sparse_categorical_crossentropy"
    model.compile(keras.optimizers.Adam(1e-3), loss, metrics=["accuracy"])
    model.fit(train, validation_data=val, epochs=5, verbose=0)
    base.trainable = True
    for layer in base.layers[:-20]:
        layer.trainable = False
    model.compile(keras.optimizers.Adam(1e-4), loss, metrics=["accuracy"])
    model.fit(train, validation_data=val, epochs=10, initial_epoch=5, verbose=0)
    return score_model(model, test)


def timed(function, *args, **kwargs):
    start = time.monotonic()
    value = function(*args, **kwargs)
    return value, time.monotonic() - start


def summarise(results: Path) -> str:
    """The results file as the markdown table in docs/benchmarks.md (means over the seeds run)."""
    rows, seen = [], set()
    for line in results.read_text().splitlines():
        row = json.loads(line) if line.strip() else None
        if row and (row["set"], row["seed"], row["recipe"]) not in seen:  # two processes may overlap
            seen.add((row["set"], row["seed"], row["recipe"]))
            rows.append(row)
    lines = [
        "| set | recipe | seeds | test accuracy per seed | mean | mean wall time | kept | "
        "calibration error (uncalibrated -> calibrated; chance alone: mean-95th pct.) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    order = ["default", "auto", "anchor", "probe", "tutorial"]
    for name in dict.fromkeys(r["set"] for r in rows):
        for recipe in order:
            found = sorted(
                (r for r in rows if r["set"] == name and r["recipe"] == recipe),
                key=lambda r: r["seed"],
            )
            if not found:
                continue
            accuracies = " / ".join(f"{r['accuracy']:.3f}" for r in found)
            mean = sum(r["accuracy"] for r in found) / len(found)
            seconds = sum(r["seconds"] for r in found) / len(found)
            kept = ", ".join(r["kept"] for r in found if r["kept"])
            seeds = ",".join(str(r["seed"]) for r in found)
            errors = " / ".join(
                f"{r['ece_uncalibrated']:.3f} -> {r['ece']:.3f}"
                + (f" (chance {r['ece_by_chance']:.3f}-{r['ece_by_chance_95']:.3f})"
                   if "ece_by_chance" in r else "")
                for r in found if "ece" in r)
            lines.append(
                f"| {name} | {recipe} | {seeds} | {accuracies} | **{mean:.3f}** | "
                f"{seconds:.0f} s | {kept} | {errors} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/quality"))
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sets", nargs="+", default=["digits", "icons", "faces"])
    parser.add_argument("--recipes", nargs="+", default=["default", "auto", "probe", "tutorial"])
    parser.add_argument("--auto-budget", type=float, default=1.0, help="minutes")
    parser.add_argument("--skimage-data", type=Path, default=None)
    parser.add_argument("--results", type=Path, default=None, help="append JSON lines here")
    parser.add_argument("--summarise", type=Path, default=None, help="print a results file's table")
    args = parser.parse_args()
    if args.summarise:
        print(summarise(args.summarise))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("FINETUNE_GUI_CACHE_DIR", str(args.work / "cache"))
    weights = pretrain_base(args.work, args.size)
    makers = {
        "digits": lambda: make_digits(args.work / "digits"),
        "icons": lambda: make_icons(args.work / "icons"),
        "faces": lambda: make_faces(args.work / "faces", args.skimage_data),
    }
    results = args.results or args.work / "results.jsonl"
    sets = {}
    for name in args.sets:
        root = makers[name]()
        classes = sorted(p.name for p in (root / "pool").iterdir())
        test = load_folder(root / "test", classes, args.size)
        n_pool = sum(1 for _ in (root / "pool").rglob("*.png"))
        print(f"{name}: {len(classes)} classes, {n_pool} pool / {len(test[1])} test", flush=True)
        sets[name] = (root, classes, test)
    # Seeds outermost: a benchmark stopped early still has every set at the first seed.
    for seed in args.seeds:
        for name, (root, classes, test) in sets.items():
            for recipe in args.recipes:
                row = run_recipe(recipe, root / "pool", weights, args, seed, classes, test)
                row = {"set": name, "seed": seed, **row, "test_images": len(test[1])}
                print(json.dumps(row), flush=True)
                with open(results, "a") as handle:
                    handle.write(json.dumps(row) + "\n")


def run_recipe(recipe: str, pool: Path, weights: Path, args, seed: int, classes, test) -> dict:
    """One recipe on one set and seed: its test accuracy, wall time and what the run kept."""
    kept = ""
    if recipe in ("default", "auto", "anchor"):
        budget = args.auto_budget if recipe == "auto" else None
        (accuracy, kept, calibration), wall = timed(
            engine_run, pool, weights, args.size, seed, args.work, test, auto=budget,
            changes=ANCHOR if recipe == "anchor" else None,
        )
        return {"recipe": recipe, "accuracy": accuracy, "seconds": round(wall, 1), "kept": kept,
                **calibration}
    elif recipe == "probe":
        accuracy, wall = timed(probe, pool, weights, args.size, classes, test)
    else:
        accuracy, wall = timed(tutorial, pool, weights, args.size, seed, classes, test)
    return {"recipe": recipe, "accuracy": accuracy, "seconds": round(wall, 1), "kept": kept}


if __name__ == "__main__":
    main()
