"""The bench's photo sets: sizes, formats, orientation, grain and the cache."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from bench.photos import JPEG_12MP, JPEG_12MP_GRAIN, PNG_4K, PhotoSize, enlarge, photo_set
from PIL import Image
from tests.helpers.paths import DEV_IMAGES

SMALL_JPEG = PhotoSize("small-jpeg", "JPEG", 800, 600)
SMALL_GRAIN = PhotoSize("small-grain", "JPEG", 800, 600, grain=4.0)
SMALL_PNG = PhotoSize("small-png", "PNG", 640, 360)


def source(tmp_path: Path, size: tuple[int, int], name: str = "src.jpg") -> Path:
    pixels = np.random.default_rng(1).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path = tmp_path / name
    Image.fromarray(pixels).save(path, "JPEG", quality=90)
    return path


def test_the_sets_are_what_the_issue_asks_for() -> None:
    assert (JPEG_12MP.format, JPEG_12MP.megapixels) == ("JPEG", 12.0)
    assert (PNG_4K.format, PNG_4K.long_side, PNG_4K.short_side) == ("PNG", 3840, 2160)
    assert JPEG_12MP_GRAIN.grain > 0 and JPEG_12MP.grain == 0


@pytest.mark.parametrize(
    ("kind", "src", "want"),
    [(JPEG_12MP, (500, 375), (4000, 3000)), (JPEG_12MP, (375, 500), (3000, 4000)),
     (PNG_4K, (500, 375), (3840, 2160)), (PNG_4K, (333, 500), (2160, 3840))],
)
def test_target_keeps_orientation(kind: PhotoSize, src: tuple[int, int],
                                  want: tuple[int, int]) -> None:
    assert kind.target(*src) == want


def test_enlarge_covers_then_crops_the_centre() -> None:
    # Left half black, right half white: a 16:9 crop of a 4:3 source keeps both halves.
    pixels = np.zeros((300, 400, 3), dtype=np.uint8)
    pixels[:, 200:] = 255
    out = enlarge(Image.fromarray(pixels), 1600, 900)
    assert out.size == (1600, 900) and out.mode == "RGB"
    array = np.asarray(out)
    assert array[:, :700].max() < 10 and array[:, 900:].min() > 245


@pytest.mark.parametrize(("kind", "fmt"), [(SMALL_JPEG, "JPEG"), (SMALL_PNG, "PNG")])
def test_photo_set_makes_files_of_the_size_and_format(tmp_path: Path, kind: PhotoSize,
                                                      fmt: str) -> None:
    landscape = source(tmp_path, (500, 375), "a.jpg")
    portrait = source(tmp_path, (375, 500), "b.jpg")
    made = photo_set([landscape, portrait], kind, tmp_path / "cache")
    assert [p.suffix for p in made] == [kind.suffix] * 2
    sizes = []
    for path in made:
        with Image.open(path) as image:
            assert image.format == fmt
            sizes.append(image.size)
    assert sizes == [(kind.long_side, kind.short_side), (kind.short_side, kind.long_side)]


def test_grain_makes_bigger_jpegs_deterministically(tmp_path: Path) -> None:
    dev = sorted(DEV_IMAGES.glob("*.JPEG"))[:1]
    [plain] = photo_set(dev, SMALL_JPEG, tmp_path / "one")
    [grainy] = photo_set(dev, SMALL_GRAIN, tmp_path / "one")
    [again] = photo_set(dev, SMALL_GRAIN, tmp_path / "two")
    assert grainy.stat().st_size > 1.3 * plain.stat().st_size
    assert grainy.read_bytes() == again.read_bytes()


def test_the_cache_is_reused_and_refreshed_when_the_source_changes(tmp_path: Path) -> None:
    src = source(tmp_path, (500, 375))
    [path] = photo_set([src], SMALL_JPEG, tmp_path / "cache")
    os.utime(path, (1_000_000_000, 1_000_000_000))  # older than the source: remade
    os.utime(src, (1_000_000_100, 1_000_000_100))
    photo_set([src], SMALL_JPEG, tmp_path / "cache")
    remade = path.stat().st_mtime
    assert remade > 1_000_000_100
    photo_set([src], SMALL_JPEG, tmp_path / "cache")
    assert path.stat().st_mtime == remade  # fresh: not made again
    with Image.open(io.BytesIO(path.read_bytes())) as image:
        assert image.size == (800, 600)
    assert not list((tmp_path / "cache").rglob("*.tmp"))
