"""The image folder a run uploads."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgrec.loadgen.images import ImagesError, load_images


def test_images_are_read_sorted_by_name_any_suffix_case(tmp_path: Path) -> None:
    (tmp_path / "b.JPEG").write_bytes(b"b")
    (tmp_path / "a.png").write_bytes(b"a")
    (tmp_path / "notes.txt").write_text("skip me")
    images = load_images(tmp_path)
    assert [(i.name, i.data, i.content_type) for i in images] == [
        ("a.png", b"a", "image/png"), ("b.JPEG", b"b", "image/jpeg")]


def test_missing_or_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ImagesError, match="does not exist"):
        load_images(tmp_path / "nope")
    with pytest.raises(ImagesError, match="no images in"):
        load_images(tmp_path)
