"""``ObjectStore`` adapters on S3: one bucket, and one store over the stack's two buckets."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .. import keys
from ..embedded.dir_store import validate_key
from ..errors import ObjectNotFound
from ..ports import ObjectStore
from .errors import error_code, translate, translated


class S3Store:
    """Objects in one S3 bucket (AWS or any S3-compatible server), keys validated like on disk.

    Example::

        store = S3Store(session.client("s3"), "demo-outputs-123456789012-eu-west-1")
        store.put("results/abc.json", b"{}")
    """

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def put(self, key: str, data: bytes) -> None:
        validate_key(key)
        with translated(f"cannot write s3://{self.bucket}/{key}"):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def get(self, key: str) -> bytes:
        validate_key(key)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            return bytes(response["Body"].read())
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"s3://{self.bucket}/{key}") from exc

    def exists(self, key: str) -> bool:
        validate_key(key)
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            err = translate(exc, f"s3://{self.bucket}/{key}")
            if isinstance(err, ObjectNotFound):
                return False
            raise err from exc
        return True

    def delete(self, key: str) -> None:
        validate_key(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) not in ("NoSuchKey", "404"):
                raise translate(exc, f"cannot delete s3://{self.bucket}/{key}") from exc
        except BotoCoreError as exc:
            raise translate(exc, f"cannot delete s3://{self.bucket}/{key}") from exc

    def list(self, prefix: str = "") -> Iterator[str]:
        # S3 lists in UTF-8 byte order, which differs from Python's str order for some keys.
        found: list[str] = []
        with translated(f"cannot list s3://{self.bucket}/{prefix}"):
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                found.extend(str(obj["Key"]) for obj in page.get("Contents", []))
        yield from sorted(found)


class StackStore:
    """One ``ObjectStore`` over a stack's two buckets: ``inputs/`` in one, the rest in the other.

    Uploaded images (large, short-lived, written by the web tier) stay apart from results and
    heartbeats, so each bucket gets its own lifecycle and IAM grants.
    """

    def __init__(self, inputs: ObjectStore, outputs: ObjectStore) -> None:
        self.inputs = inputs
        self.outputs = outputs

    def _for(self, key: str) -> ObjectStore:
        return self.inputs if key.startswith(keys.INPUTS_PREFIX) else self.outputs

    def put(self, key: str, data: bytes) -> None:
        self._for(key).put(key, data)

    def get(self, key: str) -> bytes:
        return self._for(key).get(key)

    def exists(self, key: str) -> bool:
        return self._for(key).exists(key)

    def delete(self, key: str) -> None:
        self._for(key).delete(key)

    def list(self, prefix: str = "") -> Iterator[str]:
        if prefix.startswith(keys.INPUTS_PREFIX):
            yield from self.inputs.list(prefix)
            return
        outputs = (k for k in self.outputs.list(prefix) if not k.startswith(keys.INPUTS_PREFIX))
        if not keys.INPUTS_PREFIX.startswith(prefix):
            yield from outputs
            return
        yield from heapq.merge(self.inputs.list(prefix), outputs)
