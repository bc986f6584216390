"""An EC2 instance metadata service (IMDSv2) on 127.0.0.1 for the simulated instances.

Each instance has its own root, ``http://127.0.0.1:<port>/<instance-id>/``, which is what its
``AWS_EC2_METADATA_SERVICE_ENDPOINT`` says (botocore and the install script honour it), so the
instances sharing the host's network still see only their own metadata. As on EC2 with
``HttpTokens=required``: a token from ``PUT /latest/api/token`` first, every GET with it.
Credentials are those of the instance profile's role, from STS AssumeRole on moto, refreshed
before they expire; no key is ever in the user data.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
_TOKEN_HEADER = "X-aws-ec2-metadata-token"


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    token: str
    expiration: datetime


@dataclass(frozen=True)
class InstanceMetadata:
    """What the metadata service tells one instance about itself."""

    instance_id: str
    region: str
    account: str
    instance_type: str
    image_id: str
    role_name: str | None
    role_arn: str | None
    user_data: bytes
    local_ipv4: str = "127.0.0.1"

    @property
    def zone(self) -> str:
        return f"{self.region}a"

    def paths(self) -> dict[str, str]:
        """``meta-data/...`` answers that do not need credentials."""
        hostname = f"ip-{self.local_ipv4.replace('.', '-')}.ec2.internal"
        return {
            "instance-id": self.instance_id, "instance-type": self.instance_type,
            "ami-id": self.image_id, "local-ipv4": self.local_ipv4,
            "local-hostname": hostname, "hostname": hostname,
            "placement/availability-zone": self.zone, "placement/region": self.region,
        }

    def identity_document(self) -> dict[str, Any]:
        return {"accountId": self.account, "architecture": "x86_64",
                "availabilityZone": self.zone, "imageId": self.image_id,
                "instanceId": self.instance_id, "instanceType": self.instance_type,
                "privateIp": self.local_ipv4, "region": self.region, "version": "2017-09-30"}


CredentialSource = Callable[[InstanceMetadata], Credentials]


class AssumedRoleCredentials:
    """An instance's role credentials from STS AssumeRole, cached until 5 min before expiry."""

    def __init__(self, sts: Any) -> None:
        self._sts = sts
        self._cache: dict[str, Credentials] = {}
        self._lock = threading.Lock()

    def __call__(self, meta: InstanceMetadata) -> Credentials:
        assert meta.role_arn is not None
        with self._lock:
            cached = self._cache.get(meta.instance_id)
            if cached and cached.expiration.timestamp() - time.time() > 300:
                return cached
            got = self._sts.assume_role(RoleArn=meta.role_arn,
                                        RoleSessionName=meta.instance_id)["Credentials"]
            creds = Credentials(got["AccessKeyId"], got["SecretAccessKey"],
                                got["SessionToken"], got["Expiration"])
            self._cache[meta.instance_id] = creds
            return creds


class MetadataServer:
    """The metadata service of every simulated instance; ``register`` one before it boots."""

    def __init__(self, credentials: CredentialSource) -> None:
        self._credentials = credentials
        self._instances: dict[str, InstanceMetadata] = {}
        self._tokens: dict[str, tuple[str, float]] = {}  # token -> (instance id, expiry)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="imds",
                                        daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def endpoint(self, instance_id: str) -> str:
        return f"http://127.0.0.1:{self.port}/{instance_id}/"

    def start(self) -> MetadataServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def register(self, meta: InstanceMetadata) -> None:
        with self._lock:
            self._instances[meta.instance_id] = meta

    def unregister(self, instance_id: str) -> None:
        with self._lock:
            self._instances.pop(instance_id, None)
            self._tokens = {t: v for t, v in self._tokens.items() if v[0] != instance_id}

    # --- request handling (called from the handler threads) ------------------------------------

    def new_token(self, instance_id: str, ttl_s: int) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = (instance_id, time.time() + ttl_s)
        return token

    def token_valid(self, instance_id: str, token: str | None) -> bool:
        with self._lock:
            held = self._tokens.get(token or "")
        return held is not None and held[0] == instance_id and held[1] > time.time()

    def instance(self, instance_id: str) -> InstanceMetadata | None:
        with self._lock:
            return self._instances.get(instance_id)

    def answer(self, meta: InstanceMetadata, path: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for a GET of ``path`` below ``latest/``."""
        if path == "user-data":
            return (200, "application/octet-stream", meta.user_data) if meta.user_data \
                else (404, "text/plain", b"Not Found")
        if path == "dynamic/instance-identity/document":
            return 200, "text/plain", json.dumps(meta.identity_document(), indent=2).encode()
        if not path.startswith("meta-data/"):
            return 404, "text/plain", b"Not Found"
        key = path.removeprefix("meta-data/").rstrip("/")
        plain = meta.paths()
        if key in plain:
            return 200, "text/plain", plain[key].encode()
        if key == "":
            listing = sorted({k.split("/", 1)[0] + ("/" if "/" in k else "") for k in plain})
            return 200, "text/plain", "\n".join([*listing, "iam/"]).encode()
        if key.startswith("iam") and meta.role_name is None:
            return 404, "text/plain", b"Not Found"
        if key == "iam":
            return 200, "text/plain", b"info\nsecurity-credentials/"
        if key == "iam/info":
            info = {"Code": "Success", "LastUpdated": _iso(datetime.now(UTC)),
                    "InstanceProfileArn": f"arn:aws:iam::{meta.account}:instance-profile/"
                                          f"{meta.role_name}",
                    "InstanceProfileId": "AIPA" + meta.instance_id.upper()[2:]}
            return 200, "text/plain", json.dumps(info).encode()
        if key == "iam/security-credentials":
            return 200, "text/plain", str(meta.role_name).encode()
        if key == f"iam/security-credentials/{meta.role_name}":
            creds = self._credentials(meta)
            body = {"Code": "Success", "LastUpdated": _iso(datetime.now(UTC)),
                    "Type": "AWS-HMAC", "AccessKeyId": creds.access_key_id,
                    "SecretAccessKey": creds.secret_access_key, "Token": creds.token,
                    "Expiration": _iso(creds.expiration)}
            return 200, "text/plain", json.dumps(body).encode()
        return 404, "text/plain", b"Not Found"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _handler(server: MetadataServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
            pass

        def _split(self) -> tuple[InstanceMetadata | None, str]:
            parts = self.path.split("?", 1)[0].lstrip("/").split("/", 1)
            meta = server.instance(parts[0])
            rest = parts[1] if len(parts) > 1 else ""
            return meta, rest

        def _send(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_PUT(self) -> None:  # noqa: N802 - http.server's name
            meta, rest = self._split()
            if meta is None or rest != "latest/api/token":
                self._send(404, b"Not Found")
                return
            try:
                ttl = int(self.headers.get(_TOKEN_TTL_HEADER, ""))
            except ValueError:
                ttl = 0
            if not 1 <= ttl <= 21600:
                self._send(400, b"Bad Request")
                return
            self._send(200, server.new_token(meta.instance_id, ttl).encode())

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            meta, rest = self._split()
            if meta is None or not rest.startswith("latest/"):
                self._send(404, b"Not Found")
                return
            if not server.token_valid(meta.instance_id, self.headers.get(_TOKEN_HEADER)):
                self._send(401, b"Unauthorized")  # HttpTokens=required: IMDSv1 refused
                return
            status, content_type, body = server.answer(meta, rest.removeprefix("latest/"))
            self._send(status, body, content_type)

    return Handler
