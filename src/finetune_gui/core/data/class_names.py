"""Which class folder names the app's files can keep, and the one sentence refusing the others.

A class is named by its folder, and a folder may be named whatever the file system allows.
labels.txt keeps one class a line and is read back line by line without surrounding blanks, so
a name with a line break would become two classes and shift every label after it in every
export, and a name with a leading or trailing space would come back without it. Those names,
tabs and other control characters (invisible in every file and window), and bytes that are not
text are refused by the scan before training. Everything else (quotes, commas, semicolons,
accents, emoji outside the basic plane, joiners inside emoji) is kept exactly as it is.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

# What str.splitlines() breaks a line at: labels.txt is read with it.
LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def name_problem(name: str) -> str | None:
    """What in a class folder's name its files cannot keep, in words, or None when nothing."""
    if any(ch in LINE_BREAKS for ch in name):
        return "has a line break in its name"
    if "\t" in name:
        return "has a tab in its name"
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        return "has a control character in its name"
    if any(unicodedata.category(ch) == "Cs" for ch in name):
        return "has bytes in its name that are not text in the system's encoding"
    if name != name.lstrip():
        return "starts with a space"
    if name != name.rstrip():
        return "ends with a space"
    return None


def shown(name: str) -> str:
    """The name quoted, with what a terminal or a window would not show written as escapes."""
    visible = "".join(
        repr(ch)[1:-1] if ch in LINE_BREAKS or unicodedata.category(ch) in ("Cc", "Cs") else ch
        for ch in name
    )
    return f"'{visible}'"


def display_name(name: str) -> str:
    """The name as it is, or `shown` when it holds what a terminal line would not show."""
    return shown(name) if name_problem(name) else name


def names_refusal(folders: list[Path]) -> str | None:
    """One sentence naming the first class folder whose name cannot be kept and what to rename,
    or None when every name can be kept."""
    named = {folder.name: folder for folder in reversed(folders)}  # a class once, at its first folder
    bad = [(named[name], problem) for name in dict.fromkeys(f.name for f in folders)
           if (problem := name_problem(name))]
    if not bad:
        return None
    folder, problem = bad[0]
    why = ("which labels.txt (one class a line, read without spaces at either end) cannot keep; "
           "rename it without line breaks, tabs, other control characters or spaces at either end")
    others = [shown(other.name) for other, _ in bad[1:4]] + (["…"] if len(bad) > 4 else [])
    more = f" (rename {', '.join(others)} too)" if others else ""
    return f"The class folder {shown(folder.name)} in {folder.parent} {problem}, {why}{more}."
