"""Fixtures of the AWS integration tests: moto's server with the environment pointing at it."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.helpers import aws_adapters

moto = aws_adapters.moto_fixture


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    """A stand-in wheel file (building the real one takes a while; the instances never run)."""
    path = tmp_path / "imgrec-0.1.0-py3-none-any.whl"
    path.write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    return path
