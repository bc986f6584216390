"""A lean multipart/form-data reader for one upload: the file parts' bytes kept in memory.

Starlette's ``request.form()`` writes every file part to a ``SpooledTemporaryFile`` (and awaits
a write per chunk), builds a ``FormData`` and closes the files; under load that was about a
sixth of the web tier's CPU per request. Here the same python-multipart parser is fed from the
request stream and the file data of the wanted fields is joined once. The rules and error
messages are Starlette's (limits on files and fields, 1 MB per plain field, a required
``name``), so clients see the same answers.

Example::

    form = await read_form(request.headers["content-type"], request.stream(), wanted=("file",),
                           max_file_bytes=10 << 20, max_files=8, max_fields=32)
    form.files  # [FilePart(name, filename, chunks), ...]; data only for the wanted fields
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

_MAX_PART_BYTES = 1024 * 1024


class FormError(Exception):
    """The body is not a readable multipart form; the message says why."""


@dataclass
class FilePart:
    name: str
    filename: str
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


@dataclass
class Form:
    files: list[FilePart] = field(default_factory=list)


class _Collector:
    """python-multipart callbacks that keep file parts (capped) and count plain fields."""

    def __init__(self, charset: str, wanted: tuple[str, ...], max_file_bytes: int,
                 max_files: int, max_fields: int) -> None:
        self.charset = charset
        self.wanted = wanted
        self.keep_bytes = max_file_bytes + 1  # one byte more tells "over the limit"
        self.max_files = max_files
        self.max_fields = max_fields
        self.form = Form()
        self._fields = 0
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._file: FilePart | None = None
        self._keep = False
        self._plain_bytes = 0

    def callbacks(self) -> dict[str, object]:
        return {"on_part_begin": self.on_part_begin, "on_part_data": self.on_part_data,
                "on_header_field": self.on_header_field, "on_header_value": self.on_header_value,
                "on_header_end": self.on_header_end,
                "on_headers_finished": self.on_headers_finished}

    def on_part_begin(self) -> None:
        self._disposition = b""
        self._file = None
        self._plain_bytes = 0

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        try:
            name = _decode(options[b"name"], self.charset)
        except KeyError:
            raise FormError('The Content-Disposition header field "name" must be provided.') \
                from None
        if b"filename" in options:
            if len(self.form.files) >= self.max_files:
                raise FormError(f"Too many files. Maximum number of files is {self.max_files}.")
            self._file = FilePart(name, _decode(options[b"filename"], self.charset))
            self._keep = name in self.wanted
            self.form.files.append(self._file)
        else:
            self._fields += 1
            if self._fields > self.max_fields:
                raise FormError(f"Too many fields. Maximum number of fields is {self.max_fields}.")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._file
        if part is None:
            self._plain_bytes += end - start
            if self._plain_bytes > _MAX_PART_BYTES:
                raise FormError(f"Part exceeded maximum size of {_MAX_PART_BYTES // 1024}KB.")
            return
        if self._keep and part.size < self.keep_bytes:
            chunk = data[start:min(end, start + self.keep_bytes - part.size)]
            part.chunks.append(chunk)
            part.size += len(chunk)


async def read_form(content_type: str, stream: AsyncIterator[bytes], *, wanted: tuple[str, ...],
                    max_file_bytes: int, max_files: int, max_fields: int) -> Form:
    """Parse the multipart body from ``stream``; ``FormError`` if it cannot be read."""
    _, params = parse_options_header(content_type)
    charset = params.get(b"charset", b"utf-8").decode("latin-1")
    try:
        charset = codecs.lookup(charset).name
    except LookupError:
        charset = "latin-1"
    boundary = params.get(b"boundary")
    if boundary is None:
        raise FormError("Missing boundary in multipart.")
    collector = _Collector(charset, wanted, max_file_bytes, max_files, max_fields)
    parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in stream:
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise FormError("Invalid multipart data.") from exc
    return collector.form


def _decode(raw: bytes, charset: str) -> str:
    try:
        return raw.decode(charset)
    except UnicodeDecodeError:
        return raw.decode("latin-1")
