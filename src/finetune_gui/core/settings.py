"""Every choice that shapes a training run, with safe defaults, checked in one place.

Each field is declared once, with its `SettingInfo` (plain name, help, CLI flag, range or
choices); the command line's train options, the Model page's tips, the run comparison's labels
and the range checks below are all made from it. Adding a setting is one `setting(...)` line.
"""

from __future__ import annotations

import typing
from dataclasses import MISSING, Field, asdict, dataclass, field, fields, replace
from pathlib import Path

from finetune_gui.core.data.augment import PRESETS, AugmentSettings, preset
from finetune_gui.core.errors import SettingsError
from finetune_gui.core.model.backbones import check_image_size, get_backbone, weights_kind

CLASS_WEIGHT_MODES = ("auto", "on", "off")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
CACHE_MODES = ("fast", "exact")
# What the new head reads: the pooled output of every block of the base, or of the last only.
HEAD_INPUTS = ("every-block", "last-block")
# When phase 2 runs: only while it can still be kept (a head that gets every validation image
# right cannot be beaten by more than chance), or for the epochs set whatever the head scored.
FINETUNE_WHEN = ("can-win", "always")
# The values the Model page offers in a list (any value in range is accepted elsewhere).
LEARNING_RATES = (0.01, 0.003, 0.001, 0.0003, 0.0001, 0.00003, 0.00001)
BATCH_SIZES = (8, 16, 32, 64, 128)


@dataclass(frozen=True)
class SettingInfo:
    """How a setting is named, explained and bounded, for every face of the app."""

    label: str  # a plain name, lower case: "epochs for the new head"
    help: str  # one or two plain sentences: the Model page's tip and the CLI's help
    flag: str = ""  # the CLI flag; "" means "--" + the field name with dashes
    low: float | None = None  # inclusive bounds, checked when the settings are made
    high: float | None = None
    choices: tuple[str, ...] = ()  # the accepted words (for the CLI: the words it takes)
    # How the Model page shows it: its options form (gui/pages/model_options.py) is built from
    # these, so a range or a tip is written once, here.
    group: str = ""  # the form's box: "training", "head" or "advanced"; "" for another page's
    step: float | None = None  # a number box's step
    decimals: int = 0  # a fractional number's digits after the point
    suggestions: tuple[float, ...] = ()  # values offered in a list instead of a number box
    choice_texts: tuple[str, ...] = ()  # plain words for each of `choices`, in their order
    unset_text: str = ""  # what the lowest value (or None, for a derived setting) reads as


def setting(default=MISSING, *, factory=MISSING, **info) -> Field:
    """A `TrainingSettings` field with its `SettingInfo`."""
    return field(default=default, default_factory=factory, metadata={"info": SettingInfo(**info)})


@dataclass(frozen=True)
class TrainingSettings:
    """A complete description of one run; saved with it so it can be repeated exactly."""

    backbone: str = setting(
        "mobilenetv2", label="network",
        help="The pretrained network to start from, e.g. mobilenetv2, resnet50, efficientnetb0.")
    weights: str = setting(
        "imagenet", label="starting weights",
        help="Where the network's starting weights come from: imagenet, none (train from "
             "scratch), or a weights file.")
    image_size: int | None = setting(
        None, label="image size (px)",
        help="Images are resized to this many pixels square before training. Smaller is much "
             "faster; the network's own size (the default) is usually the most accurate.")
    epochs_head: int = setting(
        5, label="epochs for the new head", low=0, high=10_000, group="training",
        help="Rounds over all training images while only the new head learns. The backbone "
             "stays as it is. 5 is usually enough.")
    epochs_finetune: int = setting(
        5, label="epochs of fine-tuning", low=0, high=10_000, group="training",
        help="Rounds over the training images after the top blocks of the backbone are "
             "unfrozen. Set 0 to skip fine-tuning.")
    finetune_when: str = setting(
        "can-win", label="when to fine-tune", choices=FINETUNE_WHEN, group="advanced",
        choice_texts=("only when it can still win", "always"),
        help="Can win: fine-tuning is skipped when the new head alone already gets so many "
             "validation images right that it could not be beaten by more than chance, or "
             "already gets every training image it would fine-tune on right (nothing left to "
             "learn), or when validation chose a stronger penalty for the head than weaker "
             "ones that fit those images more closely (fine-tuning on them fits them more "
             "closely still); it stops as soon as it is clearly worse than the head (a long first "
             "epoch is looked at an eighth of the way through), since it could then not be "
             "kept, and (in speed mode) after a first epoch that gets no more validation "
             "images right than the head at a higher loss. Always: fine-tune for the epochs "
             "set (early stopping aside; the better of the two models is still kept).")
    unfreeze_blocks: int = setting(
        2, label="blocks fine-tuned", low=0, high=1_000,
        help="After the new head has learned, this many blocks at the top of the backbone are "
             "unfrozen and trained gently. 0 trains only the head (fastest, safest with few "
             "images); more blocks adapt the network further to your images but need more "
             "images and time.")
    batch_size: int = setting(
        32, label="batch size", low=1, high=4096, group="training",
        suggestions=BATCH_SIZES,
        help="How many images the model looks at before each small correction. Smaller uses "
             "less memory; 32 is a safe choice.")
    lr_head: float = setting(
        1e-3, label="learning rate (head)", low=1e-8, high=1.0, group="training",
        suggestions=LEARNING_RATES,
        help="How big each correction is while the head learns. Too big and training jumps "
             "around; too small and it barely moves. 0.001 is a safe choice.")
    lr_finetune: float | None = setting(
        None, label="learning rate (fine-tuning)", low=1e-9, high=1.0, group="advanced",
        suggestions=LEARNING_RATES, unset_text="automatic (a tenth of the head's)",
        help="Correction size while the backbone is fine-tuned. Automatic (the default) uses a "
             "tenth of the head's rate, so the pretrained weights change gently.")
    optimizer: str = setting(
        "adam", label="optimizer", choices=OPTIMIZERS, group="advanced",
        choice_texts=("Adam", "SGD with momentum", "RMSprop"),
        help="The method that applies the corrections. Adam adapts itself and is the safe "
             "choice.")
    # setting() returns a field with a default_factory: each instance gets its own preset value
    augment: AugmentSettings = setting(  # noqa: RUF009
        factory=lambda: preset("light"), label="augmentation", choices=tuple(PRESETS),
        help="How strongly training images are randomly changed (flips, turns, zoom, colour) so "
             "the model learns the subject rather than the picture.")
    head_reads: str = setting(
        "every-block", label="the head reads", choices=HEAD_INPUTS, group="advanced",
        choice_texts=("every block of the network", "the last block only"),
        help="Every block: the new head sees the averaged output of every block of the network, "
             "early ones (edges, colours, texture) as well as the last (whole objects), which "
             "helps most when your pictures look unlike the network's own. Last block: the "
             "classic recipe, the last block's output only.")
    dense_units: int = setting(
        0, label="extra layer units", low=0, high=8192, group="head", step=64,
        unset_text="none",
        help="An extra layer of this many units before the answer. 0 (none) works well for "
             "most data sets; try 128 or 256 for many classes.")
    dropout: float = setting(
        0.2, label="dropout", low=0.0, high=0.95, group="head", step=0.05, decimals=2,
        help="Randomly ignores this share of features while training so the model cannot rely "
             "on a few of them. Helps against learning the training images by heart.")
    l2: float = setting(
        0.0, label="weight penalty (L2)", low=0.0, high=1.0, group="advanced", step=0.0001,
        decimals=5,
        help="Penalises large weights in the head. 0 turns it off; 0.0001 is a mild setting.")
    # Validation and test together must leave a tenth for training (checked when splitting).
    val_fraction: float = setting(
        0.15, label="share for validation", low=0.0, high=0.89,
        help="The share of images held back while training to check progress after each "
             "epoch and to stop when it stops improving.")
    test_fraction: float = setting(
        0.15, label="share for the test", low=0.0, high=0.89,
        help="The share of images never used in training and scored once, at the end, so the "
             "score is honest.")
    seed: int = setting(
        0, label="random seed", low=0, high=2**31 - 1, group="advanced",
        help="The number that fixes every random choice (split, shuffling, augmentation), so "
             "the same settings give the same result.")
    class_weights: str = setting(
        "auto", label="class weights", choices=CLASS_WEIGHT_MODES, group="advanced",
        choice_texts=("automatic", "always", "never"),
        help="Count images of small classes more, so the model does not ignore them. "
             "Automatic turns this on when the largest class is over 3x the smallest.")
    patience: int = setting(
        3, label="early-stopping patience (epochs)", low=0, high=1000, group="advanced",
        unset_text="never stop early",
        help="Stop a phase early when the validation loss has not improved for this many "
             "epochs. 0 never stops early.")
    cache_mode: str = setting(
        "fast", label="speed mode", flag="--mode", choices=CACHE_MODES, group="advanced",
        choice_texts=("fast (reuse frozen features)", "exact (slower)"),
        help="Fast computes the frozen part of the network once per image and reuses it "
             "every epoch. Exact runs every image through the whole network each epoch, "
             "with a new random augmentation each time: several times slower.")
    # Augmented copies of each image the fast mode computes once (docs/benchmarks.md: 2 and 4
    # copies measured no better than 1, and the frozen-layer pass costs K times as much).
    views: int = setting(
        1, label="augmented copies per image", low=1, high=16, group="advanced",
        help="Fast mode: each image is kept as it is, and this many minus one randomly "
             "augmented copies of it are computed once and reused. 1 trains on the images as "
             "they are (no augmentation); each copy costs one more pass over the data.")

    def __post_init__(self) -> None:
        spec = get_backbone(self.backbone)
        object.__setattr__(self, "backbone", spec.name)
        if isinstance(self.augment, str):
            object.__setattr__(self, "augment", preset(self.augment))
        elif isinstance(self.augment, dict):
            object.__setattr__(self, "augment", AugmentSettings.from_dict(self.augment))
        check_image_size(spec, self.resolved_image_size)
        for name, info in SETTINGS_INFO.items():
            _check(name, getattr(self, name), info, value_type(name))
        if self.epochs_head + self.epochs_finetune < 1:
            raise SettingsError("Train for at least one epoch (head or fine-tune).")
        if weights_kind(self.weights) == "file" and not Path(self.weights).is_file():
            raise SettingsError(f"The weights file {self.weights} does not exist.")

    @property
    def resolved_image_size(self) -> int:
        return self.image_size or get_backbone(self.backbone).default_size

    @property
    def resolved_lr_finetune(self) -> float:
        return self.lr_finetune if self.lr_finetune is not None else self.lr_head / 10

    @property
    def augmentation_used(self) -> bool:
        """Whether training sees the augmentation at all: exact mode draws new changes every
        epoch, speed mode only on its extra copies per image (`views` 2 or more)."""
        return not self.augment.is_off and (self.cache_mode != "fast" or self.views > 1)

    def with_changes(self, **changes) -> TrainingSettings:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["augment"] = self.augment.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict, *, of_run: bool = False) -> TrainingSettings:
        """`of_run`: the settings a run folder recorded. A run recorded before the head could
        read every block read the last block only, and must be rebuilt the same way."""
        known = {f.name for f in fields(cls)}
        if of_run:
            data = {"head_reads": "last-block", **data}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SettingsError(f"{'Unknown setting' if len(unknown) == 1 else 'Unknown settings'}"
                                f": {', '.join(unknown)}.")
        return cls(**data)


# name -> SettingInfo, in declaration order (the order the CLI lists them)
SETTINGS_INFO: dict[str, SettingInfo] = {f.name: f.metadata["info"] for f in fields(TrainingSettings)}
_HINTS = typing.get_type_hints(TrainingSettings)


def value_type(name: str) -> type:
    """The type a setting's value has when set: `int` for "int | None"."""
    hint = _HINTS[name]
    options = [t for t in typing.get_args(hint) if t is not type(None)]
    return options[0] if options else hint


def may_be_unset(name: str) -> bool:
    """True for a setting whose None means "derived" (the backbone's size, a tenth of lr_head)."""
    return type(None) in typing.get_args(_HINTS[name])


def default_value(name: str) -> object:
    """A setting's default as a user would type it (the augmentation preset's name, not its
    values)."""
    spec = next(f for f in fields(TrainingSettings) if f.name == name)
    value = spec.default if spec.default is not MISSING else spec.default_factory()
    if isinstance(value, AugmentSettings):
        return next(key for key, known in PRESETS.items() if known == value)
    return value


def setting_label(key: str) -> str:
    """A plain name for a setting key such as "unfreeze_blocks" or "augment.flip"."""
    if key.startswith("augment."):
        return f"augmentation: {key.split('.', 1)[1]}"
    info = SETTINGS_INFO.get(key)
    return info.label if info else key.replace("_", " ")


def _check(name: str, value, info: SettingInfo, kind: type) -> None:
    if value is None and may_be_unset(name):
        return
    if info.low is not None or info.high is not None:
        _check_range(name, value, info.low, info.high)
        if kind is int and not isinstance(value, int):
            raise SettingsError(f"Setting '{name}' must be a whole number; got {value!r}.")
    if info.choices and kind is str:
        _check_choice(name, value, info.choices)


def _check_range(name, value, low, high) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise SettingsError(f"Setting '{name}' must be a number; got {value!r}.")
    if value < low or value > high:
        raise SettingsError(f"Setting '{name}' must be between {low} and {high}; got {value}.")


def _check_choice(name, value, choices) -> None:
    if value not in choices:
        raise SettingsError(f"Setting '{name}' must be one of {', '.join(choices)}; got '{value}'.")
