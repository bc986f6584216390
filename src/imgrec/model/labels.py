"""Class-name lists: the bundled ImageNet-1k names and user label files (one name a line)."""

from __future__ import annotations

import functools
from pathlib import Path

from imgrec.errors import ModelError

FILES_DIR = Path(__file__).resolve().parent / "files"
IMAGENET_LABELS_FILE = FILES_DIR / "imagenet_labels.txt"


def load_labels(path: Path) -> tuple[str, ...]:
    """Read a label file: one class name per line, index = line number; blank tail ignored."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read label file {path}: {exc}") from exc
    labels = tuple(line.strip() for line in text.rstrip("\r\n").splitlines())
    if not labels or labels == ("",):
        raise ModelError(f"label file {path} is empty; it needs one class name per line")
    return labels


@functools.cache
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in torchvision's order and spelling."""
    return load_labels(IMAGENET_LABELS_FILE)
