"""The lean multipart reader: file bytes capped at the limit + 1, Starlette's rules and messages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from imgrec.web.formstream import Form, FormError, read_form

BOUNDARY = "b0undary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def _part(name: str, data: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return (f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n").encode() + data + b"\r\n"


def _body(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


async def _chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i:i + size]


def _read(body: bytes, *, content_type: str = CONTENT_TYPE, chunk: int = 7,
          max_file_bytes: int = 1000, max_files: int = 8, max_fields: int = 32) -> Form:
    return asyncio.run(read_form(content_type, _chunks(body, chunk), wanted=("file",),
                                 max_file_bytes=max_file_bytes, max_files=max_files,
                                 max_fields=max_fields))


def test_keeps_the_wanted_file_across_chunk_boundaries() -> None:
    data = bytes(range(256)) * 3
    form = _read(_body(_part("note", b"hello"), _part("file", data, "cat.jpg")), chunk=5)
    assert [(p.name, p.filename, p.data) for p in form.files] == [("file", "cat.jpg", data)]


def test_other_files_are_listed_without_their_bytes() -> None:
    form = _read(_body(_part("image", b"x" * 50, "a.jpg"), _part("file", b"yy", "b.jpg")))
    assert [(p.name, p.data) for p in form.files] == [("image", b""), ("file", b"yy")]


def test_a_file_over_the_limit_keeps_one_byte_more() -> None:
    form = _read(_body(_part("file", b"z" * 5000, "big.jpg")), max_file_bytes=1000, chunk=300)
    assert len(form.files[0].data) == 1001


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (_body(_part("file", b"1", "a"), _part("file", b"2", "b")), CONTENT_TYPE,
         "Too many files. Maximum number of files is 1."),
        (_body(_part("f1", b"1"), _part("f2", b"2")), CONTENT_TYPE,
         "Too many fields. Maximum number of fields is 1."),
        (_body(_part("f1", b"x" * (1024 * 1024 + 1))), CONTENT_TYPE,
         "Part exceeded maximum size of 1024KB."),
        (f"--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nx\r\n--{BOUNDARY}--\r\n".encode(),
         CONTENT_TYPE, 'The Content-Disposition header field "name" must be provided.'),
        (b"whatever", "multipart/form-data", "Missing boundary in multipart."),
        (b"--nope\r\ngarbage", CONTENT_TYPE, "Invalid multipart data."),
    ],
    ids=["files", "fields", "plain-part-size", "no-name", "no-boundary", "garbage"],
)
def test_unreadable_forms_say_why(body: bytes, content_type: str, message: str) -> None:
    with pytest.raises(FormError) as caught:
        _read(body, content_type=content_type, max_files=1, max_fields=1, chunk=4096)
    assert str(caught.value) == message
