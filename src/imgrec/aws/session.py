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
# 60 s connect and read timeouts, retried). The data path (S3 objects, SQS messages) answers in
# milliseconds when healthy: 1 s to connect, 3 s to read, 3 attempts bound a call to about 12 s
# when the endpoint is silent, and a refused connection fails in well under a second. The web
# tier answers 503 sooner than that (its own deadline, ``backend_timeout_s``); these bound how
# long a worker or a background thread stays stuck. SQS long polls wait up to 20 s by design,
# so they get a client of their own (``poll_client``) whose read timeout covers the wait.
# Control-plane calls (EC2, IAM, STS, SSM) are slower when healthy and keep 2 s / 10 s.
_DATA = Config(
    retries={"total_max_attempts": 3, "mode": "standard"},
    connect_timeout=1,
    read_timeout=3,
    max_pool_connections=32,
)
_POLL_READ_MARGIN_S = 5
_POLL = Config(
    retries={"total_max_attempts": 2, "mode": "standard"},
    connect_timeout=1,
    read_timeout=20 + _POLL_READ_MARGIN_S,  # SQS's longest long poll, and a margin
    max_pool_connections=32,
)
_CONTROL = Config(
    retries={"total_max_attempts": 3, "mode": "standard"},
    connect_timeout=2,
    read_timeout=10,
    max_pool_connections=32,
)
_DATA_SERVICES = frozenset({"s3", "sqs"})


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
        """The service's client: short timeouts for S3 and SQS, longer ones for the rest."""
        return self._client(service, _DATA if service in _DATA_SERVICES else _CONTROL, service)

    def poll_client(self, service: str = "sqs") -> Any:
        """A client for long polls: its read timeout covers SQS's 20 s wait."""
        return self._client(service, _POLL, f"{service}:poll")

    def _client(self, service: str, config: Config, key: str) -> Any:
        with self._lock:
            if key not in self._clients:
                client = self._session.client(service, config=config)
                if service == "s3":
                    client.meta.events.register("before-parameter-build.s3.*",
                                                self._expect_own_buckets)
                self._clients[key] = client
            return self._clients[key]

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
