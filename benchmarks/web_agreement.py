"""Does the web page answer as the app does, on real pictures, with a confident model?

    python benchmarks/web_agreement.py --per-class 80 --size 48

Builds a real folder from what Debian ships: "symbolic" and "colour" GNOME Adwaita icons (PNG
with transparency, 16 to 512 px; some colour icons as big JPEGs) and "photo" crops of the
scikit-learn sample photos (JPEG from 300 to 3000 px with 4:2:0, 4:2:2 or 4:4:4 chroma,
progressive or not, some stored sideways with an EXIF rotation, some PNG with an alpha edge).
Trains MobileNetV2 from a base pretrained on generated shapes, exports the web page (whose own
check must pass), then compares the page's classify() with the app's predict on every held-out
picture, and also with the pixels the app used to get from Pillow's JPEG draft.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).parent))

import numpy as np
from compare_tutorial import make_weights
from PIL import Image

ICONS = Path("/usr/share/icons/Adwaita")
PHOTOS = Path(sys.prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / (
    "site-packages/sklearn/datasets/images"
)


def _icons(symbolic: bool) -> list[Path]:
    found = [p for p in sorted(ICONS.rglob("*.png")) if ("-symbolic" in p.name) == symbolic]
    return [p for p in found if not p.parent.parent.name.startswith("8x8")]


def make_real_folder(root: Path, per_class: int, seed: int) -> Path:
    """symbolic/, colour/ and photo/ with `per_class` pictures each (see the module docstring)."""
    rng = random.Random(seed)
    for name in ("symbolic", "colour", "photo"):
        (root / name).mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(rng.sample(_icons(True), per_class)):
        (root / "symbolic" / f"{i:03d}-{path.name}").write_bytes(path.read_bytes())
    colour = rng.sample(_icons(False), per_class)
    for i, path in enumerate(colour):
        target = root / "colour" / f"{i:03d}-{path.stem}"
        if i % 4 == 3:  # a big JPEG: on white, blown up to 800-2400 px
            icon = Image.open(path).convert("RGBA")
            flat = Image.alpha_composite(Image.new("RGBA", icon.size, "white"), icon)
            side = rng.randrange(800, 2400)
            flat.convert("RGB").resize((side, side), Image.Resampling.BICUBIC).save(
                target.with_suffix(".jpg"), quality=rng.choice([75, 90]),
            )
        else:
            target.with_suffix(".png").write_bytes(path.read_bytes())
    photos = [Image.open(p).convert("RGB") for p in sorted(PHOTOS.glob("*.jpg"))]
    for i in range(per_class):
        photo = rng.choice(photos)
        w, h = rng.randrange(120, photo.width), rng.randrange(90, photo.height)
        x, y = rng.randrange(0, photo.width - w + 1), rng.randrange(0, photo.height - h + 1)
        scale = rng.choice([1.0, 2.0, 3.5, 5.0])
        crop = photo.crop((x, y, x + w, y + h)).resize(
            (round(w * scale), round(h * scale)), Image.Resampling.BICUBIC
        )
        target = root / "photo" / f"{i:03d}"
        if i % 5 == 4:  # PNG with a soft transparent edge
            alpha = Image.new("L", crop.size, 255)
            alpha.paste(0, (0, 0, crop.width // 6, crop.height))
            rgba = crop.convert("RGBA")
            rgba.putalpha(alpha)
            rgba.save(target.with_suffix(".png"))
            continue
        options = {"quality": rng.choice([70, 85, 95]), "subsampling": rng.choice([0, 1, 2]),
                   "progressive": rng.random() < 0.3}  # fmt: skip
        if i % 5 == 3:  # stored sideways, shown upright through EXIF orientation 6
            exif = Image.Exif()
            exif[0x0112] = 6
            crop = crop.transpose(Image.Transpose.ROTATE_90)
            options["exif"] = exif
        crop.save(target.with_suffix(".jpg"), **options)
    return root


def drafted_pixels(path: Path, size: int) -> np.ndarray:
    """What load_rgb returned before this change: big JPEGs decoded with Pillow's draft."""
    from finetune_gui.core.data.images import _to_rgb

    image = Image.open(io.BytesIO(path.read_bytes()))
    if image.format == "JPEG":
        image.draft("RGB", (size, size))
    rgb = _to_rgb(image)
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(rgb, dtype=np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-class", type=int, default=80)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=6, help="for each of the two phases")
    parser.add_argument("--unfreeze-blocks", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/finetune-gui-web-agreement"))
    args = parser.parse_args()

    from finetune_gui.core.data.images import load_rgb
    from finetune_gui.core.export.browser_check import Browser
    from finetune_gui.core.export.job import export_model
    from finetune_gui.core.run.folder import RunFolder
    from finetune_gui.core.settings import TrainingSettings
    from finetune_gui.core.training.job import TrainingJob

    args.work.mkdir(parents=True, exist_ok=True)
    data = make_real_folder(args.work / f"real-{time.time_ns()}", args.per_class, args.seed)
    weights = make_weights(args.work, args.size)
    settings = TrainingSettings(
        backbone="mobilenetv2", weights=str(weights), image_size=args.size,
        epochs_head=args.epochs, epochs_finetune=args.epochs, unfreeze_blocks=args.unfreeze_blocks,
        batch_size=32, augment="light", patience=0, seed=args.seed, val_fraction=0.25, test_fraction=0.25,
    )  # fmt: skip
    run_dir = args.work / f"run-{time.time_ns()}"
    result = TrainingJob(data, settings, run_dir).run()
    started = time.perf_counter()
    exported = export_model(run_dir, "web", args.work / f"web-{time.time_ns()}")
    export_seconds = time.perf_counter() - started

    run = RunFolder.open(run_dir)
    split = json.loads((run_dir / "split.json").read_text())
    paths = [Path(split["root"]) / item[0] for part in ("test", "val") for item in split[part]]
    model = run.load_model()
    app = np.asarray(model(np.stack([load_rgb(p, args.size) for p in paths]).astype("float32")))
    old = np.asarray(
        model(np.stack([drafted_pixels(p, args.size) for p in paths]).astype("float32"))
    )
    with Browser(exported.model_path) as browser:
        browser.wait_ready()
        page = browser.classify_files(paths, run.classes)
        pixel_diff = {".jpg": 0, ".png": 0}
        for path in paths:
            text = base64.b64encode(path.read_bytes()).decode()
            shown = np.asarray(browser.evaluate(
                f"(async () => window.finetuneGui.pixels(new Blob([Uint8Array.from(atob("
                f"'{text}'), c => c.charCodeAt(0))])))()"
            ), dtype=int).reshape(args.size, args.size, 3)
            diff = int(np.abs(shown - load_rgb(path, args.size).astype(int)).max())
            pixel_diff[path.suffix] = max(pixel_diff[path.suffix], diff)
    same = page.argmax(1) == app.argmax(1)
    jpeg = np.array([p.suffix == ".jpg" for p in paths])
    drafted = np.array([
        p.suffix == ".jpg" and min(Image.open(p).size) >= 2 * args.size for p in paths
    ])
    print(json.dumps({
        "held_out": len(paths),
        "jpeg": int(jpeg.sum()),
        "jpeg_big_enough_to_draft": int(drafted.sum()),
        "png_with_alpha": sum(Image.open(p).mode in ("RGBA", "LA", "P") for p in paths),
        "sizes": sorted({min(Image.open(p).size) for p in paths})[::8],
        "test_accuracy": round(result.report.accuracy, 4),
        "mean_top_probability": round(float(app.max(1).mean()), 4),
        "export_check": exported.verification.to_dict().get("agreement"),
        "export_seconds": round(export_seconds, 1),
        "max_pixel_diff_page_vs_app": pixel_diff,
        "page_vs_app_top1": f"{int(same.sum())}/{len(paths)}",
        "page_vs_app_max_prob_diff": float(np.abs(page - app).max()),
        "old_drafted_app_vs_page_top1": f"{int((old.argmax(1) == page.argmax(1)).sum())}/{len(paths)}",
        "old_drafted_max_prob_diff": float(np.abs(old - page).max()),
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
