"""Every switch-off of `tests/mutation_check.py` still applies to the source as it is, and the
tests it names still exist: a refactor that moves a guarded line (as `has_epochs` and the
duplicate check's arrays did, unnoticed until the check was run) fails here, in seconds, instead
of making the mutation check stop with an error weeks later."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from tests.mutation_check import MUTATIONS, ROOT, apply


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("mutations") / "src"
    shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__"))
    return src


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_the_switch_off_applies_and_changes_the_source(mutation, pristine, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(pristine, src)
    changed = apply(mutation, src)  # PatchError when its line or function is gone
    relative = changed.relative_to(src)
    assert changed.read_text(encoding="utf-8") != (ROOT / "src" / relative).read_text(
        encoding="utf-8")


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_the_tests_that_guard_it_exist(mutation):
    assert mutation.tests
    for node in mutation.tests:
        path, _, name = node.partition("::")
        assert (ROOT / path).is_file(), node
        if name:
            function = re.sub(r"\[.*\]$", "", name)
            text = (ROOT / path).read_text(encoding="utf-8")
            assert re.search(rf"^def {re.escape(function)}\(", text, re.MULTILINE), node
