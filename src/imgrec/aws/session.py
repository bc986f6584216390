"""boto3 clients from the standard credential chain (env, profile, instance profile).

The endpoint comes from boto3 itself: ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3`` etc.)
points every client at moto, SeaweedFS or LocalStack without code here knowing.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

from ..errors import ConfigError
from .errors import translated

# An unreachable endpoint must fail a call within seconds, not minutes (botocore's defaults:
# 60 s connect and read timeouts, retried): a refused connection fails in well under a second,
# a silent endpoint in 3 x 10 s (S3 PUTs 3 x 11 s: they wait 1 s for "100 Continue"). SQS long
# polls are kept below the read timeout (``sqs_queue.long_poll_cap``); nothing else needs more.
_CONFIG = Config(
    retries={"total_max_attempts": 3, "mode": "standard"},  # 2 retries
    connect_timeout=2,
    read_timeout=10,
    max_pool_connections=32,
)


class AwsSession:
    """One boto3 session with cached clients; clients are thread-safe, the session is not."""

    def __init__(self, region: str | None = None) -> None:
        self._session = boto3.Session(region_name=region) if region else boto3.Session()
        if not self._session.region_name:
            raise ConfigError("no AWS region: pass --region, set IMGREC_REGION or AWS_REGION")
        self.region: str = self._session.region_name
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._account: str | None = None

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                client = self._session.client(service, config=_CONFIG)
                if service == "s3":
                    client.meta.events.register("before-parameter-build.s3.*",
                                                self._expect_own_buckets)
                self._clients[service] = client
        return self._clients[service]

    def _expect_own_buckets(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        """Every S3 call that can says whose bucket it expects: a bucket name another account
        took after we deleted ours must fail (403), not receive our data."""
        if "ExpectedBucketOwner" in model.input_shape.members and \
                "ExpectedBucketOwner" not in params:
            params["ExpectedBucketOwner"] = self.account

    @property
    def account(self) -> str:
        """The account id of the credentials in use (one STS call, cached)."""
        if self._account is None:
            with translated("finding the AWS account (sts:GetCallerIdentity)"):
                self._account = str(self.client("sts").get_caller_identity()["Account"])
        return self._account
