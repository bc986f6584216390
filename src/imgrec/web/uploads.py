"""Read one uploaded image from a multipart form and check it before anything is stored."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

from starlette.requests import Request

from ..errors import ImageError
from ..model.decode import probe_image
from .errors import ApiError
from .formstream import FormError, read_form

COURSE_FIELDS = ("myfile", "inputFile")
API_FIELDS = ("file", *COURSE_FIELDS)
_MAX_NAME_CHARS = 255


@dataclass(frozen=True)
class Upload:
    """An accepted upload: its bytes, the client's file name (display only) and its format."""

    data: bytes
    filename: str
    image_format: str

    @property
    def stem(self) -> str:
        return PurePath(self.filename).stem if self.filename else "upload"


async def read_upload(
    request: Request, fields: tuple[str, ...], *, max_bytes: int, max_pixels: int
) -> Upload:
    """The single image in one of ``fields``; an ``ApiError`` saying what is wrong otherwise."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(
            400, "missing_file",
            f"Send the image as multipart/form-data in the field {_names(fields)}.",
        )
    try:
        form = await read_form(content_type, request.stream(), wanted=fields,
                               max_file_bytes=max_bytes, max_files=8, max_fields=32)
    except FormError as exc:
        raise ApiError(400, "malformed_form", f"The multipart form cannot be read: {exc}") from exc
    chosen = [part for part in form.files if part.name in fields]
    if not chosen:
        names = sorted({part.name for part in form.files})
        found = f" (found: {', '.join(names)})" if names else ""
        raise ApiError(400, "missing_file", f"No file in the field {_names(fields)}{found}.")
    if len(chosen) > 1:
        raise ApiError(
            400, "too_many_files", "Send exactly one file per request; this one has "
            f"{len(chosen)}. Use several requests (or /api/v1/jobs) for several images."
        )
    upload = chosen[0]
    data = upload.data
    if len(data) > max_bytes:
        raise ApiError(413, "file_too_large",
                       f"The file is over the limit of {max_bytes} bytes.", limit_bytes=max_bytes)
    if not data:
        raise ApiError(400, "empty_file", "The file is empty (0 bytes).")
    try:
        image_format, _w, _h = probe_image(data, max_pixels=max_pixels)
    except ImageError as exc:
        status = 415 if exc.code == "not_an_image" else 422
        raise ApiError(status, exc.code, exc.message) from exc
    filename = (upload.filename or "upload")[-_MAX_NAME_CHARS:]
    return Upload(data=data, filename=filename, image_format=image_format)


def _names(fields: tuple[str, ...]) -> str:
    return " or ".join(f"'{f}'" for f in fields)
