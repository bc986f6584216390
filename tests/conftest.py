from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _dev_images_dir() -> Path:
    override = os.environ.get("IMGREC_DEV_IMAGES")
    return Path(override) if override else REPO_ROOT.parent / "shared" / "images" / "dev"


@dataclass(frozen=True)
class DevPhoto:
    path: Path
    class_index: int
    name: str


@pytest.fixture(scope="session")
def dev_images() -> Path:
    path = _dev_images_dir()
    if not (path / "labels.csv").is_file():
        pytest.fail(f"dev photos not found at {path} (set IMGREC_DEV_IMAGES)")
    return path


@pytest.fixture(scope="session")
def dev_photos(dev_images: Path) -> list[DevPhoto]:
    with open(dev_images / "labels.csv", newline="") as fh:
        return [
            DevPhoto(dev_images / row["file"], int(row["class_index"]), row["name"])
            for row in csv.DictReader(fh)
        ]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("IMGREC_") and key not in ("IMGREC_DEV_IMAGES", "IMGREC_LOG_LEVEL"):
            monkeypatch.delenv(key)
