"""Reading uploaded archives: regular files only, hidden ones skipped, limits enforced."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

from imgrec.batches.archive import ArchiveError, ArchiveLimits, is_archive, read_archive

LIMITS = ArchiveLimits(max_entries=5, max_entry_bytes=100, max_total_bytes=400)


def _zip(files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("photos/", b"")
        for name, data in files.items():
            zf.writestr(name, data)
    buf.seek(0)
    return buf


def _tar(files: dict[str, bytes], mode: str = "w:gz") -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:  # type: ignore[call-overload]
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("photos/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tf.addfile(link)
    buf.seek(0)
    return buf


FILES = {"photos/a.jpg": b"a" * 10, "photos/.DS_Store": b"x", "__MACOSX/photos/._a.jpg": b"m",
         "photos/big.jpg": b"b" * 101, "photos/empty.jpg": b""}


@pytest.mark.parametrize("make", [_zip, _tar, lambda f: _tar(f, "w")])
def test_regular_files_are_read_and_the_rest_skipped_or_flagged(make: object) -> None:
    archive = make(FILES)  # type: ignore[operator]
    assert is_archive(archive)
    entries = {e.name: e for e in read_archive(archive, LIMITS)}
    assert set(entries) == {"photos/a.jpg", "photos/big.jpg", "photos/empty.jpg"}
    assert entries["photos/a.jpg"].data == b"a" * 10
    assert entries["photos/big.jpg"].error_code == "file_too_large"
    assert entries["photos/empty.jpg"].error_code == "empty_file"


def test_too_many_entries_is_refused_as_a_whole() -> None:
    archive = _zip({f"{i}.jpg": b"x" for i in range(6)})
    with pytest.raises(ArchiveError) as info:
        read_archive(archive, LIMITS)
    assert (info.value.status, info.value.code) == (413, "too_many_items")


def test_a_bomb_stops_at_the_total_budget() -> None:
    archive = _zip({f"{i}.jpg": b"\0" * 100 for i in range(5)})  # 500 bytes unpacked
    with pytest.raises(ArchiveError) as info:
        read_archive(archive, LIMITS)
    assert (info.value.status, info.value.code) == (413, "archive_too_large")


def test_not_an_archive_and_a_corrupt_one() -> None:
    assert not is_archive(io.BytesIO(b"\xff\xd8\xff not an archive"))
    corrupt = _zip({"a.jpg": b"a" * 50}).getvalue()
    broken = io.BytesIO(corrupt[:30] + b"\0" * 20 + corrupt[50:])
    with pytest.raises(ArchiveError) as info:
        read_archive(broken, LIMITS)
    assert info.value.status == 400 and info.value.code == "bad_archive"


class _CountingReads(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data


@pytest.mark.parametrize("head", [b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n", b"GIF89a",
                                  b"RIFF\0\0\0\0WEBP"])
def test_an_image_is_told_from_an_archive_by_its_first_bytes(head: bytes) -> None:
    # A batch upload's every file goes through is_archive: looking for a zip's end record
    # and trying every tar compression cost more than the rest of taking the image in.
    photo = _CountingReads(head + bytes(200_000))
    assert not is_archive(photo)
    assert photo.bytes_read <= 512
    assert photo.tell() == 0


def test_an_archive_that_starts_like_nothing_known_is_still_found() -> None:
    assert is_archive(_tar({"a.jpg": b"a"}, "w"))
    assert is_archive(_tar({"a.jpg": b"a"}, "w:bz2"))
    assert is_archive(_tar({"a.jpg": b"a"}, "w:xz"))
    assert is_archive(io.BytesIO(b"junk before " + _zip({"a.jpg": b"a"}).getvalue()))
