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
from tests.helpers.aws_faults import (
    DescribeLag,
    Ec2Error,
    FaultProxy,
    QueueDeletedRecently,
    ServiceQuota,
)

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


def _states(moto: Endpoint, ids: list[str]) -> dict[str, str]:
    reservations = moto.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    return {i["InstanceId"]: i["State"]["Name"] for r in reservations for i in r["Instances"]}


def test_a_worker_that_never_boots_is_replaced_with_backoff(
    moto: Endpoint, backend: Backend, tmp_path: Path
) -> None:
    queue = SqliteBroker(tmp_path / "q.db").open("requests")
    queue.send(['{"n": 1}'])
    fleet = backend.open_fleet(3)
    controller = Controller(queue, fleet, PolicySettings(max_workers=1), boot_deadline_s=1.0)
    controller.tick()
    [first] = _stack_instances(moto)
    time.sleep(1.5)
    controller.tick()  # past the deadline: terminated; the replacement waits out a backoff
    assert _states(moto, [first])[first] in ("shutting-down", "terminated")
    assert any("not ready" in p and first in p for p in controller.problems())
    assert len(_stack_instances(moto)) == 1
    time.sleep(1.2)
    controller.tick()
    assert len(_stack_instances(moto)) == 2  # replaced


def test_a_worker_gone_silent_is_terminated(moto: Endpoint, backend: Backend,
                                            tmp_path: Path) -> None:
    queue = SqliteBroker(tmp_path / "q.db").open("requests")
    fleet = backend.open_fleet(3)
    controller = Controller(queue, fleet, PolicySettings(max_workers=2, min_workers=1),
                            silent_after_s=30.0)
    controller.tick()
    [worker] = _stack_instances(moto)
    Heartbeat(backend.store, worker, clock=lambda: time.time() - 60).beat(WorkerState.READY)
    controller.tick()
    assert _states(moto, [worker])[worker] in ("shutting-down", "terminated")
    assert any("no heartbeat" in p for p in controller.problems())


def _web_env(moto: Endpoint) -> dict[str, str]:
    """The IMGREC_* environment the web instance's user data writes."""
    import base64

    ec2 = moto.client("ec2")
    [version] = ec2.describe_launch_template_versions(
        LaunchTemplateName="t1-web", Versions=["$Latest"])["LaunchTemplateVersions"]
    user_data = base64.b64decode(version["LaunchTemplateData"]["UserData"]).decode()
    return dict(line.strip().split("=", 1) for line in user_data.splitlines()
                if line.strip().startswith("IMGREC_"))


@pytest.mark.parametrize(("flags", "want_max", "want_backlog"),
                         [([], "20", None),
                          (["--max-workers", "8", "--set", "target_backlog_per_worker=5"],
                           "8", "5")])
def test_the_web_instance_scales_to_the_stack_cap_not_its_cores(
    moto: Endpoint, wheel: Path, flags: list[str], want_max: str, want_backlog: str | None,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from imgrec.cli import app

    result = CliRunner().invoke(app, ["aws", "up", "--stack", "t1", "--wheel", str(wheel),
                                      "--with-web", "--allow-cidr", "203.0.113.7/32", *flags])
    assert result.exit_code == 0, result.output
    env = _web_env(moto)
    assert env["IMGREC_MAX_WORKERS"] == want_max
    assert env.get("IMGREC_TARGET_BACKLOG_PER_WORKER") == want_backlog
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    assert settings.max_workers == int(want_max)  # on this 2-core machine too
    assert settings.idle_before_drain_s == 120.0 and settings.sync_timeout_s == 300.0


def test_aws_up_refuses_a_setting_the_web_tier_would_refuse(moto: Endpoint, wheel: Path) -> None:
    from typer.testing import CliRunner

    from imgrec.cli import app

    runner = CliRunner()
    bad = runner.invoke(app, ["aws", "up", "--stack", "t1", "--wheel", str(wheel),
                              "--set", "no_such_setting=1"])
    assert bad.exit_code == 2 and "unknown setting(s) no_such_setting" in bad.output
    bad = runner.invoke(app, ["aws", "up", "--stack", "t1", "--wheel", str(wheel),
                              "--min-workers", "30"])
    assert bad.exit_code == 2 and "min_workers (30) is above max_workers (20)" in bad.output


@pytest.mark.parametrize(("quota", "status"), [(16.0, "WARNING"), (64.0, "fits"),
                                               (None, "unchecked")])
def test_aws_up_checks_the_cap_against_the_vcpu_quota(
    proxy: FaultProxy, wheel: Path, quota: float | None, status: str
) -> None:
    if quota is not None:
        proxy.add(ServiceQuota(quota))
    steps: list[tuple[str, str, str]] = []
    open_stack("t1", None, lambda *step: steps.append(step)).up(
        UpOptions(wheel=wheel, instance_type="c7i.large"))
    [shown] = [s for kind, _name, s in steps if kind == "vCPU quota"]
    assert shown.startswith(status), shown
    if status == "WARNING":
        assert "40 vCPUs" in shown and "at most 8 will run" in shown


def test_down_then_up_waits_out_the_queue_name_cooldown(proxy: FaultProxy, wheel: Path) -> None:
    cooldown = proxy.add(QueueDeletedRecently(cooldown_s=3.0))
    steps: list[tuple[str, str, str]] = []
    stack = open_stack("t1", None, lambda *step: steps.append(step))
    stack.cooldown_poll_s = 0.5
    stack.up(UpOptions(wheel=wheel))
    stack.down()
    rows = stack.up(UpOptions(wheel=wheel))
    assert {r.name: r.status for r in rows if r.kind == "queue"} == {
        "t1-requests-dead": "created", "t1-requests": "created", "t1-requests-bulk": "created"}
    assert isinstance(cooldown, QueueDeletedRecently) and cooldown.refused >= 1
    assert any("deleted recently" in status for _kind, _name, status in steps)


def test_buckets_carry_a_random_suffix_kept_with_the_stack(proxy: FaultProxy, wheel: Path) -> None:
    proxy.add(QueueDeletedRecently(cooldown_s=0.0))
    stack = open_stack("t1", None)
    stack.up(UpOptions(wheel=wheel))
    first = stack.names
    assert first.bucket_suffix and first.outputs_bucket.endswith(f"-{first.bucket_suffix}")
    assert open_stack("t1", None).names == first  # found again from the stack itself
    backend = open_backend(load_settings(backend="aws", stack="t1"))
    backend.store.put("results/x.json", b"{}")
    assert proxy.find("s3", "PUTObject")[-1].path.startswith(f"/{first.outputs_bucket}/")
    stack.down()
    again = open_stack("t1", None)
    again.up(UpOptions(wheel=wheel))
    assert again.names.bucket_suffix != first.bucket_suffix  # never reuses a deleted name


def test_every_bucket_call_names_the_expected_owner(proxy: FaultProxy, backend: Backend) -> None:
    backend.store.put("results/x.json", b"{}")
    assert backend.store.get("results/x.json") == b"{}"
    assert list(backend.store.list("results/")) == ["results/x.json"]
    backend.store.delete("results/x.json")
    s3_calls = [c for c in proxy.calls if c.service == "s3"]
    create_bucket = [c for c in s3_calls if c.action == "PUTBucket" and "?" not in c.path]
    list_buckets = [c for c in s3_calls if c.path == "/"]
    unowned = [c for c in s3_calls  # CreateBucket and ListBuckets take no owner
               if c not in create_bucket and c not in list_buckets]
    assert unowned
    account = open_stack("t1", None).names.account
    missing = {(c.method, c.path.split("?")[0]) for c in unowned
               if c.headers.get("x-amz-expected-bucket-owner") != account}
    assert not missing


def test_buckets_expire_what_is_left_behind(moto: Endpoint, backend: Backend) -> None:
    names = open_stack("t1", None).names
    s3 = moto.client("s3")
    rules = {name: {r["Filter"]["Prefix"]: r["Expiration"]["Days"]
                    for r in s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]}
             for name in names.buckets}
    assert rules[names.inputs_bucket] == {"inputs/": 3}  # retention_days, whole days
    assert rules[names.outputs_bucket] == {"results/": 3, "idempotency/": 3, "heartbeats/": 1,
                                           "web-tiers/": 1, "callbacks/": 3,
                                           "dead-letters/": 3, "batches/": 3}
    # not deploy/ nor autoscale/


def test_measured_rate_and_boot_time_outlive_a_restart(backend: Backend, tmp_path: Path) -> None:
    from imgrec.autoscale.memory import EstimateMemory

    memory = EstimateMemory(backend.store, "mobilenet_v2", save_every_s=0)
    assert memory.remember("c7i.large", rate_per_worker=40.0, boot_s=95.0)
    again = EstimateMemory(backend.store, "mobilenet_v2")  # a new web tier, after a restart
    known = again.estimate("c7i.large")
    assert (known.rate_per_worker, known.boot_s) == (40.0, 95.0)
    queue = SqliteBroker(tmp_path / "q.db").open("requests")
    controller = Controller(queue, backend.open_fleet(3), PolicySettings(max_workers=3),
                            memory=again)
    obs, _stats = controller.observe()
    assert (obs.rate_per_worker, obs.boot_s) == (40.0, 95.0)  # from the first tick on


def test_the_web_instance_waits_about_two_minutes_for_its_instance_profile(
    proxy: FaultProxy, wheel: Path
) -> None:
    from imgrec.aws.provision import PROFILE_RETRY_WAITS_S

    proxy.add(Ec2Error("RunInstances", "InvalidParameterValue",
                       "Value (t1-web) for parameter iamInstanceProfile.name is invalid. "
                       "Invalid IAM Instance Profile name", times=len(PROFILE_RETRY_WAITS_S)))
    waited: list[float] = []
    stack = open_stack("t1", None)
    stack.sleep = waited.append
    rows = stack.up(UpOptions(wheel=wheel, with_web=True, allow_cidr="203.0.113.7/32"))
    assert [r.status for r in rows if r.kind == "instance"] == ["created"]
    assert waited == list(PROFILE_RETRY_WAITS_S) and 100 <= sum(waited) <= 150


def test_no_default_vpc_says_what_to_do(proxy: FaultProxy, wheel: Path) -> None:
    from imgrec.errors import ConfigError

    proxy.add(Ec2Error("CreateSecurityGroup", "VPCIdNotSpecified",
                       "No default VPC for this user"))
    with pytest.raises(ConfigError, match="pass --vpc VPC_ID --subnet SUBNET_ID"):
        open_stack("t1", None).up(UpOptions(wheel=wheel))


def test_status_estimates_the_hourly_cost_with_requests(
    moto: Endpoint, backend: Backend
) -> None:
    backend.open_fleet(3).launch(2)
    [cost] = [r for r in open_stack("t1", None).status() if r.kind == "cost"]
    assert cost.status.startswith("$") and float(cost.status.strip("$+")) > 2 * 0.089
    assert "2 x c7i.large" in cost.detail and "S3 PUTs" in cost.detail
    assert "S3 GETs" in cost.detail and "SQS requests" in cost.detail


def test_aws_up_in_a_given_subnet(moto: Endpoint, wheel: Path) -> None:
    ec2 = moto.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    open_stack("t1", None).up(UpOptions(wheel=wheel, subnet_id=subnet))
    [group] = ec2.describe_security_groups(GroupNames=["t1-worker"])["SecurityGroups"]
    assert group["VpcId"] == vpc
    [version] = ec2.describe_launch_template_versions(
        LaunchTemplateName="t1-worker", Versions=["$Latest"])["LaunchTemplateVersions"]
    [interface] = version["LaunchTemplateData"]["NetworkInterfaces"]
    assert interface["SubnetId"] == subnet and interface["Groups"] == [group["GroupId"]]
