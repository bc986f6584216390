"""Image bytes -> model input: safe decoding and torchvision-equivalent preprocessing.

The maths matches ``Resize(spec.resize) -> CenterCrop(spec.input_size) -> ToTensor() ->
Normalize(mean, std)`` on a PIL image bit for bit, so the service gives exactly the
predictions of the bare model. Two shortcuts apply only to large images, so photos of the usual
~500x375 are untouched: ``decode_image(min_side=...)``, which ``load_input`` uses, lets libjpeg
decode JPEGs of at least twice that side at 1/2, 1/4 or 1/8 scale, and ``preprocess`` first
shrinks an image at least ``2 x REDUCING_GAP`` times the output by an integer factor with a box
filter (``Image.reduce``, through ``resize(reducing_gap=...)``), so a 4K PNG is not resampled
bilinearly at full size. A 12-megapixel JPEG then costs its entropy decoding plus what a small
photo costs.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt
from PIL import Image

from imgrec.model.decode import FORMATS, MAX_IMAGE_PIXELS, decode_image, probe_image, to_rgb
from imgrec.model.spec import ModelSpec, Triple

__all__ = ["FORMATS", "MAX_IMAGE_PIXELS", "REDUCING_GAP", "crop_box", "decode_image", "load_input",
           "preprocess", "probe_image", "resized_size"]

Float32Array = npt.NDArray[np.float32]

# Pillow calls a gap of 3 "indistinguishable from fair resampling". On the 100 dev photos
# enlarged to 3 MP it changed 1 answer (2 with a gap of 2), top-1 87 either way; it cuts a 4K
# image's resize from ~26 to ~17 ms, small next to the PNG's ~180 ms decode, so fidelity wins.
REDUCING_GAP: float = 3.0


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


def preprocess(
    image: Image.Image, spec: ModelSpec, *, reducing_gap: float | None = REDUCING_GAP
) -> Float32Array:
    """RGB image -> float32 (3, input_size, input_size), normalised for ``spec``.

    ``reducing_gap=None`` resamples large images in one bilinear pass (exact torchvision maths
    at any size; slower).
    """
    if image.mode != "RGB":
        image = to_rgb(image)
    size = resized_size(image.width, image.height, spec.resize)
    if size != image.size:
        image = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=reducing_gap)
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
