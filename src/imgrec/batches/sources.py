"""What ``imgrec batch`` sends: the image files of a folder, or the entries of an archive.

A folder is walked recursively; files with an image extension count, hidden ones do not. An
archive (zip or tar) is read entry by entry, so a large one never sits in memory whole. Names
are paths relative to the folder (or inside the archive), in sorted order: the same source
lists the same items in the same order, which is what lets an interrupted run resume.
"""

from __future__ import annotations

import tarfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ImgrecError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


class SourceError(ImgrecError):
    """The source cannot be read (missing, not a folder or archive, no images)."""


@dataclass(frozen=True)
class LocalSource:
    """A folder or an archive, and the names of its images."""

    path: Path
    kind: str  # "dir", "zip" or "tar"
    names: tuple[str, ...]

    def read(self, names: Sequence[str]) -> list[tuple[str, bytes]]:
        if self.kind == "dir":
            return [(n, (self.path / n).read_bytes()) for n in names]
        if self.kind == "zip":
            with zipfile.ZipFile(self.path) as zf:
                return [(n, zf.read(n)) for n in names]
        out = []
        with tarfile.open(self.path, "r:*") as tf:
            for n in names:
                stream = tf.extractfile(n)
                if stream is None:
                    raise SourceError(f"{self.path}: {n} is not a file")
                out.append((n, stream.read()))
        return out


def _is_image(name: str) -> bool:
    parts = name.split("/")
    return (name.lower().endswith(IMAGE_SUFFIXES) and parts[0] != "__MACOSX"
            and not any(p.startswith(".") for p in parts))


def open_source(path: Path) -> LocalSource:
    """The images of ``path`` (a folder, a zip or a tar archive)."""
    if path.is_dir():
        names = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
        source = LocalSource(path, "dir", tuple(n for n in names if _is_image(n)))
    elif path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = sorted(i.filename for i in zf.infolist() if not i.is_dir())
        source = LocalSource(path, "zip", tuple(n for n in names if _is_image(n)))
    elif path.is_file() and tarfile.is_tarfile(path):
        with tarfile.open(path, "r:*") as tf:
            names = sorted(m.name for m in tf.getmembers() if m.isfile())
        source = LocalSource(path, "tar", tuple(n for n in names if _is_image(n)))
    elif path.exists():
        raise SourceError(f"{path} is neither a folder nor a zip or tar archive")
    else:
        raise SourceError(f"{path} does not exist")
    if not source.names:
        raise SourceError(f"{path} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    return source
