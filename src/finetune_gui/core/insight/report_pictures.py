"""The report's pictures: each image beside its Grad-CAM heatmap, embedded as base64 PNG."""

from __future__ import annotations

import base64
import io
from html import escape
from pathlib import Path

import numpy as np
from PIL import Image

from finetune_gui.core.events import (
    CancelToken,
    ProgressCallback,
    StageProgress,
    StageStarted,
    check_cancel,
    ignore_progress,
)

PICTURE_SIDE = 144


def png_data_uri(pixels: np.ndarray) -> str:
    """uint8 pixels as a `data:` URI holding a PNG."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(buffer, "PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def display_size(pixels: np.ndarray) -> np.ndarray:
    """Fit within PICTURE_SIDE, enlarging small images so their heatmap can be seen."""
    height, width = pixels.shape[:2]
    scale = PICTURE_SIDE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resample = Image.Resampling.BICUBIC if scale > 1 else Image.Resampling.LANCZOS
    return np.asarray(Image.fromarray(pixels).resize(size, resample), dtype=np.uint8)


def picture_cards(
    model,
    run,
    entries: list[tuple[Path, int, str]],
    *,
    what: str = "images",
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> str:
    """Cards of (image, its Grad-CAM for the given class, caption HTML); unreadable ones noted.

    One heatmap at a time, each a progress step ("Computing heat maps of the `what`", 3 of 12).
    """
    from finetune_gui.core.data.images import ImageReadError, at_size, load_rgb
    from finetune_gui.core.insight.gradcam import gradcam_batch, overlay

    progress(StageStarted("heatmaps", len(entries), f"Computing heat maps of the {what}"))
    cards, missing = [], []
    size = run.image_size
    for done, (path, class_index, caption) in enumerate(entries, start=1):
        check_cancel(cancel)
        try:
            pixels = load_rgb(Path(path))
        except ImageReadError as exc:
            missing.append(f"{escape(str(path))} ({escape(exc.reason)})")
        else:
            shown = display_size(pixels)
            model_input = at_size(Image.fromarray(pixels), size)  # as the model saw it
            heatmaps, _ = gradcam_batch(model, model_input[None], [class_index])
            cards.append(
                '<div class="card">'
                f'<img src="{png_data_uri(shown)}" alt="image">'
                f'<img src="{png_data_uri(overlay(shown, heatmaps[0]))}" alt="heatmap">'
                f'<div>{caption}</div><div class="path">{escape(str(path))}</div></div>'
            )
        progress(StageProgress("heatmaps", done, len(entries)))
    text = f'<div class="cards">{"".join(cards)}</div>'
    if missing:
        text += f'<p class="warn">Could not be read any more: {"; ".join(missing)}.</p>'
    return text
