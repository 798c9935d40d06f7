"""Qt-free jobs the window runs in a child process; no Qt here."""
