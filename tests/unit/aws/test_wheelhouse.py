"""The wheelhouse tar: reproducible, checked, and a bounded cache (no pip, no network)."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from imgrec.aws import wheelhouse
from imgrec.aws.images import platform
from imgrec.errors import ConfigError


def _wheels(directory: Path, tag: str) -> Path:
    directory.mkdir(parents=True)
    for name in ("imgrec-0.1.0-py3-none-any.whl", "pip-26.0-py3-none-any.whl",
                 "numpy-2.0.0-cp311-cp311-manylinux_2_17_x86_64.whl"):
        (directory / name).write_bytes(f"{name} {tag}".encode())
    return directory


def test_the_same_wheels_make_the_same_tar_whatever_their_file_times(tmp_path: Path) -> None:
    first = wheelhouse.from_directory(_wheels(tmp_path / "a", "x"), cache=tmp_path / "c1")
    second_dir = _wheels(tmp_path / "b", "x")
    for path in second_dir.iterdir():
        os.utime(path, (1_000_000, 1_000_000))
    second = wheelhouse.from_directory(second_dir, cache=tmp_path / "c2")
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.sha256 == second.sha256 and first.key == second.key
    assert first.key == f"deploy/wheelhouse-{first.sha256[:16]}.tar"
    assert first.wheel_name == "imgrec-0.1.0-py3-none-any.whl"
    with tarfile.open(first.path) as tar:
        assert sorted(tar.getnames()) == sorted(first.wheels)


def test_a_wheelhouse_needs_imgrec_and_pip(tmp_path: Path) -> None:
    directory = _wheels(tmp_path / "w", "x")
    (directory / "pip-26.0-py3-none-any.whl").unlink()
    with pytest.raises(ConfigError, match="pip's wheel"):
        wheelhouse.from_directory(directory, cache=tmp_path / "cache")


def test_the_cache_keeps_only_the_most_recently_used(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    made = [wheelhouse.from_directory(_wheels(tmp_path / f"w{i}", str(i)), cache=cache)
            for i in range(wheelhouse.KEEP_CACHED + 2)]
    kept = sorted(cache.glob("wheelhouse-*.tar"))
    assert len(kept) == wheelhouse.KEEP_CACHED
    assert made[-1].path in kept and made[0].path not in kept
    assert len(list(cache.glob("wheelhouse-*.json"))) == wheelhouse.KEEP_CACHED


def test_wheels_are_chosen_for_debian_12_on_the_instance_cpu() -> None:
    arm = platform("c7g.large").wheel_platforms()
    assert arm[0] == "manylinux_2_36_aarch64" and "manylinux2014_aarch64" in arm
    intel = platform("c7i.large").wheel_platforms()
    assert intel[0] == "manylinux_2_36_x86_64" and intel[-1] == "manylinux1_x86_64"
    assert platform("c7i.large").python_tag == "cp311"
