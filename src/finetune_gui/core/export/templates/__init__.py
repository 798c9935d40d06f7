"""Files copied as they are into every export folder (plain Python a user runs)."""

from pathlib import Path

LOADER_FILE = "load_image.py"
LOADER_TEMPLATE = Path(__file__).parent / LOADER_FILE
