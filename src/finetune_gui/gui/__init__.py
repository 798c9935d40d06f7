"""The desktop window: pages over a shared project state; long work runs on a worker QThread."""
