"""Counts in words, as a person writes them: "1 suspect label", "3 suspect labels"."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`count` and `noun`, the noun plural unless the count is one (`plural`: an irregular
    plural; else an "s" is added)."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def counted_are(count: int, noun: str, plural: str | None = None) -> str:
    """`counted` followed by the verb that agrees with it: "1 image is", "3 images are"."""
    return f"{counted(count, noun, plural)} {'is' if count == 1 else 'are'}"
