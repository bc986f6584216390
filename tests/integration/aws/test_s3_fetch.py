"""The instance's stdlib S3 download: SigV4 that a real S3 server verifies, IMDSv2 credentials."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.helpers.aws_adapters import ACCESS_KEY, REGION, SECRET_KEY, Endpoint, seaweedfs_endpoint
from tests.instances.imds import Credentials, InstanceMetadata, MetadataServer

from imgrec.deploy import s3_fetch

pytestmark = pytest.mark.aws
KEY = "deploy/wheelhouse-0123456789abcdef.tar"


def _metadata_server(secret: str) -> MetadataServer:
    expiry = datetime.now(UTC) + timedelta(hours=1)
    imds = MetadataServer(lambda _meta: Credentials(ACCESS_KEY, secret, "", expiry)).start()
    imds.register(InstanceMetadata("i-0fetch", REGION, "123456789012", "c7i.large",
                                   "ami-1", "worker-role", "arn:aws:iam::1:role/worker-role",
                                   b""))
    return imds


@pytest.fixture
def weed(request: pytest.FixtureRequest) -> Iterator[tuple[Endpoint, str, bytes]]:
    """SeaweedFS with a bucket holding one object (SeaweedFS checks signatures)."""
    endpoint = seaweedfs_endpoint(request)
    s3 = endpoint.client("s3")
    bucket = f"fetch-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    body = uuid.uuid4().bytes * 100_000  # 1.6 MB: several reads
    s3.put_object(Bucket=bucket, Key=KEY, Body=body)
    yield endpoint, bucket, body
    s3.delete_object(Bucket=bucket, Key=KEY)
    s3.delete_bucket(Bucket=bucket)


def test_fetch_downloads_with_instance_profile_credentials(
    weed: tuple[Endpoint, str, bytes], tmp_path: Path
) -> None:
    endpoint, bucket, body = weed
    imds = _metadata_server(SECRET_KEY)
    try:
        env = {"AWS_ENDPOINT_URL": endpoint.url,
               "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.endpoint("i-0fetch")}
        dest = tmp_path / "wheelhouse.tar"
        size = s3_fetch.fetch(REGION, bucket, KEY, hashlib.sha256(body).hexdigest(), str(dest),
                              environ=env)
    finally:
        imds.stop()
    assert size == len(body)
    assert dest.read_bytes() == body


@pytest.mark.parametrize(("secret", "sha", "expected"), [
    ("wrong-secret", None, "HTTP 403"),  # the server checked the signature
    (SECRET_KEY, "0" * 64, "SHA-256"),  # what arrived is not what aws up uploaded
])
def test_fetch_refuses_a_bad_signature_or_a_changed_object(
    weed: tuple[Endpoint, str, bytes], tmp_path: Path, secret: str, sha: str | None,
    expected: str
) -> None:
    endpoint, bucket, body = weed
    imds = _metadata_server(secret)
    try:
        env = {"AWS_ENDPOINT_URL": endpoint.url,
               "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.endpoint("i-0fetch")}
        with pytest.raises(s3_fetch.FetchError, match=expected):
            s3_fetch.fetch(REGION, bucket, KEY, sha or hashlib.sha256(body).hexdigest(),
                           str(tmp_path / "out"), environ=env, attempts=1)
    finally:
        imds.stop()
    assert not (tmp_path / "out").exists()


def test_fetch_without_an_instance_profile_says_so(tmp_path: Path) -> None:
    with pytest.raises(s3_fetch.FetchError, match="instance profile"):
        s3_fetch.instance_profile_credentials("http://127.0.0.1:9/", wait_s=0)
