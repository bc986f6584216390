"""Image bytes -> model input: safe decoding and torchvision-equivalent preprocessing.

The maths matches ``Resize(spec.resize) -> CenterCrop(spec.input_size) -> ToTensor() ->
Normalize(mean, std)`` on a PIL image bit for bit, so the service gives exactly the
predictions of the bare model. The one exception is opt-in: ``decode_image(min_side=...)``,
which ``load_input`` uses, lets libjpeg decode JPEGs of at least twice that side at reduced scale.
"""

from __future__ import annotations

import contextlib
import functools
import io
import threading
import warnings
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from imgrec.errors import ImageError
from imgrec.model.spec import ModelSpec, Triple

MAX_IMAGE_PIXELS: int = 40_000_000
# Multi-picture JPEGs open through the JPEG plugin and report format "MPO".
FORMATS: tuple[str, ...] = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
_FORMAT_NAMES = "JPEG, PNG, GIF, WebP, BMP or TIFF"

# Our own max_pixels check replaces Pillow's global one, which would otherwise warn or raise
# first, with a different limit and a Pillow exception type.
Image.MAX_IMAGE_PIXELS = None

# warnings.catch_warnings swaps a process-global list, so concurrent entries from our threads
# could leave a filter behind; the lock serialises only the cheap sections (header parsing and
# mode conversion), never pixel decoding.
_QUIET_LOCK = threading.Lock()

Float32Array = npt.NDArray[np.float32]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with _QUIET_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Parse the header only; check the format and the pixel count."""
    if not data:
        raise ImageError("not_an_image", "the upload is empty")
    try:
        with _quiet():
            image = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError as exc:
        raise ImageError("not_an_image", f"not a {_FORMAT_NAMES} image") from exc
    except Exception as exc:  # a plugin accepted the header, then choked on it
        raise ImageError("corrupt_image", f"the image header is damaged: {exc}") from exc
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageError("corrupt_image", f"the image claims a size of {width}x{height}")
    if width * height > max_pixels:
        raise ImageError(
            "image_too_large",
            f"the image is {width}x{height} = {width * height:,} pixels; "
            f"the limit is {max_pixels:,}",
        )
    return image


def probe_image(data: bytes, *, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[str, int, int]:
    """Return ``(format, width, height)`` from the header alone, without decoding pixels.

    Raises ImageError ``not_an_image``, ``corrupt_image`` (damaged header) or
    ``image_too_large``.
    """
    image = _open(data, max_pixels)
    return str(image.format), image.width, image.height


def decode_image(
    data: bytes, *, max_pixels: int = MAX_IMAGE_PIXELS, min_side: int | None = None
) -> Image.Image:
    """Decode the first frame of an image to RGB.

    With ``min_side``, a JPEG at least twice as large may be decoded at 1/2, 1/4 or 1/8 scale
    (libjpeg's DCT scaling); both sides stay >= ``min_side``. Raises ImageError
    ``not_an_image``, ``corrupt_image`` or ``image_too_large``; no Pillow exception escapes.
    """
    image = _open(data, max_pixels)
    try:
        if min_side is not None and image.format in ("JPEG", "MPO"):
            image.draft("RGB", (min_side, min_side))
        image.load()
    except Exception as exc:  # truncated data, bad Huffman tables, decoder errors
        raise ImageError("corrupt_image", f"the image data is damaged or cut short: {exc}") from exc
    return _to_rgb(image)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    try:
        if image.mode.startswith("I;16") or image.mode == "I":
            # 16-bit samples: keep the top 8 bits instead of letting convert() clip at 255.
            high = (np.asarray(image, dtype=np.uint32) >> 8).astype(np.uint8)
            return Image.fromarray(high).convert("RGB")
        if image.mode == "F":
            clipped = np.clip(np.asarray(image), 0, 255).astype(np.uint8)
            return Image.fromarray(clipped).convert("RGB")
        with _quiet():
            return image.convert("RGB")
    except Exception as exc:
        raise ImageError(
            "corrupt_image", f"cannot convert a {image.mode} image to RGB: {exc}"
        ) from exc


def resized_size(width: int, height: int, shorter: int) -> tuple[int, int]:
    """torchvision's Resize(int) output size: shorter side -> ``shorter``, ratio kept (floor)."""
    if width <= height:
        return shorter, int(shorter * height / width)
    return int(shorter * width / height), shorter


def crop_box(width: int, height: int, side: int) -> tuple[int, int, int, int]:
    """torchvision's CenterCrop box (its offsets use Python's round-half-to-even)."""
    left = int(round((width - side) / 2.0))
    top = int(round((height - side) / 2.0))
    return left, top, left + side, top + side


@functools.lru_cache(maxsize=16)
def _lookup_table(mean: Triple, std: Triple) -> Float32Array:
    """(3, 256) float32: byte value -> normalised value, per channel.

    Computed with torchvision's float32 operations in its order (``x / 255``, ``- mean``,
    ``/ std``), so the table lookup is bit-identical to ToTensor + Normalize.
    """
    values = np.arange(256, dtype=np.float32) / np.float32(255)
    mean32 = np.asarray(mean, dtype=np.float32)[:, None]
    std32 = np.asarray(std, dtype=np.float32)[:, None]
    table: Float32Array = ((values[None, :] - mean32) / std32).astype(np.float32)
    table.flags.writeable = False
    return table


def preprocess(image: Image.Image, spec: ModelSpec) -> Float32Array:
    """RGB image -> float32 (3, input_size, input_size), normalised for ``spec``."""
    if image.mode != "RGB":
        image = _to_rgb(image)
    size = resized_size(image.width, image.height, spec.resize)
    if size != image.size:
        image = image.resize(size, Image.Resampling.BILINEAR)
    image = image.crop(crop_box(image.width, image.height, spec.input_size))
    pixels = np.asarray(image, dtype=np.uint8)
    table = _lookup_table(spec.mean, spec.std)
    out = np.empty((3, spec.input_size, spec.input_size), dtype=np.float32)
    for channel in range(3):
        np.take(table[channel], pixels[:, :, channel], out=out[channel])
    return out


def load_input(data: bytes, spec: ModelSpec, *, max_pixels: int = MAX_IMAGE_PIXELS) -> Float32Array:
    """Decode and preprocess image bytes for ``spec`` (JPEGs decoded in draft mode)."""
    return preprocess(decode_image(data, max_pixels=max_pixels, min_side=spec.resize), spec)
