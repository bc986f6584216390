"""``aws up / status / down`` on moto: what up creates, up twice, down leaves nothing."""

from __future__ import annotations

import base64
import io
import json
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.aws_adapters import DEBIAN_12_AMIS, Endpoint
from typer.testing import CliRunner

from imgrec import keys
from imgrec.aws import iam
from imgrec.aws.provision import Stack, UpOptions, open_stack
from imgrec.cli import app
from imgrec.errors import ConfigError

pytestmark = pytest.mark.aws


def _stack(name: str = "t1") -> Stack:
    return open_stack(name, None)


def _everything(moto: Endpoint) -> dict[str, list[str]]:
    """Every resource kind aws up makes, as moto lists it (default security groups aside)."""
    ec2, iam_ = moto.client("ec2"), moto.client("iam")
    return {
        "buckets": [b["Name"] for b in moto.client("s3").list_buckets().get("Buckets", [])],
        "queues": moto.client("sqs").list_queues().get("QueueUrls", []),
        "roles": [r["RoleName"] for r in iam_.list_roles()["Roles"]],
        "profiles": [p["InstanceProfileName"]
                     for p in iam_.list_instance_profiles()["InstanceProfiles"]],
        "groups": [g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]
                   if g["GroupName"] != "default"],
        "templates": [t["LaunchTemplateName"]
                      for t in ec2.describe_launch_templates()["LaunchTemplates"]],
        "instances": [i["InstanceId"] for r in ec2.describe_instances()["Reservations"]
                      for i in r["Instances"] if i["State"]["Name"] != "terminated"],
    }


def test_up_creates_private_encrypted_buckets_queues_role_group_template(
    moto: Endpoint, wheel: Path
) -> None:
    stack = _stack()
    n = stack.names
    statuses = stack.up(UpOptions(wheel=wheel, max_receives=3))
    assert {s.status for s in statuses} <= {"created", "uploaded"}
    s3 = moto.client("s3")
    for bucket in n.buckets:
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(block.values())
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
        assert rules["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    [wheelhouse_key] = [o["Key"] for o in s3.list_objects_v2(
        Bucket=n.outputs_bucket, Prefix="deploy/")["Contents"]]
    assert re.fullmatch(r"deploy/wheelhouse-[0-9a-f]{16}\.tar", wheelhouse_key)
    tar = s3.get_object(Bucket=n.outputs_bucket, Key=wheelhouse_key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(tar)) as wheels:
        names = wheels.getnames()
        assert wheels.extractfile(wheel.name).read() == wheel.read_bytes()  # type: ignore[union-attr]
    assert any(name.startswith("pip-") for name in names)  # the instance installs with it

    sqs = moto.client("sqs")
    url = sqs.get_queue_url(QueueName="t1-requests")["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["MaximumMessageSize"] == "1024"
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(":t1-requests-dead")
    assert int(redrive["maxReceiveCount"]) == 3

    iam_ = moto.client("iam")
    profile = iam_.get_instance_profile(InstanceProfileName="t1-worker")["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == ["t1-worker"]
    doc = iam_.get_role_policy(RoleName="t1-worker", PolicyName="t1-worker-policy")
    policy = doc["PolicyDocument"]
    policy = json.loads(policy) if isinstance(policy, str) else policy
    assert policy == iam.worker_policy(n)

    ec2 = moto.client("ec2")
    [group] = ec2.describe_security_groups(GroupNames=["t1-worker"])["SecurityGroups"]
    assert group["IpPermissions"] == []
    [version] = ec2.describe_launch_template_versions(
        LaunchTemplateName="t1-worker", Versions=["$Latest"])["LaunchTemplateVersions"]
    data = version["LaunchTemplateData"]
    assert data["IamInstanceProfile"]["Name"] == "t1-worker"
    assert data["SecurityGroupIds"] == [group["GroupId"]]
    user_data = base64.b64decode(data["UserData"]).decode()
    assert user_data.startswith("#cloud-config")
    assert wheelhouse_key in user_data and wheel.name in user_data
    assert data["ImageId"] == DEBIAN_12_AMIS["amd64"]
    assert "systemctl enable --now imgrec-worker.service" in user_data


def test_policy_names_only_the_stacks_resources(moto: Endpoint, wheel: Path) -> None:
    stack = _stack()
    stack.up(UpOptions(wheel=wheel))
    n = stack.names
    allowed = [stack.names.bucket_arn(b) for b in n.buckets] + [
        n.queue_arn(n.request_queue), n.queue_arn(n.reply_queue_prefix)]
    resources = iam.policy_resources(iam.worker_policy(n))
    assert resources
    for resource in resources:
        assert "*" not in resource.rstrip("*"), resource
        assert any(resource.startswith(a) for a in allowed), resource


def test_up_twice_changes_nothing(moto: Endpoint, wheel: Path) -> None:
    stack = _stack()
    stack.up(UpOptions(wheel=wheel))
    before = _everything(moto)
    again = stack.up(UpOptions(wheel=wheel))
    assert {s.status for s in again} == {"unchanged"}, again
    assert _everything(moto) == before


def test_up_with_a_new_instance_type_updates_only_the_template(
    moto: Endpoint, wheel: Path
) -> None:
    stack = _stack()
    stack.up(UpOptions(wheel=wheel))
    again = stack.up(UpOptions(wheel=wheel, instance_type="c7i.xlarge"))
    changed = {(s.kind, s.name): s.status for s in again if s.status != "unchanged"}
    assert changed == {("launch template", "t1-worker"): "updated"}
    ec2 = moto.client("ec2")
    [latest] = ec2.describe_launch_template_versions(
        LaunchTemplateName="t1-worker", Versions=["$Default"])["LaunchTemplateVersions"]
    assert latest["LaunchTemplateData"]["InstanceType"] == "c7i.xlarge"


def test_down_leaves_nothing_behind_and_spares_other_stacks(moto: Endpoint, wheel: Path) -> None:
    other = _stack("other")
    other.up(UpOptions(wheel=wheel))
    only_other = _everything(moto)
    stack = _stack()
    stack.up(UpOptions(wheel=wheel))
    from imgrec.aws.sqs_queue import SqsBroker

    SqsBroker(moto.client("sqs"), stack.names.queue).open(keys.reply_queue_name("abc123"))
    moto.client("s3").put_object(Bucket=stack.names.inputs_bucket, Key="inputs/x", Body=b"1")
    stack.down()
    assert _everything(moto) == only_other
    again = {s.status for s in stack.down()}
    assert again <= {"absent"}


def test_down_after_a_half_finished_up(moto: Endpoint, tmp_path: Path) -> None:
    stack = _stack()
    with pytest.raises(ConfigError, match="--wheel"):
        stack.up(UpOptions(wheel=tmp_path / "missing.txt"))
    assert _everything(moto)["buckets"]  # buckets and queues were made before the failure
    stack.down()
    assert all(not v for v in _everything(moto).values())


def test_with_web_needs_allow_cidr_and_opens_only_its_port(moto: Endpoint, wheel: Path) -> None:
    stack = _stack()
    with pytest.raises(ConfigError, match="allow-cidr"):
        stack.up(UpOptions(wheel=wheel, with_web=True))
    stack.up(UpOptions(wheel=wheel, with_web=True, allow_cidr="203.0.113.7/32", port=8080))
    ec2 = moto.client("ec2")
    [group] = ec2.describe_security_groups(GroupNames=["t1-web"])["SecurityGroups"]
    [perm] = group["IpPermissions"]
    assert (perm["FromPort"], perm["ToPort"], perm["IpRanges"][0]["CidrIp"]) == (
        8080, 8080, "203.0.113.7/32")
    web = [i for i in _everything(moto)["instances"]]
    assert len(web) == 1
    stack.down()
    assert all(not v for v in _everything(moto).values())


def _cli(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_up_status_down(moto: Endpoint, wheel: Path) -> None:
    out = _cli("aws", "up", "--stack", "t1", "--wheel", str(wheel))
    assert "t1-requests" in out and "created" in out
    status = _cli("aws", "status", "--stack", "t1")
    for name in ("t1-inputs-", "t1-outputs-", "t1-requests", "t1-requests-dead", "t1-worker"):
        assert name in status
    for kind in ("bucket", "queue", "role", "security group", "launch template"):
        assert kind in status
    assert "missing" not in status
    _cli("aws", "down", "--stack", "t1", "--yes")
    status = _cli("aws", "status", "--stack", "t1")
    assert "present" not in status


def test_cli_rejects_a_bad_stack_name(moto: Endpoint) -> None:
    result = CliRunner().invoke(app, ["aws", "status", "--stack", "Bad_Name"])
    assert result.exit_code == 2
    assert "invalid stack name" in result.output
