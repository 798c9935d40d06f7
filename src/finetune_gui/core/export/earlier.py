"""An earlier export in the folder an export is about to write into, found before any work.

An export writes its model file and the files that travel with it (labels, metrics, the model
card, the loader, the "not sure" rule) under fixed names, so a second export into the same
folder put its files in place of the first one's: exporting run B where run A's model was lost
A's model without a word. Now the window asks first, and the terminal and the Python API
refuse unless told to replace (`--replace`, `replace=True`). When an earlier export is replaced,
its companions that the new export does not write (a metrics file, a "not sure" rule) go too:
left behind, they would describe another model.

Another format of the same run is not an earlier export to replace: its companions (labels,
metrics, the "not sure" rule, the loader) are that run's and the same for every format, and
the new model card describes both model files (`other_formats`). The Export page's own table
of formats invites saving several into one folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from finetune_gui.core.export.card import CARD_JSON, CARD_MARKDOWN
from finetune_gui.core.export.templates import LOADER_FILE
from finetune_gui.core.run.folder import LABELS_FILE, METRICS_FILE
from finetune_gui.core.run.unsure import UNSURE_FILE

# Every name an export may write beside its model file (core/export/job.py).
COMPANIONS = (LABELS_FILE, METRICS_FILE, CARD_MARKDOWN, CARD_JSON, LOADER_FILE, UNSURE_FILE)
# The model card's fields about its one model file; the rest (classes, data, training) is the
# run's, the same for every format of it.
FORMAT_FIELDS = ("format", "format_title", "purpose", "file", "file_sha256", "exported", "input",
                 "verification", "usage_python", "size_and_speed", "not_sure", "usage_web",
                 "web_runtime", "checked_in_browser")


@dataclass(frozen=True)
class EarlierExport:
    """The files in `folder` that an export would replace or leave describing another model."""

    folder: Path
    files: tuple[Path, ...]
    run_name: str | None = None  # the run the earlier model came from (its model card)
    exported: str | None = None  # when, as its model card says (2026-12-07T09:20:00)
    model_replaced: bool = True  # False: only the companions (another format's model stays)

    def description(self) -> str:
        """'model.keras, labels.txt and 4 more files (from run-3, exported 2026-12-07 09:20)'."""
        names = [path.name for path in self.files]
        shown = names[:2]
        more = len(names) - len(shown)
        listed = (" and ".join(shown) if not more
                  else f"{', '.join(shown)} and {more} more file{'s' if more > 1 else ''}")
        origin = []
        if self.run_name:
            origin.append(f"from {self.run_name}")
        if self.exported:
            origin.append(f"exported {self.exported.replace('T', ' ')[:16]}")
        return listed + (f" ({', '.join(origin)})" if origin else "")

    def consequence(self) -> str:
        """What replacing them costs, in words."""
        if self.model_replaced:
            return "the earlier model is then gone"
        return "the model file already there stays, but the model card then describes the new one"

    def question(self) -> str:
        """What the window asks before replacing them."""
        return (f"{self.folder} already holds {self.description()} from an earlier export. "
                f"Saving here replaces them, and {self.consequence()}.")

    def refusal(self) -> str:
        """What the terminal and the API say when not told to replace them."""
        return (f"{self.folder} already holds {self.description()} from an earlier export; "
                f"nothing was written. Choose another folder, or add --replace (replace=True "
                f"from Python) to replace them ({self.consequence()}).")


def earlier_export(folder: Path, model_target: Path, run=None) -> EarlierExport | None:
    """The earlier export that writing `run`'s model (a RunFolder; None: any run) to
    `model_target` in `folder` would replace: the model file and every companion name already
    there; None when there is none, or when the folder holds only another format of the same
    run (`other_formats`), which the new export adds to."""
    names = [model_target.name, *(name for name in COMPANIONS if name != model_target.name)]
    found = tuple(folder / name for name in names if (folder / name).exists())
    if not found:
        return None
    model_replaced = found[0] == folder / model_target.name
    if not model_replaced and run is not None and other_formats(folder, model_target, run):
        return None
    card = _card(folder / CARD_JSON)
    return EarlierExport(folder, found, card.get("name"), card.get("exported"),
                         model_replaced=model_replaced)


def earlier_export_at(fmt: str, to: Path | str, run=None) -> EarlierExport | None:
    """`earlier_export` at the destination `to` (a folder, or a model file path) for `fmt`:
    what the window asks about before it starts the export job."""
    from finetune_gui.core.export.destination import resolve_destination
    from finetune_gui.core.export.formats import export_format

    return earlier_export(*resolve_destination(export_format(fmt), Path(to).expanduser()), run)


def other_formats(folder: Path, model_target: Path, run) -> list[dict]:
    """The model files of `run` (a RunFolder) in other formats already in `folder`, as the
    model card there describes each (`FORMAT_FIELDS`), those still present only; [] when the
    card there is another run's (by name and classes) or there is none."""
    card = _card(folder / CARD_JSON)
    if card.get("name") != run.path.name or card.get("classes") != list(run.classes):
        return []
    described = [{key: card[key] for key in FORMAT_FIELDS if key in card},
                 *(entry for entry in card.get("other_formats", []) if isinstance(entry, dict))]
    return [entry for entry in described
            if isinstance(entry.get("file"), str) and entry["file"] != model_target.name
            and (folder / entry["file"]).is_file()]


def stale_companions(earlier: EarlierExport | None, written: list[Path]) -> list[Path]:
    """The earlier export's companions that the new export did not write in their place."""
    if earlier is None:
        return []
    kept = {path.name for path in written}
    return [path for path in earlier.files if path.name in COMPANIONS and path.name not in kept]


def _card(path: Path) -> dict:
    """The earlier model card's facts, or {} when it is missing or unreadable."""
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return card if isinstance(card, dict) else {}
