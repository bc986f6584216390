"""Stack names and IAM policy documents (pure)."""

from __future__ import annotations

import pytest

from imgrec.aws import iam
from imgrec.aws.ec2_fleet import worker_state
from imgrec.aws.images import ami_parameter
from imgrec.aws.naming import StackNames, validate_stack
from imgrec.aws.sqs_queue import queue_attributes, wait_seconds
from imgrec.errors import ConfigError
from imgrec.ports import WorkerState
from imgrec.worker.heartbeat import HeartbeatRecord

NAMES = StackNames("demo", "123456789012", "eu-west-1")


def test_one_naming_scheme() -> None:
    assert NAMES.request_queue == "demo-requests"
    assert NAMES.dead_letter_queue == "demo-requests-dead"
    assert NAMES.bulk_queue == "demo-requests-bulk"
    assert NAMES.queue("replies-ab12") == "demo-replies-ab12"
    assert NAMES.inputs_bucket == "demo-inputs-123456789012-eu-west-1"
    assert NAMES.role("worker") == NAMES.launch_template("worker") == "demo-worker"


@pytest.mark.parametrize("bad", ["", "Demo", "1abc", "a_b", "a--b", "ab-", "a" * 21, "a.b"])
def test_bad_stack_names_are_rejected(bad: str) -> None:
    with pytest.raises(ConfigError, match="invalid stack name"):
        validate_stack(bad)


def test_worker_policy_names_only_the_stacks_buckets_and_queues() -> None:
    policy = iam.worker_policy(NAMES)
    for resource in iam.policy_resources(policy):
        assert ("demo-inputs-123456789012-eu-west-1" in resource
                or "demo-outputs-123456789012-eu-west-1" in resource
                or resource.endswith((":demo-requests", ":demo-requests-bulk",
                                      ":demo-requests-dead", ":demo-replies_*")))
    assert NAMES.queue_arn(NAMES.bulk_queue) in iam.policy_resources(policy)
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert not any(a.endswith("*") for a in actions)
    assert "sqs:CreateQueue" not in actions and "s3:DeleteObject" not in actions


def test_web_policy_limits_ec2_to_the_stack() -> None:
    policy = iam.web_policy(NAMES, iam.WorkerLaunch("lt-1", "c7i.large", "ami-1", "sg-1"))
    for statement in policy["Statement"]:
        if statement["Resource"] == ["*"]:
            assert "Condition" in statement or all(
                a.startswith("ec2:Describe") for a in statement["Action"])  # cannot be scoped


@pytest.mark.parametrize(("wait", "seconds"), [(0, 0), (0.004, 0), (0.5, 1), (1.0, 1),
                                                (2.4, 2), (60, 20)])
def test_sqs_waits_are_whole_seconds_up_to_20(wait: float, seconds: int) -> None:
    assert wait_seconds(wait) == seconds


def test_queue_attributes_cap_messages_at_1024_bytes_and_redrive() -> None:
    attrs = queue_attributes(visibility_s=30, dead_letter_arn="arn:dlq", max_receives=4)
    assert attrs["MaximumMessageSize"] == "1024"
    assert '"maxReceiveCount": "4"' in attrs["RedrivePolicy"]


@pytest.mark.parametrize(("instance_type", "arch"), [("c7i.large", "amd64"),
                                                      ("t4g.small", "arm64"),
                                                      ("c6gn.large", "arm64"),
                                                      ("g5.xlarge", "amd64")])
def test_default_ami_is_debian_12_for_the_cpu(instance_type: str, arch: str) -> None:
    assert ami_parameter(instance_type) == f"/aws/service/debian/release/12/latest/{arch}"


def _beat(state: WorkerState) -> HeartbeatRecord:
    return HeartbeatRecord("i-1", state, 1.0, 2.0, None, 0, 1, "h")


@pytest.mark.parametrize(("ec2", "beat", "state"), [
    ("pending", None, WorkerState.STARTING),
    ("running", None, WorkerState.STARTING),
    ("running", WorkerState.READY, WorkerState.READY),
    ("running", WorkerState.BUSY, WorkerState.BUSY),
    ("running", WorkerState.STOPPED, WorkerState.DRAINING),
    ("shutting-down", WorkerState.READY, WorkerState.DRAINING),
])
def test_worker_state_from_instance_and_heartbeat(
    ec2: str, beat: WorkerState | None, state: WorkerState
) -> None:
    assert worker_state(ec2, _beat(beat) if beat else None) == state
