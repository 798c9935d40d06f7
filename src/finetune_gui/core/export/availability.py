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
from finetune_gui.core.model.backbones import BACKBONES
from finetune_gui.core.model.onnx_pass import missing_onnx_packages

# Families tf2onnx (1.17) has no ONNX form for: ConvNeXt's exact GELU (Erfc) and its depthwise
# convolution stay TensorFlow operations (measured on every backbone of the registry,
# docs/exports.md). convert.refuse_unconverted says the same should one get that far.
NO_ONNX_FORM = ("ConvNeXt",)

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


def format_availability(fmt: str, backbone: str | None = None) -> Availability:
    """Whether `fmt` can be exported on this computer (for a run of `backbone`, when given),
    and if not, why, in words."""
    spec = export_format(fmt)
    if fmt in ("onnx", "web"):
        missing = missing_onnx_packages()
        if missing:
            return Availability(
                fmt, False,
                f"Not available here: {spec.title} needs the optional "
                f"{'package' if len(missing) == 1 else 'packages'} {' and '.join(missing)}. "
                f"Install them with: pip install 'finetune-gui[onnx]'.",
            )
        family = BACKBONES[backbone].family if backbone in BACKBONES else None
        if family in NO_ONNX_FORM:
            return Availability(
                fmt, False,
                f"Not available for this run: {spec.title} needs the network in ONNX form, "
                f"and the converter (tf2onnx) has none for some of {family}'s operations. The "
                f"Keras, SavedModel and TFLite formats work for it.",
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


def all_formats_availability(backbone: str | None = None) -> dict[str, Availability]:
    """`format_availability` for every format of the registry, in its order."""
    return {name: format_availability(name, backbone) for name in FORMATS}
