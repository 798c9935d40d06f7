"""Whether the web export can be checked here: Chromium and the pinned runtime."""

from __future__ import annotations

from finetune_gui.core.errors import ExportError
from finetune_gui.core.export import web
from finetune_gui.core.export.browser_check import find_chromium


def missing_web_tools() -> str | None:
    """Why the web export cannot be checked on this machine, or None when it can."""
    if find_chromium() is None:
        return "no Chromium found (apt-get install chromium, or set FINETUNE_GUI_CHROMIUM)"
    try:
        web.require_runtime()
    except ExportError as exc:
        return str(exc)
    return None
