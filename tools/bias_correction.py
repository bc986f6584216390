"""Empirical bias correction of a QDQ int8 graph against its fp32 original.

Rounding weights to int8 shifts the mean output of every convolution a little; in MobileNetV2
(depthwise convolutions with few weights per channel) those shifts add up along the network and
cost several points of top-1. This is the fix of Nagel et al., "Data-Free Quantization Through
Weight Equalization and Bias Correction" (ICCV 2019), in its empirical form, as in OpenVINO's
and NNCF's post-training quantization: for each Conv/Gemm in graph order, measure the mean of its
output per channel on calibration images, in fp32 and in the int8 graph with every earlier
correction already applied, and move the int32 bias by the difference.

The int8 graph is run with graph optimisations off, so each quantized op is computed as its QDQ
definition says (dequantize, float op, quantize): the same arithmetic as ONNX Runtime's fused
int8 kernels up to float rounding.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

BATCH = 16
Float32Array = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]


def _with_outputs(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    extended = onnx.ModelProto()
    extended.CopyFrom(model)
    present = {output.name for output in extended.graph.output}
    for name in names:
        if name not in present:
            extended.graph.output.append(
                helper.make_tensor_value_info(name, TensorProto.FLOAT, None)
            )
    return extended


def channel_means(
    model: onnx.ModelProto, names: list[str], images: Float32Array, threads: int = 1
) -> list[Float64Array]:
    """Mean of each named tensor over batch and spatial axes: one value per channel."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(
        _with_outputs(model, names).SerializeToString(), options,
        providers=["CPUExecutionProvider"],
    )
    input_name = session.get_inputs()[0].name
    sums = [np.zeros(0, dtype=np.float64) for _ in names]
    for start in range(0, len(images), BATCH):
        outputs = session.run(names, {input_name: images[start : start + BATCH]})
        for index, output in enumerate(outputs):
            array = np.asarray(output, dtype=np.float64)
            per_channel = array.reshape(array.shape[0], array.shape[1], -1).mean(axis=2).sum(0)
            sums[index] = per_channel if sums[index].size == 0 else sums[index] + per_channel
    return [total / len(images) for total in sums]


def correct_biases(
    fp32: onnx.ModelProto,
    qdq: onnx.ModelProto,
    images: Float32Array,
    *,
    threads: int = 1,
    progress: Callable[[int, int, str, float], None] | None = None,
) -> onnx.ModelProto:
    """Return ``qdq`` with each Conv/Gemm int32 bias corrected; ``qdq`` is changed in place.

    Nodes are matched to ``fp32`` by name (``quantize_static`` keeps them). ``progress`` gets
    (index, count, node name, largest mean shift before correcting).
    """
    fp32_nodes = {node.name: node for node in fp32.graph.node}
    layers = [
        node for node in qdq.graph.node
        if node.op_type in ("Conv", "Gemm") and len(node.input) > 2 and node.name in fp32_nodes
    ]
    wanted = channel_means(fp32, [fp32_nodes[n.name].output[0] for n in layers], images, threads)
    producer = {output: node for node in qdq.graph.node for output in node.output}
    initializers = {init.name: init for init in qdq.graph.initializer}
    for index, (layer, target) in enumerate(zip(layers, wanted, strict=True)):
        dequantize = producer.get(layer.input[2])
        if dequantize is None or dequantize.op_type != "DequantizeLinear":
            continue  # a float bias: this layer was left unquantized
        [got] = channel_means(qdq, [layer.output[0]], images, threads)
        bias = initializers[dequantize.input[0]]
        scale = numpy_helper.to_array(initializers[dequantize.input[1]]).astype(np.float64)
        steps = np.round((target - got) / scale).astype(np.int64)
        corrected = numpy_helper.to_array(bias).astype(np.int64) + steps
        info = np.iinfo(np.int32)
        bias.CopyFrom(
            numpy_helper.from_array(np.clip(corrected, info.min, info.max).astype(np.int32),
                                    bias.name)
        )
        if progress is not None:
            progress(index, len(layers), layer.name, float(np.max(np.abs(target - got))))
    return qdq
