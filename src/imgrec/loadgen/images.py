"""The images a run uploads: every image file of a folder, read into memory once."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path

from ..errors import ImgrecError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"})


class ImagesError(ImgrecError):
    """The image folder is missing, unreadable or holds no images."""


@dataclass(frozen=True, slots=True)
class ImageFile:
    name: str
    data: bytes
    content_type: str


def load_images(folder: Path) -> list[ImageFile]:
    """Image files directly in ``folder`` (by suffix, any case), sorted by name."""
    if not folder.is_dir():
        raise ImagesError(f"image folder {folder} does not exist or is not a directory")
    paths = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ImagesError(
            f"no images in {folder} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    images = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ImagesError(f"cannot read {path}: {exc.strerror or exc}") from exc
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        images.append(ImageFile(path.name, data, kind))
    return images
