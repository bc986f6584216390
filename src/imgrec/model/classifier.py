"""The ONNX Runtime classifier: batches of preprocessed images -> softmax top-5."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from imgrec.errors import ImageError, ModelError
from imgrec.model.optimized import open_with_cache
from imgrec.model.preprocess import MAX_IMAGE_PIXELS, Float32Array, load_input
from imgrec.model.spec import ModelSpec, resolve_model

TOP_K = 5


@dataclass(frozen=True)
class Prediction:
    """One class and its softmax probability."""

    class_index: int
    label: str
    probability: float

    def to_dict(self) -> dict[str, Any]:
        """``{"label", "class_index", "probability"}``."""
        return {
            "label": self.label,
            "class_index": self.class_index,
            "probability": self.probability,
        }


@dataclass(frozen=True)
class Classification:
    """The top-5 classes of one image, most probable first."""

    top5: tuple[Prediction, ...]

    @property
    def label(self) -> str:
        """Name of the most probable class."""
        return self.top5[0].label

    @property
    def class_index(self) -> int:
        """Index of the most probable class."""
        return self.top5[0].class_index

    @property
    def probability(self) -> float:
        """Probability of the most probable class."""
        return self.top5[0].probability

    def to_dict(self) -> dict[str, Any]:
        """``{"label", "class_index", "probability", "top5": [Prediction.to_dict(), ...]}``."""
        return {
            "label": self.label,
            "class_index": self.class_index,
            "probability": self.probability,
            "top5": [p.to_dict() for p in self.top5],
        }


class Classifier:
    """An ONNX Runtime session for one model spec.

    ``threads`` sets ONNX Runtime's intra-op threads (None: its default, one per physical core).
    Calls may come from several threads; they share that thread pool.

    ``graph_cache``: a directory where ONNX Runtime's optimised graph is kept between
    sessions (see ``optimized.py``); None: optimise at every start.

    ``run_batch`` (None: no limit) slices a batch into ONNX runs of at most that many images.
    The session keeps the memory its largest run needed: MobileNetV2's activations take about
    11 MB per image, so a run of 8 holds about 90 MB where a run of 1 holds about 12 MB, and
    with one thread per session a run of 1 costs no more CPU per image than a run of 8.
    """

    def __init__(
        self, spec: ModelSpec, *, threads: int | None = None, run_batch: int | None = None,
        graph_cache: Path | None = None,
    ) -> None:
        if threads is not None and threads < 1:
            raise ModelError(f"threads must be at least 1, got {threads}")
        if run_batch is not None and run_batch < 1:
            raise ModelError(f"run_batch must be at least 1, got {run_batch}")
        self.spec = spec
        self.run_batch = run_batch
        self._session = _open_session(spec, threads, graph_cache)
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or not outputs:
            raise ModelError(
                f"model {spec.name}: expected one image input and a logits output, "
                f"got {len(inputs)} inputs and {len(outputs)} outputs"
            )
        self._input_name: str = inputs[0].name
        self._output_name: str = outputs[0].name
        _check_input(spec, inputs[0])
        width = self._output_width(outputs[0])
        if width != len(spec.labels):
            raise ModelError(
                f"model {spec.name} outputs {width} classes but its label list has "
                f"{len(spec.labels)} names; give a labels file with {width} lines in the "
                f"sidecar {spec.onnx_path}.json"
            )

    def _output_width(self, output: Any) -> int:
        shape = output.shape
        if len(shape) == 2 and isinstance(shape[1], int):
            return int(shape[1])
        # Width not declared in the graph: run one blank image to find it out.
        side = self.spec.input_size
        blank = np.zeros((1, 3, side, side), dtype=np.float32)
        return int(self._run(blank).shape[-1])

    def _run(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        try:
            result = self._session.run([self._output_name], {self._input_name: batch})[0]
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"model {self.spec.name} failed to run: {exc}") from exc
        logits = np.asarray(result, dtype=np.float32)
        return logits.reshape(logits.shape[0], -1)

    def classify_batch(self, batch: npt.NDArray[np.float32]) -> list[Classification]:
        """(N, 3, H, W) preprocessed images -> N classifications (softmax top-5)."""
        side = self.spec.input_size
        if batch.ndim != 4 or batch.shape[1:] != (3, side, side):
            raise ValueError(f"expected a batch of shape (N, 3, {side}, {side}), got {batch.shape}")
        if batch.shape[0] == 0:
            return []
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        step = self.run_batch or batch.shape[0]
        runs = [self._run(batch[i:i + step]) for i in range(0, batch.shape[0], step)]
        logits = runs[0] if len(runs) == 1 else np.concatenate(runs)
        return [self._top5(row) for row in softmax(logits)]

    def _top5(self, probs: npt.NDArray[np.float64]) -> Classification:
        # A stable sort keeps the lower class index first on ties, so results are reproducible.
        order = np.argsort(-probs, kind="stable")[:TOP_K]
        labels = self.spec.labels
        return Classification(
            tuple(Prediction(int(i), labels[int(i)], float(probs[i])) for i in order)
        )

    def prepare(
        self, images: Sequence[bytes], *, max_pixels: int = MAX_IMAGE_PIXELS
    ) -> list[Float32Array | ImageError]:
        """Decode and preprocess encoded images; undecodable ones come back as ImageError."""
        prepared: list[Float32Array | ImageError] = []
        for data in images:
            try:
                prepared.append(load_input(data, self.spec, max_pixels=max_pixels))
            except ImageError as exc:
                prepared.append(exc)
        return prepared

    def classify_prepared(
        self, prepared: Sequence[Float32Array | ImageError]
    ) -> list[Classification | ImageError]:
        """Classify the prepared images in one run; errors from ``prepare`` pass through."""
        inputs = [p for p in prepared if not isinstance(p, ImageError)]
        classified = iter(self.classify_batch(np.stack(inputs)) if inputs else [])
        return [p if isinstance(p, ImageError) else next(classified) for p in prepared]

    def classify_images(
        self, images: Sequence[bytes], *, max_pixels: int = MAX_IMAGE_PIXELS
    ) -> list[Classification | ImageError]:
        """Classify encoded images in one run; undecodable ones come back as ImageError."""
        return self.classify_prepared(self.prepare(images, max_pixels=max_pixels))


def softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Row-wise softmax in float64 (max-subtracted, so large logits cannot overflow)."""
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    probs: npt.NDArray[np.float64] = exp / exp.sum(axis=1, keepdims=True)
    return probs


def _open_session(
    spec: ModelSpec, threads: int | None, graph_cache: Path | None
) -> ort.InferenceSession:
    if not spec.onnx_path.is_file():
        raise ModelError(f"model file not found: {spec.onnx_path}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 0
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: skip ORT's chatter about unused initialisers
    # Spinning intra-op threads burn the cores that other workers and the web tier need; with
    # 2 threads on 2 shared cores spinning made inference about 1.5x slower, not faster.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        if graph_cache is not None:
            return open_with_cache(spec.onnx_path, options, graph_cache)
        return ort.InferenceSession(
            str(spec.onnx_path), options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        raise ModelError(f"cannot load ONNX model {spec.onnx_path}: {exc}") from exc


def _check_input(spec: ModelSpec, node: Any) -> None:
    if node.type != "tensor(float)":
        raise ModelError(f"model {spec.name}: input must be float32, the graph says {node.type}")
    shape = list(node.shape)
    side = spec.input_size
    if len(shape) != 4 or any(
        isinstance(dim, int) and dim != want
        for dim, want in zip(shape[1:], (3, side, side), strict=True)
    ):
        raise ModelError(
            f"model {spec.name}: input shape {shape} does not take (N, 3, {side}, {side}); "
            "set input_size in the model's sidecar JSON"
        )


def load_classifier(
    name_or_path: str = "mobilenet_v2", *, threads: int | None = None,
    run_batch: int | None = None, graph_cache: Path | None = None,
) -> Classifier:
    """Resolve a built-in name or .onnx path and open a classifier for it."""
    return Classifier(resolve_model(name_or_path), threads=threads, run_batch=run_batch,
                      graph_cache=graph_cache)
