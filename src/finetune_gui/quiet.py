"""Keep TensorFlow's start-up chatter out of the user's terminal, and in the log file.

TensorFlow 2.21 prints C++ messages ("oneDNN custom operations are on", "Could not find cuda
drivers") before its logging is set up, so no environment variable silences them. While it is
imported, the process's stderr (file descriptor 2) points at the log file instead.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings


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
