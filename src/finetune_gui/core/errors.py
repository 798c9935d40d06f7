"""Errors meant for the user: each carries a plain message that the GUI and the CLI show as is."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A problem the user can fix; `str(error)` is a complete, plain sentence."""

    exit_code = 2


class DatasetError(UserError):
    """The image folder cannot be trained on."""


class WeightsError(UserError):
    """Pretrained weights could not be downloaded, read or matched to the backbone."""


class SettingsError(UserError):
    """A setting is out of range or names something that does not exist."""


class RunFolderError(UserError):
    """A run folder is missing, incomplete or from an incompatible version."""


class ExportError(UserError):
    """A file could not be written where the user asked."""


class EnsembleError(UserError):
    """Runs cannot be combined (other classes or split), or the ensemble cannot be saved."""


class TrainingDiverged(UserError):
    """The loss became NaN or exploded."""


class Cancelled(Exception):
    """Raised inside a job when the user pressed Cancel; not an error for the user."""


def images_gone(missing: list[Path], noun: str, then: str = "") -> RunFolderError:
    """The error for a run whose `missing` images (`noun`: "image", "test image") are no longer
    where its split says; `then`: what putting them back allows (" to resume")."""
    from finetune_gui.core.words import counted

    one = len(missing) == 1
    return RunFolderError(
        f"{counted(len(missing), noun)} of this run {'is' if one else 'are'} no longer where "
        f"{'it was' if one else 'they were'} (for example {missing[0]}); put the image folder "
        f"back{then}.")
