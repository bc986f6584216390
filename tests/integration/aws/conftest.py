"""Fixtures of the AWS integration tests: moto's server with the environment pointing at it."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.helpers import aws_adapters
from tests.helpers.wheels import stand_in_wheel

moto = aws_adapters.moto_fixture


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    """A stand-in wheel file (building the real one takes a while; the instances never run)."""
    return stand_in_wheel(tmp_path)
