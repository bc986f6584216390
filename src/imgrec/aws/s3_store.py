"""``ObjectStore`` adapters on S3: one bucket, and one store over the stack's two buckets."""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .. import keys
from ..errors import BackendUnavailable
from ..ports import ObjectStore
from .errors import NOT_FOUND_OBJECT, translated

# S3 answers a conditional put on an existing key with 412; 409 when another conditional write
# on the key is in progress at that moment (AWS asks to retry).
_EXISTS_ALREADY = {"PreconditionFailed"}
_CONFLICT = {"ConditionalRequestConflict"}
_PARALLEL_PUTS = 8


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
        keys.validate_key(key)
        with translated(f"cannot write s3://{self.bucket}/{key}"):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        keys.validate_key(key)
        what = f"cannot write s3://{self.bucket}/{key}"
        with translated(what, tolerate=_EXISTS_ALREADY | _CONFLICT) as outcome:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*")
        if outcome.tolerated in _CONFLICT:
            raise BackendUnavailable(f"{what}: another write of the same key is in progress")
        return outcome.tolerated is None

    def put_many_if_absent(self, items: Sequence[tuple[str, bytes]]) -> list[bool]:
        for key, _ in items:
            keys.validate_key(key)
        return [self.put_if_absent(key, data) for key, data in items]

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        for key, _ in items:
            keys.validate_key(key)
        if len(items) <= 1:
            for key, data in items:
                self.put(key, data)
            return
        # S3 has no multi-object put: the requests overlap instead.
        with ThreadPoolExecutor(max_workers=min(_PARALLEL_PUTS, len(items))) as pool:
            list(pool.map(lambda item: self.put(*item), items))

    def get(self, key: str) -> bytes:
        keys.validate_key(key)
        with translated(f"s3://{self.bucket}/{key}"):
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            return bytes(response["Body"].read())

    def exists(self, key: str) -> bool:
        keys.validate_key(key)
        with translated(f"s3://{self.bucket}/{key}", tolerate=NOT_FOUND_OBJECT) as outcome:
            self.client.head_object(Bucket=self.bucket, Key=key)
        return not outcome.tolerated

    def delete(self, key: str) -> None:
        keys.validate_key(key)
        with translated(f"cannot delete s3://{self.bucket}/{key}", tolerate=NOT_FOUND_OBJECT):
            self.client.delete_object(Bucket=self.bucket, Key=key)

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

    def put_if_absent(self, key: str, data: bytes) -> bool:
        return self._for(key).put_if_absent(key, data)

    def put_many_if_absent(self, items: Sequence[tuple[str, bytes]]) -> list[bool]:
        return [self._for(key).put_if_absent(key, data) for key, data in items]

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        inputs = [item for item in items if self._for(item[0]) is self.inputs]
        outputs = [item for item in items if self._for(item[0]) is self.outputs]
        self.inputs.put_many(inputs)
        self.outputs.put_many(outputs)

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
