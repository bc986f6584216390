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
