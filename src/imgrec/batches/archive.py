"""The entries of an uploaded zip or tar archive (tar may be gzip, bzip2 or xz compressed).

Only regular files count: directories, links and devices are skipped, and so are hidden
entries (a path segment starting with ``.``, e.g. ``.DS_Store``) and macOS's ``__MACOSX/``
metadata. Limits hold whatever the archive claims about itself: at most ``max_entries`` files,
each read up to ``max_entry_bytes`` (a larger one becomes an error entry, the rest go on), and
at most ``max_total_bytes`` uncompressed in all (a decompression bomb stops the whole upload).

Example::

    for entry in read_archive(fileobj, limits):
        print(entry.name, len(entry.data) if entry.data is not None else entry.error)
"""

from __future__ import annotations

import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from ..errors import PermanentError


class ArchiveError(PermanentError):
    """The archive as a whole cannot be used: ``status`` and ``code`` for the HTTP answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class ArchiveLimits:
    max_entries: int
    max_entry_bytes: int
    max_total_bytes: int


@dataclass(frozen=True)
class ArchiveEntry:
    """One file of the archive: its bytes, or why it was not read (``error``, ``error_code``)."""

    name: str
    data: bytes | None
    error_code: str | None = None
    error: str | None = None


# Files that start like an image are images: the full test below looks for a zip's end record
# (reading up to 64 KB from the file's end) and tries each tar compression in turn.
_IMAGE_HEADS = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM",
                b"II*\x00", b"MM\x00*")


def _starts_like_an_image(head: bytes) -> bool:
    return head.startswith(_IMAGE_HEADS) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def is_archive(fileobj: IO[bytes]) -> bool:
    """Whether the file looks like a zip or tar archive (the stream is left at its start)."""
    try:
        if _starts_like_an_image(fileobj.read(12)):
            return False
        fileobj.seek(0)
        if zipfile.is_zipfile(fileobj):
            return True
        fileobj.seek(0)
        try:
            with tarfile.open(fileobj=fileobj, mode="r:*"):
                return True
        except (tarfile.TarError, EOFError, OSError):
            return False
    finally:
        fileobj.seek(0)


def read_archive(fileobj: IO[bytes], limits: ArchiveLimits) -> list[ArchiveEntry]:
    """Every regular, non-hidden file of a zip or tar archive, within ``limits``."""
    budget = _Budget(limits)
    try:
        if zipfile.is_zipfile(fileobj):
            fileobj.seek(0)
            return list(_zip_entries(fileobj, budget))
        fileobj.seek(0)
        return list(_tar_entries(fileobj, budget))
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise ArchiveError(400, "bad_archive", f"The archive cannot be read: {exc}") from exc


class _Budget:
    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.entries = 0
        self.total = 0

    def entry(self) -> None:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise ArchiveError(413, "too_many_items", f"The archive has more than "
                               f"{self.limits.max_entries} files; split it into several batches.")

    def read(self, stream: IO[bytes], name: str) -> ArchiveEntry:
        cap = self.limits.max_entry_bytes
        data = stream.read(cap + 1)
        self.total += len(data)
        if self.total > self.limits.max_total_bytes:
            raise ArchiveError(413, "archive_too_large", "The archive unpacks to more than "
                               f"{self.limits.max_total_bytes} bytes; split it into several "
                               "batches.")
        if len(data) > cap:
            return ArchiveEntry(name, None, "file_too_large",
                                f"The file is over the limit of {cap} bytes.")
        if not data:
            return ArchiveEntry(name, None, "empty_file", "The file is empty (0 bytes).")
        return ArchiveEntry(name, data)


def _skipped(name: str) -> bool:
    parts = [p for p in name.split("/") if p]
    return not parts or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)


def _zip_entries(fileobj: IO[bytes], budget: _Budget) -> Iterator[ArchiveEntry]:
    with zipfile.ZipFile(fileobj) as archive:
        for info in archive.infolist():
            if info.is_dir() or _skipped(info.filename):
                continue
            budget.entry()
            if info.flag_bits & 0x1:
                yield ArchiveEntry(info.filename, None, "encrypted_entry",
                                   "The entry is encrypted; send it unencrypted.")
                continue
            with archive.open(info) as stream:
                yield budget.read(stream, info.filename)


def _tar_entries(fileobj: IO[bytes], budget: _Budget) -> Iterator[ArchiveEntry]:
    with tarfile.open(fileobj=fileobj, mode="r:*") as archive:
        for member in archive:
            if not member.isfile() or _skipped(member.name):
                continue
            budget.entry()
            stream = archive.extractfile(member)
            if stream is None:  # pragma: no cover - isfile() members always have data
                continue
            with stream:
                yield budget.read(stream, member.name)
