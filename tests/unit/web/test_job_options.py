"""Idempotency keys and deadlines: parsing, and key records on a real directory store."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from imgrec import keys
from imgrec.embedded.dir_store import DirectoryStore
from imgrec.web.errors import ApiError
from imgrec.web.idempotency import (
    IdempotencyKeys,
    IdempotencyRecord,
    check_same_image,
    image_digest,
    record_key,
)
from imgrec.web.job_options import JobOptions, job_options

DAY_S = 86400.0


def test_options_come_from_the_headers() -> None:
    assert job_options({}) == JobOptions()
    got = job_options({"Idempotency-Key": "3f1c-order 42", "X-Deadline-S": "2.5"})
    assert got == JobOptions(idempotency_key="3f1c-order 42", deadline_s=2.5)


@pytest.mark.parametrize(("headers", "code"), [
    ({"Idempotency-Key": "x" * 256}, "invalid_idempotency_key"),
    ({"Idempotency-Key": "caf\u00e9"}, "invalid_idempotency_key"),
    ({"Idempotency-Key": "new\nline"}, "invalid_idempotency_key"),
    ({"X-Deadline-S": "0"}, "invalid_deadline"),
    ({"X-Deadline-S": "1e400"}, "invalid_deadline"),
    ({"X-Deadline-S": "NaN"}, "invalid_deadline"),
    ({"X-Deadline-S": "10 seconds"}, "invalid_deadline"),
])
def test_bad_options_are_a_400_naming_the_header(headers: dict[str, str], code: str) -> None:
    with pytest.raises(ApiError) as raised:
        job_options(headers)
    assert raised.value.status == 400 and raised.value.code == code
    assert next(iter(headers)) in raised.value.detail


def test_a_record_is_named_by_the_keys_hash_never_the_key() -> None:
    name = record_key("../../etc/passwd")
    assert name.startswith(keys.IDEMPOTENCY_PREFIX) and "passwd" not in name
    keys.validate_key(name)


def test_the_first_claim_wins_and_others_get_its_record(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    ids = IdempotencyKeys(store, retention_s=3 * DAY_S)
    first = IdempotencyRecord(keys.new_request_id(), image_digest(b"one"), 1_800_000_000.5)
    assert ids.find("k") is None
    assert ids.claim("k", first) is None
    second = IdempotencyRecord(keys.new_request_id(), image_digest(b"one"), 1_800_000_000.5)
    assert ids.claim("k", second) == first
    assert ids.find("k") == first
    check_same_image(first, image_digest(b"one"))
    with pytest.raises(ApiError) as raised:
        check_same_image(first, image_digest(b"two"))
    assert raised.value.status == 409 and raised.value.code == "idempotency_key_reused"
    ids.release("k")
    assert ids.find("k") is None


def test_a_record_expires_with_its_job(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    ids = IdempotencyKeys(store, retention_s=3 * DAY_S)
    old = IdempotencyRecord(keys.new_request_id(time.time() - 4 * DAY_S), "d")
    assert ids.claim("k", old) is None
    assert ids.find("k") is None  # past retention: the key is free, its record removed
    assert list(store.list(keys.IDEMPOTENCY_PREFIX)) == []
    fresh = IdempotencyRecord(keys.new_request_id(), "d")
    assert ids.claim("k", fresh) is None and ids.find("k") == fresh
