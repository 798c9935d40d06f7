"""Names for new run folders: sortable by time, never an existing folder."""

from __future__ import annotations

import time
from pathlib import Path


def new_run_dir(root: Path | str, backbone: str) -> Path:
    """A fresh folder name under `root`, e.g. `20260114-093000-mobilenetv2` (not created here)."""
    root = Path(root)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = root / f"{stamp}-{backbone}"
    number = 2
    while candidate.exists():
        candidate = root / f"{stamp}-{backbone}-{number}"
        number += 1
    return candidate
