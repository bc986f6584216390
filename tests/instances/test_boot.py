"""A simulated instance boots its own user data under systemd and cloud-init, and goes away."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.helpers.aws_adapters import ACCESS_KEY, Endpoint
from tests.helpers.paths import REPO_ROOT

from .conftest import TIMINGS
from .harness import InstanceHarness

pytestmark = [pytest.mark.instances, pytest.mark.aws]

PROBE_USER_DATA = """\
#cloud-config
write_files:
  - path: /etc/systemd/system/probe.service
    content: |
      [Unit]
      Description=probe written by cloud-init
      [Service]
      Type=oneshot
      RemainAfterExit=yes
      ExecStart=/bin/sh -c 'echo "$INVOCATION_ID $(cat /proc/1/comm)" > /run/probe'
      [Install]
      WantedBy=multi-user.target
runcmd:
  - [systemctl, daemon-reload]
  - [systemctl, enable, --now, probe.service]
  - echo "probe runcmd finished"
"""

# Reads the instance profile's credentials as botocore does (IMDSv2), with the stdlib only.
CREDENTIALS_SCRIPT = """\
import json, os, urllib.request, urllib.error
base = os.environ["AWS_EC2_METADATA_SERVICE_ENDPOINT"]
def call(path, method="GET", headers=None):
    req = urllib.request.Request(base + path, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.read().decode()
try:
    call("latest/meta-data/instance-id")
    v1 = "allowed"
except urllib.error.HTTPError as exc:
    v1 = exc.code
token = call("latest/api/token", "PUT", {"X-aws-ec2-metadata-token-ttl-seconds": "60"})
auth = {"X-aws-ec2-metadata-token": token}
role = call("latest/meta-data/iam/security-credentials/", headers=auth).strip()
creds = json.loads(call("latest/meta-data/iam/security-credentials/" + role, headers=auth))
out = {"imdsv1": v1, "role": role, "key": creds["AccessKeyId"],
       "instance_id": call("latest/meta-data/instance-id", headers=auth),
       "env_keys": sorted(k for k in os.environ if k.startswith("AWS_"))}
json.dump(out, open("/run/creds.json", "w"))
"""


def _run(moto: Endpoint, user_data: str, **extra: object) -> str:
    ec2 = moto.client("ec2")
    reservation = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1,
                                    UserData=user_data, **extra)
    return str(reservation["Instances"][0]["InstanceId"])


def test_user_data_runs_under_systemd_and_the_instance_goes_when_terminated(
    moto: Endpoint, harness: InstanceHarness
) -> None:
    instance_id = _run(moto, PROBE_USER_DATA)
    box = harness.wait_for_boot(instance_id).container
    seconds = box.wait_for_unit("probe.service", timeout_s=60)
    TIMINGS.append(("boot to a cloud-init-installed unit active", seconds))

    invocation, init = box.run(["cat", "/run/probe"]).stdout.split()
    assert re.fullmatch(r"[0-9a-f]{32}", invocation), invocation  # only systemd sets it
    assert init == "systemd"
    assert box.run(["cloud-init", "query", "v1.instance_id"]).stdout.strip() == instance_id
    assert box.run(["cloud-init", "status"]).stdout.split() == ["status:", "done"]

    # The console, through the EC2 API as `aws status` would read it.
    front = Endpoint(harness.ec2_url).client("ec2")
    output = front.get_console_output(InstanceId=instance_id)["Output"]  # botocore decodes it
    assert "probe runcmd finished" in output
    assert "Reached target" in output  # systemd's boot status, not only cloud-init's

    root = box.root
    terminated_at = time.time()
    moto.client("ec2").terminate_instances(InstanceIds=[instance_id])
    gone = harness.wait_until_gone(instance_id, timeout_s=60)
    TIMINGS.append(("terminate to container gone", (gone.ended_at or 0) - terminated_at))
    assert not box.running
    assert not root.exists()
    assert str(root) not in Path("/proc/mounts").read_text()
    assert "probe runcmd finished" in (harness.console(instance_id) or "")


def test_credentials_come_from_the_instance_profile_through_imdsv2(
    moto: Endpoint, harness: InstanceHarness
) -> None:
    iam = moto.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
        "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName="probe-role", AssumeRolePolicyDocument=json.dumps(trust))
    iam.create_instance_profile(InstanceProfileName="probe-profile")
    iam.add_role_to_instance_profile(InstanceProfileName="probe-profile", RoleName="probe-role")
    user_data = ("#cloud-config\nwrite_files:\n  - path: /root/creds.py\n    content: |\n"
                 + "".join(f"      {line}\n" for line in CREDENTIALS_SCRIPT.splitlines())
                 + "runcmd:\n  - [python3, /root/creds.py]\n")
    ec2 = moto.client("ec2")
    template = ec2.create_launch_template(LaunchTemplateName="probe", LaunchTemplateData={
        "ImageId": "ami-12345678", "IamInstanceProfile": {"Name": "probe-profile"},
        "UserData": base64.b64encode(user_data.encode()).decode()})["LaunchTemplate"]
    instance_id = str(ec2.run_instances(
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"]},
        MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"])
    box = harness.wait_for_boot(instance_id).container
    assert box.wait_for_cloud_init(timeout_s=60) == "done"

    got = json.loads(box.run(["cat", "/run/creds.json"]).stdout)
    assert got["imdsv1"] == 401  # HttpTokens=required
    assert got["role"] == "probe-role"
    assert got["key"].startswith("ASIA")  # temporary credentials from STS
    assert got["key"] != ACCESS_KEY
    assert got["instance_id"] == instance_id
    assert "AWS_ACCESS_KEY_ID" not in got["env_keys"]
    assert {"AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_ENDPOINT_URL"} <= set(got["env_keys"])


def test_an_instance_that_powers_itself_off_is_terminated_as_its_template_says(
    moto: Endpoint, harness: InstanceHarness
) -> None:
    ec2 = moto.client("ec2")
    user_data = "#cloud-config\nruncmd:\n  - [systemctl, poweroff]\n"
    template = ec2.create_launch_template(LaunchTemplateName="one-shot", LaunchTemplateData={
        "ImageId": "ami-12345678", "InstanceInitiatedShutdownBehavior": "terminate",
        "UserData": base64.b64encode(user_data.encode()).decode()})["LaunchTemplate"]
    instance_id = str(ec2.run_instances(
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"]},
        MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"])
    harness.wait_for_boot(instance_id)
    gone = harness.wait_until_gone(instance_id, timeout_s=60)
    assert gone.end_reason.startswith("shut itself down")
    state = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert state["State"]["Name"] in ("shutting-down", "terminated")


ORPHAN_SCRIPT = """\
import sys, time
from pathlib import Path
from tests.instances.container import Container, Seed
box = Container(Path(sys.argv[1]), Path(sys.argv[2]), Seed("i-0orphan", b"#cloud-config\\n", "x"))
box.boot()
box.wait_for_cloud_init(60)
print(box.process.pid, flush=True)
time.sleep(600)
"""


def _running(pid: int) -> bool:
    """The process exists and is not a zombie (orphans may wait a while to be reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def test_containers_shut_down_when_the_process_that_booted_them_dies(
    instance_rootfs: Path, tmp_path: Path
) -> None:
    owner = subprocess.Popen([sys.executable, "-c", ORPHAN_SCRIPT, str(instance_rootfs),
                              str(tmp_path / "orphan")], stdout=subprocess.PIPE, text=True,
                             cwd=REPO_ROOT)
    try:
        assert owner.stdout is not None
        nspawn = int(owner.stdout.readline())
    finally:
        owner.kill()
        owner.wait()
    deadline = time.monotonic() + 60
    while _running(nspawn) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = _running(nspawn)
    subprocess.run(["umount", str(tmp_path / "orphan" / "layers" / "merged")], check=False)
    assert not alive, "the container outlived the process that booted it"
    assert "has been shut down" in (tmp_path / "orphan" / "console.log").read_text()
