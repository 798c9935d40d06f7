"""One page per step; each reads and writes the shared `ProjectState`, never another page."""
