"""Where the test data lives: the repo root and the shared dev photos (never copied in)."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_FILES = REPO_ROOT / "src" / "imgrec" / "model" / "files"


def dev_images_dir() -> Path:
    """``$IMGREC_DEV_IMAGES`` or ``<repo>/../shared/images/dev``."""
    override = os.environ.get("IMGREC_DEV_IMAGES")
    return Path(override) if override else REPO_ROOT.parent / "shared" / "images" / "dev"


DEV_IMAGES = dev_images_dir()


@dataclass(frozen=True)
class DevImage:
    """One dev photo and its ImageNet-1k ground truth."""

    path: Path
    class_index: int
    name: str


def dev_images() -> list[DevImage]:
    """The dev photos listed in ``labels.csv`` (file, wnid, class_index, name)."""
    with open(DEV_IMAGES / "labels.csv", newline="", encoding="utf-8") as fh:
        return [
            DevImage(DEV_IMAGES / row["file"], int(row["class_index"]), row["name"])
            for row in csv.DictReader(fh)
        ]
