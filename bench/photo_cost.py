"""CPU per image by photo size: decode, preprocess and inference, fast path against exact path.

One process, one ONNX thread, batch 1, so the stages can be timed apart with the process's CPU
clock. The fast path is the service's (``load_input``: JPEG draft decoding, then an integer box
reduction before the bilinear resize); the exact path decodes every pixel and resamples in one
bilinear pass. Both are scored against the photos' labels, so a faster path that changed the
answers would show.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.model.classifier import Classifier
from imgrec.model.decode import decode_image
from imgrec.model.preprocess import preprocess


@dataclass(frozen=True)
class SizeCost:
    """What one image of a photo set costs, in CPU milliseconds per image, and its top-1."""

    name: str
    photos: int
    width: int  # of the first photo (the others share its size or its transpose)
    height: int
    mean_kb: float
    decode_ms: float
    preprocess_ms: float
    infer_ms: float
    exact_cpu_ms: float  # full decode + one-pass resize + inference
    correct: int
    correct_exact: int
    agree: int  # photos where both paths give the same top-1 class

    @property
    def cpu_ms(self) -> float:
        return self.decode_ms + self.preprocess_ms + self.infer_ms

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"cpu_ms": self.cpu_ms}


def _cpu() -> float:
    return time.process_time()


def _fast(data: bytes, classifier: Classifier) -> tuple[int, float, float, float]:
    spec = classifier.spec
    t0 = _cpu()
    image = decode_image(data, min_side=spec.resize)
    t1 = _cpu()
    array = preprocess(image, spec)
    t2 = _cpu()
    [result] = classifier.classify_batch(array[None])
    t3 = _cpu()
    return result.class_index, t1 - t0, t2 - t1, t3 - t2


def _exact(data: bytes, classifier: Classifier) -> tuple[int, float]:
    t0 = _cpu()
    array = preprocess(decode_image(data), classifier.spec, reducing_gap=None)
    [result] = classifier.classify_batch(array[None])
    return result.class_index, _cpu() - t0


def measure(name: str, photos: list[tuple[Path, int]], classifier: Classifier,
            rounds: int = 2) -> SizeCost:
    """Time ``rounds`` passes of the fast path and one of the exact path over ``photos``."""
    data = [p.read_bytes() for p, _ in photos]
    wanted = [label for _, label in photos]
    _fast(data[0], classifier)  # warm up the session's buffers
    stages = np.zeros(3)
    fast_top1: list[int] = []
    for round_ in range(rounds):
        for blob in data:
            top1, *costs = _fast(blob, classifier)
            stages += costs
            if round_ == 0:
                fast_top1.append(top1)
    exact_top1, exact_s = [], 0.0
    for blob in data:
        top1, cost = _exact(blob, classifier)
        exact_top1.append(top1)
        exact_s += cost
    first = decode_image(data[0])
    per_image_ms = stages / (rounds * len(data)) * 1000
    return SizeCost(
        name=name, photos=len(data), width=first.width, height=first.height,
        mean_kb=sum(len(b) for b in data) / len(data) / 1024,
        decode_ms=float(per_image_ms[0]), preprocess_ms=float(per_image_ms[1]),
        infer_ms=float(per_image_ms[2]), exact_cpu_ms=exact_s / len(data) * 1000,
        correct=sum(a == w for a, w in zip(fast_top1, wanted, strict=True)),
        correct_exact=sum(a == w for a, w in zip(exact_top1, wanted, strict=True)),
        agree=sum(a == b for a, b in zip(fast_top1, exact_top1, strict=True)),
    )
