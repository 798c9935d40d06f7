"""Every choice that shapes a training run, with safe defaults, checked in one place."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from finetune_gui.core.data.augment import AugmentSettings, preset
from finetune_gui.core.errors import SettingsError
from finetune_gui.core.model.backbones import check_image_size, get_backbone, weights_kind

CLASS_WEIGHT_MODES = ("auto", "on", "off")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
CACHE_MODES = ("fast", "exact")


@dataclass(frozen=True)
class TrainingSettings:
    """A complete description of one run; saved with it so it can be repeated exactly."""

    backbone: str = "mobilenetv2"
    weights: str = "imagenet"  # "imagenet", "none", or a path to a weights file
    image_size: int | None = None  # None: the backbone's default
    epochs_head: int = 5
    epochs_finetune: int = 5
    unfreeze_blocks: int = 2
    batch_size: int = 32
    lr_head: float = 1e-3
    lr_finetune: float | None = None  # None: lr_head / 10
    optimizer: str = "adam"
    augment: AugmentSettings = field(default_factory=lambda: preset("light"))
    dense_units: int = 0  # 0: no hidden dense layer in the head
    dropout: float = 0.2
    l2: float = 0.0
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 0
    class_weights: str = "auto"  # "auto": on when the largest class is over 3x the smallest
    patience: int = 3  # early stopping on validation loss
    cache_mode: str = "fast"
    # Augmented copies of each image the fast mode computes once (docs/benchmarks.md: 2 and 4
    # copies measured no better than 1, and the frozen-layer pass costs K times as much).
    views: int = 1

    def __post_init__(self) -> None:
        spec = get_backbone(self.backbone)
        object.__setattr__(self, "backbone", spec.name)
        if isinstance(self.augment, str):
            object.__setattr__(self, "augment", preset(self.augment))
        elif isinstance(self.augment, dict):
            object.__setattr__(self, "augment", AugmentSettings.from_dict(self.augment))
        check_image_size(spec, self.resolved_image_size)
        _check_range("epochs_head", self.epochs_head, 0, 10_000)
        _check_range("epochs_finetune", self.epochs_finetune, 0, 10_000)
        if self.epochs_head + self.epochs_finetune < 1:
            raise SettingsError("Train for at least one epoch (head or fine-tune).")
        _check_range("unfreeze_blocks", self.unfreeze_blocks, 0, 1_000)
        _check_range("batch_size", self.batch_size, 1, 4096)
        _check_range("lr_head", self.lr_head, 1e-8, 1.0, exclusive_low=False)
        if self.lr_finetune is not None:
            _check_range("lr_finetune", self.lr_finetune, 1e-9, 1.0)
        _check_range("dense_units", self.dense_units, 0, 8192)
        _check_range("dropout", self.dropout, 0.0, 0.95)
        _check_range("l2", self.l2, 0.0, 1.0)
        _check_range("patience", self.patience, 0, 1000)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("class_weights", self.class_weights, CLASS_WEIGHT_MODES)
        _check_choice("cache_mode", self.cache_mode, CACHE_MODES)
        _check_range("views", self.views, 1, 16)
        if not isinstance(self.views, int):
            raise SettingsError(f"Setting 'views' must be a whole number; got {self.views!r}.")
        if weights_kind(self.weights) == "file" and not Path(self.weights).is_file():
            raise SettingsError(f"The weights file {self.weights} does not exist.")

    @property
    def resolved_image_size(self) -> int:
        return self.image_size or get_backbone(self.backbone).default_size

    @property
    def resolved_lr_finetune(self) -> float:
        return self.lr_finetune if self.lr_finetune is not None else self.lr_head / 10

    def with_changes(self, **changes) -> TrainingSettings:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["augment"] = self.augment.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TrainingSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SettingsError(f"Unknown setting(s): {', '.join(unknown)}.")
        return cls(**data)


def _check_range(name, value, low, high, exclusive_low=False) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise SettingsError(f"Setting '{name}' must be a number; got {value!r}.")
    if value < low or value > high or (exclusive_low and value == low):
        raise SettingsError(f"Setting '{name}' must be between {low} and {high}; got {value}.")


def _check_choice(name, value, choices) -> None:
    if value not in choices:
        raise SettingsError(f"Setting '{name}' must be one of {', '.join(choices)}; got '{value}'.")
