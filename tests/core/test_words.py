"""Counts in words."""

import ast
import re
from pathlib import Path

from finetune_gui.core.words import counted, counted_are


def test_one_is_singular_and_every_other_count_plural():
    assert counted(1, "suspect label") == "1 suspect label"
    assert counted(0, "suspect label") == "0 suspect labels"
    assert counted(2_500, "picture") == "2,500 pictures"
    assert counted(3, "copy", "copies") == "3 copies" and counted(1, "copy", "copies") == "1 copy"


def test_the_verb_agrees_with_the_count():
    assert counted_are(1, "image") == "1 image is"
    assert counted_are(3, "test image") == "3 test images are"


def test_no_message_for_the_user_writes_a_plural_in_brackets():
    """'1 image(s)' reads as a program talking; every count says its noun as a person would."""
    source = Path(__file__).parents[2] / "src" / "finetune_gui"
    bracketed = re.compile(r"[a-z]\((s|es|ies)\)")
    found = [f"{path.name}:{node.lineno}" for path in sorted(source.rglob("*.py"))
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Constant) and isinstance(node.value, str)
             and bracketed.search(node.value)]
    assert found == []
