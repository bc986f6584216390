"""Adapters the contract suites run against. Add an adapter by adding a param and a branch."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from imgrec.ports import Backend, ObjectStore, QueueBroker

STORE_ADAPTERS = ["directory"]
BROKER_ADAPTERS = ["sqlite"]

try:  # the AWS adapters join the same suites once they exist
    from tests.helpers import aws_adapters
except ImportError:  # pragma: no cover - before the AWS backend exists
    aws_adapters = None  # type: ignore[assignment]
else:
    STORE_ADAPTERS += aws_adapters.STORE_ADAPTERS
    BROKER_ADAPTERS += aws_adapters.BROKER_ADAPTERS
    moto = aws_adapters.moto_fixture


@pytest.fixture(params=STORE_ADAPTERS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "directory":
        from imgrec.embedded.dir_store import DirectoryStore

        yield DirectoryStore(tmp_path / "objects")
        return
    assert aws_adapters is not None
    yield from aws_adapters.make_store(request)


@pytest.fixture(params=BROKER_ADAPTERS)
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[QueueBroker]:
    if request.param == "sqlite":
        from imgrec.embedded.sqlite_queue import SqliteBroker

        b = SqliteBroker(tmp_path / "queues.db")
        yield b
        b.close()
        return
    assert aws_adapters is not None
    yield from aws_adapters.make_broker(request)


@pytest.fixture
def queue_name(request: pytest.FixtureRequest) -> str:
    return f"q-{abs(hash(request.node.nodeid)) % 10**8}-{os.getpid()}"


FLEET_ADAPTERS = ["process", "process-spawn", "ec2-moto"]


@pytest.fixture(params=FLEET_ADAPTERS)
def fleet_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A backend whose ``open_fleet`` gives the adapter under test (ec2: on moto)."""
    from imgrec.backend import open_backend
    from imgrec.config import load_settings

    if request.param.startswith("process"):
        start = "spawn" if request.param == "process-spawn" else "fork"
        backend = open_backend(load_settings(state_dir=tmp_path / "state", worker_threads=1,
                                             worker_start=start))
    else:
        from tests.helpers.wheels import stand_in_wheel

        from imgrec.aws.provision import UpOptions, open_stack

        request.getfixturevalue("moto")
        open_stack("t1", None).up(UpOptions(wheel=stand_in_wheel(tmp_path)))
        backend = open_backend(load_settings(backend="aws", stack="t1"))
    yield backend
    backend.close()
