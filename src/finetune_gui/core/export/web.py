"""The web export: one HTML file that classifies pictures and the webcam, offline, by double-click.

The page carries everything inside it: the model as ONNX, the ONNX Runtime Web engine (its
JavaScript and WebAssembly, from npm at a pinned version, see web/package.json), the code that
prepares pixels exactly as the app does (resources/web/pixels.js) and the page itself. Each part
is gzipped and base64-encoded; the browser unpacks them with DecompressionStream. ONNX Runtime Web
was chosen over TensorFlow.js by measurement: it runs the ONNX file the app already makes and
matched Keras to 5e-6 in headless Chromium, where the TF.js converter pins TensorFlow 2.19.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import re
import sys
from pathlib import Path

from finetune_gui.core.errors import ExportError
from finetune_gui.core.run.record import RunFacts
from finetune_gui.resources import resource_path

RUNTIME_PACKAGE = "onnxruntime-web"
# The wasm-only build with its loader bundled in: nothing is fetched at run time, which a page
# opened from disk (file://) could not do.
RUNTIME_SCRIPT = "ort.wasm.bundle.min.mjs"
RUNTIME_WASM = "ort-wasm-simd-threaded.wasm"
PAGE_PARTS = ("page.html", "pixels.js", "app.js")
_PLACEHOLDER = re.compile(r"\{\{(TITLE|CONFIG|MODEL|WASM|RUNTIME|PIXELS|APP)\}\}")
_MODEL_ELEMENT = re.compile(r'<script type="application/octet-stream" id="ftg-model">([^<]*)</script>')


def web_folder() -> Path:
    """The checkout's `web/` folder, where `npm ci` installs the runtime, or the frozen app's."""
    bundle = getattr(sys, "_MEIPASS", None)  # `make app` copies the runtime's files there
    if bundle:
        return Path(bundle) / "web"
    return Path(__file__).resolve().parents[4] / "web"


def runtime_dir() -> Path:
    """Where the runtime's files are: $FINETUNE_GUI_WEB_RUNTIME, or web/node_modules."""
    override = os.environ.get("FINETUNE_GUI_WEB_RUNTIME")
    if override:
        return Path(override)
    return web_folder() / "node_modules" / RUNTIME_PACKAGE / "dist"


def missing_runtime_files(folder: Path | None = None) -> list[str]:
    """The runtime's files the page needs that are not in `folder` (default: runtime_dir())."""
    folder = runtime_dir() if folder is None else folder
    return [name for name in (RUNTIME_SCRIPT, RUNTIME_WASM) if not (folder / name).is_file()]


def install_hint() -> str:
    """How to install the pinned runtime, in words (`make web-runtime` runs npm ci)."""
    return (
        f"Install it with: make web-runtime in {web_folder().parent} (it needs npm), or "
        f"npm ci --prefix {web_folder()}."
    )


def require_runtime() -> Path:
    """The runtime folder, or an error that says how to install it."""
    folder = runtime_dir()
    missing = missing_runtime_files(folder)
    if missing:
        raise ExportError(
            f"The web format needs the ONNX Runtime Web files ({', '.join(missing)}), which are "
            f"not installed in {folder}. {install_hint()} npm fetches the pinned version and "
            f"checks its hash. Or point FINETUNE_GUI_WEB_RUNTIME at an onnxruntime-web dist "
            f"folder."
        )
    return folder


def model_inside(page: str) -> bytes:
    """The ONNX model a page written by `web_page` carries (to check it without a browser)."""
    match = _MODEL_ELEMENT.search(page)
    if match is None:
        raise ExportError("The web page holds no model; it was not written by this app.")
    return gzip.decompress(base64.b64decode(match.group(1)))


def runtime_facts(folder: Path) -> dict:
    """Name, version and sha256 of the runtime files that go into the page."""
    package = folder.parent / "package.json"
    version = None
    if package.is_file():
        version = json.loads(package.read_text(encoding="utf-8")).get("version")
    return {
        "package": RUNTIME_PACKAGE,
        "version": version,
        "files": {
            name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
            for name in (RUNTIME_SCRIPT, RUNTIME_WASM)
        },
    }


def unsure_rule(facts: RunFacts) -> dict | None:
    """The run's "not sure" rule when the page can apply it (a floor on the top probability)."""
    rule = facts.unsure_rule
    if isinstance(rule, dict) and isinstance(rule.get("min_confidence"), int | float):
        return {"min_confidence": float(rule["min_confidence"])}
    return None


def page_config(
    name: str, classes: list[str], image_size: int, report, facts: RunFacts,
    input_name: str, output_name: str,
) -> dict:
    """What the page shows and needs besides the model: run name, classes, accuracy, rule."""
    return {
        "name": name,
        "classes": list(classes),
        "image_size": int(image_size),
        "input_name": input_name,
        "output_name": output_name,
        "test_accuracy": None if report is None else float(report.accuracy),
        "test_images": None if report is None else int(report.count),
        "unsure": unsure_rule(facts),
    }


def _packed(data: bytes) -> str:
    # mtime=0: the same model gives the same page, byte for byte.
    return base64.b64encode(gzip.compress(data, compresslevel=9, mtime=0)).decode("ascii")


def web_page(onnx_model: bytes, config: dict, runtime: Path) -> str:
    """The self-contained HTML page for `onnx_model`, described by `config` (see page_config)."""
    template, pixels, app = (
        resource_path("web", part).read_text(encoding="utf-8") for part in PAGE_PARTS
    )
    # "</" would end the <script> element early; JSON allows "<\/" for "</".
    config_json = json.dumps(config, ensure_ascii=False).replace("</", "<\\/")
    values = {
        "TITLE": _html_text(f"{config['name']}: try the model"),
        "CONFIG": config_json,
        "MODEL": _packed(onnx_model),
        "WASM": _packed((runtime / RUNTIME_WASM).read_bytes()),
        "RUNTIME": _packed((runtime / RUNTIME_SCRIPT).read_bytes()),
        "PIXELS": pixels,
        "APP": app,
    }
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def _html_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


API_DOC = """\
Open `{file}` by double-click: it works offline, from the disk, in Chrome, Edge, Firefox or
Safari. Drop pictures on it or choose them, or use the Camera tab.

To use the model from your own page, copy the page's `<script>` elements (or load the page in an
`<iframe>`) and call:

```js
const result = await window.finetuneGui.classify(imageOrUrl);
// imageOrUrl: an <img>, a Blob or File, a <canvas>, a <video>, or a picture's address
// result: {{label: "cat", probabilities: {{"cat": 0.91, "dog": 0.09}}, unsure: false}}
```

`probabilities` has one entry per class (they sum to 1). `unsure` is true when the run's
"not sure" rule applies{rule}. `await window.finetuneGui.ready` waits until the model is loaded;
`window.finetuneGui.classes` lists the classes in output order. Pictures are prepared exactly as
the app prepares them: EXIF orientation, transparency on white, Pillow's bilinear resize to
{size} x {size} pixels.
"""


def api_doc(file_name: str, config: dict) -> str:
    """The model card's section on the page and its JavaScript API."""
    rule = config.get("unsure")
    text = (
        f" (top probability under {rule['min_confidence']:g})"
        if rule
        else "; this run has no such rule, so it is always false"
    )
    return API_DOC.format(file=file_name, rule=text, size=config["image_size"])
