"""Quantize the fp32 MobileNetV2 ONNX file to a static int8 one (``mobilenet_v2_int8.onnx``).

Run inside the export venv made by ``make models`` (onnx, onnxruntime, scikit-image; no torch),
with ``src`` on the path so the calibration images go through imgrec's own decode and
preprocessing, exactly as served:

    PYTHONPATH=src python tools/quantize_model.py [--fp32 FILE] [--out FILE]

Calibration uses scikit-image's bundled sample photos, never the dev photos the model is judged
on: each photo whole, mirrored, and in seeded random crops (half of them mirrored) is
JPEG-encoded and fed through ``imgrec.model.preprocess.load_input``. Then:

1. ONNX Runtime's ``quant_pre_process`` and ``quantize_static`` write a QDQ graph: uint8
   activations, per-channel int8 weights, MinMax ranges, the stem convolution and the logits
   left in float (see ``QuantSettings``);
2. ``bias_correction.correct_biases`` moves each int32 bias so the int8 graph's mean outputs
   match fp32's on the calibration images (without it, MobileNetV2 loses about 5 points of top-1).

The same inputs give the same bytes: the augmentations are seeded, and everything after is
deterministic (``make models`` pins the packages; run it twice and compare sha256 sums).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
from bias_correction import correct_biases
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process
from PIL import Image
from skimage import data as samples

from imgrec.model.preprocess import load_input
from imgrec.model.spec import ModelSpec

REPO_ROOT = Path(__file__).resolve().parents[1]
FILES_DIR = REPO_ROOT / "src" / "imgrec" / "model" / "files"
DEFAULT_FP32 = FILES_DIR / "mobilenet_v2.onnx"
DEFAULT_OUT = FILES_DIR / "mobilenet_v2_int8.onnx"

# scikit-image's bundled photographs (shipped in the wheel, no download). Grey ones are
# converted to RGB; synthetic images (checkerboards, text pages, logos) are left out.
CALIBRATION_PHOTOS: tuple[str, ...] = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
    "retina", "camera", "brick", "grass", "gravel", "coins", "moon", "clock",
)
SEED = 20240615
CROPS_PER_PHOTO = 20
JPEG_QUALITY = 90
# Sanity floor for top-1 agreement with fp32 on the calibration images. Many are far from
# ImageNet (micrographs, textures), where fp32 itself hesitates, so agreement there is lower than
# on photos (about 0.8 for the shipped model); a broken graph scores near 0.
MIN_AGREEMENT = 0.6

Float32Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class QuantSettings:
    """The knobs of ``quantize_static`` this script exposes (defaults: the shipped model)."""

    quant_format: QuantFormat = QuantFormat.QDQ
    activation_type: QuantType = QuantType.QUInt8
    weight_type: QuantType = QuantType.QInt8
    per_channel: bool = True
    reduce_range: bool = False
    calibrate_method: CalibrationMethod = CalibrationMethod.MinMax
    # The 3-channel stem conv is slower in int8 than in fp32 (a 27-wide dot product per pixel
    # cannot fill the VNNI lanes), and keeping it float costs nothing in accuracy.
    float_first_conv: bool = True
    bias_correction: bool = True
    nodes_to_exclude: tuple[str, ...] = ()
    # Logits stay float: uint8 logits tie classes and reorder the top-5.
    extra_options: dict[str, object] = field(
        default_factory=lambda: {"OpTypesToExcludeOutputQuantization": ["Gemm"]}
    )


def _sample_photo(name: str) -> Image.Image:
    pixels = np.asarray(getattr(samples, name)())
    if pixels.dtype == np.bool_:
        pixels = pixels.astype(np.uint8) * 255
    image = Image.fromarray(pixels.astype(np.uint8))
    return image.convert("RGB")


def _random_crop(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A crop of 25-100% of the area, aspect ratio 3:4 to 4:3 (like RandomResizedCrop)."""
    width, height = image.size
    for _ in range(10):
        area = width * height * rng.uniform(0.25, 1.0)
        ratio = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
        w, h = round((area * ratio) ** 0.5), round((area / ratio) ** 0.5)
        if 0 < w <= width and 0 < h <= height:
            left = int(rng.integers(0, width - w + 1))
            top = int(rng.integers(0, height - h + 1))
            return image.crop((left, top, left + w, top + h))
    return image


def calibration_images(
    names: tuple[str, ...] = CALIBRATION_PHOTOS, crops: int = CROPS_PER_PHOTO, seed: int = SEED
) -> list[bytes]:
    """JPEG bytes: each photo whole, mirrored, and ``crops`` seeded random crops (half mirrored)."""
    rng = np.random.default_rng(seed)
    encoded: list[bytes] = []
    for name in names:
        photo = _sample_photo(name)
        variants = [photo, photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
        for index in range(crops):
            crop = _random_crop(photo, rng)
            variants.append(crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if index % 2 else crop)
        for variant in variants:
            buffer = BytesIO()
            variant.save(buffer, format="JPEG", quality=JPEG_QUALITY)
            encoded.append(buffer.getvalue())
    return encoded


class ImageReader(CalibrationDataReader):  # type: ignore[misc]  # untyped base
    """Feeds preprocessed images to the calibrator one at a time."""

    def __init__(self, inputs: list[Float32Array], input_name: str = "input") -> None:
        self._inputs = inputs
        self._input_name = input_name
        self._iter: Iterator[Float32Array] = iter(inputs)

    def get_next(self) -> dict[str, Float32Array] | None:
        item = next(self._iter, None)
        return None if item is None else {self._input_name: item[None]}

    def rewind(self) -> None:
        self._iter = iter(self._inputs)


def preprocessed(images: list[bytes], fp32: Path) -> list[Float32Array]:
    spec = ModelSpec("calibration", fp32)
    return [load_input(data, spec) for data in images]


def stem_convs(model: onnx.ModelProto) -> list[str]:
    """Names of the Conv nodes that read the graph's input directly."""
    inputs = {graph_input.name for graph_input in model.graph.input}
    return [n.name for n in model.graph.node if n.op_type == "Conv" and n.input[0] in inputs]


def _report(index: int, count: int, name: str, shift: float) -> None:
    if index % 10 == 0 or index == count - 1:
        print(f"  bias correction {index + 1}/{count}: {name} (mean shift {shift:.4f})")


def quantize(fp32: Path, out: Path, inputs: list[Float32Array], settings: QuantSettings) -> None:
    """Write the int8 model for ``fp32`` to ``out``, calibrated on ``inputs``."""
    with tempfile.TemporaryDirectory(prefix="imgrec-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Shape inference and ORT's basic graph optimisations first, as ORT recommends.
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        reference = onnx.load(str(prepared))
        exclude = list(settings.nodes_to_exclude)
        if settings.float_first_conv:
            exclude += stem_convs(reference)
        partial = Path(tmp) / "int8.onnx"
        quantize_static(
            str(prepared),
            str(partial),
            ImageReader(inputs),
            quant_format=settings.quant_format,
            per_channel=settings.per_channel,
            reduce_range=settings.reduce_range,
            activation_type=settings.activation_type,
            weight_type=settings.weight_type,
            calibrate_method=settings.calibrate_method,
            nodes_to_exclude=exclude,
            extra_options=dict(settings.extra_options),
        )
        model = onnx.load(str(partial))
    if settings.bias_correction:
        correct_biases(reference, model, np.stack(inputs), progress=_report)
    onnx.checker.check_model(model, full_check=True)
    staged = out.with_suffix(".onnx.tmp")
    onnx.save(model, str(staged))
    staged.replace(out)


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def top1(path: Path, inputs: list[Float32Array]) -> npt.NDArray[np.int64]:
    session = _session(path)
    logits = [session.run(None, {"input": x[None]})[0][0] for x in inputs]
    return np.asarray([int(np.argmax(row)) for row in logits], dtype=np.int64)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fp32", type=Path, default=DEFAULT_FP32)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not args.fp32.is_file():
        sys.exit(f"error: {args.fp32} is missing; export it first (tools/export_models.py)")
    images = calibration_images()
    inputs = preprocessed(images, args.fp32)
    print(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}")
    print(f"calibrating on {len(inputs)} images from {len(CALIBRATION_PHOTOS)} sample photos")
    candidate = args.out.with_suffix(".candidate.onnx")
    quantize(args.fp32, candidate, inputs, QuantSettings())
    agreement = float(np.mean(top1(args.fp32, inputs) == top1(candidate, inputs)))
    print(f"  top-1 agreement with fp32 on the calibration images: {agreement:.1%}")
    if agreement < MIN_AGREEMENT:
        candidate.unlink()
        sys.exit(f"error: int8 agrees with fp32 on only {agreement:.1%} of calibration images")
    candidate.replace(args.out)
    print(f"{args.out}: size {args.out.stat().st_size / 1e6:.2f} MB, sha256 {sha256(args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
