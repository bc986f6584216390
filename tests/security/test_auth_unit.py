"""The API-key check's pure parts: where a key is read from, how it is compared."""

from __future__ import annotations

import base64

import pytest

from imgrec.web.auth import is_open, key_matches, presented_key


def _basic(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({b"x-api-key": b"k1"}, "k1"),
        ({b"x-api-key": b"  k1 "}, "k1"),
        ({b"authorization": b"Bearer k2"}, "k2"),
        ({b"authorization": b"bearer   k2"}, "k2"),
        ({b"authorization": _basic("anyone", "k3")}, "k3"),
        ({b"authorization": _basic("anyone", "with:colon")}, "with:colon"),
        ({b"authorization": b"Basic !!!not-base64"}, ""),
        ({b"authorization": b"Digest abc"}, None),
        ({b"x-api-key": b"k1", b"authorization": b"Bearer k2"}, "k1"),
    ],
)
def test_the_key_is_read_from_x_api_key_or_authorization(
    headers: dict[bytes, bytes], expected: str | None
) -> None:
    assert presented_key(headers) == expected


@pytest.mark.parametrize(
    ("presented", "ok"),
    [("s3cret", True), ("s3cre", False), ("s3cret2", False), ("", False), (None, False),
     ("S3CRET", False), ("sécret", False)],
)
def test_keys_must_match_exactly(presented: str | None, ok: bool) -> None:
    assert key_matches(presented, "s3cret") is ok


@pytest.mark.parametrize(
    ("path", "open_"),
    [("/healthz", True), ("/static/app.css", True), ("/static/js/main.js", True),
     ("/", False), ("/api/v1/classify", False), ("/api/v1/jobs/abc", False),
     ("/metrics", False), ("/docs", False), ("/openapi.json", False), ("/staticx", False),
     ("/healthz/../api/v1/jobs", False)],
)
def test_only_health_and_static_assets_are_open(path: str, open_: bool) -> None:
    assert is_open(path) is open_
