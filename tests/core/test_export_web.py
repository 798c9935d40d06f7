"""The web export: one HTML page that classifies pictures offline, checked in real Chromium.

A tiny run (32 px) is trained on pictures of many sizes, some with transparency and some JPEGs
with an EXIF rotation, most JPEGs big enough that Pillow's reduced-scale draft would apply; the page is exported once and opened in headless Chromium through the
DevTools protocol. Without Chromium or the npm runtime the tests are skipped with the reason.
"""

from __future__ import annotations

import base64
import json
import random
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.web_tools import missing_web_tools

from finetune_gui.core.data.images import load_rgb
from finetune_gui.core.errors import ExportError
from finetune_gui.core.export import web
from finetune_gui.core.export.browser_check import Browser
from finetune_gui.core.export.card import CARD_JSON, CARD_MARKDOWN
from finetune_gui.core.export.formats import FORMATS
from finetune_gui.core.export.job import export_model
from finetune_gui.core.run.folder import RunFolder
from finetune_gui.demo import SHAPE_CLASSES, draw_shape

pytestmark = pytest.mark.slow

SIZE = 32




needs_browser = pytest.mark.skipif(
    missing_web_tools() is not None, reason=f"web export cannot be checked: {missing_web_tools()}"
)


def _picture(shape: str, colour, rng: random.Random, index: int, folder: Path) -> None:
    """One picture in one of four forms: sizes from 20 to 260 px, RGBA, EXIF-rotated JPEG."""
    width, height = rng.choice(
        [(32, 32), (200, 150), (37, 53), (260, 90), (20, 24), (96, 128), (700, 520)]
    )
    image = draw_shape(shape, colour, max(width, height), rng).resize((width, height))
    kind = index % 4
    if kind == 0:
        image.save(folder / f"{index:03d}.png")
    elif kind == 1:
        # A soft alpha ramp: transparent and half-transparent pixels must go on white.
        alpha = np.tile(np.linspace(0, 255, width, dtype=np.uint8), (height, 1))
        rgba = image.convert("RGBA")
        rgba.putalpha(Image.fromarray(alpha))
        rgba.save(folder / f"{index:03d}.png")
    elif kind == 2:
        image.save(folder / f"{index:03d}.jpg", quality=92)
    else:
        exif = Image.Exif()
        exif[0x0112] = 6  # stored sideways, shown turned 90 degrees clockwise
        image.transpose(Image.Transpose.ROTATE_90).save(
            folder / f"{index:03d}.jpg", quality=92, exif=exif
        )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("web-data") / "data"
    rng = random.Random(3)
    for name, (shape, colour) in SHAPE_CLASSES.items():
        (root / name).mkdir(parents=True)
        for i in range(16):
            _picture(shape, colour, rng, i, root / name)
    return root


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, data_dir) -> Path:
    from finetune_gui.core.settings import TrainingSettings
    from finetune_gui.core.training.job import TrainingJob

    settings = TrainingSettings(
        backbone="mobilenetv3small", weights="none", image_size=SIZE, epochs_head=2,
        epochs_finetune=0, batch_size=16, val_fraction=0.25, test_fraction=0.25,
    )
    out = tmp_path_factory.mktemp("web-run") / "run"
    assert TrainingJob(data_dir, settings, out).run().status == "completed"
    return out


@pytest.fixture(scope="module")
def exported(run_dir, tmp_path_factory):
    if missing_web_tools():
        pytest.skip(missing_web_tools())
    return export_model(run_dir, "web", tmp_path_factory.mktemp("web-export") / "shipped")


def _held_out(run_dir: Path) -> list[Path]:
    split = json.loads((run_dir / "split.json").read_text())
    root = Path(split["root"])
    return [root / item[0] for part in ("test", "val") for item in split[part]]


@needs_browser
def test_page_agrees_with_the_app_on_held_out_pictures(run_dir, exported):
    folder = exported.model_path.parent
    assert exported.model_path.name == "model.html"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["model.html", "labels.txt", "metrics.json", CARD_MARKDOWN, CARD_JSON, "load_image.py",
         "unsure.json"]
    )
    # The export's own check ran in the browser, on every held-out picture, and passed.
    verification = exported.verification
    assert verification.passed and verification.min_agreement == 0.99
    assert verification.n_images == len(_held_out(run_dir)) and exported.agreement >= 0.99

    # An independent check: the app's pixels and Keras model against the page's classify().
    run = RunFolder.open(run_dir)
    paths = _held_out(run_dir)
    sizes = {Image.open(p).size for p in paths}
    modes = {Image.open(p).mode for p in paths}
    assert len(sizes) >= 4 and "RGBA" in modes  # different sizes, with transparency
    assert sum(p.suffix == ".jpg" and min(Image.open(p).size) >= 2 * SIZE for p in paths) >= 4
    app = np.asarray(run.load_model()(np.stack([load_rgb(p, SIZE) for p in paths]).astype("float32")))
    with Browser(exported.model_path) as browser:
        browser.wait_ready()
        page = browser.classify_files(paths, run.classes)
    agreement = float(np.mean(page.argmax(1) == app.argmax(1)))
    assert agreement >= 0.99, f"page and app agree on {agreement:.1%} of {len(paths)} pictures"
    assert np.allclose(page.sum(1), 1.0, atol=1e-4)


@needs_browser
def test_page_prepares_pixels_as_the_app_does(run_dir, exported):
    """Every picture, big JPEGs included, within 1 of 255 of the app's pixels.

    The browser decodes a JPEG at full size byte for byte as Pillow does; the 1 is the order of
    Pillow's two resize passes (see pixels.js). Were the app to decode big JPEGs at reduced
    scale (Pillow's draft), they would differ by more.
    """
    paths = _held_out(run_dir)
    with Browser(exported.model_path) as browser:
        browser.wait_ready()
        for path in paths:
            text = base64.b64encode(path.read_bytes()).decode()
            page = np.asarray(browser.evaluate(
                f"(async () => window.finetuneGui.pixels(new Blob([Uint8Array.from(atob("
                f"'{text}'), c => c.charCodeAt(0))])))()"
            ), dtype=int).reshape(SIZE, SIZE, 3)
            app = load_rgb(path, SIZE).astype(int)
            diff = np.abs(page - app)
            assert diff.max() <= 1, f"{path.name}: differs by up to {diff.max()}"
            assert diff.mean() < 0.05, f"{path.name}: mean difference {diff.mean():.3f}"


@needs_browser
def test_the_model_card_documents_the_javascript_api(exported):
    card = json.loads((exported.model_path.parent / CARD_JSON).read_text())
    markdown = (exported.model_path.parent / CARD_MARKDOWN).read_text()
    assert card["format"] == "web"
    assert "window.finetuneGui.classify" in markdown and "unsure" in markdown
    assert card["web_runtime"]["package"] == "onnxruntime-web"
    assert card["web_runtime"]["version"] == json.loads(
        (web.web_folder() / "package.json").read_text()
    )["dependencies"]["onnxruntime-web"]


@needs_browser
def test_choosing_pictures_shows_their_classes(run_dir, exported, tmp_path):
    paths = _held_out(run_dir)[:3]
    with Browser(exported.model_path) as browser:
        browser.wait_ready()
        expected = browser.classify_files(paths, RunFolder.open(run_dir).classes)
        document = browser.command("DOM.getDocument")["root"]["nodeId"]
        chooser = browser.command("DOM.querySelector", nodeId=document, selector="#chooser")
        browser.command(
            "DOM.setFileInputFiles", nodeId=chooser["nodeId"], files=[str(p) for p in paths]
        )
        answers = _wait_for(browser, "Array.from(document.querySelectorAll('.card .answer'))"
                            ".map(a => a.textContent)", len(paths))
    classes = RunFolder.open(run_dir).classes
    shown = sorted(a.removeprefix("Not sure (maybe ").removesuffix(")") for a in answers)
    assert shown == sorted(classes[i] for i in expected.argmax(1))


@needs_browser
def test_camera_mode_classifies_live_frames(exported):
    with Browser(exported.model_path) as browser:
        browser.wait_ready()
        browser.evaluate("document.getElementById('tab-camera').click()")
        rows = _wait_for(browser, "Array.from(document.querySelectorAll('#live .row'))"
                         ".map(r => r.textContent)", 3)
        status = browser.evaluate("document.getElementById('status').textContent")
    assert len(rows) == 3 and all("%" in row for row in rows)
    assert status == "Camera: classifying live."


def _wait_for(browser: Browser, expression: str, count: int, timeout: float = 30.0) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        values = browser.evaluate(expression)
        if len(values) >= count:
            return values
        time.sleep(0.1)
    raise AssertionError(f"the page showed {browser.evaluate(expression)} after {timeout:.0f} s")


@needs_browser
def test_a_page_that_disagrees_with_the_model_is_not_saved(run_dir, tmp_path, monkeypatch):
    real = web.page_config

    def swapped(*args, **kwargs):  # the page names the classes in the wrong order
        config = real(*args, **kwargs)
        config["classes"] = config["classes"][1:] + config["classes"][:1]
        return config

    monkeypatch.setattr(web, "page_config", swapped)
    target = tmp_path / "out"
    with pytest.raises(ExportError, match="does not behave like the trained model"):
        export_model(run_dir, "web", target)
    assert not target.exists()


def test_without_the_runtime_the_export_says_how_to_get_it(run_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("FINETUNE_GUI_WEB_RUNTIME", str(tmp_path / "nowhere"))
    target = tmp_path / "out"
    with pytest.raises(ExportError, match=r"npm ci --prefix .*web"):
        export_model(run_dir, "web", target)
    assert not target.exists()


def test_without_chromium_the_page_is_written_and_marked_not_checked(run_dir, tmp_path,
                                                                    monkeypatch):
    if web.missing_runtime_files():
        pytest.skip("the web runtime is not installed (make web-runtime)")
    monkeypatch.setenv("FINETUNE_GUI_CHROMIUM", str(tmp_path / "no-chromium"))
    target = tmp_path / "out"
    result = export_model(run_dir, "web", target)
    assert "window.finetuneGui" in (target / "model.html").read_text(encoding="utf-8")
    check = result.verification
    assert "no Chromium" in check.not_checked and check.passed and result.speed is None
    # The model inside the page was run (ONNX Runtime): it gives the Keras model's answers.
    assert check.agreement >= 0.99 and check.n_images > 0
    card = (target / CARD_MARKDOWN).read_text(encoding="utf-8")
    assert "This page was not checked in a browser" in card and "apt-get install chromium" in card
    assert "verif" not in card.lower()
    facts = json.loads((target / CARD_JSON).read_text(encoding="utf-8"))
    assert facts["checked_in_browser"] is False and facts["verification"]["not_checked"]


@needs_browser
def test_the_cards_python_example_opens_the_page(exported, monkeypatch):
    opened = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    card = json.loads((exported.model_path.parent / CARD_JSON).read_text())
    monkeypatch.chdir(exported.model_path.parent)
    exec(compile(card["usage_python"], "snippet", "exec"), {})
    assert opened == [exported.model_path.resolve().as_uri()]


def test_the_format_is_registered_with_its_file_name():
    spec = FORMATS["web"]
    assert (spec.file_name, spec.suffix, spec.min_agreement) == ("model.html", ".html", 0.99)


def test_a_frozen_app_finds_the_runtime_where_make_app_puts_it(monkeypatch, tmp_path):
    """packaging/finetune-gui.spec copies the runtime to web/node_modules/… inside the bundle."""
    monkeypatch.setattr("sys._MEIPASS", str(tmp_path), raising=False)
    monkeypatch.delenv("FINETUNE_GUI_WEB_RUNTIME", raising=False)
    assert web.runtime_dir() == tmp_path / "web" / "node_modules" / "onnxruntime-web" / "dist"
