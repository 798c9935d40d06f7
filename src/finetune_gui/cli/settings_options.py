"""The train command's setting options, made from `TrainingSettings`' own field descriptions:
every setting has a flag, its default is the dataclass's, and its help is the Model page's tip."""

from __future__ import annotations

import argparse

from finetune_gui.core.settings import (
    SETTINGS_INFO,
    TrainingSettings,
    default_value,
    value_type,
)


def setting_flag(name: str) -> str:
    """The CLI flag of a setting: its own, or "--" + the name with dashes."""
    return SETTINGS_INFO[name].flag or "--" + name.replace("_", "-")


def add_setting_options(parser: argparse.ArgumentParser) -> None:
    """One option per `TrainingSettings` field, in declaration order."""
    group = parser.add_argument_group("training settings")
    for name, info in SETTINGS_INFO.items():
        kind = value_type(name)
        default = default_value(name)
        help_text = info.help.replace("%", "%%")
        if default is not None:  # an unset default is explained in the help itself
            help_text += f" (default: {default})"
        options: dict = {"dest": name, "default": default, "help": help_text}
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif info.choices:
            options["choices"] = list(info.choices)
        elif kind in (int, float):
            options["type"] = kind
        group.add_argument(setting_flag(name), **options)


def settings_from_args(args: argparse.Namespace) -> TrainingSettings:
    """The parsed options as settings; every value is checked by `TrainingSettings` itself."""
    return TrainingSettings(**{name: getattr(args, name) for name in SETTINGS_INFO})
