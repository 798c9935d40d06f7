"""Which class names the labelling accepts: each becomes a folder name in the output and a line
of labels.txt when the output is trained on, so it must be both."""

from __future__ import annotations

from finetune_gui.core.data.class_names import name_problem, shown
from finetune_gui.core.errors import UserError

# Bytes a folder name may take on the usual file systems (ext4, NTFS, APFS).
MAX_NAME_BYTES = 255


def label_problem(name: str) -> str | None:
    """What keeps `name` from being a class folder, in words, or None when nothing does."""
    if not name:
        return "is empty"
    if "/" in name or "\\" in name:
        return "has a slash in it, which a folder name cannot have"
    if name in (".", ".."):
        return "is a dot name, which a folder name cannot be"
    if "\x00" in name:
        return "has a null character in it"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"is longer than a folder name may be ({MAX_NAME_BYTES} bytes)"
    return name_problem(name)


def check_label(name: str, where: str = "") -> str:
    """`name` when it can be a class folder, else `UserError` in one sentence (`where`: e.g.
    "on line 4 of labels.csv", said after the name)."""
    problem = label_problem(name)
    if problem is not None:
        place = f" {where}" if where else ""
        raise UserError(f"The class name {shown(name)}{place} {problem}; choose another name.")
    return name
