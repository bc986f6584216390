"""Image bytes -> a checked, decoded RGB image: the header probe and safe decoding.

The web tier checks uploads with ``probe_image`` (header only, no pixels decoded); the worker
decodes with ``decode_image``. Pillow only: importing this loads neither NumPy nor the model.
"""

from __future__ import annotations

import contextlib
import io
import threading
import warnings
from collections.abc import Iterator

from PIL import Image, UnidentifiedImageError

from imgrec.errors import ImageError

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
    return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """The image in RGB mode; 16-bit and float samples scaled to 8 bits, not clipped."""
    if image.mode == "RGB":
        return image
    import numpy as np  # only here: the web tier's header probe must not load NumPy

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
