"""Model specs: which ONNX file to run and how to prepare its input.

A spec names a built-in model (``BUILTIN_MODELS``, e.g. ``mobilenet_v2_int8``) or a user's ``.onnx``
file. A user's file may have a JSON sidecar, ``<file>.json`` (``model.onnx.json``) or
``<stem>.json`` (``model.json``), with any of::

    {"input_size": 224, "resize": 256, "mean": [0.485, 0.456, 0.406],
     "std": [0.229, 0.224, 0.225], "labels": "labels.txt"}

``labels`` is a text file (one class name a line) relative to the sidecar. Missing keys take
ImageNet's values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgrec.errors import ModelError
from imgrec.model.labels import FILES_DIR, imagenet_labels, load_labels

Triple = tuple[float, float, float]

IMAGENET_MEAN: Triple = (0.485, 0.456, 0.406)
IMAGENET_STD: Triple = (0.229, 0.224, 0.225)
BUILTIN_MODELS: tuple[str, ...] = ("mobilenet_v2", "efficientnet_lite0", "mobilenet_v2_int8")
SIDECAR_KEYS = frozenset({"input_size", "resize", "mean", "std", "labels"})


@dataclass(frozen=True)
class ModelSpec:
    """An ONNX classifier and the preprocessing its weights were trained with.

    Images are resized so the shorter side is ``resize``, centre-cropped to ``input_size``
    square, scaled to 0..1 and normalised with ``mean``/``std`` (per RGB channel).
    """

    name: str
    onnx_path: Path
    input_size: int = 224
    resize: int = 256
    mean: Triple = IMAGENET_MEAN
    std: Triple = IMAGENET_STD
    labels: tuple[str, ...] = field(default_factory=imagenet_labels, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.input_size <= self.resize:
            raise ModelError(
                f"model {self.name}: need 0 < input_size <= resize, "
                f"got input_size={self.input_size}, resize={self.resize}"
            )
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ModelError(f"model {self.name}: mean and std need 3 values each, std > 0")
        if not self.labels:
            raise ModelError(f"model {self.name}: the label list is empty")


def resolve_model(name_or_path: str) -> ModelSpec:
    """Return the spec for a built-in model name or a path to a user's ``.onnx`` file."""
    if name_or_path in BUILTIN_MODELS:
        return _builtin(name_or_path)
    path = Path(name_or_path).expanduser()
    if not (path.suffix == ".onnx" or len(path.parts) > 1 or path.exists()):
        raise ModelError(
            f"unknown model {name_or_path!r}: use one of {', '.join(BUILTIN_MODELS)} "
            "or give the path to an .onnx file"
        )
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    return _user_model(path)


def _builtin(name: str) -> ModelSpec:
    path = FILES_DIR / f"{name}.onnx"
    if not path.is_file():
        raise ModelError(f"built-in model file {path} is missing; run `make models` to export it")
    if name == "efficientnet_lite0":
        # The TF EfficientNet-Lite weights expect pixels in [-1, 1], not ImageNet mean/std.
        return ModelSpec(name, path, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    return ModelSpec(name, path)


def _sidecar_for(path: Path) -> Path | None:
    for candidate in (path.with_name(path.name + ".json"), path.with_suffix(".json")):
        if candidate.is_file():
            return candidate
    return None


def _user_model(path: Path) -> ModelSpec:
    sidecar = _sidecar_for(path)
    if sidecar is None:
        return ModelSpec(path.stem, path)
    try:
        raw: Any = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"cannot read model sidecar {sidecar}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ModelError(f"model sidecar {sidecar} must hold a JSON object")
    unknown = set(raw) - SIDECAR_KEYS
    if unknown:
        raise ModelError(
            f"model sidecar {sidecar}: unknown keys {sorted(unknown)}; "
            f"allowed: {sorted(SIDECAR_KEYS)}"
        )
    where = f"model sidecar {sidecar}"
    options: dict[str, Any] = {}
    for key in ("input_size", "resize"):
        if key in raw:
            options[key] = _positive_int(raw[key], f"{where}: {key}")
    for key in ("mean", "std"):
        if key in raw:
            options[key] = _triple(raw[key], f"{where}: {key}")
    if "labels" in raw:
        if not isinstance(raw["labels"], str):
            raise ModelError(f"{where}: labels must be the path of a text file")
        options["labels"] = load_labels(sidecar.parent / raw["labels"])
    if "input_size" in options and "resize" not in options:
        # Keep ImageNet's 224/256 ratio rather than a resize smaller than the crop.
        options["resize"] = round(options["input_size"] * 256 / 224)
    return ModelSpec(path.stem, path, **options)


def _positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ModelError(f"{what} must be a positive integer, got {value!r}")
    return value


def _triple(value: object, what: str) -> Triple:
    if (
        not isinstance(value, list)
        or len(value) != 3
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        raise ModelError(f"{what} must be a list of 3 numbers (R, G, B), got {value!r}")
    return (float(value[0]), float(value[1]), float(value[2]))
