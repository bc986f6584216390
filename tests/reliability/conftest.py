from __future__ import annotations

import pytest
from tests.conftest import DevPhoto

from imgrec.model.classifier import Classification, load_classifier


@pytest.fixture(scope="session")
def bare_top1(dev_photos: list[DevPhoto]) -> dict[str, int]:
    """The bare model's top-1 class index for each dev photo, by file name."""
    classifier = load_classifier("mobilenet_v2", threads=1)
    outcomes = classifier.classify_images([p.path.read_bytes() for p in dev_photos])
    top1: dict[str, int] = {}
    for photo, outcome in zip(dev_photos, outcomes, strict=True):
        assert isinstance(outcome, Classification), photo.path
        top1[photo.path.name] = outcome.class_index
    return top1


@pytest.fixture(scope="session")
def bare_labels(dev_photos: list[DevPhoto]) -> dict[str, str]:
    """The bare model's top-1 label for each dev photo, by file name (the course API's answer)."""
    classifier = load_classifier("mobilenet_v2", threads=1)
    outcomes = classifier.classify_images([p.path.read_bytes() for p in dev_photos])
    labels: dict[str, str] = {}
    for photo, outcome in zip(dev_photos, outcomes, strict=True):
        assert isinstance(outcome, Classification), photo.path
        labels[photo.path.name] = outcome.label
    return labels
