"""Image classification: model specs, preprocessing and the ONNX Runtime classifier.

from imgrec.model import load_classifier
classifier = load_classifier("mobilenet_v2")
[result] = classifier.classify_images([jpeg_bytes])
"""

from imgrec.model.classifier import (
    Classification,
    Classifier,
    Prediction,
    load_classifier,
)
from imgrec.model.labels import imagenet_labels, load_labels
from imgrec.model.preprocess import (
    MAX_IMAGE_PIXELS,
    decode_image,
    load_input,
    preprocess,
    probe_image,
)
from imgrec.model.spec import (
    BUILTIN_MODELS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    ModelSpec,
    resolve_model,
)

__all__ = [
    "BUILTIN_MODELS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MAX_IMAGE_PIXELS",
    "Classification",
    "Classifier",
    "ModelSpec",
    "Prediction",
    "decode_image",
    "imagenet_labels",
    "load_classifier",
    "load_input",
    "load_labels",
    "preprocess",
    "probe_image",
    "resolve_model",
]
