"""AWS as it really behaves, reproduced by the fault proxy in front of moto (issue 12).

Each test makes moto lag, refuse or answer as AWS documents, then checks that the service
copes: the cap holds while DescribeInstances lags, refused launches back off, a tick reads
only the heartbeats of live workers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers.aws_adapters import Endpoint
from tests.helpers.aws_faults import DescribeLag, Ec2Error, FaultProxy

from imgrec import keys
from imgrec.autoscale.controller import Controller
from imgrec.autoscale.policy import PolicySettings
from imgrec.aws.ec2_fleet import Ec2Fleet
from imgrec.aws.provision import UpOptions, open_stack
from imgrec.backend import open_backend
from imgrec.config import load_settings
from imgrec.embedded.sqlite_queue import SqliteBroker
from imgrec.ports import Backend, WorkerState
from imgrec.worker.heartbeat import Heartbeat

pytestmark = pytest.mark.aws


@pytest.fixture
def proxy(moto: Endpoint, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    with FaultProxy(moto.url) as running:
        monkeypatch.setenv("AWS_ENDPOINT_URL", running.url)
        yield running


@pytest.fixture
def backend(proxy: FaultProxy, wheel: Path) -> Backend:
    open_stack("t1", None).up(UpOptions(wheel=wheel))
    return open_backend(load_settings(backend="aws", stack="t1"))


def _stack_instances(moto: Endpoint) -> list[str]:
    pages = moto.client("ec2").get_paginator("describe_instances").paginate(
        Filters=[{"Name": "tag:imgrec:stack", "Values": ["t1"]}])
    return [i["InstanceId"] for page in pages for r in page["Reservations"]
            for i in r["Instances"]]


def test_the_cap_holds_while_describe_instances_lags(
    moto: Endpoint, proxy: FaultProxy, backend: Backend, tmp_path: Path
) -> None:
    proxy.add(DescribeLag(seconds=2.0))
    queue = SqliteBroker(tmp_path / "q.db").open("requests")
    queue.send([f'{{"n": {i}}}' for i in range(400)])
    fleet = backend.open_fleet(20)
    controller = Controller(queue, fleet, PolicySettings(max_workers=20), tick_s=0.5)
    for _ in range(10):
        controller.tick()
        time.sleep(0.5)
    assert len(_stack_instances(moto)) == 20
    assert proxy.count("ec2", "RunInstances") >= 1


def test_launch_takes_what_the_account_allows(proxy: FaultProxy, backend: Backend) -> None:
    fleet = backend.open_fleet(5)
    assert len(fleet.launch(3)) == 3
    [call] = proxy.find("ec2", "RunInstances")
    assert (call.params()["MinCount"], call.params()["MaxCount"]) == ("1", "3")


@pytest.mark.parametrize("code", ["VcpuLimitExceeded", "InsufficientInstanceCapacity",
                                  "RequestLimitExceeded"])
def test_a_refused_launch_backs_off_and_shows_why(
    proxy: FaultProxy, backend: Backend, code: str
) -> None:
    refusal = proxy.add(Ec2Error("RunInstances", code, f"{code} (from the fault proxy)"))
    now = [1000.0]
    fleet = backend.open_fleet(5)
    assert isinstance(fleet, Ec2Fleet)
    fleet.monotonic = lambda: now[0]
    assert fleet.launch(2) == []
    problem = fleet.health().launch_problem
    assert problem is not None and code in problem
    calls = proxy.count("ec2", "RunInstances")  # throttling: botocore's own retries too
    for _ in range(5):  # every tick asks again: no call reaches EC2 during the backoff
        assert fleet.launch(2) == []
    assert proxy.count("ec2", "RunInstances") == calls
    now[0] += 6
    assert fleet.launch(2) == []  # tried again after the backoff, refused again: longer wait
    assert proxy.count("ec2", "RunInstances") > calls
    calls = proxy.count("ec2", "RunInstances")
    now[0] += 6
    assert fleet.launch(2) == []
    assert proxy.count("ec2", "RunInstances") == calls
    proxy.faults.remove(refusal)
    now[0] += 11
    assert len(fleet.launch(2)) == 2
    assert fleet.health().launch_problem is None


def test_a_tick_reads_only_the_heartbeats_of_live_workers(
    proxy: FaultProxy, backend: Backend
) -> None:
    for i in range(200):  # history: workers long gone
        Heartbeat(backend.store, f"i-{i:017x}").beat(WorkerState.READY)
    fleet = backend.open_fleet(5)
    ready, booting = fleet.launch(2)
    Heartbeat(backend.store, ready).beat(WorkerState.READY)
    proxy.calls.clear()
    states = {w.worker_id: w.state for w in fleet.list()}
    assert states == {ready: WorkerState.READY, booting: WorkerState.STARTING}
    s3_calls = [c for c in proxy.calls if c.service == "s3"]
    assert len(s3_calls) <= 2 and all(c.action == "GETObject" for c in s3_calls)


def test_a_late_stopped_beat_does_not_bring_a_terminated_worker_back(
    proxy: FaultProxy, backend: Backend
) -> None:
    fleet = backend.open_fleet(5)
    [worker] = fleet.launch(1)
    beat = Heartbeat(backend.store, worker)
    beat.beat(WorkerState.READY)
    fleet.drain([worker])
    assert not backend.store.exists(keys.heartbeat_key(worker))
    beat.beat(WorkerState.STOPPED)  # the dying worker's last word, after the termination
    assert worker not in {w.worker_id for w in fleet.list()
                          if w.state != WorkerState.DRAINING}
    assert len(fleet.launch(5)) == 5
