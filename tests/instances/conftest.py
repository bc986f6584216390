"""Fixtures of the simulated-instance tests: the rootfs (built once, cached), moto, the harness.

These tests need root and systemd-nspawn; where nspawn cannot run they skip with its reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers import aws_adapters
from tests.helpers.aws_adapters import Endpoint

from . import rootfs
from .harness import InstanceHarness

moto = aws_adapters.moto_fixture

# (what, seconds) measured by the tests, printed at the end of the run.
TIMINGS: list[tuple[str, float]] = []


@pytest.fixture(scope="session")
def instance_rootfs() -> Path:
    """The unpacked rootfs every simulated instance overlays (built first if needed)."""
    reason = rootfs.cannot_boot_reason()
    if reason:
        pytest.skip(reason)
    base = rootfs.unpacked(rootfs.build_tarball())
    failure = rootfs.trial_run(base)
    if failure:
        pytest.skip(f"systemd-nspawn cannot run here: {failure}")
    return base


@pytest.fixture
def harness(moto: Endpoint, instance_rootfs: Path, tmp_path: Path) -> Iterator[InstanceHarness]:
    """Every instance launched in moto during the test boots as a container."""
    with InstanceHarness(moto.url, tmp_path / "instances", instance_rootfs) as running:
        yield running


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        terminalreporter.section("simulated instances: timings")
        for what, seconds in TIMINGS:
            terminalreporter.write_line(f"{what}: {seconds:.1f} s")
