"""The ObjectStore contract: every adapter must pass every test here."""

from __future__ import annotations

import pytest

from imgrec.errors import InvalidKey, ObjectNotFound
from imgrec.ports import ObjectStore


def test_put_then_get_returns_the_same_bytes(store: ObjectStore) -> None:
    data = bytes(range(256)) * 10
    store.put("inputs/abc", data)
    assert store.get("inputs/abc") == data


def test_put_replaces_an_existing_object(store: ObjectStore) -> None:
    store.put("results/x.json", b"old")
    store.put("results/x.json", b"new")
    assert store.get("results/x.json") == b"new"


def test_get_of_a_missing_key_raises_object_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        store.get("results/missing.json")


def test_exists_and_delete(store: ObjectStore) -> None:
    assert not store.exists("a/b")
    store.put("a/b", b"1")
    assert store.exists("a/b")
    store.delete("a/b")
    assert not store.exists("a/b")
    store.delete("a/b")  # deleting twice is fine


def test_empty_object(store: ObjectStore) -> None:
    store.put("empty", b"")
    assert store.get("empty") == b""


def test_list_by_prefix_is_sorted_and_exact(store: ObjectStore) -> None:
    for key in ["results/b.json", "results/a.json", "inputs/a", "resultsX/c", "results/sub/d"]:
        store.put(key, b"x")
    assert list(store.list("results/")) == ["results/a.json", "results/b.json", "results/sub/d"]
    assert list(store.list("inputs/")) == ["inputs/a"]
    assert list(store.list("nothing/")) == []
    assert set(store.list("")) >= {"inputs/a", "resultsX/c"}


@pytest.mark.parametrize(
    "key", ["", "/etc/passwd", "../escape", "a/../../b", "a/./b", "a//b", "inputs/..", "a\\b"]
)
def test_keys_that_could_escape_are_rejected(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidKey):
        store.put(key, b"x")
    with pytest.raises(InvalidKey):
        store.get(key)


def test_unicode_keys_round_trip(store: ObjectStore) -> None:
    store.put("inputs/фото ü.jpg", b"1")
    assert store.get("inputs/фото ü.jpg") == b"1"
    assert list(store.list("inputs/")) == ["inputs/фото ü.jpg"]


def test_put_if_absent_writes_only_the_first_time(store: ObjectStore) -> None:
    assert store.put_if_absent("idempotency/k.json", b"first") is True
    assert store.put_if_absent("idempotency/k.json", b"second") is False
    assert store.get("idempotency/k.json") == b"first"
    assert list(store.list("idempotency/")) == ["idempotency/k.json"]
    store.delete("idempotency/k.json")
    assert store.put_if_absent("idempotency/k.json", b"third") is True
    assert store.get("idempotency/k.json") == b"third"


def test_put_if_absent_does_not_replace_a_plain_put(store: ObjectStore) -> None:
    store.put("results/x.json", b"stored")
    assert store.put_if_absent("results/x.json", b"late") is False
    assert store.get("results/x.json") == b"stored"


def test_of_racing_put_if_absent_calls_exactly_one_wins(store: ObjectStore) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def claim(n: int) -> bool:
        return store.put_if_absent("idempotency/race.json", str(n).encode())

    with ThreadPoolExecutor(max_workers=8) as pool:
        won = list(pool.map(claim, range(8)))
    assert won.count(True) == 1
    assert store.get("idempotency/race.json") == str(won.index(True)).encode()


def test_put_many_stores_every_object_and_replaces_old_ones(store: ObjectStore) -> None:
    store.put("inputs/b", b"old")
    items = [(f"inputs/{name}", name.encode() * 100) for name in ("a", "b", "c")]
    items += [("results/a.json", b"{}"), ("batches/x/parts/p1.json", b"[]")]
    store.put_many(items)
    for key, data in items:
        assert store.get(key) == data
    store.put_many([])
    assert sorted(store.list("inputs/")) == ["inputs/a", "inputs/b", "inputs/c"]


def test_put_many_rejects_an_escaping_key_before_writing(store: ObjectStore) -> None:
    with pytest.raises(InvalidKey):
        store.put_many([("inputs/ok", b"1"), ("../escape", b"2")])
    assert not store.exists("inputs/ok")


def test_put_many_if_absent_stores_only_the_new_keys(store: ObjectStore) -> None:
    store.put("results/b.json", b"first")
    stored = store.put_many_if_absent([("results/a.json", b"A"), ("results/b.json", b"B"),
                                       ("inputs/c", b"C")])
    assert stored == [True, False, True]
    assert [store.get(k) for k in ("results/a.json", "results/b.json", "inputs/c")] == \
        [b"A", b"first", b"C"]
    assert store.put_many_if_absent([]) == []
