"""The backbone registry over `keras.applications`: a table of small frozen dataclasses.

Each entry knows how to build its base (no top), how its inputs are scaled, its default input
size, its parameter count, and which layers end a block. "Unfreeze the top N blocks" cuts only
where a single tensor crosses from the frozen part to the trainable part, so a residual block is
never cut in half.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from finetune_gui.core.errors import SettingsError, WeightsError


@dataclass(frozen=True)
class BackboneSpec:
    """One pretrained architecture that can be fine-tuned."""

    name: str  # the Keras application name in lower case, e.g. "mobilenetv2"
    keras_name: str  # the constructor in keras.applications
    family: str
    default_size: int
    min_size: int
    params_millions: float  # without the classification top, as built by Keras
    preprocess: str  # "tf" (-1..1), "caffe" (BGR minus mean), "torch" (ImageNet mean/std), "none"
    block_end: str  # regex over "ClassName:layer_name" for layers that end a block
    speed: str  # plain-language speed/accuracy hint for the picker

    def constructor(self):
        import keras

        return getattr(keras.applications, self.keras_name)


_VGG = r"^MaxPooling2D:block\d+_pool$"
_RESNET = r"^\w+:conv\d_block\d+_out$"
_MOBILENETV2 = r"^\w+:(block_\d+|expanded_conv)_(add|project_BN)$"
_MOBILENETV3 = r"^\w+:expanded_conv(_\d+)?_(add|project_bn)$"
_EFFICIENTNET = r"^\w+:block\d+[a-z]_(add|project_bn)$"
_ADD = r"^Add:"
_FAST = "fast, small; good first choice"
_MEDIUM = "medium speed, more accurate"
_SLOW = "slow on a CPU; most accurate"


def _spec(name, keras_name, family, size, params, preprocess, block_end, speed, min_size=32):
    return BackboneSpec(
        name, keras_name, family, size, min_size, params, preprocess, block_end, speed
    )


BACKBONES: dict[str, BackboneSpec] = {
    s.name: s
    for s in [
        _spec(
            "mobilenetv3small",
            "MobileNetV3Small",
            "MobileNet",
            224,
            0.94,
            "none",
            _MOBILENETV3,
            "fastest, smallest; lower accuracy",
        ),
        _spec("mobilenetv2", "MobileNetV2", "MobileNet", 224, 2.26, "tf", _MOBILENETV2, _FAST),
        _spec(
            "mobilenetv3large",
            "MobileNetV3Large",
            "MobileNet",
            224,
            3.0,
            "none",
            _MOBILENETV3,
            _FAST,
        ),
        _spec(
            "efficientnetb0",
            "EfficientNetB0",
            "EfficientNet",
            224,
            4.05,
            "none",
            _EFFICIENTNET,
            "fast, accurate for its size",
        ),
        _spec(
            "efficientnetb1",
            "EfficientNetB1",
            "EfficientNet",
            240,
            6.58,
            "none",
            _EFFICIENTNET,
            _MEDIUM,
        ),
        _spec(
            "efficientnetb2",
            "EfficientNetB2",
            "EfficientNet",
            260,
            7.77,
            "none",
            _EFFICIENTNET,
            _MEDIUM,
        ),
        _spec(
            "efficientnetb3",
            "EfficientNetB3",
            "EfficientNet",
            300,
            10.78,
            "none",
            _EFFICIENTNET,
            _MEDIUM,
        ),
        _spec(
            "efficientnetv2b0",
            "EfficientNetV2B0",
            "EfficientNetV2",
            224,
            5.92,
            "none",
            _EFFICIENTNET,
            "fast, accurate for its size",
        ),
        _spec(
            "efficientnetv2s",
            "EfficientNetV2S",
            "EfficientNetV2",
            384,
            20.33,
            "none",
            _EFFICIENTNET,
            _SLOW,
        ),
        _spec("resnet50", "ResNet50", "ResNet", 224, 23.59, "caffe", _RESNET, _MEDIUM),
        _spec("resnet101", "ResNet101", "ResNet", 224, 42.66, "caffe", _RESNET, _SLOW),
        _spec("resnet152", "ResNet152", "ResNet", 224, 58.37, "caffe", _RESNET, _SLOW),
        _spec("resnet50v2", "ResNet50V2", "ResNetV2", 224, 23.56, "tf", _RESNET, _MEDIUM),
        _spec("resnet101v2", "ResNet101V2", "ResNetV2", 224, 42.63, "tf", _RESNET, _SLOW),
        _spec("resnet152v2", "ResNet152V2", "ResNetV2", 224, 58.33, "tf", _RESNET, _SLOW),
        _spec(
            "inceptionv3",
            "InceptionV3",
            "Inception",
            299,
            21.8,
            "tf",
            r"^\w+:mixed\d+$",
            _MEDIUM,
            min_size=75,
        ),
        _spec("xception", "Xception", "Xception", 299, 20.86, "tf", _ADD, _SLOW, min_size=71),
        _spec(
            "densenet121",
            "DenseNet121",
            "DenseNet",
            224,
            7.04,
            "torch",
            r"^\w+:(conv\d_block\d+_concat|pool\d_pool)$",
            _MEDIUM,
        ),
        _spec(
            "convnexttiny",
            "ConvNeXtTiny",
            "ConvNeXt",
            224,
            27.82,
            "none",
            r"^(Add:|Sequential:.*downsampling)",
            _SLOW,
        ),
        _spec(
            "vgg16", "VGG16", "VGG", 224, 14.71, "caffe", _VGG, "slow and large; a classic baseline"
        ),
        _spec(
            "vgg19", "VGG19", "VGG", 224, 20.02, "caffe", _VGG, "slow and large; a classic baseline"
        ),
    ]
}


def get_backbone(name: str) -> BackboneSpec:
    """The registry entry for `name` (case-insensitive), or a `SettingsError` listing the choices."""
    key = name.strip().lower().replace("-", "").replace("_", "")
    if key not in BACKBONES:
        raise SettingsError(f"Unknown backbone '{name}'. Choose one of: {', '.join(BACKBONES)}.")
    return BACKBONES[key]


def check_image_size(spec: BackboneSpec, size: int) -> None:
    if size < spec.min_size:
        raise SettingsError(
            f"{spec.keras_name} needs images of at least {spec.min_size} pixels; got {size}."
        )
    if size > 1024:
        raise SettingsError(f"Image size {size} is too large; use 1024 pixels or fewer.")


def build_base(spec: BackboneSpec, image_size: int, weights: str | Path | None):
    """The backbone without its top, taking preprocessed pixels of `image_size`.

    `weights` is "imagenet" (the real Keras download, cached under ~/.keras/models), a path to
    a weights file for the base without its top, or None / "none".
    """
    check_image_size(spec, image_size)
    build = spec.constructor()
    shape = (image_size, image_size, 3)
    kind = weights_kind(weights)
    if kind == "none":
        return build(include_top=False, weights=None, input_shape=shape)
    if kind == "imagenet":
        try:
            return build(include_top=False, weights="imagenet", input_shape=shape)
        except Exception as exc:
            raise WeightsError(_download_message(spec, exc)) from exc
    base = build(include_top=False, weights=None, input_shape=shape)
    load_weights_file(base, spec, Path(weights))
    return base


def weights_kind(weights: str | Path | None) -> str:
    """ "none", "imagenet" or "file"."""
    if weights is None or str(weights).lower() in ("", "none"):
        return "none"
    if str(weights).lower() == "imagenet":
        return "imagenet"
    return "file"


def weights_phrase(weights: str | Path | None) -> str:
    """The weights as a sentence names them: "ImageNet weights", "no pretrained weights",
    "the weights in letters.weights.h5"."""
    kind = weights_kind(weights)
    if kind == "none":
        return "no pretrained weights"
    if kind == "imagenet":
        return "ImageNet weights"
    return f"the weights in {Path(str(weights)).name}"


def keras_models_dir() -> Path:
    """Where Keras caches downloaded weights: $KERAS_HOME/models or ~/.keras/models."""
    import os

    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models"


def _download_message(spec: BackboneSpec, exc: Exception) -> str:
    text = str(exc)
    url = re.search(r"https?://\S+?\.h5", text)
    file_name = url.group(0).rsplit("/", 1)[-1] if url else f"{spec.keras_name} ImageNet weights"
    cached = keras_models_dir() / file_name
    if url and cached.exists():
        # Keras found a cached file whose checksum failed (or h5py could not read it) and the
        # fresh download failed too: the file is damaged and would fail again next time.
        cached.unlink()
        return (
            f"The cached ImageNet weights file {cached} was damaged or incomplete, so it was "
            f"removed, and it could not be downloaded again. Connect to the internet and retry, "
            f"choose a local weights file, or train from scratch without pretrained weights."
        )
    return (
        f"Could not download the ImageNet weights for {spec.keras_name} ({file_name}); "
        f"the computer may be offline. Either choose a local weights file for "
        f"{spec.keras_name} without its top, or train from scratch without pretrained weights."
    )


def _looks_corrupt(text: str) -> bool:
    markers = (
        "truncated file",
        "Unable to open file",
        "file signature not found",
        "bad object header",
    )
    return any(marker in text for marker in markers)


def load_weights_file(base, spec: BackboneSpec, path: Path) -> None:
    """Load a local weights file into `base`, translating every failure into a plain message."""
    if not path.is_file():
        raise WeightsError(f"The weights file {path} does not exist.")
    name = path.name.lower()
    if not (name.endswith(".h5") or name.endswith(".weights.h5") or name.endswith(".keras")):
        raise WeightsError(
            f"The weights file {path.name} is not a Keras weights file (.weights.h5 or .h5)."
        )
    try:
        base.load_weights(str(path))
    except Exception as exc:
        if _looks_corrupt(str(exc)):
            raise WeightsError(f"The weights file {path.name} is damaged or incomplete.") from exc
        raise WeightsError(
            f"The weights file {path.name} does not fit {spec.keras_name} without its top "
            f"at this input size. Use a file saved from the same network without its top "
            f"layers, or train from scratch without pretrained weights."
        ) from exc


def _graph_edges(model) -> tuple[list, dict[int, set[int]]]:
    """The model's operations in order and, for each, the indices of the operations it feeds."""
    ops = list(model.operations)
    position = {id(op): i for i, op in enumerate(ops)}
    feeds: dict[int, set[int]] = {i: set() for i in range(len(ops))}
    for i, op in enumerate(ops):
        for node in op._inbound_nodes:
            for tensor in node.input_tensors:
                producer = tensor._keras_history.operation
                if id(producer) in position:
                    feeds[position[id(producer)]].add(i)
    return ops, feeds


def block_ends(model, spec: BackboneSpec) -> list[str]:
    """Names of the layers that end a block, in order, where cutting is safe.

    The last layer of the model always ends the last block.
    """
    ops, feeds = _graph_edges(model)
    pattern = re.compile(spec.block_end)
    ends = []
    furthest = 0  # the furthest operation any earlier operation feeds
    for i, op in enumerate(ops[:-1]):
        single_crossing = furthest <= i
        furthest = max(furthest, max(feeds[i], default=i))
        if single_crossing and pattern.search(f"{type(op).__name__}:{op.name}"):
            ends.append(op.name)
    ends.append(ops[-1].name)
    return ends


def output_of(model, name: str):
    """The output tensor of the operation `name` in `model`: a layer, or an op such as `x + y`."""
    for op in model.operations:
        if op.name == name:
            return op._inbound_nodes[0].output_tensors[0]
    raise KeyError(f"{model.name} has no operation named {name}")


def max_unfreeze_blocks(ends: list[str]) -> int:
    """The largest sensible N: every block but the stem before the first boundary."""
    return len(ends) - 1


def cut_layer(ends: list[str], unfreeze_blocks: int) -> str | None:
    """The layer after which everything is trainable, or None when the whole base is frozen."""
    if unfreeze_blocks <= 0:
        return None
    n = min(unfreeze_blocks, max_unfreeze_blocks(ends))
    return ends[-n - 1]
