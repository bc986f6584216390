from __future__ import annotations

import os
from pathlib import Path

import pytest

from imgrec.embedded.dir_store import DirectoryStore
from imgrec.errors import InvalidKey


def test_a_symlink_out_of_the_root_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    store = DirectoryStore(tmp_path / "root")
    os.symlink(outside, tmp_path / "root" / "link")
    with pytest.raises(InvalidKey):
        store.put("link/file", b"x")
    assert list(outside.iterdir()) == []


def test_a_put_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    for i in range(5):
        store.put("results/a.json", str(i).encode())
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["a.json"]


def test_a_directory_removed_behind_the_stores_back_is_made_again(tmp_path: Path) -> None:
    import shutil

    store = DirectoryStore(tmp_path)
    store.put("results/a.json", b"1")
    shutil.rmtree(tmp_path / "results")
    store.put("results/b.json", b"2")
    assert store.get("results/b.json") == b"2"



def test_put_if_absent_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    assert store.put_if_absent("idempotency/a.json", b"1")
    assert not store.put_if_absent("idempotency/a.json", b"2")
    assert sorted(p.name for p in (tmp_path / "idempotency").iterdir()) == ["a.json"]


@pytest.mark.parametrize("durable", [True, False])
def test_put_many_leaves_no_temporary_files(tmp_path: Path, durable: bool) -> None:
    store = DirectoryStore(tmp_path, durable=durable)
    store.put_many([(f"inputs/{i}", b"x" * i) for i in range(20)])
    assert sorted(p.name for p in (tmp_path / "inputs").iterdir()) == sorted(
        str(i) for i in range(20))


def test_a_failed_put_many_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    store.put("inputs/a", b"a file where the next put wants a directory")
    with pytest.raises(Exception, match="cannot write"):
        store.put_many([("inputs/b", b"1"), ("inputs/a/c", b"2")])
    assert sorted(p.name for p in (tmp_path / "inputs").iterdir()) == ["a"]


@pytest.mark.parametrize("durable", [True, False])
def test_put_many_if_absent_leaves_no_temporary_files(tmp_path: Path, durable: bool) -> None:
    # What it stores is in the store contract suite; here: nothing but the objects on disk.
    store = DirectoryStore(tmp_path, durable=durable)
    store.put("results/b.json", b"first")
    store.put_many_if_absent([(f"results/{n}.json", n.encode()) for n in ("a", "b")]
                             + [("other/c.json", b"C")])
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["a.json", "b.json"]
    assert [p.name for p in (tmp_path / "other").iterdir()] == ["c.json"]


def test_put_many_if_absent_checks_every_key_first(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    with pytest.raises(InvalidKey):
        store.put_many_if_absent([("results/a.json", b"A"), ("../escape", b"x")])
    assert not store.exists("results/a.json")


def test_concurrent_directory_syncs_are_shared_and_each_covers_its_caller() -> None:
    import threading
    import time

    from imgrec.embedded.dir_store import DirectorySyncs

    started: list[float] = []
    ran: list[tuple[float, float]] = []
    lock = threading.Lock()

    def slow_fsync(_directory: Path) -> None:
        begin = time.monotonic()
        with lock:
            started.append(begin)
        time.sleep(0.05)
        with lock:
            ran.append((begin, time.monotonic()))

    syncs = DirectorySyncs(slow_fsync)
    covered: list[bool] = []

    def caller() -> None:
        asked = time.monotonic()
        syncs.sync(Path("/d"))
        returned = time.monotonic()
        # A sync that began after the call was made (so after the caller's rename) has ended.
        with lock:
            covered.append(any(asked <= begin and end <= returned for begin, end in ran))

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for t in threads:
        t.start()
        time.sleep(0.005)
    for t in threads:
        t.join()
    assert covered == [True] * 8
    assert 2 <= len(started) < 8  # shared: the callers queued behind one sync share the next


def test_concurrent_puts_are_all_stored(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store = DirectoryStore(tmp_path)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: store.put(f"inputs/{i:04d}", bytes([i % 256]) * 1000),
                      range(200)))
    assert sorted(store.list("inputs/")) == [f"inputs/{i:04d}" for i in range(200)]
    assert store.get("inputs/0042") == bytes([42]) * 1000
