"""Keep TensorFlow's chatter out of the user's terminal, and in the log file.

TensorFlow 2.21 prints C++ messages ("oneDNN custom operations are on", "Could not find cuda
drivers") before its logging is set up, so no environment variable silences them. While it is
imported, the process's stderr (file descriptor 2) points at the log file instead. Some come
later, while a model runs ("E0000 ... oneDNN supports DT_INT32 only on platforms with
AVX-512"): a command keeps file descriptor 2 on the log file for its whole run
(`library_output_to_log`), and the app's own lines go to the terminal through `sys.stderr`.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and Keras with C-level stderr sent to the app's log file."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from finetune_gui.applog import log_file

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(log_file(), "ab") as log:
            os.dup2(log.fileno(), 2)
            try:
                import keras  # noqa: F401
                import tensorflow

                # The first device query initialises CUDA, which logs its own failure on a
                # machine without a GPU; later queries are silent.
                tensorflow.config.list_physical_devices("GPU")
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def route_warnings_to_log() -> None:
    """Python warnings from libraries go to the log file, not the terminal."""
    from finetune_gui.applog import log_file

    logging.captureWarnings(True)
    logger = logging.getLogger("py.warnings")
    if not any(isinstance(h, logging.FileHandler) for h in logger.handlers):
        logger.addHandler(logging.FileHandler(log_file(), encoding="utf-8"))
    logger.propagate = False
    warnings.simplefilter("default")


@contextmanager
def library_output_to_log() -> Iterator[None]:
    """While a command runs: what libraries write to file descriptor 2 (TensorFlow's C++ log
    lines, at import and later) goes to the log file, and so does what they print through the
    Python stderr they found when imported; the app's own lines, printed to `sys.stderr` from
    here on, still reach the terminal. TensorFlow is imported (quietly) first, so its Python
    logging keeps the stream that now leads to the log.

    Only in a process whose `sys.stderr` is file descriptor 2: under a test's capture it only
    imports TensorFlow.
    """
    try:
        real = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation: a capture
        real = False
    if not real:
        import_tensorflow_quietly()
        yield
        return
    from finetune_gui.applog import log_file

    sys.stderr.flush()
    terminal_fd = os.dup(2)
    previous = sys.stderr
    with open(log_file(), "ab") as log:
        os.dup2(log.fileno(), 2)
    terminal = io.TextIOWrapper(
        io.FileIO(terminal_fd, "w", closefd=True), encoding=previous.encoding,
        errors="backslashreplace", line_buffering=True)
    try:
        import_tensorflow_quietly()
        sys.stderr = terminal
        yield
    finally:
        sys.stderr = previous
        terminal.flush()
        previous.flush()
        os.dup2(terminal_fd, 2)
        terminal.close()
