"""Fixtures of the AWS integration tests: moto's server with the environment pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers import aws_adapters
from tests.helpers.aws_adapters import Endpoint


@pytest.fixture
def moto(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
         tmp_path: Path) -> Iterator[Endpoint]:
    """moto's server, fresh for this test, with boto3's standard chain pointed at it."""
    endpoint = aws_adapters.moto_endpoint(request)
    aws_adapters.reset_moto(endpoint)
    for key, value in aws_adapters.moto_env(endpoint, tmp_path).items():
        monkeypatch.setenv(key, value)
    yield endpoint
    aws_adapters.reset_moto(endpoint)


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    """A stand-in wheel file (building the real one takes a while; the instances never run)."""
    path = tmp_path / "imgrec-0.1.0-py3-none-any.whl"
    path.write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    return path
