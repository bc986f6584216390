"""Download one S3 object with the instance's credentials, with Python's standard library only.

The user data runs this on a fresh instance, before anything is installed (there is no boto3 and
no AWS CLI on the Debian AMI): the instance profile's credentials from the metadata service
(IMDSv2), a SigV4-signed GET, and a SHA-256 check of what arrived. It honours the same
settings as boto3: ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (path-style requests, e.g.
moto) and ``AWS_EC2_METADATA_SERVICE_ENDPOINT``.

Usage::

    python3 s3_fetch.py REGION BUCKET KEY SHA256 DEST

Exit status 0 on success; otherwise one line on stderr says what failed.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

IMDS = "http://169.254.169.254/"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_CHUNK = 1 << 20


class FetchError(Exception):
    """The object could not be downloaded; the message says why."""


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str = ""


def _imds_call(base: str, path: str, token: str | None, method: str = "GET") -> str:
    headers = ({"X-aws-ec2-metadata-token": token} if token
               else {"X-aws-ec2-metadata-token-ttl-seconds": "300"})
    req = urllib.request.Request(base.rstrip("/") + "/" + path, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=5) as resp:
        return str(resp.read().decode())


def instance_profile_credentials(base: str, wait_s: float = 120.0) -> Credentials:
    """The instance profile's credentials (IMDSv2); waits while the profile is not there yet."""
    deadline = time.monotonic() + wait_s
    last = "no answer"
    while True:
        try:
            token = _imds_call(base, "latest/api/token", None, method="PUT")
            prefix = "latest/meta-data/iam/security-credentials/"
            role = _imds_call(base, prefix, token).strip().splitlines()[0]
            doc = json.loads(_imds_call(base, prefix + role, token))
            return Credentials(doc["AccessKeyId"], doc["SecretAccessKey"], doc.get("Token", ""))
        except (OSError, ValueError, KeyError, IndexError) as exc:
            last = str(exc)
        if time.monotonic() > deadline:
            raise FetchError(f"no instance profile credentials from {base} ({last}): does the "
                             "instance have its IAM instance profile?")
        time.sleep(2)




def object_url(region: str, bucket: str, key: str, environ: Mapping[str, str]) -> str:
    endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
    path = urllib.parse.quote(key, safe="/~")
    if endpoint:
        return f"{endpoint.rstrip('/')}/{bucket}/{path}"
    return f"https://{bucket}.s3.{region}.amazonaws.com/{path}"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signed_headers(url: str, region: str, creds: Credentials,
                   now: datetime.datetime) -> dict[str, str]:
    """SigV4 headers of an S3 GET of ``url`` (no query string, empty body)."""
    parts = urllib.parse.urlsplit(url)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    headers = {"host": parts.netloc, "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": stamp}
    if creds.token:
        headers["x-amz-security-token"] = creds.token
    names = sorted(headers)
    canonical = "\n".join(["GET", parts.path or "/", "",
                           *(f"{name}:{headers[name].strip()}" for name in names), "",
                           ";".join(names), EMPTY_SHA256])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{creds.secret_key}".encode(), day), region), "s3"),
                "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, "
                                f"SignedHeaders={';'.join(names)}, Signature={signature}")
    del headers["host"]  # urllib sends the same Host itself
    return headers


def _download_once(url: str, region: str, creds: Credentials, sha256: str, dest: str) -> int:
    now = datetime.datetime.now(datetime.UTC)
    req = urllib.request.Request(url, headers=signed_headers(url, region, creds, now))
    digest = hashlib.sha256()
    size = 0
    partial = dest + ".partial"
    with urllib.request.urlopen(req, timeout=30) as resp, open(partial, "wb") as out:
        while chunk := resp.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    if digest.hexdigest() != sha256:
        os.unlink(partial)
        raise FetchError(f"{url}: SHA-256 {digest.hexdigest()} is not the expected {sha256}")
    os.replace(partial, dest)
    return size


def fetch(region: str, bucket: str, key: str, sha256: str, dest: str,
          environ: Mapping[str, str] = os.environ, attempts: int = 5) -> int:
    """Download ``s3://bucket/key`` to ``dest``; return its size. Retries 5xx and resets."""
    url = object_url(region, bucket, key, environ)
    creds = instance_profile_credentials(environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or IMDS)
    for attempt in range(1, attempts + 1):
        try:
            return _download_once(url, region, creds, sha256, dest)
        except urllib.error.HTTPError as exc:
            body = exc.read(300).decode(errors="replace")
            if exc.code < 500 or attempt == attempts:
                raise FetchError(f"s3://{bucket}/{key}: HTTP {exc.code} {exc.reason} "
                                 f"{_s3_code(body)}".rstrip()) from exc
        except OSError as exc:
            if attempt == attempts:
                raise FetchError(f"s3://{bucket}/{key}: {exc}") from exc
        time.sleep(min(2 ** attempt, 10))
    raise AssertionError("unreachable")


def _s3_code(body: str) -> str:
    start, end = body.find("<Code>"), body.find("</Code>")
    return body[start + 6:end] if 0 <= start < end else ""


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    region, bucket, key, sha256, dest = argv
    try:
        size = fetch(region, bucket, key, sha256, dest)
    except FetchError as exc:
        print(f"download failed: {exc}", file=sys.stderr)
        return 1
    print(f"downloaded s3://{bucket}/{key} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
