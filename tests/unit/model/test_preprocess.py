"""Decoding and preprocessing, without running a model."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features
from tests.helpers.paths import DEV_IMAGES

from imgrec.errors import ImageError
from imgrec.model.preprocess import (
    crop_box,
    decode_image,
    load_input,
    preprocess,
    probe_image,
    resized_size,
)
from imgrec.model.spec import IMAGENET_MEAN, IMAGENET_STD, ModelSpec

TINY = ModelSpec("tiny", Path("unused.onnx"), input_size=2, resize=4, labels=("a", "b"))


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid PNG header claiming width x height RGB pixels, with almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def dev_jpeg() -> bytes:
    return sorted(DEV_IMAGES.glob("*.JPEG"))[0].read_bytes()


# --- the maths ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((640, 480), (341, 256)),
        ((480, 640), (256, 341)),
        ((500, 500), (256, 256)),
        ((1000, 257), (996, 256)),  # int() floors, as torchvision does
    ],
)
def test_resized_size_keeps_shorter_side(size: tuple[int, int], expected: tuple[int, int]) -> None:
    assert resized_size(*size, 256) == expected


def test_crop_box_rounds_half_to_even_like_torchvision() -> None:
    # (341 - 224) / 2 = 58.5 -> 58; (257 - 224) / 2 = 16.5 -> 16; (259 - 224) / 2 = 17.5 -> 18
    assert crop_box(341, 257, 224) == (58, 16, 282, 240)
    assert crop_box(259, 224, 224) == (18, 0, 242, 224)


def test_preprocess_crops_centre_and_normalises() -> None:
    # 6x4: the shorter side already equals resize=4, so only the 2x2 centre crop happens.
    pixels = np.arange(6 * 4 * 3, dtype=np.uint8).reshape(4, 6, 3) * 3
    out = preprocess(Image.fromarray(pixels, "RGB"), TINY)
    assert out.shape == (3, 2, 2)
    assert out.dtype == np.float32
    centre = pixels[1:3, 2:4, :].transpose(2, 0, 1).astype(np.float32)
    mean = np.array(IMAGENET_MEAN, dtype=np.float32)[:, None, None]
    std = np.array(IMAGENET_STD, dtype=np.float32)[:, None, None]
    np.testing.assert_array_equal(out, (centre / np.float32(255) - mean) / std)


def test_preprocess_of_flat_colour_is_flat_after_resize() -> None:
    spec = ModelSpec("flat", Path("unused.onnx"), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    out = preprocess(Image.new("RGB", (640, 400), (255, 0, 51)), spec)
    assert out.shape == (3, 224, 224)
    np.testing.assert_allclose(out[0], 1.0)
    np.testing.assert_allclose(out[1], -1.0)
    np.testing.assert_allclose(out[2], 51 / 255 * 2 - 1, rtol=1e-6)


def test_load_input_gives_model_ready_array() -> None:
    spec = ModelSpec("x", Path("unused.onnx"))
    out = load_input(dev_jpeg(), spec)
    assert out.shape == (3, 224, 224)
    assert out.dtype == np.float32
    assert np.isfinite(out).all()


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"hello, I am text\n" * 20, b"%PDF-1.4\n" + b"0" * 100])
def test_non_images_are_not_an_image(data: bytes) -> None:
    for call in (decode_image, probe_image):
        with pytest.raises(ImageError) as info:
            call(data)
        assert info.value.code == "not_an_image"


def test_truncated_jpeg_is_corrupt_but_its_header_probes() -> None:
    data = dev_jpeg()
    half = data[: len(data) // 2]
    with pytest.raises(ImageError) as info:
        decode_image(half)
    assert info.value.code == "corrupt_image"
    with pytest.raises(ImageError):
        load_input(half, TINY)
    fmt, width, height = probe_image(half)  # the header is intact: probing reads no pixels
    assert (fmt, width, height) == ("JPEG", *Image.open(io.BytesIO(data)).size)


def test_png_bomb_is_refused_before_decoding() -> None:
    bomb = png_bomb()
    for call in (decode_image, probe_image):
        with pytest.raises(ImageError) as info:
            call(bomb)
        assert info.value.code == "image_too_large"
        assert "100000x100000" in info.value.message


def test_max_pixels_is_configurable() -> None:
    data = encode(Image.new("RGB", (100, 50)), "PNG")
    assert probe_image(data, max_pixels=5000) == ("PNG", 100, 50)
    with pytest.raises(ImageError) as info:
        decode_image(data, max_pixels=4999)
    assert info.value.code == "image_too_large"


# --- formats and modes -------------------------------------------------------------------------


def _mode_samples() -> dict[str, tuple[Image.Image, str]]:
    gradient = np.linspace(0, 255, 48 * 32, dtype=np.uint8).reshape(32, 48)
    rgb = Image.fromarray(np.stack([gradient, gradient[::-1], gradient], axis=-1), "RGB")
    palette_trns = rgb.convert("P")
    palette_trns.info["transparency"] = bytes(range(256))  # per-entry alpha: Pillow warns
    return {
        "L": (rgb.convert("L"), "PNG"),
        "LA": (rgb.convert("LA"), "PNG"),
        "RGBA": (rgb.convert("RGBA"), "PNG"),
        "P": (rgb.convert("P"), "GIF"),
        "P+tRNS": (palette_trns, "PNG"),
        "1": (rgb.convert("1"), "BMP"),
        "CMYK-JPEG": (rgb.convert("CMYK"), "JPEG"),
        "CMYK-TIFF": (rgb.convert("CMYK"), "TIFF"),
        "I;16": (Image.fromarray(gradient.astype(np.uint16) * 257), "PNG"),
    }


@pytest.mark.parametrize("case", list(_mode_samples()))
def test_any_mode_decodes_to_rgb(case: str) -> None:
    image, fmt = _mode_samples()[case]
    params = {"transparency": image.info["transparency"]} if "transparency" in image.info else {}
    decoded = decode_image(encode(image, fmt, **params))
    assert decoded.mode == "RGB"
    assert decoded.size == (48, 32)


def test_sixteen_bit_keeps_the_high_byte() -> None:
    image = Image.fromarray(np.full((8, 8), 0x8000, dtype=np.uint16))
    decoded = decode_image(encode(image, "PNG"))
    assert np.asarray(decoded)[0, 0].tolist() == [128, 128, 128]


def test_animated_gif_uses_first_frame() -> None:
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    decoded = decode_image(buf.getvalue())
    assert decoded.mode == "RGB"
    assert np.asarray(decoded)[8, 8].tolist() == [255, 0, 0]


@pytest.mark.skipif(not features.check("webp"), reason="Pillow built without WebP")
def test_webp_decodes() -> None:
    data = encode(Image.new("RGBA", (20, 10), (0, 200, 0, 128)), "WEBP", lossless=True)
    assert probe_image(data) == ("WEBP", 20, 10)
    decoded = decode_image(data)
    assert (decoded.mode, decoded.size) == ("RGB", (20, 10))


def test_probe_reports_format_and_size() -> None:
    assert probe_image(encode(Image.new("RGB", (30, 20)), "BMP")) == ("BMP", 30, 20)


# --- JPEG draft mode ---------------------------------------------------------------------------


def test_draft_decodes_large_jpeg_smaller_but_not_below_min_side() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (1536, 2048, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise, "RGB"), "JPEG", quality=90)
    assert decode_image(data).size == (2048, 1536)
    drafted = decode_image(data, min_side=256)
    assert drafted.mode == "RGB"
    assert drafted.size == (512, 384)
    assert decode_image(data, min_side=1000).size == (2048, 1536)


def test_draft_leaves_small_jpeg_alone() -> None:
    data = dev_jpeg()
    full = decode_image(data)
    if min(full.size) < 512:
        assert np.array_equal(np.asarray(decode_image(data, min_side=256)), np.asarray(full))


# --- box reduction before the resize -----------------------------------------------------------

SPEC = ModelSpec("imagenet-like", Path("unused.onnx"), labels=("a", "b"))


def test_reduction_leaves_dev_sized_photos_bit_identical() -> None:
    image = decode_image(dev_jpeg())
    assert np.array_equal(preprocess(image, SPEC), preprocess(image, SPEC, reducing_gap=None))


def test_reduction_shrinks_a_4k_image_first_and_stays_close() -> None:
    # Smooth content (an enlarged dev photo), as the bench's 4K PNGs.
    image = decode_image(dev_jpeg()).resize((3840, 2880), Image.Resampling.BICUBIC)
    fast = preprocess(image, SPEC)
    exact = preprocess(image, SPEC, reducing_gap=None)
    assert fast.shape == exact.shape == (3, 224, 224)
    assert not np.array_equal(fast, exact)  # the box pass did run
    # Normalised units (~1/58 per 8-bit level): within about one level on average.
    assert float(np.abs(fast - exact).mean()) < 0.02
