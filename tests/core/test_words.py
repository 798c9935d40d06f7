"""Counts in words."""

from finetune_gui.core.words import counted


def test_one_is_singular_and_every_other_count_plural():
    assert counted(1, "suspect label") == "1 suspect label"
    assert counted(0, "suspect label") == "0 suspect labels"
    assert counted(2_500, "picture") == "2,500 pictures"
    assert counted(3, "copy", "copies") == "3 copies" and counted(1, "copy", "copies") == "1 copy"
