"""Photos as people take them: 12-megapixel JPEGs and 4K PNGs made from the dev photos.

The dev photos are ~500x375. Each is enlarged (bicubic, centre-cropped to the target's aspect,
orientation kept) and saved as a camera or screenshot would: JPEG quality 90, PNG at zlib's
default level. Enlarged photos are smoother than a sensor's, so their JPEGs are small for 12
megapixels (about 1 MB); the ``-grain`` set adds Gaussian noise to reach a phone photo's file
size (about 2.5 MB), which is what the entropy decoder pays for.

Files are made at bench time into a cache directory (``.cache/bench-photos``, git-ignored) and
reused while the recipe and the source are unchanged; nothing big is committed.
"""

from __future__ import annotations

import io
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

RECIPE = 1  # bump when the way photos are made changes, so old caches are not reused
JPEG_QUALITY = 90


@dataclass(frozen=True)
class PhotoSize:
    """A kind of photo: format, pixel size (landscape; portraits are turned) and sensor grain."""

    name: str
    format: str  # "JPEG" or "PNG"
    long_side: int
    short_side: int
    grain: float = 0.0  # standard deviation of added noise, in 8-bit levels

    @property
    def suffix(self) -> str:
        return ".jpg" if self.format == "JPEG" else ".png"

    @property
    def megapixels(self) -> float:
        return self.long_side * self.short_side / 1e6

    def target(self, width: int, height: int) -> tuple[int, int]:
        """The output size for a source of ``width`` x ``height``, same orientation."""
        if width >= height:
            return self.long_side, self.short_side
        return self.short_side, self.long_side


JPEG_12MP = PhotoSize("jpeg-12mp", "JPEG", 4000, 3000)
JPEG_12MP_GRAIN = PhotoSize("jpeg-12mp-grain", "JPEG", 4000, 3000, grain=4.0)
PNG_4K = PhotoSize("png-4k", "PNG", 3840, 2160)
SIZES: tuple[PhotoSize, ...] = (JPEG_12MP, JPEG_12MP_GRAIN, PNG_4K)


def enlarge(image: Image.Image, width: int, height: int) -> Image.Image:
    """``image`` scaled (bicubic) to cover ``width`` x ``height``, then centre-cropped to it."""
    image = image.convert("RGB")
    scale = max(width / image.width, height / image.height)
    covered = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
    image = image.resize(covered, Image.Resampling.BICUBIC)
    left, top = (covered[0] - width) // 2, (covered[1] - height) // 2
    return image.crop((left, top, left + width, top + height))


def add_grain(image: Image.Image, sigma: float, seed: int) -> Image.Image:
    """Luminance noise of ``sigma`` levels, the same on the three channels (like a sensor's)."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, sigma, (image.height, image.width, 1)).astype(np.float32)
    pixels = np.asarray(image, dtype=np.float32) + noise
    return Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8))


def make_photo(source: bytes, size: PhotoSize, seed: int = 0) -> bytes:
    """Encoded bytes of ``source`` (any image Pillow reads) made into a ``size`` photo."""
    with Image.open(io.BytesIO(source)) as original:
        image = enlarge(original, *size.target(original.width, original.height))
    if size.grain > 0:
        image = add_grain(image, size.grain, seed)
    out = io.BytesIO()
    if size.format == "JPEG":
        image.save(out, "JPEG", quality=JPEG_QUALITY)
    else:
        image.save(out, "PNG", compress_level=6)
    return out.getvalue()


def default_cache_dir(repo: Path) -> Path:
    return Path(os.environ.get("IMGREC_BENCH_CACHE", repo / ".cache" / "bench-photos"))


def photo_set(sources: list[Path], size: PhotoSize, cache_dir: Path) -> list[Path]:
    """The ``size`` versions of ``sources``, made into ``cache_dir`` where missing or stale."""
    folder = cache_dir / f"{size.name}-r{RECIPE}"
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for source in sources:
        path = folder / (source.stem + size.suffix)
        if not path.is_file() or path.stat().st_mtime < source.stat().st_mtime:
            data = source.read_bytes()
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(make_photo(data, size, seed=zlib.crc32(source.name.encode())))
            tmp.replace(path)
        made.append(path)
    return made
