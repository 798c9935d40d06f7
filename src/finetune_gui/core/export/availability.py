"""Which export formats this computer can make, and for one it cannot, why and what to do.

Asked by the window before it offers a format (so it costs file lookups, never an import of
TensorFlow or the converters) and by nothing slower: the export job itself still checks what
it needs and says so in the same words.
"""

from __future__ import annotations

from dataclasses import dataclass

from finetune_gui.core.export import web
from finetune_gui.core.export.browser_check import find_chromium
from finetune_gui.core.export.formats import FORMATS, export_format
from finetune_gui.core.export.verify import NOT_CHECKED_IN_BROWSER
from finetune_gui.core.model.onnx_pass import missing_onnx_packages

NO_CHROMIUM = (
    "no Chromium was found on this computer; install it (Debian/Ubuntu: sudo apt-get install "
    "chromium, or set FINETUNE_GUI_CHROMIUM) and save again to have the page checked"
)


@dataclass(frozen=True)
class Availability:
    """Whether a format can be exported here; `reason` says why not and what to do."""

    format: str
    available: bool
    reason: str = ""  # one plain sentence (and the way out) when not available
    note: str = ""  # a limit of an available format, said before the export starts
    in_browser: bool = False  # a web page will be checked in Chromium before it is saved


def format_availability(fmt: str) -> Availability:
    """Whether `fmt` can be exported on this computer, and if not, why, in words."""
    spec = export_format(fmt)
    if fmt in ("onnx", "web"):
        missing = missing_onnx_packages()
        if missing:
            return Availability(
                fmt, False,
                f"Not available here: {spec.title} needs the optional package(s) "
                f"{' and '.join(missing)}. Install them with: pip install 'finetune-gui[onnx]'.",
            )
    if fmt == "web":
        if web.missing_runtime_files():
            return Availability(
                fmt, False,
                "Not available here: the web page needs ONNX Runtime Web, which is not "
                "installed. " + web.install_hint(),
            )
        if find_chromium() is None:
            return Availability(
                fmt, True,
                note=f"The page will be written but {NOT_CHECKED_IN_BROWSER}: {NO_CHROMIUM}.",
            )
        return Availability(fmt, True, in_browser=True)
    return Availability(fmt, True)


def all_formats_availability() -> dict[str, Availability]:
    """`format_availability` for every format of the registry, in its order."""
    return {name: format_availability(name) for name in FORMATS}
