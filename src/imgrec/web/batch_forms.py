"""Read a batch upload: several image files, and/or zip or tar archives, from a multipart form.

Every file field counts (``file`` or ``files`` in the documentation; any name works). A file
that is a zip or tar archive is unpacked into its entries; any other file is one item. The
optional text fields are ``part`` (a name for this submission, to resend it safely) and
``source`` (``s3://bucket/prefix``, on the AWS backend).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from ..batches.archive import ArchiveError, ArchiveLimits, is_archive, read_archive
from ..batches.submit import NewItem
from .errors import ApiError

FILE_FIELDS = ("file", "files")
_MAX_NAME_CHARS = 255


@dataclass
class BatchForm:
    items: list[NewItem] = field(default_factory=list)
    part: str | None = None
    source: str | None = None


async def read_batch_form(request: Request, *, max_items: int, max_file_bytes: int,
                          max_total_bytes: int) -> BatchForm:
    """The items, ``part`` and ``source`` of a batch upload; no body at all is an empty form."""
    content_type = request.headers.get("content-type", "")
    if not content_type:
        return BatchForm()
    if not content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        raise ApiError(400, "malformed_form", "Send the images as multipart/form-data, one or "
                       "more file fields (or one zip/tar archive).")
    try:
        form = await request.form(max_files=max_items + 1, max_fields=16)
    except MultiPartException as exc:
        raise ApiError(400, "malformed_form", f"The multipart form cannot be read: {exc}") from exc
    out = BatchForm()
    limits = ArchiveLimits(max_entries=max_items, max_entry_bytes=max_file_bytes,
                           max_total_bytes=max_total_bytes)
    try:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                out.items.extend(await _items(value, limits))
            elif key == "part":
                out.part = value
            elif key == "source":
                out.source = value
            if len(out.items) > max_items:
                raise ApiError(413, "too_many_items", f"A batch upload may hold at most "
                               f"{max_items} items; send several.", limit_items=max_items)
    finally:
        await form.close()
    return out


async def _items(upload: UploadFile, limits: ArchiveLimits) -> list[NewItem]:
    name = _name(upload.filename or "upload")
    if is_archive(upload.file):
        try:
            entries = read_archive(upload.file, limits)
        except ArchiveError as exc:
            raise ApiError(exc.status, exc.code, f"{name}: {exc.message}") from exc
        if not entries:
            raise ApiError(400, "empty_archive", f"{name}: the archive holds no files (hidden "
                           "files and directories do not count).")
        return [NewItem(_name(e.name), e.data, e.error_code, e.error) for e in entries]
    data = await upload.read(limits.max_entry_bytes + 1)
    if len(data) > limits.max_entry_bytes:
        return [NewItem(name, None, "file_too_large",
                        f"The file is over the limit of {limits.max_entry_bytes} bytes.")]
    if not data:
        return [NewItem(name, None, "empty_file", "The file is empty (0 bytes).")]
    return [NewItem(name, data)]


def _name(raw: str) -> str:
    # Display only (never a key): keep the path inside the archive, without leading slashes.
    return str(PurePosixPath("/", raw).relative_to("/"))[-_MAX_NAME_CHARS:] or "upload"
